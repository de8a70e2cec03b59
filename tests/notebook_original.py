"""The notebook's SqueezeNetModel as it was written, run on the real tf.compat.v1.layers.

Test-only: needs tf-keras and TF_USE_LEGACY_KERAS=1 set before TensorFlow is imported. The class
body is the notebook's final code with `tf` bound to `tf.compat.v1` and the notebook's two
defects mended exactly as squeezenet_v1 mends them (marked MENDED).

Run as a script it builds the notebook's training graph on fixed inputs, takes one Adam step,
saves a tf.train.Saver checkpoint and writes the eval-mode logits and the forward graph's op
names beside it:

    TF_USE_LEGACY_KERAS=1 python tests/notebook_original.py OUT_DIR
"""

import json
import os
import sys

import numpy as np
import tensorflow

tf = tensorflow.compat.v1


class SqueezeNetModel(object):
    # Model Initialization
    def __init__(self, original_dim, resize_dim, output_size):
        self.original_dim = original_dim
        self.resize_dim = resize_dim
        self.output_size = output_size

    # Convert final convolution layer to logits
    def get_logits(self, conv_layer):
        avg_pool1 = tf.layers.average_pooling2d(conv_layer, [conv_layer.shape[1], conv_layer.shape[2]], 1)
        logits = tf.layers.flatten(avg_pool1, name = 'logits')
        return logits

    # Convolution layer wrapper
    def custom_conv2d(self, inputs, filters, kernel_size, name):
        return tf.layers.conv2d(
            inputs=inputs,
            filters=filters,
            kernel_size=kernel_size,
            activation=tf.nn.relu,
            padding='same',
            name=name)

    # Max pooling layer wrapper
    def custom_max_pooling2d(self, inputs, name):
        return tf.layers.max_pooling2d(
            inputs=inputs,
            pool_size=[2, 2],
            strides=2,
            name=name)

    # SqueezeNet fire module
    def fire_module(self, inputs, squeeze_depth, expand_depth, name):
        with tf.variable_scope(name):
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
        dropout1 = tf.layers.dropout(multi_fire2, rate=0.5,
            training=is_training)
        final_conv_layer = self.custom_conv2d(
            dropout1,
            self.output_size,
            [1, 1],
            'final_conv')
        return self.get_logits(final_conv_layer)

    # Set up and run model training
    def run_model_setup(self, inputs, labels, is_training):  # MENDED: is_training was missing
      self.global_step = tf.train.get_or_create_global_step()  # MENDED: was never created
      logits = self.model_layers(inputs, is_training)
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
      adam = tf.train.AdamOptimizer()
      self.train_op = adam.minimize(
          self.loss, global_step=self.global_step)


def fixed_inputs(batch=8, dim=24, seed=0):
    """Deterministic standardized-looking images and labels shared with the test."""
    rng = np.random.RandomState(seed)
    images = rng.normal(size=(batch, dim, dim, 3)).astype(np.float32)
    labels = (np.arange(batch) % 10).astype(np.int32)
    return images, labels


def forward_op_names(graph, types=('Conv2D', 'BiasAdd', 'Relu', 'MaxPool', 'AvgPool',
                                   'ConcatV2', 'Softmax', 'ArgMax')):
    """(name, type) of the forward pass's compute ops: the graph's golden structure."""
    return sorted([op.name, op.type] for op in graph.get_operations() if op.type in types)


def main(out_dir):
    images, labels = fixed_inputs()
    graph = tf.Graph()
    with graph.as_default():
        tf.set_random_seed(1)
        inputs = tf.placeholder(tf.float32, [None, 24, 24, 3])
        label_input = tf.placeholder(tf.int32, [None])
        model = SqueezeNetModel(32, 24, 10)
        model.run_model_setup(inputs, label_input, is_training=True)
        with tf.variable_scope(tf.get_variable_scope(), reuse=True):
            eval_logits = model.model_layers(inputs, is_training=False)
        saver = tf.train.Saver()
        with tf.Session() as sess:
            sess.run(tf.global_variables_initializer())
            sess.run(model.train_op, {inputs: images, label_input: labels})
            path = saver.save(sess, os.path.join(out_dir, 'model.ckpt'),
                              global_step=model.global_step)
            np.save(os.path.join(out_dir, 'eval_logits.npy'),
                    sess.run(eval_logits, {inputs: images}))
    # The way TF1 code switched one graph between training and evaluation: a boolean tensor.
    with tf.Graph().as_default():
        tf.set_random_seed(1)
        inputs = tf.placeholder(tf.float32, [None, 24, 24, 3])
        label_input = tf.placeholder(tf.int32, [None])
        is_training = tf.placeholder_with_default(False, [])
        model = SqueezeNetModel(32, 24, 10)
        model.run_model_setup(inputs, label_input, is_training)
        saver = tf.train.Saver()
        with tf.Session() as sess:
            sess.run(tf.global_variables_initializer())
            sess.run(model.train_op, {inputs: images, label_input: labels, is_training: True})
            tensor_path = saver.save(sess, os.path.join(out_dir, 'tensor.ckpt'),
                                     global_step=model.global_step)
            np.save(os.path.join(out_dir, 'tensor_eval_logits.npy'),
                    sess.run(model.probs, {inputs: images}))
    with tf.Graph().as_default() as forward_graph:
        inputs = tf.placeholder(tf.float32, [None, 24, 24, 3])
        model = SqueezeNetModel(32, 24, 10)
        logits = model.model_layers(inputs, is_training=False)
        tf.nn.softmax(logits, name='probs')
    with open(os.path.join(out_dir, 'original.json'), 'w') as f:
        json.dump({'checkpoint': path, 'tensor_checkpoint': tensor_path,
                   'forward_ops': forward_op_names(forward_graph),
                   'tf_version': tensorflow.__version__}, f)


if __name__ == '__main__':
    main(sys.argv[1])
