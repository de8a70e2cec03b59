"""Checkpoints from the wild: inspect, convert and warm-start from TF1 checkpoints that are not
exactly ours (a scope around the model, moving averages of the weights, another class count)."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from conftest import REPO, run_in_process, write_checkpoint_of_output_size
from squeezenet_v1 import SqueezeNetModel
from squeezenet_v1.model_dir import checkpoint_tool
from squeezenet_v1.model_dir import checkpoints
from squeezenet_v1.model_dir import foreign

tf1 = tf.compat.v1
_IMAGES = np.random.RandomState(0).rand(8, 24, 24, 3).astype(np.float32)


def write_scoped_checkpoint(folder, decay=0.9, steps=3):
    """What TF1 code around the model wrote: the notebook's class inside
    tf.variable_scope('squeezenet'), Adam, and an ExponentialMovingAverage of the weights kept
    as the TF1 CIFAR-10 tutorial keeps it; returns the checkpoint's prefix."""
    with tf.Graph().as_default():
        tf1.set_random_seed(1)
        labels = tf.constant(np.arange(8) % 10, tf.int32)
        with tf1.variable_scope('squeezenet'):
            model = SqueezeNetModel(32, 24, 10)
            model.run_model_setup(tf.constant(_IMAGES), labels, is_training=True)
        averages = tf1.train.ExponentialMovingAverage(decay)
        with tf.control_dependencies([model.train_op]):
            step = averages.apply(tf1.trainable_variables())
        with tf1.Session() as sess:
            sess.run(tf1.global_variables_initializer())
            for _ in range(steps):
                sess.run(step)
            return tf1.train.Saver().save(sess, os.path.join(folder, 'model.ckpt'),
                                          global_step=model.global_step)


def source_logits(prefix, averages):
    """The source's eval logits the TF1 way: its weights, or its averages (cifar10_eval.py's
    variables_to_restore)."""
    with tf.Graph().as_default():
        with tf1.variable_scope('squeezenet'):
            logits = SqueezeNetModel(32, 24, 10).model_layers(tf.constant(_IMAGES),
                                                             is_training=False)
        names = (tf1.train.ExponentialMovingAverage(0.9).variables_to_restore() if averages
                 else {v.op.name: v for v in tf1.global_variables()})
        with tf1.Session() as sess:
            tf1.train.Saver(names).restore(sess, prefix)
            return sess.run(logits)


def our_logits(model_dir):
    """The eval logits of squeezenet_v1's own graph from the latest checkpoint in model_dir."""
    with tf.Graph().as_default():
        logits = SqueezeNetModel(32, 24, 10).model_layers(tf.constant(_IMAGES), is_training=False)
        tf1.train.get_or_create_global_step()
        variables = tf1.global_variables()
        with tf1.Session() as sess:
            checkpoints.restore(sess, tf1.train.Saver(variables),
                                checkpoints.latest_checkpoint(model_dir), variables)
            return sess.run(logits)


@pytest.fixture(scope='module')
def scoped(tmp_path_factory):
    return write_scoped_checkpoint(str(tmp_path_factory.mktemp('scoped')))


def _tool(capsys, *args):
    status = checkpoint_tool.main(list(args))
    out, err = capsys.readouterr()
    return status, out, err


def test_inspect_names_what_is_missing_then_loads_with_the_map(scoped, capsys):
    status, out, _ = _tool(capsys, 'inspect', os.path.dirname(scoped))
    assert status == 1
    lines = out.splitlines()
    assert 'does not load into the model' in lines[0] and lines[1].startswith('  missing')
    assert 'squeezenet/conv1/kernel' in out
    status, out, _ = _tool(capsys, 'inspect', scoped, '--map=squeezenet/:')
    assert status == 0 and 'loads into the model: 28 weights matched' in out
    assert 'squeezenet/conv1/kernel/ExponentialMovingAverage (ExponentialMovingAverage' in out
    assert 'squeezenet/conv1/kernel/Adam (Adam slot)' in out
    assert "squeezenet/beta1_power (Adam's beta1_power)" in out


@pytest.mark.parametrize('averages', [True, False], ids=['moving_averages', 'weights'])
def test_convert_gives_the_sources_logits(scoped, tmp_path, capsys, averages):
    out_dir = str(tmp_path / 'converted')
    # Adam's slots were made inside the scope too, which names them squeezenet/squeezenet/...
    args = ['convert', scoped, out_dir, '--map=squeezenet/squeezenet/:', '--map=squeezenet/:']
    status, out, _ = _tool(capsys, *(args + (['--moving_averages'] if averages else [])))
    assert status == 0, out
    np.testing.assert_allclose(our_logits(out_dir), source_logits(scoped, averages), rtol=0,
                               atol=1e-5)
    assert sorted(os.listdir(out_dir)) == ['checkpoint', 'model.ckpt-3.data-00000-of-00001',
                                           'model.ckpt-3.index']
    names = dict(tf1.train.list_variables(os.path.join(out_dir, 'model.ckpt-3')))
    assert 'conv1/kernel' in names and names['global_step'] == []
    assert ('conv1/kernel/Adam' in names) == (not averages)  # slots map, with the weights only


