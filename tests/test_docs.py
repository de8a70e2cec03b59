"""The docs name what exists: every flag of run_train.py once, no flag or module that is gone.

Flags are declared once in squeezenet_v1/run_flags.py; docs/flags.md is their table, and the
README and docs may mention only flags some command here defines. Module paths written in the
docs (`squeezenet_v1/training/loop.py`, `squeezenet_v1.model_dir.checkpoints.restore`,
`tests/test_loop.py`) must exist, so a move that forgets its docs fails here.
"""

import ast
import glob
import importlib
import os
import re

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
    harness = _text(os.path.join(REPO, 'benchmarks', 'benchmark_training.py'))
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
