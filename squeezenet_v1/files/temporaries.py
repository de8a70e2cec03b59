"""The project's temporaries: `.<what>.<pid>-<random>.tmp` beside their final place.

The pid in the name is what lets a later run remove the temporaries of a killed one (its
process is gone) without touching those of a run still working beside it, and the exact
pattern is what keeps that cleanup away from any file a user made.
"""

import os
import re
import shutil
import tempfile

from squeezenet_v1.files.literal_paths import GLOB_CHARACTERS

TEMP_SUFFIX = '.tmp'
_TEMP_NAME = re.compile(r'^\.(?P<what>.+)\.(?P<pid>\d+)-[a-z0-9_]+%s$' % re.escape(TEMP_SUFFIX))


def temp_prefix(what):
    # Glob characters are left out of the name, so TensorFlow's readers can open what is inside.
    return '.%s.%d-' % (''.join('_' if c in GLOB_CHARACTERS else c for c in what), os.getpid())


def make_temp_dir(parent, what):
    """A new folder `.<what>.<pid>-<random>.tmp` in parent, readable by others (0755)."""
    path = tempfile.mkdtemp(prefix=temp_prefix(what), suffix=TEMP_SUFFIX, dir=parent)
    os.chmod(path, 0o755)  # mkdtemp's 0700 would hide a published folder from other users
    return path


def make_temp_file(parent, what):
    """A new empty file `.<what>.<pid>-<random>.tmp` in parent; returns its path."""
    fd, path = tempfile.mkstemp(prefix=temp_prefix(what), suffix=TEMP_SUFFIX, dir=parent)
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
