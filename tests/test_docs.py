"""The docs name what exists: every flag of run_train.py once, no flag or module that is gone.

Flags are declared once in squeezenet_v1/run_flags.py; docs/flags.md is their table, and the
README and docs may mention only flags some command here defines. Module paths written in the
docs (`squeezenet_v1/training/loop.py`, `squeezenet_v1.model_dir.checkpoints.restore`,
`tests/test_loop.py`) must exist, so a move that forgets its docs fails here. Every Python
snippet of the docs runs here as written (extracted from the Markdown, so a doc cannot drift).
"""

import ast
import glob
import importlib
import os
import re
import subprocess
import sys

import pytest
from absl import flags

from conftest import REPO
from squeezenet_v1 import run_flags

DOCS = sorted([os.path.join(REPO, 'README.md'), os.path.join(REPO, 'data', 'README.md'),
               os.path.join(REPO, 'benchmarks', 'README.md')]
              + glob.glob(os.path.join(REPO, 'docs', '*.md')))
# The console commands' own flags (each on a FlagValues of its own) and the benchmark harness'.
_COMMANDS = ('squeezenet_v1.evaluation.summarize', 'squeezenet_v1.golden.cli',
             'squeezenet_v1.cluster.local_cluster', 'squeezenet_v1.data.synthetic',
             'squeezenet_v1.parameters', 'squeezenet_v1.model_dir.checkpoint_tool')
# Options of the tools the docs show beside ours (pip, pytest, git, tensorboard, timeout, ...).
_OTHER_TOOLS = {'logdir', 'upgrade', 'quiet', 'no-deps', 'dist', 'output', 'helpfull',
                'helpshort', 'help', 'version', 'strict-markers', 'detach', 'rm', 'port',
                'bind_all', 'model_base_path', 'rest_api_port', 'model_name', 'inputs',
                'outputs', 'opset', 'saved-model', 'tag_set', 'signature_def', 'dir', 'all',
                'show', 'index-url', 'extra-index-url', 'signal', 'kill-after', 'preserve-status',
                'flagfile', 'undefok', 'stat', 'link-dest',
                'checkpoint_exclude_scopes'}  # slim's, named as the warm start's model
# docs/decisions.md keeps the closed experiments' findings: their scripts (and flags) are gone
# from the tree and named as `git show <commit>:benchmarks/<script>.py`.
_CURRENT_DOCS = [path for path in DOCS if os.path.basename(path) != 'decisions.md']


def _text(path):
    with open(path, encoding='utf-8') as f:
        return f.read()


def _flags_table_names():
    rows = re.findall(r'(?m)^\| `--(\w+)` \|', _text(os.path.join(REPO, 'docs', 'flags.md')))
    return rows


def test_docs_flags_table_lists_every_flag_of_run_train_once():
    names = _flags_table_names()
    assert sorted(names) == sorted(set(names)), 'a flag is listed twice'
    assert set(names) == set(run_flags.FLAG_NAMES), (
        'docs/flags.md lists %s that run_flags.py does not declare and leaves out %s'
        % (sorted(set(names) - set(run_flags.FLAG_NAMES)),
           sorted(set(run_flags.FLAG_NAMES) - set(names))))


def _known_flags():
    known = set(run_flags.FLAG_NAMES) | set(flags.FLAGS) | _OTHER_TOOLS
    for module in _COMMANDS:
        known |= set(importlib.import_module(module).COMMAND.flags)
    for script in glob.glob(os.path.join(REPO, 'benchmarks', '*.py')):
        harness = _text(script)
        known |= set(re.findall(r"DEFINE_\w+\(\s*'(\w+)'", harness))
        known |= set(re.findall(r"add_argument\(\s*'--([\w-]+)'", harness))
    return known


@pytest.mark.parametrize('path', _CURRENT_DOCS,
                         ids=[os.path.relpath(p, REPO) for p in _CURRENT_DOCS])
