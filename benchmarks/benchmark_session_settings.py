"""Would another session setting make the Session loop faster? Each against the default, paired.

    python benchmarks/benchmark_session_settings.py [--steps=200] [--rounds=3] [--batch_size=32]

The training step is oneDNN's kernels, chosen by TensorFlow; what the loop itself can still set
is the session: thread pools and grappler's passes. Each setting below trains the seeded graph
(a fresh graph and session per round, 30 untimed steps, then `--steps` timed), in rounds that
alternate the settings, and is reported as images/s (median) and its ratio to the default taken
within each round, median [min-max]. The losses of the untimed steps must be bit for bit the
default's: a setting that changes the numbers is not a speed-up the notebook's graph may take.
`TF_ENABLE_ONEDNN_OPTS=0` (Eigen's kernels instead of oneDNN's) can only be set before
TensorFlow starts: `--onednn_off` measures that process against a child with the default.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from tensorflow.core.protobuf import rewriter_config_pb2  # noqa: E402

from squeezenet_v1.data import datasets  # noqa: E402

from squeezenet_v1.training import session_options  # noqa: E402

from squeezenet_v1.training.graph import build_training_graph, op_determinism  # noqa: E402
from squeezenet_v1.training.loop import start_input  # noqa: E402

tf1 = tf.compat.v1
WARM_UP_STEPS = 30
OFF = rewriter_config_pb2.RewriterConfig.OFF


def _threads(intra, inter):
    def apply(config):
        config.intra_op_parallelism_threads = intra
        config.inter_op_parallelism_threads = inter
    return apply


def _grappler_off(name):
    def apply(config):
        setattr(config.graph_options.rewrite_options, name, OFF)
    return apply


SETTINGS = {
    'default': lambda config: None,
    'intra 2, inter 1': _threads(2, 1),
    'intra 1, inter 2': _threads(1, 2),
    'intra 1, inter 1': _threads(1, 1),
    'remapper off': _grappler_off('remapping'),
    'layout optimizer off': _grappler_off('layout_optimizer'),
    'arithmetic optimizer off': _grappler_off('arithmetic_optimization'),
}


def run_setting(source, batch_size, steps, apply):
    """(images/s over `steps` timed steps, the untimed steps' losses) under one setting."""
    with op_determinism(3):  # as run_train.py --seed=3 runs
        training = build_training_graph(source, batch_size, 0.001, seed=3)
    config = session_options.session_config()
    apply(config)
    with op_determinism(3), tf1.Session(graph=training.graph, config=config) as sess:
        sess.run(training.init_op)
        start_input(sess, training)
        step = sess.make_callable(training.fetches)
        losses = [step()[1] for _ in range(WARM_UP_STEPS)]
        start = time.perf_counter()
        for _ in range(steps):
            step()
        return steps * batch_size / (time.perf_counter() - start), np.array(losses)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--steps', type=int, default=200)
    parser.add_argument('--rounds', type=int, default=3)
    parser.add_argument('--batch_size', type=int, default=32)
    parser.add_argument('--onednn_off', action='store_true',
                        help='compare TF_ENABLE_ONEDNN_OPTS=0 against the default instead')
    parser.add_argument('--only', default=None, help=argparse.SUPPRESS)  # a child's one setting
    args = parser.parse_args()
    source = datasets.prepare_split('synthetic', 'train', 'data', datasets.records_cache_dir())
    if args.only:  # a child process: one setting, one figure, as JSON
        rate, losses = run_setting(source, args.batch_size, args.steps, SETTINGS[args.only])
        print(json.dumps({'rate': rate, 'losses': losses.tolist()}))
        return 0
    if args.onednn_off:
        settings = {'default': None, 'TF_ENABLE_ONEDNN_OPTS=0': '0'}
    else:
        settings = dict.fromkeys(SETTINGS)
    rates = {name: [] for name in settings}
    reference, differs = None, set()
    for round_index in range(args.rounds):
        names = list(settings)
        names = names[round_index % len(names):] + names[:round_index % len(names)]
        for name in names:
            if args.onednn_off:
                env = dict(os.environ)
                if settings[name]:
                    env['TF_ENABLE_ONEDNN_OPTS'] = settings[name]
                out = subprocess.run(
                    [sys.executable, os.path.abspath(__file__), '--only=default',
                     '--steps=%d' % args.steps, '--batch_size=%d' % args.batch_size],
                    env=env, stdout=subprocess.PIPE, check=True, text=True).stdout
                result = json.loads(out.strip().splitlines()[-1])
                rate, losses = result['rate'], np.array(result['losses'], np.float32)
            else:
                rate, losses = run_setting(source, args.batch_size, args.steps, SETTINGS[name])
            rates[name].append(rate)
            if name == 'default' and reference is None:
                reference = losses
            elif reference is not None and not np.array_equal(losses, reference):
                differs.add(name)
            print('round %d: %-26s %6.0f images/s' % (round_index + 1, name, rate), flush=True)
    print('\nbatch %d, %d timed steps, %d rounds; ratio to the default within each round'
          % (args.batch_size, args.steps, args.rounds))
    for name, values in rates.items():
        ratios = [value / default for value, default in zip(values, rates['default'])]
        print('  %-26s %6.0f images/s  %.3f [%.3f-%.3f]  %s' % (
            name, statistics.median(values), statistics.median(ratios), min(ratios), max(ratios),
            'losses DIFFER from the default' if name in differs else 'losses bit-identical'))
    return 0


if __name__ == '__main__':
    sys.exit(main())
