"""Training beyond one machine on TensorFlow's gRPC runtime: between-graph replication, as TF1 did.

Every task of TF_CONFIG's cluster (see tf_config.py) runs run_train.py with the same flags:
- a ps task serves the variables (`serve`) and returns once every worker has finished;
- every worker (`train_worker`) builds the same training graph under replica_device_setter
  (variables on the ps tasks, everything else on itself), trains on its own shuffle of the data
  and logs the tutorial's examples/sec line with its task name; it stops when global_step
  reaches max_steps and tells each ps so;
- the chief (the chief task, else worker 0) alone touches model_dir, under its lock: it
  initializes or restores, writes checkpoints (crash-safe, as in one process), summaries,
  flags.json and labels.txt; the runner adds runs.jsonl and, in train_and_eval, the
  evaluation. Non-chief workers write nothing there.
Updates are asynchronous by default (each worker applies its gradient as soon as it has it,
TF1's default for this layout); with sync_replicas each step averages one gradient from every
worker (sync_replicas.py). Either way global_step stops exactly at max_steps.

Checkpoints are the single-process ones: the Saver is not sharded, so the chief writes every
variable itself (no shared file system needed), the .meta is saved without device placement,
and variables are restored by name, so a cluster's model_dir evaluates, predicts, exports and
resumes in one process, and a cluster resumes a single process's model_dir.
"""

import time

import tensorflow as tf
from absl import logging

from squeezenet_v1 import interrupts
from squeezenet_v1.cluster import server
from squeezenet_v1.cluster.replica import Replica
from squeezenet_v1.training import loop
from squeezenet_v1.training.graph import build_training_graph
from squeezenet_v1.model_dir.claim import claimed_model_dir
from squeezenet_v1.training.trainer import restore_or_initialize

tf1 = tf.compat.v1

# How long a non-chief waits for the chief to initialize the variables (the wait
# MonitoredTrainingSession allowed).
WAIT_FOR_CHIEF_SECS = 7200


def train_worker(task, model_dir, source, settings, agreed_flags, run_record=None,
                 on_start=None, warm_start=None):
    """Trains as worker `task` of its cluster until global_step reaches max_steps; returns it.

    `agreed_flags` maps run_flags.AGREED_FLAGS (and model_dir) to this task's values: every
    worker compares them with the chief's before its first step. The chief takes the other
    arguments of trainer.train and does what it does with model_dir; a non-chief worker ignores
    model_dir, run_record and on_start. Raises ClusterError when a ps is lost or cannot be
    reached, and trainer.train's errors otherwise.
    """
    grpc_server = server.start_server(task)
    seed, precision = agreed_flags['seed'], agreed_flags['precision']
    replica = Replica(task, settings.max_steps, agreed_flags['sync_replicas'],
                      len(source.label_names), agreed_flags)
    if seed is not None:
        seed += task.worker_number  # the same seed would give every worker the same batches
    training = build_training_graph(source, settings.batch_size, settings.learning_rate, seed,
                                    precision, replica=replica)
    config = replica.session_config(precision)
    if not task.is_chief:
        sess = server.open_session(task, grpc_server, training, config)
        return server.guarded(task, lambda: _train_non_chief(sess, task, replica, training,
                                                             settings))
    with claimed_model_dir(model_dir, training, source, run_record, on_start) as (found, resume):
        sess = server.open_session(task, grpc_server, training, config)
        with training.graph.as_default():
            return server.guarded(task, lambda: _train_chief(
                sess, replica, training, settings, model_dir, found.complete, resume,
                warm_start))


def _train_chief(sess, replica, training, settings, model_dir, complete, resume, warm_start):
    step_before_restore = replica.before_restore(sess)
    restore_or_initialize(sess, training, resume, warm_start)
    sess.run(replica.agreement.publish_op)  # the flags every other worker compares with its own
    replica.start_chief(sess, step_before_restore)
    chief_files = loop.ChiefFiles(sess, training, model_dir, complete,
                                  settings.keep_checkpoint_max, write_graph=not resume)
    step = loop.train_loop(sess, training, settings, replica, chief_files)
    sess.run(replica.finished_op)
    return step


def _train_non_chief(sess, task, replica, training, settings):
    give_up, logged = time.time() + WAIT_FOR_CHIEF_SECS, time.time()
    # The chief's flags first: a worker whose flags differ may wait for variables it never
    # initializes (another update rule's).
    compared = False
    while True:
        published = replica.agreement.is_published(sess)
        if published and not compared:
            replica.agreement.compare(sess)
            compared = True
        if published and not len(sess.run(replica.ready_op)):
            break
        if time.time() > give_up:
            raise server.ClusterError(
                '[%s] the chief (%s at %s) did not initialize the variables within %d s. Start '
                'it, or check its log.' % (task.name, task.chief_name,
                                           task.address_of(task.chief_name), WAIT_FOR_CHIEF_SECS))
        if time.time() - logged > server.WAITING_LOG_SECS:
            logging.info('[%s] waiting for the chief (%s) to initialize or restore the '
                         'variables.', task.name, task.chief_name)
            logged = time.time()
        interrupts.sleep(server.POLL_SECS)
    step = loop.train_loop(sess, training, settings, replica)
    sess.run(replica.finished_op)
    return step
