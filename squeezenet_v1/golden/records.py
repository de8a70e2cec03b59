"""Golden records: after a TensorFlow upgrade, are the graphs and the numbers what they were?

    python -m squeezenet_v1.golden record DIR                  # write a record on this TensorFlow
    python -m squeezenet_v1.golden check DIR [--exact] [--json FILE]

`check` rebuilds everything the record holds (see golden_capture) on the running TensorFlow and
prints one line per difference, `<section> <item>: <what moved>`, then a summary line. Exit
status: 0 everything holds, 1 drift, 2 a usage error, a missing or damaged record, or a failure
to run (one line on stderr naming it). The same check, for pytest:

    from squeezenet_v1.golden import records as golden
    result = golden.check('tests/golden')
    assert result.holds, result.text()

A record is a folder: golden.json (versions, CPU, settings, variables, signature, numbers),
graph_train.txt and graph_eval.txt (one op a line), weights.npz (the trained weights, which are
also the fixed checkpoint whose eval logits are compared), and, written by hand and optional,
known_differences.json: structural differences known to be harmless on a range of TensorFlow
versions. `check` still prints each one, marked "known, harmless", but they do not fail it.
"""

import datetime
import io
import os
import shutil
import zipfile

import numpy as np

from squeezenet_v1.files import atomic
from squeezenet_v1.files import reading

from squeezenet_v1.files import temporaries
from squeezenet_v1.golden import capture as golden_capture
from squeezenet_v1.golden import compare as golden_compare
from squeezenet_v1.golden import known_differences
from squeezenet_v1.golden import EXIT_DRIFT, EXIT_HOLDS, REPORT_FORMAT

FORMAT = 'squeezenet_v1-golden/1'
RECORD_FILE = 'golden.json'
WEIGHTS_FILE = 'weights.npz'
LISTING_FILES = {graph: 'graph_%s.txt' % graph for graph in golden_capture.GRAPHS}
RECORD_NAMES = frozenset([RECORD_FILE, WEIGHTS_FILE] + list(LISTING_FILES.values()))
OPTIONAL_NAMES = frozenset([known_differences.KNOWN_FILE])
_SUMMARY_KEYS = ('environment', 'settings', 'fingerprints', 'variables', 'checkpoint_variables',
                 'saver_round_trip', 'signature', 'numbers')
_NUMBER_KEYS = ('loss', 'eval_logits', 'serving_probabilities', 'serving_classes')


class GoldenRecordError(Exception):
    """DIR is not a usable golden record (or target); the message names it and the fix."""


def _record_hint(golden_dir):
    return 'record one with `python -m squeezenet_v1.golden record %s`' % golden_dir


# --- writing ----------------------------------------------------------------------------------

def record(golden_dir):
    """Captures on the running TensorFlow and writes the record into golden_dir, whole.

    golden_dir must be absent, empty or a golden record (which is replaced); it is written as
    a temporary folder beside it and renamed into place when complete. The replaced record's
    known_differences.json, written by hand, is kept. Returns the Capture.
    """
    golden_dir = os.path.abspath(golden_dir)
    _check_record_target(golden_dir)
    current = golden_capture.capture()
    if current.summary['failures']:
        raise golden_capture.CaptureError('not recording: ' + '; '.join(
            current.summary['failures']))
    parent = os.path.dirname(golden_dir)
    os.makedirs(parent, exist_ok=True)
    temporaries.remove_stale_temporaries(parent)
    staging = temporaries.make_temp_dir(parent, os.path.basename(golden_dir))
    try:
        write_record(staging, current)
        known = os.path.join(golden_dir, known_differences.KNOWN_FILE)
        if os.path.isfile(known):
            shutil.copyfile(known, os.path.join(staging, known_differences.KNOWN_FILE))
        atomic.replace_dir(staging, golden_dir)
    except BaseException:
        temporaries.remove_path(staging)
        raise
    return current


