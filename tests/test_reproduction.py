"""The reproduction workflow: every checkpoint evaluated and addressable, seeded runs resumable bit
for bit however they were stopped, continuous evaluation beside a trainer, results with spread.
"""

import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf

from conftest import REPO, RUN_TRAIN, SEEDED_RUN, run_train
from conftest import run_in_process as _run
from squeezenet_v1 import interrupts
from squeezenet_v1.evaluation import continuous_eval
from squeezenet_v1.evaluation import evaluate
from squeezenet_v1.model_dir import checkpoints
from squeezenet_v1.data import synthetic
from squeezenet_v1.evaluation import summarize

tf1 = tf.compat.v1

# The issue's own reproduction: 300 seeded steps, a checkpoint every 100 (the shared run).
SEEDED = SEEDED_RUN




def _history(model_dir):
    with open(os.path.join(model_dir, evaluate.EVAL_HISTORY_FILE)) as f:
        return [json.loads(line) for line in f]


def _results(model_dir):
    with open(os.path.join(model_dir, evaluate.EVAL_RESULTS_FILE)) as f:
        return json.load(f)


def _tensors(prefix):
    reader = tf1.train.load_checkpoint(prefix)
    return {name: reader.get_tensor(name) for name in reader.get_variable_to_shape_map()}


@pytest.fixture
def straight(seeded_run):
    """The seeded 300-step run, uninterrupted, in its own process (read only)."""
    return seeded_run[0]


def test_train_and_eval_evaluates_every_checkpoint_once(straight):
    history = _history(straight)
    assert [line['global_step'] for line in history] == [100, 200, 300]
    assert [line['checkpoint'] for line in history] == [
        'model.ckpt-100', 'model.ckpt-200', 'model.ckpt-300']
    assert all(line['num_examples'] == 1000 and 'eval_seconds' in line for line in history)
    assert all(line['eval_precision'] == 'fp32' for line in history)
    assert history[-1]['flags'] == {'dataset': 'synthetic', 'batch_size': 32,
                                    'learning_rate': 0.001, 'precision': 'fp32', 'seed': 11,
                                    'sync_replicas': False}
    assert _results(straight) == history[-1]
    assert history[-1]['accuracy'] > 0.5  # it learned: the seed does not hit the dead ReLU
    points = []
    eval_dir = os.path.join(straight, 'eval')
    for name in os.listdir(eval_dir):
        for event in tf1.train.summary_iterator(os.path.join(eval_dir, name)):
            points += [(event.step, v.simple_value) for v in event.summary.value
                       if v.tag == 'accuracy']
    assert sorted(points) == [(line['global_step'], pytest.approx(line['accuracy']))
                              for line in history]


