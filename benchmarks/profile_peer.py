"""Where does the best peer's step go? Our step and Keras' `fit`, op by op, by the same profiler.

    python benchmarks/profile_peer.py [--precision=bf16] [--batch_size=32] [--steps=160]

benchmark_training.py finds Keras 3 `fit` with steps_per_execution=16 (and, in bf16, the
`mixed_bfloat16` policy) the best peer. This traces `--steps` training steps of each, after a
warm-up, with TensorFlow's profiler (each side in a child process of its own), and lists the
time of every executed op type per step, side by side: which kernels each runs, how often, and
for how long. On two cores ops overlap, so the op time per step can exceed the wall time per
step (both printed; the profiler adds its own cost to both, and Keras' wall time also holds
the start of its traced `fit` call: a new iterator filling its shuffle buffer). An op's time is
its kernel's time on the executor's threads, waits included (IteratorGetNext waits for data).
"""

import argparse
import collections
import glob
import json
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)

SIDES = ('session', 'keras_spe')


def _trace(side, precision, batch_size, steps, logdir):
    """Runs one side's steps under the profiler; returns the wall seconds of the traced steps."""
    import tensorflow as tf
    from squeezenet_v1.data import datasets
    from squeezenet_v1.data import input_pipeline
    from squeezenet_v1.training import session_options
    from squeezenet_v1.training.graph import build_training_graph
    from squeezenet_v1 import model as model_lib
    source = datasets.prepare_split('synthetic', 'train', 'data', datasets.records_cache_dir())
    if side == 'session':
        training = build_training_graph(source, batch_size, 0.001, precision=precision)
        with tf.compat.v1.Session(graph=training.graph,
                                  config=session_options.session_config(precision)) as sess:
            sess.run(training.init_op)
            step = sess.make_callable(training.fetches)
            for _ in range(50):
                step()
            tf.profiler.experimental.start(logdir)
            start = time.perf_counter()
            for _ in range(steps):
                step()
            wall = time.perf_counter() - start
            tf.profiler.experimental.stop()
        return wall
    import keras
    from squeezenet_v1.deploy.keras_model import build_keras_squeezenet
    if precision == 'bf16':
        keras.mixed_precision.set_global_policy('mixed_bfloat16')
    model = build_keras_squeezenet(len(source.label_names), steps_per_execution=16)
    dataset = input_pipeline.make_dataset(source.record_files,
                                          model_lib.new_model(len(source.label_names)), True,
                                          batch_size)
    model.fit(dataset, steps_per_epoch=64, epochs=1, verbose=0)
    tf.profiler.experimental.start(logdir)
    start = time.perf_counter()
    model.fit(dataset, steps_per_epoch=steps, epochs=1, verbose=0)
    wall = time.perf_counter() - start
    tf.profiler.experimental.stop()
    return wall


def _op_times(logdir):
    """{op type: (microseconds, count)} summed over the executor's threads in the trace."""
    from tensorflow.tsl.profiler.protobuf import xplane_pb2
    traces = glob.glob(os.path.join(logdir, '**', '*.xplane.pb'), recursive=True)
    if not traces:
        raise SystemExit('TensorFlow\'s profiler wrote no trace into %s' % logdir)
    space = xplane_pb2.XSpace()
    with open(traces[0], 'rb') as f:
        space.ParseFromString(f.read())
    times = collections.defaultdict(lambda: [0.0, 0])
    for plane in space.planes:
        if plane.name != '/host:CPU':
            continue
        for line in plane.lines:
            if not line.name.startswith('tf_Compute'):  # the executor's threads run the ops
                continue
            for event in line.events:
                name = plane.event_metadata[event.metadata_id].name  # "node name:OpType"
                if ':' not in name or '::' in name:
                    continue  # the runtime's own events
                entry = times[name.rsplit(':', 1)[1]]
                entry[0] += event.duration_ps / 1e6
                entry[1] += 1
    return {op: tuple(value) for op, value in times.items()}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--precision', default='bf16', choices=['fp32', 'bf16'])
    parser.add_argument('--batch_size', type=int, default=32)
    parser.add_argument('--steps', type=int, default=160)
    parser.add_argument('--side', choices=SIDES, help=argparse.SUPPRESS)  # a child's one side
    args = parser.parse_args()
    if args.side:
        with tempfile.TemporaryDirectory() as logdir:
            wall = _trace(args.side, args.precision, args.batch_size, args.steps, logdir)
            print(json.dumps({'wall': wall, 'ops': _op_times(logdir)}))
        return 0
    profiles = {}
    for side in SIDES:
        out = subprocess.run([sys.executable, os.path.abspath(__file__), '--side=' + side,
                              '--precision=' + args.precision,
                              '--batch_size=%d' % args.batch_size, '--steps=%d' % args.steps],
                             stdout=subprocess.PIPE, check=True, text=True).stdout
        profiles[side] = json.loads(out.strip().splitlines()[-1])
    print('%s, batch %d, %d traced steps; per step: op time in microseconds (share of the '
          'side\'s op time), executions' % (args.precision, args.batch_size, args.steps))
    totals = {side: sum(t for t, _ in p['ops'].values()) for side, p in profiles.items()}
    for side, profile in profiles.items():
        print('  %-10s wall %.2f ms per step, op time %.2f ms per step'
              % (side, 1e3 * profile['wall'] / args.steps, totals[side] / args.steps / 1e3))
    ops = sorted(set().union(*(p['ops'] for p in profiles.values())),
                 key=lambda op: -max(p['ops'].get(op, (0, 0))[0] for p in profiles.values()))
    print('  %-42s %s' % ('op type', ''.join('%-28s' % side for side in SIDES)))
    for op in ops:
        cells = []
        for side in SIDES:
            time_us, count = profiles[side]['ops'].get(op, (0.0, 0))
            cells.append('%7.0f (%4.1f%%) x%-6.1f' % (time_us / args.steps,
                                                       100 * time_us / totals[side],
                                                       count / args.steps) if count else '-')
        if max(profiles[side]['ops'].get(op, (0, 0))[0] for side in SIDES) / args.steps >= 5:
            print('  %-42s %s' % (op, ''.join('%-28s' % cell for cell in cells)))
    return 0


if __name__ == '__main__':
    sys.exit(main())
