"""Which TensorFlow versions reproduce the committed golden record (tests/golden)?

    python tools/golden_versions.py [--versions 2.16.2,2.17.1] [--record tests/golden]

Not part of CI: for each TensorFlow from 2.16 to the newest the package index offers (the latest
patch of each minor version), it makes a virtualenv under --work_dir, installs `tensorflow==X
numpy absl-py` (pip picks the numpy that version accepts) and this repository (`pip install -e
--no-deps`), runs `python -m squeezenet_v1.golden check RECORD --json`, and removes the
virtualenv before the next one (each is about 2 GB). It prints a markdown table, one row per
version: structure same?, the largest number differences, bit-identical?, and the first
differences, and writes every report to --output (JSON). A version that cannot be installed
gets a row that says so, with pip's reason.
"""

import argparse
import datetime
import json
import os
import platform
import re
import shutil
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIRST_MINOR = (2, 16)
_NUMBER_COLUMNS = (('loss', 'loss'), ('weights', 'trained weights'),
                   ('eval_logits', 'eval logits'), ('serving_probabilities', 'serving probs'))


def available_versions():
    """The latest patch release of every TensorFlow minor version from 2.16 on, oldest first."""
    out = subprocess.run([sys.executable, '-m', 'pip', 'index', 'versions', 'tensorflow'],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                         check=True).stdout
    match = re.search(r'Available versions: (.*)', out)
    if not match:
        raise SystemExit('pip index versions tensorflow listed no versions:\n' + out)
    latest = {}
    for version in match.group(1).split(', '):
        parts = version.strip().split('.')
        if len(parts) != 3 or not all(p.isdigit() for p in parts):
            continue  # pre-releases and post-releases
        key = tuple(int(p) for p in parts)
        if key[:2] >= FIRST_MINOR and key > latest.get(key[:2], (0, 0, -1)):
            latest[key[:2]] = key
    return ['.'.join(map(str, latest[minor])) for minor in sorted(latest)]


def _run(command, log, **kwargs):
    """Runs a command, appending its output to log; returns (exit status, last output lines)."""
    with open(log, 'a') as f:
        f.write('$ %s\n' % ' '.join(command))
        f.flush()
        proc = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True, **kwargs)
        f.write(proc.stdout)
    return proc.returncode, proc.stdout.strip().splitlines()[-3:]


def check_version(version, record, work_dir):
    """The golden check report of `record` under TensorFlow `version`, or a dict saying why not."""
    venv = os.path.join(work_dir, 'golden-tf-%s' % version)
    log = os.path.join(work_dir, 'golden-tf-%s.log' % version)
    report_path = os.path.join(work_dir, 'golden-tf-%s.json' % version)
    for path in (log, report_path):
        if os.path.exists(path):
            os.remove(path)
    shutil.rmtree(venv, ignore_errors=True)
    try:
        status, tail = _run([sys.executable, '-m', 'venv', venv], log)
        pip = [os.path.join(venv, 'bin', 'python'), '-m', 'pip', 'install', '--quiet']
        if status == 0:
            status, tail = _run(pip + ['tensorflow==%s' % version, 'numpy', 'absl-py'], log)
        if status != 0:
            return {'tensorflow': version, 'status': 'not installed',
                    'error': ' '.join(tail)[-300:]}
        status, tail = _run(pip + ['--no-deps', '-e', REPO], log)
        if status != 0:
            return {'tensorflow': version, 'status': 'not installed',
                    'error': 'squeezenet_v1: ' + ' '.join(tail)[-300:]}
        numpy_version = subprocess.run(
            [os.path.join(venv, 'bin', 'python'), '-c', 'import numpy; print(numpy.__version__)'],
            stdout=subprocess.PIPE, text=True).stdout.strip()
        status, tail = _run([os.path.join(venv, 'bin', 'python'), '-m', 'squeezenet_v1.golden',
                             'check', record, '--json', report_path], log, cwd=REPO,
                            env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2'))
        try:
            with open(report_path) as f:
                report = json.load(f)
        except (OSError, ValueError):
            report = {'status': 'error', 'error': ' '.join(tail)[-300:]}
        report.update(tensorflow=version, numpy=numpy_version, exit_status=status)
        return report
    finally:
        shutil.rmtree(venv, ignore_errors=True)


def markdown_table(results):
    header = (['TensorFlow', 'numpy', 'exit', 'structure same?']
              + ['%s max diff' % label for _, label in _NUMBER_COLUMNS]
              + ['bit-identical?', 'first differences'])
    rows = ['| %s |' % ' | '.join(header), '|' + ' --- |' * len(header)]
    for result in results:
        if result['status'] in ('holds', 'drift'):
            diffs = result.get('max_abs_diff', {})
            numbers = ['n/a' if diffs.get(k) is None else '%.2g' % diffs[k]
                       for k, _ in _NUMBER_COLUMNS]
            listed = result['differences'] + [
                k['difference'] + ' (known, harmless)' for k in result.get('known_differences', [])]
            shown = listed[:2]
            notes = '; '.join('`%s`' % _short(d) for d in shown)
            if len(listed) > len(shown):
                notes += '; and %d more' % (len(listed) - len(shown))
            cells = [result['tensorflow'], result.get('numpy', '?'),
                     str(result.get('exit_status')),
                     'yes' if result['structure_same'] else 'no'] + numbers + [
                         'yes' if result['bit_identical'] else 'no', notes or '-']
        else:
            cells = [result['tensorflow'], result.get('numpy', '-'),
                     str(result.get('exit_status', '-')), result['status']] + [
                         '-'] * len(_NUMBER_COLUMNS) + ['-', _short(result.get('error', ''))]
        rows.append('| %s |' % ' | '.join(c.replace('|', '\\|') for c in cells))
    return '\n'.join(rows)


def _short_path(word):
    parts = word.split('/')
    if len(parts) < 4:
        return word
    return '/'.join(parts[:2 if len(parts) > 4 else 1] + ['...'] + parts[-2:])


def _short(text, limit=150):
    """One line of at most `limit` characters; long op paths keep their first and last parts."""
    words = [_short_path(word) for word in str(text).split()]
    text = ' '.join(words)
    return text if len(text) <= limit else text[:limit - 3] + '...'


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--versions', help='comma-separated TensorFlow versions (default: the '
                        'latest patch of each minor version from 2.16 on)')
    parser.add_argument('--record', default='tests/golden', help='the golden record to check')
    parser.add_argument('--work_dir', default='/tmp', help='where the virtualenvs are made')
    parser.add_argument('--output', default=os.path.join(REPO, 'tools',
                                                         'golden_versions.json'),
                        help='JSON file for every version\'s report')
    args = parser.parse_args()
    versions = args.versions.split(',') if args.versions else available_versions()
    results = []
    started = datetime.datetime.now(datetime.timezone.utc)
    for version in versions:
        print('TensorFlow %s ...' % version, file=sys.stderr, flush=True)
        results.append(check_version(version, args.record, args.work_dir))
        print('  %s' % results[-1]['status'], file=sys.stderr, flush=True)
    with open(args.output, 'w') as f:
        json.dump({'started_utc': started.strftime('%Y-%m-%d %H:%M'), 'record': args.record,
                   'machine': next((r['checked_with'] for r in results if 'checked_with' in r),
                                   platform.machine()),
                   'results': results}, f, indent=2)
        f.write('\n')
    print(markdown_table(results))


if __name__ == '__main__':
    main()
