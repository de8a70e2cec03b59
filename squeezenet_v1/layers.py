"""The five `tf.layers` functions the notebook calls, rebuilt on `tf.compat.v1` core ops.

On TensorFlow >= 2.16 the TF1 layers API exists only through the legacy Keras package; this
module keeps tf.layers' behaviour without it: variables are made with
`tf.compat.v1.get_variable` under a variable scope named for the layer (`conv1/kernel`,
`conv1/bias`), kernels start Glorot-uniform and biases at zero, as TF1's tf.layers did, and
ops live under the same name scopes (`conv1/Conv2D`, `pool1/MaxPool`, `logits/Reshape`).
Checkpoints are therefore interchangeable with graphs built on the real TF1 layers API.
"""

import tensorflow as tf

tf1 = tf.compat.v1


def _pair(value):
    """Returns an (int, int) pair from an int or a two-element sequence (Dimensions allowed)."""
    if isinstance(value, (list, tuple)):
        if len(value) != 2:
            raise ValueError('expected 2 values, got %r' % (value,))
        return tuple(_as_int(v) for v in value)
    return (_as_int(value),) * 2


def _as_int(value):
    # The notebook passes `conv_layer.shape[1]`, a Dimension in TF1 and an int (or None) now.
    value = getattr(value, 'value', value)
    if value is None:
        raise ValueError('pool and kernel sizes must be known when the graph is built; got None '
                         '(the input needs a static height and width)')
    return int(value)


def conv2d(inputs, filters, kernel_size, strides=(1, 1), padding='valid', activation=None,
           use_bias=True, kernel_initializer=None, bias_initializer=None, name=None):
    """2-D convolution as TF1's layers API made it (NHWC, kernel [kh, kw, in, filters])."""
    kernel_h, kernel_w = _pair(kernel_size)
    stride_h, stride_w = _pair(strides)
    in_channels = _as_int(inputs.shape[-1])
    with tf1.variable_scope(name, default_name='conv2d'):
        kernel = tf1.get_variable(
            'kernel', [kernel_h, kernel_w, in_channels, filters], dtype=inputs.dtype,
            initializer=kernel_initializer or tf1.glorot_uniform_initializer())
        outputs = tf.nn.conv2d(inputs, kernel, strides=[1, stride_h, stride_w, 1],
                               padding=padding.upper(), name='Conv2D')
        if use_bias:
            bias = tf1.get_variable('bias', [filters], dtype=inputs.dtype,
                                    initializer=bias_initializer or tf1.zeros_initializer())
            outputs = tf.nn.bias_add(outputs, bias, name='BiasAdd')
        if activation is not None:
            outputs = activation(outputs)
        return outputs


def max_pooling2d(inputs, pool_size, strides, padding='valid', name=None):
    """Max pooling as TF1's layers API made it."""
    with tf1.name_scope(name, 'max_pooling2d'):
        return tf.nn.max_pool2d(inputs, _pair(pool_size), _pair(strides), padding.upper(),
                                name='MaxPool')


def average_pooling2d(inputs, pool_size, strides, padding='valid', name=None):
    """Average pooling as TF1's layers API made it."""
    with tf1.name_scope(name, 'average_pooling2d'):
        return tf.nn.avg_pool2d(inputs, _pair(pool_size), _pair(strides), padding.upper(),
                                name='AvgPool')


def flatten(inputs, name=None):
    """Flattens all but the batch dimension, as TF1's layers API did."""
    with tf1.name_scope(name, 'flatten'):
        batch = inputs.shape[0] if inputs.shape[0] is not None else tf.shape(inputs)[0]
        flat = tf.reshape(inputs, [batch, -1], name='Reshape')
        # As Keras' Flatten did under tf.layers: the static shape said, no op added, so the
        # logits are [?, classes] as the notebook's were.
        if inputs.shape[1:].is_fully_defined():
            flat.set_shape([inputs.shape[0], inputs.shape[1:].num_elements()])
        return flat


def dropout(inputs, rate=0.5, training=False, seed=None, name=None, stateless_seed=None):
    """Dropout that is active only when `training` is True, as TF1's layers API did it.

    `stateless_seed` (a [2] int64 tensor; not TF1's) draws the mask from it statelessly: a
    seeded run passes (its seed, the step), so the mask depends on the step only, not on how
    many steps this process has run before it.
    """
    with tf1.name_scope(name, 'dropout'):
        if stateless_seed is not None:
            drop = lambda: tf.nn.experimental.stateless_dropout(inputs, rate, stateless_seed)
        else:
            drop = lambda: tf.nn.dropout(inputs, rate=rate, seed=seed)
        if isinstance(training, tf.Tensor):
            return tf.cond(training, drop, lambda: tf.identity(inputs))
        if training:
            return drop()
        return tf.identity(inputs)
