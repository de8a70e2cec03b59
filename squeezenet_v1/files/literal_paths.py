"""Paths from a user's flags passed to TensorFlow as literal names, never as glob patterns."""

import contextlib
import os

GLOB_CHARACTERS = frozenset('*?[]\\')


@contextlib.contextmanager
def literal_path(path):
    """A name for path that TensorFlow cannot read as a glob pattern.

    TensorFlow looks checkpoint prefixes and SavedModel variables up with GetMatchingPaths, so
    `[1]` in `run[1]/model.ckpt-5` would match a sibling `run1`. Such a path is given through
    an open descriptor of its folder instead: /proc/self/fd/<fd>/model.ckpt-5.
    """
    folder = os.path.dirname(os.path.abspath(path))
    if not GLOB_CHARACTERS & set(folder) or not os.path.isdir('/proc/self/fd'):
        yield path
        return
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        yield '/proc/self/fd/%d/%s' % (fd, os.path.basename(path))
    finally:
        os.close(fd)
