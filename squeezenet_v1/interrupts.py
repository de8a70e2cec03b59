"""SIGINT and SIGTERM outside the training loop: end the run cleanly with 128 + the signal.

The training loop has its own handling (train.stop_requests: save, then stop). Elsewhere a
signal raises Interrupted where the program is, so `finally` blocks remove what was half
written, and run_train.py reports one line instead of a traceback.
"""

import contextlib
import signal

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interrupted(BaseException):
    """A SIGINT or SIGTERM ended the run; a BaseException, like KeyboardInterrupt."""

    def __init__(self, signum):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


@contextlib.contextmanager
def handled_by(handler):
    """Within the block, `handler` receives SIGINT and SIGTERM; the previous ones come back."""
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
def raised():
    """Within the block, SIGINT and SIGTERM raise Interrupted."""
    def handler(signum, frame):
        raise Interrupted(signum)

    with handled_by(handler):
        yield


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