def _stopped_then_resumed(tmp_path, stop_signal):
    """The seeded run stopped by stop_signal once it logs step 133, then run again to the end."""
    model_dir = str(tmp_path / 'run')
    log_path = str(tmp_path / 'stopped.log')
    with open(log_path, 'w') as log:
        proc = subprocess.Popen([sys.executable, RUN_TRAIN, '--model_dir=' + model_dir,
                                 '--log_every_n_steps=1'] + SEEDED,
                                cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
    try:
        give_up = time.time() + 120
        while 'step 133/' not in open(log_path).read():
            assert proc.poll() is None and time.time() < give_up, open(log_path).read()[-3000:]
            time.sleep(0.02)
        proc.send_signal(stop_signal)
        status = proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
    stopped_at = max(int(n.split('-')[1].split('.')[0]) for n in os.listdir(model_dir)
                     if n.startswith('model.ckpt-') and n.endswith('.index'))
    resumed = run_train('--model_dir=' + model_dir, *SEEDED)
    assert resumed.returncode == 0, resumed.stdout[-3000:]
    return model_dir, status, stopped_at, resumed.stdout


def _assert_identical(model_dir, straight):
    ours, theirs = _tensors(model_dir + '/model.ckpt-300'), _tensors(straight + '/model.ckpt-300')
    assert sorted(ours) == sorted(theirs)
    different = [name for name in ours if not np.array_equal(ours[name], theirs[name])]
    assert not different, different
    assert _results(model_dir)['loss'] == _results(straight)['loss']
    assert _results(model_dir)['accuracy'] == _results(straight)['accuracy']


@pytest.mark.slow
def test_sigterm_mid_way_then_resume_is_bit_identical(straight, tmp_path):
    model_dir, status, stopped_at, log = _stopped_then_resumed(tmp_path, signal.SIGTERM)
    assert status == 128 + signal.SIGTERM
    assert 133 <= stopped_at < 200  # saved where it stopped, not on a checkpoint boundary
    assert 'Resuming from %s/model.ckpt-%d' % (model_dir, stopped_at) in log
    _assert_identical(model_dir, straight)


@pytest.mark.slow
def test_kill_9_then_resume_from_the_last_checkpoint_is_bit_identical(straight, tmp_path):
    model_dir, status, stopped_at, log = _stopped_then_resumed(tmp_path, signal.SIGKILL)
    assert status == -signal.SIGKILL and stopped_at == 100  # steps 101-133+ are done again
    assert 'Resuming from %s/model.ckpt-100' % model_dir in log
    _assert_identical(model_dir, straight)


# Any checkpoint addressable.

@pytest.mark.slow
def test_checkpoint_path_picks_the_checkpoint_for_eval_predict_and_export(straight, tmp_path):
    model_dir = shutil.copytree(straight, str(tmp_path / 'run'))
    older = os.path.join(model_dir, 'model.ckpt-100')
    assert _run('--mode=eval', '--model_dir=' + model_dir, '--checkpoint_path=' + older) == 0
    results = _results(model_dir)
    assert results['global_step'] == 100 and results['checkpoint'] == 'model.ckpt-100'
    assert results['loss'] == _history(straight)[0]['loss']  # the same numbers as in training
    assert _history(model_dir)[-1] == results and len(_history(model_dir)) == 4

    images = str(tmp_path / 'images')
    synthetic.write_png_files(images, 3)
    probabilities = {}
    for name in ('model.ckpt-100', None):
        out = str(tmp_path / ('%s.json' % name))
        chosen = ['--checkpoint_path=' + os.path.join(model_dir, name)] if name else []
        assert _run('--mode=predict', '--model_dir=' + model_dir, '--images=' + images,
                    '--predictions_json=' + out, *chosen) == 0
        with open(out) as f:
            probabilities[name] = [r['predictions'][0]['probability'] for r in json.load(f)]
    assert probabilities['model.ckpt-100'] != probabilities[None]

    export_dir = str(tmp_path / 'export')
    assert _run('--mode=export', '--model_dir=' + model_dir, '--export_dir=' + export_dir,
                '--checkpoint_path=' + older) == 0
    with open(os.path.join(export_dir, 'size_report.json')) as f:
        assert json.load(f)['checkpoint'] == 'model.ckpt-100'


def test_a_checkpoint_path_that_is_not_one_is_named_with_those_there(straight, tmp_path, caplog):
    model_dir = shutil.copytree(straight, str(tmp_path / 'run'))
    before = sorted(os.listdir(model_dir))
    with caplog.at_level(logging.ERROR, logger='absl'):
        assert _run('--mode=eval', '--model_dir=' + model_dir,
                    '--checkpoint_path=' + os.path.join(model_dir, 'model.ckpt-150')) == 1
    assert ('names no checkpoint: give a prefix such as <model_dir>/model.ckpt-1000; %s holds '
            'model.ckpt-100, model.ckpt-200, model.ckpt-300.' % model_dir) in caplog.text
    assert sorted(os.listdir(model_dir)) == before  # refused: nothing written, nothing recorded
    os.remove(os.path.join(model_dir, 'model.ckpt-200.data-00000-of-00001'))
    with caplog.at_level(logging.ERROR, logger='absl'):
        assert _run('--mode=export', '--model_dir=' + model_dir,
                    '--checkpoint_path=' + os.path.join(model_dir, 'model.ckpt-200.index')) == 1
    assert 'model.ckpt-200.index is incomplete (no .data file)' in caplog.text
    result = run_train('--mode=train', '--model_dir=' + model_dir,
                       '--checkpoint_path=' + os.path.join(model_dir, 'model.ckpt-100'))
    assert result.returncode == 1
    assert '--checkpoint_path picks the checkpoint for --mode eval, predict or export' in (
        result.stdout)


@pytest.mark.slow
def test_eval_results_do_not_depend_on_the_eval_batch_size(straight, tmp_path):
    model_dir = shutil.copytree(straight, str(tmp_path / 'run'))
    for batch in (7, 1000):
        assert _run('--mode=eval', '--model_dir=' + model_dir, '--eval_batch_size=%d' % batch) == 0
    small, large = _history(model_dir)[-2:]
    for key in ('accuracy', 'loss', 'per_class_accuracy', 'num_examples'):
        assert small[key] == large[key] == _history(straight)[-1][key]


# Continuous evaluation.

@pytest.mark.slow
def test_continuous_eval_beside_a_trainer_evaluates_each_checkpoint_once(tmp_path, caplog):
    model_dir = str(tmp_path / 'run')
    common = ['--dataset=synthetic', '--model_dir=' + model_dir, '--max_steps=120']
    logs = {name: open(str(tmp_path / (name + '.log')), 'w') for name in ('eval', 'train')}
    procs = {
        # Started first: it waits for the trainer's checkpoints.
        'eval': subprocess.Popen([sys.executable, RUN_TRAIN, '--mode=continuous_eval',
                                  '--eval_timeout_secs=90'] + common,
                                 cwd=REPO, stdout=logs['eval'], stderr=subprocess.STDOUT),
        'train': subprocess.Popen([sys.executable, RUN_TRAIN, '--mode=train', '--seed=3',
                                   '--save_checkpoints_steps=20'] + common,
                                  cwd=REPO, stdout=logs['train'], stderr=subprocess.STDOUT)}
    try:
        statuses = {name: proc.wait(timeout=180) for name, proc in procs.items()}
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=30)
        for log in logs.values():
            log.close()
    output = {name: open(str(tmp_path / (name + '.log'))).read() for name in logs}
    assert statuses == {'eval': 0, 'train': 0}, output['eval'][-3000:]
    assert [line['global_step'] for line in _history(model_dir)] == [20, 40, 60, 80, 100, 120]
    assert 'The checkpoint at --max_steps=120 is evaluated; stopping.' in output['eval']
    # It says what it waits for; each evaluation is one line, the per-class table the last's.
    assert 'Waiting for a checkpoint in %s (for up to 90 s' % model_dir in output['eval']
    assert output['eval'].count(' red-horizontal ') == 1
    assert output['eval'].index(' red-horizontal ') > output['eval'].index(
        'Evaluation of model.ckpt-120')

    # Restarted, it skips what it has; with no new checkpoint it stops after its timeout.
    with caplog.at_level(logging.INFO, logger='absl'):
        assert _run('--mode=continuous_eval', *common) == 0
        assert len(_history(model_dir)) == 6
        assert ('already holds results for steps 20, 40, 60, 80, 100, 120; they are not '
                'evaluated again.') in caplog.text
        assert _run('--mode=continuous_eval', '--eval_timeout_secs=1',
                    *(common[:-1] + ['--max_steps=500'])) == 0
        assert 'No new checkpoint in %s for 1 s' % model_dir in caplog.text
    with caplog.at_level(logging.ERROR, logger='absl'):
        assert _run('--mode=continuous_eval', '--dataset=synthetic', '--eval_timeout_secs=1',
                    '--model_dir=' + str(tmp_path / 'nothing')) == 1
    assert 'no checkpoint appeared in %s within --eval_timeout_secs=1' % (
        tmp_path / 'nothing') in caplog.text


