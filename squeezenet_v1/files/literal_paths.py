"""A user's path means what it says: a local path, passed to TensorFlow as a literal name.

A path with a URL scheme (gs://, s3://, file://, ram://) is refused where the flags are parsed:
Python's os calls would take it for a folder named `gs:` under the current one while
TensorFlow's file system layer wrote to the bucket, so the files of one run would be split
between the two and none of the lock, fsync and rename guarantees would hold.
"""

import contextlib
import os
import re

GLOB_CHARACTERS = frozenset('*?[]\\')
_URL_SCHEME = re.compile(r'^[A-Za-z][A-Za-z0-9+.-]*://')
NOT_LOCAL = ('names a URL, and this tool reads and writes local paths only: its lock, fsync and '
             'rename guarantees need a local file system. Give a mounted path (gcsfuse, s3fs, '
             'a network drive), or work locally and copy the folder there after')


def is_url(path):
    """Whether a path has a URL scheme (gs://bucket/x, file:///tmp/x), which is refused."""
    return isinstance(path, str) and bool(_URL_SCHEME.match(path))


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
