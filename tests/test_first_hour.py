"""What a newcomer meets first: a log of the project's own lines, and TensorFlow's on request.

The quick start's whole output is held against the shapes of the lines the project prints;
TensorFlow's start-up lines and notes are filtered (squeezenet_v1/tensorflow_logs.py), and
--verbosity=1 brings them back.
"""

import logging
import os
import re
import threading

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conftest import PROGRESS_LINE, REPO, run_train
from squeezenet_v1 import tensorflow_logs

# absl's prefix: severity, date, time, thread, file:line.
ABSL_LINE = re.compile(r'^([IWEF])\d{4} \d\d:\d\d:\d\d\.\d+ +\d+ ([\w.]+):\d+\] (.*)$')
PROJECT_FILES = {'run_train.py', 'trainer.py', 'loop.py', 'evaluate.py', 'runner.py',
                 'checkpoint_writer.py', 'waits.py'}
# What a train_and_eval run on the synthetic set says, line by line.
PROJECT_LINES = [re.compile(pattern) for pattern in (
    r'^Loading TensorFlow for --mode=train(_and_eval)?\.$',
    r'^Starting from scratch: 146570 parameters \(586280 float32 bytes\)$',
    '^' + PROGRESS_LINE.pattern + '$',
    r'^Saved checkpoint \S+/model\.ckpt-\d+$',
    r'^Evaluation of model\.ckpt-\d+ at step \d+ on 1000 synthetic images: accuracy = '
    r'\d\.\d{4}, loss = \d+\.\d{4} \(\d+\.\d s\)$',
    r'^  [a-z]+-(horizontal|vertical) +\d\.\d{4}$',
    r'^Still .+ \(over 2 s\) \.\.\.$',  # waits.announced, on a slow disk or machine
)]


def _unexplained(output):
    """The lines of `output` that are not one of the project's own."""
    lines = []
    for line in output.splitlines():
        absl = ABSL_LINE.match(line)
        if not (absl and absl.group(2) in PROJECT_FILES
                and any(shape.match(absl.group(3)) for shape in PROJECT_LINES)):
            lines.append(line)
    return lines


def test_the_quick_start_prints_the_projects_lines_and_nothing_else(seeded_run):
    _, output = seeded_run  # run_train.py --mode=train_and_eval on the synthetic set
    assert _unexplained(output) == []
    assert len(PROGRESS_LINE.findall(output)) == 3


def test_verbosity_1_brings_tensorflows_lines_back(tmp_path):
    quiet = run_train('--dataset=synthetic', '--mode=train', '--max_steps=1',
                      '--model_dir=%s' % (tmp_path / 'quiet'))
    loud = run_train('--dataset=synthetic', '--mode=train', '--max_steps=2', '--verbosity=1',
                     '--model_dir=%s' % (tmp_path / 'quiet'))  # it resumes: "Restoring ..."
    assert quiet.returncode == 0 and loud.returncode == 0, loud.stdout[-3000:]
    assert [line for line in _unexplained(quiet.stdout)
            if 'Saved checkpoint' not in line] == []
    assert 'Restoring parameters from' in loud.stdout
    assert len(loud.stdout.splitlines()) > len(quiet.stdout.splitlines()) + 1


START_UP = ('WARNING: All log messages before absl::InitializeLog() is called are written to '
            'STDERR\n'
            'I0000 00:00:1796414549.536915    1944 port.cc:153] oneDNN custom operations are on. '
            'You may see slightly different numerical results.\n'
            'I0000 00:00:1796414549.537699    1944 cudart_stub.cc:31] Could not find cuda drivers '
            'on your machine, GPU will not be used.\n'
            'I0000 00:00:1796415378.337818    8767 cpu_feature_guard.cc:227] This TensorFlow '
            'binary is optimized to use available CPU instructions.\n'
            'To enable the following instructions: AVX2 AVX512F FMA, in other operations, '
            'rebuild TensorFlow with the appropriate compiler flags.\n')


def test_start_up_lines_are_dropped_and_what_matters_is_kept():
    error = ('E0000 00:00:1796415380.389307    8767 cuda_platform.cc:52] failed call to cuInit\n')
    warning = '/x/y.py:3: UserWarning: something new\n'
    ours = 'I1204 20:17:32.261039 140450886011776 trainer.py:70] Starting from scratch\n'
    assert tensorflow_logs.kept_lines(START_UP) == ''
    assert tensorflow_logs.kept_lines(START_UP + error + START_UP + warning) == error + warning
    # An unprefixed line after an INFO line is no continuation of it, and absl's Python lines
    # (this project's) have the C++ shape with a .py file.
    assert tensorflow_logs.kept_lines(START_UP + 'Traceback (most recent call last):\n') == (
        'Traceback (most recent call last):\n')
    assert tensorflow_logs.kept_lines(START_UP + ours) == ours


