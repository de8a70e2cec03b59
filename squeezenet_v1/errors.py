"""The one base of every error a user can fix, and how an error is told in one line."""

import re

# Lines of a TensorFlow error message that say where, not what.
_ERROR_BOILERPLATE = re.compile(r'^(Graph execution error:|From /job:\S+:|=+|Detected at node.*|'
                                r'Additional GRPC error information.*|Recent warning and error.*)$')


class UserError(Exception):
    """Bad input or a state of the disk the user can fix; the message names the thing and the fix."""


def first_line(error):
    """The line of an error (TensorFlow's too) that says what happened, not where."""
    message = str(getattr(error, 'message', None) or error)
    for line in message.splitlines():
        line = re.sub(r'^[A-Z_]+: ', '', line.strip())  # a status code: the error's type says it
        if line and not _ERROR_BOILERPLATE.match(line):
            return line
    return type(error).__name__
