"""known_differences.json: structural differences known to be harmless on a range of TensorFlow.

Written by hand beside a record:

    {"format": "squeezenet_v1-golden-known/1",
     "known": [{"tensorflow": ">=2.16, <2.19", "why": "...",
                "differences": ["op train/...: output 0 int32[2] -> int64[2]", ...]}]}

Each line is a structure line exactly as `check` prints it (numbers must always hold). An entry
applies when the running TensorFlow is in its range and every one of its lines occurs: part of a
known change, or any other difference beside it, still fails. `check` prints each known line,
marked "known, harmless".
"""

import os
import re

from squeezenet_v1.files import reading

KNOWN_FORMAT = 'squeezenet_v1-golden-known/1'
KNOWN_FILE = 'known_differences.json'  # optional, written by hand; `record` keeps it
# The sections of a difference line that describe structure, not numbers.
STRUCTURE_SECTIONS = frozenset(['op', 'fn', 'graph', 'variable', 'checkpoint', 'signature',
                                'saver'])


class Damaged(Exception):
    """known_differences.json cannot be used; the message names the file and what is wrong."""


_VERSION_CLAUSE = re.compile(r'^(>=|<=|==|<|>)\s*(\d+(?:\.\d+)*)$')


_COMPARE = {'>=': lambda a, b: a >= b, '<=': lambda a, b: a <= b, '==': lambda a, b: a == b,
            '<': lambda a, b: a < b, '>': lambda a, b: a > b}


def _version_tuple(text):
    match = re.match(r'\d+(?:\.\d+)*', text or '')
    return tuple(int(part) for part in match.group(0).split('.')) if match else None


def tensorflow_in_range(version, spec):
    """Whether TensorFlow `version` ('2.16.2') is in `spec` ('>=2.16, <2.19').

    Each bound is compared at its own precision: '<=2.18' admits 2.18.1, '<2.19' does not
    admit 2.19.0, '==2.16' admits every 2.16 release.
    """
    have = _version_tuple(version)
    if have is None:
        return False
    for clause in spec.split(','):
        op, bound = _VERSION_CLAUSE.match(clause.strip()).groups()
        bound = _version_tuple(bound)
        if not _COMPARE[op](have[:len(bound)] + (0,) * (len(bound) - len(have)), bound):
            return False
    return True


def load(golden_dir):
    """The entries of golden_dir's known_differences.json ([] without one).

    The file, written by hand, is {"format": KNOWN_FORMAT, "known": [entry, ...]}; an entry is
    {"tensorflow": ">=2.16, <2.19", "why": "...", "differences": ["op train/...: ...", ...]}.
    Its lines are exact difference lines of the structure sections, as `check` prints them.
    """
    path = os.path.join(golden_dir, KNOWN_FILE)
    if not os.path.lexists(path):
        return []

    def damaged(why):
        return Damaged('%s is damaged (%s): restore it from version control or fix it by hand'
                       % (path, why))

    try:
        content = reading.read_json(path)
    except reading.UnreadableFileError as e:
        raise damaged(e.detail)
    except OSError as e:
        raise damaged(e.strerror or e)
    if not isinstance(content, dict) or content.get('format') != KNOWN_FORMAT:
        raise damaged('format is not %r' % KNOWN_FORMAT)
    entries = content.get('known')
    if not isinstance(entries, list):
        raise damaged('known is missing or not a list')
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict) or not all(
                isinstance(entry.get(key), str) for key in ('tensorflow', 'why')):
            raise damaged('known[%d] needs "tensorflow" and "why" strings' % i)
        if not all(_VERSION_CLAUSE.match(c.strip()) for c in entry['tensorflow'].split(',')):
            raise damaged('known[%d].tensorflow %r is not like ">=2.16, <2.19"'
                          % (i, entry['tensorflow']))
        lines = entry.get('differences')
        if not isinstance(lines, list) or not lines or not all(isinstance(l, str) for l in lines):
            raise damaged('known[%d].differences is missing or not a list of lines' % i)
        numeric = [l for l in lines if l.split(' ', 1)[0] not in STRUCTURE_SECTIONS]
        if numeric:
            raise damaged('known[%d] lists %r: only structure differences can be known; numbers '
                          'must hold' % (i, numeric[0]))
    return entries


def known_lines(entries, tensorflow_version, lines):
    """{line: entry} for the lines that an entry excuses on this TensorFlow.

    An entry applies only when the version is in its range and every one of its lines is
    among `lines`: a part of a known change is not that change.
    """
    present = set(lines)
    excused = {}
    for entry in entries:
        if (tensorflow_in_range(tensorflow_version, entry['tensorflow'])
                and present.issuperset(entry['differences'])):
            for line in entry['differences']:
                excused.setdefault(line, entry)
    return excused
