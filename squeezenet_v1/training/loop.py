"""THE training loop, shared by a single process and every worker of a cluster.

Shaped like the TF1 CIFAR-10 tutorial's `cifar10_train.py`: one `sess.run` per step, a fixed log
line every N steps, summaries every M steps, `model.ckpt-<step>` every K steps and at the end.
It stops on a non-finite loss, saves before exiting on SIGINT/SIGTERM and never saves weights
that are not finite.

What differs between a single process and a cluster's task comes in two small objects:
- `stepper` (a `LocalSteps`, or a cluster worker's `Replica`) says how a step runs: its first
  global_step, `make_run(...)` and the task name that prefixes its log lines;
- `chief_files` (a `ChiefFiles`, or None for a cluster's non-chief worker) is who saves:
  checkpoints and summaries.
Progress is read from global_step, never counted: a cluster's other workers move it too, and a
float16 loss-scale optimizer skips a step without counting it. So the log, summary and save
periods are crossings (`step // period > last // period`), right for jumps as for single steps.
"""

import collections
import contextlib
import signal
import time

import numpy as np
import tensorflow as tf
from absl import logging

from squeezenet_v1 import dead_relu
from squeezenet_v1 import interrupts
from squeezenet_v1 import run_flags
from squeezenet_v1 import waits
from squeezenet_v1.errors import UserError
from squeezenet_v1.model_dir import checkpoint_writer

tf1 = tf.compat.v1

LoopSettings = collections.namedtuple('LoopSettings', run_flags.LOOP_SETTINGS)
LoopSettings.__doc__ = 'The flags the loop runs by (run_flags.py says what each means).'
# keep_training_when_dead, the last loop flag declared, may be left out: callers written before
# it (benchmarks, tests) keep working.
LoopSettings.__new__.__defaults__ = (False,)


StepResults = collections.namedtuple(
    'StepResults', ['train_op', 'loss', 'accuracy', 'global_step', 'logits', 'summary'])
StepResults.__new__.__defaults__ = (None,)  # a step that writes no summary fetches none
StepResults.__doc__ = 'What one step fetches; global_step is the step reached after it.'


class NonFiniteLossError(UserError):
    """Training produced a NaN or Inf; the last finite checkpoint is left as the latest."""


class DeadRunError(UserError):
    """The final ReLU died (every final_conv output zero): saved, and stopped."""


class TrainingInterrupted(Exception):
    """A SIGINT or SIGTERM stopped training (after saving a checkpoint, unless during a save)."""

    def __init__(self, signum, message):
        super().__init__(message)
        self.signum = signum


class LocalSteps(object):
    """How a single process runs its steps: one `Session.run` of the fetches each."""

    task_name = None
    batches_per_step = 1

    def first_step(self, sess, training):
        return int(sess.run(training.model.global_step))

    def make_run(self, sess, training, stop, summaries):
        """run(step, write_summary) -> [train_op, loss, accuracy, global_step after, logits(,
        summary)]."""
        del stop  # one process never waits for another: the loop checks it between steps
        # Callables skip sess.run's per-call fetch parsing: less Python on every step.
        plain = sess.make_callable(training.fetches)
        if not summaries:
            return lambda step, write_summary: plain()
        with_summary = sess.make_callable(training.fetches + [training.summary_op])
        return lambda step, write_summary: with_summary() if write_summary else plain()

    def finished(self, sess, step):
        """Called once the loop has reached max_steps."""


class ChiefFiles(object):
    """What the single process, or a cluster's chief, writes while training."""

    def __init__(self, sess, training, model_dir, complete, keep_checkpoint_max, write_graph):
        """`complete` lists model_dir's complete checkpoints, oldest first; saves extend it."""
        self.sess, self.training, self.model_dir = sess, training, model_dir
        self.complete, self.keep_checkpoint_max = complete, keep_checkpoint_max
        self.write_graph, self.writer = write_graph, None

    def open(self):
        """Starts the summaries' events file (only once there are steps to train)."""
        self.writer = tf1.summary.FileWriter(
            self.model_dir, graph=self.training.graph if self.write_graph else None)

    def save(self):
        """Saves the weights; returns (the checkpoint's path, the global_step it holds).

        In a cluster the other workers keep stepping while it is written, so the step is read
        at the save and the checkpoint named by the step it holds.
        """
        training = self.training
        step = int(self.sess.run(training.model.global_step))
        if not self.sess.run(training.weights_finite):
            raise NonFiniteLossError('weights are not finite at step %d; not saving them. %s'
                                     % (step, _last_finite_checkpoint(self)))
        with waits.announced('writing the checkpoint of step %d into %s (a slow disk?)'
                             % (step, self.model_dir)):
            path, self.complete[:] = checkpoint_writer.save(
                self.sess, training.saver, self.model_dir, step, self.complete,
                self.keep_checkpoint_max)
        logging.info('Saved checkpoint %s', path)
        return path, step

    def close(self):
        if self.writer:
            with waits.announced('flushing the TensorBoard summaries into %s' % self.model_dir):
                self.writer.close()