def test_every_flag_the_docs_mention_exists(path):
    mentioned = set(re.findall(r'(?<![\w-])--([a-z][\w-]*)', _text(path)))
    unknown = sorted(mentioned - _known_flags())
    assert not unknown, '%s mentions flags no command defines: %s' % (
        os.path.relpath(path, REPO), ', '.join('--' + name for name in unknown))


def _top_level_names(module_file):
    tree = ast.parse(_text(module_file))
    names = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef, ast.AsyncFunctionDef)):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names |= {t.id for t in node.targets if isinstance(t, ast.Name)}
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names |= {(a.asname or a.name).split('.')[0] for a in node.names}
    return names


def _dotted_path_exists(dotted):
    """squeezenet_v1.a.b(.attr): the longest prefix that is a module, then one top-level name."""
    parts = dotted.split('.')
    for cut in range(len(parts), 0, -1):
        base = os.path.join(REPO, *parts[:cut])
        module_file = base + '.py' if os.path.isfile(base + '.py') else (
            os.path.join(base, '__init__.py') if os.path.isdir(base) else None)
        if module_file:
            rest = parts[cut:]
            return not rest or (len(rest) <= 2 and rest[0] in _top_level_names(module_file))
    return False


@pytest.mark.parametrize('path', DOCS, ids=[os.path.relpath(p, REPO) for p in DOCS])
def test_every_module_path_the_docs_name_exists(path):
    text = _text(path)
    missing = []
    # A path after `<commit>:` is one in that commit (git show), not in today's tree.
    for named in set(re.findall(
            r'(?<![\w/.:])((?:squeezenet_v1|tests|benchmarks|tools)/[\w/]+\.py)', text)):
        if not os.path.isfile(os.path.join(REPO, named)):
            missing.append(named)
    # Inside the package, docs often name a file by its folder: `training/loop.py`.
    for named in set(re.findall(
            r'(?<![\w/.])((?:cluster|data|deploy|evaluation|golden|model_dir|training|files)'
            r'/\w+\.py)',
            text)):
        if not os.path.isfile(os.path.join(REPO, 'squeezenet_v1', named)):
            missing.append(named)
    for dotted in set(re.findall(r'(?<![\w.])(squeezenet_v1(?:\.\w+)+)', text)):
        if not _dotted_path_exists(dotted.rstrip('.')):
            missing.append(dotted)
    assert not missing, '%s names what does not exist: %s' % (os.path.relpath(path, REPO),
                                                             ', '.join(sorted(missing)))


def test_architecture_page_names_the_six_monitored_training_session_hooks():
    text = _text(os.path.join(REPO, 'docs', 'architecture.md'))
    hooks = ('StopAtStepHook', 'NanTensorHook', 'CheckpointSaverHook', 'SummarySaverHook',
             'LoggingTensorHook', 'StepCounterHook')
    assert [hook for hook in hooks if hook not in text] == []


def test_readme_stays_short_and_gives_its_commands():
    text = _text(os.path.join(REPO, 'README.md'))
    assert len(text.splitlines()) <= 150
    for command in ('pip install -e . && python run_train.py --dataset=synthetic',
                    'pip install -e ".[test,onnx]" && python -m pytest tests',
                    'python -m pytest tests -m "not slow"'):
        assert command in text, command


def python_snippets(path):
    """[(line, code)]: the indented code blocks of a Markdown file that are Python (their first
    line an import), their indentation removed."""
    lines, snippets, number = _text(path).split('\n'), [], 0
    while number < len(lines):
        starts = lines[number].startswith('    ') and (number == 0 or not lines[number - 1].strip())
        if not starts:
            number += 1
            continue
        end = number
        while end < len(lines) and (lines[end].startswith('    ') or (
                not lines[end].strip() and end + 1 < len(lines)
                and lines[end + 1].startswith('    '))):
            end += 1
        code = '\n'.join(line[4:] for line in lines[number:end])
        if re.match(r'(import|from) [\w.]+', code):
            snippets.append((number + 1, code))
        number = end
    return snippets


_SNIPPETS = [(os.path.relpath(path, REPO), line, code) for path in DOCS
             for line, code in python_snippets(path)]
