"""Where a training step goes: an op-level profile of run_train.py's step, by kind of work.

    python benchmarks/profile_step.py [--batch_size=32] [--precision=fp32] [--steps=50]

Builds the unseeded training graph (the notebook's pipeline), warms it up, then traces
`--steps` steps with FULL_TRACE and sums each executed op's time (as grappler and oneDNN
rewrote the graph) into the kinds of work below. The shares are of the summed op time; on two
cores ops overlap, so the sum can exceed the step's wall time, which is printed beside it
(the untraced step's wall time is measured too: tracing adds its own cost). The input
pipeline's preprocessing runs in tf.data's threads, outside the step's op statistics; its cost
is estimated from the pipeline's own rate, measured alone.
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

from squeezenet_v1.data import datasets  # noqa: E402

from squeezenet_v1.data import input_pipeline  # noqa: E402

from squeezenet_v1.training import session_options  # noqa: E402

from squeezenet_v1.training.graph import build_training_graph  # noqa: E402
from squeezenet_v1 import model as model_lib  # noqa: E402

tf1 = tf.compat.v1

# (kind, test on (op type, node name)), first match wins.
KINDS = [
    ('input pipeline (IteratorGetNext)', lambda t, n: 'Iterator' in t),
    ('conv backward: filter/bias grads', lambda t, n: 'BackpropFilter' in t or 'BiasAddGrad' in t),
    ('conv backward: input grads', lambda t, n: 'BackpropInput' in t),
    ('conv forward (+bias, relu fused)', lambda t, n: 'Conv2D' in t),
    ('relu backward', lambda t, n: 'ReluGrad' in t),
    ('max pool fwd/bwd', lambda t, n: 'MaxPool' in t),
    ('avg pool / global mean fwd/bwd', lambda t, n: 'AvgPool' in t),
    ('casts (bf16 <-> fp32)', lambda t, n: 'Cast' in t),
    ('layout changes (transpose, reorders)', lambda t, n: 'Transpose' in t or 'ToTf' in t
     or 'Reorder' in t),
    ('concat fwd, and its gradient (slices)', lambda t, n: 'Concat' in t
     or ('Slice' in t and 'gradients' in n)),
    ('Adam (ApplyAdam, beta powers)', lambda t, n: 'Adam' in t or 'Adam' in n),
    ('dropout fwd/bwd', lambda t, n: 'dropout' in n.lower()),
    ('loss, softmax, accuracy', lambda t, n: 'Softmax' in t or 'ArgMax' in t
     or 'SparseSoftmax' in n or re.search(r'(^|/)(Mean|Equal|Cast)', n) is not None),
    ('bias add / relu (unfused)', lambda t, n: t in ('BiasAdd', 'Relu', '_MklRelu')),
]


def kind_of(op_type, name):
    for kind, test in KINDS:
        if test(op_type, name):
            return kind
    return 'other'


def profile(batch_size, precision, steps, warmup=30):
    with tempfile.TemporaryDirectory() as scratch:
        source = datasets.prepare_split('synthetic', 'train', 'data', scratch)
        training = build_training_graph(source, batch_size, 0.001, precision=precision)
        config = session_options.session_config(precision)
        with tf1.Session(graph=training.graph, config=config) as sess:
            sess.run(training.init_op)
            step = sess.make_callable(training.fetches)
            for _ in range(warmup):
                step()
            start = time.perf_counter()
            for _ in range(steps):
                step()
            untraced = (time.perf_counter() - start) / steps
            totals = collections.Counter()
            by_type = collections.Counter()
            walls = []
            options = tf1.RunOptions(trace_level=tf1.RunOptions.FULL_TRACE)
            for _ in range(steps):
                metadata = tf1.RunMetadata()
                start = time.perf_counter()
                sess.run(training.fetches, options=options, run_metadata=metadata)
                walls.append(time.perf_counter() - start)
                for device in metadata.step_stats.dev_stats:
                    for node in device.node_stats:
                        op_type = node.timeline_label.split('(')[0].split('=')[-1].strip() \
                            if '=' in node.timeline_label else node.node_name
                        op_type = op_type.split(':')[-1].strip() or node.node_name
                        micros = node.op_end_rel_micros - node.op_start_rel_micros
                        if node.node_name in ('_SOURCE', 'RecvTensor'):
                            continue
                        totals[kind_of(op_type, node.node_name)] += micros
                        by_type[op_type] += micros
        pipeline = _pipeline_rate(source, batch_size, steps * 4)
    return untraced, statistics.median(walls), totals, by_type, steps, pipeline


def _pipeline_rate(source, batch_size, batches):
    """Images/s the training input pipeline delivers alone, on all cores."""
    with tf.Graph().as_default() as graph:
        images, labels = input_pipeline.input_fn(
            source.record_files, model_lib.new_model(len(source.label_names)), True, batch_size)
    with tf1.Session(graph=graph) as sess:
        fetch = sess.make_callable([images.op, labels.op])
        for _ in range(20):
            fetch()
        start = time.perf_counter()
        for _ in range(batches):
            fetch()
        return batches * batch_size / (time.perf_counter() - start)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--batch_size', type=int, default=32)
    parser.add_argument('--precision', default='fp32', choices=['fp32', 'bf16'])
    parser.add_argument('--steps', type=int, default=50)
    parser.add_argument('--top', type=int, default=15, help='Op types to list.')
    args = parser.parse_args()
    untraced, traced, totals, by_type, steps, pipeline = profile(args.batch_size, args.precision,
                                                      args.steps)
    op_sum = sum(totals.values()) / steps / 1e6
    print('%s, batch %d, %d traced steps, %d cores' % (args.precision, args.batch_size, steps,
                                                       os.cpu_count()))
    print('step wall time: %.2f ms untraced, %.2f ms traced; summed op time %.2f ms per step'
          % (1e3 * untraced, 1e3 * traced, 1e3 * op_sum))
    # tf.data preprocesses on the same cores, outside the step's op stats.
    print('input pipeline alone: %.0f images/s, so feeding %.0f images/s takes about %.0f%% '
          'of the CPU' % (pipeline, args.batch_size / untraced,
                          100.0 * args.batch_size / untraced / pipeline))
    total = sum(totals.values())
    for kind, micros in totals.most_common():
        print('  %-42s %5.1f%%  %6.2f ms' % (kind, 100.0 * micros / total,
                                               micros / steps / 1e3))
    print('top op types:')
    for op_type, micros in by_type.most_common(args.top):
        print('  %-42s %5.1f%%  %6.2f ms' % (op_type, 100.0 * micros / total,
                                               micros / steps / 1e3))


if __name__ == '__main__':
    main()