def _toy_checkpoints(model_dir, steps, value=0.0):
    with tf.Graph().as_default():
        tf.compat.v1.Variable(np.full(4, value, np.float32), name='v')
        saver = tf.compat.v1.train.Saver(max_to_keep=None)
        with tf.compat.v1.Session() as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            for step in steps:
                saver.save(sess, os.path.join(model_dir, 'model.ckpt'), global_step=step,
                           write_meta_graph=False)


def test_results_recorded_for_other_weights_are_not_reused(tmp_path, caplog):
    model_dir = str(tmp_path / 'run')
    _toy_checkpoints(model_dir, [1, 2, 3, 4], value=1.0)
    ours = {step: checkpoints.fingerprint(os.path.join(model_dir, 'model.ckpt-%d' % step))
            for step in (1, 2)}
    _toy_checkpoints(str(tmp_path / 'other'), [3])
    theirs = checkpoints.fingerprint(str(tmp_path / 'other' / 'model.ckpt-3'))
    assert theirs not in ours.values()  # other weights, another fingerprint
    lines = [{'global_step': 1, 'checkpoint': 'model.ckpt-1', 'checkpoint_fingerprint': ours[1]},
             # an earlier run's result for the name step 3 has now:
             {'global_step': 3, 'checkpoint': 'model.ckpt-3', 'checkpoint_fingerprint': theirs},
             {'global_step': 4, 'checkpoint': 'model.ckpt-4'},  # an older version's line
             {'global_step': 9, 'checkpoint': 'model.ckpt-9', 'checkpoint_fingerprint': theirs}]
    with open(os.path.join(model_dir, evaluate.EVAL_HISTORY_FILE), 'w') as f:
        f.writelines(json.dumps(line) + '\n' for line in lines)
    with caplog.at_level(logging.WARNING, logger='absl'):
        # Step 9's checkpoint is gone (rotated away): its line still counts.
        assert evaluate.evaluated_steps(model_dir) == {1, 4, 9}
    assert ('holds results for model.ckpt-3 of other weights than the checkpoints now there'
            in caplog.text)


