"""Writing files a user trusts us with: whole or not at all, durable, and no leftovers.

Every temporary the project makes is named `.<what>.<pid>-<random>.tmp` beside its final
place. The pid in the name is what lets a later run remove the temporaries of a killed one
(its process is gone) without touching those of a run still working beside it, and the exact
pattern is what keeps that cleanup away from any file a user made.
"""

import contextlib
import hashlib
import json
import os
import re
import shutil
import tempfile

from squeezenet_v1.errors import UserError

TEMP_SUFFIX = '.tmp'
_GLOB_CHARACTERS = frozenset('*?[]\\')
_TEMP_NAME = re.compile(r'^\.(?P<what>.+)\.(?P<pid>\d+)-[a-z0-9_]+%s$' % re.escape(TEMP_SUFFIX))


def _temp_prefix(what):
    # Glob characters are left out of the name, so TensorFlow's readers can open what is inside.
    return '.%s.%d-' % (''.join('_' if c in _GLOB_CHARACTERS else c for c in what), os.getpid())


@contextlib.contextmanager
def literal_path(path):
    """A name for path that TensorFlow cannot read as a glob pattern.

    TensorFlow looks checkpoint prefixes and SavedModel variables up with GetMatchingPaths, so
    `[1]` in `run[1]/model.ckpt-5` would match a sibling `run1`. Such a path is given through
    an open descriptor of its folder instead: /proc/self/fd/<fd>/model.ckpt-5.
    """
    folder = os.path.dirname(os.path.abspath(path))
    if not _GLOB_CHARACTERS & set(folder) or not os.path.isdir('/proc/self/fd'):
        yield path
        return
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        yield '/proc/self/fd/%d/%s' % (fd, os.path.basename(path))
    finally:
        os.close(fd)


def make_temp_dir(parent, what):
    """A new folder `.<what>.<pid>-<random>.tmp` in parent, readable by others (0755)."""
    path = tempfile.mkdtemp(prefix=_temp_prefix(what), suffix=TEMP_SUFFIX, dir=parent)
    os.chmod(path, 0o755)  # mkdtemp's 0700 would hide a published folder from other users
    return path


def make_temp_file(parent, what):
    """A new empty file `.<what>.<pid>-<random>.tmp` in parent; returns its path."""
    fd, path = tempfile.mkstemp(prefix=_temp_prefix(what), suffix=TEMP_SUFFIX, dir=parent)
    os.close(fd)
    return path


def temp_owner_pid(name):
    """The pid in a temporary's name, or None when the name is not one of ours."""
    match = _TEMP_NAME.match(name)
    return int(match.group('pid')) if match else None


def _process_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by another user
        return True
    return True


def remove_stale_temporaries(folder):
    """Removes our temporaries in folder whose process has died; returns their paths."""
    removed = []
    try:
        names = os.listdir(folder)
    except OSError:
        return removed
    for name in sorted(names):
        pid = temp_owner_pid(name)
        if pid is None or pid == os.getpid() or _process_alive(pid):
            continue
        path = os.path.join(folder, name)
        remove_path(path)
        removed.append(path)
    return removed


def remove_path(path):
    """Removes a file, or a folder that is not a symlink, by its exact name; no error if absent."""
    try:
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)
        else:
            os.remove(path)
    except FileNotFoundError:
        pass


def fsync_file(path):
    """Flushes a file's data to the disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(path):
    """Flushes a folder's entries (names created, renamed or removed) to the disk."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def file_digest(path, algorithm='sha256'):
    """The hex digest of a file's bytes, read a MB at a time (files of any size)."""
    digest = hashlib.new(algorithm)
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(1 << 20), b''):
            digest.update(block)
    return digest.hexdigest()


def write_json_atomic(path, obj):
    """Writes obj as indented JSON, whole or not at all (see write_bytes_atomic)."""
    return write_text_atomic(path, json.dumps(obj, indent=2) + '\n')


def append_json_line(path, record, sort_keys=True):
    """Appends one JSON line in a single write, fsynced: a reader never sees half a line."""
    line = (json.dumps(record, sort_keys=sort_keys) + '\n').encode('utf-8')
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
        os.fsync(fd)
    finally:
        os.close(fd)
    fsync_dir(os.path.dirname(os.path.abspath(path)))


def write_text_atomic(path, text):
    """Writes UTF-8 text, whole or not at all (see write_bytes_atomic)."""
    return write_bytes_atomic(path, text.encode('utf-8'))


def write_bytes_atomic(path, data):
    """Writes bytes to a temporary beside path, fsyncs it, renames it over path, fsyncs the folder.

    A reader sees the old file or the new one, never half of one, also after a power loss.
    """
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=_temp_prefix(os.path.basename(path)), suffix=TEMP_SUFFIX,
                               dir=folder)
    try:
        os.chmod(tmp, 0o644)  # mkstemp's 0600 would hide results from other readers
        with os.fdopen(fd, 'wb') as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        remove_path(tmp)
        raise
    fsync_dir(folder)
    return path


def replace_dir(staging, target):
    """Puts the finished folder `staging` at target; an earlier target is removed only after.

    The earlier folder is first renamed into a temporary of ours beside it, so at every moment
    target is either the old folder or the new one, and a crash leaves a temporary that
    remove_stale_temporaries cleans.
    """
    old = None
    parent = os.path.dirname(os.path.abspath(target))
    if os.path.lexists(target):
        old = make_temp_dir(parent, os.path.basename(target))
        os.replace(target, os.path.join(old, 'previous'))
    os.replace(staging, target)
    fsync_dir(parent)
    if old:
        remove_path(old)


def check_output_file(path, flag, is_ours, inputs=()):
    """Refuses (UserError) an output file path before any work, in one line naming the fix.

    Refused: a folder; a file in a missing or read-only folder; one of the command's `inputs`
    (or a file inside an input folder); an existing file that `is_ours(path)` does not recognize
    as this command's earlier output. Only that earlier output is ever replaced.
    """
    folder = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        raise UserError('%s %s is a folder. Name a file in it, e.g. %s.'
                        % (flag, path, os.path.join(path, 'report.json')))
    target = os.path.realpath(path)
    for given in inputs:
        given = os.path.realpath(given)
        if target == given or target.startswith(given.rstrip(os.sep) + os.sep):
            raise UserError('%s %s is one of this command\'s inputs (%s); it is not written '
                            'over. Name a new file.' % (flag, path, given))
    if not os.path.isdir(folder):
        raise UserError('%s %s: the folder %s does not exist. Create it or name a file in an '
                        'existing folder.' % (flag, path, folder))
    if not os.access(folder, os.W_OK | os.X_OK):
        raise UserError('%s %s: the folder %s is not writable. Name a file in a folder you can '
                        'write to.' % (flag, path, folder))
    if os.path.lexists(path) and not is_ours(path):
        raise UserError('%s %s exists and is not an earlier output of this command; it is not '
                        'overwritten. Name a new file.' % (flag, path))


def read_plain_json(path):
    """The JSON in path when it is a plain file (no link) of at most 1 GB, else None."""
    if os.path.islink(path) or not os.path.isfile(path) or os.path.getsize(path) > 1 << 30:
        return None
    try:
        with open(path, encoding='utf-8') as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def is_json_of_format(path, fmt):
    """Whether path is a plain JSON file whose "format" is `fmt` (a report this project wrote)."""
    content = read_plain_json(path)
    return isinstance(content, dict) and content.get('format') == fmt
