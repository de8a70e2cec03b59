"""Every small command, fuzzed at its front door: an exit status and a message, never a traceback.

summarize, golden, local_cluster, synthetic and parameters are called in this process with
argument lists drawn from their real flags, paths of every kind (inputs among them, as --json
targets) and junk. Whatever the arguments, a command returns 0, 1 or 2, says why on stderr
when it refuses, and leaves its inputs as they were. Where an argument list is valid and the
command would start its real work (a golden capture, a cluster), that work is replaced by a
marker: the front door is what is tested here; the work has its own tests.
"""

import hashlib
import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from squeezenet_v1 import parameters
from squeezenet_v1.cluster import local_cluster
from squeezenet_v1.data import synthetic
from squeezenet_v1.evaluation import summarize
from squeezenet_v1.golden import capture as golden_capture
from squeezenet_v1.golden import cli as golden_cli
from test_summarize import record, write_history

_SETTINGS = settings(max_examples=60, deadline=None,
                     suppress_health_check=[HealthCheck.function_scoped_fixture])


class _ReachedTheWork(BaseException):
    """Raised in place of a command's real work: its arguments passed the front door."""


def _reached(*args, **kwargs):
    raise _ReachedTheWork()


@pytest.fixture(autouse=True)
def _in_a_scratch_folder(tmp_path, monkeypatch):
    """Junk taken as a relative folder (synthetic's 'é', '-') is written here, not in the repo."""
    monkeypatch.chdir(tmp_path)


@pytest.fixture(scope='module')
def paths(tmp_path_factory):
    """Named paths of every kind a user might hand a command."""
    root = tmp_path_factory.mktemp('fuzz_paths')
    for name, seed in (('runA', 1), ('runB', 2)):
        write_history(str(root / name), [record(100, 0.5 + seed / 10, 1.0, seed),
                                         record(200, 0.6 + seed / 10, 0.9, seed)])
    write_history(str(root / 'bad_bytes'), [], tail='\xff{"global_step": 1')
    (root / 'empty_dir').mkdir()
    (root / 'a_file').write_text('just text')
    (root / 'golden_like').mkdir()
    (root / 'golden_like' / 'golden.json').write_text('{"format": "squeezenet_v1-golden/1"}')
    return {
        'runA': str(root / 'runA'), 'runB': str(root / 'runB'),
        'historyA': str(root / 'runA' / summarize.HISTORY_FILE),
        'bad_bytes': str(root / 'bad_bytes'), 'empty_dir': str(root / 'empty_dir'),
        'a_file': str(root / 'a_file'), 'under_a_file': str(root / 'a_file' / 'x'),
        'missing': str(root / 'missing'), 'new_file': str(root / 'out' / 'new.json'),
        'golden_like': str(root / 'golden_like'),
        'golden_json': str(root / 'golden_like' / 'golden.json'),
        'odd\nname': str(root / 'odd\nname'),
    }


def _fingerprints(paths):
    """{path: hash of its bytes} for every file among the paths, to prove none was changed."""
    found = {}
    for path in paths.values():
        for root, _, names in (os.walk(path) if os.path.isdir(path) else
                               [(os.path.dirname(path), [], [os.path.basename(path)])]):
            for name in names:
                full = os.path.join(root, name)
                if os.path.isfile(full) and not full.endswith('new.json'):
                    with open(full, 'rb') as f:
                        found[full] = hashlib.sha256(f.read()).hexdigest()
    return found


# No NUL byte: a command line cannot hold one.
_JUNK = st.sampled_from(['', '-', '--', '---x', '--json', '--json=', '=', '--help=1', 'é',
                         '--count', '--nojson', '--exact=maybe', ' '])


def _path(names):
    return st.sampled_from(names).map(lambda name: ('PATH', name))


