"""Asynchronous steps that stop global_step at --max_steps exactly, however many workers step."""

import time

import tensorflow as tf
from absl import logging

tf1 = tf.compat.v1

_RETRY_SECS = 0.05
# When every step ticket is taken but global_step stays below max_steps this long, a worker
# holding one was killed: the chief hands them out again.
_TICKET_STALL_SECS = 5


class BoundedSteps(tf1.train.Optimizer):
    """Asynchronous updates that stop global_step at max_steps exactly.

    Each worker applies its gradient as soon as it has it. Workers stepping at once near the
    end would each add one past max_steps, so a step first takes a ticket (an atomic add on a
    ps) and applies its gradient only when the ticket is within max_steps.
    """

    def __init__(self, optimizer, max_steps):
        super(BoundedSteps, self).__init__(use_locking=False, name='BoundedSteps')
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


class AsyncSteps(object):
    """One asynchronous step: retried while every ticket is taken but max_steps is not reached."""

    def __init__(self, replica, sess, training, stop, extra):
        base = list(training.fetches) + [replica.bounded.granted]
        self.granted_index = len(training.fetches)  # where `granted` lies in the results
        self._plain = sess.make_callable(base)
        self._with_summary = sess.make_callable(base + extra) if extra else None
        self._replica, self._sess, self._stop = replica, sess, stop

    def run(self, step, write_summary):
        replica = self._replica
        refused_at = None
        while True:
            results = (self._with_summary if write_summary else self._plain)()
            if results[self.granted_index] or results[3] >= replica.max_steps:
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
                self._sess.run(replica.reset_tickets)
                refused_at = None
            time.sleep(_RETRY_SECS)
