"""Every file read as data and bounded, every path kept where the user sees it, nothing
written through a link: each way in an adversary (or an everyday backup) found, refused.

Each test is one member of a class of inputs; the fuzz tests at the end feed each reader random
and crafted structures and accept only the project's one-line error or a valid result.
"""

import errno
import http.server
import importlib
import io
import json
import logging
import os
import pickle
import struct
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
from absl import flags
from absl.testing import flagsaver
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import REPO, RUN_TRAIN, write_checkpoint_of_output_size
from conftest import run_in_process
from squeezenet_v1.data import cifar10
from squeezenet_v1.data import download
from squeezenet_v1.data.errors import DataError
from squeezenet_v1.data import image_size
from squeezenet_v1.errors import UserError
from squeezenet_v1.files import atomic
from squeezenet_v1.files import reading
from squeezenet_v1.model_dir import checkpoint_writer
from squeezenet_v1.model_dir import claim
from squeezenet_v1.model_dir import run_records

_SETTINGS = dict(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _refusal(*args):
    """What run_train.py's flag parsing answers (in this process), or None when it accepts."""
    importlib.import_module('run_train')
    with flagsaver.flagsaver():
        flags.FLAGS.unparse_flags()
        try:
            flags.FLAGS(['run_train.py'] + list(args))
        except flags.Error as e:
            return str(e)
    return None


# A. A user's path means what it says.

@pytest.mark.parametrize('flag', [
    '--model_dir=file:///tmp/x/run', '--model_dir=gs://bucket/run', '--model_dir=ram://foo',
    '--data_dir=s3://bucket/data', '--export_dir=file:///tmp/x/export',
    '--checkpoint_path=gs://b/model.ckpt-5', '--exported_model=gs://b/model.onnx',
    '--images=a.png,gs://b/c.png', '--predictions_json=file:///tmp/p.json'])
def test_a_path_with_a_url_scheme_is_refused_before_anything_is_written(tmp_path, flag):
    os.chdir(str(tmp_path))
    mode = {'--export_dir': 'export', '--exported_model': 'eval'}.get(flag.split('=')[0], 'predict')
    extra = ['--images=a.png'] if mode == 'predict' and not flag.startswith('--images') else []
    message = _refusal('--mode=' + mode, flag, *extra)
    assert message and 'names a URL' in message and 'local file system' in message, message
    assert os.listdir(str(tmp_path)) == []  # no ./file:/… or ./gs:/… folder


def test_every_command_refuses_a_url_as_its_path(tmp_path):
    for command in (['squeezenet_v1.evaluation.summarize', 'gs://bucket/run'],
                    ['squeezenet_v1.evaluation.summarize', str(tmp_path), '--json=file:///t.json'],
                    ['squeezenet_v1.data.synthetic', 's3://bucket/pngs'],
                    ['squeezenet_v1.golden', 'check', 'gs://bucket/golden']):
        proc = subprocess.run([sys.executable, '-m'] + command, cwd=str(tmp_path),
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode == 2, (command, proc.stderr)
        # The command's own last two lines: the error and the usage (TensorFlow's start-up
        # lines before them are issue 32's).
        error, usage = proc.stderr.strip().splitlines()[-2:]
        assert ': error: ' in error and 'names a URL' in error and usage.startswith('usage: ')
    assert os.listdir(str(tmp_path)) == []


# B. Nothing written through a link into someone else's file.

def test_an_append_to_a_hard_linked_file_breaks_the_link_first(tmp_path, caplog):
    original, snapshot = tmp_path / 'run', tmp_path / 'snap'
    original.mkdir()
    snapshot.mkdir()
    (original / 'runs.jsonl').write_text('{"step": 1}\n')
    os.link(str(original / 'runs.jsonl'), str(snapshot / 'runs.jsonl'))  # cp -al
    with caplog.at_level(logging.WARNING, logger='absl'):
        atomic.append_json_line(str(snapshot / 'runs.jsonl'), {'step': 2})
    assert (original / 'runs.jsonl').read_text() == '{"step": 1}\n'
    assert (snapshot / 'runs.jsonl').read_text() == '{"step": 1}\n{"step": 2}\n'
    assert os.stat(str(snapshot / 'runs.jsonl')).st_nlink == 1
    assert 'was a hard link shared with 1 other names' in caplog.text


@pytest.mark.parametrize('make, message', [
    (lambda p: os.mkfifo(p), 'not a plain file'),
    (lambda p: os.symlink('/etc/hostname', p), 'symbolic link'),
], ids=['fifo', 'symlink'])
def test_an_append_never_blocks_on_a_fifo_or_follows_a_link(tmp_path, make, message):
    path = str(tmp_path / 'runs.jsonl')
    make(path)
    with pytest.raises((UserError, OSError)) as raised:
        atomic.append_json_line(path, {'step': 1})
    assert message in str(raised.value) or raised.value.errno == errno.ENXIO


def test_a_lock_file_hard_linked_into_a_victim_leaves_the_victim_untouched(tmp_path, caplog):
    victim = tmp_path / 'victim.txt'
    victim.write_text('precious\n')
    run = tmp_path / 'run'
    run.mkdir()
    os.link(str(victim), str(run / claim.LOCK_FILE))
    with caplog.at_level(logging.WARNING, logger='absl'):
        with claim.model_dir_lock(str(run)):
            pass
    assert victim.read_text() == 'precious\n'
    assert 'hard link shared with another folder' in caplog.text


def test_a_snapshot_trains_while_its_original_holds_the_shared_lock(tmp_path):
    original, snapshot = tmp_path / 'run', tmp_path / 'snap'
    original.mkdir()
    snapshot.mkdir()
    with claim.model_dir_lock(str(original)):
        os.link(str(original / claim.LOCK_FILE), str(snapshot / claim.LOCK_FILE))  # cp -al
        with claim.model_dir_lock(str(snapshot)):  # another folder's trainer: not "in use"
            pass
        with pytest.raises(claim.ModelDirLockedError, match='is in use'):
            with claim.model_dir_lock(str(original)):  # this folder's trainer: in use
                pass


def test_a_name_set_aside_twice_keeps_both(tmp_path):
    model_dir = str(tmp_path)
    for contents in ('first', 'second'):
        with open(os.path.join(model_dir, 'model.ckpt-5.index'), 'w') as f:
            f.write(contents)
        checkpoint_writer._set_aside(model_dir, 'model.ckpt-5')
    with open(os.path.join(model_dir, 'model.ckpt-5.index.incomplete')) as f:
        assert f.read() == 'first'
    with open(os.path.join(model_dir, 'model.ckpt-5.index.incomplete.1')) as f:
        assert f.read() == 'second'


# C. Every file is read as data: checked by type and bounded by size before it is used.

def _nested_list_pickle(depth):
    """A protocol-2 pickle of {b'data': [[[...]]] (depth deep), b'labels': [0]}, by hand:
    pickle.dumps itself recurses too deep for it."""
    nested = b']' * depth + b'a' * (depth - 1)
    return (b'\x80\x02}C\x04data' + nested + b's' + b'C\x06labels]K\x00as.')


def _shared_lists():
    level = [0]
    for _ in range(7):
        level = [level] * 10  # 10**7 elements to walk, 7 lists to store
    return level


@pytest.mark.parametrize('batch, message', [
    ({b'data': np.zeros((1, 3072), np.uint8), b'labels': [2 ** 70]}, 'outside 0-9'),
    ({b'data': np.zeros((1, 3072), np.uint8), b'labels': [1.7]}, 'not an integer'),
    ({b'data': np.zeros((1, 3072), np.uint8), b'labels': [True]}, 'not an integer'),
    ({b'data': np.zeros((1, 3072), np.uint8), b'labels': [[0]]}, 'not an integer'),
    ({b'data': _shared_lists(), b'labels': [0]}, "b'data' is a list"),
    ({b'data': np.zeros((1, 3072), np.float32), b'labels': [0]}, "b'data' is float32"),
    ({b'data': b'\x00' * 3072, b'labels': [3]}, None),  # raw bytes, as the release allows
], ids=['huge_label', 'float_label', 'bool_label', 'list_label', 'shared_lists', 'float_data',
        'raw_bytes'])
def test_a_python_batch_is_taken_only_as_the_release_stores_it(tmp_path, batch, message):
    path = str(tmp_path / 'data_batch_1')
    with open(path, 'wb') as f:
        pickle.dump(batch, f, protocol=2)
    if message is None:
        images, labels = cifar10.read_python_batch(path)
        assert images.shape == (1, 3072) and list(labels) == [3]
        return
    with pytest.raises(DataError, match=message.replace('[', r'\[')) as raised:
        cifar10.read_python_batch(path)
    assert '\n' not in str(raised.value) and path in str(raised.value)


def test_a_deeply_nested_python_batch_is_one_line(tmp_path):
    path = str(tmp_path / 'data_batch_1')
    with open(path, 'wb') as f:
        f.write(_nested_list_pickle(200000))
    with pytest.raises(DataError, match="b'data' is a list"):
        cifar10.read_python_batch(path)


@pytest.mark.parametrize('names, message', [
    ([b'plane\nship'] + [b'n%d' % i for i in range(9)], 'printable'),
    ([[[b'deep']]] + [b'n%d' % i for i in range(9)], 'not text'),
    ([b'n%d' % i for i in range(9)], '9 class names for 10 classes'),
    ([b'same'] * 10, 'appears more than once'),
    ([u''] + [u'n%d' % i for i in range(9)], 'printable'),
], ids=['newline', 'nested', 'nine', 'repeated', 'empty'])
def test_class_names_are_checked_where_they_are_read(tmp_path, names, message):
    with open(str(tmp_path / 'batches.meta'), 'wb') as f:
        pickle.dump({b'label_names': names}, f, protocol=2)
    with pytest.raises(DataError, match=message) as raised:
        cifar10.read_label_names(str(tmp_path))
    assert '\n' not in str(raised.value) and 'batches.meta' in str(raised.value)


def test_a_labels_txt_with_a_control_character_is_refused_naming_it(tmp_path):
    (tmp_path / 'labels.txt').write_text('cat\x07\ndog\n')
    with pytest.raises(DataError, match='labels.txt: class name 0 .* printable'):
        run_records.model_label_names(str(tmp_path), 'synthetic', str(tmp_path))


def test_a_sparse_giant_batch_is_refused_by_its_size_before_it_is_read(tmp_path):
    path = str(tmp_path / 'test_batch.bin')
    with open(path, 'wb') as f:
        f.truncate(9 * 10 ** 9)  # 9 GB of whole records, 8 KB on disk
    with pytest.raises(DataError, match='larger than such a file can be'):
        cifar10.read_binary_batch(path)


def test_a_sparse_giant_state_file_is_not_read(tmp_path):
    with open(str(tmp_path / 'checkpoint'), 'wb') as f:
        f.truncate(3 * 10 ** 9)
    assert checkpoint_writer.read_state(str(tmp_path)) == (
        [], 'it was larger than a state file can be (%d bytes)' % checkpoint_writer.MAX_STATE_BYTES)


_DEEP_JSON = '[' * 200000 + ']' * 200000


def test_deeply_nested_json_is_invalid_json_in_every_reader(tmp_path):
    path = tmp_path / 'flags.json'
    path.write_text(_DEEP_JSON)
    assert reading.read_plain_json(str(path)) is None
    assert run_records.recorded_flags(str(tmp_path)) == {}
    with pytest.raises(UserError, match='flags.json is unreadable'):
        run_records.recorded_flags(str(tmp_path), required=True)
    (tmp_path / 'eval_history.jsonl').write_text(_DEEP_JSON + '\n')
    assert reading.read_json_lines(str(tmp_path / 'eval_history.jsonl')) == [(1, None)]
    with pytest.raises(ValueError, match='nested too deeply'):
        reading.loads(_DEEP_JSON)


def test_summarize_and_eval_answer_a_deep_json_line_in_one_line(tmp_path):
    run = tmp_path / 'run'
    run.mkdir()
    (run / 'eval_history.jsonl').write_text(_DEEP_JSON + '\n{"a": 1}\n')
    proc = subprocess.run([sys.executable, '-m', 'squeezenet_v1.evaluation.summarize', str(run)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0 and 'Traceback' not in proc.stderr, proc.stderr
    assert len(proc.stderr.strip().splitlines()) <= 2, proc.stderr


def _variables(output_size=10):
    import tensorflow as tf
    from squeezenet_v1 import SqueezeNetModel
    tf1 = tf.compat.v1
    graph = tf.Graph()
    with graph.as_default():
        SqueezeNetModel(32, 24, output_size).model_layers(
            tf1.placeholder(tf.float32, [None, 24, 24, 3]), is_training=False)
        tf1.train.get_or_create_global_step()
        return graph, tf1.global_variables()


def _rewritten(source_prefix, target_prefix, change):
    """A checkpoint of source's tensors after change(dict name -> array)."""
    import tensorflow as tf
    tf1 = tf.compat.v1
    reader = tf1.train.load_checkpoint(source_prefix)
    tensors = {name: reader.get_tensor(name) for name in reader.get_variable_to_shape_map()}
    change(tensors)
    with tf.Graph().as_default():
        variables = {name: tf1.Variable(value, name=name.replace('/', '_'))
                     for name, value in tensors.items()}
        with tf1.Session() as sess:
            sess.run(tf1.global_variables_initializer())
            tf1.train.Saver(variables).save(sess, target_prefix, write_meta_graph=False)
    return target_prefix


@pytest.fixture(scope='module')
def base_checkpoint(tmp_path_factory):
    folder = str(tmp_path_factory.mktemp('base'))
    return write_checkpoint_of_output_size(folder, 10)


def _set(name, value):
    def change(tensors):
        if value is None:
            del tensors[name]
        else:
            tensors[name] = value(tensors[name])
    return change


@pytest.mark.parametrize('change, error, message', [
    (_set('conv1/kernel', lambda v: v.astype(np.float64)), 'CheckpointMismatchError',
     'conv1/kernel is float64 in the checkpoint but float32 in this model'),
    (_set('global_step', None), 'CheckpointContentError', 'holds no global_step'),
    (_set('global_step', lambda v: np.int64(-5)), 'CheckpointContentError',
     'holds global_step -5, not a step count'),
    (_set('fire2/expand1x1/bias', lambda v: v * np.nan), 'CheckpointContentError',
     r'weights that are not finite \(NaN or Inf\) in fire2/expand1x1/bias'),
], ids=['float64', 'no_global_step', 'negative_step', 'nan_weights'])
def test_a_checkpoint_is_checked_as_data_before_a_reader_uses_it(base_checkpoint, tmp_path,
                                                                 change, error, message):
    from squeezenet_v1.model_dir import checkpoints
    bad = _rewritten(base_checkpoint, str(tmp_path / 'model.ckpt-1'), change)
    _, variables = _variables()
    with pytest.raises(getattr(checkpoints, error), match=message):
        checkpoints.global_step_stored_in(bad)  # what every reader asks first
        checkpoints.check_compatible(bad, variables)


def test_eval_of_nan_weights_or_no_global_step_is_one_line_and_writes_nothing(
        base_checkpoint, tmp_path, caplog):
    for name, change in (('nan', _set('conv1/bias', lambda v: v + np.inf)),
                         ('no_step', _set('global_step', None))):
        model_dir = tmp_path / name
        model_dir.mkdir()
        _rewritten(base_checkpoint, str(model_dir / 'model.ckpt-1'), change)
        caplog.clear()
        with caplog.at_level(logging.ERROR, logger='absl'):
            assert run_in_process('--mode=eval', '--dataset=synthetic',
                                  '--model_dir=' + str(model_dir)) == 1
        errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
        assert len(errors) == 1 and '\n' not in errors[0], errors
        assert not (model_dir / 'eval_results.json').exists()
        assert not (model_dir / 'eval_history.jsonl').exists()


def _jpeg_header(width, height, junk=b''):
    app0 = b'\xff\xe0' + struct.pack('>H', 16) + b'JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00'
    sof = b'\xff\xc0' + struct.pack('>HBHHB', 11, 8, height, width, 1) + b'\x01\x11\x00'
    return b'\xff\xd8' + app0 + junk + sof + b'\xff\xda'


def test_the_pixel_guard_reads_a_jpeg_header_the_way_libjpeg_does():
    assert image_size.declared_size(_jpeg_header(12000, 12000)) == (12000, 12000)
    assert image_size.declared_size(_jpeg_header(12000, 12000, junk=b'\x00')) == (12000, 12000)
    with pytest.raises(ValueError, match='declares 12000x12000 pixels'):
        image_size.check_pixels(_jpeg_header(12000, 12000, junk=b'\x00\x17'))
    with pytest.raises(ValueError, match='size cannot be read'):
        image_size.check_pixels(b'\xff\xd8\xff\xe0\x00')  # a JPEG whose header stops short
    image_size.check_pixels(b'not an image at all')  # the decoder says what it is not


# D. Every wait bounded, every resource limit answered.

class _Misbehaving(http.server.BaseHTTPRequestHandler):
    """/drip: a status line, then a header byte every 0.2 s; /endless: a body without end;
    /loop: a redirect to itself. Each stops within 60 s or when the client hangs up."""

    def do_GET(self):
        give_up = time.time() + 60
        try:
            if self.path == '/loop':
                self.send_response(302)
                self.send_header('Location', '/loop')
                self.end_headers()
                return
            self.wfile.write(b'HTTP/1.0 200 OK\r\n')
            if self.path == '/drip':
                while time.time() < give_up:
                    self.wfile.write(b'X')
                    self.wfile.flush()
                    time.sleep(0.2)
            else:
                self.wfile.write(b'\r\n')
                while time.time() < give_up:
                    self.wfile.write(b'\x00' * 65536)
        except OSError:
            pass

    def log_message(self, *args):
        pass


@pytest.fixture
def misbehaving_server():
    httpd = http.server.ThreadingHTTPServer(('127.0.0.1', 0), _Misbehaving)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield 'http://127.0.0.1:%d' % httpd.server_address[1]
    httpd.shutdown()
    httpd.server_close()


def test_the_download_deadline_covers_the_headers(misbehaving_server, tmp_path):
    with pytest.raises(DataError, match='still incomplete after the 2 s deadline'):
        download.download(misbehaving_server + '/drip', str(tmp_path / 'a.tar.gz'),
                          deadline_secs=2)
    assert os.listdir(str(tmp_path)) == []


def test_an_endless_download_stops_past_the_files_size(misbehaving_server, tmp_path):
    with pytest.raises(DataError, match='more than the 1000000 bytes the file has'):
        download.download(misbehaving_server + '/endless', str(tmp_path / 'a.tar.gz'),
                          max_bytes=1000000)
    assert os.listdir(str(tmp_path)) == []


def test_a_redirect_loop_is_one_line(misbehaving_server, tmp_path):
    with pytest.raises(DataError) as raised:
        download.download(misbehaving_server + '/loop', str(tmp_path / 'a.tar.gz'))
    assert 'redirect' in str(raised.value) and '\n' not in str(raised.value)


def test_a_full_disk_during_export_is_one_line_and_leaves_nothing(base_checkpoint, tmp_path,
                                                                   monkeypatch):
    from squeezenet_v1.deploy import export
    model_dir = os.path.dirname(base_checkpoint)
    real = atomic.write_json_atomic

    def full(path, obj):
        if path.endswith(export.SIZE_REPORT_FILE):
            raise OSError(errno.ENOSPC, 'No space left on device', path)
        return real(path, obj)

    monkeypatch.setattr(atomic, 'write_json_atomic', full)
    target = tmp_path / 'export'
    with pytest.raises(export.ExportTargetError, match='is full') as raised:
        export.export(model_dir, str(target), ['c%d' % i for i in range(10)],
                      saved_model_only=True)
    assert '\n' not in str(raised.value)
    assert os.listdir(str(tmp_path)) == []  # no export, no staging folder


def test_the_memory_check_honours_ulimit_v(monkeypatch):
    from squeezenet_v1.training import memory_check
    import resource
    limits = {resource.RLIMIT_AS: (5 * 10 ** 9, resource.RLIM_INFINITY),
              resource.RLIMIT_DATA: (resource.RLIM_INFINITY, resource.RLIM_INFINITY)}
    monkeypatch.setattr(resource, 'getrlimit', lambda which: limits[which])
    monkeypatch.setattr(memory_check, '_mapped_bytes', lambda field='VmSize': 2 * 10 ** 9)
    assert memory_check.available_bytes() <= 3 * 10 ** 9
    with pytest.raises(memory_check.BatchTooLargeError, match='--batch_size=8192 needs about'):
        memory_check.check_batch_fits(8192, training=True)
    memory_check.check_batch_fits(32, training=True)


def test_a_run_under_ulimit_v_is_refused_before_any_file(tmp_path):
    import resource
    model_dir = tmp_path / 'run'

    def limit():
        resource.setrlimit(resource.RLIMIT_AS, (5 * 10 ** 9, 5 * 10 ** 9))

    proc = subprocess.run([sys.executable, RUN_TRAIN, '--dataset=synthetic', '--max_steps=2',
                           '--batch_size=8192', '--model_dir=' + str(model_dir)], cwd=REPO,
                          preexec_fn=limit, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert '--batch_size=8192 needs about' in proc.stderr
    assert not model_dir.exists()


def test_a_malformed_bracketed_address_in_tf_config_is_refused():
    from squeezenet_v1.cluster import tf_config
    config = {'cluster': {'ps': ['[::1:23458'], 'worker': ['127.0.0.1:2', '127.0.0.1:3']},
              'task': {'type': 'worker', 'index': 0}}
    with pytest.raises(tf_config.ClusterConfigError, match='is not "host:port"'):
        tf_config.parse(json.dumps(config))


# Each reader fuzzed: random and crafted structures give a valid result or the one-line error.

_NAMES = st.recursive(st.one_of(st.binary(max_size=12), st.text(max_size=12), st.integers(),
                                st.none(), st.floats()),
                      lambda inner: st.lists(inner, max_size=12), max_leaves=40)


@settings(max_examples=60, **_SETTINGS)
@given(names=st.one_of(_NAMES, st.lists(st.text(min_size=1, max_size=10), min_size=10,
                                        max_size=10)))
def test_fuzzed_class_names_give_names_or_a_data_error(tmp_path_factory, names):
    folder = tmp_path_factory.mktemp('names')
    with open(str(folder / 'batches.meta'), 'wb') as f:
        pickle.dump({b'label_names': names}, f, protocol=2)
    try:
        checked = cifar10.read_label_names(str(folder))
    except DataError as e:
        assert '\n' not in str(e)
        return
    assert len(checked) == 10 and all(n.isprintable() and n for n in checked)


@settings(max_examples=60, **_SETTINGS)
@given(text=st.text(max_size=300))
def test_fuzzed_names_file_gives_names_or_a_data_error(tmp_path_factory, text):
    folder = tmp_path_factory.mktemp('names_txt')
    (folder / 'batches.meta.txt').write_bytes(text.encode('utf-8', 'replace'))
    try:
        checked = cifar10.read_label_names(str(folder))
    except DataError as e:
        assert '\n' not in str(e)
        return
    assert len(checked) == 10


_STATE_LINE = st.one_of(
    st.builds(lambda n: 'model_checkpoint_path: "model.ckpt-%d"' % n, st.integers(-5, 10 ** 12)),
    st.builds(lambda n: 'all_model_checkpoint_paths: "%s"' % n,
              st.sampled_from(['model.ckpt-1', '../x/model.ckpt-2', '/abs/model.ckpt-3', ''])),
    st.text(max_size=40))


@settings(max_examples=60, **_SETTINGS)
@given(lines=st.lists(_STATE_LINE, max_size=6))
def test_fuzzed_state_file_gives_names_or_a_reason(tmp_path_factory, lines):
    folder = str(tmp_path_factory.mktemp('state'))
    with open(os.path.join(folder, 'checkpoint'), 'w', encoding='utf-8', errors='replace') as f:
        f.write('\n'.join(lines))
    names, problem = checkpoint_writer.read_state(folder)
    assert (names and problem is None) or (names == [] and isinstance(problem, str))


_JSON = st.recursive(st.one_of(st.none(), st.booleans(), st.integers(), st.floats(),
                               st.text(max_size=8)),
                     lambda inner: st.one_of(st.lists(inner, max_size=5),
                                             st.dictionaries(st.text(max_size=8), inner,
                                                             max_size=5)), max_leaves=30)
_CRAFTED_JSON = st.one_of(
    _JSON.map(json.dumps),
    st.integers(1, 5000).map(lambda depth: '[' * depth + ']' * depth),
    st.integers(1, 5000).map(lambda depth: '{"a":' * depth + '1' + '}' * depth),
    st.text(max_size=50))


@settings(max_examples=80, **_SETTINGS)
@given(text=_CRAFTED_JSON)
def test_fuzzed_json_files_give_a_value_or_none_in_every_reader(tmp_path_factory, text):
    folder = tmp_path_factory.mktemp('json')
    (folder / 'flags.json').write_text(text)
    (folder / 'eval_history.jsonl').write_text(text + '\n')
    value = reading.read_plain_json(str(folder / 'flags.json'))
    assert value is None or json.dumps(value) is not None
    assert isinstance(run_records.recorded_flags(str(folder)), dict)
    lines = reading.read_json_lines(str(folder / 'eval_history.jsonl'))
    assert len(lines) <= (text + '\n').count('\n') and all(
        isinstance(number, int) for number, _ in lines)


_MAGICS = st.sampled_from([b'\x89PNG\r\n\x1a\n', b'GIF89a', b'BM', b'\xff\xd8',
                           b'RIFF\x00\x00\x00\x00WEBP', b''])


@settings(max_examples=150, **_SETTINGS)
@given(magic=_MAGICS, rest=st.binary(max_size=64), size=st.tuples(st.integers(0, 65535),
                                                                   st.integers(0, 65535)))
def test_fuzzed_image_headers_pass_or_give_a_reason(magic, rest, size):
    for contents in (magic + rest, _jpeg_header(*size, junk=rest[:3])):
        try:
            image_size.check_pixels(contents)
        except ValueError as e:
            assert str(e) and '\n' not in str(e)


@pytest.mark.filterwarnings('error::pytest.PytestUnraisableExceptionWarning')
@settings(max_examples=60, **_SETTINGS)
@given(data=st.one_of(_JSON, st.binary(max_size=64), st.integers(1, 3).map(
    lambda n: np.zeros((n, 3072), np.uint8))),
       labels=st.one_of(_JSON, st.lists(st.integers(-2 ** 80, 2 ** 80), max_size=4)))
def test_fuzzed_python_batch_structures_give_data_or_a_data_error(tmp_path_factory, data, labels):
    path = str(tmp_path_factory.mktemp('batch') / 'data_batch_1')
    with open(path, 'wb') as f:
        pickle.dump({b'data': data, b'labels': labels}, f, protocol=2)
    try:
        images, checked = cifar10.read_python_batch(path)
    except DataError as e:
        assert '\n' not in str(e)
        return
    assert images.shape == (len(checked), 3072) and checked.max() <= 9


def test_a_fifo_among_a_checkpoints_files_makes_it_incomplete_without_blocking(tmp_path):
    from squeezenet_v1.model_dir import checkpoints
    os.mkfifo(str(tmp_path / 'model.ckpt-5.index'))
    os.mkfifo(str(tmp_path / 'model.ckpt-5.data-00000-of-00001'))
    assert checkpoints.scan(str(tmp_path)).incomplete == {
        'model.ckpt-5': 'model.ckpt-5.data-00000-of-00001 is not a plain file'}


def test_an_archive_declaring_more_than_a_release_is_refused_before_extracting(tmp_path,
                                                                              monkeypatch):
    import tarfile
    # A gigabyte of zeros packs into a megabyte: the bound is lowered, not the file raised.
    monkeypatch.setattr(download, '_MAX_UNPACKED_BYTES', 1000)
    archive = str(tmp_path / 'cifar-10-binary.tar.gz')
    with tarfile.open(archive, 'w:gz') as tar:
        member = tarfile.TarInfo('cifar-10-batches-bin/data_batch_1.bin')
        member.size = 2000
        tar.addfile(member, io.BytesIO(b'\x00' * 2000))
    with pytest.raises(DataError, match='unpacks to 2000 bytes'):
        download.extract_archive(archive, str(tmp_path), 'cifar-10-batches-bin')
    assert sorted(os.listdir(str(tmp_path))) == ['cifar-10-binary.tar.gz']


@pytest.fixture(scope='module')
def trained_run(tmp_path_factory):
    model_dir = str(tmp_path_factory.mktemp('trained') / 'run')
    assert run_in_process('--dataset=synthetic', '--mode=train_and_eval', '--max_steps=10',
                          '--save_checkpoints_steps=10', '--seed=3',
                          '--model_dir=' + model_dir) == 0
    return model_dir


def _contents(folder):
    return {name: open(os.path.join(folder, name), 'rb').read()
            for name in sorted(os.listdir(folder))
            if os.path.isfile(os.path.join(folder, name)) and not name.startswith('events')}


@pytest.mark.slow
def test_evaluating_and_training_a_cp_al_snapshot_leaves_the_original_as_it_was(trained_run,
                                                                                tmp_path):
    original = str(tmp_path / 'run')
    subprocess.run(['cp', '-a', trained_run, original], check=True)
    snapshot = str(tmp_path / 'snap')
    subprocess.run(['cp', '-al', original, snapshot], check=True)
    before = _contents(original)
    assert run_in_process('--mode=eval', '--model_dir=' + snapshot) == 0
    assert run_in_process('--dataset=synthetic', '--mode=train_and_eval', '--max_steps=20',
                          '--save_checkpoints_steps=10', '--seed=3',
                          '--model_dir=' + snapshot) == 0
    assert _contents(original) == before
    with open(os.path.join(snapshot, run_records.RUNS_FILE)) as f:
        assert len(f.readlines()) == 3  # the original's train_and_eval, then eval and train


def test_a_fifo_in_place_of_runs_jsonl_neither_hangs_nor_fails_the_evaluation(trained_run,
                                                                             tmp_path, caplog):
    model_dir = str(tmp_path / 'run')
    subprocess.run(['cp', '-a', trained_run, model_dir], check=True)
    os.remove(os.path.join(model_dir, run_records.RUNS_FILE))
    os.mkfifo(os.path.join(model_dir, run_records.RUNS_FILE))
    with caplog.at_level(logging.WARNING, logger='absl'):
        assert run_in_process('--mode=eval', '--model_dir=' + model_dir) == 0
    assert 'the run is not recorded' in caplog.text.lower()
    os.remove(os.path.join(model_dir, run_records.EVAL_HISTORY_FILE))
    os.mkfifo(os.path.join(model_dir, run_records.EVAL_HISTORY_FILE))
    caplog.clear()
    with caplog.at_level(logging.ERROR, logger='absl'):
        assert run_in_process('--mode=eval', '--model_dir=' + model_dir) == 1
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and 'eval_history.jsonl is not a plain file' in errors[0], errors


def test_a_pickle_asking_codecs_for_another_codec_is_refused(tmp_path):
    import codecs

    class _Hex(object):
        def __reduce__(self):
            return codecs.encode, ('ab', 'hex')  # nested, each level doubles its input

    path = str(tmp_path / 'data_batch_1')
    with open(path, 'wb') as f:
        pickle.dump({b'data': _Hex(), b'labels': [0]}, f, protocol=2)
    with pytest.raises(DataError, match="refusing codecs.encode with 'hex'"):
        cifar10.read_python_batch(path)


def test_a_stuffed_zero_hides_no_frame_from_the_pixel_guard():
    big = b'\xff\xc0' + struct.pack('>HBHHB', 11, 8, 7000, 9000, 1) + b'\x01\x11\x00'
    decoy = b'\xff\xe1' + struct.pack('>H', 13) + b'\xff\xc0' + struct.pack('>HBHHB', 11, 8, 32,
                                                                              32, 1)
    contents = b'\xff\xd8\xff\x00' + big + decoy + b'\xff\xda'
    assert image_size.declared_size(contents) == (9000, 7000)
    with pytest.raises(ValueError, match='declares 9000x7000 pixels'):
        image_size.check_pixels(contents)