class _StopPolling(Exception):
    pass


def test_continuous_eval_reads_each_checkpoint_once_while_it_waits(tmp_path, monkeypatch):
    model_dir = str(tmp_path / 'run')
    _toy_checkpoints(model_dir, [1, 2, 3])
    for suffix in ('.index', '.data-00000-of-00001'):  # a damaged checkpoint at step 4
        with open(os.path.join(model_dir, 'model.ckpt-4' + suffix), 'wb') as f:
            f.write(b'not a checkpoint')
    reads, evaluated, polls = [], [], []

    def counted(folder, name, file_names):
        reads.append(name)
        return what_is_wrong(folder, name, file_names)

    def poll(seconds):
        polls.append(seconds)
        if len(polls) == 3:  # a file of the damaged checkpoint changes: it is read again
            with open(os.path.join(model_dir, 'model.ckpt-4.index'), 'ab') as f:
                f.write(b'!')
        if len(polls) == 6:
            raise _StopPolling()

    class FakeEvaluator(object):
        def __init__(self, *args):
            pass

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def evaluate(self, path, per_class_table=True):
            evaluated.append(os.path.basename(path))
            return {'global_step': checkpoints.step_in_name(os.path.basename(path))}

    what_is_wrong = checkpoints.what_is_wrong
    monkeypatch.setattr(checkpoints, 'what_is_wrong', counted)
    monkeypatch.setattr(evaluate, 'Evaluator', FakeEvaluator)
    monkeypatch.setattr(interrupts, 'sleep', poll)
    with pytest.raises(_StopPolling):
        continuous_eval.continuous_eval(model_dir, None, 8, max_steps=100, timeout_secs=3600)
    assert evaluated == ['model.ckpt-1', 'model.ckpt-2', 'model.ckpt-3']
    # Six polls: the complete checkpoints read once, the damaged one once and once after the
    # change (reading all four at every poll would be 24 reads).
    assert sorted(reads) == ['model.ckpt-1', 'model.ckpt-2', 'model.ckpt-3', 'model.ckpt-4',
                             'model.ckpt-4'], reads


# Results with their spread.

@pytest.mark.slow
def test_summarize_three_seeds_and_refuse_a_run_that_differs(tmp_path, capsys):
    runs = []
    for seed, learning_rate in ((1, 0.001), (2, 0.001), (3, 0.001), (1, 0.002)):
        runs.append(str(tmp_path / ('seed%d_lr%g' % (seed, learning_rate))))
        assert _run('--dataset=synthetic', '--model_dir=' + runs[-1], '--max_steps=20',
                    '--save_checkpoints_steps=10', '--seed=%d' % seed,
                    '--learning_rate=%g' % learning_rate) == 0
    capsys.readouterr()
    summary = str(tmp_path / 'summary.json')
    assert summarize.main(runs[:3] + ['--json', summary]) == 0
    table = capsys.readouterr().out
    assert table.startswith('3 runs (seeds 1, 2, 3): dataset synthetic')
    with open(summary) as f:
        rows = json.load(f)['rows']
    assert [row['step'] for row in rows] == [10, 20]
    finals = [_history(run)[-1]['accuracy'] for run in runs[:3]]
    assert rows[-1]['accuracy']['mean'] == pytest.approx(np.mean(finals))
    assert rows[-1]['accuracy']['std'] == pytest.approx(np.std(finals, ddof=1))
    assert rows[-1]['accuracy']['min'] == min(finals)

    assert summarize.main(runs) == 1
    refused = capsys.readouterr().out
    assert '%s: --learning_rate 0.002 vs 0.001' % runs[3] in refused
    assert 'mean ± std' not in refused
