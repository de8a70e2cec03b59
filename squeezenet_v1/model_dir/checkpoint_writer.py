"""The trainer's side of a model_dir's checkpoints: adopting what is there, saving, rotating.

Only a trainer holding the model_dir lock (claim.claimed_model_dir) calls these. It rebuilds
the `checkpoint` state file (which TF1 tools read) whenever it does not list exactly the
complete checkpoints of this folder: absent, unreadable, or naming another folder's files (the
absolute paths TF1's Saver wrote, in a copied run).

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

import os
import re

import tensorflow as tf
from absl import logging

from squeezenet_v1.files import atomic
from squeezenet_v1.files import reading

from squeezenet_v1.files import temporaries
from squeezenet_v1.errors import UserError, first_line
from squeezenet_v1.model_dir.checkpoints import (CHECKPOINT_FILE, CHECKPOINT_NAME,
                                                CHECKPOINT_PREFIX, STATE_FILE, checkpoint_files,
                                                global_step_stored_in, scan, step_in_name,
                                                what_is_wrong)

tf1 = tf.compat.v1


_SAVE_JOURNAL = '.squeezenet_v1-saving'


_ROTATION_JOURNAL = '.squeezenet_v1-rotating'


_TENSORFLOW_LEFTOVER = re.compile(
    r'^(model\.ckpt-\d+(_temp(_[0-9a-f]{32})?|\.(index|meta|data-\d{5}-of-\d{5})\.tempstate\d+)'
    r'|checkpoint\.tmp[0-9a-f]{32})$')

# A state file names each kept checkpoint in a line of ~40 bytes; TensorFlow reads it whole.
MAX_STATE_BYTES = 16 << 20


class CheckpointSaveError(UserError):
    """A checkpoint could not be written (a full disk, say); the previous one is still latest."""


def read_state(model_dir):
    """(checkpoint names the state file lists, oldest first; why it cannot be used, or None)."""
    path = os.path.join(model_dir, STATE_FILE)
    if not os.path.lexists(path):
        return [], 'there was none'
    try:  # checked before TensorFlow reads it whole
        reading.open_regular(path, MAX_STATE_BYTES).close()
    except reading.UnreadableFileError as e:
        return [], {'size': 'it was larger than a state file can be (%d bytes)' % MAX_STATE_BYTES,
                    'link': 'it was a symbolic link'}.get(e.kind, 'it was not a plain file')
    except OSError as e:
        return [], 'it was unreadable (%s)' % (e.strerror or e)
    try:
        state = tf1.train.get_checkpoint_state(model_dir)
    except Exception as e:  # ValueError, UnicodeDecodeError, OpError: the file is not a state
        return [], 'it was unreadable (%s)' % first_line(e)
    if state is None or not state.model_checkpoint_path:
        return [], 'it was unreadable'
    names = []
    here = os.path.realpath(model_dir)
    for path in list(state.all_model_checkpoint_paths) + [state.model_checkpoint_path]:
        name = os.path.basename(path)
        # get_checkpoint_state has joined relative paths to model_dir already.
        if (os.path.realpath(os.path.dirname(path)) != here
                or not CHECKPOINT_NAME.match(name)):
            return [], 'it named %s, outside this folder' % path
        if name not in names:
            names.append(name)
    return sorted(names, key=step_in_name), None


def write_state(model_dir, names):
    """Writes the state file listing `names` (oldest first) by relative name; fsynced."""
    text = 'model_checkpoint_path: "%s"\n' % names[-1]
    text += ''.join('all_model_checkpoint_paths: "%s"\n' % name for name in names)
    atomic.write_text_atomic(os.path.join(model_dir, STATE_FILE), text)


def prepare_for_training(model_dir):
    """Finishes or undoes what a killed trainer left, adopts the checkpoints present. -> Scan.

    Call only while holding the model_dir lock, after every check that could refuse the run.
    """
    _finish_journals(model_dir)
    for name in sorted(os.listdir(model_dir)):
        if _TENSORFLOW_LEFTOVER.match(name):
            temporaries.remove_path(os.path.join(model_dir, name))
            logging.info('Removed %s, left by an interrupted TensorFlow save.',
                         os.path.join(model_dir, name))
    for path in temporaries.remove_stale_temporaries(model_dir):
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
            lines = reading.read_text(path, MAX_STATE_BYTES).splitlines()
            names = [line.strip() for line in lines if CHECKPOINT_NAME.match(line.strip())]
        except FileNotFoundError:
            continue
        except (OSError, reading.UnreadableFileError):
            names = []  # a torn journal: it was being written, so none of its work began
        for name in names:
            finish(model_dir, name)
        temporaries.remove_path(path)
        atomic.fsync_dir(model_dir)


def _undo_partial_save(model_dir, name):
    grouped = checkpoint_files(model_dir)
    if name in grouped and what_is_wrong(model_dir, name, grouped[name]):
        logging.info('Removing the files of %s: a killed save was moving them into place.',
                     os.path.join(model_dir, name))
        _remove_checkpoint(model_dir, name)


def _remove_checkpoint(model_dir, name):
    """Removes one checkpoint's files by exact name, .index first so readers skip it at once."""
    file_names = checkpoint_files(model_dir).get(name, [])
    for file_name in sorted(file_names, key=lambda f: not f.endswith('.index')):
        temporaries.remove_path(os.path.join(model_dir, file_name))