@pytest.mark.slow
def test_a_converted_checkpoint_is_a_model_dir_eval_and_training_read(scoped, tmp_path, capsys,
                                                                       caplog):
    import logging
    out_dir = str(tmp_path / 'converted')
    assert _tool(capsys, 'convert', scoped, out_dir, '--map=squeezenet/:',
                 '--moving_averages')[0] == 0
    assert run_in_process('--mode=eval', '--dataset=synthetic', '--model_dir=' + out_dir) == 0
    with caplog.at_level(logging.INFO, logger='absl'):
        assert run_in_process('--mode=train', '--dataset=synthetic', '--max_steps=4',
                              '--model_dir=' + out_dir) == 0
    assert 'it holds no optimizer state, so Adam starts fresh' in caplog.text
    assert checkpoints.global_step_stored_in(checkpoints.latest_checkpoint(out_dir)) == 4


@pytest.mark.parametrize('args, message', [
    (['--map=nothing/:'], '--map=nothing/: matches no variable'),
    (['--map=squeezenet'], 'is not OLD:NEW'),
    (['--map=squeezenet/conv1/kernel/ExponentialMovingAverage:elsewhere',
      '--map=squeezenet/:', '--moving_averages'], 'has no moving average of conv1/kernel'),
], ids=['map_matches_nothing', 'map_malformed', 'an_average_missing'])
def test_a_bad_conversion_is_one_line_and_writes_nothing(scoped, tmp_path, capsys, args,
                                                         message):
    status, out, err = _tool(capsys, 'convert', scoped, str(tmp_path / 'out'), *args)
    assert status == 1 and message in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / 'out').exists() and os.listdir(str(tmp_path)) == []


def test_convert_refuses_a_folder_in_use_or_its_own_input(scoped, tmp_path, capsys):
    (tmp_path / 'taken').mkdir()
    (tmp_path / 'taken' / 'notes.txt').write_text('mine')
    status, _, err = _tool(capsys, 'convert', scoped, str(tmp_path / 'taken'), '--map=squeezenet/:')
    assert status == 1 and 'is not an empty folder' in err
    assert os.listdir(str(tmp_path / 'taken')) == ['notes.txt']
    status, _, err = _tool(capsys, 'convert', scoped, os.path.dirname(scoped),
                           '--map=squeezenet/:')
    assert status == 1 and 'holds the checkpoint being converted' in err


@pytest.mark.parametrize('damage, message', [
    (lambda prefix: open(prefix + '.data-00000-of-00001', 'r+b').truncate(100), 'cannot be read'),
    (lambda prefix: os.remove(prefix + '.index'), 'is not a checkpoint'),
    (lambda prefix: open(prefix + '.index', 'wb').write(b'garbage'), 'cannot be read'),
], ids=['truncated_data', 'no_index', 'garbage_index'])
def test_a_damaged_source_is_one_line(tmp_path, capsys, damage, message):
    prefix = write_scoped_checkpoint(str(tmp_path / 'src'), steps=1)
    damage(prefix)
    status, _, err = _tool(capsys, 'convert', prefix, str(tmp_path / 'out'), '--map=squeezenet/:')
    assert status == 1 and message in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / 'out').exists()


