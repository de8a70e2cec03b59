"""This machine's two limits, the model's convolutions, and the least time they allow (roofline).

roofline.py lists a step op by op against these; benchmark_training.py holds every contender
to the convolutions' roofline. TensorFlow is imported by the functions that measure, so the
benchmark's parent process, which only does the arithmetic, never loads it.

The roofline of one convolution pass (forward, input gradient or filter gradient):

    FLOPs      2 * N * H_out * W_out * Cin * Cout * k * k (each gradient as many as the forward)
    bytes      what it must read and write at least: its input, filter and output tensors once
               (bf16: 2 bytes an element, as oneDNN computes; fp32: 4)
    seconds    max(FLOPs / matmul peak, bytes / memory bandwidth)

The model's roofline is the sum over its convolutions. It is the least time for an
implementation that runs each convolution pass as its own op, its tensors going through memory,
at the limits measured here; it leaves out everything else a step does (ReLU, pooling, dropout,
softmax, Adam). So every implementation of the model, ours or a peer's, is held to the same
bound, and none reaches it. It does not bound a kernel that fuses several layers and keeps
their tensors in cache.
"""

import re
import time

ELEMENT_BYTES = {'fp32': 4, 'bf16': 2}
TRAINING_PASSES = ('forward', 'grad input', 'grad filter')
INFERENCE_PASSES = ('forward',)

LAYER = re.compile(r'(conv1|fire\d/(?:squeeze|expand1x1|expand3x3)|final_conv)/')


def matmul_peak(precision):
    """FLOP/s of tf.matmul in 'fp32' or 'bf16': the best over 2048 and 4096 square, 3 tries each."""
    import tensorflow as tf
    dtype = {'fp32': tf.float32, 'bf16': tf.bfloat16}[precision]
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

    A STREAM-like measure over 64M floats, far larger than any cache. Eager ops on the CPU
    return when done, so the call's time is the op's.
    """
    import tensorflow as tf
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


def convolutions(graph):
    """{layer: per-image FLOPs and element counts} of the graph's forward convolutions.

    Each value is {'flops', 'input', 'output'} for one image and {'filter'} for the layer;
    JSON-ready, so a worker process can hand it to the benchmark's parent.
    """
    found = {}
    for op in graph.get_operations():
        if op.type != 'Conv2D' or 'gradients' in op.name:
            continue
        match = LAYER.search(op.name + '/')
        if not match:
            continue
        _, height, width, channels_in = op.inputs[0].shape.as_list()
        k1, k2, _, channels_out = op.inputs[1].shape.as_list()
        _, out_h, out_w, _ = op.outputs[0].shape.as_list()
        found[match.group(1)] = {
            'flops': 2 * out_h * out_w * channels_in * channels_out * k1 * k2,
            'input': height * width * channels_in,
            'filter': k1 * k2 * channels_in * channels_out,
            'output': out_h * out_w * channels_out}
    return found


def model_graph(batch_size=1):
    """A graph holding the notebook's model at run_train.py's 24x24 crops, in inference."""
    import tensorflow as tf
    from squeezenet_v1 import model as model_lib
    with tf.Graph().as_default() as graph:
        model = model_lib.new_model(10)
        model.model_layers(tf.compat.v1.placeholder(tf.float32, [batch_size, 24, 24, 3]),
                           is_training=False)
    return graph


def layer_passes(layer, kinds):
    """The passes of `kinds` a layer runs: conv1 has no input gradient (the images need none)."""
    return [k for k in kinds if not (k == 'grad input' and layer == 'conv1')]


def pass_cost(costs, batch_size, element_bytes):
    """(FLOPs, bytes) of one pass of a layer over a batch, whichever pass: each gradient reads
    and writes the same three tensors as the forward pass and does as many FLOPs."""
    elements = batch_size * (costs['input'] + costs['output']) + costs['filter']
    return batch_size * costs['flops'], elements * element_bytes


def pass_seconds(flops, nbytes, peak, bytes_per_second):
    return max(flops / peak, nbytes / bytes_per_second)


def roofline_seconds(layers, batch_size, kinds, peak, bytes_per_second, element_bytes):
    """The least time the machine allows for `kinds` passes of every layer over one batch."""
    return sum(pass_seconds(*pass_cost(costs, batch_size, element_bytes), peak,
                            bytes_per_second)
               for layer, costs in layers.items() for _ in layer_passes(layer, kinds))