def _publish_order(file_name):
    """.meta first, then the data shards, the .index last."""
    if file_name.endswith('.meta'):
        return 0
    return 2 if file_name.endswith('.index') else 1


def save(sess, saver, model_dir, step, complete, keep):
    """Writes model.ckpt-<step> crash-safely and keeps the newest `keep` (0: every one).

    The checkpoint is named by the global_step it holds: `step`, unless the other workers of a
    cluster moved global_step while it was written (asynchronous training, cluster/worker.py).
    `complete` lists the complete checkpoints of model_dir, oldest first (the Scan's, then what
    each save returned). Returns (prefix, the complete checkpoints now, oldest first).
    """
    name = '%s-%d' % (CHECKPOINT_PREFIX, step)
    prefix = os.path.join(model_dir, name)
    journal = os.path.join(model_dir, _SAVE_JOURNAL)
    staging, published = None, []
    try:
        staging = temporaries.make_temp_dir(model_dir, name)
        saver.save(sess, os.path.join(staging, name), write_meta_graph=False, write_state=False)
        name = _name_by_saved_step(staging, name)
        prefix = os.path.join(model_dir, name)
        _write_meta_graph(saver, os.path.join(staging, name + '.meta'))
        staged = sorted((f for f in os.listdir(staging) if CHECKPOINT_FILE.match(f)),
                        key=_publish_order)
        for file_name in staged:
            atomic.fsync_file(os.path.join(staging, file_name))
        _set_aside(model_dir, name)
        atomic.write_text_atomic(journal, name + '\n')
        for file_name in staged:
            os.replace(os.path.join(staging, file_name), os.path.join(model_dir, file_name))
            published.append(file_name)
        atomic.fsync_dir(model_dir)
    except BaseException as e:
        for file_name in published:
            temporaries.remove_path(os.path.join(model_dir, file_name))
        temporaries.remove_path(journal)
        if isinstance(e, (tf.errors.OpError, OSError)):
            raise CheckpointSaveError(
                'could not write checkpoint %s (%s). The latest checkpoint is still %s. Free '
                'some space in %s (or choose another --model_dir) and start again to resume.'
                % (prefix, _short_reason(e, model_dir),
                   os.path.join(model_dir, complete[-1]) if complete else 'none', model_dir))
        raise
    finally:
        if staging:
            temporaries.remove_path(staging)
    older = [n for n in complete if n != name]
    if keep == 0:  # TF1's max_to_keep=0: every checkpoint is kept
        kept = older + [name]
    else:
        kept = (older[-(keep - 1):] if keep > 1 else []) + [name]
    write_state(model_dir, kept)
    temporaries.remove_path(journal)
    _rotate(model_dir, [n for n in older if n not in kept])
    return prefix, kept


def _name_by_saved_step(staging, name):
    """model.ckpt-<the global_step it holds> for the checkpoint just saved in staging as name."""
    held = '%s-%d' % (CHECKPOINT_PREFIX, global_step_stored_in(os.path.join(staging, name)))
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
    """Renames files already under `name` (an incomplete checkpoint) to <file>.incomplete
    (.incomplete.1, ... when an earlier one has that name: none is ever overwritten)."""
    for file_name in checkpoint_files(model_dir).get(name, []):
        path = os.path.join(model_dir, file_name)
        aside = atomic.unused_name(path + '.incomplete')
        os.replace(path, aside)
        logging.warning('%s was an incomplete checkpoint under the name this save needs: kept '
                        'as %s.', path, aside)


def _rotate(model_dir, doomed):
    if not doomed:
        return
    journal = os.path.join(model_dir, _ROTATION_JOURNAL)
    atomic.write_text_atomic(journal, ''.join(name + '\n' for name in doomed))
    for name in doomed:
        _remove_checkpoint(model_dir, name)
    temporaries.remove_path(journal)
    atomic.fsync_dir(model_dir)


def _short_reason(error, model_dir):
    """The line of a TensorFlow error that names the file, not its graph-trace preamble."""
    message = str(getattr(error, 'message', None) or error)
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    for line in lines:
        if model_dir in line and 'File "' not in line:
            return line
    return lines[0] if lines else type(error).__name__
