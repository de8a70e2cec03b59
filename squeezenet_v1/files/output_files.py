"""The rules for a path a command writes its output to (--json, --predictions_json, a report).

An output path is never one of the command's own inputs, and replaces only a file this project
wrote there before.
"""

import os

from squeezenet_v1.errors import UserError
from squeezenet_v1.files import reading


def check_output_file(path, flag, is_ours, inputs=()):
    """Refuses (UserError) an output file path before any work, in one line naming the fix.

    Refused: a folder; a file in a missing or read-only folder; one of the command's `inputs`
    (or a file inside an input folder); an existing file that `is_ours(path)` does not recognize
    as this command's earlier output. Only that earlier output is ever replaced.
    """
    folder = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        raise UserError('%s %s is a folder. Name a file in it, e.g. %s.'
                        % (flag, path, os.path.join(path, 'report.json')))
    target = os.path.realpath(path)
    for given in inputs:
        given = os.path.realpath(given)
        if target == given or target.startswith(given.rstrip(os.sep) + os.sep):
            raise UserError('%s %s is one of this command\'s inputs (%s); it is not written '
                            'over. Name a new file.' % (flag, path, given))
    if not os.path.isdir(folder):
        raise UserError('%s %s: the folder %s does not exist. Create it or name a file in an '
                        'existing folder.' % (flag, path, folder))
    if not os.access(folder, os.W_OK | os.X_OK):
        raise UserError('%s %s: the folder %s is not writable. Name a file in a folder you can '
                        'write to.' % (flag, path, folder))
    if os.path.lexists(path) and not is_ours(path):
        raise UserError('%s %s exists and is not an earlier output of this command; it is not '
                        'overwritten. Name a new file.' % (flag, path))


def is_json_of_format(path, fmt):
    """Whether path is a plain JSON file whose "format" is `fmt` (a report this project wrote)."""
    content = reading.read_plain_json(path)
    return isinstance(content, dict) and content.get('format') == fmt
