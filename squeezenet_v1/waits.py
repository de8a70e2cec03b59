"""Waits a user would otherwise sit through in silence, announced once they pass two seconds.

    with waits.announced('writing model.ckpt-1000 to disk'):
        ...   # after 2 s: "Still writing model.ckpt-1000 to disk (over 2 s) ..."

A process that says nothing at 0% CPU looks hung, and a user who presses Ctrl-C again during a
save discards it. The line comes from a timer thread, so the wait itself is not touched; a block
that ends first says nothing.
"""

import contextlib
import threading

from absl import logging

ANNOUNCE_AFTER_SECS = 2.0


@contextlib.contextmanager
def announced(what, after_secs=ANNOUNCE_AFTER_SECS):
    """Logs 'Still <what> (over N s) ...' once if the block lasts longer than `after_secs`."""
    timer = threading.Timer(after_secs, logging.info,
                            ('Still %s (over %g s) ...', what, after_secs))
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        timer.cancel()