def test_the_command_is_installed_and_answers_help():
    proc = subprocess.run([sys.executable, '-m', 'squeezenet_v1.model_dir.checkpoint_tool',
                           '--help'], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and '--moving_averages' in proc.stdout and '--map' in proc.stdout


# Warm start.

@pytest.fixture(scope='module')
def trained(tmp_path_factory):
    model_dir = str(tmp_path_factory.mktemp('trained') / 'run')
    assert run_in_process('--dataset=synthetic', '--mode=train', '--max_steps=30', '--seed=5',
                          '--save_checkpoints_steps=30', '--model_dir=' + model_dir) == 0
    return model_dir


def _weights(prefix):
    reader = tf1.train.load_checkpoint(prefix)
    return {name: reader.get_tensor(name) for name in reader.get_variable_to_shape_map()}


@pytest.mark.slow
def test_a_warm_start_takes_every_weight_but_the_excluded_and_starts_adam_fresh(trained,
                                                                                 tmp_path):
    model_dir = str(tmp_path / 'finetuned')
    assert run_in_process('--dataset=synthetic', '--mode=train', '--max_steps=1', '--seed=6',
                          '--warm_start_from=' + trained, '--warm_start_exclude=final_conv',
                          '--model_dir=' + model_dir) == 0
    source = _weights(checkpoints.latest_checkpoint(trained))
    after = _weights(checkpoints.latest_checkpoint(model_dir))
    assert after['global_step'] == 1
    np.testing.assert_allclose(after['beta1_power'], 0.9 ** 2, rtol=1e-6)  # one fresh step
    for name, value in after.items():
        if checkpoints.is_optimizer_variable(name) or name == 'global_step':
            continue
        step = np.max(np.abs(value - source[name]))
        if name == 'final_conv/kernel':
            assert step > 0.01, name  # started fresh: nowhere near the source's
        elif name == 'final_conv/bias':
            assert np.max(np.abs(value)) <= 0.001 * 1.01  # zeros, as tf.layers starts, + a step
        else:
            assert step <= 0.001 * 1.01, (name, step)  # one Adam step of lr 0.001 at most
    with open(os.path.join(model_dir, 'flags.json')) as f:
        recorded = json.load(f)
    assert recorded['warm_start']['checkpoint'].endswith('model.ckpt-30')
    assert recorded['warm_start']['fingerprint'] == checkpoints.fingerprint(
        checkpoints.latest_checkpoint(trained))
    assert recorded['warm_start']['fresh'] == ['final_conv/bias', 'final_conv/kernel']
    with open(os.path.join(model_dir, 'runs.jsonl')) as f:
        assert json.loads(f.readline())['warm_start'] == recorded['warm_start']


@pytest.mark.slow
def test_a_seeded_warm_started_run_is_repeatable_bit_for_bit(trained, tmp_path):
    ends = []
    for name in ('a', 'b'):
        model_dir = str(tmp_path / name)
        assert run_in_process('--dataset=synthetic', '--mode=train', '--max_steps=3', '--seed=6',
                              '--warm_start_from=' + trained, '--model_dir=' + model_dir) == 0
        ends.append(_weights(checkpoints.latest_checkpoint(model_dir)))
    assert all(np.array_equal(ends[0][name], ends[1][name]) for name in ends[0])


def test_a_warm_start_that_does_not_fit_is_refused_before_any_file(tmp_path, caplog):
    import logging
    source = str(tmp_path / 'five')
    os.makedirs(source)
    write_checkpoint_of_output_size(source, 5)  # five classes; the synthetic set has ten
    model_dir = tmp_path / 'run'
    with caplog.at_level(logging.ERROR, logger='absl'):
        assert run_in_process('--dataset=synthetic', '--mode=train', '--max_steps=1',
                              '--warm_start_from=' + source, '--model_dir=' + str(model_dir)) == 1
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and 'final_conv/bias is [5] float32 there but [10]' in errors[0]
    assert '--warm_start_exclude' in errors[0] and not model_dir.exists()
    assert run_in_process('--dataset=synthetic', '--mode=train', '--max_steps=1',
                          '--warm_start_from=' + source, '--warm_start_exclude=final_conv',
                          '--model_dir=' + str(model_dir)) == 0
    caplog.clear()
    with caplog.at_level(logging.ERROR, logger='absl'):
        assert run_in_process('--dataset=synthetic', '--mode=train', '--max_steps=1',
                              '--warm_start_from=' + source, '--warm_start_exclude=fire9',
                              '--model_dir=' + str(tmp_path / 'other')) == 1
    assert '--warm_start_exclude=fire9 is no scope of the model' in caplog.text


@pytest.mark.slow
def test_a_model_dir_with_checkpoints_resumes_and_ignores_the_warm_start(trained, tmp_path,
                                                                         caplog):
    import logging
    import shutil
    model_dir = str(tmp_path / 'run')
    shutil.copytree(trained, model_dir)
    with caplog.at_level(logging.WARNING, logger='absl'):
        assert run_in_process('--dataset=synthetic', '--mode=train', '--max_steps=31',
                              '--warm_start_from=/nonexistent/ckpt',
                              '--model_dir=' + model_dir) == 0
    assert 'resuming from it; --warm_start_from /nonexistent/ckpt is ignored' in caplog.text


def test_warm_start_flags_go_with_training_only():
    from test_trust import _refusal
    assert 'starts a training run' in _refusal('--mode=eval', '--warm_start_from=x')
    assert 'go with it' in _refusal('--warm_start_exclude=final_conv')


def test_convert_refuses_a_step_that_is_no_count_and_warm_start_refuses_nan(tmp_path, capsys):
    from test_trust import _rewritten
    base = write_checkpoint_of_output_size(str(tmp_path), 10)
    negative = _rewritten(base, str(tmp_path / 'neg' / 'model.ckpt-1'),
                          lambda t: t.__setitem__('global_step', np.int64(-1)))
    status, _, err = _tool(capsys, 'convert', negative, str(tmp_path / 'out'))
    assert status == 1 and 'global_step = -1, not a step count' in err
    assert not (tmp_path / 'out').exists()
    nan = _rewritten(base, str(tmp_path / 'nan' / 'model.ckpt-1'),
                     lambda t: t.__setitem__('conv1/kernel', t['conv1/kernel'] * np.nan))
    with pytest.raises(foreign.ForeignCheckpointError, match='not finite .* in conv1/kernel'):
        foreign.warm_start(nan, [], [], 10)
