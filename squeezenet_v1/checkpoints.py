"""`tf.compat.v1.train.Saver` checkpoints in a model_dir: finding, checking, saving, rotating.

The folder is the truth, not the `checkpoint` state file. `model.ckpt-<step>` is complete when
its .index and every .data shard are present and every tensor reads back (checksums included);
readers take the newest complete one. A trainer, holding the model_dir lock, rebuilds the state
file (which TF1 tools read) whenever it does not list exactly the complete checkpoints of this
folder: absent, unreadable, or naming another folder's files (the absolute paths TF1's Saver
wrote, in a copied run). Nothing outside the model_dir is ever read as ours or removed.

A save is ordered for crashes and power loss:
1. the Saver writes data, index and .meta into a temporary folder in model_dir; each is fsynced;
2. a journal names the checkpoint; its files are renamed into place, .index last (a checkpoint
   is complete the moment its .index appears), and the folder is fsynced;
3. the state file is written (fsynced, renamed, folder fsynced), then the journal is removed;
4. rotation: a second journal lists the checkpoints beyond --keep_checkpoint_max, they are
   removed, then that journal is removed.
The next trainer finishes or undoes what a killed one left by reading the journals; the only
other files it removes are temporaries (TensorFlow's and ours), each named in the log. A
restorable checkpoint is removed by rotation alone; an incomplete one is kept and named.
"""

import collections
import os
import re

import tensorflow as tf
from absl import logging

from squeezenet_v1 import files
from squeezenet_v1.errors import UserError

tf1 = tf.compat.v1

CHECKPOINT_PREFIX = 'model.ckpt'
STATE_FILE = 'checkpoint'
_SAVE_JOURNAL = '.squeezenet_v1-saving'
_ROTATION_JOURNAL = '.squeezenet_v1-rotating'
_CHECKPOINT_NAME = re.compile(r'^model\.ckpt-(\d+)$')
_CHECKPOINT_FILE = re.compile(r'^(model\.ckpt-\d+)\.(index|meta|data-(\d{5})-of-(\d{5}))$')
# What TensorFlow's Saver leaves when killed mid-save: its shard folder and temp files.
_CHECKPOINT_SUFFIX = re.compile(r'\.(index|meta|data-\d{5}-of-\d{5})$')
_DATA_SHARD = re.compile(r'\.data-(\d{5})-of-(\d{5})$')
_TENSORFLOW_LEFTOVER = re.compile(
    r'^(model\.ckpt-\d+(_temp(_[0-9a-f]{32})?|\.(index|meta|data-\d{5}-of-\d{5})\.tempstate\d+)'
    r'|checkpoint\.tmp[0-9a-f]{32})$')
# Variables a training checkpoint holds that an evaluation graph does not build (Adam's, and
# the float16 loss scale's).
_OPTIMIZER_MARKERS = ('/Adam', 'beta1_power', 'beta2_power', 'current_loss_scale', 'good_steps')
# How often a reader takes the newest checkpoint again when a rotating trainer removes its own.
_READ_ATTEMPTS = 10


class CheckpointMismatchError(UserError):
    """The checkpoint in model_dir was written by a model of another shape."""


class NoCheckpointError(UserError):
    """model_dir has no complete checkpoint to evaluate, predict with or export."""


class CheckpointSaveError(UserError):
    """A checkpoint could not be written (a full disk, say); the previous one is still latest."""


class CheckpointVanishedError(UserError):
    """Checkpoints kept disappearing while being read (a trainer rotating them away)."""


Scan = collections.namedtuple('Scan', ['complete', 'incomplete'])
Scan.__doc__ = """complete: checkpoint names, oldest first; incomplete: {name: what is wrong}."""


def step_of(name):
    """The step in a checkpoint name or prefix (`.../model.ckpt-<step>`)."""
    return int(_CHECKPOINT_NAME.match(os.path.basename(name)).group(1))


def checkpoint_prefix(model_dir, step):
    return os.path.join(model_dir, '%s-%d' % (CHECKPOINT_PREFIX, step))


def _checkpoint_files(model_dir):
    """{checkpoint name: [its file names]} from a listing of model_dir (never a glob)."""
    grouped = collections.defaultdict(list)
    try:
        names = os.listdir(model_dir)
    except (FileNotFoundError, NotADirectoryError):
        return grouped
    for file_name in names:
        match = _CHECKPOINT_FILE.match(file_name)
        if match:
            grouped[match.group(1)].append(file_name)
    return grouped


