"""Training beyond one machine on TensorFlow's gRPC runtime: between-graph replication, as TF1 did.

Every task of TF_CONFIG's cluster (see cluster.py) runs run_train.py with the same flags:
- a ps task serves the variables (`serve`) and returns once every worker has finished;
- every worker (`train_worker`) builds the same training graph under replica_device_setter
  (variables on the ps tasks, everything else on itself), trains on its own shuffle of the data
  and logs the tutorial's examples/sec line with its task name; it stops when global_step
  reaches max_steps and tells each ps so;
- the chief (the chief task, else worker 0) alone touches model_dir, under its lock: it
  initializes or restores, writes checkpoints (checkpoints.save, crash-safe as in one process),
  summaries, flags.json and labels.txt; the runner adds runs.jsonl and, in train_and_eval, the
  evaluation. Non-chief workers write nothing there.
Updates are asynchronous by default (each worker applies its gradient as soon as it has it,
TF1's default for this layout); with sync_replicas each step averages one gradient from every
worker (sync_replicas.py). Either way global_step stops exactly at max_steps.

Checkpoints are the single-process ones: the Saver is not sharded, so the chief writes every
variable itself (no shared file system needed), the .meta is saved without device placement,
and variables are restored by name, so a cluster's model_dir evaluates, predicts, exports and
resumes in one process, and a cluster resumes a single process's model_dir.
"""

import contextlib
import re
import signal
import time

import numpy as np
import tensorflow as tf
from absl import logging

from squeezenet_v1 import checkpoints
from squeezenet_v1 import cluster
from squeezenet_v1 import interrupts
from squeezenet_v1 import params
from squeezenet_v1 import session_options
from squeezenet_v1 import train as training_loop
from squeezenet_v1.errors import UserError
from squeezenet_v1.model import RESIZE_DIM, new_model
from squeezenet_v1.sync_replicas import SyncReplicas

tf1 = tf.compat.v1

# How long a worker waits for the ps tasks to answer at start (a cluster manager may start the
# tasks minutes apart), and a non-chief for the chief to initialize the variables (the wait
# MonitoredTrainingSession allowed).
WAIT_FOR_PS_SECS = 600
WAIT_FOR_CHIEF_SECS = 7200
_POLL_SECS = 0.5
_WAITING_LOG_SECS = 15
# When every step ticket is taken but global_step stays below max_steps this long, a worker
# holding one was killed: the chief hands them out again.
_TICKET_STALL_SECS = 5
_FINISHED_QUEUE_CAPACITY = 1000


# Lines of a TensorFlow error message that say where, not what.
_ERROR_BOILERPLATE = re.compile(r'^(Graph execution error:|From /job:\S+:|=+|Detected at node.*|'
                                r'Additional GRPC error information.*|Recent warning and error.*)$')


class ClusterError(UserError):
    """A task of the cluster could not be started, reached, or was lost during training."""


def start_server(task):
    """This task's gRPC server, listening on its TF_CONFIG port."""
    cluster.check_port_free(task)  # once more: it may have been taken since the first check
    try:
        server = tf1.train.Server(tf1.train.ClusterSpec(task.cluster), job_name=task.type,
                                  task_index=task.index, start=True)
    except tf.errors.OpError as e:
        raise ClusterError('could not start the gRPC server of %s at %s (%s). Give this task a '
                           'free port in TF_CONFIG.' % (task.name, task.address, _first_line(e)))
    logging.info('[%s] gRPC server listening at %s (cluster: %s).', task.name, task.address,
                 ', '.join('%s %s' % (job, ' '.join(a)) for job, a in sorted(task.cluster.items())))
    return server


def _cluster_session(target, graph, config):
    """A session on the cluster that is never closed.

    Closing a gRPC session calls every task it used and waits, without end, for one that is gone
    (a ps that has finished or died), and a process has nothing to release on a ps it is
    leaving. So a cluster session is let go unclosed: the process ends soon after.
    """
    sess = tf1.Session(target, graph=graph, config=config)
    sess.close = lambda: None  # Session.__del__ calls it too
    return sess


def _finished_queue(ps_index):
    """The queue on ps task `ps_index` that each worker puts its name on when it has finished."""
    with tf1.device('/job:ps/task:%d' % ps_index):
        return tf1.FIFOQueue(_FINISHED_QUEUE_CAPACITY, tf.string, shapes=[[]],
                             shared_name='squeezenet_v1_finished_%d' % ps_index,
                             name='finished_%d' % ps_index)


