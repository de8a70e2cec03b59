"""One training process per model_dir: an advisory lock the kernel drops when the holder dies."""

import contextlib
import errno
import fcntl
import os
import stat

from squeezenet_v1.errors import UserError

LOCK_FILE = '.lock'


class ModelDirLockedError(UserError):
    """Another process is training into the same model_dir."""


@contextlib.contextmanager
def model_dir_lock(model_dir):
    """Holds model_dir/.lock (flock) for the duration; refuses at once if another holds it."""
    path = os.path.join(model_dir, LOCK_FILE)
    try:
        # Never through a symlink, never blocking on a FIFO: the PID is written into this file.
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK, 0o644)
    except OSError as e:
        raise ModelDirLockedError('%s cannot be used as the lock file (%s). It should be a plain '
                                  'file this package made: remove it and start again.'
                                  % (path, e.strerror or e))
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise ModelDirLockedError('%s is not a plain file (a FIFO or device?). Remove it and '
                                  'start again.' % path)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            if e.errno not in (errno.EWOULDBLOCK, errno.EACCES):
                raise
            holder = os.pread(fd, 32, 0).decode('ascii', 'replace').strip() or 'unknown'
            raise ModelDirLockedError(
                '--model_dir %s is in use: process %s is training into it (lock file %s). Wait '
                'for it to finish, stop it, or choose another --model_dir.'
                % (model_dir, holder, path))
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode('ascii'), 0)
        yield path
    finally:
        os.close(fd)  # closing drops the flock; a killed process's lock drops with it