def write_record(folder, capture):
    """Writes a Capture's files into an existing folder (record() makes it appear whole)."""
    summary = dict(format=FORMAT,
                   recorded_utc=datetime.datetime.now(datetime.timezone.utc).strftime(
                       '%Y-%m-%d %H:%M'), **capture.summary)
    for graph, name in LISTING_FILES.items():
        atomic.write_text_atomic(os.path.join(folder, name), '\n'.join(capture.listings[graph])
                                + '\n')
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **capture.weights)
    atomic.write_bytes_atomic(os.path.join(folder, WEIGHTS_FILE), buffer.getvalue())
    atomic.write_json_atomic(os.path.join(folder, RECORD_FILE), summary)


def _check_record_target(golden_dir):
    if os.path.islink(golden_dir):
        raise GoldenRecordError('%s is a symlink; a record replaces its folder. Name the folder '
                                'itself.' % golden_dir)
    if not os.path.lexists(golden_dir):
        return
    if not os.path.isdir(golden_dir):
        raise GoldenRecordError('%s is a file, not a folder. Name a new folder for the record.'
                                % golden_dir)
    names = set(os.listdir(golden_dir))
    foreign = sorted(names - RECORD_NAMES - OPTIONAL_NAMES)
    if foreign:
        raise GoldenRecordError('%s holds files a golden record does not (%s); it is not '
                                'replaced. Name a new folder for the record.'
                                % (golden_dir, ', '.join(foreign[:5])))
    if names and RECORD_FILE not in names:
        raise GoldenRecordError('%s is not empty and holds no %s, so it is not a golden record; '
                                'it is not replaced. Name a new folder.'
                                % (golden_dir, RECORD_FILE))


# --- reading ----------------------------------------------------------------------------------

def load_record(golden_dir):
    """The record in golden_dir as a golden_capture.Capture; GoldenRecordError when unusable."""
    if not os.path.isdir(golden_dir):
        raise GoldenRecordError('golden record %s does not exist or is not a folder: %s.'
                                % (golden_dir, _record_hint(golden_dir)))
    path = os.path.join(golden_dir, RECORD_FILE)
    if not os.path.isfile(path):
        raise GoldenRecordError('%s holds no %s, so it is not a golden record: %s.'
                                % (golden_dir, RECORD_FILE, _record_hint(golden_dir)))
    def damaged(file_path, why):
        return GoldenRecordError(
            '%s is damaged (%s): restore it from version control or record again with '
            '`python -m squeezenet_v1.golden record %s`' % (file_path, why, golden_dir))

    try:
        summary = reading.read_json(path)
    except reading.UnreadableFileError as e:
        raise damaged(path, e.detail)
    except OSError as e:
        raise damaged(path, e.strerror or e)
    if not isinstance(summary, dict) or summary.get('format') != FORMAT:
        found = summary.get('format') if isinstance(summary, dict) else None
        raise GoldenRecordError('%s is of format %r; this squeezenet_v1 reads %r: record again '
                                'with `python -m squeezenet_v1.golden record %s`.'
                                % (path, found, FORMAT, golden_dir))
    problem = _summary_problem(summary)
    if problem:
        raise damaged(path, problem)
    listings = {}
    for graph, name in LISTING_FILES.items():
        listing_path = os.path.join(golden_dir, name)
        try:
            lines = reading.read_text(listing_path, reading.JSON_MAX_BYTES).splitlines()
        except reading.UnreadableFileError as e:
            raise damaged(listing_path, e.detail)
        except OSError as e:
            raise damaged(listing_path, e.strerror or e)
        bad = [i + 1 for i, line in enumerate(lines) if len(line.split('\t')) != 5]
        if bad or not lines:
            raise damaged(listing_path, 'line %d is not 5 tab-separated fields' % bad[0]
                          if bad else 'empty')
        listings[graph] = lines
    weights = _load_weights(os.path.join(golden_dir, WEIGHTS_FILE), summary, damaged)
    return golden_capture.Capture(summary, listings, weights)


