"""Training in one process: claim the model_dir, restore or initialize, run the loop.

A cluster's worker does the same through cluster/worker.py, with its own `stepper` and, on the
chief alone, the same `ChiefFiles`.
"""

import tensorflow as tf
from absl import logging

from squeezenet_v1 import waits
from squeezenet_v1.model_dir import checkpoints
from squeezenet_v1.model_dir import foreign
from squeezenet_v1.training import loop
from squeezenet_v1.training import session_options
from squeezenet_v1.training.graph import build_training_graph
from squeezenet_v1.model_dir.claim import claimed_model_dir

tf1 = tf.compat.v1


def train(model_dir, source, settings, seed=None, precision='fp32', run_record=None,
          on_start=None, after_save=None, warm_start=None):
    """Trains until global_step reaches settings.max_steps, resuming from model_dir; returns it.

    `source` is a datasets.SplitSource of training records; `settings` a loop.LoopSettings.
    `run_record`, a JSON-able dict such as the run's flags, is written to model_dir/flags.json
    once every check has passed (resuming with other experiment flags than the last run's
    warns, naming each), and then `on_start(global_step)` is called. `after_save(path)` is
    called after every save but one made because of a stop signal (train_and_eval evaluates
    there). Resumes from the newest complete checkpoint in model_dir (checkpoint_writer.py
    says what is adopted, kept and cleaned). Raises loop.NonFiniteLossError on a NaN/Inf,
    loop.TrainingInterrupted on SIGINT/SIGTERM (after saving), ModelDirLockedError when
    another process trains into model_dir, CheckpointMismatchError when model_dir holds
    another model's checkpoint and CheckpointSaveError when a save fails; a refused run
    writes nothing into model_dir. `warm_start`, a foreign.WarmStart, gives a run that starts
    from scratch another checkpoint's weights (Adam and global_step start fresh).
    """
    training = build_training_graph(source, settings.batch_size, settings.learning_rate, seed,
                                    precision)
    with claimed_model_dir(model_dir, training, source, run_record, on_start) as (found,
                                                                                 resume):
        config = session_options.session_config(precision)
        with training.graph.as_default():
            sess = tf1.Session(graph=training.graph, config=config)
            try:
                restore_or_initialize(sess, training, resume, warm_start)
                chief_files = loop.ChiefFiles(sess, training, model_dir, found.complete,
                                              settings.keep_checkpoint_max,
                                              write_graph=not resume)
                return loop.train_loop(sess, training, settings, loop.LocalSteps(), chief_files,
                                       after_save)
            finally:
                # Nothing is left for close to wait on (input_pipeline.without_autotune_model);
                # should TensorFlow still take its time, the user is told what the wait is.
                with waits.announced('closing the training\'s TensorFlow session'):
                    sess.close()


def restore_or_initialize(sess, training, resume, warm_start=None):
    """Restores the checkpoint `resume`; else initializes the variables, then loads the warm
    start's weights when there is one."""
    if resume and not checkpoints.holds_optimizer_state(resume):  # one `convert` wrote
        sess.run(training.init_op)
        checkpoints.check_compatible(resume, training.variables, optimizer_optional=True)
        checkpoints.restore_weights(sess, resume, training.variables)
        logging.info('Resuming from %s: its weights and global_step; it holds no optimizer '
                     'state, so Adam starts fresh.', resume)
    elif resume:
        checkpoints.restore(sess, training.saver, resume, training.variables)
        logging.info('Resuming from %s', resume)
    elif warm_start:
        sess.run(training.init_op)
        foreign.apply_warm_start(sess, warm_start, training.variables)
        logging.info('Warm-started from %s: %d weights taken; fresh: %s; Adam and global_step '
                     'start fresh.', warm_start.prefix, len(warm_start.sources),
                     ', '.join(warm_start.fresh) or 'none')
    else:
        sess.run(training.init_op)
        logging.info('Starting from scratch: %d parameters (%d float32 bytes)',
                     training.report['total_parameters'], training.report['float32_bytes'])