def serve(task):
    """Serves a ps task's variables until every worker has finished, then returns.

    A worker that never reports (killed for good after the chief finished) is not waited for
    once its port is closed.
    """
    server = start_server(task)
    graph = tf.Graph()
    with graph.as_default():
        queue = _finished_queue(task.index)
        take_all = queue.dequeue_many(queue.size())
    graph.finalize()
    # Only this task: the others may not be up yet, and need not be.
    sess = _cluster_session(server.target, graph,
                            tf1.ConfigProto(device_filters=[task.device()]))
    logging.info('[%s] serving variables; stopping once %s have finished.', task.name,
                 ', '.join(task.worker_names))
    finished, unreachable_since, last_probe = set(), None, 0.0
    while True:
        for name in sess.run(take_all):
            name = name.decode('utf-8')
            if name not in finished:
                finished.add(name)
                logging.info('[%s] %s has finished (%d of %d workers).', task.name, name,
                             len(finished), len(task.worker_names))
        missing = [n for n in task.worker_names if n not in finished]
        if not missing:
            break
        if task.chief_name in finished and time.time() - last_probe > 2:
            last_probe = time.time()
            if any(cluster.reachable(task.address_of(n)) for n in missing):
                unreachable_since = None
            elif unreachable_since is None:
                unreachable_since = last_probe
            elif last_probe - unreachable_since >= 4:
                logging.warning('[%s] the chief has finished and %s never reported, their ports '
                                'closed: stopping without them.', task.name, ', '.join(missing))
                break
        interrupts.sleep(_POLL_SECS)
    logging.info('[%s] every worker has finished: this ps stops.', task.name)


class Replica(object):
    """One worker's copy of the cluster's graph (see train.build_training_graph), and its steps."""

    def __init__(self, task, max_steps, sync_replicas, num_classes):
        self.task = task
        self.max_steps = max_steps
        self.device = tf1.train.replica_device_setter(
            cluster=tf1.train.ClusterSpec(task.cluster), worker_device=task.device(),
            ps_strategy=_BalancedPs(len(task.ps_addresses), num_classes))
        self.sync = SyncReplicas(task) if sync_replicas else None
        self._bounded = None

    def wrap_optimizer(self, optimizer):
        if self.sync:
            return self.sync.wrap(optimizer)
        self._bounded = _BoundedSteps(optimizer, self.max_steps)
        return self._bounded

    def add_ops(self, model, variables):
        self.global_step = model.global_step
        extra = [self._bounded.tickets] if self._bounded else self.sync.staged_variables
        # What a non-chief waits for: every variable it reads initialized by the chief.
        self.ready_op = tf1.report_uninitialized_variables(variables + extra)
        self.finished_op = tf.group(*[_finished_queue(i).enqueue(self.task.name)
                                      for i in range(len(self.task.ps_addresses))])
        if self._bounded and self.task.is_chief:
            tickets = self._bounded.tickets
            self._step_initialized = tf1.is_variable_initialized(model.global_step)
            self._tickets_initialized = tf1.is_variable_initialized(tickets)
            self._reset_tickets = tickets.assign(model.global_step.read_value())
            self._steps_restored_away = tf1.placeholder(tf.int64, [])
            self._shift_tickets = tickets.assign_sub(self._steps_restored_away)

    def session_config(self, precision):
        config = session_options.session_config(precision)
        # The ps tasks and itself only: another worker's absence (a restart) never blocks it.
        config.device_filters.extend(['/job:ps', self.task.device()])
        return config

    def before_restore(self, sess):
        """global_step on a ps that kept running while the chief restarted, else None."""
        if self._bounded and sess.run(self._step_initialized):
            return int(sess.run(self.global_step))
        return None

    def start_chief(self, sess, step_before_restore):
        """After the chief initialized or restored: the update rule's own state, then a check.

        Tickets taken minus global_step counts the steps under way; a restore that takes
        global_step back takes the tickets back as much, so no step is lost or added.
        """
        if self.sync:
            self.sync.start_chief(sess)
        elif not sess.run(self._tickets_initialized):
            sess.run(self._reset_tickets)
        elif step_before_restore is not None:
            sess.run(self._shift_tickets, {self._steps_restored_away: step_before_restore
                                           - int(sess.run(self.global_step))})
        uninitialized = sess.run(self.ready_op)
        if len(uninitialized):
            raise RuntimeError('variables left uninitialized: %s' % uninitialized)

    def counted(self, results):
        """Whether a step's results are an update of this worker's (async: its ticket held)."""
        return True if self.sync else bool(results[4])

    def first_step(self, sess):
        if self.sync and not self.task.is_chief:
            return self.sync.start_worker(sess)
        return int(sess.run(self.global_step))

    def make_steps(self, sess, training, stop, summaries):
        """run(step, write_summary) -> [op, loss, accuracy, global_step after, ...(, summary)]

        One step of this worker; None when a stop was requested while it waited.
        """
        extra = [training.summary_op] if summaries else []
        if self.sync:
            make = (self.sync.chief_steps if self.task.is_chief else self.sync.worker_steps)
            plain = make(sess, training.fetches, stop)
            with_summary = make(sess, training.fetches + extra, stop) if summaries else None
            return lambda step, write_summary: (with_summary if write_summary else plain)(step)
        return _AsyncSteps(self, sess, training, stop, extra).run


