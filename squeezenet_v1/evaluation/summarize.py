"""Accuracy and loss over seeds: one row per global_step that every run was evaluated at.

    python -m squeezenet_v1.evaluation.summarize DIR [DIR ...] [--json FILE]

Each DIR is a model_dir holding eval_history.jsonl (a JSON line per evaluated checkpoint; a step
evaluated twice counts with its last line), or that file. Runs are averaged only when they differ
in nothing but --seed; otherwise each difference is named and nothing is averaged. A run whose
final loss is ln(number of classes) predicts uniformly (a dead final ReLU): it is flagged, and
still averaged. Exit status: 0 summarized, 1 refused (runs that differ, or no step shared by
all), 2 a usage error or an unreadable history (one line on stderr). Reads JSON; no TensorFlow.
"""

import collections
import math
import os
import statistics
import sys

from absl import flags

from squeezenet_v1 import command_line
from squeezenet_v1 import dead_relu
from squeezenet_v1.files import atomic
from squeezenet_v1.files import output_files
from squeezenet_v1.files import reading
from squeezenet_v1.errors import UserError
from squeezenet_v1.model_dir import run_records
from squeezenet_v1.run_flags import EXPERIMENT_FLAGS

HISTORY_FILE = run_records.EVAL_HISTORY_FILE
REPORT_FORMAT = 'squeezenet_v1-summary/1'  # what --json writes, and alone replaces
EXIT_OK, EXIT_REFUSED, EXIT_ERROR = 0, 1, 2
_COMPARED_FLAGS = tuple(name for name in EXPERIMENT_FLAGS if name != 'seed')


class HistoryError(Exception):
    """A DIR whose history cannot be read; the message names the file (and line) and the fix."""


def history_path(run_dir):
    """The eval_history.jsonl of run_dir (run_dir itself when it is a file)."""
    path = os.path.join(run_dir, HISTORY_FILE)
    if os.path.isfile(run_dir) or os.path.isfile(path):
        return run_dir if os.path.isfile(run_dir) else path
    if not os.path.isdir(run_dir):
        raise HistoryError('%s does not exist: name a model_dir or its %s.'
                           % (run_dir, HISTORY_FILE))
    raise HistoryError(
        '%s holds no %s. Evaluations write it: `python run_train.py --mode=train_and_eval '
        '--model_dir=%s ...` evaluates every checkpoint, `--mode=eval --checkpoint_path=...` '
        'one.' % (run_dir, HISTORY_FILE, run_dir))


def load_history(path):
    """({global_step: record}, warnings); the last line for a step wins."""
    try:
        text = reading.read_text(path, reading.JSON_LINES_MAX_BYTES)
    except OSError as e:
        raise HistoryError('cannot read %s (%s)' % (path, e.strerror or e))
    except UserError as e:
        raise HistoryError('cannot read %s (%s)' % (e.path, e.detail))
    lines = text.split('\n')
    by_step, warnings = {}, []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = reading.loads(line)
        except ValueError as e:
            if number == len(lines):  # no newline after it: an append cut short by a crash
                warnings.append('%s:%d is an incomplete last line (a crash while appending?); '
                                'ignored.' % (path, number))
                continue
            raise HistoryError('%s:%d is not JSON (%s)' % (path, number, e))
        problem = _record_problem(record)
        if problem:
            raise HistoryError('%s:%d %s; fix or remove that line (the file is written by '
                               'evaluation, one JSON object a line).' % (path, number, problem))
        by_step[record['global_step']] = record
    if not by_step:
        raise HistoryError('%s holds no evaluations.' % path)
    return dict(sorted(by_step.items())), warnings


def _is_number(value):
    return not isinstance(value, bool) and isinstance(value, (int, float))


