"""run_train.py end to end on the synthetic set, as a user runs it.

A subprocess per run where the process is part of what is tested (its output, its exit status,
a signal, a resume by a new process); runner.run in this process where only the outcome is, which
saves TensorFlow's start-up (conftest.run_in_process: the same flags, the same runner).
"""

import importlib
import json
import logging
import os
import re
import signal
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from absl import app
from absl import flags
from absl.testing import flagsaver

from conftest import PROGRESS_LINE, REPO, RUN_TRAIN, run_in_process, run_train
from squeezenet_v1 import SqueezeNetModel
from squeezenet_v1 import runner

tf1 = tf.compat.v1
LOG_LINE = PROGRESS_LINE


def _run_here(caplog, *args):
    """(status, what it logged) of run_train.py's flags run by runner.run in this process."""
    caplog.clear()
    with caplog.at_level(logging.INFO, logger='absl'):
        status = run_in_process(*args)
    return status, caplog.text


def _checkpoint_values(checkpoint):
    reader = tf1.train.load_checkpoint(checkpoint)
    return {name: reader.get_tensor(name) for name, _ in tf1.train.list_variables(checkpoint)}


def test_train_and_eval_learns_and_leaves_its_files(seeded_run):
    model_dir, stdout = seeded_run  # run_train.py --mode=train_and_eval, 300 steps
    lines = list(LOG_LINE.finditer(stdout))
    assert [int(m.group(1)) for m in lines] == [100, 200, 300]
    # The target, the epoch (synthetic: 5,000 training images, batch 32) and the time left.
    assert {int(m.group(2)) for m in lines} == {300}
    assert [m.group(3) for m in lines] == ['0.6', '1.3', '1.9']
    assert lines[-1].group(8) == '0:00'
    assert 'final_conv output is zero' not in stdout and 'same prediction' not in stdout
    # Each evaluation is one line; the per-class table follows the last one only.
    assert stdout.count(' red-horizontal ') == 1
    assert stdout.index(' red-horizontal ') > stdout.index('Evaluation of model.ckpt-300')
    with open(os.path.join(model_dir, 'eval_results.json')) as f:
        results = json.load(f)
    assert results['global_step'] == 300 and results['num_examples'] == 1000
    assert results['dataset'] == 'synthetic' and results['checkpoint'] == 'model.ckpt-300'
    assert results['accuracy'] > 0.4, results  # chance is 0.1
    assert len(results['per_class_accuracy']) == 10
    assert 0 < results['loss'] < 2.3
    names = os.listdir(model_dir)
    assert {'checkpoint', 'flags.json', 'model.ckpt-100.index', 'model.ckpt-300.index',
            'model.ckpt-300.meta', 'eval'} <= set(names)
    assert any(n.startswith('events.out.tfevents') for n in names)
    with open(os.path.join(model_dir, 'flags.json')) as f:
        assert json.load(f)['max_steps'] == 300
    summaries = {v.tag for path in [os.path.join(model_dir, n) for n in names
                                    if n.startswith('events.out')]
                 for event in tf1.train.summary_iterator(path) for v in event.summary.value}
    assert {'loss', 'accuracy'} <= summaries


