"""The one error of every data set: a file missing, malformed, or not the official one."""

from squeezenet_v1.errors import UserError


class DataError(UserError):
    """A data set file is missing, malformed or does not match its checksum."""
