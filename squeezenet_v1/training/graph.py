"""The training graph: the notebook's model over the input pipeline, with what the loop needs.

A seeded run (`seed`) switches op determinism on and draws every random number from
(seed, global_step), so a resumed run matches an uninterrupted one bit for bit.
"""

import collections
import contextlib

import tensorflow as tf
from tensorflow.python.framework import config as tf_config

from squeezenet_v1 import parameters
from squeezenet_v1.data import input_pipeline
from squeezenet_v1.model import TrainingOptions, new_model
from squeezenet_v1.training import session_options

tf1 = tf.compat.v1

TrainingGraph = collections.namedtuple(
    'TrainingGraph', ['graph', 'model', 'fetches', 'summary_op', 'weights_finite', 'saver',
                      'variables', 'init_op', 'report', 'first_step', 'input_initializer',
                      'examples_per_epoch'])
TrainingGraph.__doc__ = """`fetches`, run every step: [train_op, loss, accuracy, global_step after
it, logits] (the logits tell a dead final ReLU from a model that sees nothing: dead_relu.py).

A seeded graph's input must be started with `loop.start_input(sess, training)` once global_step
is restored; an unseeded one reads a one-shot iterator (`first_step`, `input_initializer`: None).
"""


@contextlib.contextmanager
def op_determinism(seed):
    """Op determinism on for a seeded run, off for an unseeded one; afterwards as it was.

    The switch is process-wide, and off matters in a process that runs both: determinism left
    on would refuse the unseeded run's random ops. TensorFlow offers the switch-off only in its
    internal config module.
    """
    def switch(on):
        if on:
            tf.config.experimental.enable_op_determinism()
        elif tf_config.is_op_determinism_enabled():
            tf_config.disable_op_determinism()

    was_on = tf_config.is_op_determinism_enabled()
    switch(seed is not None)
    try:
        yield
    finally:
        switch(was_on)


def _optimizer(learning_rate, precision, replica):
    optimizer = tf1.train.AdamOptimizer(learning_rate)
    loss_scale = session_options.loss_scale_for(precision)
    if loss_scale is not None:
        optimizer = tf1.mixed_precision.MixedPrecisionLossScaleOptimizer(optimizer, loss_scale)
    return replica.wrap_optimizer(optimizer) if replica else optimizer


def _gate_gradients(precision):
    """minimize's gating: the notebook's GATE_OP, but GATE_NONE in bf16.

    GATE_OP groups each op's input gradients, and grappler turns that group into a control edge
    from every layer's BiasAddGrad to its Conv2DBackpropFilter; oneDNN's layout pass merges the
    two into one Conv2DBackpropFilterWithBias kernel only when they have the same control
    inputs. The values do not depend on the gating, only the order ops may run in; the float32
    graph keeps the notebook's, so its golden records and fidelity stay as they were.
    """
    return tf1.train.Optimizer.GATE_NONE if precision == 'bf16' else tf1.train.Optimizer.GATE_OP


def build_training_graph(source, batch_size, learning_rate, seed=None, precision='fp32',
                         replica=None):
    """The finalized training graph over `source`: model, input pipeline, summaries, saver.

    `fetches` is what every step runs: [train_op, loss, accuracy, global_step after it, logits].
    `replica` (a cluster.replica.Replica) makes it one worker's copy of a cluster's graph: its
    `device` puts the variables on the parameter servers, `wrap_optimizer` wraps Adam, and
    `add_ops(model, variables)` adds the cluster's own ops before the graph is finalized.
    """
    graph = tf.Graph()
    with graph.as_default(), tf1.device(replica.device if replica else None):
        if seed is not None:
            tf1.set_random_seed(seed)
        model = new_model(len(source.label_names))
        optimizer = _optimizer(learning_rate, precision, replica)
        if seed is None:  # the notebook's pipeline: a one-shot iterator, stateful draws
            first_step = input_initializer = None
            images, labels = input_pipeline.input_fn(source.record_files, model,
                                                     is_training=True, batch_size=batch_size)
            dropout_seed = None
        else:  # every draw a function of (seed, step), so a resumed run matches a straight one
            first_step = tf1.placeholder(tf.int64, [], name='first_step')
            iterator = tf1.data.make_initializable_iterator(input_pipeline.resumable_dataset(
                source.record_files, source.num_examples, model, batch_size, seed, first_step))
            input_initializer = iterator.initializer
            images, labels, step = iterator.get_next()
            dropout_seed = input_pipeline.dropout_seed(seed, step)
        model.run_model_setup(images, labels, is_training=True,
                              training=TrainingOptions(optimizer, dropout_seed,
                                                       _gate_gradients(precision)))
        summary_op = tf1.summary.merge([tf1.summary.scalar('loss', model.loss),
                                        tf1.summary.scalar('accuracy', model.accuracy)])
        # The step is the graph's: a float16 loss-scale optimizer skips a non-finite step
        # without counting it, so a Python counter would drift.
        with tf.control_dependencies([model.train_op]):
            step_after_train = tf.identity(model.global_step.read_value())
        variables = tf1.global_variables()
        weights_finite = tf.reduce_all([tf.reduce_all(tf.math.is_finite(v))
                                        for v in tf1.trainable_variables()])
        # checkpoint_writer.save keeps the newest keep_checkpoint_max itself, in crash-safe order.
        saver = tf1.train.Saver(variables, max_to_keep=None)
        init_op = tf1.global_variables_initializer()
        report = parameters.parameter_report(tf1.trainable_variables())
        if replica:
            replica.add_ops(model, variables)
    graph.finalize()  # nothing may add ops per step
    return TrainingGraph(graph, model,
                         [model.train_op, model.loss, model.accuracy, step_after_train,
                          model.logits], summary_op, weights_finite, saver, variables, init_op,
                         report, first_step, input_initializer, source.num_examples)
