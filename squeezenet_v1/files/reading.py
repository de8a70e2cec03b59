"""Every file the tools read, read as data: opened so it cannot block, checked, bounded.

`open_regular` is the one way the tools open a file to read (a model_dir's, an export's, a data
set's): O_NONBLOCK, so a FIFO planted under a known name cannot hang the process in open();
O_NOFOLLOW unless the caller reads a user's own data; then a regular-file check, and a size
bound that the file's format sets (a CIFAR-10 batch is 10,000 records, a state file a few KB),
checked before a byte is read, so a sparse or planted giant is refused by its size, not by the
OOM killer. `loads` is the one JSON parser: a document nested too deeply is invalid JSON, not a
RecursionError. Each raises UnreadableFileError, a UserError naming the file; callers add the fix.
"""

import errno
import hashlib
import json
import os
import stat

from squeezenet_v1.errors import UserError

KB, MB, GB = 1 << 10, 1 << 20, 1 << 30
# The largest JSON document the project writes is a golden record or a size report (a few KB).
JSON_MAX_BYTES = 64 * MB
# A history (runs.jsonl, eval_history.jsonl) grows a line a run or an evaluation.
JSON_LINES_MAX_BYTES = 1 * GB
_LINE_MAX_BYTES = 1 * MB


class UnreadableFileError(UserError):
    """A file is not a regular file, is larger than its format can be, or is not valid.

    `reason` says why without the path (for messages that name the file already); `kind` is
    link, special (a FIFO, device or folder), size, text or json.
    """

    def __init__(self, path, reason, kind, detail=None):
        super().__init__('%s %s.' % (path, reason))
        self.path, self.reason, self.kind = path, reason, kind
        self.detail = detail or reason  # the parser's own words, where there are some


def open_regular(path, max_bytes, follow_links=False):
    """A binary file object of the regular file at path, at most max_bytes long.

    Raises UnreadableFileError for a link (unless follow_links), a FIFO, a device or a folder,
    or a file larger than max_bytes; OSError (FileNotFoundError, PermissionError) as open does.
    """
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | (0 if follow_links else os.O_NOFOLLOW)
    try:
        fd = os.open(path, flags)
    except OSError as e:
        if e.errno == errno.ELOOP and not follow_links:
            raise UnreadableFileError(path, 'is a symbolic link, which is not followed here; put '
                                            'the file itself there', 'link')
        raise
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise UnreadableFileError(path, 'is not a plain file (a folder, FIFO or device), so '
                                            'it is not read', 'special')
        if info.st_size > max_bytes:
            raise UnreadableFileError(path, 'is %d bytes, larger than such a file can be (%d), '
                                            'so it is not read' % (info.st_size, max_bytes),
                                      'size')
        os.set_blocking(fd, True)
        return os.fdopen(fd, 'rb')
    except BaseException:
        os.close(fd)
        raise


def read_bytes(path, max_bytes, follow_links=False):
    """The bytes of a regular file of at most max_bytes (see open_regular)."""
    with open_regular(path, max_bytes, follow_links) as f:
        data = f.read(os.fstat(f.fileno()).st_size + 1)
    if len(data) > max_bytes:  # it grew after the size check
        raise UnreadableFileError(path, 'is larger than such a file can be (%d bytes), so it '
                                        'is not read' % max_bytes, 'size')
    return data


def read_text(path, max_bytes, follow_links=False):
    """The UTF-8 text of a regular file of at most max_bytes; UnreadableFileError if not UTF-8."""
    try:
        return read_bytes(path, max_bytes, follow_links).decode('utf-8')
    except UnicodeDecodeError as e:
        raise UnreadableFileError(path, 'is not UTF-8 text (%s)' % e.reason, 'text',
                                  str(e))


def loads(text):
    """json.loads; ValueError for anything that is not valid JSON, too deep a nesting too."""
    try:
        return json.loads(text)
    except RecursionError:
        raise ValueError('JSON nested too deeply')


def read_json(path, max_bytes=JSON_MAX_BYTES):
    """The JSON document in a regular file (no link) of at most max_bytes."""
    text = read_text(path, max_bytes)
    try:
        return loads(text)
    except ValueError as e:
        raise UnreadableFileError(path, 'is not valid JSON (%s)' % e, 'json', str(e))


def read_plain_json(path):
    """read_json's document, or None when the file is absent, unreadable or not valid JSON."""
    try:
        return read_json(path)
    except (OSError, UserError):
        return None


def read_json_lines(path, max_bytes=JSON_LINES_MAX_BYTES):
    """[(line number, the line's JSON value, or None when the line is not valid JSON)].

    Blank lines are skipped; a line over 1 MB is not parsed (None). Raises as open_regular.
    """
    lines, number = [], 0
    with open_regular(path, max_bytes) as f:
        while True:
            raw = f.readline(_LINE_MAX_BYTES + 1)
            if not raw:
                return lines
            number += 1
            if len(raw) > _LINE_MAX_BYTES:  # skipped whole, never held in memory at once
                while raw and not raw.endswith(b'\n'):
                    raw = f.readline(_LINE_MAX_BYTES)
                lines.append((number, None))
                continue
            if raw.strip():
                lines.append((number, _value_or_none(raw)))


def _value_or_none(raw):
    try:
        return loads(raw.decode('utf-8'))
    except (ValueError, UnicodeDecodeError):
        return None


def file_digest(path, algorithm='sha256', follow_links=True):
    """The hex digest of a regular file's bytes, read a MB at a time (files of any size)."""
    digest = hashlib.new(algorithm)
    with open_regular(path, float('inf'), follow_links) as f:
        for block in iter(lambda: f.read(MB), b''):
            digest.update(block)
    return digest.hexdigest()