def _start(model_dir, *extra):
    return subprocess.Popen(
        [sys.executable, RUN_TRAIN, '--dataset=synthetic', '--model_dir=' + model_dir,
         '--mode=train', '--log_every_n_steps=10', '--save_checkpoints_steps=100000'] +
        list(extra), cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


# SIGTERM's save and exact resume are tests/test_reproduction.py's (bit for bit, with --seed).
@pytest.mark.slow
@pytest.mark.parametrize('signum', [signal.SIGINT])
def test_signal_saves_and_the_next_start_continues_from_that_step(tmp_path, signum):
    model_dir = str(tmp_path / 'run')
    proc = _start(model_dir, '--max_steps=100000')
    output = []
    for line in proc.stdout:
        output.append(line)
        if LOG_LINE.search(line):
            proc.send_signal(signum)
            break
    rest, _ = proc.communicate(timeout=120)
    output = ''.join(output) + rest
    assert proc.returncode == 128 + signum, output[-3000:]
    stopped = int(re.search(r'stopped by SIG\w+ at step (\d+); checkpoint saved', output).group(1))
    assert stopped >= 10
    assert tf1.train.latest_checkpoint(model_dir).endswith('model.ckpt-%d' % stopped)

    proc = run_train('--dataset=synthetic', '--model_dir=' + model_dir, '--mode=train',
                     '--max_steps=%d' % (stopped + 20), '--log_every_n_steps=1')
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert 'Resuming from %s' % os.path.join(model_dir, 'model.ckpt-%d' % stopped) in proc.stdout
    steps = [int(m.group(1)) for m in LOG_LINE.finditer(proc.stdout)]
    assert steps == list(range(stopped + 1, stopped + 21))  # none trained twice, none skipped
    assert tf1.train.latest_checkpoint(model_dir).endswith('model.ckpt-%d' % (stopped + 20))


@pytest.mark.slow
def test_resume_keeps_adam_state(tmp_path):
    model_dir = str(tmp_path / 'run')
    assert run_train('--dataset=synthetic', '--model_dir=' + model_dir, '--mode=train',
                     '--max_steps=5').returncode == 0
    before = _checkpoint_values(os.path.join(model_dir, 'model.ckpt-5'))
    assert run_train('--dataset=synthetic', '--model_dir=' + model_dir, '--mode=train',
                     '--max_steps=6').returncode == 0
    after = _checkpoint_values(os.path.join(model_dir, 'model.ckpt-6'))
    assert after['global_step'] == 6
    # beta1_power is 0.9 ** steps: it continued from the restored value instead of restarting.
    np.testing.assert_allclose(after['beta1_power'], 0.9 ** 7, rtol=1e-6)
    np.testing.assert_allclose(before['beta1_power'], 0.9 ** 6, rtol=1e-6)


@pytest.mark.parametrize('flag, message', [
    ('--batch_size=0', 'flag --batch_size=0: 0 is not an integer in the range [1, 65536]'),
    ('--batch_size=-3', 'flag --batch_size=-3: -3 is not an integer in the range [1, 65536]'),
    ('--max_steps=0', 'flag --max_steps=0: 0 is not a positive integer'),
    ('--max_steps=notanumber', 'flag --max_steps=notanumber: invalid literal'),
    ('--save_summary_steps=0', 'flag --save_summary_steps=0: 0 is not a positive integer'),
    ('--log_every_n_steps=-1', 'flag --log_every_n_steps=-1: -1 is not a positive integer'),
    ('--keep_checkpoint_max=-2', 'flag --keep_checkpoint_max=-2: -2 is not a non-negative integer'),
    ('--learning_rate=1e400', '--learning_rate must be a positive finite number'),
    ('--seed=99999999999', 'is not an integer in the range [0, 2147483647]'),
    ('--data_dir=', '--data_dir must not be empty'),
    ('--batch_size=10000000', 'is not an integer in the range [1, 65536]'),
    ('--max_steps=-5', 'flag --max_steps=-5: -5 is not a positive integer'),
    ('--save_checkpoints_steps=0', 'flag --save_checkpoints_steps=0: 0 is not a positive integer'),
    ('--log_every_n_steps=0', 'flag --log_every_n_steps=0: 0 is not a positive integer'),
    ('--learning_rate=0', '--learning_rate must be a positive finite number'),
    ('--learning_rate=nan', '--learning_rate must be a positive finite number'),
    ('--learning_rate=-1', '--learning_rate must be a positive finite number'),
    ('--seed=-1', 'flag --seed=-1: -1 is not an integer in the range [0, 2147483647]'),
    ('--mode=fit', "value should be one of <train|eval|train_and_eval|continuous_eval|predict|export|download>"),
    ('--precision=fp8', "value should be one of <fp32|bf16|fp16>"),
    ('--dataset=mnist',
     'value should be one of <cifar10|synthetic|cifar100|cifar100_coarse|folder>'),
    ('--eval_timeout_secs=0', 'flag --eval_timeout_secs=0: 0 is not a positive integer'),
    ('--download_deadline_secs=0', 'flag --download_deadline_secs=0: 0 is not a positive integer'),
    ('--top_k=0', 'flag --top_k=0: 0 is not an integer in the range [1, 1000]'),
    ('--eval_batch_size=0', '0 is not an integer in the range [1, 65536]'),
    ('--model_dir=', '--model_dir must not be empty'),
    ('--mode=eval --checkpoint_path=a --exported_model=b',
     'At most one of (exported_model, checkpoint_path) must have a value other than None'),
    ('stray', 'Unexpected arguments: stray'),
])
def test_bad_flags_are_refused_before_any_work(tmp_path, flag, message):
    model_dir = tmp_path / 'run'
    assert message in _refusal('--dataset=synthetic', '--model_dir=%s' % model_dir, *flag.split())
    assert not model_dir.exists()


def _refusal(*args):
    """What run_train.py answers to its command line before it runs anything (in this process)."""
    run_train_module = importlib.import_module('run_train')
    with flagsaver.flagsaver():
        flags.FLAGS.unparse_flags()
        try:
            argv = flags.FLAGS(['run_train.py'] + list(args))
            run_train_module.main(argv)
        except (flags.Error, app.UsageError) as e:
            return str(e)
    raise AssertionError('run_train.py accepted %s' % ' '.join(args))


def test_a_bad_flag_is_answered_before_tensorflow_is_imported(tmp_path):
    # With every import of TensorFlow failing, the answer must still be the flag's message.
    script = ('import runpy, sys; sys.modules["tensorflow"] = None; '
              'sys.argv = ["run_train.py", "--batch_size=0", "--model_dir=%s"]; '
              'runpy.run_path("run_train.py", run_name="__main__")' % (tmp_path / 'run'))
    proc = subprocess.run([sys.executable, '-c', script], cwd=REPO, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert 'flag --batch_size=0: 0 is not an integer in the range [1, 65536]' in proc.stderr
    assert 'Traceback' not in proc.stderr and not (tmp_path / 'run').exists()


def test_model_dir_that_is_a_file_or_under_a_file(tmp_path, caplog):
    blocker = tmp_path / 'file'
    blocker.write_text('x')
    status, log = _run_here(caplog, '--dataset=synthetic', '--model_dir=%s' % blocker)
    assert status == 1 and 'is a file, not a folder' in log
    status, log = _run_here(caplog, '--dataset=synthetic', '--model_dir=%s' % (blocker / 'sub'))
    assert status == 1 and 'cannot be created' in log
    assert blocker.read_text() == 'x'


def test_model_dir_with_a_name_too_long_is_refused_before_any_folder_is_made(tmp_path, caplog):
    model_dir = tmp_path / 'parent' / ('a' * 300) / 'run'
    for attempt in (1, 2):  # the second run once met the parent the first had created
        status, log = _run_here(caplog, '--dataset=synthetic', '--mode=train',
                                '--model_dir=%s' % model_dir)
        assert status == 1 and 'has a folder name of 300 bytes' in log, (attempt, log)
        assert not (tmp_path / 'parent').exists()


def test_missing_cifar10_says_how_to_get_it(tmp_path):
    proc = run_train('--data_dir=%s' % tmp_path, '--model_dir=%s' % (tmp_path / 'run'))
    assert proc.returncode == 1
    assert 'no CIFAR-10 in' in proc.stdout and '--download' in proc.stdout
    assert 'Traceback' not in proc.stdout


def test_eval_without_a_checkpoint_is_a_clear_error(tmp_path, caplog):
    status, log = _run_here(caplog, '--dataset=synthetic', '--mode=eval',
                            '--model_dir=%s' % tmp_path)
    assert status == 1 and 'no complete checkpoint in' in log


def test_checkpoint_of_another_output_size_names_the_variables(tmp_path, caplog):
    model_dir = tmp_path / 'run'
    model_dir.mkdir()
    with tf.Graph().as_default():
        model = SqueezeNetModel(32, 24, 5)
        model.run_model_setup(tf1.placeholder(tf.float32, [None, 24, 24, 3]),
                              tf1.placeholder(tf.int32, [None]), is_training=True)
        with tf1.Session() as sess:
            sess.run(tf1.global_variables_initializer())
            tf1.train.Saver().save(sess, str(model_dir / 'model.ckpt'), global_step=3)
    for mode in ('train', 'eval'):
        status, log = _run_here(caplog, '--dataset=synthetic', '--mode=' + mode,
                                '--model_dir=%s' % model_dir)
        assert status == 1, log[-2000:]
        assert 'was written by a different model' in log
        assert 'final_conv/kernel is [1, 1, 256, 5] in the checkpoint but [1, 1, 256, 10]' in log
        assert 'Traceback' not in log


@pytest.mark.slow
def test_nan_loss_stops_and_keeps_the_last_finite_checkpoint(tmp_path, caplog):
    model_dir = str(tmp_path / 'run')
    assert _run_here(caplog, '--dataset=synthetic', '--model_dir=' + model_dir, '--mode=train',
                     '--max_steps=10')[0] == 0
    status, log = _run_here(caplog, '--dataset=synthetic', '--model_dir=' + model_dir,
                            '--mode=train', '--max_steps=200', '--learning_rate=1e30',
                            '--save_checkpoints_steps=1')
    assert status == 1, log[-3000:]
    match = re.search(r'(loss is (nan|inf) at step (\d+))|(weights are not finite at step (\d+))',
                      log)
    assert match, log[-3000:]
    latest = tf1.train.latest_checkpoint(model_dir)
    values = _checkpoint_values(latest)
    assert all(np.all(np.isfinite(v)) for v in values.values())
    failed_step = int(match.group(3) or match.group(5))
    assert values['global_step'] < failed_step


@pytest.mark.slow
def test_keep_checkpoint_max_counts_checkpoints_of_earlier_runs(tmp_path, caplog):
    model_dir = str(tmp_path / 'run')
    for max_steps in (4, 6):
        assert _run_here(caplog, '--dataset=synthetic', '--model_dir=' + model_dir,
                         '--mode=train', '--max_steps=%d' % max_steps,
                         '--save_checkpoints_steps=1', '--keep_checkpoint_max=3')[0] == 0
    kept = sorted(n for n in os.listdir(model_dir) if n.endswith('.index'))
    assert kept == ['model.ckpt-4.index', 'model.ckpt-5.index', 'model.ckpt-6.index']
    with open(os.path.join(model_dir, 'checkpoint')) as f:
        assert 'model_checkpoint_path: "model.ckpt-6"' in f.read()  # relative: model_dir can move


@pytest.mark.slow
def test_keep_checkpoint_max_0_keeps_every_checkpoint_as_tf1_did(tmp_path, caplog):
    model_dir = str(tmp_path / 'run')
    assert _run_here(caplog, '--dataset=synthetic', '--model_dir=' + model_dir, '--mode=train',
                     '--max_steps=7', '--save_checkpoints_steps=1', '--keep_checkpoint_max=0',
                     '--seed=1')[0] == 0
    kept = sorted(int(n[len('model.ckpt-'):-len('.index')]) for n in os.listdir(model_dir)
                  if n.endswith('.index'))
    assert kept == [1, 2, 3, 4, 5, 6, 7]
    state = tf1.train.get_checkpoint_state(model_dir)
    assert [os.path.basename(p) for p in state.all_model_checkpoint_paths] == [
        'model.ckpt-%d' % step for step in kept]


def _final_conv_checkpoint(model_dir, bias):
    """model_dir/model.ckpt-0 whose final_conv outputs `bias` for every image: -100 is a dead
    ReLU (all zero, no gradient can revive it), +1 logits alive but equal for every class."""
    model_dir.mkdir()
    with tf.Graph().as_default():
        model = SqueezeNetModel(32, 24, 10)
        model.run_model_setup(tf1.placeholder(tf.float32, [None, 24, 24, 3]),
                              tf1.placeholder(tf.int32, [None]), is_training=True)
        final = {v.op.name: v for v in tf1.global_variables()}
        kill = [final['final_conv/kernel'].assign(tf.zeros([1, 1, 256, 10])),
                final['final_conv/bias'].assign(tf.fill([10], bias))]
        with tf1.Session() as sess:
            sess.run(tf1.global_variables_initializer())
            sess.run(kill)
            tf1.train.Saver().save(sess, str(model_dir / 'model.ckpt'), global_step=0)


def _ended(model_dir):
    with open(str(model_dir / 'runs.jsonl')) as f:
        return json.loads(f.read().splitlines()[-1])['ended']


def test_a_dead_run_saves_and_stops_with_its_own_status(tmp_path, caplog):
    model_dir = tmp_path / 'run'
    _final_conv_checkpoint(model_dir, -100.0)
    status, log = _run_here(caplog, '--dataset=synthetic', '--mode=train_and_eval',
                            '--model_dir=%s' % model_dir, '--max_steps=40',
                            '--log_every_n_steps=2', '--save_checkpoints_steps=1000')
    assert status == runner.EXIT_DEAD_RUN == 3, log[-3000:]
    assert 'step 2/40 (epoch 0.0), loss = 2.3026' in log
    assert log.count('every final_conv output is zero: the final ReLU has died') == 1, log
    assert 'Saved a checkpoint and stopped' in log and 'step 4/40' not in log
    assert tf1.train.latest_checkpoint(str(model_dir)).endswith('model.ckpt-2')
    assert _ended(model_dir) == 'dead_relu'
    # Its checkpoint was evaluated before the stop, so summarize names the run.
    with open(str(model_dir / 'eval_results.json')) as f:
        results = json.load(f)
    assert results['global_step'] == 2 and results['uniform_predictions'] == 'dead_relu'
    from squeezenet_v1.evaluation import summarize
    report = summarize.summarize([str(model_dir)])
    assert report['runs'][0]['uniform_predictions'] == 'dead_relu'


def _evaluated(caplog, model_dir):
    status, log = _run_here(caplog, '--dataset=synthetic', '--mode=eval',
                            '--model_dir=%s' % model_dir)
    assert status == 0, log[-3000:]
    with open(str(model_dir / 'eval_results.json')) as f:
        return json.load(f)


def test_keep_training_when_dead_trains_on_and_says_so_once(tmp_path, caplog):
    model_dir = tmp_path / 'run'
    _final_conv_checkpoint(model_dir, -100.0)
    status, log = _run_here(caplog, '--dataset=synthetic', '--mode=train',
                            '--model_dir=%s' % model_dir, '--max_steps=4', '--log_every_n_steps=1',
                            '--keep_training_when_dead')
    assert status == 0, log[-3000:]
    assert log.count('loss = 2.3026') == 4
    assert log.count('the final ReLU has died') == 1 and 'Training on, as' in log
    assert _ended(model_dir) == 'finished'


def test_live_but_equal_logits_warn_once_that_the_data_carries_nothing(tmp_path, caplog):
    model_dir = tmp_path / 'run'
    _final_conv_checkpoint(model_dir, 1.0)
    # A learning rate too small to move the weights keeps the logits equal at every log step.
    status, log = _run_here(caplog, '--dataset=synthetic', '--mode=train',
                            '--model_dir=%s' % model_dir, '--max_steps=3', '--log_every_n_steps=1',
                            '--learning_rate=1e-30')
    assert status == 0, log[-3000:]
    assert log.count('loss = 2.3026') == 3
    assert log.count('every class\'s logit equal but not zero') == 1, log
    assert 'Another --seed will not help' in log and 'final ReLU has died' not in log
    assert _evaluated(caplog, model_dir)['uniform_predictions'] == 'no_signal'


def test_per_class_every_eval_logs_the_table_after_each_evaluation(tmp_path, caplog):
    status, log = _run_here(caplog, '--dataset=synthetic', '--mode=train_and_eval',
                            '--model_dir=%s' % (tmp_path / 'run'), '--max_steps=2',
                            '--save_checkpoints_steps=1', '--per_class_every_eval')
    assert status == 0, log[-3000:]
    assert log.count('Evaluation of model.ckpt-') == 2
    assert log.count(' red-horizontal ') == 2


def test_eval_names_the_missing_checkpoint_before_the_missing_data(tmp_path, caplog):
    status, log = _run_here(caplog, '--mode=eval', '--model_dir=%s' % (tmp_path / 'run'),
                            '--data_dir=%s' % (tmp_path / 'no_data'))  # no CIFAR-10 either
    assert status == 1 and 'no complete checkpoint in' in log and 'no CIFAR-10' not in log