def test_what_tensorflow_writes_while_it_loads_is_filtered_as_it_comes(capfd):
    with tensorflow_logs.held_stderr():
        os.write(2, START_UP.encode() + b'F0000 00:00:1.2 7 check.cc:1] Check failed\npartial')
    assert capfd.readouterr().err == 'F0000 00:00:1.2 7 check.cc:1] Check failed\npartial'
    try:  # a failed import shows the lines held back too, after what it let through
        with tensorflow_logs.held_stderr():
            os.write(2, START_UP.encode() + b'ImportError follows\n')
            raise ImportError('no')
    except ImportError:
        pass
    err = capfd.readouterr().err
    assert err.startswith('ImportError follows\n') and 'oneDNN custom operations' in err


_LINE = st.text(st.characters(blacklist_categories=['Cs'], blacklist_characters='\r\n\x0b\x0c'
                              '\x1c\x1d\x1e\x85\u2028\u2029'), max_size=60)


@given(st.lists(_LINE, max_size=8))
def test_lines_that_are_no_tensorflow_start_up_line_are_all_kept(lines):
    text = ''.join(line + '\n' for line in lines
                   if not tensorflow_logs._CPP_LINE.match(line)
                   and not line.startswith(tensorflow_logs._CONTINUATION)
                   and line not in tensorflow_logs._START_UP_LINES)
    assert tensorflow_logs.kept_lines(text) == text
    assert tensorflow_logs.kept_lines(START_UP + text) == text  # after the start-up lines too


def test_the_readme_shows_the_quick_starts_lines_as_they_are_printed():
    readme = open(os.path.join(REPO, 'README.md'), encoding='utf-8').read()
    block = readme.split('It logs these lines and no others', 1)[1].split('\n\n', 2)[1]
    shown = [line[4:] for line in block.splitlines() if line.strip() != '...']
    assert len(shown) >= 6, block
    # The README leaves out what differs between machines: '…' is a number.
    printed = [line.replace('… examples/sec', '1125.9 examples/sec').replace(
        '… sec/batch', '0.028 sec/batch').replace('(… s)', '(0.2 s)') for line in shown]
    for line in printed:
        assert any(shape.match(line) for shape in PROJECT_LINES), line
    assert any(PROGRESS_LINE.match(line) for line in printed)


def _dataset_options(graph):
    """(the Options of each OptionsDataset node, the number of iterators) of a graph, its
    functions (a one-shot iterator's _make_dataset) included."""
    from tensorflow.core.framework import dataset_options_pb2
    graph_def = graph.as_graph_def()
    nodes = list(graph_def.node) + [n for f in graph_def.library.function for n in f.node_def]
    options = []
    for node in nodes:
        if node.op == 'OptionsDataset':
            parsed = dataset_options_pb2.Options()
            parsed.ParseFromString(node.attr['serialized_options'].s)
            options.append(parsed)
    iterators = sum(node.op in ('MakeIterator', 'OneShotIterator') for node in graph_def.node)
    return options, iterators


@pytest.mark.parametrize('seed', [None, 1], ids=['one-shot iterator', 'seeded iterator'])
def test_no_input_pipeline_leaves_a_thread_for_session_close_to_wait_on(seed, tmp_path):
    # tf.data's autotuning model thread sleeps up to 60 s between its rounds, and a Session's
    # close joins it, often only at the end of its sleep (a lost wake-up in TensorFlow): the
    # silent minute after the last line. With autotune off in every iterator's options, no such
    # thread is started (tensorflow/core/data/root_dataset.cc), so close has none to wait on.
    from squeezenet_v1.data import datasets
    from squeezenet_v1.training.graph import build_training_graph
    source = datasets.prepare_split('synthetic', 'train', 'unused', str(tmp_path))
    options, iterators = _dataset_options(build_training_graph(source, 8, 0.001, seed).graph)
    assert iterators == 1 and len(options) >= 1
    for each in options:
        assert each.autotune_options.HasField('enabled') and not each.autotune_options.enabled


def test_a_wait_past_its_time_is_announced_once_and_a_short_one_not(caplog):
    from squeezenet_v1 import waits
    said = threading.Event()

    class Said(logging.Handler):
        def emit(self, record):
            said.set()

    handler = Said()
    logging.getLogger('absl').addHandler(handler)
    try:
        with caplog.at_level(logging.INFO, logger='absl'):
            with waits.announced('writing something slow', after_secs=0.01):
                assert said.wait(timeout=60)  # the block lasts until the line has come
            with waits.announced('nothing slow', after_secs=3600):
                pass
    finally:
        logging.getLogger('absl').removeHandler(handler)
    assert caplog.text.count('Still writing something slow (over 0.01 s) ...') == 1
    assert 'nothing slow' not in caplog.text