def _what_is_wrong(model_dir, name, file_names):
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
    try:
        with files.literal_path(os.path.join(model_dir, name)) as path:
            reader = tf1.train.load_checkpoint(path)
            for variable in reader.get_variable_to_shape_map():
                reader.get_tensor(variable)
    except Exception as e:  # TensorFlow raises OpError, IndexError, ValueError for damage
        return 'unreadable: %s' % _first_line(e)
    return None


def scan(model_dir):
    """Every checkpoint in model_dir, each read back in full: a Scan."""
    complete, incomplete = [], {}
    grouped = _checkpoint_files(model_dir)
    for name in sorted(grouped, key=step_of):
        problem = _what_is_wrong(model_dir, name, grouped[name])
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
    grouped = _checkpoint_files(model_dir)
    skipped = {}
    for name in sorted(grouped, key=step_of, reverse=True):
        problem = _what_is_wrong(model_dir, name, grouped[name])
        if problem is None:
            return os.path.join(model_dir, name), skipped
        skipped[name] = problem
    return None, skipped


def require_latest_checkpoint(model_dir):
    """The newest complete checkpoint prefix in model_dir; NoCheckpointError if there is none."""
    latest = latest_checkpoint(model_dir)
    if latest:
        return latest
    incomplete = scan(model_dir).incomplete
    damaged = ''.join(' %s is incomplete (%s).' % (os.path.join(model_dir, name), problem)
                      for name, problem in incomplete.items())
    raise NoCheckpointError('no complete checkpoint in %s.%s Train first (--mode=train or '
                            'train_and_eval), or point --model_dir at a training run.'
                            % (model_dir, damaged))


def require_checkpoint(checkpoint_path):
    """The prefix --checkpoint_path names, once it is known to be complete; else a UserError.

    A file of the checkpoint (`model.ckpt-100.index`) stands for its prefix.
    """
    prefix = _CHECKPOINT_SUFFIX.sub('', checkpoint_path)
    folder, name = os.path.split(prefix)
    grouped = _checkpoint_files(folder or '.')
    if name in grouped or os.path.isfile(prefix + '.index'):
        problem = _what_is_wrong(folder or '.', name, grouped.get(name) or _files_of(prefix))
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


def require_chosen_checkpoint(model_dir, checkpoint_path=None):
    """require_checkpoint(checkpoint_path) when given, else require_latest_checkpoint(model_dir)."""
    if checkpoint_path:
        return require_checkpoint(checkpoint_path)
    return require_latest_checkpoint(model_dir)


def with_checkpoint(model_dir, use, checkpoint_path=None):
    """use(prefix) for --checkpoint_path when given, else with_latest_checkpoint(model_dir, use)."""
    if checkpoint_path:
        return use(require_checkpoint(checkpoint_path))
    return with_latest_checkpoint(model_dir, use)


def with_latest_checkpoint(model_dir, use):
    """Returns use(prefix) for the newest complete checkpoint.

    A trainer rotating checkpoints may remove the one being read; then the newest is taken
    again. CheckpointVanishedError names them if that keeps happening.
    """
    prefix, skipped = _newest_complete(model_dir)
    for name, problem in skipped.items():
        logging.warning('%s is incomplete (%s): it is kept as it is and not used; reading %s.',
                        os.path.join(model_dir, name), problem,
                        os.path.basename(prefix) if prefix else 'nothing')
    vanished = []
    for _ in range(_READ_ATTEMPTS):
        prefix = prefix or require_latest_checkpoint(model_dir)
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


def read_state(model_dir):
    """(checkpoint names the state file lists, oldest first; why it cannot be used, or None)."""
    path = os.path.join(model_dir, STATE_FILE)
    if not os.path.lexists(path):
        return [], 'there was none'
    if not os.path.isfile(path):
        return [], 'it was not a plain file'
    try:
        state = tf1.train.get_checkpoint_state(model_dir)
    except Exception as e:  # ValueError, UnicodeDecodeError, OpError: the file is not a state
        return [], 'it was unreadable (%s)' % _first_line(e)
    if state is None or not state.model_checkpoint_path:
        return [], 'it was unreadable'
    names = []
    here = os.path.realpath(model_dir)
    for path in list(state.all_model_checkpoint_paths) + [state.model_checkpoint_path]:
        name = os.path.basename(path)
        # get_checkpoint_state has joined relative paths to model_dir already.
        if (os.path.realpath(os.path.dirname(path)) != here
                or not _CHECKPOINT_NAME.match(name)):
            return [], 'it named %s, outside this folder' % path
        if name not in names:
            names.append(name)
    return sorted(names, key=step_of), None