def planned_weight_shares(num_ps, num_classes=10):
    """The share of the weight bytes on each of num_ps ps tasks, as workers will place them."""
    return _BalancedPs(num_ps, num_classes).weight_shares()


class _BalancedPs(object):
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
            rows = params.parameter_rows(tf1.trainable_variables())
        for row in sorted(rows, key=lambda row: (-row.count, row.name)):
            task = self._least_loaded()
            self._plan[row.name] = task
            self._bytes[task] += row.count * params.FLOAT32_BYTES

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


class _BoundedSteps(tf1.train.Optimizer):
    """Asynchronous updates that stop global_step at max_steps exactly.

    Each worker applies its gradient as soon as it has it. Workers stepping at once near the
    end would each add one past max_steps, so a step first takes a ticket (an atomic add on a
    ps) and applies its gradient only when the ticket is within max_steps.
    """

    def __init__(self, optimizer, max_steps):
        super(_BoundedSteps, self).__init__(use_locking=False, name='BoundedSteps')
        self._optimizer = optimizer
        self._max_steps = max_steps

    def compute_gradients(self, *args, **kwargs):
        return self._optimizer.compute_gradients(*args, **kwargs)

    def apply_gradients(self, grads_and_vars, global_step=None, name=None):
        # Not a global variable: checkpoints hold what a single process saves.
        self.tickets = tf1.Variable(tf.constant(0, tf.int64), trainable=False, collections=[],
                                    use_resource=True, name='step_tickets')
        self.granted = self.tickets.assign_add(1) <= self._max_steps
        # Adam's slots are created outside the branch (apply_gradients lifts them out).
        train_op = tf.cond(self.granted,
                           lambda: tf.group(self._optimizer.apply_gradients(
                               grads_and_vars, global_step=global_step)),
                           tf.no_op, name='apply_within_max_steps')
        # Adam files its op, which lives in the branch's function, as the graph's train op; a
        # .meta naming it would not import. The op to run is the cond.
        train_ops = tf1.get_collection_ref(tf1.GraphKeys.TRAIN_OP)
        train_ops[:] = [op for op in train_ops if op.graph is train_op.graph] + [train_op]
        return train_op


class _AsyncSteps(object):
    """One asynchronous step: retried while every ticket is taken but max_steps is not reached."""

    def __init__(self, replica, sess, training, stop, extra):
        base = list(training.fetches) + [replica._bounded.granted]
        self._plain = sess.make_callable(base)
        self._with_summary = sess.make_callable(base + extra) if extra else None
        self._replica, self._sess, self._stop = replica, sess, stop

    def run(self, step, write_summary):
        replica = self._replica
        refused_at = None
        while True:
            results = (self._with_summary if write_summary else self._plain)()
            if results[4] or results[3] >= replica.max_steps:
                return results
            if self._stop:
                return None
            if refused_at is None or refused_at[1] != results[3]:
                refused_at = (time.time(), results[3])
            elif replica.task.is_chief and time.time() - refused_at[0] > _TICKET_STALL_SECS:
                logging.warning('[%s] global_step has stayed at %d, below --max_steps=%d, with '
                                'every step taken for %d s: a worker was stopped during its '
                                'step. Taking those steps again.', replica.task.name,
                                results[3], replica.max_steps, _TICKET_STALL_SECS)
                self._sess.run(replica._reset_tickets)
                refused_at = None
            time.sleep(_POLL_SECS / 10)


