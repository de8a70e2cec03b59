"""Shared helpers: quiet TensorFlow, run run_train.py as a user would, build tiny CIFAR-10 files."""

import importlib
import importlib.util
import logging
import os
import pickle
import re
import subprocess
import sys
import tarfile

import numpy as np
import pytest

# TF_CPP_MIN_LOG_LEVEL is left as the user has it: the commands run here as they run for users
# (squeezenet_v1/__init__.py sets its default).

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RUN_TRAIN = os.path.join(REPO, 'run_train.py')

# The training loop's progress line: step, max_steps, epoch, loss, batch accuracy, examples/sec,
# sec/batch and the time left.
PROGRESS_LINE = re.compile(
    r'step (\d+)/(\d+) \(epoch (\d+\.\d)\), loss = (\d+\.\d{4}), batch accuracy = (\d\.\d{3}) '
    r'\((\d+\.\d) examples/sec; (\d+\.\d{3}) sec/batch; (\d+(?::\d\d)+) left\)')

ONNX_EXTRA = 'needs the onnx extra: pip install -e ".[onnx]"'
# Looked up once, before any test hides a module: export writes model.onnx with tf2onnx and
# onnx; eval and predict read it with onnxruntime.
ONNX_EXTRA_INSTALLED = all(importlib.util.find_spec(name)
                           for name in ('tf2onnx', 'onnx', 'onnxruntime'))


def pytest_runtest_setup(item):
    """A needs_onnx test is skipped, naming the extra, where it is absent; under CI it fails,
    as CI installs the extra with the README's test command and must run those tests."""
    if item.get_closest_marker('needs_onnx') and not ONNX_EXTRA_INSTALLED:
        if os.environ.get('CI') == 'true':
            pytest.fail('%s (CI=true: CI installs it, so its tests must run)' % ONNX_EXTRA,
                        pytrace=False)
        pytest.skip(ONNX_EXTRA)


def run_train(*args, timeout=240, env=None):
    """Runs run_train.py in a subprocess; returns the CompletedProcess (stdout+stderr merged)."""
    full_env = dict(os.environ, **(env or {}))
    return subprocess.run([sys.executable, RUN_TRAIN] + list(args), cwd=REPO, env=full_env,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          timeout=timeout)


def run_in_process(*args):
    """runner.run in this process on flags parsed as run_train.py parses them; returns the status.

    TensorFlow starts once for all such runs. Flag values are restored afterwards, and absl's
    logger level too (parsing --verbosity sets it; INFO lines reach caplog meanwhile).
    """
    from absl import flags
    from absl.testing import flagsaver
    importlib.import_module('run_train')  # defines run_train.py's flags on absl's FLAGS
    from squeezenet_v1 import runner
    absl_logger = logging.getLogger('absl')
    level = absl_logger.level
    try:
        with flagsaver.flagsaver():
            flags.FLAGS.unparse_flags()
            flags.FLAGS(['run_train.py', '--verbosity=0'] + list(args))
            return runner.run(flags.FLAGS)
    finally:
        absl_logger.setLevel(level)


def train_in_process(model_dir, source, seed=None, run_record=None, after_save=None, **settings):
    """trainer.train with run_train.py's flag defaults for every loop setting not given."""
    from squeezenet_v1.training import loop, trainer
    values = dict(batch_size=32, max_steps=10000, learning_rate=0.001, save_checkpoints_steps=1000,
                  keep_checkpoint_max=5, log_every_n_steps=100, save_summary_steps=100)
    values.update(settings)
    return trainer.train(model_dir, source, loop.LoopSettings(**values), seed=seed,
                         run_record=run_record, after_save=after_save)


def tiny_split(num, seed):
    """Random uint8 images (num, 3072) and labels 0-9 (num,)."""
    rng = np.random.RandomState(seed)
    images = rng.randint(0, 256, size=(num, 3072)).astype(np.uint8)
    labels = (np.arange(num) % 10).astype(np.uint8)
    return images, labels


