"""What a resumable seeded run costs: training images/s with and without --seed, same process.

    python benchmarks/benchmark_seeded.py [--steps=300] [--rounds=5] [--batch_size=32]

A seeded run turns on op determinism and reads `input_pipeline.resumable_dataset` (data order,
crops, flips and dropout drawn from (seed, step)); an unseeded one is the notebook's pipeline.
Rounds alternate between the two, each a fresh graph and session timed over `--steps` steps
after 20 warm-up steps; the median of each and the ratio's spread over rounds are printed.
"""

import argparse
import os
import statistics
import sys
import time

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import tensorflow as tf  # noqa: E402

from squeezenet_v1.data import datasets  # noqa: E402

from squeezenet_v1.training import session_options  # noqa: E402

from squeezenet_v1.training.graph import build_training_graph, op_determinism  # noqa: E402
from squeezenet_v1.training.loop import start_input  # noqa: E402

tf1 = tf.compat.v1
WARM_UP_STEPS = 20
LEARNING_RATE = 0.001  # run_train.py's default


def images_per_second(source, batch_size, steps, seed):
    with op_determinism(seed):
        training = build_training_graph(source, batch_size, LEARNING_RATE, seed=seed)
    with op_determinism(seed), tf1.Session(graph=training.graph,
                                           config=session_options.session_config()) as sess:
        sess.run(training.init_op)
        start_input(sess, training)
        run_step = sess.make_callable(training.fetches)
        for _ in range(WARM_UP_STEPS):
            run_step()
        started = time.perf_counter()
        for _ in range(steps):
            run_step()
        return steps * batch_size / (time.perf_counter() - started)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--steps', type=int, default=300)
    parser.add_argument('--rounds', type=int, default=5)
    parser.add_argument('--batch_size', type=int, default=32)
    args = parser.parse_args()
    source = datasets.prepare_split('synthetic', 'train', 'data', datasets.records_cache_dir())
    unseeded, seeded = [], []
    for _ in range(args.rounds):
        unseeded.append(images_per_second(source, args.batch_size, args.steps, None))
        seeded.append(images_per_second(source, args.batch_size, args.steps, 1))
    ratios = [s / u for s, u in zip(seeded, unseeded)]
    print('batch %d, %d rounds of %d steps, %d cores' % (args.batch_size, args.rounds, args.steps,
                                                        os.cpu_count()))
    print('unseeded (notebook pipeline)   %8.1f images/s (median)' % statistics.median(unseeded))
    print('seeded (resumable, determinism) %7.1f images/s (median)' % statistics.median(seeded))
    print('seeded / unseeded               %6.3f (rounds: %s)'
          % (statistics.median(ratios), ', '.join('%.3f' % r for r in ratios)))


if __name__ == '__main__':
    main()
