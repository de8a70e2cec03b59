"""SIGINT and SIGTERM outside the training loop: end the run cleanly with 128 + the signal.

The training loop has its own handling (loop.stop_requests: save, then stop). Elsewhere a
signal raises Interrupted where the program is, so `finally` blocks remove what was half
written, and run_train.py reports one line instead of a traceback.

Python runs a signal handler wherever the main thread is, a destructor included, and an
exception raised inside a destructor (or a weakref callback, or under a library's bare
`except`) is printed ("Exception ignored in ...") and dropped: the run would go on as if nothing
had been asked. Graph building collects garbage all the time; a SIGTERM 3 s into a cold start
that once went unanswered in CI is suspected to have been lost this way. So `as_exceptions()`
remembers the signal, and answers a dropped one: when the next handler is installed (the
training loop's, a cluster task's), in the long waits (`sleep()`: continuous evaluation, a
cluster's start and a ps; `answer_dropped()`: a download's loop), and at the end of its block.

Start-up is the same story at its worst: TensorFlow's import swallows a KeyboardInterrupt, so
Ctrl-C there went unheard and the run went on to the end. `hold_from_start()`, the first thing
run_train.py does, records a signal instead of raising it, and the first safe point (after the
imports, or any handler installed later) answers it.
"""

import contextlib
import os
import signal
import sys
import threading
import time

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interrupted(BaseException):
    """A SIGINT or SIGTERM ended the run; a BaseException, like KeyboardInterrupt."""

    def __init__(self, signum):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


# Signals as_exceptions() turned into Interrupted, cleared when it starts and ends. While one
# is here and no Interrupted is being handled, it was dropped.
_raised = []
# Signals that arrived while hold_from_start's handler was the one installed, not yet answered.
_held = []


def hold_from_start():
    """From here on SIGINT and SIGTERM are recorded, not raised, until a handler replaces this.

    For a program's start-up, whose imports would swallow the exception: answer_dropped(), and
    so every handler installed later, answers a recorded signal. A second signal while one is
    held ends the process at once (an import that hangs): nothing has been written yet.
    """
    def hold(signum, frame):
        if _held:
            sys.stderr.write('Stopped by a second %s during start-up.\n'
                             % signal.Signals(signum).name)
            os._exit(128 + signum)
        _held.append(signum)

    for signum in SIGNALS:
        signal.signal(signum, hold)


def answer_dropped():
    """Raises Interrupted for a signal held since start-up or whose Interrupted was dropped.

    Nothing while an Interrupted is propagating (cleanup code in `finally` may install
    handlers), and off the main thread, which signals never reach.
    """
    if (threading.current_thread() is not threading.main_thread()
            or isinstance(sys.exc_info()[1], Interrupted)):
        return
    if _held:
        signum = _held[0]
        del _held[:]
        raise Interrupted(signum)
    if _raised:
        raise Interrupted(_raised[0])


def sleep(seconds):
    """time.sleep for a polling wait: a dropped signal is answered first, not after the wait."""
    answer_dropped()
    time.sleep(seconds)


@contextlib.contextmanager
def handled_by(handler):
    """Within the block, `handler` receives SIGINT and SIGTERM; the previous ones come back.

    A signal as_exceptions() turned into an Interrupted that was dropped is raised first: the new
    handler would otherwise never hear of it.
    """
    answer_dropped()
    previous = {}
    for signum in SIGNALS:
        try:
            previous[signum] = signal.signal(signum, handler)
        except ValueError:  # not the main thread: leave signals to the caller
            pass
    try:
        yield
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)


@contextlib.contextmanager
def as_exceptions():
    """Within the block, SIGINT and SIGTERM raise Interrupted."""
    def handler(signum, frame):
        _raised.append(signum)
        raise Interrupted(signum)

    del _raised[:]
    try:
        with handled_by(handler):
            yield
            answer_dropped()  # the block finished: a dropped signal still ends the run
    finally:
        del _raised[:]


@contextlib.contextmanager
def deferred():
    """Within the block a signal is held, and raised as Interrupted when the block ends.

    For code that runs Python destructors (TensorFlow's converters): an exception raised
    inside one is printed and lost, so the run would go on as if nothing had been asked.
    """
    received = []

    def handler(signum, frame):
        received.append(signum)

    with handled_by(handler):
        yield
    if received:
        raise Interrupted(received[0])
