"""`tf.compat.v1.train.Saver` checkpoints in a model_dir, as readers see them.

The folder is the truth, not the `checkpoint` state file. `model.ckpt-<step>` is complete when
its .index and every .data shard are present and every tensor reads back (checksums included);
readers take the newest complete one. Nothing outside the model_dir is ever read as ours.

A reader chooses with `choose_checkpoint(model_dir, checkpoint_path)` (the newest, or the one
--checkpoint_path names) and reads with `with_checkpoint`, which chooses the same way and takes
the newest again when a trainer's rotation removes the one being read. The trainer's side
(adopting, saving, rotating) is checkpoint_writer.py.
"""

import collections
import os
import re

import numpy as np
import tensorflow as tf
from absl import logging

from squeezenet_v1.files import literal_paths
from squeezenet_v1.files import reading
from squeezenet_v1.errors import UserError, first_line

tf1 = tf.compat.v1

CHECKPOINT_PREFIX = 'model.ckpt'
STATE_FILE = 'checkpoint'
CHECKPOINT_NAME = re.compile(r'^model\.ckpt-(\d+)$')
CHECKPOINT_FILE = re.compile(r'^(model\.ckpt-\d+)\.(index|meta|data-(\d{5})-of-(\d{5}))$')
_CHECKPOINT_SUFFIX = re.compile(r'\.(index|meta|data-\d{5}-of-\d{5})$')
_DATA_SHARD = re.compile(r'\.data-(\d{5})-of-(\d{5})$')
# Variables a training checkpoint holds that an evaluation graph does not build (Adam's, and
# the float16 loss scale's).
_OPTIMIZER_MARKERS = ('/Adam', 'beta1_power', 'beta2_power', 'current_loss_scale', 'good_steps')
# How often a reader takes the newest checkpoint again when a rotating trainer removes its own.
_READ_ATTEMPTS = 10


class CheckpointMismatchError(UserError):
    """The checkpoint in model_dir was written by a model of another shape."""


class NoCheckpointError(UserError):
    """model_dir has no complete checkpoint to evaluate, predict with or export."""


class CheckpointContentError(UserError):
    """A checkpoint of the right shape holds what no reader may use (NaN weights, no step)."""


class CheckpointVanishedError(UserError):
    """Checkpoints kept disappearing while being read (a trainer rotating them away)."""


Scan = collections.namedtuple('Scan', ['complete', 'incomplete'])
Scan.__doc__ = """complete: checkpoint names, oldest first; incomplete: {name: what is wrong}."""


def step_in_name(name):
    """The step in a checkpoint name or prefix (`.../model.ckpt-<step>`)."""
    return int(CHECKPOINT_NAME.match(os.path.basename(name)).group(1))


def checkpoint_prefix(model_dir, step):
    return os.path.join(model_dir, '%s-%d' % (CHECKPOINT_PREFIX, step))


def checkpoint_files(model_dir):
    """{checkpoint name: [its file names]} from a listing of model_dir (never a glob)."""
    grouped = collections.defaultdict(list)
    try:
        names = os.listdir(model_dir)
    except (FileNotFoundError, NotADirectoryError):
        return grouped
    for file_name in names:
        match = CHECKPOINT_FILE.match(file_name)
        if match:
            grouped[match.group(1)].append(file_name)
    return grouped


def what_is_wrong(model_dir, name, file_names):
    """Why the checkpoint cannot be restored, or None when it is complete."""
    if name + '.index' not in file_names:
        return 'no .index file'
    shards = [_DATA_SHARD.search(f) for f in file_names]
    shards = [(int(m.group(1)), int(m.group(2))) for m in shards if m]
    if not shards:
        return 'no .data file'
    totals = {total for _, total in shards}
    present = {index for index, _ in shards}
    if len(totals) != 1 or present != set(range(totals.pop())):
        return 'its .data shards are incomplete'
    special = [f for f in sorted(file_names) if not os.path.isfile(os.path.join(model_dir, f))]
    if special:  # TensorFlow's reader would block on a FIFO
        return '%s is not a plain file' % special[0]
    try:
        with literal_paths.literal_path(os.path.join(model_dir, name)) as path:
            reader = tf1.train.load_checkpoint(path)
            for variable in reader.get_variable_to_shape_map():
                reader.get_tensor(variable)
    except Exception as e:  # TensorFlow raises OpError, IndexError, ValueError for damage
        return 'unreadable: %s' % first_line(e)
    return None


def scan(model_dir):
    """Every checkpoint in model_dir, each read back in full: a Scan."""
    complete, incomplete = [], {}
    grouped = checkpoint_files(model_dir)
    for name in sorted(grouped, key=step_in_name):
        problem = what_is_wrong(model_dir, name, grouped[name])
        if problem:
            incomplete[name] = problem
        else:
            complete.append(name)
    return Scan(complete, incomplete)


def latest_checkpoint(model_dir):
    """The prefix of the newest complete checkpoint in model_dir, or None."""
    return _newest_complete(model_dir)[0]


