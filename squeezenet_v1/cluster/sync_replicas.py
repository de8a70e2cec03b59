"""Synchronous replicas: every step applies the average of one gradient from each worker.

TF1's SyncReplicasOptimizer shares one token queue among the workers, so a fast worker can take
the token meant for a slow one and fill an aggregation by itself, and its chief's queue runner
is left blocked once training ends. Here each non-chief worker has its own two queues on a ps:

  a non-chief worker computes a gradient, tags it with the step whose weights it read, puts it
  on its gradient queue, then waits for a token on its token queue: the new global_step.
  the chief, for each other worker, moves that worker's gradients into staging variables (on
  the ps) until it finds the one tagged with the current step, dropping older ones (a restarted
  worker's extra one); then, in one run, it computes its own gradient, averages it with the
  staged ones beside each variable, applies Adam, adds 1 to global_step and sends every other
  worker a token.

So each step averages exactly one gradient per worker, all computed from the same weights, and
waits for the slowest worker. The step that reaches max_steps sends its tokens like any other,
so every worker learns that training is over and nothing is left waiting. A restarted chief
restores the latest checkpoint and sends every other worker a token of the restored step, so
gradients of the lost steps are dropped and everyone continues from there.
Every wait polls a queue's size and only then dequeues, as the queue's sole reader: a dequeue
never blocks, a signal is answered between polls, and no element is lost to a cancelled wait.
"""

import time

import tensorflow as tf
from absl import logging

tf1 = tf.compat.v1

# Between polls of a queue's size: short against a step (tens of milliseconds on a CPU).
_POLL_SECS = 0.002
_WAITING_LOG_SECS = 30
# A gradient queue holds at most the current step's gradient and a restarted worker's extra.
_GRADIENT_QUEUE_CAPACITY = 4
# Tokens are scalars; a chief restart adds one to a queue whose worker may be gone for long.
_TOKEN_QUEUE_CAPACITY = 1000