def _record_problem(record):
    """What makes a history line (JSON, perhaps edited by hand) unusable, or None."""
    if not isinstance(record, dict):
        return 'is not a JSON object'
    if not isinstance(record.get('global_step'), int) or isinstance(record['global_step'], bool):
        return 'has no whole-number global_step'
    for key in ('accuracy', 'loss'):
        if not _is_number(record.get(key)) or not math.isfinite(record[key]):
            return 'has no finite number as %s (%r)' % (key, record.get(key))
    per_class = record.get('per_class_accuracy', {})
    if not isinstance(per_class, dict) or not all(
            value is None or (_is_number(value) and math.isfinite(value))
            for value in per_class.values()):
        return 'has a per_class_accuracy that is not {class name: number or null}'
    if not isinstance(record.get('flags', {}), dict):
        return 'has flags that are not a JSON object'
    for key in ('dataset', 'split', 'eval_precision', 'checkpoint'):
        if not isinstance(record.get(key, ''), (str, type(None))):
            return 'has a %s that is not text' % key
    if record.get('uniform_predictions') not in (None,) + tuple(dead_relu.LABELS):
        return 'has a uniform_predictions that is none of null, %s' % ', '.join(dead_relu.LABELS)
    return None


def _setting(record):
    """What must match across runs: {label: value}, None where the record does not say."""
    flags = record.get('flags') or {}
    setting = {key: record.get(key) for key in ('dataset', 'split', 'num_examples')}
    # Histories written before --precision reached evaluation were evaluated in fp32.
    setting['eval_precision'] = record.get('eval_precision', 'fp32')
    setting.update(('--' + name, flags.get(name)) for name in _COMPARED_FLAGS)
    return setting


def _differences(runs):
    """'run: label value vs reference (runs with it)' for each run whose setting differs."""
    lines = []
    for run in runs:
        for label in _setting(run['last']):
            seen = sorted({repr(_setting(r)[label]) for r in run['records'].values()} - {'None'})
            if len(seen) > 1:
                lines.append('%s: %s changes within its history (%s)'
                             % (run['name'], label, ', '.join(seen)))
    for label in _setting(runs[0]['last']):
        values = [(run['name'], _setting(run['last'])[label]) for run in runs]
        values = [(name, value) for name, value in values if value is not None]
        counts = collections.Counter(value for _, value in values)
        if len(counts) < 2:
            continue
        reference = counts.most_common(1)[0][0]  # ties: the first run's value
        holders = ', '.join(name for name, value in values if value == reference)
        lines.extend('%s: %s %s vs %s (%s)' % (name, label, value, reference, holders)
                     for name, value in values if value != reference)
    return lines


def _stats(values):
    # The spread of one run is undefined: null, printed as such, never 0.
    return {'mean': statistics.fmean(values),
            'std': statistics.stdev(values) if len(values) > 1 else None,
            'min': min(values), 'max': max(values)}


def _uniform_predictions(record):
    """dead_relu.DEAD, NO_SIGNAL or None: what the evaluation saw, or for a history written
    before it recorded that, DEAD when the loss is ln(classes)."""
    if 'uniform_predictions' in record:
        return record['uniform_predictions']
    num_classes = len(record.get('per_class_accuracy') or {})
    return dead_relu.DEAD if dead_relu.is_dead_relu_loss(record['loss'], num_classes) else None


def _load_runs(run_dirs):
    """[{name, records, last}] in the order given, and the warnings of reading them."""
    runs, warnings, seen = [], [], {}
    for run_dir in run_dirs:
        path = history_path(run_dir)
        real = os.path.realpath(path)
        if real in seen:
            raise HistoryError('%s and %s are the same run; name each run once.'
                               % (seen[real], run_dir))
        seen[real] = run_dir
        records, run_warnings = load_history(path)
        warnings += run_warnings
        runs.append({'name': run_dir, 'records': records, 'last': records[max(records)]})
    return runs, warnings


