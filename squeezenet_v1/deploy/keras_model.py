"""The notebook's SqueezeNet in Keras 3: the exported `model.keras`, and the benchmark's peer.

One definition of the layers serves both. Keras forbids '/' in layer names, so the notebook's
`fire1/squeeze` is the layer `fire1_squeeze`, holding `fire1/squeeze/kernel` and `.../bias`;
`conv1` and `final_conv` keep their names. Same shapes, 'same' padding, ReLU everywhere (the
final 1x1 convolution's too), 2x2 max pooling, dropout 0.5 (off in inference, as in the TF1
graph) and global average pooling to the logits.

`inference_model` takes what the SavedModel takes, uint8 images [N, 32, 32, 3], and applies the
notebook's evaluation preprocessing as Keras ops inside the model (the central 24x24 crop of
`resize_image_with_crop_or_pad`, then `per_image_standardization`'s formula), so the saved file
loads with `keras.saving.load_model` in safe mode in a process that never imports this package.
"""

import math

import numpy as np

# The fire modules of model.model_layers: (squeeze depth, expand depth, name).
FIRE_MODULES = ((32, 64, 'fire1'), (32, 64, 'fire2'), None,
                (32, 128, 'fire3'), (32, 128, 'fire4'))  # None: pool2


def _keras():
    import keras  # only here: the training path never needs Keras
    return keras


def _conv(keras, x, filters, kernel_size, name):
    return keras.layers.Conv2D(filters, kernel_size, padding='same', activation='relu',
                               name=name)(x)


def _fire(keras, x, squeeze_depth, expand_depth, name):
    squeezed = _conv(keras, x, squeeze_depth, 1, name + '_squeeze')
    return keras.layers.Concatenate(axis=-1, name=name + '_concat')([
        _conv(keras, squeezed, expand_depth, 1, name + '_expand1x1'),
        _conv(keras, squeezed, expand_depth, 3, name + '_expand3x3')])


def squeezenet_logits(x, num_classes):
    """The notebook's model_layers on a Keras tensor [b, 24, 24, 3]: its logits [b, classes]."""
    keras = _keras()
    x = _conv(keras, x, 64, 3, 'conv1')
    x = keras.layers.MaxPooling2D(2, 2, name='pool1')(x)
    for fire in FIRE_MODULES:
        if fire is None:
            x = keras.layers.MaxPooling2D(2, 2, name='pool2')(x)
        else:
            x = _fire(keras, x, *fire)
    x = keras.layers.Dropout(0.5, name='dropout')(x)
    x = _conv(keras, x, num_classes, 1, 'final_conv')
    return keras.layers.GlobalAveragePooling2D(name='logits')(x)


def build_keras_squeezenet(num_classes=10, resize_dim=24, learning_rate=0.001,
                           steps_per_execution=1):
    """A compiled keras.Model for training: images [b, 24, 24, 3] -> logits [b, num_classes].

    Keras defaults (Glorot-uniform kernels, zero biases), sparse softmax cross-entropy on the
    logits and Adam at 0.001: `model.fit` does the work the Session loop does.
    """
    keras = _keras()
    inputs = keras.Input((resize_dim, resize_dim, 3))
    model = keras.Model(inputs, squeezenet_logits(inputs, num_classes), name='squeezenet_keras')
    model.compile(optimizer=keras.optimizers.Adam(learning_rate),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=['accuracy'], steps_per_execution=steps_per_execution)
    return model


def inference_model(num_classes, original_dim=32, resize_dim=24):
    """uint8 images [N, 32, 32, 3] -> probabilities [N, num_classes], preprocessing inside."""
    keras = _keras()
    ops = keras.ops
    images = keras.Input((original_dim, original_dim, 3), dtype='uint8', name='images')
    x = ops.cast(images, 'float32')
    start = (original_dim - resize_dim) // 2  # resize_image_with_crop_or_pad's central crop
    x = x[:, start:start + resize_dim, start:start + resize_dim, :]
    # per_image_standardization: (x - mean) / max(stddev, 1/sqrt(pixels)), per image. The floor
    # must be a Python float: an np.float64 makes the graph mix dtypes.
    mean = ops.mean(x, axis=[1, 2, 3], keepdims=True)
    std = ops.std(x, axis=[1, 2, 3], keepdims=True)
    floor = float(1.0 / math.sqrt(resize_dim * resize_dim * 3))
    x = (x - mean) / ops.maximum(std, floor)
    logits = squeezenet_logits(x, num_classes)
    probabilities = keras.layers.Softmax(name='probabilities')(logits)
    return keras.Model(images, probabilities, name='squeezenet')


def tf1_prefix(layer_name):
    """The TF1 variable scope of a Keras layer: 'fire1_squeeze' -> 'fire1/squeeze'."""
    return layer_name.replace('_', '/', 1) if layer_name.startswith('fire') else layer_name


def set_checkpoint_weights(model, weights):
    """Loads {TF1 variable name: array} (a checkpoint's weights) into the model's convolutions.

    Every convolution's kernel and bias must be there and nothing else: a ValueError names the
    variables that differ.
    """
    convolutions = [layer for layer in model.layers
                    if isinstance(layer, _keras().layers.Conv2D)]
    expected = {'%s/%s' % (tf1_prefix(layer.name), kind)
                for layer in convolutions for kind in ('kernel', 'bias')}
    if expected != set(weights):
        raise ValueError('the Keras model holds %s; the weights given are %s'
                         % (sorted(expected - set(weights)) or 'no other variables',
                            sorted(set(weights) - expected) or 'no other variables'))
    for layer in convolutions:
        prefix = tf1_prefix(layer.name)
        layer.set_weights([np.asarray(weights[prefix + '/kernel']),
                           np.asarray(weights[prefix + '/bias'])])
