"""Finding, checking and restoring `tf.compat.v1.train.Saver` checkpoints in a model_dir."""

import os

import tensorflow as tf

tf1 = tf.compat.v1

CHECKPOINT_PREFIX = 'model.ckpt'
# Variables a training checkpoint holds that an evaluation graph does not build.
_OPTIMIZER_MARKERS = ('/Adam', 'beta1_power', 'beta2_power')


class CheckpointMismatchError(Exception):
    """The checkpoint in model_dir was written by a model of another shape."""


def latest_checkpoint(model_dir):
    """The newest checkpoint prefix named by model_dir/checkpoint, or None."""
    if not os.path.isdir(model_dir):
        return None
    return tf1.train.latest_checkpoint(model_dir)


def all_checkpoints(model_dir):
    """Every checkpoint prefix the model_dir/checkpoint file lists, oldest first."""
    state = tf1.train.get_checkpoint_state(model_dir)
    return list(state.all_model_checkpoint_paths) if state else []


def check_compatible(checkpoint_path, variables):
    """Raises CheckpointMismatchError listing variables missing, extra or of another shape."""
    stored = dict(tf1.train.list_variables(checkpoint_path))
    wanted = {v.op.name: list(v.shape.as_list()) for v in variables}
    problems = []
    for name in sorted(wanted):
        if name not in stored:
            problems.append('%s %s is not in the checkpoint' % (name, wanted[name]))
        elif list(stored[name]) != wanted[name]:
            problems.append('%s is %s in the checkpoint but %s in this model'
                            % (name, list(stored[name]), wanted[name]))
    for name in sorted(set(stored) - set(wanted)):
        if not any(marker in name for marker in _OPTIMIZER_MARKERS):
            problems.append('%s %s is in the checkpoint but not in this model'
                            % (name, list(stored[name])))
    if problems:
        raise CheckpointMismatchError(
            '%s was written by a different model (%d mismatched variables):\n  %s\n'
            'Use a new --model_dir, or the flags (e.g. the data set and its number of classes) '
            'that wrote this checkpoint.'
            % (checkpoint_path, len(problems), '\n  '.join(problems)))


def restore(sess, saver, checkpoint_path, variables):
    """Checks the checkpoint against `variables` (those the saver holds), then restores it."""
    check_compatible(checkpoint_path, variables)
    saver.restore(sess, checkpoint_path)