def summarize(run_dirs):
    """The report, a JSON-ready dict with 'exit_code' 0 or 1; HistoryError if unreadable."""
    runs, warnings = _load_runs(run_dirs)
    all_steps = sorted(set().union(*(run['records'] for run in runs)))
    shared = [step for step in all_steps if all(step in run['records'] for run in runs)]
    notes = []
    for run in runs:
        missing = run['missing'] = [step for step in all_steps if step not in run['records']]
        if missing:
            notes.append('%s lacks step%s %s that other runs have; %s not averaged.' % (
                run['name'], 's' * (len(missing) > 1), ', '.join(map(str, missing)),
                'they are' if len(missing) > 1 else 'it is'))
    notes += ['%s records no experiment flags (an older history): its %s are not checked.'
              % (run['name'], ', '.join('--' + f for f in _COMPARED_FLAGS))
              for run in runs if not run['last'].get('flags')]
    uniform = {run['name']: _uniform_predictions(run['last']) for run in runs}
    dead = [name for name, kind in uniform.items() if kind == dead_relu.DEAD]
    no_signal = [name for name, kind in uniform.items() if kind == dead_relu.NO_SIGNAL]
    if dead:
        notes.append('DEAD ReLU: %s ended with every logit zero (loss ln(number of classes)): '
                     'the final ReLU died, such a run does not learn and should be rerun with '
                     'another --seed. Such runs are included in the averages, not left out.'
                     % ', '.join(dead))
    if no_signal:
        notes.append('NO SIGNAL: %s ended giving every image the same prediction with live '
                     'logits: the data as preprocessed carries nothing the model learned to tell '
                     'apart; another --seed will not help. Included in the averages.'
                     % ', '.join(no_signal))
    if len(runs) == 1:
        notes.append('one run: its spread (std) is undefined; summarize runs of several seeds.')
    differences = _differences(runs)
    if not differences and not shared:
        differences = ['no global_step is shared by all runs; nothing to average.']
    report = {
        'format': REPORT_FORMAT,
        'status': 'refused' if differences else 'summarized',
        'exit_code': EXIT_REFUSED if differences else EXIT_OK,
        'differences': differences,
        'setting': {label: value for label, value in _setting(runs[0]['last']).items()  # shared
                    if value is not None and all(_setting(run['last'])[label] in (value, None)
                                                 for run in runs)},
        'runs': [{'run': run['name'], 'seed': (run['last'].get('flags') or {}).get('seed'),
                  'steps': list(run['records']), 'missing_steps': run['missing'],
                  'final_step': run['last']['global_step'],
                  'final_accuracy': run['last']['accuracy'], 'final_loss': run['last']['loss'],
                  'dead_relu': run['name'] in dead,
                  'uniform_predictions': uniform[run['name']]} for run in runs],
        'rows': [], 'per_class_accuracy': None, 'notes': notes, 'warnings': warnings}
    if differences:
        return report
    for step in shared:
        records = [run['records'][step] for run in runs]
        report['rows'].append({'step': step, 'runs': len(runs),
                               'accuracy': _stats([r['accuracy'] for r in records]),
                               'loss': _stats([r['loss'] for r in records])})
    per_class = collections.defaultdict(list)  # a class without examples has null: left out
    for run in runs:
        for name, value in (run['records'][shared[-1]].get('per_class_accuracy') or {}).items():
            per_class[name] += [] if value is None else [value]
    report['per_class_accuracy'] = {'step': shared[-1], 'mean': {
        name: statistics.fmean(values) if values else None for name, values in per_class.items()}}
    return report


