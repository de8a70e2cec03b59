"""squeezenet_v1 against the notebook's own class on the real tf.compat.v1.layers (tf-keras)."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from conftest import REPO
import notebook_original
from squeezenet_v1 import SqueezeNetModel
from squeezenet_v1.model_dir import checkpoints

tf1 = tf.compat.v1


@pytest.fixture(scope='module')
def original_run(tmp_path_factory):
    """Runs the notebook's class in a subprocess with TF_USE_LEGACY_KERAS=1 (test-only tf-keras)."""
    out_dir = str(tmp_path_factory.mktemp('original'))
    env = dict(os.environ, TF_USE_LEGACY_KERAS='1')
    proc = subprocess.run([sys.executable, os.path.join(REPO, 'tests', 'notebook_original.py'),
                           out_dir], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-4000:]
    with open(os.path.join(out_dir, 'original.json')) as f:
        info = json.load(f)
    info['eval_logits'] = np.load(os.path.join(out_dir, 'eval_logits.npy'))
    info['tensor_eval_probs'] = np.load(os.path.join(out_dir, 'tensor_eval_logits.npy'))
    return info


def _our_training_checkpoint(path):
    images, labels = notebook_original.fixed_inputs()
    with tf.Graph().as_default():
        inputs = tf1.placeholder(tf.float32, [None, 24, 24, 3])
        label_input = tf1.placeholder(tf.int32, [None])
        model = SqueezeNetModel(32, 24, 10)
        model.run_model_setup(inputs, label_input, is_training=True)
        saver = tf1.train.Saver()
        with tf1.Session() as sess:
            sess.run(tf1.global_variables_initializer())
            sess.run(model.train_op, {inputs: images, label_input: labels})
            return saver.save(sess, path, global_step=model.global_step)


def test_same_variable_names_and_shapes_including_adam_and_global_step(original_run, tmp_path):
    ours = dict(tf1.train.list_variables(_our_training_checkpoint(str(tmp_path / 'ours.ckpt'))))
    theirs = dict(tf1.train.list_variables(original_run['checkpoint']))
    assert ours == theirs
    assert 'global_step' in ours and 'conv1/kernel/Adam_1' in ours and 'beta2_power' in ours
    assert ours['fire4/expand3x3/kernel'] == [3, 3, 32, 128]


def test_original_checkpoint_restores_with_same_eval_logits(original_run):
    images, _ = notebook_original.fixed_inputs()
    with tf.Graph().as_default():
        inputs = tf1.placeholder(tf.float32, [None, 24, 24, 3])
        model = SqueezeNetModel(32, 24, 10)
        logits = model.model_layers(inputs, is_training=False)
        global_step = tf1.train.get_or_create_global_step()
        variables = tf1.global_variables()
        saver = tf1.train.Saver(variables)
        with tf1.Session() as sess:
            checkpoints.restore(sess, saver, original_run['checkpoint'], variables)
            ours = sess.run(logits, {inputs: images})
            assert sess.run(global_step) == 1
    assert ours.shape == (8, 10)
    np.testing.assert_allclose(ours, original_run['eval_logits'], rtol=0, atol=1e-5)
    # A real step was taken: the logits are not those of an untouched, zero-bias model.
    assert np.abs(original_run['eval_logits']).max() > 0


def test_forward_graph_has_the_originals_ops(original_run):
    with tf.Graph().as_default() as graph:
        inputs = tf1.placeholder(tf.float32, [None, 24, 24, 3])
        logits = SqueezeNetModel(32, 24, 10).model_layers(inputs, is_training=False)
        tf.nn.softmax(logits, name='probs')
    assert notebook_original.forward_op_names(graph) == original_run['forward_ops']


def test_boolean_tensor_is_training_as_tf1_code_used_it(original_run, tmp_path):
    images, labels = notebook_original.fixed_inputs()
    with tf.Graph().as_default():
        inputs = tf1.placeholder(tf.float32, [None, 24, 24, 3])
        label_input = tf1.placeholder(tf.int32, [None])
        is_training = tf1.placeholder_with_default(False, [])
        model = SqueezeNetModel(32, 24, 10)
        model.run_model_setup(inputs, label_input, is_training)
        assert model.train_op is not None
        variables = tf1.global_variables()
        saver = tf1.train.Saver(variables)
        with tf1.Session() as sess:
            sess.run(tf1.global_variables_initializer())
            sess.run(model.train_op, {inputs: images, label_input: labels, is_training: True})
            ours = saver.save(sess, str(tmp_path / 'tensor.ckpt'), global_step=model.global_step)
            checkpoints.restore(sess, saver, original_run['tensor_checkpoint'], variables)
            # is_training defaults to False: dropout is off, so the outputs are deterministic.
            probs = sess.run(model.probs, {inputs: images})
    assert dict(tf1.train.list_variables(ours)) == dict(
        tf1.train.list_variables(original_run['tensor_checkpoint']))
    np.testing.assert_allclose(probs, original_run['tensor_eval_probs'], rtol=0, atol=1e-6)


def test_the_notebooks_two_argument_call_trains():
    with tf.Graph().as_default():
        model = SqueezeNetModel(32, 24, 10)
        model.run_model_setup(tf1.placeholder(tf.float32, [None, 24, 24, 3]),
                              tf1.placeholder(tf.int32, [None]))
        assert model.train_op is not None
        assert any(v.op.name.endswith('/Adam') for v in tf1.global_variables())


@pytest.fixture(scope='module')
def training_equivalence(tmp_path_factory):
    """tests/migration_equivalence.py's differences (the migration guide's way), run once."""
    env = dict(os.environ, TF_USE_LEGACY_KERAS='1')
    proc = subprocess.run([sys.executable, os.path.join(REPO, 'tests', 'migration_equivalence.py'),
                           str(tmp_path_factory.mktemp('equivalence'))], env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.slow
@pytest.mark.parametrize('variant', ['bool', 'tensor', 'resumed'])
def test_training_follows_the_originals_trajectory_exactly(training_equivalence, variant):
    # 20 Adam steps with dropout on from the same weights, masks aligned by
    # DeterministicRandomTestTool: is_training a bool, a boolean tensor, and continued from a
    # checkpoint the original wrote.
    assert training_equivalence[variant] == {'loss': 0.0, 'weights': 0.0}


@pytest.mark.slow
def test_the_equivalence_check_fails_when_one_op_changes_its_numbers(training_equivalence):
    # 1e-6 added to the logits, one op: the losses and the weights then differ, so the
    # comparison above can fail.
    assert training_equivalence['perturbed']['loss'] > 0
    assert training_equivalence['perturbed']['weights'] > 0