@contextlib.contextmanager
def stop_requests(task_name=None, saves=True):
    """Turns SIGINT/SIGTERM into a flag the loop checks between steps, then restores handlers.

    A second signal while the first is being answered (a save) stops at once.
    """
    received = []
    prefix = _prefix(task_name)

    def handler(signum, frame):
        name = signal.Signals(signum).name
        if received:
            raise TrainingInterrupted(
                signum, '%sstopped by a second signal (%s)%s' % (
                    prefix, name, ' while saving; the checkpoint being written was discarded, '
                    'the previous one is the latest' if saves else ''))
        logging.warning('%sReceived %s: %s.', prefix, name,
                        'saving a checkpoint and stopping' if saves else 'stopping')
        received.append(signum)

    with interrupts.handled_by(handler):
        yield received


class Progress(object):
    """The log line's target, epoch and time left, from global_step and a monotonic clock.

    The time left is the run's pace so far (saves and evaluations included, as they will be
    again) over the steps still to go.
    """

    def __init__(self, first_step, max_steps, batch_size, examples_per_epoch, batches_per_step=1):
        """`batches_per_step`: a synchronous cluster's step averages one batch of each worker."""
        self.first_step, self.max_steps = first_step, max_steps
        self.batch_size, self.examples_per_epoch = batch_size, examples_per_epoch
        self.images_per_step = batch_size * batches_per_step
        self.started = time.monotonic()  # a wall clock set back would make the time left < 0

    def epoch(self, step):
        return step * self.images_per_step / self.examples_per_epoch

    def seconds_left(self, step):
        done = step - self.first_step
        if done <= 0:
            return 0
        return max(0, time.monotonic() - self.started) / done * max(0, self.max_steps - step)


def clock(seconds):
    """9:11, or 1:02:03 from an hour on."""
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return '%d:%02d:%02d' % (hours, minutes, secs) if hours else '%d:%02d' % (minutes, secs)


def log_step(step, progress, loss_value, accuracy_value, steps_run, elapsed, task_name=None):
    """The tutorial's line for `steps_run` steps in `elapsed` seconds, with the target, the epoch
    and the time left; `task_name` prefixes a cluster's. The accuracy is the batch's."""
    logging.info('%sstep %d/%d (epoch %.1f), loss = %.4f, batch accuracy = %.3f (%.1f '
                 'examples/sec; %.3f sec/batch; %s left)', _prefix(task_name), step,
                 progress.max_steps, progress.epoch(step), loss_value, accuracy_value,
                 steps_run * progress.batch_size / elapsed, elapsed / steps_run,
                 clock(progress.seconds_left(step)))


def _crossed(step, last, period):
    return step // period > last // period


def train_loop(sess, training, settings, stepper, chief_files=None, after_save=None):
    """Runs steps from the restored global_step to settings.max_steps; returns the last step.

    `after_save(checkpoint_path)` runs after every save but one made because of a stop signal;
    its time, like the save's, is left out of the examples/sec figures.
    """
    task_name, max_steps = stepper.task_name, settings.max_steps
    step = stepper.first_step(sess, training)
    start_input(sess, training)  # a seeded input starts at the (cluster's) restored step
    if step >= max_steps:
        logging.info('%sglobal_step %d already reaches --max_steps=%d; nothing to train.',
                     _prefix(task_name), step, max_steps)
        return step
    if chief_files:
        chief_files.open()
    try:
        step = _run_steps(sess, training, settings, stepper, chief_files, after_save, step)
    finally:
        if chief_files:
            chief_files.close()
    stepper.finished(sess, step)
    return step


def _prefix(task_name):
    return '[%s] ' % task_name if task_name else ''