def _newest_complete(model_dir):
    """(newest complete prefix or None, {newer incomplete name: what is wrong})."""
    grouped = checkpoint_files(model_dir)
    skipped = {}
    for name in sorted(grouped, key=step_in_name, reverse=True):
        problem = what_is_wrong(model_dir, name, grouped[name])
        if problem is None:
            return os.path.join(model_dir, name), skipped
        skipped[name] = problem
    return None, skipped


def choose_checkpoint(model_dir, checkpoint_path=None):
    """The checkpoint a reader uses: --checkpoint_path when given, else the newest in model_dir.

    Returns its prefix once it is known to be complete; NoCheckpointError otherwise. A file of
    the checkpoint (`model.ckpt-100.index`) stands for its prefix.
    """
    if checkpoint_path:
        return _named_checkpoint(checkpoint_path)
    latest = latest_checkpoint(model_dir)
    if latest:
        return latest
    incomplete = scan(model_dir).incomplete
    damaged = ''.join(' %s is incomplete (%s).' % (os.path.join(model_dir, name), problem)
                      for name, problem in incomplete.items())
    raise NoCheckpointError('no complete checkpoint in %s.%s Train first (--mode=train or '
                            'train_and_eval), or point --model_dir at a training run.'
                            % (model_dir, damaged))


def _named_checkpoint(checkpoint_path):
    prefix = _CHECKPOINT_SUFFIX.sub('', checkpoint_path)
    folder, name = os.path.split(prefix)
    grouped = checkpoint_files(folder or '.')
    if name in grouped or os.path.isfile(prefix + '.index'):
        problem = what_is_wrong(folder or '.', name, grouped.get(name) or _files_of(prefix))
        if problem:
            raise NoCheckpointError('--checkpoint_path %s is incomplete (%s). Choose a complete '
                                    'one%s.' % (checkpoint_path, problem, _listing(folder)))
        return prefix
    raise NoCheckpointError('--checkpoint_path %s names no checkpoint: give a prefix such as '
                            '<model_dir>/model.ckpt-1000%s.' % (checkpoint_path, _listing(folder)))


def _files_of(prefix):
    """The file names of a checkpoint named other than model.ckpt-<step>."""
    folder, name = os.path.split(prefix)
    return [f for f in os.listdir(folder or '.')
            if _CHECKPOINT_SUFFIX.sub('', f) == name and f != name]


def _listing(folder):
    found = scan(folder or '.').complete
    return ('; %s holds %s' % (folder or '.', ', '.join(found))) if found else ''


def with_checkpoint(model_dir, use, checkpoint_path=None):
    """Returns use(prefix) for the checkpoint choose_checkpoint chooses.

    The newest may be removed while being read by a trainer rotating its checkpoints; then the
    newest is taken again. CheckpointVanishedError names them if that keeps happening.
    """
    if checkpoint_path:
        return use(_named_checkpoint(checkpoint_path))
    prefix, skipped = _newest_complete(model_dir)
    for name, problem in skipped.items():
        logging.warning('%s is incomplete (%s): it is kept as it is and not used; reading %s.',
                        os.path.join(model_dir, name), problem,
                        os.path.basename(prefix) if prefix else 'nothing')
    vanished = []
    for _ in range(_READ_ATTEMPTS):
        prefix = prefix or choose_checkpoint(model_dir)
        try:
            return use(prefix)
        except (tf.errors.NotFoundError, tf.errors.DataLossError, FileNotFoundError):
            if latest_checkpoint(model_dir) == prefix:
                raise  # still there: a real error, not a rotation
            logging.warning('%s was removed while being read (a trainer rotating its '
                            'checkpoints?); taking the newest again.', prefix)
            vanished.append(os.path.basename(prefix))
            prefix = None
    raise CheckpointVanishedError(
        'checkpoints in %s were removed while being read, %d times (%s). Stop the trainer or '
        'raise its --keep_checkpoint_max, then try again.'
        % (model_dir, len(vanished), ', '.join(vanished)))


def fingerprint(checkpoint_path):
    """A short hash that tells these weights from others saved under the same name; None when
    the checkpoint is gone.

    The .index file holds every tensor's offset, size and CRC32C, so hashing it (a few kB)
    fingerprints the weights without reading them.
    """
    try:
        return reading.file_digest(checkpoint_path + '.index', follow_links=False)[:16]
    except (OSError, UserError):  # gone, or not a plain file: not the checkpoint evaluated
        return None


def global_step_stored_in(checkpoint_path):
    """The global_step stored in a checkpoint (read from its tensor, not its name).

    CheckpointContentError when it holds none (TF1 code that saves only the weights) or a
    negative one.
    """
    with literal_paths.literal_path(checkpoint_path) as path:
        reader = tf1.train.load_checkpoint(path)
        step = reader.get_tensor('global_step') if reader.has_tensor('global_step') else None
    if step is None:
        raise CheckpointContentError(
            '%s holds no global_step, so the step it was saved at is unknown (TF1 code that saves '
            'only the weights writes such checkpoints). Save it with a global_step '
            '(tf.compat.v1.train.get_or_create_global_step() before the Saver).' % checkpoint_path)
    if np.ndim(step) != 0 or not np.issubdtype(np.asarray(step).dtype, np.integer) or step < 0:
        raise CheckpointContentError('%s holds global_step %s, not a step count (0 or more); it '
                                     'is damaged or not this model\'s. Use another checkpoint.'
                                     % (checkpoint_path, np.array2string(np.asarray(step))[:40]))
    return int(step)


