"""A cluster task's gRPC server and sessions, the ps tasks' loop, and a lost ps told by name."""

import re
import time

import tensorflow as tf
from absl import logging

from squeezenet_v1 import interrupts
from squeezenet_v1.cluster import agreement
from squeezenet_v1.cluster import tf_config
from squeezenet_v1.errors import UserError, first_line
from squeezenet_v1.model_dir import checkpoint_writer

tf1 = tf.compat.v1

# How long a worker waits for the ps tasks to answer at start (a cluster manager may start the
# tasks minutes apart).
WAIT_FOR_PS_SECS = 600
POLL_SECS = 0.5
WAITING_LOG_SECS = 15


_FINISHED_QUEUE_CAPACITY = 1000
# How long a ps waits, after a worker refused, for the chief to read the refusal before it stops
# (stopping at once would leave the chief with "lost ps:0" instead of the reason).
_REFUSED_WAIT_SECS = 30


class ClusterError(UserError):
    """A task of the cluster could not be started, reached, or was lost during training."""


def start_server(task):
    """This task's gRPC server, listening on its TF_CONFIG port."""
    tf_config.check_port_free(task)  # once more: it may have been taken since the first check
    try:
        server = tf1.train.Server(tf1.train.ClusterSpec(task.cluster), job_name=task.type,
                                  task_index=task.index, start=True)
    except tf.errors.OpError as e:
        raise ClusterError('could not start the gRPC server of %s at %s (%s). Give this task a '
                           'free port in TF_CONFIG.' % (task.name, task.address, first_line(e)))
    logging.info('[%s] gRPC server listening at %s (cluster: %s).', task.name, task.address,
                 ', '.join('%s %s' % (job, ' '.join(a)) for job, a in sorted(task.cluster.items())))
    return server


def cluster_session(target, graph, config):
    """A session on the cluster that is never closed.

    Closing a gRPC session calls every task it used and waits, without end, for one that is gone
    (a ps that has finished or died), and a process has nothing to release on a ps it is
    leaving. So a cluster session is let go unclosed: the process ends soon after.
    """
    sess = tf1.Session(target, graph=graph, config=config)
    sess.close = lambda: None  # Session.__del__ calls it too
    return sess


def finished_queue(ps_index):
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
        queue = finished_queue(task.index)
        take_all = queue.dequeue_many(queue.size())
        refusal = agreement.read_refusal(agreement.refusal_variable(task.index))
    graph.finalize()
    # Only this task: the others may not be up yet, and need not be.
    sess = cluster_session(server.target, graph,
                            tf1.ConfigProto(device_filters=[task.device()]))
    logging.info('[%s] serving variables; stopping once %s have finished.', task.name,
                 ', '.join(task.worker_names))
    finished, unreachable_since, last_probe, refused = set(), None, 0.0, None
    while True:
        if refused is None:
            refused = sess.run(refusal).decode('utf-8') or None
            if refused:
                refused_at = time.time()
                logging.info('[%s] a worker refused to train; stopping once the chief has '
                             'stopped (%d s at most).', task.name, _REFUSED_WAIT_SECS)
        if refused and (task.chief_name in finished
                        or time.time() - refused_at > _REFUSED_WAIT_SECS):
            raise agreement.DisagreementError('[%s] stopping: %s' % (task.name, refused))
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
            if any(tf_config.reachable(task.address_of(n)) for n in missing):
                unreachable_since = None
            elif unreachable_since is None:
                unreachable_since = last_probe
            elif last_probe - unreachable_since >= 4:
                logging.warning('[%s] the chief has finished and %s never reported, their ports '
                                'closed: stopping without them.', task.name, ', '.join(missing))
                break
        interrupts.sleep(POLL_SECS)
    logging.info('[%s] every worker has finished: this ps stops.', task.name)


def open_session(task, server, training, config):
    """A session on this worker's server, once every ps answers (WAIT_FOR_PS_SECS at most)."""
    give_up, logged = time.time() + WAIT_FOR_PS_SECS, time.time()
    for i, address in enumerate(task.ps_addresses):
        while not tf_config.reachable(address):
            if time.time() > give_up:
                raise ClusterError(
                    'ps:%d at %s did not answer within %d s. Start every task of the cluster in '
                    'TF_CONFIG (python -m squeezenet_v1.cluster.local_cluster starts one on this '
                    'machine).' % (i, address, WAIT_FOR_PS_SECS))
            if time.time() - logged > WAITING_LOG_SECS:
                logging.info('[%s] waiting for ps:%d at %s to start.', task.name, i, address)
                logged = time.time()
            interrupts.sleep(POLL_SECS)
    return cluster_session(server.target, training.graph, config)


def guarded(task, work):
    """work(), with a lost ps reported as a ClusterError naming it."""
    try:
        return work()
    except (tf.errors.UnavailableError, tf.errors.AbortedError,
            checkpoint_writer.CheckpointSaveError) as e:
        lost = lost_ps(task, e)
        if lost is None:
            raise
        raise lost from None


def lost_ps(task, error):
    """A ClusterError naming the ps tasks the error names or that no longer answer, or None."""
    text = str(getattr(error, 'message', None) or error)
    named = {int(i) for i in re.findall(r'/job:ps/replica:\d+/task:(\d+)', text)}
    gone = {i for i, address in enumerate(task.ps_addresses)
            if i in named or not tf_config.reachable(address)}
    if gone:
        what = ', '.join('ps:%d at %s' % (i, task.ps_addresses[i]) for i in sorted(gone))
    elif isinstance(error, tf.errors.OpError):
        what = 'contact with the cluster'
    else:
        return None
    return ClusterError(
        '[%s] lost %s (%s). Restart every task of the cluster; the chief resumes from the '
        'latest checkpoint in its model_dir.' % (task.name, what, first_line(error)))
