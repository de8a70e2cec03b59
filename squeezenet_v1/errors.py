"""The one base of every error a user can fix; run_train.py reports it as a one-line message."""


class UserError(Exception):
    """Bad input or a state of the disk the user can fix; the message names the thing and the fix."""