def _run_steps(sess, training, settings, stepper, chief_files, after_save, step):
    task_name, max_steps = stepper.task_name, settings.max_steps
    prefix = _prefix(task_name)
    logged = saved = summarized = step
    progress = Progress(step, max_steps, settings.batch_size, training.examples_per_epoch,
                        stepper.batches_per_step)
    diagnosed = set()  # each diagnosis of uniform predictions is said once
    with stop_requests(task_name, saves=chief_files is not None) as stop:
        run = stepper.make_run(sess, training, stop, summaries=chief_files is not None)
        interval_start, interval_steps = time.time(), 0
        while step < max_steps and not stop:
            write_summary = chief_files is not None and _crossed(step + 1, summarized,
                                                           settings.save_summary_steps)
            fetched = run(step, write_summary)
            if fetched is None:
                break  # a stop request while waiting for the other workers
            results = StepResults(*fetched)
            loss_value, accuracy_value = results.loss, results.accuracy
            previous_step, step = step, int(results.global_step)
            interval_steps += 1
            if not np.isfinite(loss_value):
                raise NonFiniteLossError(
                    '%sloss is %s at step %d (learning rate %g); stopping. %s'
                    % (prefix, loss_value, step, settings.learning_rate,
                       _last_finite_checkpoint(chief_files)))
            if step == previous_step:
                continue  # the loss-scale optimizer skipped a non-finite gradient
            if write_summary:
                chief_files.writer.add_summary(results.summary, step)
                summarized = step
            if _crossed(step, logged, settings.log_every_n_steps) or step >= max_steps:
                log_step(step, progress, loss_value, accuracy_value, interval_steps,
                         time.time() - interval_start, task_name)
                saved = _answer_uniform_predictions(results, step, settings, training,
                                                    chief_files, after_save, saved, diagnosed,
                                                    prefix)
                # A finite loss can hide weights gone to Inf: found here, not only at a save.
                if not sess.run(training.weights_finite):
                    raise NonFiniteLossError(
                        '%sweights are not finite at step %d (learning rate %g); stopping. %s'
                        % (prefix, step, settings.learning_rate,
                           _last_finite_checkpoint(chief_files)))
                logged, interval_start, interval_steps = step, time.time(), 0
            if chief_files and (_crossed(step, saved, settings.save_checkpoints_steps)
                          or step >= max_steps):
                save_started = time.time()
                path, saved = chief_files.save()
                if after_save:
                    after_save(path)
                interval_start += time.time() - save_started
        if stop and step < max_steps:
            if chief_files and saved != step:
                _, step = chief_files.save()
            raise TrainingInterrupted(stop[0], '%sstopped by %s at step %d; %s' % (
                prefix, signal.Signals(stop[0]).name, step,
                'checkpoint saved' if chief_files else 'the chief keeps the checkpoints'))
        if stop:
            logging.info('%s%s arrived after the final step was saved: the run is finished.',
                         prefix, signal.Signals(stop[0]).name)
    return step


def _answer_uniform_predictions(results, step, settings, training, chief_files, after_save,
                                saved, diagnosed, prefix):
    """Stops a dead run (DeadRunError) once its checkpoint is saved and evaluated; warns once
    of live but equal logits, or of a dead run that trains on. Returns the step saved."""
    num_classes = training.model.output_size
    diagnosis = dead_relu.diagnose(results.loss, results.logits, num_classes)
    if diagnosis == dead_relu.DEAD and not settings.keep_training_when_dead \
            and step < settings.max_steps:
        if chief_files is None:
            outcome = dead_relu.STOPPED_FOR_THE_CHIEF
        else:
            outcome = dead_relu.STOPPED
            if saved != step:
                path, saved = chief_files.save()
                if after_save:  # train_and_eval: its evaluation records the run as dead
                    after_save(path)
        raise DeadRunError('%sat step %d %s' % (prefix, step, dead_relu.message(
            diagnosis, num_classes, outcome)))
    if diagnosis and diagnosis not in diagnosed:
        diagnosed.add(diagnosis)
        outcome = dead_relu.TRAINING_ON if settings.keep_training_when_dead else \
            dead_relu.LAST_STEP
        logging.warning('%sat step %d %s', prefix, step, dead_relu.message(
            diagnosis, num_classes, outcome))
    return saved


def _last_finite_checkpoint(chief_files):
    if chief_files is None:
        return ('The latest checkpoint in the chief\'s model_dir is the last one with finite '
                'weights.')
    if not chief_files.complete:
        return 'No checkpoint was saved: %s holds none.' % chief_files.model_dir
    return 'The latest checkpoint in %s, %s, is the last one with finite weights.' % (
        chief_files.model_dir, chief_files.complete[-1])


def start_input(sess, training):
    """Points a seeded graph's input at the restored global_step; nothing for an unseeded one."""
    if training.input_initializer is not None:
        step = sess.run(training.model.global_step)
        sess.run(training.input_initializer, {training.first_step: step})
