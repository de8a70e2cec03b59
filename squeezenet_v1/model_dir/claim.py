"""The model_dir a trainer writes into: checked, created, locked, and its flags recorded.

One training process per model_dir: an advisory lock the kernel drops when the holder dies.
Every check that can refuse a run comes before the first write, so a refused run leaves no
trace. What the folder holds besides checkpoints is written here or by run_records.py
(flags.json, runs.jsonl, labels.txt).
"""

import contextlib
import datetime
import errno
import fcntl
import os
import stat

from absl import logging

from squeezenet_v1.files import atomic
from squeezenet_v1.files import temporaries
from squeezenet_v1.errors import UserError
from squeezenet_v1.model_dir import checkpoint_writer
from squeezenet_v1.model_dir import checkpoints
from squeezenet_v1.model_dir import run_records

LOCK_FILE = '.lock'


class ModelDirLockedError(UserError):
    """Another process is training into the same model_dir."""


@contextlib.contextmanager
def model_dir_lock(model_dir):
    """Holds model_dir/.lock (flock) for the duration; refuses at once if another holds it.

    The lock file holds the holder's PID and the model_dir it locks (device:inode), so a lock
    file hard-linked with another folder's (`cp -al run snap`) is told apart: this folder gets a
    lock file of its own, unless the holder trains into this very folder. A lock counts only
    while the locked file is the one named .lock: one renamed over meanwhile is tried again.
    """
    path = os.path.join(model_dir, LOCK_FILE)
    folder = os.stat(model_dir)
    here = '%d:%d' % (folder.st_dev, folder.st_ino)
    fd = _acquire(path, model_dir, here)
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, ('%d %s' % (os.getpid(), here)).encode('ascii'), 0)
        yield path
    finally:
        os.close(fd)  # closing drops the flock; a killed process's lock drops with it


def _acquire(path, model_dir, here, attempts=10):
    """A descriptor of model_dir's own lock file, locked; ModelDirLockedError when it is held."""
    for _ in range(attempts):
        fd = _open_lock_file(path)
        try:
            holder = _try_lock(fd)
            if os.fstat(fd).st_nlink > 1 and (holder is None or holder[1:] != [here]):
                fd = _own_lock_file(path, fd)  # another folder's, shared through a hard link
                holder = None
            if holder is not None:
                raise ModelDirLockedError(
                    '--model_dir %s is in use: process %s is training into it (lock file %s). '
                    'Wait for it to finish, stop it, or choose another --model_dir.'
                    % (model_dir, holder[0] if holder else 'unknown', path))
            if _is_named(fd, path):
                return fd
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)  # the file was renamed over meanwhile: lock the one there now
    raise ModelDirLockedError('--model_dir %s: its lock file %s kept being replaced. Try again.'
                              % (model_dir, path))


def _is_named(fd, path):
    try:
        named = os.lstat(path)
    except FileNotFoundError:
        return False
    held = os.fstat(fd)
    return (held.st_dev, held.st_ino) == (named.st_dev, named.st_ino)


def _open_lock_file(path):
    try:
        # Never through a symlink, never blocking on a FIFO: the PID is written into this file.
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC,
                     0o644)
    except OSError as e:
        raise ModelDirLockedError('%s cannot be used as the lock file (%s). It should be a plain '
                                  'file this package made: remove it and start again.'
                                  % (path, e.strerror or e))
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise ModelDirLockedError('%s is not a plain file (a FIFO or device?). Remove it and '
                                  'start again.' % path)
    return fd


