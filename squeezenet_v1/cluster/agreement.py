"""A cluster agrees before it trains: every task runs with the chief's experiment flags.

TF1 clusters ran the same command on every task, but nothing checked it. Tasks that differ
(`--sync_replicas` on one worker, `--max_steps` or `--batch_size` on another) each wait for
something the others never do, or train past the chief's --max_steps with no checkpoint to
keep the steps. So:

- the chief publishes its flags in a variable on ps:0 when it initializes or restores;
- each other worker reads them before its first step; one whose flags differ writes its
  refusal, naming each difference, into a variable on every ps and exits 1;
- every task looks at that refusal about once a second (the ps tasks in their serving loop,
  the workers between steps and while they wait for each other) and exits 1 naming it. The chief
  first tells the ps tasks it has finished, so they can stop.

The variables are in no collection: checkpoints hold what a single process saves.
"""

import json
import time

import tensorflow as tf
from absl import logging

from squeezenet_v1.errors import UserError
from squeezenet_v1.files import reading
from squeezenet_v1.run_flags import AGREED_FLAGS

tf1 = tf.compat.v1

# run_flags.AGREED_FLAGS must be the same on every worker; --model_dir may differ (another
# machine's mount of the same folder), so it is compared and told, not refused.
CHECK_SECS = 1.0


class DisagreementError(UserError):
    """A task of the cluster runs with other flags than the chief's."""


def is_initialized(variable):
    """Whether a resource variable is initialized, as a tensor.

    Not tf1.is_variable_initialized: its tensor warns at exit ("Object was never used", a
    page of stack) when the process ends before running it, as a refusing or stopped task does.
    """
    return tf.raw_ops.VarIsInitializedOp(resource=variable.handle)


def refusal_variable(ps_index):
    """Where a refusal is written on ps task `ps_index` ('' while every task agrees)."""
    with tf1.device('/job:ps/task:%d' % ps_index), tf1.get_default_graph().name_scope(None):
        return tf1.Variable('', trainable=False, collections=[], use_resource=True,
                            name='cluster_refusal_%d' % ps_index)


def read_refusal(variable):
    """An op reading a refusal variable: '' until the chief has initialized it."""
    return tf.cond(is_initialized(variable), variable.read_value,
                   lambda: tf.constant(''))


def _describe(flags):
    return json.dumps({name: flags.get(name) for name in AGREED_FLAGS + ('model_dir',)},
                      sort_keys=True)


class Agreement(object):
    """The agreement ops of one worker's graph, and its side of the protocol."""

    def __init__(self, task, flags):
        self.task = task
        self.flags = flags
        with tf1.device('/job:ps/task:0'), tf1.get_default_graph().name_scope(None):
            published = tf1.Variable(_describe(flags), trainable=False, collections=[],
                                     use_resource=True, name='cluster_flags')
        refusals = [refusal_variable(i) for i in range(len(task.ps_addresses))]
        self._message = tf1.placeholder(tf.string, [], name='cluster_refusal_message')
        self.publish_op = tf.group(published.initializer, *[r.initializer for r in refusals])
        self._is_published = is_initialized(published)
        self._published = published.read_value()
        self._refuse = tf.group(*[r.assign(self._message) for r in refusals])
        self._refusal = read_refusal(refusals[0])
        self._checked_at = 0.0

    def is_published(self, sess):
        return bool(sess.run(self._is_published))

    def compare(self, sess):
        """A non-chief's check of the chief's flags: on any difference it writes its refusal
        where every task reads it, and raises."""
        chief = reading.loads(sess.run(self._published).decode('utf-8'))
        differences = ['--%s=%s (the chief\'s: %s)' % (name, _flag(self.flags.get(name)),
                                                       _flag(chief.get(name)))
                       for name in AGREED_FLAGS if self.flags.get(name) != chief.get(name)]
        if chief.get('model_dir') != self.flags.get('model_dir'):
            logging.info('[%s] --model_dir is %s here and %s on the chief; only the chief '
                         'writes into it.', self.task.name, self.flags.get('model_dir'),
                         chief.get('model_dir'))
        if differences:
            message = ('%s refuses to train: its flags differ from the chief\'s (%s): %s. Start '
                       'every task of the cluster with the same flags.'
                       % (self.task.name, self.task.chief_name, ', '.join(differences)))
            sess.run(self._refuse, {self._message: message})
            raise DisagreementError('[%s] %s' % (self.task.name, message))

    def raise_if_refused(self, sess, before=None):
        """Raises the refusal a task wrote, checked at most once per CHECK_SECS.

        `before` runs first when there is one (the chief tells the ps tasks it has finished).
        """
        if time.time() - self._checked_at < CHECK_SECS:
            return
        self._checked_at = time.time()
        refusal = sess.run(self._refusal).decode('utf-8')
        if refusal:
            if before:
                before()
            raise DisagreementError('[%s] stopping: %s' % (self.task.name, refusal))


def _flag(value):
    return 'unset' if value is None else str(value)
