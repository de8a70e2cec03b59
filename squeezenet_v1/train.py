"""The TF1 training loop: a Session over the one-shot iterator, Saver checkpoints, resume.

Shaped like the TF1 CIFAR-10 tutorial's `cifar10_train.py`: one `sess.run` per step, a fixed log
line every N steps, summaries every M steps, `model.ckpt-<step>` every K steps and at the end.
Unlike the tutorial it resumes from the newest checkpoint in model_dir instead of deleting it,
saves before exiting on SIGINT/SIGTERM, and never saves weights that are not finite.
"""

import collections
import contextlib
import functools
import os
import signal
import time

import numpy as np
import tensorflow as tf
from tensorflow.python.framework import config as tf_config
from absl import logging

from squeezenet_v1 import checkpoints
from squeezenet_v1 import datasets
from squeezenet_v1 import files
from squeezenet_v1 import input_pipeline
from squeezenet_v1 import interrupts
from squeezenet_v1 import layers
from squeezenet_v1 import params
from squeezenet_v1 import provenance
from squeezenet_v1 import session_options
from squeezenet_v1.errors import UserError
from squeezenet_v1.model import DEFAULT_LEARNING_RATE, new_model
from squeezenet_v1.model_dir_lock import model_dir_lock

tf1 = tf.compat.v1



class NonFiniteLossError(UserError):
    """Training produced a NaN or Inf; the last finite checkpoint is left as the latest."""


class TrainingInterrupted(Exception):
    """A SIGINT or SIGTERM stopped training (after saving a checkpoint, unless during a save)."""

    def __init__(self, signum, message):
        super().__init__(message)
        self.signum = signum


def set_determinism(seed):
    """Op determinism on for a seeded run (its graphs set the seed), off for an unseeded one.

    Off matters in a process that runs both: determinism left on would refuse the unseeded
    run's random ops. TensorFlow offers the switch-off only in its internal config module.
    """
    if seed is not None:
        tf.config.experimental.enable_op_determinism()
    elif tf_config.is_op_determinism_enabled():
        tf_config.disable_op_determinism()


@contextlib.contextmanager
def op_determinism(seed):
    """set_determinism(seed) inside; afterwards as it was, since the switch is process-wide."""
    was_on = tf_config.is_op_determinism_enabled()
    set_determinism(seed)
    try:
        yield
    finally:
        if was_on:
            tf.config.experimental.enable_op_determinism()
        elif tf_config.is_op_determinism_enabled():
            tf_config.disable_op_determinism()


@contextlib.contextmanager
def stop_requests():
    """Turns SIGINT/SIGTERM into a flag the loop checks between steps, then restores handlers."""
    received = []

    def handler(signum, frame):
        if received:  # a second signal while saving: give up at once, ending with its status
            raise TrainingInterrupted(
                signum, 'stopped by a second signal (%s) while saving; the checkpoint being '
                'written was discarded, the previous one is the latest'
                % signal.Signals(signum).name)
        logging.warning('Received %s: saving a checkpoint and stopping.',
                        signal.Signals(signum).name)
        received.append(signum)

    with interrupts.handled_by(handler):
        yield received


TrainingGraph = collections.namedtuple(
    'TrainingGraph', ['graph', 'model', 'fetches', 'summary_op', 'weights_finite', 'saver',
                      'variables', 'init_op', 'report', 'first_step', 'input_initializer'])
TrainingGraph.__doc__ = """`fetches`, run every step: [train_op, loss, accuracy, global_step after the step].

A seeded graph's input must be started with `start_input(sess, training)` once global_step is
restored; an unseeded one reads a one-shot iterator (`first_step`, `input_initializer`: None).
"""


def start_input(sess, training):
    """Points a seeded graph's input at the restored global_step; nothing for an unseeded one."""
    if training.input_initializer is not None:
        step = sess.run(training.model.global_step)
        sess.run(training.input_initializer, {training.first_step: step})


