"""One worker's copy of a cluster's graph, and how it runs its steps in the shared loop.

A `Replica` is what the training graph and the loop ask of a cluster (training/graph.py and
training/loop.py, `steps`): where variables go, how Adam is wrapped, the cluster's own ops,
the first step, how one step runs and what is logged at the end.
"""

import tensorflow as tf
from absl import logging

from squeezenet_v1.cluster.agreement import Agreement, is_initialized
from squeezenet_v1.cluster.bounded_steps import AsyncSteps, BoundedSteps
from squeezenet_v1.cluster.placement import BalancedPs
from squeezenet_v1.cluster.server import finished_queue
from squeezenet_v1.cluster.sync_replicas import SyncReplicas
from squeezenet_v1.training import session_options

tf1 = tf.compat.v1


class Replica(object):
    """One worker's copy of the cluster's graph (see graph.build_training_graph), and its steps."""

    def __init__(self, task, max_steps, sync_replicas, num_classes, flags):
        self.task = task
        self.flags = flags  # run_flags.AGREED_FLAGS (and model_dir): compared with the chief's
        self.task_name = task.name
        self.max_steps = max_steps
        self.device = tf1.train.replica_device_setter(
            cluster=tf1.train.ClusterSpec(task.cluster), worker_device=task.device(),
            ps_strategy=BalancedPs(len(task.ps_addresses), num_classes))
        self.sync = SyncReplicas(task) if sync_replicas else None
        # A synchronous step averages one batch of each worker: an epoch goes that much faster.
        self.batches_per_step = len(task.worker_names) if sync_replicas else 1
        self.bounded = None
        self.own_steps = 0

    def wrap_optimizer(self, optimizer):
        if self.sync:
            return self.sync.wrap(optimizer)
        self.bounded = BoundedSteps(optimizer, self.max_steps)
        return self.bounded

    def add_ops(self, model, variables):
        self.global_step = model.global_step
        self.agreement = Agreement(self.task, self.flags)
        extra = [self.bounded.tickets] if self.bounded else self.sync.staged_variables
        # What a non-chief waits for: every variable it reads initialized by the chief.
        self.ready_op = tf1.report_uninitialized_variables(variables + extra)
        # Else it warns at exit, a page of stack, when the task stops before running it.
        self.ready_op.mark_used()
        self.finished_op = tf.group(*[finished_queue(i).enqueue(self.task.name)
                                      for i in range(len(self.task.ps_addresses))])
        if self.bounded and self.task.is_chief:
            tickets = self.bounded.tickets
            self._step_initialized = is_initialized(model.global_step)
            self._tickets_initialized = is_initialized(tickets)
            self.reset_tickets = tickets.assign(model.global_step.read_value())
            self._steps_restored_away = tf1.placeholder(tf.int64, [])
            self._shift_tickets = tickets.assign_sub(self._steps_restored_away)

    def session_config(self, precision):
        config = session_options.session_config(precision)
        # The ps tasks and itself only: another worker's absence (a restart) never blocks it.
        config.device_filters.extend(['/job:ps', self.task.device()])
        return config

    def before_restore(self, sess):
        """global_step on a ps that kept running while the chief restarted, else None."""
        if self.bounded and sess.run(self._step_initialized):
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
            sess.run(self.reset_tickets)
        elif step_before_restore is not None:
            sess.run(self._shift_tickets, {self._steps_restored_away: step_before_restore
                                           - int(sess.run(self.global_step))})
        uninitialized = sess.run(self.ready_op)
        if len(uninitialized):
            raise RuntimeError('variables left uninitialized: %s' % uninitialized)

    # What the loop asks of its `steps` (training/loop.py).

    def first_step(self, sess, training):
        if self.sync and not self.task.is_chief:
            return self.sync.start_worker(sess)
        return int(sess.run(self.global_step))

    def make_run(self, sess, training, stop, summaries):
        """run(step, write_summary) -> [op, loss, accuracy, global_step after, logits(, summary)]

        One step of this worker; None when a stop was requested while it waited.
        """
        extra = [training.summary_op] if summaries else []
        stop = _StopOrRefusal(stop, lambda: self.agreement.raise_if_refused(
            sess, before=(lambda: sess.run(self.finished_op)) if self.task.is_chief else None))
        if self.sync:
            make = (self.sync.chief_steps if self.task.is_chief else self.sync.worker_steps)
            plain = make(sess, training.fetches, stop)
            with_summary = make(sess, training.fetches + extra, stop) if summaries else None
            run = lambda step, write_summary: (with_summary if write_summary else plain)(step)
        else:
            async_steps = AsyncSteps(self, sess, training, stop, extra)
            run = async_steps.run

        def counted_run(step, write_summary):
            bool(stop)  # between steps too: a refusal stops every task within a few seconds
            results = run(step, write_summary)
            if results is None or self.sync:
                self.own_steps += results is not None
                return results
            # Asynchronous: an update of this worker's only when its ticket was granted, which
            # the loop is not told: it gets the single process's fetches.
            granted = async_steps.granted_index
            self.own_steps += bool(results[granted])
            return results[:granted] + results[granted + 1:]
        return counted_run

    def finished(self, sess, step):
        logging.info('[%s] finished at global_step %d: this worker took %d of the steps%s.',
                     self.task.name, step, self.own_steps,
                     ' (each the average of one gradient from each of %d workers)'
                     % len(self.task.worker_names) if self.sync else '')


class _StopOrRefusal(object):
    """The loop's stop requests, which also raise a task's refusal when asked (see agreement.py).

    The waits for another worker ask `if stop:` as they poll, so a refusal ends them too.
    """

    def __init__(self, stop, check_refusal):
        self._stop, self._check_refusal = stop, check_refusal

    def __bool__(self):
        self._check_refusal()
        return bool(self._stop)
