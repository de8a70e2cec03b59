"""Finding, checking, restoring and saving `tf.compat.v1.train.Saver` checkpoints in a model_dir.

A save is ordered so that a crash at any moment leaves the `checkpoint` state file naming only
complete checkpoints: the data and index files, then the .meta graph (each written by
TensorFlow to a temporary name and renamed), then the state file (atomically), and only then
are checkpoints beyond `keep` deleted.
"""

import glob
import os
import re
import shutil

import tensorflow as tf

tf1 = tf.compat.v1

CHECKPOINT_PREFIX = 'model.ckpt'
# Variables a training checkpoint holds that an evaluation graph does not build (Adam's, and
# the float16 loss scale's).
_OPTIMIZER_MARKERS = ('/Adam', 'beta1_power', 'beta2_power', 'current_loss_scale', 'good_steps')


class CheckpointMismatchError(Exception):
    """The checkpoint in model_dir was written by a model of another shape."""


class NoCheckpointError(Exception):
    """model_dir has no checkpoint to evaluate, predict with or export."""


class CheckpointSaveError(Exception):
    """A checkpoint could not be written (a full disk, say); the previous one is still latest."""


def latest_checkpoint(model_dir):
    """The newest checkpoint prefix named by model_dir/checkpoint, or None."""
    if not os.path.isdir(model_dir):
        return None
    return tf1.train.latest_checkpoint(model_dir)


def require_latest_checkpoint(model_dir):
    """The newest checkpoint prefix in model_dir; NoCheckpointError if there is none."""
    latest = latest_checkpoint(model_dir)
    if not latest:
        raise NoCheckpointError('no checkpoint in %s: train first (--mode=train or '
                                'train_and_eval), or point --model_dir at a training run.'
                                % model_dir)
    return latest


def num_classes(checkpoint_path):
    """The model's output size, read from final_conv/bias in the checkpoint."""
    shapes = dict(tf1.train.list_variables(checkpoint_path))
    if 'final_conv/bias' not in shapes:
        raise CheckpointMismatchError('%s has no final_conv/bias: it is not a SqueezeNetModel '
                                      'checkpoint.' % checkpoint_path)
    return int(shapes['final_conv/bias'][0])


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


def checkpoint_prefix(model_dir, step):
    return os.path.join(model_dir, '%s-%d' % (CHECKPOINT_PREFIX, step))


def save(sess, saver, model_dir, step, keep):
    """Writes model.ckpt-<step> crash-safely and keeps the newest `keep`. Returns its prefix."""
    prefix = checkpoint_prefix(model_dir, step)
    previous = all_checkpoints(model_dir)
    try:
        saver.save(sess, os.path.join(model_dir, CHECKPOINT_PREFIX), global_step=step,
                   write_meta_graph=False, write_state=False)
        saver.export_meta_graph(prefix + '.meta')
        name = os.path.basename(prefix)
        older = [os.path.basename(p) for p in previous if os.path.basename(p) != name]
        kept = (older[-(keep - 1):] if keep > 1 else []) + [name]
        # Relative names keep a model_dir valid after it is moved.
        tf1.train.update_checkpoint_state(model_dir, name, kept)
    except (tf.errors.OpError, OSError) as e:
        _remove_checkpoint_files(prefix)
        shutil.rmtree(prefix + '_temp', ignore_errors=True)
        raise CheckpointSaveError(
            'could not write checkpoint %s (%s). The latest checkpoint is still %s. Free some '
            'space in %s (or choose another --model_dir) and start again to resume.'
            % (prefix, _short_reason(e, model_dir),
               previous[-1] if previous else 'none', model_dir))
    for old in previous:
        if os.path.basename(old) not in kept:
            _remove_checkpoint_files(old)
    return prefix


def _short_reason(error, model_dir):
    """The line of a TensorFlow error that names the file, not its graph-trace preamble."""
    message = str(getattr(error, 'message', None) or error)
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    for line in lines:
        if model_dir in line and 'File "' not in line:
            return line
    return lines[0] if lines else type(error).__name__


def remove_unfinished_saves(model_dir):
    """Deletes what a killed save left: temp folders and checkpoints the state file never named.

    Call only while holding the model_dir lock, so no other process is saving.
    """
    listed = {os.path.basename(p) for p in all_checkpoints(model_dir)}
    for path in glob.glob(os.path.join(model_dir, CHECKPOINT_PREFIX + '-*')):
        name = os.path.basename(path)
        if name.endswith('_temp') and os.path.isdir(path):
            shutil.rmtree(path, ignore_errors=True)
            continue
        match = re.match(r'(%s-\d+)(\.|$)' % re.escape(CHECKPOINT_PREFIX), name)
        if match and match.group(1) not in listed:
            _remove(path)
    for path in glob.glob(os.path.join(model_dir, '*.tempstate*')):
        _remove(path)


def _remove_checkpoint_files(prefix):
    for path in glob.glob(prefix + '.*'):
        if re.match(re.escape(prefix) + r'\.(index|meta|data-\d+-of-\d+)', path):
            _remove(path)


def _remove(path):
    try:
        os.remove(path)
    except OSError:
        pass