class SyncReplicas(object):
    """Builds the synchronous update into a worker's graph, and drives its steps."""

    def __init__(self, task):
        self.task = task
        self.others = task.worker_names[1:]  # every worker but the chief, in a fixed order

    def wrap(self, optimizer):
        return _SyncOptimizer(optimizer, self)

    def build(self, optimizer, grads_and_vars, global_step):
        """Every worker builds every queue and both update ops; returns this worker's op."""
        grads_and_vars = [(g, v) for g, v in grads_and_vars if g is not None]
        grads = [g for g, _ in grads_and_vars]
        num_workers = len(self.others) + 1
        self._global_step = global_step
        self._queues = {}
        staged = {}
        ps_tasks = len(self.task.ps_addresses)
        for number, name in enumerate(self.others, 1):
            safe = name.replace(':', '_')
            with tf1.device('/job:ps/task:%d' % (number % ps_tasks)):
                gradients = tf1.FIFOQueue(
                    _GRADIENT_QUEUE_CAPACITY, [tf.int64] + [g.dtype for g in grads],
                    shapes=[[]] + [v.shape for _, v in grads_and_vars],
                    shared_name='sync_gradients_' + safe, name='sync_gradients_' + safe)
                tokens = tf1.FIFOQueue(_TOKEN_QUEUE_CAPACITY, [tf.int64], shapes=[[]],
                                       shared_name='sync_tokens_' + safe,
                                       name='sync_tokens_' + safe)
            self._queues[name] = (gradients, tokens)
            staged[name] = []
            for g, v in grads_and_vars:
                with tf1.colocate_with(v):
                    staged[name].append(tf1.Variable(
                        tf.zeros(v.shape, g.dtype), trainable=False, collections=[],
                        use_resource=True, name='sync_staged_%s_%s' % (safe, v.op.name)))
        self._staged = staged
        self.staged_variables = [v for name in self.others for v in staged[name]]

        averaged = []
        for i, (g, v) in enumerate(grads_and_vars):
            with tf1.colocate_with(v):  # the sum is made on the ps, not sent to the chief
                total = tf.add_n([g] + [staged[name][i].read_value() for name in self.others])
                averaged.append((total / num_workers, v))
        apply = optimizer.apply_gradients(averaged, global_step=global_step)
        with tf.control_dependencies([apply]):
            new_step = tf.identity(global_step.read_value())
            sends = [tokens.enqueue([new_step]) for _, tokens in self._queues.values()]
        chief_op = tf.group(apply, *sends, name='sync_chief_step')

        self.tag = tf1.placeholder(tf.int64, [], name='sync_tag')
        self._stage_ops = {}
        for name, (gradients, tokens) in self._queues.items():
            size, element = gradients.size(), gradients.dequeue()
            with tf.control_dependencies([s.assign(t) for s, t in zip(staged[name], element[1:])]):
                self._stage_ops[name] = (size, tf.identity(element[0]))
        if self.task.is_chief:
            self._restart_tokens = tf.group(*[
                tokens.enqueue([global_step.read_value()]) for _, tokens in self._queues.values()])
            return chief_op
        gradients, tokens = self._queues[self.task.name]
        self._token_ops = (tokens.size(), tokens.dequeue(), tokens.dequeue_many(tokens.size()))
        return gradients.enqueue([self.tag] + grads, name='sync_submit')

    def start_chief(self, sess):
        """After initializing or restoring: a token of this step for everyone, fresh staging.

        In that order: a non-chief starts once the staging variables are initialized (see
        replica.Replica), so at a first start it finds the token there and drops it.
        """
        sess.run(self._restart_tokens)
        sess.run([v.initializer for v in self.staged_variables])

    def start_worker(self, sess):
        """A non-chief's first tag: tokens left from before it (re)started are dropped."""
        size, _, drain = self._token_ops
        if sess.run(size):
            sess.run(drain)
        return int(sess.run(self._global_step))

    def chief_steps(self, sess, fetches, stop):
        """A callable running one chief step, or returning None when stopped while waiting."""
        run = sess.make_callable(fetches)
        polls = {name: (sess.make_callable(size), sess.make_callable(stage))
                 for name, (size, stage) in self._stage_ops.items()}

        def step(current):
            for name in self.others:
                size, stage = polls[name]
                waited_since = time.time()
                while True:
                    if stop:
                        return None
                    if size():
                        tag = int(stage())
                        if tag == current:
                            break
                        logging.info('Dropped a gradient of %s from step %d (now at %d).',
                                     name, tag, current)
                        continue
                    waited_since = _log_wait(waited_since, 'the gradient of %s for step %d'
                                             % (name, current))
                    time.sleep(_POLL_SECS)
            return run()
        return step

    def worker_steps(self, sess, fetches, stop):
        """A callable running one non-chief step (submit, then wait for the token)."""
        run = sess.make_callable(fetches, feed_list=[self.tag])
        size, dequeue = (sess.make_callable(op) for op in self._token_ops[:2])

        def step(tag):
            results = list(run(tag))
            waited_since = time.time()
            while not size():
                if stop:
                    return None
                waited_since = _log_wait(waited_since, 'the chief\'s token for step %d' % tag)
                time.sleep(_POLL_SECS)
            results[3] = int(dequeue())  # the token: global_step after the chief's step
            return results
        return step


def _log_wait(since, what):
    if time.time() - since > _WAITING_LOG_SECS:
        logging.info('Still waiting for %s (synchronous replicas wait for every worker).', what)
        return time.time()
    return since


class _SyncOptimizer(tf1.train.Optimizer):
    """Adam's gradients, applied through SyncReplicas.build."""

    def __init__(self, optimizer, sync):
        super(_SyncOptimizer, self).__init__(use_locking=False, name='SyncReplicas')
        self._optimizer = optimizer
        self._sync = sync

    def compute_gradients(self, *args, **kwargs):
        return self._optimizer.compute_gradients(*args, **kwargs)

    def apply_gradients(self, grads_and_vars, global_step=None, name=None):
        return self._sync.build(self._optimizer, grads_and_vars, global_step)
