"""The notebook's condensed SqueezeNet, as its `SqueezeNetModel` class.

Call sequence, as in the notebook:

    model = SqueezeNetModel(original_dim=32, resize_dim=24, output_size=10)
    image = model.image_preprocessing(record_bytes, is_training)   # per record, in tf.data
    model.run_model_setup(images, labels, is_training)
    # -> model.probs, model.predictions, model.accuracy, model.loss, model.train_op,
    #    model.global_step

Every difference from the notebook's code:
- `run_model_setup(inputs, labels, is_training=True, training=None)`: the notebook's version
  used an undefined `is_training` and `self.global_step`; here is_training is an argument
  (a Python bool or a boolean tensor) and global_step is created. It also sets `self.logits`,
  and `train_op` is None when is_training is False, so evaluation and export graphs carry no
  optimizer.
- `training`, a `TrainingOptions`, carries what training adds: the optimizer (default: the
  notebook's `AdamOptimizer()`) and a seeded run's dropout seed.
- `image_preprocessing(data, is_training, seed=None)` and `random_crop_and_flip(float_image,
  seed=None)`: given a seed (a [2] int64 tensor), the crop and flip are stateless draws from it,
  so a seeded run resumed at any step continues as the uninterrupted one. Without it they are
  the notebook's ops.
- `model_layers(inputs, is_training, dropout_seed=None)` passes the dropout seed on.
- `tf.layers` calls go to `squeezenet_v1.layers`, which keeps their variable names,
  initializers and ops (tf.compat.v1.layers needs tf-keras on TensorFlow 2.16+).
- `random_crop` and `resize_image_with_crop_or_pad` are reached through `tf.compat.v1`.
"""

import collections

import tensorflow as tf

from squeezenet_v1 import layers

tf1 = tf.compat.v1

ORIGINAL_DIM = 32  # CIFAR-10's images are 32x32 ...
RESIZE_DIM = 24  # ... randomly cropped to 24x24 in training, centre-cropped in evaluation.

TrainingOptions = collections.namedtuple('TrainingOptions',
                                         ['optimizer', 'dropout_seed', 'gate_gradients'])
TrainingOptions.__new__.__defaults__ = (None, None, tf1.train.Optimizer.GATE_OP)
TrainingOptions.__doc__ = """What training adds to run_model_setup.

`optimizer`: a tf.compat.v1 optimizer (None: the notebook's AdamOptimizer()); `dropout_seed`:
a [2] int64 tensor the dropout mask is drawn from statelessly (None: a stateful draw);
`gate_gradients`: minimize's, the notebook's GATE_OP by default (see training/graph.py for
where bf16 sets GATE_NONE).
"""


class SqueezeNetModel(object):
    """conv1 -> pool1 -> fire1, fire2 -> pool2 -> fire3, fire4 -> dropout -> final_conv -> GAP."""

    # Model Initialization
    def __init__(self, original_dim, resize_dim, output_size):
        self.original_dim = original_dim
        self.resize_dim = resize_dim
        self.output_size = output_size

    # Random crop and flip
    def random_crop_and_flip(self, float_image, seed=None):
        if seed is not None:  # a seeded run's stateless draws (see the module docstring)
            return self._stateless_crop_and_flip(float_image, seed)
        crop_image = tf1.random_crop(float_image, [self.resize_dim, self.resize_dim, 3])
        updated_image = tf.image.random_flip_left_right(crop_image)
        return updated_image

    def _stateless_crop_and_flip(self, float_image, seed):
        crop_seed, flip_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
        crop = tf.image.stateless_random_crop(
            float_image, [self.resize_dim, self.resize_dim, 3], crop_seed)
        return tf.image.stateless_random_flip_left_right(crop, flip_seed)

    # Data Augmentation
    def image_preprocessing(self, data, is_training, seed=None):
        """Turns one CIFAR-10 record's 3,072 pixel values (R, G, B planes) into a model input."""
        reshaped_image = tf.reshape(data, [3, self.original_dim, self.original_dim])
        transposed_image = tf.transpose(reshaped_image, [1, 2, 0])
        float_image = tf.cast(transposed_image, tf.float32)
        if is_training:
            if seed is None:
                updated_image = self.random_crop_and_flip(float_image)
            else:
                updated_image = self.random_crop_and_flip(float_image, seed)
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
    def model_layers(self, inputs, is_training, dropout_seed=None):
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
                                  training=is_training, stateless_seed=dropout_seed)
        final_conv_layer = self.custom_conv2d(
            dropout1,
            self.output_size,
            [1, 1],
            'final_conv')
        return self.get_logits(final_conv_layer)

    def _check_setup_inputs(self, inputs, labels):
        """A wrong input is one line naming what run_model_setup takes, before any op is built."""
        if tf.executing_eagerly():
            raise RuntimeError(
                'run_model_setup builds a TF1 graph: call '
                'tf.compat.v1.disable_eager_execution() first, or build it inside '
                '`with tf.Graph().as_default():`.')
        dim = self.resize_dim
        takes = ('run_model_setup takes float32 images [batch, %d, %d, 3], preprocessed (cropped '
                 'to %dx%d and standardized, as image_preprocessing gives them; a SavedModel '
                 'export takes the raw uint8 [batch, %d, %d, 3]), and int32 labels [batch]'
                 % (dim, dim, dim, dim, self.original_dim, self.original_dim))
        inputs, labels = tf.convert_to_tensor(inputs), tf.convert_to_tensor(labels)
        if inputs.dtype != tf.float32 or not inputs.shape.is_compatible_with(
                [None, dim, dim, 3]):
            raise ValueError('%s; its images are %s.' % (takes, _describe(inputs)))
        if labels.dtype != tf.int32 or not labels.shape.is_compatible_with([None]):
            raise ValueError('%s; its labels are %s.' % (takes, _describe(labels)))
        return inputs, labels

    # Set up and run model training
    def run_model_setup(self, inputs, labels, is_training=True, training=None):
        """Builds the forward pass, metrics and loss, and the train op when training.

        `labels` are sparse int32 class indices of shape (batch,). `is_training` is a Python
        bool, or a boolean tensor (say `tf.compat.v1.placeholder_with_default(False, [])`) that
        switches dropout in one graph as TF1 code did; with a tensor the train op is built.
        Sets `logits`, `probs`, `predictions`, `accuracy`, `loss`, `global_step` and `train_op`
        (None when is_training is False). `training` is a TrainingOptions.
        """
        inputs, labels = self._check_setup_inputs(inputs, labels)
        training = training or TrainingOptions()
        self.global_step = tf1.train.get_or_create_global_step()
        logits = self.model_layers(inputs, is_training, training.dropout_seed)
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
            adam = training.optimizer or tf1.train.AdamOptimizer()
            self.train_op = adam.minimize(
                self.loss, global_step=self.global_step, gate_gradients=training.gate_gradients)


def _describe(tensor):
    shape = tensor.shape
    dims = '?' if shape.rank is None else ', '.join(
        'None' if d is None else str(d) for d in shape.as_list())
    return '%s [%s]' % (tensor.dtype.name, dims)


def new_model(num_classes):
    """The notebook's model for 32x32 CIFAR-style images cropped to 24x24."""
    return SqueezeNetModel(ORIGINAL_DIM, RESIZE_DIM, num_classes)
