"""TensorFlow's own notes, kept out of the commands' output unless asked for.

    load_tensorflow()   # each command's first import of TensorFlow goes through it

A command prints its own lines. TensorFlow adds three kinds a user would have to learn to ignore:
- C++ lines written before its logging starts, which TF_CPP_MIN_LOG_LEVEL cannot hide
  ("WARNING: All log messages before absl::InitializeLog() is called ...", "oneDNN custom
  operations are on ...", "Could not find cuda drivers ..."): the import's writes to stderr are
  held, and its INFO-level lines dropped (what TF_CPP_MIN_LOG_LEVEL=1 does once logging runs);
- the notes of its Python loggers on what it did: deprecation notices for the TF1 API this
  project calls on purpose, "Restoring parameters from ...", the SavedModel builder's and
  loader's ("SavedModel written to <a temporary>", "Fingerprint not found ...");
- TFLite's "INFO: Created TensorFlow Lite XNNPACK delegate for CPU."
Anything else still shows: an error, a warning not listed here, a line that is no log line.
SQUEEZENET_V1_TF_LOGS=1 (or run_train.py's --verbosity=1 and above) lets every line through,
unfiltered, for a bug report.
"""

import contextlib
import logging
import os
import re
import sys
import tempfile

ENV = 'SQUEEZENET_V1_TF_LOGS'

# A C++ log line: severity letter, date or 0000, time, thread, file:line].
_CPP_LINE = re.compile(r'^([IWEF])\d{4} [\d:.]+\s+\d+ \S+:\d+\] ')
_START_UP_LINES = (
    'WARNING: All log messages before absl::InitializeLog() is called are written to STDERR',
    'INFO: Created TensorFlow Lite XNNPACK delegate for CPU.',
)
_PYTHON_WARNING = re.compile(r'^\S.*:\d+: \w*Warning: ')
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
    """Holds what is written to file descriptor 2 meanwhile (C++ included), then writes what
    `kept_lines` keeps of it; everything, when the block raises."""
    if verbose():
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        failed = True
        try:
            yield
            failed = False
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            held.seek(0)
            text = held.read().decode('utf-8', 'replace')
            kept = text if failed else kept_lines(text)
            if kept:
                sys.stderr.write(kept)
                sys.stderr.flush()


def kept_lines(text):
    """`text` without TensorFlow's start-up lines: C++ INFO lines (and the lines that continue
    them) and the two lines written before its logging starts."""
    kept, dropping = [], False
    for line in text.splitlines(True):
        cpp = _CPP_LINE.match(line)
        if cpp:
            dropping = cpp.group(1) == 'I'
        elif line.rstrip('\n') in _START_UP_LINES:
            dropping = True
            continue
        elif not dropping or not line.strip() or _PYTHON_WARNING.match(line):
            dropping = False  # a continuation line is dropped with the line it continues
        if not dropping:
            kept.append(line)
    return ''.join(kept)


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