def write_state(model_dir, names):
    """Writes the state file listing `names` (oldest first) by relative name; fsynced."""
    text = 'model_checkpoint_path: "%s"\n' % names[-1]
    text += ''.join('all_model_checkpoint_paths: "%s"\n' % name for name in names)
    files.write_text_atomic(os.path.join(model_dir, STATE_FILE), text)


def prepare_for_training(model_dir):
    """Finishes or undoes what a killed trainer left, adopts the checkpoints present. -> Scan.

    Call only while holding the model_dir lock, after every check that could refuse the run.
    """
    _finish_journals(model_dir)
    for name in sorted(os.listdir(model_dir)):
        if _TENSORFLOW_LEFTOVER.match(name):
            files.remove_path(os.path.join(model_dir, name))
            logging.info('Removed %s, left by an interrupted TensorFlow save.',
                         os.path.join(model_dir, name))
    for path in files.remove_stale_temporaries(model_dir):
        logging.info('Removed %s, a temporary of a process that no longer runs.', path)
    found = scan(model_dir)
    for name, problem in found.incomplete.items():
        logging.warning('%s is incomplete (%s): it is kept as it is and not used.',
                        os.path.join(model_dir, name), problem)
    listed, problem = read_state(model_dir)
    if found.complete and (problem or listed != found.complete):
        if not problem:
            missing = [n for n in listed if n not in found.complete]
            problem = ('it listed %s, missing or incomplete here' % ', '.join(missing) if missing
                       else 'it did not list %s' % ', '.join(
                           n for n in found.complete if n not in listed))
        write_state(model_dir, found.complete)
        logging.warning('Rebuilt %s from the %d complete checkpoints in the folder, because %s.',
                        os.path.join(model_dir, STATE_FILE), len(found.complete), problem)
    return found


def _finish_journals(model_dir):
    """Undoes a save killed while renaming into place; finishes a killed rotation."""
    for journal, finish in ((_SAVE_JOURNAL, _undo_partial_save),
                            (_ROTATION_JOURNAL, _remove_checkpoint)):
        path = os.path.join(model_dir, journal)
        try:
            with open(path, encoding='ascii') as f:
                names = [line.strip() for line in f if _CHECKPOINT_NAME.match(line.strip())]
        except FileNotFoundError:
            continue
        except (OSError, ValueError):
            names = []  # a torn journal: it was being written, so none of its work began
        for name in names:
            finish(model_dir, name)
        files.remove_path(path)
        files.fsync_dir(model_dir)


def _undo_partial_save(model_dir, name):
    grouped = _checkpoint_files(model_dir)
    if name in grouped and _what_is_wrong(model_dir, name, grouped[name]):
        logging.info('Removing the files of %s: a killed save was moving them into place.',
                     os.path.join(model_dir, name))
        _remove_checkpoint(model_dir, name)


def _remove_checkpoint(model_dir, name):
    """Removes one checkpoint's files by exact name, .index first so readers skip it at once."""
    file_names = _checkpoint_files(model_dir).get(name, [])
    for file_name in sorted(file_names, key=lambda f: not f.endswith('.index')):
        files.remove_path(os.path.join(model_dir, file_name))


def _publish_order(file_name):
    """.meta first, then the data shards, the .index last."""
    if file_name.endswith('.meta'):
        return 0
    return 2 if file_name.endswith('.index') else 1