def train_worker(task, model_dir, source, batch_size=32, max_steps=1000,
                 learning_rate=training_loop.DEFAULT_LEARNING_RATE, save_checkpoints_steps=1000,
                 keep_checkpoint_max=5, log_every_n_steps=100, save_summary_steps=100, seed=None,
                 precision='fp32', sync_replicas=False, run_record=None, on_start=None):
    """Trains as worker `task` of its cluster until global_step reaches max_steps; returns it.

    The chief takes the arguments of train.train and does what it does with model_dir; a
    non-chief worker ignores model_dir, run_record and on_start. Raises ClusterError when a ps
    is lost or cannot be reached, and train.train's errors otherwise.
    """
    settings = training_loop.LoopSettings(batch_size, max_steps, learning_rate,
                                          save_checkpoints_steps, keep_checkpoint_max,
                                          log_every_n_steps, save_summary_steps)
    server = start_server(task)
    replica = Replica(task, max_steps, sync_replicas, len(source.label_names))
    if seed is not None:
        seed += task.worker_number  # the same seed would give every worker the same batches
    training = training_loop.build_training_graph(source, batch_size, learning_rate, seed,
                                                  precision, replica=replica)
    config = replica.session_config(precision)
    if not task.is_chief:
        sess = _open(task, server, training, config)
        return _guarded(task, lambda: _train_non_chief(sess, task, replica, training, settings))
    with training_loop.claimed_model_dir(model_dir, training, source, run_record,
                                         on_start) as (found, resume):
        sess = _open(task, server, training, config)
        with training.graph.as_default():
            return _guarded(task, lambda: _train_chief(sess, task, replica, training, settings,
                                                       model_dir, found.complete, resume))


def _open(task, server, training, config):
    """A session on this worker's server, once every ps answers (WAIT_FOR_PS_SECS at most)."""
    give_up, logged = time.time() + WAIT_FOR_PS_SECS, time.time()
    for i, address in enumerate(task.ps_addresses):
        while not cluster.reachable(address):
            if time.time() > give_up:
                raise ClusterError('ps:%d at %s did not answer within %d s. Start every task of '
                                   'the cluster in TF_CONFIG (python -m '
                                   'squeezenet_v1.local_cluster starts one on this machine).'
                                   % (i, address, WAIT_FOR_PS_SECS))
            if time.time() - logged > _WAITING_LOG_SECS:
                logging.info('[%s] waiting for ps:%d at %s to start.', task.name, i, address)
                logged = time.time()
            interrupts.sleep(_POLL_SECS)
    return _cluster_session(server.target, training.graph, config)


def _guarded(task, work):
    """work(), with a lost ps reported as a ClusterError naming it."""
    try:
        return work()
    except (tf.errors.UnavailableError, tf.errors.AbortedError,
            checkpoints.CheckpointSaveError) as e:
        lost = _lost_ps(task, e)
        if lost is None:
            raise
        raise lost from None


def _lost_ps(task, error):
    """A ClusterError naming the ps tasks the error names or that no longer answer, or None."""
    text = str(getattr(error, 'message', None) or error)
    named = {int(i) for i in re.findall(r'/job:ps/replica:\d+/task:(\d+)', text)}
    gone = {i for i, address in enumerate(task.ps_addresses)
            if i in named or not cluster.reachable(address)}
    if gone:
        what = ', '.join('ps:%d at %s' % (i, task.ps_addresses[i]) for i in sorted(gone))
    elif isinstance(error, tf.errors.OpError):
        what = 'contact with the cluster'
    else:
        return None
    return ClusterError(
        '[%s] lost %s (%s). Restart every task of the cluster; the chief resumes from the '
        'latest checkpoint in its model_dir.' % (task.name, what, _first_line(error)))


def _train_chief(sess, task, replica, training, settings, model_dir, complete, resume):
    step_before_restore = replica.before_restore(sess)
    training_loop.restore_or_initialize(sess, training, resume)
    replica.start_chief(sess, step_before_restore)
    writer = tf1.summary.FileWriter(model_dir, graph=None if resume else training.graph)
    try:
        step = _train_loop(sess, replica, training, settings,
                           _ChiefFiles(sess, training, model_dir, complete, writer, settings))
    finally:
        writer.close()
    sess.run(replica.finished_op)
    return step


def _train_non_chief(sess, task, replica, training, settings):
    give_up, logged = time.time() + WAIT_FOR_CHIEF_SECS, time.time()
    while len(sess.run(replica.ready_op)):
        if time.time() > give_up:
            raise ClusterError('[%s] the chief (%s at %s) did not initialize the variables '
                               'within %d s. Start it, or check its log.'
                               % (task.name, task.chief_name, task.address_of(task.chief_name),
                                  WAIT_FOR_CHIEF_SECS))
        if time.time() - logged > _WAITING_LOG_SECS:
            logging.info('[%s] waiting for the chief (%s) to initialize or restore the '
                         'variables.', task.name, task.chief_name)
            logged = time.time()
        interrupts.sleep(_POLL_SECS)
    step = _train_loop(sess, replica, training, settings, None)
    sess.run(replica.finished_op)
    return step