def write_binary_release(data_dir, per_batch=4, test_size=5):
    """A tiny cifar-10-batches-bin/ with the official names; returns {file: (images, labels)}."""
    folder = os.path.join(data_dir, 'cifar-10-batches-bin')
    os.makedirs(folder, exist_ok=True)
    contents = {}
    names = ['data_batch_%d.bin' % i for i in range(1, 6)] + ['test_batch.bin']
    for i, name in enumerate(names):
        images, labels = tiny_split(test_size if name == 'test_batch.bin' else per_batch, i)
        records = np.concatenate([labels[:, None], images], axis=1)
        with open(os.path.join(folder, name), 'wb') as f:
            f.write(records.tobytes())
        contents[name] = (images, labels)
    with open(os.path.join(folder, 'batches.meta.txt'), 'w') as f:
        f.write('\n'.join(['airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog',
                           'horse', 'ship', 'truck']) + '\n\n')
    return contents


def write_python_release(data_dir, per_batch=4, test_size=5):
    """A tiny cifar-10-batches-py/ pickled like the original (protocol 2, bytes keys)."""
    folder = os.path.join(data_dir, 'cifar-10-batches-py')
    os.makedirs(folder, exist_ok=True)
    contents = {}
    names = ['data_batch_%d' % i for i in range(1, 6)] + ['test_batch']
    for i, name in enumerate(names):
        images, labels = tiny_split(test_size if name == 'test_batch' else per_batch, 10 + i)
        batch = {b'batch_label': b'batch', b'labels': [int(x) for x in labels],
                 b'data': images, b'filenames': [b'x.png'] * len(labels)}
        with open(os.path.join(folder, name), 'wb') as f:
            pickle.dump(batch, f, protocol=2)
        contents[name] = (images, labels)
    meta = {b'label_names': [n.encode() for n in ('plane', 'car', 'bird', 'cat', 'deer', 'dog',
                                                   'frog', 'horse', 'ship', 'truck')],
            b'num_cases_per_batch': per_batch, b'num_vis': 3072}
    with open(os.path.join(folder, 'batches.meta'), 'wb') as f:
        pickle.dump(meta, f, protocol=2)
    return contents


def make_archive(source_dir, folder, archive_path):
    """Packs source_dir/folder as archive_path (.tar.gz), the way the official archives are."""
    with tarfile.open(archive_path, 'w:gz') as tar:
        tar.add(os.path.join(source_dir, folder), arcname=folder)
    return archive_path


# The one trained run the suite shares (read it, or copy it to change it): run_train.py as a user
# runs it, seeded, 300 steps with a checkpoint and an evaluation every 100.
SEEDED_RUN = ['--dataset=synthetic', '--seed=11', '--max_steps=300', '--save_checkpoints_steps=100',
              '--mode=train_and_eval', '--save_summary_steps=50']


@pytest.fixture(scope='session')
def seeded_run(tmp_path_factory):
    """(model_dir, what run_train.py printed) of SEEDED_RUN, trained once per session."""
    model_dir = str(tmp_path_factory.mktemp('seeded_run') / 'run')
    result = run_train('--model_dir=' + model_dir, *SEEDED_RUN)
    assert result.returncode == 0, result.stdout[-3000:]
    return model_dir, result.stdout


@pytest.fixture
def binary_release(tmp_path):
    data_dir = tmp_path / 'data'
    return str(data_dir), write_binary_release(str(data_dir))


def write_checkpoint_of_output_size(model_dir, output_size):
    """model_dir/model.ckpt-1 of an untrained SqueezeNetModel with `output_size` classes."""
    import tensorflow as tf
    from squeezenet_v1 import SqueezeNetModel
    tf1 = tf.compat.v1
    with tf.Graph().as_default():
        SqueezeNetModel(32, 24, output_size).model_layers(
            tf1.placeholder(tf.float32, [None, 24, 24, 3]), is_training=False)
        tf1.train.get_or_create_global_step()
        with tf1.Session() as sess:
            sess.run(tf1.global_variables_initializer())
            return tf1.train.Saver().save(sess, os.path.join(model_dir, 'model.ckpt'),
                                          global_step=1)