def save(sess, saver, model_dir, step, complete, keep):
    """Writes model.ckpt-<step> crash-safely and keeps the newest `keep`.

    The checkpoint is named by the global_step it holds: `step`, unless the other workers of a
    cluster moved global_step while it was written (asynchronous training, distributed.py).
    `complete` lists the complete checkpoints of model_dir, oldest first (the Scan's, then what
    each save returned). Returns (prefix, the complete checkpoints now, oldest first).
    """
    name = '%s-%d' % (CHECKPOINT_PREFIX, step)
    prefix = os.path.join(model_dir, name)
    journal = os.path.join(model_dir, _SAVE_JOURNAL)
    staging, published = None, []
    try:
        staging = files.make_temp_dir(model_dir, name)
        saver.save(sess, os.path.join(staging, name), write_meta_graph=False, write_state=False)
        name = _name_by_saved_step(staging, name)
        prefix = os.path.join(model_dir, name)
        _write_meta_graph(saver, os.path.join(staging, name + '.meta'))
        staged = sorted((f for f in os.listdir(staging) if _CHECKPOINT_FILE.match(f)),
                        key=_publish_order)
        for file_name in staged:
            files.fsync_file(os.path.join(staging, file_name))
        _set_aside(model_dir, name)
        files.write_text_atomic(journal, name + '\n')
        for file_name in staged:
            os.replace(os.path.join(staging, file_name), os.path.join(model_dir, file_name))
            published.append(file_name)
        files.fsync_dir(model_dir)
    except BaseException as e:
        for file_name in published:
            files.remove_path(os.path.join(model_dir, file_name))
        files.remove_path(journal)
        if isinstance(e, (tf.errors.OpError, OSError)):
            raise CheckpointSaveError(
                'could not write checkpoint %s (%s). The latest checkpoint is still %s. Free '
                'some space in %s (or choose another --model_dir) and start again to resume.'
                % (prefix, _short_reason(e, model_dir),
                   os.path.join(model_dir, complete[-1]) if complete else 'none', model_dir))
        raise
    finally:
        if staging:
            files.remove_path(staging)
    older = [n for n in complete if n != name]
    kept = (older[-(keep - 1):] if keep > 1 else []) + [name]
    write_state(model_dir, kept)
    files.remove_path(journal)
    _rotate(model_dir, [n for n in older if n not in kept])
    return prefix, kept


def _name_by_saved_step(staging, name):
    """model.ckpt-<the global_step it holds> for the checkpoint just saved in staging as name."""
    held = '%s-%d' % (CHECKPOINT_PREFIX, global_step_of(os.path.join(staging, name)))
    if held != name:
        for file_name in os.listdir(staging):
            if file_name.startswith(name + '.'):
                os.replace(os.path.join(staging, file_name),
                           os.path.join(staging, held + file_name[len(name):]))
    return held


def _write_meta_graph(saver, path):
    """The saver's MetaGraphDef without device placement, so it imports in any process.

    A cluster's graph places every op on a ps or worker task. (export_meta_graph's own
    clear_devices changes the graph, which a finalized training graph refuses.)
    """
    meta = saver.export_meta_graph()
    for node in meta.graph_def.node:
        node.device = ''
    for function in meta.graph_def.library.function:
        for node in function.node_def:
            node.device = ''
    with open(path, 'wb') as f:
        f.write(meta.SerializeToString())


def _set_aside(model_dir, name):
    """Renames files already under `name` (an incomplete checkpoint) to <file>.incomplete."""
    for file_name in _checkpoint_files(model_dir).get(name, []):
        path = os.path.join(model_dir, file_name)
        os.replace(path, path + '.incomplete')
        logging.warning('%s was an incomplete checkpoint under the name this save needs: kept '
                        'as %s.incomplete.', path, path)


def _rotate(model_dir, doomed):
    if not doomed:
        return
    journal = os.path.join(model_dir, _ROTATION_JOURNAL)
    files.write_text_atomic(journal, ''.join(name + '\n' for name in doomed))
    for name in doomed:
        _remove_checkpoint(model_dir, name)
    files.remove_path(journal)
    files.fsync_dir(model_dir)


def global_step_of(checkpoint_path):
    """The global_step stored in a checkpoint (read from its tensor, not its name)."""
    with files.literal_path(checkpoint_path) as path:
        return int(tf1.train.load_checkpoint(path).get_tensor('global_step'))


def num_classes(checkpoint_path):
    """The model's output size, read from final_conv/bias in the checkpoint."""
    with files.literal_path(checkpoint_path) as path:
        shapes = dict(tf1.train.list_variables(path))
    if 'final_conv/bias' not in shapes:
        raise CheckpointMismatchError('%s has no final_conv/bias: it is not a SqueezeNetModel '
                                      'checkpoint.' % checkpoint_path)
    return int(shapes['final_conv/bias'][0])


def check_compatible(checkpoint_path, variables):
    """Raises CheckpointMismatchError listing variables missing, extra or of another shape."""
    with files.literal_path(checkpoint_path) as path:
        stored = dict(tf1.train.list_variables(path))
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
    with files.literal_path(checkpoint_path) as path:
        saver.restore(sess, path)


def _first_line(error):
    message = str(getattr(error, 'message', None) or error).strip()
    return message.splitlines()[0] if message else type(error).__name__


def _short_reason(error, model_dir):
    """The line of a TensorFlow error that names the file, not its graph-trace preamble."""
    message = str(getattr(error, 'message', None) or error)
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    for line in lines:
        if model_dir in line and 'File "' not in line:
            return line
    return lines[0] if lines else type(error).__name__