class _ChiefFiles(object):
    """What only the chief writes during training: checkpoints and summaries."""

    def __init__(self, sess, training, model_dir, complete, writer, settings):
        self.sess, self.training, self.model_dir = sess, training, model_dir
        self.complete, self.writer, self.settings = complete, writer, settings

    def save(self):
        """Saves the weights; returns the global_step the checkpoint holds (and is named by).

        In asynchronous training the other workers keep stepping while it is written, so the
        step is read at the save, and the checkpoint named by the step it ended up holding.
        """
        training = self.training
        step = int(self.sess.run(training.model.global_step))
        if not self.sess.run(training.weights_finite):
            raise training_loop.NonFiniteLossError(
                'weights are not finite at step %d; not saving them. The latest checkpoint in '
                '%s is the last finite one.' % (step, self.model_dir))
        path, self.complete[:] = checkpoints.save(
            self.sess, training.saver, self.model_dir, step, self.complete,
            self.settings.keep_checkpoint_max)
        logging.info('Saved checkpoint %s', path)
        return checkpoints.step_of(path)


def _train_loop(sess, replica, training, settings, chief):
    """Steps until global_step reaches max_steps; returns the last global_step seen.

    `chief` (_ChiefFiles, None for a non-chief) saves and writes summaries when global_step
    passes a multiple of their period: the other workers move it too, so it jumps.
    """
    task, max_steps = replica.task, settings.max_steps
    step = replica.first_step(sess)
    training_loop.start_input(sess, training)  # a seeded input starts at the cluster's step
    if step >= max_steps:
        logging.info('[%s] global_step %d already reaches --max_steps=%d; nothing to train.',
                     task.name, step, max_steps)
        return step
    logged = saved = summarized = step
    own_steps = 0
    interval_start, interval_steps = time.time(), 0
    with (training_loop.stop_requests() if chief else _stop_requests(task)) as stop:
        run = replica.make_steps(sess, training, stop, summaries=chief is not None)
        while step < max_steps and not stop:
            write_summary = chief is not None and (
                step + 1 - summarized >= settings.save_summary_steps)
            results = run(step, write_summary)
            if results is None:
                break  # a stop request while waiting for the others
            loss_value, accuracy_value, step = results[1], results[2], int(results[3])
            own_steps += replica.counted(results)
            interval_steps += 1
            if not np.isfinite(loss_value):
                raise training_loop.NonFiniteLossError(
                    '[%s] loss is %s at step %d (learning rate %g); stopping. The latest '
                    'checkpoint in the chief\'s model_dir is the last one with finite weights.'
                    % (task.name, loss_value, step, settings.learning_rate))
            if write_summary:
                chief.writer.add_summary(results[-1], step)
                summarized = step
            if (step // settings.log_every_n_steps > logged // settings.log_every_n_steps
                    or step >= max_steps):
                training_loop.log_step(step, loss_value, accuracy_value, settings.batch_size,
                                       interval_steps, time.time() - interval_start,
                                       training.model.output_size, task=task.name)
                logged, interval_start, interval_steps = step, time.time(), 0
            if chief and (step // settings.save_checkpoints_steps
                          > saved // settings.save_checkpoints_steps or step >= max_steps):
                saved = chief.save()
        if stop and step < max_steps:
            if chief and saved != step:
                step = chief.save()
            raise training_loop.TrainingInterrupted(
                stop[0], '[%s] stopped by %s at step %d; %s' % (
                    task.name, signal.Signals(stop[0]).name, step,
                    'checkpoint saved' if chief else 'the chief keeps the checkpoints'))
    logging.info('[%s] finished at global_step %d: this worker took %d of the steps%s.',
                 task.name, step, own_steps,
                 ' (each the average of one gradient from each of %d workers)'
                 % len(task.worker_names) if replica.sync else '')
    return step


@contextlib.contextmanager
def _stop_requests(task):
    """SIGINT/SIGTERM as a flag the loop checks between steps (a non-chief saves nothing)."""
    received = []

    def handler(signum, frame):
        logging.warning('[%s] received %s: stopping.', task.name, signal.Signals(signum).name)
        received.append(signum)

    with interrupts.handled_by(handler):
        yield received


def _first_line(error):
    """The line of a (TensorFlow) error that says what happened, not 'Graph execution error:'."""
    message = str(getattr(error, 'message', None) or error)
    for line in message.splitlines():
        line = re.sub(r'^[A-Z_]+: ', '', line.strip())  # a status code: the error's type says it
        if line and not _ERROR_BOILERPLATE.match(line):
            return line
    return type(error).__name__
