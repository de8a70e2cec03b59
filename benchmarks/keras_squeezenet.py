"""The notebook's SqueezeNet written as a Keras 3 model: the benchmark's peer, not the product.

Same layers, shapes, initializers (Keras defaults: Glorot-uniform kernels, zero biases), the
same loss (sparse softmax cross-entropy on logits) and Adam at 0.001, so `model.fit` does the
work the Session loop does.
"""

import keras


def _conv(x, filters, kernel_size, name):
    return keras.layers.Conv2D(filters, kernel_size, padding='same', activation='relu',
                               name=name)(x)


def _fire(x, squeeze_depth, expand_depth, name):
    squeezed = _conv(x, squeeze_depth, 1, name + '_squeeze')
    return keras.layers.Concatenate(axis=-1, name=name + '_concat')([
        _conv(squeezed, expand_depth, 1, name + '_expand1x1'),
        _conv(squeezed, expand_depth, 3, name + '_expand3x3')])


def build_keras_squeezenet(num_classes=10, resize_dim=24, learning_rate=0.001,
                           steps_per_execution=1):
    """A compiled keras.Model: images [b, 24, 24, 3] -> logits [b, num_classes]."""
    inputs = keras.Input((resize_dim, resize_dim, 3))
    x = _conv(inputs, 64, 3, 'conv1')
    x = keras.layers.MaxPooling2D(2, 2, name='pool1')(x)
    x = _fire(x, 32, 64, 'fire1')
    x = _fire(x, 32, 64, 'fire2')
    x = keras.layers.MaxPooling2D(2, 2, name='pool2')(x)
    x = _fire(x, 32, 128, 'fire3')
    x = _fire(x, 32, 128, 'fire4')
    x = keras.layers.Dropout(0.5, name='dropout')(x)
    x = _conv(x, num_classes, 1, 'final_conv')
    logits = keras.layers.GlobalAveragePooling2D(name='logits')(x)
    model = keras.Model(inputs, logits, name='squeezenet_keras')
    model.compile(optimizer=keras.optimizers.Adam(learning_rate),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=['accuracy'], steps_per_execution=steps_per_execution)
    return model