def _try_lock(fd):
    """None once the flock is held; else what the holder wrote: [pid, its model_dir's id]."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return None
    except OSError as e:
        if e.errno not in (errno.EWOULDBLOCK, errno.EACCES):
            raise
    return os.pread(fd, 64, 0).decode('ascii', 'replace').split() or []


def _own_lock_file(path, shared_fd):
    """A new lock file, locked before it is renamed over path (the other names keep theirs);
    returns its descriptor and closes shared_fd."""
    fresh = temporaries.make_temp_file(os.path.dirname(os.path.abspath(path)), LOCK_FILE)
    fd = os.open(fresh, os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        os.fchmod(fd, 0o644)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # a new file: nobody else holds it
        os.replace(fresh, path)
    except BaseException:
        os.close(fd)
        temporaries.remove_path(fresh)
        raise
    os.close(shared_fd)
    logging.warning('%s was a hard link shared with another folder\'s lock file (a backup made '
                    'with cp -al?); this folder now has a lock file of its own.', path)
    return fd


class ModelDirError(UserError):
    """--model_dir cannot be used."""


@contextlib.contextmanager
def claimed_model_dir(model_dir, training, source, run_record=None, on_start=None):
    """Checks, creates and locks model_dir for training; yields (its Scan, the checkpoint to
    resume from or None) once flags.json and labels.txt are written and on_start was called.

    Every check that can refuse the run comes before the first write (see train()).
    """
    checked = checkpoints.latest_checkpoint(model_dir)
    if checked:
        checkpoints.check_compatible(checked, training.variables, optimizer_optional=True)
    check_room_for_checkpoint(model_dir, training.variables)
    try:
        os.makedirs(model_dir, exist_ok=True)
    except OSError as e:
        raise ModelDirError('--model_dir %s cannot be created (%s). Choose a folder you can '
                            'write to.' % (model_dir, e.strerror or e))
    with model_dir_lock(model_dir):
        try:
            found = checkpoint_writer.prepare_for_training(model_dir)
            resume = os.path.join(model_dir, found.complete[-1]) if found.complete else None
            if resume and resume != checked:  # another trainer saved since the check above
                checkpoints.check_compatible(resume, training.variables,
                                             optimizer_optional=True)
            if not resume:
                set_aside_earlier_results(model_dir)
            if on_start:
                on_start(checkpoints.global_step_stored_in(resume) if resume else 0)
            if run_record is not None:
                if resume:
                    warn_about_changed_flags(model_dir, run_record)
                atomic.write_json_atomic(os.path.join(model_dir, run_records.FLAGS_FILE),
                                        run_record)
            run_records.write_label_names(model_dir, source.label_names)
        except OSError as e:  # a full disk, say, before the first step
            raise ModelDirError('--model_dir %s cannot be written (%s); nothing was trained. '
                                'Free some space or choose another --model_dir.'
                                % (model_dir, e.strerror or e))
        yield found, resume


def set_aside_earlier_results(model_dir):
    """Renames an earlier run's evaluation files aside before a run starts from scratch.

    Their results are of other weights: left in place, continuous_eval and train_and_eval would
    take them for this run's and skip its checkpoints, and summarize would report them.
    """
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime('%Y%m%dT%H%M%SZ')
    for name in (run_records.EVAL_HISTORY_FILE, run_records.EVAL_RESULTS_FILE):
        path = os.path.join(model_dir, name)
        if os.path.lexists(path):
            aside = atomic.unused_name('%s.before-%s' % (path, stamp))
            os.replace(path, aside)
            logging.warning('%s held the results of an earlier run, whose checkpoints are gone; '
                            'this run starts from scratch, so it is kept as %s.', path, aside)


# Room a save needs beyond the variables: its .meta graph and the files written beside.
_SAVE_OVERHEAD_BYTES = 512 << 10


def check_room_for_checkpoint(model_dir, variables):
    """Refuses a model_dir whose file system cannot hold one checkpoint of `variables`.

    A disk that fills later is answered at that save (checkpoint_writer.CheckpointSaveError).
    """
    needed = (sum(v.shape.num_elements() * v.dtype.base_dtype.size for v in variables)
              + _SAVE_OVERHEAD_BYTES)
    stat = os.statvfs(_nearest_existing(model_dir))
    free = stat.f_bavail * stat.f_frsize
    if free < needed:
        raise ModelDirError('--model_dir %s has %.1f MB free; a checkpoint of this model needs '
                            'about %.1f MB. Free some space or choose another --model_dir; '
                            'nothing was trained.' % (model_dir, free / 1e6, needed / 1e6))


def warn_about_changed_flags(model_dir, run_record):
    changes = run_records.changed_experiment_flags(run_records.recorded_flags(model_dir),
                                                  run_record)
    if changes:
        # Not refused: TF1 users lowered the learning rate by hand on resume.
        logging.warning('Resuming %s with other experiment flags than its last training run: '
                        '%s.%s', model_dir, '; '.join(changes),
                        ' labels.txt now names the new data set\'s classes.'
                        if any(c.startswith('--dataset') for c in changes) else '')


def check_model_dir(model_dir, will_write):
    """Refuses a --model_dir that is a file or cannot be written; creates nothing."""
    check_name_lengths(model_dir, '--model_dir')
    if os.path.exists(model_dir) and not os.path.isdir(model_dir):
        raise ModelDirError('--model_dir %s is a file, not a folder. Choose a folder.'
                            % model_dir)
    if not will_write:
        return
    existing = _nearest_existing(model_dir)
    if not os.path.isdir(existing):
        raise ModelDirError('--model_dir %s cannot be created (%s is a file). Choose a '
                            'folder you can write to.' % (model_dir, existing))
    if not os.access(existing, os.W_OK | os.X_OK):
        if existing == os.path.abspath(model_dir):
            raise ModelDirError('--model_dir %s is not writable. Choose a folder you can '
                                'write to, or fix its permissions.' % model_dir)
        raise ModelDirError('--model_dir %s cannot be created (%s is not writable). '
                            'Choose a folder you can write to.' % (model_dir, existing))


# The longest file name a model_dir holds beyond its own path: 'model.ckpt-<step>.data-…' and
# the temporaries written beside it.
_LONGEST_NAME_INSIDE = 64


def check_name_lengths(path, flag):
    """Refuses a path the file system cannot name, before a parent of it is created.

    Without this, makedirs creates the parents and only then fails on the long component.
    """
    existing = _nearest_existing(path)
    name_max = os.pathconf(existing, 'PC_NAME_MAX')
    path_max = os.pathconf(existing, 'PC_PATH_MAX')
    for component in os.path.abspath(path).split(os.sep):
        if len(os.fsencode(component)) > name_max:
            raise ModelDirError('%s %s has a folder name of %d bytes; this file system allows '
                                '%d. Choose a shorter name.'
                                % (flag, path, len(os.fsencode(component)), name_max))
    if len(os.fsencode(os.path.abspath(path))) + _LONGEST_NAME_INSIDE > path_max:
        raise ModelDirError('%s %s is too long a path for this file system (%d bytes with the '
                            'files it will hold; it allows %d). Choose a shorter path.'
                            % (flag, path, len(os.fsencode(os.path.abspath(path)))
                               + _LONGEST_NAME_INSIDE, path_max))


def _nearest_existing(path):
    """path, or the nearest folder above it that exists (where it would be created)."""
    existing = os.path.abspath(path)
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    return existing