def _run_command(main, argv, paths, capsys):
    """main(argv with its PATH markers filled in) -> (status, stderr); fails on a traceback."""
    args = [paths[a[1]] if isinstance(a, tuple) else a for a in argv]
    before = _fingerprints(paths)
    try:
        status = main(args)
    except _ReachedTheWork:
        status = None
    except SystemExit as e:  # absl may exit on --help; a status all the same
        status = e.code
    err = capsys.readouterr().err
    assert 'Traceback' not in err, (args, err)
    assert status in (None, 0, 1, 2), (args, status, err)
    if status:
        assert err.strip(), (args, 'refused without a word')
        first = err.strip().splitlines()[0]
        assert 'error' in first, (args, err)
    # Inputs are never changed (a --json over one is refused).
    after = _fingerprints(paths)
    assert {p: h for p, h in after.items() if p in before} == before, args
    return status, err


_INPUTS = ['runA', 'runB', 'historyA', 'bad_bytes', 'empty_dir', 'a_file', 'missing',
           'under_a_file', 'odd\nname']
_TARGETS = ['historyA', 'a_file', 'under_a_file', 'empty_dir', 'new_file', 'golden_json',
            'missing', 'runA']


@_SETTINGS
@given(argv=st.lists(st.one_of(
    _path(_INPUTS), _JUNK,
    st.tuples(st.just('--json='), _path(_TARGETS)).map(lambda t: ('JSON', t[1][1]))),
    max_size=5))
def test_summarize_front_door(argv, paths, capsys):
    argv = [('--json=' + paths[a[1]]) if isinstance(a, tuple) and a[0] == 'JSON' else a
            for a in argv]
    _run_command(summarize.main, argv, paths, capsys)
    new = paths['new_file']
    if os.path.exists(new):
        os.remove(new)


@_SETTINGS
@given(argv=st.lists(st.one_of(
    st.sampled_from(['record', 'check', 'verify']), _path(_INPUTS + ['golden_like']), _JUNK,
    st.sampled_from(['--exact', '--noexact']),
    st.tuples(st.just('--json='), _path(_TARGETS)).map(lambda t: ('JSON', t[1][1]))),
    max_size=4))
def test_golden_front_door(argv, paths, capsys, monkeypatch):
    monkeypatch.setattr(golden_capture, 'capture', _reached)
    monkeypatch.setattr(golden_cli, '_quiet_tensorflow', lambda: None)
    argv = [('--json=' + paths[a[1]]) if isinstance(a, tuple) and a[0] == 'JSON' else a
            for a in argv]
    _run_command(golden_cli.main, argv, paths, capsys)
    for name in ('new_file', 'missing'):
        if os.path.isfile(paths[name]):
            os.remove(paths[name])


@_SETTINGS
@given(argv=st.lists(st.one_of(
    st.sampled_from(['--ps=0', '--ps=2', '--ps=x', '--workers=0', '--workers=3', '--chief',
                     '--grace_secs=-1', '--grace_secs=nan', '--', '--mode=eval',
                     '--mode=train', '--mode', '--max_steps=5']), _JUNK), max_size=5))
def test_local_cluster_front_door(argv, paths, capsys, monkeypatch):
    monkeypatch.setattr(local_cluster, 'run', _reached)
    _run_command(local_cluster.main, argv, paths, capsys)


@_SETTINGS
@given(argv=st.lists(st.one_of(
    _path(['missing', 'a_file', 'under_a_file', 'empty_dir']),
    st.sampled_from(['--count=1', '--count=0', '--count=1001', '--count=x', '--count=2']),
    _JUNK), max_size=3))
def test_synthetic_front_door(argv, paths, capsys):
    status, _ = _run_command(synthetic.main, argv, paths, capsys)
    if status == 0 and os.path.isdir(paths['missing']):  # written where asked: start afresh
        for name in os.listdir(paths['missing']):
            os.remove(os.path.join(paths['missing'], name))
        os.rmdir(paths['missing'])


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(argv=st.lists(st.one_of(_JUNK, st.sampled_from(['x', '--verbose'])), min_size=1,
                     max_size=3))
def test_parameters_front_door(argv, paths, capsys, monkeypatch):
    monkeypatch.setattr(parameters, 'model_parameter_report', _reached)
    _run_command(parameters.main, argv, paths, capsys)
