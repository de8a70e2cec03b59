"""Small file helpers: every file the project writes appears whole or not at all."""

import json
import os
import tempfile


def write_json_atomic(path, obj):
    """Writes obj as indented JSON to a temporary file beside path, then renames it."""
    return write_text_atomic(path, json.dumps(obj, indent=2) + '\n')


def write_text_atomic(path, text):
    """Writes text to a temporary file beside path, then renames it over path."""
    return write_bytes_atomic(path, text.encode('utf-8'))


def write_bytes_atomic(path, data):
    """Writes bytes to a temporary file beside path, then renames it over path."""
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix='.' + os.path.basename(path) + '.', dir=folder)
    try:
        os.chmod(tmp, 0o644)  # mkstemp's 0600 would hide results from other readers
        with os.fdopen(fd, 'wb') as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    return path
