"""How far a training step and an inference batch are from this machine's roofline, op by op.

    python benchmarks/roofline.py [--batch_size=32] [--eval_batch_size=500] [--precision=fp32]

In one run it measures the machine's two limits, the matmul peak (tf.matmul, 2048 and 4096
square, the best of 3) and the memory bandwidth (a STREAM-like scale and add over 64M floats,
on all cores through TensorFlow, the better of the two), then traces `--steps` training steps
and `--steps` inference batches (FULL_TRACE, after a warm-up) and lists every convolution, the
forward pass and both gradients, with its FLOPs, the bytes it must move and its roofline time
(limits.py says how each is counted) beside the op's own time per step (median), as grappler
and oneDNN rewrote it.

The other ops are listed by type with their measured time and a roofline of their output
bytes read and written once (they do no matmul work); a bound, not a model of each. The step's
roofline is the sum; "distance" is measured minus roofline, and the ops are ranked by it.
On 2 cores ops overlap, so the summed op time is compared with the step's wall time too.
"""

import argparse
import collections
import os
import statistics
import sys
import tempfile
import time

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import tensorflow as tf  # noqa: E402

import limits  # noqa: E402
from squeezenet_v1 import machine  # noqa: E402
from squeezenet_v1.data import datasets  # noqa: E402
from squeezenet_v1.deploy import serving  # noqa: E402
from squeezenet_v1.training import session_options  # noqa: E402
from squeezenet_v1.training.graph import build_training_graph  # noqa: E402

tf1 = tf.compat.v1


def _pass_of(op_type):
    if 'BackpropInput' in op_type:
        return 'grad input'
    if 'BackpropFilter' in op_type or op_type == 'BiasAddGrad':
        return 'grad filter'
    if 'Conv2D' in op_type:
        return 'forward'
    return None


def trace(sess, fetches, feed, steps):
    """({(node, op type): median micros per run}, {(node, type): output bytes}, median wall s)."""
    options = tf1.RunOptions(trace_level=tf1.RunOptions.FULL_TRACE)
    micros, outputs, walls = collections.defaultdict(list), {}, []
    for _ in range(steps):
        metadata = tf1.RunMetadata()
        start = time.perf_counter()
        sess.run(fetches, feed, options=options, run_metadata=metadata)
        walls.append(time.perf_counter() - start)
        per_run = collections.Counter()
        for device in metadata.step_stats.dev_stats:
            for node in device.node_stats:
                if node.node_name in ('_SOURCE', 'RecvTensor'):
                    continue
                label = node.timeline_label
                op_type = label.split('=')[-1].split('(')[0].strip() if '=' in label else ''
                op_type = op_type.split(':')[-1].strip() or node.node_name
                key = (node.node_name, op_type)
                per_run[key] += node.op_end_rel_micros - node.op_start_rel_micros
                outputs[key] = sum(o.tensor_description.allocation_description.requested_bytes
                                   for o in node.output)
        for key, value in per_run.items():
            micros[key].append(value)
    return ({k: statistics.median(v + [0] * (steps - len(v))) for k, v in micros.items()},
            outputs, statistics.median(walls))


def table(title, convs, batch_size, times, outputs, wall, peak, bytes_per_second, element_bytes,
          kinds):
    rows, other = [], collections.defaultdict(lambda: [0.0, 0.0])
    measured_conv = collections.Counter()
    for (node, op_type), micros in times.items():
        match = limits.LAYER.search(node + '/')
        kind = _pass_of(op_type)
        if match and kind:
            measured_conv[(match.group(1), kind)] += micros
        else:
            other[op_type][0] += micros
            other[op_type][1] += 2 * outputs.get((node, op_type), 0)  # read and written once
    for layer, costs in sorted(convs.items()):
        for kind in limits.layer_passes(layer, kinds):
            flops, nbytes = limits.pass_cost(costs, batch_size, element_bytes)
            bound = limits.pass_seconds(flops, nbytes, peak, bytes_per_second) * 1e6
            rows.append((layer, kind, flops / 1e9, nbytes / 1e6, bound,
                         measured_conv.get((layer, kind), 0.0)))
    for op_type, (micros, nbytes) in other.items():
        rows.append(('(other)', op_type, 0.0, nbytes / 1e6, nbytes / bytes_per_second * 1e6,
                     micros))
    print('\n%s' % title)
    print('  %-18s %-22s %8s %8s %11s %11s %9s' % ('op', 'pass', 'GFLOP', 'MB', 'roofline us',
                                                  'measured us', 'distance'))
    for row in sorted(rows, key=lambda r: -(r[5] - r[4])):
        if row[5] < 1 and row[4] < 1:
            continue
        print('  %-18s %-22s %8.3f %8.2f %11.0f %11.0f %9.0f' % (row + (row[5] - row[4],)))
    roofline = sum(r[4] for r in rows)
    measured = sum(r[5] for r in rows)
    conv_share = sum(r[5] - r[4] for r in rows if r[0] != '(other)') / max(measured - roofline, 1)
    print('  sum: roofline %.0f us, op time %.0f us (%.1fx the roofline), wall %.0f us '
          '(%.1fx); convolutions hold %.0f%% of the distance'
          % (roofline, measured, measured / roofline, wall * 1e6, wall * 1e6 / roofline,
             100 * conv_share))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--batch_size', type=int, default=32)
    parser.add_argument('--eval_batch_size', type=int, default=500)
    parser.add_argument('--precision', choices=['fp32', 'bf16'], default='fp32')
    parser.add_argument('--steps', type=int, default=20)
    args = parser.parse_args()
    peak = limits.matmul_peak(args.precision)
    bytes_per_second = limits.bandwidth()
    element_bytes = limits.ELEMENT_BYTES[args.precision]
    print('%s, TensorFlow %s, %s' % (machine.cpu_model(), tf.__version__, args.precision))
    print('matmul peak %.0f GFLOP/s; memory bandwidth %.1f GB/s; ridge point %.1f FLOP/byte'
          % (peak / 1e9, bytes_per_second / 1e9, peak / bytes_per_second))

    with tempfile.TemporaryDirectory() as scratch:
        source = datasets.prepare_split('synthetic', 'train', 'data', scratch)
        training = build_training_graph(source, args.batch_size, 0.001,
                                        precision=args.precision)
        convs = limits.convolutions(training.graph)
        config = session_options.session_config(args.precision)
        with tf1.Session(graph=training.graph, config=config) as sess:
            sess.run(training.init_op)
            for _ in range(30):
                sess.run(training.fetches)
            times, outputs, wall = trace(sess, training.fetches, None, args.steps)
        table('one training step, batch %d' % args.batch_size, convs, args.batch_size, times,
              outputs, wall, peak, bytes_per_second, element_bytes, limits.TRAINING_PASSES)

    inference = serving.build_serving_graph(10)
    convs = limits.convolutions(inference.graph)
    images = tf.random.stateless_uniform([args.eval_batch_size, 32, 32, 3], [9, 9], maxval=256,
                                         dtype=tf.int32).numpy().astype('uint8')
    with tf1.Session(graph=inference.graph, config=session_options.session_config(
            args.precision)) as sess:
        sess.run(tf1.variables_initializer(inference.variables))
        feed = {inference.images: images}
        for _ in range(5):
            sess.run(inference.probabilities, feed)
        times, outputs, wall = trace(sess, inference.probabilities, feed, args.steps)
    table('one inference batch of %d (the serving graph)' % args.eval_batch_size, convs,
          args.eval_batch_size, times, outputs, wall, peak, bytes_per_second, element_bytes,
          limits.INFERENCE_PASSES)


if __name__ == '__main__':
    main()