def build_training_graph(source, batch_size, learning_rate=DEFAULT_LEARNING_RATE, seed=None,
                         precision='fp32', replica=None):
    """The finalized training graph over `source`: model, input pipeline, summaries, saver.

    `fetches` is what every step runs: [train_op, loss, accuracy, global_step after it].
    `replica` (a distributed.Replica) makes it one worker's copy of a cluster's graph: its
    `device` puts the variables on the parameter servers, `wrap_optimizer` wraps Adam, and
    `add_ops(model, variables)` adds the cluster's own ops before the graph is finalized.
    """
    graph = tf.Graph()
    with graph.as_default(), tf1.device(replica.device if replica else None):
        if seed is not None:
            tf1.set_random_seed(seed)
        model = new_model(len(source.label_names))
        setup = functools.partial(
            model.run_model_setup, is_training=True, learning_rate=learning_rate,
            loss_scale=session_options.loss_scale_for(precision),
            wrap_optimizer=replica.wrap_optimizer if replica else None)
        if seed is None:  # the notebook's pipeline: a one-shot iterator, stateful draws
            first_step = input_initializer = None
            setup(*input_pipeline.input_fn(source.record_files, model, is_training=True,
                                           batch_size=batch_size))
        else:  # every draw a function of (seed, step), so a resumed run matches a straight one
            first_step = tf1.placeholder(tf.int64, [], name='first_step')
            iterator = tf1.data.make_initializable_iterator(input_pipeline.resumable_dataset(
                source.record_files, source.num_examples, model, batch_size, seed, first_step))
            input_initializer = iterator.initializer
            images, labels, step = iterator.get_next()
            with layers.stateless_dropout_seed(input_pipeline.dropout_seed(seed, step)):
                setup(images, labels)
        summary_op = tf1.summary.merge([tf1.summary.scalar('loss', model.loss),
                                        tf1.summary.scalar('accuracy', model.accuracy)])
        # The step is the graph's: a float16 loss-scale optimizer skips a non-finite step
        # without counting it, so a Python counter would drift.
        with tf.control_dependencies([model.train_op]):
            step_after_train = tf.identity(model.global_step.read_value())
        variables = tf1.global_variables()
        weights_finite = tf.reduce_all([tf.reduce_all(tf.math.is_finite(v))
                                        for v in tf1.trainable_variables()])
        # checkpoints.save keeps the newest keep_checkpoint_max itself, in crash-safe order.
        saver = tf1.train.Saver(variables, max_to_keep=None)
        init_op = tf1.global_variables_initializer()
        report = params.parameter_report(tf1.trainable_variables())
        if replica:
            replica.add_ops(model, variables)
    graph.finalize()  # nothing may add ops per step
    return TrainingGraph(graph, model,
                         [model.train_op, model.loss, model.accuracy, step_after_train], summary_op,
                         weights_finite, saver, variables, init_op, report, first_step,
                         input_initializer)


LoopSettings = collections.namedtuple(
    'LoopSettings', ['batch_size', 'max_steps', 'learning_rate', 'save_checkpoints_steps',
                     'keep_checkpoint_max', 'log_every_n_steps', 'save_summary_steps'])


class ModelDirError(UserError):
    """--model_dir cannot be used."""