def _summary_problem(summary):
    """What is missing or malformed in golden.json, or None."""
    for key in _SUMMARY_KEYS:
        if not isinstance(summary.get(key), list if key == 'saver_round_trip' else dict):
            return '%s is missing or not a %s' % (
                key, 'list' if key == 'saver_round_trip' else 'mapping')
    for graph in golden_capture.GRAPHS:
        if not isinstance(summary['variables'].get(graph), dict):
            return 'variables.%s is missing or not a mapping' % graph
    settings = summary['settings']
    for key in golden_capture.SETTINGS:
        value = settings.get(key)
        if key == 'learning_rate':
            if (not isinstance(value, (int, float)) or isinstance(value, bool)
                    or not 0 < value < float('inf')):
                return 'settings.learning_rate is missing or not a positive number'
        elif not isinstance(value, int) or isinstance(value, bool) or value < (key != 'seed'):
            return 'settings.%s is missing or not a %s integer' % (
                key, 'non-negative' if key == 'seed' else 'positive')
    numbers = summary['numbers']
    for key in _NUMBER_KEYS:
        try:
            array = np.asarray(numbers[key], dtype=np.float64)
        except (KeyError, TypeError, ValueError):
            return 'numbers.%s is missing or not numbers' % key
        if not np.all(np.isfinite(array)):
            return 'numbers.%s holds a value that is not finite' % key
    if len(numbers['loss']) != settings['steps']:
        return 'numbers.loss has %d steps, settings.steps says %d' % (len(numbers['loss']),
                                                                      settings['steps'])
    for key in _NUMBER_KEYS[1:]:
        rows = np.shape(numbers[key])[0] if np.ndim(numbers[key]) else 0
        if numbers[key] is not None and rows != settings['eval_images']:
            return 'numbers.%s has %d images, settings.eval_images says %d' % (
                key, rows, settings['eval_images'])
    return None


# The record's float32 weights are 586 KB; nothing larger is one, packed or unpacked.
_MAX_WEIGHTS_BYTES = 64 << 20


def _load_weights(path, summary, damaged):
    """{variable: float32 array} from weights.npz; `damaged(path, why)` makes the error."""
    try:
        data = io.BytesIO(reading.read_bytes(path, _MAX_WEIGHTS_BYTES))
        with zipfile.ZipFile(data) as archive:  # the sizes it declares, before numpy inflates
            unpacked = sum(member.file_size for member in archive.infolist())
        if unpacked > _MAX_WEIGHTS_BYTES:
            raise damaged(path, 'it unpacks to %d bytes, more than a record holds' % unpacked)
        with np.load(data, allow_pickle=False) as archive:
            weights = {name: archive[name] for name in archive.files}
    except reading.UnreadableFileError as e:
        raise damaged(path, e.reason)
    except GoldenRecordError:
        raise
    except Exception as e:  # zipfile, zlib and numpy each raise their own on a damaged file
        raise damaged(path, '%s: %s' % (type(e).__name__, e))
    if not weights:
        raise damaged(path, 'no weights')
    for name, value in weights.items():
        if value.dtype != np.float32:
            raise damaged(path, '%s is %s, not float32' % (name, value.dtype))
        if name not in summary['variables']['train']:
            raise damaged(path, '%s is not a variable of the record' % name)
    return weights


# --- checking ---------------------------------------------------------------------------------

