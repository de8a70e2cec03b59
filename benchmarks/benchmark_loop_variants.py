"""Would running the Session loop differently make it faster? Two ways, each against the default.

    python benchmarks/benchmark_loop_variants.py [--precision=fp32] [--batch_size=32]
                                                 [--rounds=6] [--seconds=2]

Both leave every step's ops as they are; what they change is how steps reach the cores:
  16 steps per Session.run  a tf.while_loop runs 16 training steps per call (TPUEstimator's
                            iterations_per_loop; Keras' steps_per_execution=16 does the same in
                            a tf.function), so Python and the session's per-call work happen
                            once per 16 steps, and the next step starts without waiting for them
  input on 1 thread         the notebook's per-record input map on one thread, one batch ahead,
                            tf.data's autotuner off (evaluation's input, which this round freed
                            of the autotuner that slowed one pass in three, is read so too)
against the default: one `Session.run` per step of [train_op, loss] over the notebook's
pipeline, as run_train.py trains (which also fetches the accuracy and the step). All three
graphs live in this process, each with its own session, and are timed in rounds that alternate
them (--seconds each), reported as images/s and the ratio to the default within each round,
median [min-max]. The sessions not being timed are idle but not paused: their input threads
fill their buffers at the start of another's window and then wait; every variant meets that
alike. With --precision=bf16 the loop's body (a function under TF2's control flow) gets the
same bf16 rewrite: it runs at the bf16 step's speed, not the fp32 one's.
"""

import argparse
import os
import statistics
import sys
import time

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import tensorflow as tf  # noqa: E402

from squeezenet_v1.data import cifar10  # noqa: E402

from squeezenet_v1.data import datasets  # noqa: E402

from squeezenet_v1.data import input_pipeline  # noqa: E402

from squeezenet_v1.training import session_options  # noqa: E402
from squeezenet_v1 import model as model_lib  # noqa: E402

tf1 = tf.compat.v1
STEPS_PER_RUN = 16
WARM_UP_CALLS = 20


def _one_thread_input(source, model, batch_size):
    """make_dataset(is_training=True), with its map on one thread and the autotuner off."""
    dataset = tf.data.FixedLengthRecordDataset(source.record_files, cifar10.RECORD_BYTES)
    dataset = dataset.shuffle(input_pipeline.SHUFFLE_BUFFER, reshuffle_each_iteration=True)

    @tf.autograph.experimental.do_not_convert  # AutoGraph would write its source into TMPDIR
    def preprocess(record):
        image_bytes, label = input_pipeline.parse_record(record)
        return model.image_preprocessing(image_bytes, True), label

    dataset = dataset.repeat().map(preprocess, num_parallel_calls=1)
    dataset = dataset.batch(batch_size, drop_remainder=True).prefetch(1)
    options = tf.data.Options()
    options.autotune.enabled = False
    return dataset.with_options(options)


def _default_step(source, batch_size, one_thread_input=False):
    """The notebook's graph as run_train.py builds it; (graph, fetches run per call, steps)."""
    graph = tf.Graph()
    with graph.as_default():
        model = model_lib.new_model(len(source.label_names))
        if one_thread_input:
            dataset = _one_thread_input(source, model, batch_size)
        else:
            dataset = input_pipeline.make_dataset(source.record_files, model, True, batch_size)
        images, labels = tf1.data.make_one_shot_iterator(dataset).get_next()
        model.run_model_setup(images, labels)
        init = tf1.global_variables_initializer()
    return graph, init, [model.train_op, model.loss], 1


def _looped_step(source, batch_size):
    """STEPS_PER_RUN of the notebook's steps inside one tf.while_loop.

    The variables and Adam's slots are made by a first step built outside the loop; the loop's
    steps reuse them. Each iteration starts only after the previous one's update (its output
    waits on the train op, and parallel_iterations=1).
    """
    graph = tf.Graph()
    with graph.as_default():
        model = model_lib.new_model(len(source.label_names))
        iterator = tf1.data.make_one_shot_iterator(input_pipeline.make_dataset(
            source.record_files, model, True, batch_size))
        global_step = tf1.train.get_or_create_global_step()
        adam = tf1.train.AdamOptimizer()

        def step():
            images, labels = iterator.get_next()
            with tf1.variable_scope(tf1.get_variable_scope(), reuse=tf1.AUTO_REUSE):
                logits = model.model_layers(images, True)
            loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(
                labels=labels, logits=logits))
            return adam.minimize(loss, global_step=global_step), loss

        step()  # makes the variables and slots

        def body(index, unused_loss):
            train_op, loss = step()
            with tf.control_dependencies([train_op]):
                return index + 1, tf.identity(loss)

        _, last_loss = tf.while_loop(lambda index, unused_loss: index < STEPS_PER_RUN, body,
                                     [tf.constant(0), tf.constant(0.0)], parallel_iterations=1)
        init = tf1.global_variables_initializer()
    return graph, init, last_loss, STEPS_PER_RUN


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--precision', default='fp32', choices=['fp32', 'bf16'])
    parser.add_argument('--batch_size', type=int, default=32)
    parser.add_argument('--rounds', type=int, default=6)
    parser.add_argument('--seconds', type=float, default=2.0)
    args = parser.parse_args()
    session_options.check_precision_supported(args.precision)
    source = datasets.prepare_split('synthetic', 'train', 'data', datasets.records_cache_dir())
    variants = {
        'default': _default_step(source, args.batch_size),
        '%d steps per Session.run' % STEPS_PER_RUN: _looped_step(source, args.batch_size),
        'input on 1 thread': _default_step(source, args.batch_size, one_thread_input=True),
    }
    runs = {}
    for name, (graph, init, fetches, steps) in variants.items():
        graph.finalize()
        sess = tf1.Session(graph=graph, config=session_options.session_config(args.precision))
        sess.run(init)
        runs[name] = (sess.make_callable(fetches), steps)
        for _ in range(max(1, WARM_UP_CALLS // steps)):
            runs[name][0]()
    rates = {name: [] for name in runs}
    for round_index in range(args.rounds):
        names = list(runs)
        names = names[round_index % len(names):] + names[:round_index % len(names)]
        for name in names:
            call, steps = runs[name]
            start, done = time.perf_counter(), 0
            while time.perf_counter() - start < args.seconds:
                call()
                done += steps
            rates[name].append(done * args.batch_size / (time.perf_counter() - start))
        print('round %d: %s' % (round_index + 1, ', '.join(
            '%s %.0f' % (name, rates[name][-1]) for name in runs)), flush=True)
    print('\n%s, batch %d, %d rounds of %g s; ratio to the default within each round'
          % (args.precision, args.batch_size, args.rounds, args.seconds))
    for name, values in rates.items():
        ratios = [value / default for value, default in zip(values, rates['default'])]
        print('  %-26s %6.0f images/s  %.3f [%.3f-%.3f]' % (
            name, statistics.median(values), statistics.median(ratios), min(ratios),
            max(ratios)))
    return 0


if __name__ == '__main__':
    sys.exit(main())