def train(model_dir, source, batch_size=32, max_steps=1000,
          learning_rate=DEFAULT_LEARNING_RATE, save_checkpoints_steps=1000,
          keep_checkpoint_max=5, log_every_n_steps=100, save_summary_steps=100, seed=None,
          precision='fp32', run_record=None, on_start=None, after_save=None):
    """Trains until global_step reaches max_steps, resuming from model_dir. Returns the step.

    `source` is a datasets.SplitSource of training records; `run_record`, a JSON-able dict
    such as the run's flags, is written to model_dir/flags.json once every check has passed
    (resuming with other experiment flags than the last run's warns, naming each), and then
    `on_start(global_step)` is called. `after_save(checkpoint_path)` is called after every
    save but one made because of a stop signal (train_and_eval evaluates there); its time is
    left out of the examples/sec figures.
    Resumes from the newest complete checkpoint in model_dir (see checkpoints.py for what is
    adopted, kept and cleaned). Raises NonFiniteLossError on a NaN/Inf, TrainingInterrupted on
    SIGINT/SIGTERM (after saving), ModelDirLockedError when another process trains into
    model_dir, checkpoints.CheckpointMismatchError when model_dir holds another model's
    checkpoint and checkpoints.CheckpointSaveError when a save fails; a refused run writes
    nothing into model_dir.
    """
    settings = LoopSettings(batch_size, max_steps, learning_rate, save_checkpoints_steps,
                            keep_checkpoint_max, log_every_n_steps, save_summary_steps)
    training = build_training_graph(source, batch_size, learning_rate, seed, precision)
    with claimed_model_dir(model_dir, training, source, run_record, on_start) as (found,
                                                                                 resume):
        config = session_options.session_config(precision)
        with training.graph.as_default(), tf1.Session(graph=training.graph, config=config) as sess:
            restore_or_initialize(sess, training, resume)
            start_input(sess, training)
            return _train_loop(sess, training, model_dir, settings, found.complete,
                               write_graph=not resume, after_save=after_save)


def restore_or_initialize(sess, training, resume):
    """Restores the checkpoint `resume`, or initializes the variables when it is None."""
    if resume:
        checkpoints.restore(sess, training.saver, resume, training.variables)
        logging.info('Resuming from %s', resume)
    else:
        sess.run(training.init_op)
        logging.info('Starting from scratch: %d parameters (%d float32 bytes)',
                     training.report['total_parameters'], training.report['float32_bytes'])


@contextlib.contextmanager
def claimed_model_dir(model_dir, training, source, run_record=None, on_start=None):
    """Checks, creates and locks model_dir for training; yields (its Scan, the checkpoint to
    resume from or None) once flags.json and labels.txt are written and on_start was called.

    Every check that can refuse the run comes before the first write (see train()).
    """
    checked = checkpoints.latest_checkpoint(model_dir)
    if checked:
        checkpoints.check_compatible(checked, training.variables)
    try:
        os.makedirs(model_dir, exist_ok=True)
    except OSError as e:
        raise ModelDirError('--model_dir %s cannot be created (%s). Choose a folder you can '
                            'write to.' % (model_dir, e.strerror or e))
    with model_dir_lock(model_dir):
        found = checkpoints.prepare_for_training(model_dir)
        resume = os.path.join(model_dir, found.complete[-1]) if found.complete else None
        if resume and resume != checked:  # another trainer saved since the check above
            checkpoints.check_compatible(resume, training.variables)
        if on_start:
            on_start(checkpoints.global_step_of(resume) if resume else 0)
        if run_record is not None:
            if resume:
                warn_about_changed_flags(model_dir, run_record)
            files.write_json_atomic(os.path.join(model_dir, provenance.FLAGS_FILE), run_record)
        datasets.write_label_names(model_dir, source.label_names)
        yield found, resume


def warn_about_changed_flags(model_dir, run_record):
    changes = provenance.changed_experiment_flags(provenance.recorded_flags(model_dir),
                                                  run_record)
    if changes:
        # Not refused: TF1 users lowered the learning rate by hand on resume.
        logging.warning('Resuming %s with other experiment flags than its last training run: '
                        '%s.%s', model_dir, '; '.join(changes),
                        ' labels.txt now names the new data set\'s classes.'
                        if any(c.startswith('--dataset') for c in changes) else '')


