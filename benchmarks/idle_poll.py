"""CPU that `--mode=continuous_eval` spends waiting beside many checkpoints, per poll.

    python benchmarks/idle_poll.py [--checkpoints=200]

Writes that many checkpoints of the real model's size into a temporary folder, then times one
poll of today's watcher (reads only what it has not seen) against a full `checkpoints.scan`
(every tensor of every checkpoint, what each poll did before), in the same run. A poll runs
once a second (continuous_eval.POLL_SECS), so seconds per poll is the share of a core.
"""

import os
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import tensorflow as tf  # noqa: E402
from absl import app, flags  # noqa: E402

from squeezenet_v1 import model as squeezenet  # noqa: E402
from squeezenet_v1.evaluation import continuous_eval  # noqa: E402
from squeezenet_v1.training import checkpoints  # noqa: E402

flags.DEFINE_integer('checkpoints', 200, 'How many checkpoints the folder holds.')
flags.DEFINE_integer('polls', 20, 'Polls timed for each.')


def _write_checkpoints(model_dir, count):
    with tf.Graph().as_default():
        images = tf.compat.v1.placeholder(tf.float32, [1, 24, 24, 3])
        squeezenet.SqueezeNetModel(original_dim=32, resize_dim=24, output_size=10).model_layers(
            images, is_training=False)
        saver = tf.compat.v1.train.Saver(max_to_keep=None)
        with tf.compat.v1.Session() as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            for step in range(1, count + 1):
                saver.save(sess, checkpoints.checkpoint_prefix(model_dir, step),
                           write_meta_graph=False)


def _cpu_per_poll(poll, polls):
    start = time.process_time()
    for _ in range(polls):
        poll()
    return (time.process_time() - start) / polls


def main(_):
    tf.compat.v1.logging.set_verbosity(tf.compat.v1.logging.WARN)
    folder = tempfile.mkdtemp(prefix='idle_poll-')
    try:
        _write_checkpoints(folder, flags.FLAGS.checkpoints)
        done = set(range(1, flags.FLAGS.checkpoints + 1))  # all evaluated: an idle wait
        unreadable = {}
        watcher = _cpu_per_poll(
            lambda: list(continuous_eval._new_complete_checkpoints(folder, done, unreadable)),
            flags.FLAGS.polls)
        full_scan = _cpu_per_poll(lambda: checkpoints.scan(folder), max(2, flags.FLAGS.polls // 10))
        print('%d checkpoints, CPU seconds per poll (one poll a second = share of a core):'
              % flags.FLAGS.checkpoints)
        print('  continuous_eval watcher  %.4f s  (%.2f%% of a core)' % (watcher, 100 * watcher))
        print('  full scan (before)       %.4f s  (%.1f%% of a core)' % (full_scan,
                                                                         100 * full_scan))
        print('  ratio                    %.0fx less' % (full_scan / max(watcher, 1e-9)))
    finally:
        shutil.rmtree(folder)


if __name__ == '__main__':
    app.run(main)
