"""Every console command's --help: its own flags, exit 0, and no TensorFlow needed to say so.

The commands run as their console scripts do (the launcher pip writes calls the entry point with
sys.argv[0] set to the script's name), in a Python where `import tensorflow` fails: a help or a
usage error that needed TensorFlow would fail here instead of taking seconds.
"""

import os
import re
import subprocess
import sys

import pytest

from conftest import REPO

# Each console script of setup.py as (name, module, function).
CONSOLE_SCRIPTS = re.findall(r"'(squeezenet-[\w-]+) = ([\w.]+):(\w+)'",
                             open(os.path.join(REPO, 'setup.py')).read())


@pytest.fixture(scope='module')
def no_tensorflow(tmp_path_factory):
    """A PYTHONPATH entry whose `tensorflow` package refuses to import."""
    blocker = tmp_path_factory.mktemp('no_tensorflow')
    (blocker / 'tensorflow').mkdir()
    (blocker / 'tensorflow' / '__init__.py').write_text(
        'raise ImportError("TensorFlow was imported, and this test forbids it")\n')
    return dict(os.environ, PYTHONPATH=os.pathsep.join([str(blocker), REPO]))


def _console(name, module, function, args, env):
    code = ('import sys; sys.argv[0] = %r; from %s import %s; sys.exit(%s())'
            % (name, module, function, function))
    return subprocess.run([sys.executable, '-c', code] + list(args), cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=120)


def _listed_flags(text):
    return set(re.findall(r'(?m)^  --(?:\[no\])?(\w+)', text))


def test_every_console_script_is_here():
    names = [name for name, _, _ in CONSOLE_SCRIPTS]
    assert len(names) == 7 and 'squeezenet-train' in names, names


@pytest.mark.parametrize('name,module,function', CONSOLE_SCRIPTS,
                         ids=[name for name, _, _ in CONSOLE_SCRIPTS])
def test_help_lists_its_own_flags_without_tensorflow(name, module, function, no_tensorflow):
    proc = _console(name, module, function, ['--help'], no_tensorflow)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.startswith('usage: %s ' % name), proc.stdout[:300]
    assert 'TensorFlow was imported' not in proc.stdout + proc.stderr
    assert proc.stderr == '', proc.stderr[-2000:]
    if name == 'squeezenet-train':
        from squeezenet_v1 import run_flags
        assert _listed_flags(proc.stdout) == set(run_flags.FLAG_NAMES), proc.stdout
    else:
        command = __import__(module, fromlist=['COMMAND']).COMMAND
        assert _listed_flags(proc.stdout) == set(command.flags), proc.stdout


@pytest.mark.parametrize('name,module,function', CONSOLE_SCRIPTS,
                         ids=[name for name, _, _ in CONSOLE_SCRIPTS])
def test_usage_error_is_named_by_the_command_typed(name, module, function, no_tensorflow):
    proc = _console(name, module, function, ['--no_such_flag'], no_tensorflow)
    assert proc.returncode in (1, 2), proc.stderr[-2000:]
    assert 'TensorFlow was imported' not in proc.stderr
    if name == 'squeezenet-train':  # absl's own parser: its one FATAL line, exit 1
        assert "Unknown command line flag 'no_such_flag'" in proc.stderr, proc.stderr
    else:
        assert proc.stderr.startswith("%s: error: Unknown command line flag 'no_such_flag'"
                                      % name), proc.stderr


def test_run_train_script_help_exits_0_and_lists_every_flag(no_tensorflow):
    from squeezenet_v1 import run_flags
    proc = subprocess.run([sys.executable, 'run_train.py', '--help'], cwd=REPO,
                          env=no_tensorflow, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.startswith('usage: python run_train.py '), proc.stdout[:300]
    assert _listed_flags(proc.stdout) == set(run_flags.FLAG_NAMES)
    full = subprocess.run([sys.executable, 'run_train.py', '--helpfull'], cwd=REPO,
                          env=no_tensorflow, capture_output=True, text=True, timeout=120)
    assert full.returncode == 0 and '--verbosity' in full.stdout, full.stderr[-2000:]
    assert _listed_flags(full.stdout) >= set(run_flags.FLAG_NAMES)


def test_every_flag_help_lists_is_in_the_flag_table():
    from squeezenet_v1 import run_flags
    table = open(os.path.join(REPO, 'docs', 'flags.md')).read()
    rows = set(re.findall(r'(?m)^\| `--(\w+)` \|', table))
    assert set(run_flags.FLAG_NAMES) - rows == set()


def test_help_after_double_dash_is_an_argument_not_a_request(no_tensorflow):
    proc = subprocess.run([sys.executable, 'run_train.py', '--', '--help'], cwd=REPO,
                          env=no_tensorflow, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1 and 'Unexpected arguments: --help' in proc.stderr, proc.stderr


@pytest.mark.parametrize('arg, helps', [('--help=1', True), ('-h', True), ('--helpfull=true', True),
                                        ('--help=false', False), ('--helpfull=0', False)])
def test_help_given_a_value_is_answered_as_absl_reads_it(arg, helps, no_tensorflow, tmp_path):
    # --mode=download of the synthetic set touches no model_dir: a run that is not help is quick
    # to tell (here it fails at once, TensorFlow being unimportable).
    proc = subprocess.run([sys.executable, 'run_train.py', arg, '--mode=download',
                           '--dataset=synthetic', '--model_dir=%s' % (tmp_path / 'm')],
                          cwd=REPO, env=no_tensorflow, capture_output=True, text=True, timeout=120)
    assert proc.stdout.startswith('usage: python run_train.py ') == helps, proc.stdout[:200]
    assert (proc.returncode == 0) == helps
    assert not (tmp_path / 'm').exists()


def test_a_missing_tensorflow_is_one_line_after_the_flags_are_checked(no_tensorflow, tmp_path):
    proc = subprocess.run([sys.executable, 'run_train.py', '--mode=download', '--dataset=synthetic',
                           '--model_dir=%s' % (tmp_path / 'm')], cwd=REPO, env=no_tensorflow,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1 and 'Traceback' not in proc.stderr, proc.stderr[-2000:]
    assert 'TensorFlow cannot be loaded (TensorFlow was imported, and this test forbids it): ' \
           '`pip install -e .` installs it' in proc.stderr
