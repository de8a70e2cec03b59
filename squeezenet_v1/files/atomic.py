"""Writing files a user trusts us with: whole or not at all, durable, and only our own.

Publish by write-temp, fsync, rename, fsync the folder: a reader sees the old file or the new
one, never half of one, also after a power loss. A rename replaces a name, never another
file's contents; the one write into an existing file, an append, first makes sure the file is
a plain file of this folder's alone: one hard-linked with another folder's (`cp -al`, `rsync
--link-dest`, the usual backups) is replaced by a copy of its own, so the other never sees it.
A name something is set aside under is never one already taken (`unused_name`).
"""

import errno
import json
import os
import shutil
import stat
import tempfile

from absl import logging

from squeezenet_v1.errors import UserError
from squeezenet_v1.files import temporaries

_APPEND = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


class UnwritableFileError(UserError):
    """A file to be appended to is not a plain file of its own (a link, a FIFO, a device)."""


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


def write_json_atomic(path, obj):
    """Writes obj as indented JSON, whole or not at all (see write_bytes_atomic)."""
    return write_text_atomic(path, json.dumps(obj, indent=2) + '\n')


def append_json_line(path, record, sort_keys=True):
    """Appends one JSON line in a single write, fsynced: a reader never sees half a line."""
    line = (json.dumps(record, sort_keys=sort_keys) + '\n').encode('utf-8')
    fd = _open_own_for_append(path)
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
    fd, tmp = tempfile.mkstemp(prefix=temporaries.temp_prefix(os.path.basename(path)),
                               suffix=temporaries.TEMP_SUFFIX, dir=folder)
    try:
        os.chmod(tmp, 0o644)  # mkstemp's 0600 would hide results from other readers
        with os.fdopen(fd, 'wb') as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        temporaries.remove_path(tmp)
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
        old = temporaries.make_temp_dir(parent, os.path.basename(target))
        os.replace(target, os.path.join(old, 'previous'))
    os.replace(staging, target)
    fsync_dir(parent)
    if old:
        temporaries.remove_path(old)


def _open_own_for_append(path, attempts=10):
    """A descriptor appending to the plain file at path, this folder's alone: the file opened
    is checked to be the one named path with one link, as another process may break the same
    hard link meanwhile (a line appended to a copy renamed away would be lost)."""
    for _ in range(attempts):
        check_appendable(path)
        own_copy(path)
        try:
            fd = os.open(path, _APPEND, 0o644)
        except OSError as e:
            if e.errno != errno.ELOOP:
                raise
            raise UnwritableFileError('%s is a symbolic link; nothing is written through it. '
                                      'Remove it, or put the file itself there.' % path)
        held, named = os.fstat(fd), os.lstat(path)
        if not stat.S_ISREG(held.st_mode):
            os.close(fd)
            _refuse_special(path)
        if held.st_nlink == 1 and (held.st_dev, held.st_ino) == (named.st_dev, named.st_ino):
            return fd
        os.close(fd)
    raise UnwritableFileError('%s kept being replaced while this run appended to it; nothing '
                              'was written. Try again.' % path)


def check_appendable(path):
    """Refuses, before anything is written, a path an append would refuse (a FIFO, a device,
    a folder or a symbolic link in its place)."""
    if os.path.islink(path):
        raise UnwritableFileError('%s is a symbolic link; nothing is written through it. Remove '
                                  'it, or put the file itself there.' % path)
    if os.path.lexists(path) and not os.path.isfile(path):
        _refuse_special(path)


def _refuse_special(path):
    raise UnwritableFileError('%s is not a plain file (a FIFO, a device or a folder); nothing is '
                              'written into it. Remove it.' % path)


def own_copy(path):
    """Makes the plain file at path this folder's alone; True when it broke a hard link.

    A file that shares its inode with a name elsewhere is copied, and the copy renamed over
    path: the other name keeps the contents it had, and a write here reaches only the copy.
    """
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return False
    if not stat.S_ISREG(info.st_mode) or info.st_nlink <= 1:
        return False
    folder = os.path.dirname(os.path.abspath(path))
    copy = temporaries.make_temp_file(folder, os.path.basename(path))
    try:
        shutil.copyfile(path, copy)
        os.chmod(copy, stat.S_IMODE(info.st_mode))
        fsync_file(copy)
        os.replace(copy, path)
    except BaseException:
        temporaries.remove_path(copy)
        raise
    fsync_dir(folder)
    logging.warning('%s was a hard link shared with %d other names (a backup made with cp -al '
                    'or rsync --link-dest?); it is now a copy of its own, so writes here leave '
                    'the other copies as they were.', path, info.st_nlink - 1)
    return True


def unused_name(path):
    """path, else path.1, path.2, ...: the first name nothing is under."""
    candidate, number = path, 0
    while os.path.lexists(candidate):
        number += 1
        candidate = '%s.%d' % (path, number)
    return candidate

