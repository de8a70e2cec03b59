"""Where a cluster's variables live: the model's weights spread evenly over the ps tasks."""

import tensorflow as tf

from squeezenet_v1 import parameters
from squeezenet_v1.model import RESIZE_DIM, new_model

tf1 = tf.compat.v1


def planned_weight_shares(num_ps, num_classes=10):
    """The share of the weight bytes on each of num_ps ps tasks, as workers will place them."""
    return BalancedPs(num_ps, num_classes).weight_shares()


class BalancedPs(object):
    """replica_device_setter's ps_strategy: the model's weights spread evenly over the ps tasks.

    The default round-robin counts variables, not bytes, and Adam's slots (placed with their
    variable whatever it says) advance its count: with 2 ps it put 99% of this model's weights
    on one. Here the weights are planned largest first, each to the ps holding the fewest bytes
    so far; any other variable goes to the least loaded. Every worker builds the same graph, so
    every worker places alike.
    """

    def __init__(self, num_tasks, num_classes):
        self._bytes = [0] * num_tasks
        self._plan = {}
        with tf.Graph().as_default():
            tf1.set_random_seed(0)  # op determinism (--seed) refuses even unrun unseeded ops
            new_model(num_classes).model_layers(
                tf1.placeholder(tf.float32, [None, RESIZE_DIM, RESIZE_DIM, 3]), False)
            rows = parameters.parameter_rows(tf1.trainable_variables())
        for row in sorted(rows, key=lambda row: (-row.count, row.name)):
            task = self._least_loaded()
            self._plan[row.name] = task
            self._bytes[task] += row.count * parameters.FLOAT32_BYTES

    def weight_shares(self):
        """The share of the model's weight bytes each ps task holds, as planned."""
        total = float(sum(self._bytes))
        return [b / total for b in self._bytes]

    def _least_loaded(self):
        return self._bytes.index(min(self._bytes))

    def __call__(self, op):
        if op.name in self._plan:
            return self._plan[op.name]
        task = self._least_loaded()
        try:
            self._bytes[task] += (tf.TensorShape(op.get_attr('shape')).num_elements()
                                  * tf.as_dtype(op.get_attr('dtype')).size)
        except (ValueError, TypeError):  # not a plain variable
            pass
        return task
