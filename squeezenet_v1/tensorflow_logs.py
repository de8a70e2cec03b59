"""TensorFlow's own notes, kept out of the commands' output unless asked for.

    load_tensorflow()   # each command's first import of TensorFlow goes through it

A command prints its own lines. TensorFlow adds three kinds a user would have to learn to ignore:
- C++ lines written before its logging starts, which TF_CPP_MIN_LOG_LEVEL cannot hide
  ("WARNING: All log messages before absl::InitializeLog() is called ...", "oneDNN custom
  operations are on ...", "Could not find cuda drivers ..."): the import's writes to stderr go
  through a filter, line by line as they come, that drops its INFO-level lines (what
  TF_CPP_MIN_LOG_LEVEL=1 does once logging runs);
- the notes of its Python loggers on what it did: deprecation notices for the TF1 API this
  project calls on purpose, "Restoring parameters from ...", the SavedModel builder's and
  loader's ("SavedModel written to <a temporary>", "Fingerprint not found ...");
- TFLite's "INFO: Created TensorFlow Lite XNNPACK delegate for CPU."
Anything else still shows: an error, a warning not listed here, a line that is no log line.
SQUEEZENET_V1_TF_LOGS=1 (or run_train.py's --verbosity=1 and above) lets every line through,
unfiltered, with C++ lines of every level (unless TF_CPP_MIN_LOG_LEVEL is the user's own), for a
bug report.
"""

import contextlib
import logging
import os
import re
import sys
import threading

import squeezenet_v1

ENV = 'SQUEEZENET_V1_TF_LOGS'

# A C++ log line: severity letter, date or 0000, time, thread, file.cc:line] (absl's Python
# lines have the same shape with a .py file: those are this project's, always kept).
_CPP_LINE = re.compile(r'^([IWEF])\d{4} [\d:.]+\s+\d+ \S+\.(?:cc|cpp|c|h):\d+\] ')
# The one INFO line TensorFlow continues on a line of its own (cpu_feature_guard.cc).
_CONTINUATION = 'To enable the following instructions:'
_START_UP_LINES = (
    'WARNING: All log messages before absl::InitializeLog() is called are written to STDERR',
    'INFO: Created TensorFlow Lite XNNPACK delegate for CPU.',
)
_PYTHON_NOTES = re.compile('|'.join([
    r'^Restoring parameters from ',
    r'^No assets to (save|write)\.',
    r'^(SavedModel|Assets) written to: ',
    r'^Writing fingerprint to ',
    r'^Fingerprint not found\. ',
    r'^path_and_singleprint metric could not be logged\. ',
]))


def verbose():
    """Whether the user asked for TensorFlow's lines (SQUEEZENET_V1_TF_LOGS set, not 0)."""
    return os.environ.get(ENV, '') not in ('', '0')


def load_tensorflow(show_all=False):
    """Imports TensorFlow, its start-up lines held and filtered, and filters its loggers' notes;
    with `show_all` (or SQUEEZENET_V1_TF_LOGS), lets everything through. Returns the module."""
    if show_all or verbose():
        os.environ[ENV] = '1'  # for the processes it starts (a cluster's tasks, probes)
        if squeezenet_v1.TF_LOG_LEVEL_IS_OURS:  # unfiltered: C++ lines of every level
            os.environ['TF_CPP_MIN_LOG_LEVEL'] = '0'
        import tensorflow as tf
        return tf
    with held_stderr():
        import tensorflow as tf
    # TensorFlow logs through its own logger, and in places (the SavedModel loader) through
    # absl's, which carries this project's lines too: there only TensorFlow's files are looked at.
    for name in ('tensorflow', 'absl'):
        logger = logging.getLogger(name)
        if not any(isinstance(f, _NotesFilter) for f in logger.filters):
            logger.addFilter(_NotesFilter(os.path.dirname(tf.__file__)))
    return tf


@contextlib.contextmanager
def held_stderr():
    """Passes what is written to file descriptor 2 meanwhile (C++ included) through
    `_StartUpLines`, line by line as it comes, so a crash still shows what it printed; when the
    block raises, the lines held back follow."""
    saved = _duplicate_stderr()
    if saved is None:
        yield
        return
    read_end, write_end = os.pipe()
    os.dup2(write_end, 2)
    os.close(write_end)
    held_back = []
    reader = threading.Thread(target=_forward, args=(read_end, saved, held_back), daemon=True)
    reader.start()
    failed = True
    try:
        yield
        failed = False
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)  # the pipe's last write end closes: the reader sees its end
        reader.join(timeout=60)
        if failed and held_back:
            os.write(2, b''.join(held_back))
        if not reader.is_alive():
            os.close(saved)


def _duplicate_stderr():
    """A duplicate of file descriptor 2, or None when there is none to hold (or all is shown)."""
    if verbose() or sys.stderr is None:
        return None
    try:
        sys.stderr.flush()
        return os.dup(2)
    except (OSError, ValueError):  # fd 2 closed (`2>&-`)
        return None


def _forward(read_end, destination, held_back):
    lines, partial = _StartUpLines(), b''
    with os.fdopen(read_end, 'rb', buffering=0) as pipe:
        while True:
            chunk = pipe.read(65536)
            if not chunk:
                break
            *whole, partial = (partial + chunk).split(b'\n')
            for line in whole:
                _pass_on(lines, line + b'\n', destination, held_back)
    if partial:
        _pass_on(lines, partial, destination, held_back)


def _pass_on(lines, line, destination, held_back):
    if not lines.keep(line.decode('utf-8', 'replace')):
        held_back.append(line)
        return
    try:
        os.write(destination, line)
    except OSError:  # stderr's reader has gone (`2>&1 | head -1`): the pipe is still drained
        pass


class _StartUpLines(object):
    """Tells TensorFlow's start-up lines from the rest, one line at a time: C++ INFO lines and
    the line that continues cpu_feature_guard's, and the two written before logging starts."""

    def __init__(self):
        self._after_info = False

    def keep(self, line):
        text = line.rstrip('\n')
        cpp = _CPP_LINE.match(text)
        continues = self._after_info and text.startswith(_CONTINUATION)
        self._after_info = bool(cpp and cpp.group(1) == 'I')
        if cpp:
            return cpp.group(1) != 'I'
        return not (continues or text in _START_UP_LINES)


def kept_lines(text):
    """What held_stderr lets through of `text`."""
    lines = _StartUpLines()
    return ''.join(line for line in text.splitlines(True) if lines.keep(line))


class _NotesFilter(logging.Filter):
    """Drops the tensorflow logger's notes of what it did; errors and other lines pass."""

    def __init__(self, tensorflow_dir):
        super(_NotesFilter, self).__init__()
        self.tensorflow_dir = os.path.join(tensorflow_dir, '')

    def filter(self, record):
        if record.levelno >= logging.ERROR or not record.pathname.startswith(self.tensorflow_dir):
            return True
        if os.path.basename(record.pathname) == 'deprecation.py':
            return False  # "X is deprecated": the TF1 API is this project's on purpose
        return not _PYTHON_NOTES.search(record.getMessage())