# After a snippet runs, the test functions it defines are called, as pytest would.
_CALL_TESTS = ('\nfor _name, _value in list(globals().items()):\n'
               '    if _name.startswith("test_") and callable(_value):\n'
               '        _value()\n')


def test_the_docs_hold_python_snippets():
    assert {path for path, _, _ in _SNIPPETS} >= {'docs/model.md', 'docs/golden.md'}


@pytest.mark.parametrize('path, line, code', [
    # The golden check trains its steps and builds every graph: the slow tier's.
    pytest.param(*snippet, marks=[pytest.mark.slow] if 'golden' in snippet[2] else [])
    for snippet in _SNIPPETS], ids=['%s:%d' % snippet[:2] for snippet in _SNIPPETS])
def test_every_python_snippet_in_the_docs_runs_as_written(path, line, code):
    proc = subprocess.run([sys.executable, '-c', code + _CALL_TESTS], cwd=REPO,
                          capture_output=True, text=True, timeout=600,
                          env=dict(os.environ, PYTHONPATH=REPO))
    assert proc.returncode == 0, '%s:%d\n%s' % (path, line, proc.stderr[-3000:])


@pytest.mark.parametrize('images, labels, named', [
    (('uint8', [None, 32, 32, 3]), ('int32', [None]), 'its images are uint8 [None, 32, 32, 3]'),
    (('float32', [None, 32, 32, 3]), ('int32', [None]), 'its images are float32 [None, 32, 32, 3]'),
    (('float32', [None, 24, 24]), ('int32', [None]), 'its images are float32 [None, 24, 24]'),
    (('float32', [None, 24, 24, 3]), ('int64', [None]), 'its labels are int64 [None]'),
    (('float32', [8, 24, 24, 3]), ('int32', [8, 1]), 'its labels are int32 [8, 1]')])
def test_a_wrong_input_to_run_model_setup_is_one_line_naming_what_it_takes(images, labels, named):
    import tensorflow as tf
    from squeezenet_v1 import SqueezeNetModel
    with tf.Graph().as_default():
        model = SqueezeNetModel(original_dim=32, resize_dim=24, output_size=10)
        with pytest.raises(ValueError) as raised:
            model.run_model_setup(tf.compat.v1.placeholder(getattr(tf, images[0]), images[1]),
                                  tf.compat.v1.placeholder(getattr(tf, labels[0]), labels[1]))
        assert tf.compat.v1.global_variables() == []  # refused before anything was built
    message = str(raised.value)
    assert '\n' not in message and message.endswith(named + '.'), message
    assert message.startswith('run_model_setup takes float32 images [batch, 24, 24, 3]')


def test_run_model_setup_in_eager_mode_says_how_to_build_a_graph():
    import tensorflow as tf
    from squeezenet_v1 import SqueezeNetModel
    assert tf.executing_eagerly()
    with pytest.raises(RuntimeError, match='disable_eager_execution'):
        SqueezeNetModel(32, 24, 10).run_model_setup(tf.zeros([1, 24, 24, 3]),
                                                    tf.zeros([1], tf.int32))


def test_readme_and_your_files_agree_on_run_trains_exit_statuses():
    from squeezenet_v1 import runner
    statuses = {0, runner.EXIT_ERROR, runner.EXIT_DEAD_RUN, 130, 143}
    readme = _text(os.path.join(REPO, 'README.md')).split('**Exit status**', 1)[1]
    # The statuses it names, leaving out the example line (in backticks) and "128 + the signal".
    readme = re.sub(r'`[^`]*`|128 \+', '', readme.split('\n\n', 1)[0])
    said = {int(n) for n in re.findall(r'(?<![\w.=-])(\d{1,3})(?![\w.])', readme)}
    assert said == statuses, readme
    row = [line for line in _text(os.path.join(REPO, 'docs', 'your_files.md')).splitlines()
           if line.startswith('| `run_train.py --mode=train`')][0]
    last_cell = row.rstrip(' |').rsplit('|', 1)[1]
    assert {int(n) for n in re.findall(r'\d+', last_cell)} == statuses, last_cell