class CheckResult(object):
    """The outcome of a check: `holds`, `exit_code`, the printed `lines`, the JSON `report`."""

    def __init__(self, golden_dir, recorded, current, comparison, exact, known=()):
        self.recorded, self.current, self.comparison = recorded, current, comparison
        every = [golden_compare.difference_line(d) for d in comparison.differences]
        excused = known_differences.known_lines(
            known, current.summary['environment'].get('tensorflow'), every)
        # `differences` fail the check; `known` are printed as known, harmless and do not.
        self.differences = [line for line in every if line not in excused]
        self.known = [line for line in every if line in excused]
        self.holds = not self.differences
        self.exit_code = EXIT_HOLDS if self.holds else EXIT_DRIFT
        shown = [line if line not in excused else '%s (known, harmless on TensorFlow %s; see %s)'
                 % (line, excused[line]['tensorflow'], known_differences.KNOWN_FILE)
                 for line in every]
        self.lines = ([environment_line('recorded with', recorded.summary['environment']),
                       environment_line('checked with ', current.summary['environment'])]
                      + shown + [self._summary_line(golden_dir, exact)])
        self.report = {
            'format': REPORT_FORMAT,
            'status': 'holds' if self.holds else 'drift',
            'exit_code': self.exit_code,
            'record': golden_dir,
            'exact': exact,
            'recorded_with': recorded.summary['environment'],
            'checked_with': current.summary['environment'],
            'structure_same': comparison.structure_same,
            'fingerprints': {'recorded': recorded.summary['fingerprints'],
                             'checked': current.summary['fingerprints']},
            'numbers_hold': comparison.numbers_hold,
            'bit_identical': all(comparison.bit_identical.values()),
            'bit_identical_by_kind': comparison.bit_identical,
            'max_abs_diff': comparison.max_abs_diff,
            'tolerances': {k: t._asdict() for k, t in golden_compare.TOLERANCES.items()},
            'differences': self.differences,
            'known_differences': [{'difference': line, 'tensorflow': excused[line]['tensorflow'],
                                   'why': excused[line]['why']} for line in self.known],
        }

    def _summary_line(self, golden_dir, exact):
        comparison = self.comparison
        structural = sum(1 for line in self.differences
                         if line.split(' ', 1)[0] in known_differences.STRUCTURE_SECTIONS)
        numeric = len(self.differences) - structural
        known = len(self.known)  # structural only (known_differences.load)
        diffs = ', '.join('%s %s' % (kind, 'n/a' if value is None else '%.2g' % value)
                          for kind, value in sorted(comparison.max_abs_diff.items()))
        if comparison.structure_same:
            structure = 'same'
        elif not structural:
            structure = '%d known, harmless differences' % known
        else:
            structure = '%d differences%s' % (
                structural, ' and %d known, harmless' % known if known else '')
        return ('golden check %s: %s%s: structure %s; numbers %s; bit-identical: %s '
                '(max abs diff: %s)' % (
                    golden_dir, 'HOLDS' if self.holds else 'DRIFT',
                    '' if self.holds else ' (%d differences)' % len(self.differences),
                    structure,
                    ('bit-identical' if exact else 'within tolerance') if comparison.numbers_hold
                    else '%d differences' % numeric,
                    'yes' if all(comparison.bit_identical.values()) else 'no', diffs))

    def text(self):
        return '\n'.join(self.lines)


def environment_line(label, environment):
    return '%s TensorFlow %s, numpy %s, python %s, squeezenet_v1 %s on %s (%d cores; %s; ' \
           'oneDNN %s)' % (label, environment.get('tensorflow'), environment.get('numpy'),
                           environment.get('python'), environment.get('squeezenet_v1'),
                           environment.get('cpu'), environment.get('cpu_count') or 0,
                           ' '.join(environment.get('cpu_flags') or []) or 'no AVX flags',
                           environment.get('onednn'))


def check(golden_dir, exact=False, current=None):
    """Checks the record in golden_dir against the running TensorFlow; returns a CheckResult.

    `current`, a Capture already computed with this record's weights and settings, skips the
    rebuild (tests reuse one). Differences listed in the record's known_differences.json for
    the running TensorFlow are printed as known, harmless and do not fail the check. Raises
    GoldenRecordError for an unusable record and golden_capture.CaptureError when a stage
    cannot run on this TensorFlow.
    """
    recorded = load_record(golden_dir)
    try:
        known = known_differences.load(golden_dir)
    except known_differences.Damaged as e:
        raise GoldenRecordError(str(e))
    if current is None:
        current = golden_capture.capture(recorded.weights, recorded.summary['settings'])
    comparison = golden_compare.compare(recorded, current, exact)
    return CheckResult(golden_dir, recorded, current, comparison, exact, known)
