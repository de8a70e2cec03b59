"""Reading a file the project wrote earlier: its JSON, or a digest of its bytes."""

import hashlib
import json
import os


def read_plain_json(path):
    """The JSON in path when it is a plain file (no link) of at most 1 GB, else None."""
    if os.path.islink(path) or not os.path.isfile(path) or os.path.getsize(path) > 1 << 30:
        return None
    try:
        with open(path, encoding='utf-8') as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def file_digest(path, algorithm='sha256'):
    """The hex digest of a file's bytes, read a MB at a time (files of any size)."""
    digest = hashlib.new(algorithm)
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(1 << 20), b''):
            digest.update(block)
    return digest.hexdigest()