def log_step(step, loss_value, accuracy_value, batch_size, steps, elapsed, output_size,
             task=None):
    """The tutorial's line for `steps` steps in `elapsed` seconds; `task` prefixes a cluster's.

    Warns first when the loss is that of all-zero logits (the notebook's dying final ReLU).
    """
    prefix = '[%s] ' % task if task else ''
    dead_relu_loss = np.log(output_size)  # all-zero logits: the uniform cross-entropy
    if abs(loss_value - dead_relu_loss) < 1e-4:
        logging.warning(
            '%sloss is ln(%d) = %.4f: every final_conv ReLU output is zero, so no gradient flows '
            '(the notebook applies ReLU to its logits). The run will not learn; start a new '
            '--model_dir with another --seed.', prefix, output_size, dead_relu_loss)
    logging.info('%sstep %d, loss = %.4f, accuracy = %.3f (%.1f examples/sec; %.3f sec/batch)',
                 prefix, step, loss_value, accuracy_value, steps * batch_size / elapsed,
                 elapsed / steps)


def _train_loop(sess, training, model_dir, settings, complete, write_graph, after_save=None):
    """Runs steps from the restored global_step to settings.max_steps; returns the last step.

    `complete` lists model_dir's complete checkpoints, oldest first; saves extend and rotate it.
    """
    model = training.model

    def save(step):
        if not sess.run(training.weights_finite):
            raise NonFiniteLossError('weights are not finite at step %d; not saving them. The '
                                     'latest checkpoint in %s is the last finite one.'
                                     % (step, model_dir))
        path, complete[:] = checkpoints.save(sess, training.saver, model_dir, step, complete,
                                             settings.keep_checkpoint_max)
        logging.info('Saved checkpoint %s', path)
        return path

    step = int(sess.run(model.global_step))
    max_steps = settings.max_steps
    if step >= max_steps:
        logging.info('global_step %d already reaches --max_steps=%d; nothing to train.',
                     step, max_steps)
        return step

    writer = tf1.summary.FileWriter(model_dir, graph=training.graph if write_graph else None)
    # Callables skip sess.run's per-call fetch parsing: less Python on every step.
    run_step = sess.make_callable(training.fetches)
    run_step_with_summary = sess.make_callable(training.fetches + [training.summary_op])
    saved_step = step
    try:
        with stop_requests() as stop:
            interval_start, interval_steps = time.time(), 0
            while step < max_steps and not stop:
                write_summary = (step + 1) % settings.save_summary_steps == 0
                results = run_step_with_summary() if write_summary else run_step()
                loss_value, accuracy_value = results[1], results[2]
                previous_step, step = step, int(results[3])
                interval_steps += 1
                if not np.isfinite(loss_value):
                    raise NonFiniteLossError(
                        'loss is %s at step %d (learning rate %g); stopping. The latest '
                        'checkpoint in %s is the last one with finite weights.'
                        % (loss_value, step, settings.learning_rate, model_dir))
                if step == previous_step:
                    continue  # the loss-scale optimizer skipped a non-finite gradient
                if write_summary:
                    writer.add_summary(results[4], step)
                if step % settings.log_every_n_steps == 0 or step == max_steps:
                    log_step(step, loss_value, accuracy_value, settings.batch_size,
                             interval_steps, time.time() - interval_start,
                             training.model.output_size)
                    interval_start, interval_steps = time.time(), 0
                if step % settings.save_checkpoints_steps == 0 or step >= max_steps:
                    save_started = time.time()
                    path = save(step)
                    saved_step = step
                    if after_save:
                        after_save(path)
                    interval_start += time.time() - save_started
            if stop and step < max_steps:
                if saved_step != step:
                    save(step)
                raise TrainingInterrupted(
                    stop[0], 'stopped by %s at step %d; checkpoint saved'
                    % (signal.Signals(stop[0]).name, step))
            if stop:
                logging.info('%s arrived after the final step was saved: the run is finished.',
                             signal.Signals(stop[0]).name)
    finally:
        writer.close()
    return step
