"""Writing files a user trusts us with: whole or not at all, and durable.

Publish by write-temp, fsync, rename, fsync the folder: a reader sees the old file or the new
one, never half of one, also after a power loss.
"""

import json
import os
import tempfile

from squeezenet_v1.files import temporaries


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