def _table(rows):
    """Rows of cells as lines, each column as wide as its widest cell (the first left-aligned)."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))] if rows else []
    return ['  '.join(cell.ljust(w) if i == 0 else cell.rjust(w)
                      for i, (cell, w) in enumerate(zip(row, widths))).rstrip() for row in rows]


def format_report(report):
    """The report as the lines the command prints."""
    seeds = ', '.join('?' if run['seed'] is None else str(run['seed']) for run in report['runs'])
    setting = ', '.join('%s %s' % (k, v) for k, v in report['setting'].items()
                        if k != '--dataset' or v != report['setting'].get('dataset'))
    plural = 's' * (len(report['runs']) > 1)
    lines = ['%d run%s (seed%s %s)%s' % (len(report['runs']), plural, plural, seeds,
                                         setting and ': ' + setting)]
    if report['differences']:
        lines += ['not averaged, the runs differ in more than --seed:']
        lines += ['  ' + line for line in report['differences']]
    else:
        def cells(stats):
            spread = 'n/a' if stats['std'] is None else '%.4f' % stats['std']
            return ['%.4f ± %s' % (stats['mean'], spread), '%.4f' % stats['min'],
                    '%.4f' % stats['max']]
        lines += [''] + _table(
            [['step', 'runs', 'accuracy mean ± std', 'min', 'max', 'loss mean ± std', 'min',
              'max']] + [[str(row['step']), str(row['runs'])] + cells(row['accuracy'])
                         + cells(row['loss']) for row in report['rows']])
        per_class = report['per_class_accuracy']
        lines += ['', 'per-class accuracy at step %d (mean over runs):' % per_class['step']]
        lines += ['  ' + line for line in _table([
            [name, 'n/a' if value is None else '%.4f' % value]
            for name, value in per_class['mean'].items()])]
    lines += ['', 'each run at its last evaluation:'] + _table([
        ['run', 'seed', 'step', 'accuracy', 'loss', '']] + [
        [run['run'], '?' if run['seed'] is None else str(run['seed']), str(run['final_step']),
         '%.4f' % run['final_accuracy'],
         '%.4f' % run['final_loss'], dead_relu.LABELS.get(run['uniform_predictions'], '')]
        for run in report['runs']])
    return lines + [''] * bool(report['notes']) + ['note: ' + note for note in report['notes']]


COMMAND = command_line.Command(
    'squeezenet_v1.evaluation.summarize', 'DIR [DIR ...] [--json=FILE]',
    'Mean +- std (n-1), min and max of accuracy and loss over runs that differ only in --seed, '
    'at each global_step all were evaluated at. Each DIR is a model_dir holding %s, or that '
    'file. Exits 0 when summarized, 1 when the runs differ in more, 2 on a usage or input '
    'error.' % HISTORY_FILE)
flags.DEFINE_string('json', None, 'Also write the summary as JSON to this file.',
                    flag_values=COMMAND.flags)


def main(args=None):
    """The command line (`args` without the program name); returns the exit status."""
    try:
        run_dirs = COMMAND.parse(sys.argv[1:] if args is None else args, min_args=1,
                                 max_args=None)
    except command_line.UsageError as e:
        return COMMAND.usage_error(e)
    if run_dirs is None:
        return 0
    json_path = COMMAND.flags.json
    try:
        if json_path:
            output_files.check_output_file(
                json_path, '--json',
                lambda path: output_files.is_json_of_format(path, REPORT_FORMAT),
                inputs=[history_path(run_dir) for run_dir in run_dirs])
        report = summarize(run_dirs)
    except (HistoryError, UserError) as e:
        print('%s: error: %s' % (COMMAND.name, e), file=sys.stderr)
        return EXIT_ERROR
    for warning in report['warnings']:
        print('%s: warning: %s' % (COMMAND.name, warning), file=sys.stderr)
    try:
        print('\n'.join(format_report(report)))
        sys.stdout.flush()
    except BrokenPipeError:  # `| head`: the reader has what it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    if json_path:
        try:
            atomic.write_json_atomic(json_path, report)
        except OSError as e:
            print('%s: error: cannot write --json %s (%s)'
                  % (COMMAND.name, json_path, e.strerror or e), file=sys.stderr)
            return EXIT_ERROR
    return report['exit_code']


if __name__ == '__main__':
    sys.exit(main())
