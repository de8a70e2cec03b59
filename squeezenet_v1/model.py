"""The notebook's condensed SqueezeNet, as its `SqueezeNetModel` class.

Call sequence, as in the notebook:

    model = SqueezeNetModel(original_dim=32, resize_dim=24, output_size=10)
    image = model.image_preprocessing(record_bytes, is_training)   # per record, in tf.data
    model.run_model_setup(images, labels, is_training)
    # -> model.probs, model.predictions, model.accuracy, model.loss, model.train_op,
    #    model.global_step

Only the notebook's two defects are mended: `run_model_setup` takes `is_training`, and
`global_step` is created. `tf.layers` calls go to `squeezenet_v1.layers`, which keeps their
variable names, initializers and ops; everything else is the notebook's code.
"""

import tensorflow as tf

from squeezenet_v1 import layers

tf1 = tf.compat.v1

# Adam's own default, which the notebook used by calling AdamOptimizer().
DEFAULT_LEARNING_RATE = 0.001
ORIGINAL_DIM = 32  # CIFAR-10's images are 32x32 ...
RESIZE_DIM = 24  # ... randomly cropped to 24x24 in training, centre-cropped in evaluation.


class SqueezeNetModel(object):
    """conv1 -> pool1 -> fire1, fire2 -> pool2 -> fire3, fire4 -> dropout -> final_conv -> GAP."""

    # Model Initialization
    def __init__(self, original_dim, resize_dim, output_size):
        self.original_dim = original_dim
        self.resize_dim = resize_dim
        self.output_size = output_size

    # Random crop and flip
    def random_crop_and_flip(self, float_image):
        crop_image = tf1.random_crop(float_image, [self.resize_dim, self.resize_dim, 3])
        updated_image = tf.image.random_flip_left_right(crop_image)
        return updated_image

    # Data Augmentation
    def image_preprocessing(self, data, is_training):
        """Turns one CIFAR-10 record's 3,072 pixel values (R, G, B planes) into a model input."""
        reshaped_image = tf.reshape(data, [3, self.original_dim, self.original_dim])
        transposed_image = tf.transpose(reshaped_image, [1, 2, 0])
        float_image = tf.cast(transposed_image, tf.float32)
        if is_training:
            updated_image = self.random_crop_and_flip(float_image)
        else:
            updated_image = tf1.image.resize_image_with_crop_or_pad(
                float_image, self.resize_dim, self.resize_dim)
        standardized_image = tf.image.per_image_standardization(updated_image)
        return standardized_image

    # Convert final convolution layer to logits
    def get_logits(self, conv_layer):
        avg_pool1 = layers.average_pooling2d(
            conv_layer, [conv_layer.shape[1], conv_layer.shape[2]], 1)
        logits = layers.flatten(avg_pool1, name='logits')
        return logits

    # Convolution layer wrapper
    def custom_conv2d(self, inputs, filters, kernel_size, name):
        return layers.conv2d(
            inputs=inputs,
            filters=filters,
            kernel_size=kernel_size,
            activation=tf.nn.relu,
            padding='same',
            name=name)

    # Max pooling layer wrapper
    def custom_max_pooling2d(self, inputs, name):
        return layers.max_pooling2d(
            inputs=inputs,
            pool_size=[2, 2],
            strides=2,
            name=name)

    # SqueezeNet fire module
    def fire_module(self, inputs, squeeze_depth, expand_depth, name):
        with tf1.variable_scope(name):
            squeezed_inputs = self.custom_conv2d(
                inputs,
                squeeze_depth,
                [1, 1],
                'squeeze')
            expand1x1 = self.custom_conv2d(
                squeezed_inputs,
                expand_depth,
                [1, 1],
                'expand1x1')
            expand3x3 = self.custom_conv2d(
                squeezed_inputs,
                expand_depth,
                [3, 3],
                'expand3x3')
            return tf.concat([expand1x1, expand3x3], axis=-1)

    # Utility function for multiple fire modules
    def multi_fire_module(self, layer, params_list):
        for params in params_list:
            layer = self.fire_module(
                layer,
                params[0],
                params[1],
                params[2])
        return layer

    # Model Layers
    # inputs: [batch_size, resize_dim, resize_dim, 3]
    def model_layers(self, inputs, is_training):
        conv1 = self.custom_conv2d(
            inputs,
            64,
            [3, 3],
            'conv1')
        pool1 = self.custom_max_pooling2d(
            conv1,
            'pool1')
        fire_params1 = [
            (32, 64, 'fire1'),
            (32, 64, 'fire2')
        ]
        multi_fire1 = self.multi_fire_module(
            pool1,
            fire_params1)
        pool2 = self.custom_max_pooling2d(
            multi_fire1,
            'pool2')
        fire_params2 = [
            (32, 128, 'fire3'),
            (32, 128, 'fire4')
        ]
        multi_fire2 = self.multi_fire_module(
            pool2,
            fire_params2)
        dropout1 = layers.dropout(multi_fire2, rate=0.5,
                                  training=is_training)
        final_conv_layer = self.custom_conv2d(
            dropout1,
            self.output_size,
            [1, 1],
            'final_conv')
        return self.get_logits(final_conv_layer)

    # Set up and run model training
    def run_model_setup(self, inputs, labels, is_training=True,
                        learning_rate=DEFAULT_LEARNING_RATE, loss_scale=None,
                        wrap_optimizer=None):
        """Builds the forward pass, metrics and loss, and the Adam train op when training.

        `labels` are sparse int32 class indices of shape (batch,). `is_training` is a Python
        bool, or a boolean tensor (say `tf.compat.v1.placeholder_with_default(False, [])`) that
        switches dropout in one graph as TF1 code did; with a tensor the train op is built.
        Sets `logits`, `probs`, `predictions`, `accuracy`, `loss`, `global_step` and `train_op`
        (None when is_training is False, so evaluation and export graphs carry no optimizer).
        `loss_scale` ('dynamic' or a number) wraps Adam for float16 mixed precision;
        `wrap_optimizer(optimizer)`, when given, wraps it again (a cluster's update rule).
        """
        self.global_step = tf1.train.get_or_create_global_step()
        logits = self.model_layers(inputs, is_training)
        self.logits = logits
        self.probs = tf.nn.softmax(logits, name='probs')
        self.predictions = tf.argmax(
            self.probs, axis=-1, name='predictions')
        is_correct = tf.equal(
            tf.cast(self.predictions, tf.int32),
            labels)
        is_correct_float = tf.cast(
            is_correct,
            tf.float32)
        self.accuracy = tf.reduce_mean(
            is_correct_float)
        # calculate cross entropy
        cross_entropy = tf.nn.sparse_softmax_cross_entropy_with_logits(
            labels=labels,
            logits=logits)
        self.loss = tf.reduce_mean(
            cross_entropy)
        self.train_op = None
        if isinstance(is_training, tf.Tensor) or is_training:
            adam = tf1.train.AdamOptimizer(learning_rate)
            if loss_scale is not None:
                adam = tf1.mixed_precision.MixedPrecisionLossScaleOptimizer(adam, loss_scale)
            if wrap_optimizer is not None:
                adam = wrap_optimizer(adam)
            self.train_op = adam.minimize(
                self.loss, global_step=self.global_step)


def new_model(num_classes):
    """The notebook's model for 32x32 CIFAR-style images cropped to 24x24."""
    return SqueezeNetModel(ORIGINAL_DIM, RESIZE_DIM, num_classes)
