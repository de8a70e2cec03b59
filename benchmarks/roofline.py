"""How far a training step and an inference batch are from this machine's roofline, op by op.

    python benchmarks/roofline.py [--batch_size=32] [--eval_batch_size=500] [--precision=fp32]

In one run it measures the machine's two limits, the matmul peak (tf.matmul, 2048 and 4096
square, the best of 3) and the memory bandwidth (a STREAM-like scale and add over 64M floats,
on all cores through TensorFlow, the better of the two), then traces `--steps` training steps
and `--steps` inference batches (FULL_TRACE, after a warm-up) and lists every convolution, the
forward pass and both gradients, with:

    FLOPs      2 * N * H * W * Cin * Cout * k * k (each gradient as many as the forward)
    bytes      what it must read and write at least: input, filter and output tensors once
               (bf16: 2 bytes an element, as oneDNN computes; fp32: 4)
    roofline   max(FLOPs / matmul peak, bytes / bandwidth): the least time the machine allows
    measured   the op's own time per step (median), as grappler and oneDNN rewrote it

The other ops are listed by type with their measured time and a roofline of their output
bytes read and written once (they do no matmul work); a bound, not a model of each. The step's
roofline is the sum; "distance" is measured minus roofline, and the ops are ranked by it.
On 2 cores ops overlap, so the summed op time is compared with the step's wall time too.
"""

import argparse
import collections
import os
import re
import statistics
import sys
import tempfile
import time

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import tensorflow as tf  # noqa: E402

from squeezenet_v1 import machine  # noqa: E402
from squeezenet_v1.data import datasets  # noqa: E402
from squeezenet_v1.deploy import serving  # noqa: E402
from squeezenet_v1.training import session_options  # noqa: E402
from squeezenet_v1.training.graph import build_training_graph  # noqa: E402

tf1 = tf.compat.v1

_LAYER = re.compile(r'(conv1|fire\d/(?:squeeze|expand1x1|expand3x3)|final_conv)/')


def matmul_peak(dtype):
    best = 0.0
    matmul = tf.function(lambda a, b: tf.matmul(a, b))
    for n in (2048, 4096):
        a = tf.cast(tf.random.stateless_uniform([n, n], [1, 2]), dtype)
        b = tf.cast(tf.random.stateless_uniform([n, n], [3, 4]), dtype)
        matmul(a, b).numpy()
        for _ in range(3):
            start = time.perf_counter()
            matmul(a, b).numpy()
            best = max(best, 2.0 * n ** 3 / (time.perf_counter() - start))
    return best


def bandwidth():
    """Bytes/s: the better of scale (read N, write N) and add (read 2N, write N), all cores.

    Eager ops on the CPU return when done, so the call's time is the op's.
    """
    n = 64 * 1024 * 1024
    x = tf.random.stateless_uniform([n], [5, 6])
    y = tf.random.stateless_uniform([n], [7, 8])
    scale = tf.function(lambda x: x * 3.0)
    add = tf.function(lambda x, y: x + y)
    best = 0.0
    for run, moved in ((lambda: scale(x), 2), (lambda: add(x, y), 3)):
        run()
        for _ in range(5):
            start = time.perf_counter()
            run()
            best = max(best, moved * 4 * n / (time.perf_counter() - start))
    return best


def convolutions(graph, batch_size):
    """{layer: (FLOPs of one pass, element counts (input, filter, output))} of the forward convs."""
    found = {}
    for op in graph.get_operations():
        if op.type != 'Conv2D' or 'gradients' in op.name:
            continue
        match = _LAYER.search(op.name + '/')
        if not match:
            continue
        _, height, width, channels_in = op.inputs[0].shape.as_list()
        k1, k2, _, channels_out = op.inputs[1].shape.as_list()
        _, out_h, out_w, _ = op.outputs[0].shape.as_list()
        flops = 2.0 * batch_size * out_h * out_w * channels_in * channels_out * k1 * k2
        elements = (batch_size * height * width * channels_in, k1 * k2 * channels_in * channels_out,
                    batch_size * out_h * out_w * channels_out)
        found[match.group(1)] = (flops, elements)
    return found


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


def table(title, convs, times, outputs, wall, peak, bytes_per_second, element_bytes, passes):
    rows, other = [], collections.defaultdict(lambda: [0.0, 0.0])
    measured_conv = collections.Counter()
    for (node, op_type), micros in times.items():
        match = _LAYER.search(node + '/')
        kind = _pass_of(op_type)
        if match and kind:
            measured_conv[(match.group(1), kind)] += micros
        else:
            other[op_type][0] += micros
            other[op_type][1] += 2 * outputs.get((node, op_type), 0)  # read and written once
    for layer, (flops, (inp, filt, out)) in sorted(convs.items()):
        moved = {'forward': inp + filt + out, 'grad input': out + filt + inp,
                 'grad filter': inp + out + filt}
        for kind in passes:
            if kind == 'grad input' and layer == 'conv1':
                continue  # the images need no gradient
            nbytes = moved[kind] * element_bytes
            bound = max(flops / peak, nbytes / bytes_per_second) * 1e6
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
    peak = matmul_peak(tf.bfloat16 if args.precision == 'bf16' else tf.float32)
    bytes_per_second = bandwidth()
    element_bytes = 2 if args.precision == 'bf16' else 4
    print('%s, TensorFlow %s, %s' % (machine.cpu_model(), tf.__version__, args.precision))
    print('matmul peak %.0f GFLOP/s; memory bandwidth %.1f GB/s; ridge point %.1f FLOP/byte'
          % (peak / 1e9, bytes_per_second / 1e9, peak / bytes_per_second))

    with tempfile.TemporaryDirectory() as scratch:
        source = datasets.prepare_split('synthetic', 'train', 'data', scratch)
        training = build_training_graph(source, args.batch_size, 0.001,
                                        precision=args.precision)
        convs = convolutions(training.graph, args.batch_size)
        config = session_options.session_config(args.precision)
        with tf1.Session(graph=training.graph, config=config) as sess:
            sess.run(training.init_op)
            for _ in range(30):
                sess.run(training.fetches)
            times, outputs, wall = trace(sess, training.fetches, None, args.steps)
        table('one training step, batch %d' % args.batch_size, convs, times, outputs, wall,
              peak, bytes_per_second, element_bytes, ('forward', 'grad input', 'grad filter'))

    inference = serving.build_serving_graph(10)
    convs = convolutions(inference.graph, args.eval_batch_size)
    images = tf.random.stateless_uniform([args.eval_batch_size, 32, 32, 3], [9, 9], maxval=256,
                                         dtype=tf.int32).numpy().astype('uint8')
    with tf1.Session(graph=inference.graph, config=session_options.session_config(
            args.precision)) as sess:
        sess.run(tf1.variables_initializer(inference.variables))
        feed = {inference.images: images}
        for _ in range(5):
            sess.run(inference.probabilities, feed)
        times, outputs, wall = trace(sess, inference.probabilities, feed, args.steps)
    table('one inference batch of %d (the serving graph)' % args.eval_batch_size, convs, times,
          outputs, wall, peak, bytes_per_second, element_bytes, ('forward',))


if __name__ == '__main__':
    main()