def num_classes(checkpoint_path):
    """The model's output size, read from final_conv/bias in the checkpoint."""
    with literal_paths.literal_path(checkpoint_path) as path:
        shapes = dict(tf1.train.list_variables(path))
    if 'final_conv/bias' not in shapes:
        raise CheckpointMismatchError('%s has no final_conv/bias: it is not a SqueezeNetModel '
                                      'checkpoint.' % checkpoint_path)
    return int(shapes['final_conv/bias'][0])


def is_optimizer_variable(name):
    """Whether a variable is Adam's (a slot, a beta power) or the loss scale's, not a weight."""
    return any(marker in name for marker in _OPTIMIZER_MARKERS)


def holds_optimizer_state(checkpoint_path):
    """Whether the checkpoint holds any optimizer variable (one `convert` wrote may hold none)."""
    with literal_paths.literal_path(checkpoint_path) as path:
        names = tf1.train.load_checkpoint(path).get_variable_to_shape_map()
    return any(is_optimizer_variable(name) for name in names)


def check_compatible(checkpoint_path, variables, optimizer_optional=False):
    """Raises CheckpointMismatchError listing variables missing, extra or of another shape or
    dtype, and CheckpointContentError for non-finite weights or a global_step that is none.

    With optimizer_optional, a checkpoint holding no optimizer variable at all is compatible
    (training then starts Adam fresh from its weights).
    """
    if optimizer_optional and not holds_optimizer_state(checkpoint_path):
        variables = [v for v in variables if not is_optimizer_variable(v.op.name)]
    with literal_paths.literal_path(checkpoint_path) as path:
        reader = tf1.train.load_checkpoint(path)
        shapes, dtypes = reader.get_variable_to_shape_map(), reader.get_variable_to_dtype_map()
        problems = _mismatches(shapes, dtypes, variables)
        if not problems:
            _check_content(checkpoint_path, reader, variables)
    if problems:
        raise CheckpointMismatchError(
            '%s was written by a different model (%d mismatched variables):\n  %s\n'
            'Use a new --model_dir, or the flags (e.g. the data set and its number of classes) '
            'that wrote this checkpoint.'
            % (checkpoint_path, len(problems), '\n  '.join(problems)))


def _mismatches(shapes, dtypes, variables):
    wanted = {v.op.name: (list(v.shape.as_list()), v.dtype.base_dtype) for v in variables}
    problems = []
    for name in sorted(wanted):
        shape, dtype = wanted[name]
        if name not in shapes:
            problems.append('%s %s is not in the checkpoint' % (name, shape))
        elif list(shapes[name]) != shape:
            problems.append('%s is %s in the checkpoint but %s in this model'
                            % (name, list(shapes[name]), shape))
        elif dtypes[name] != dtype:
            problems.append('%s is %s in the checkpoint but %s in this model'
                            % (name, dtypes[name].name, dtype.name))
    for name in sorted(set(shapes) - set(wanted)):
        if not is_optimizer_variable(name):
            problems.append('%s %s is in the checkpoint but not in this model'
                            % (name, list(shapes[name])))
    return problems


def _check_content(checkpoint_path, reader, variables):
    """The weights finite, as the trainer saves them; the global_step a count."""
    not_finite = [v.op.name for v in variables if v.dtype.base_dtype.is_floating
                  and not np.all(np.isfinite(reader.get_tensor(v.op.name)))]
    if not_finite:
        raise CheckpointContentError(
            '%s holds weights that are not finite (NaN or Inf) in %s; no reader uses them, as '
            'training never saves them. Use an earlier checkpoint (--checkpoint_path).'
            % (checkpoint_path, ', '.join(not_finite[:5])
               + (' and %d more' % (len(not_finite) - 5) if len(not_finite) > 5 else '')))
    if any(v.op.name == 'global_step' for v in variables):
        global_step_stored_in(checkpoint_path)


def restore(sess, saver, checkpoint_path, variables):
    """Checks the checkpoint against `variables` (those the saver holds), then restores it."""
    check_compatible(checkpoint_path, variables)
    with literal_paths.literal_path(checkpoint_path) as path:
        saver.restore(sess, path)


def load_values(sess, values_by_variable):
    """Sets each variable to its value by feeding its initializer: no op is added, so a
    finalized graph (the training graph, whose golden record lists its ops) takes them."""
    for variable, value in values_by_variable.items():
        sess.run(variable.initializer, {variable.initializer.inputs[1]: value})


def restore_weights(sess, checkpoint_path, variables):
    """Restores the variables the checkpoint holds by name (read by TensorFlow's reader)."""
    with literal_paths.literal_path(checkpoint_path) as path:
        reader = tf1.train.load_checkpoint(path)
        load_values(sess, {v: reader.get_tensor(v.op.name) for v in variables
                           if reader.has_tensor(v.op.name)})

