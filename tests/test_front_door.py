"""Every input answered: a one-line message or the right behaviour, never a traceback.

run_train.py's runner is driven in this process (TensorFlow starts once) with flags parsed as
the command line would parse them; a traceback here is an exception escaping runner.run.
"""

import functools
import http.server
import json
import logging
import os
import random
import shutil
import subprocess
import sys
import threading
import time

import pytest

from conftest import REPO, make_archive, write_binary_release
from conftest import run_in_process as _run

# Run in this process or with python -m, a command names itself as python -m.
SYNTHETIC = 'python -m squeezenet_v1.data.synthetic'
from squeezenet_v1.data import cifar10
from squeezenet_v1.data import datasets
from squeezenet_v1.data import download
from squeezenet_v1.data import synthetic
from squeezenet_v1.training import memory_check as memory
from squeezenet_v1.model_dir import run_records
from squeezenet_v1.data.errors import DataError



@pytest.fixture(scope='module')
def cache_dir(tmp_path_factory):
    path = str(tmp_path_factory.mktemp('cache'))
    os.environ[datasets.CACHE_DIR_ENV] = path
    yield path
    del os.environ[datasets.CACHE_DIR_ENV]


@pytest.fixture(scope='module')
def trained(tmp_path_factory, cache_dir):
    """A synthetic model_dir trained for 20 steps through the runner."""
    model_dir = str(tmp_path_factory.mktemp('trained') / 'run')
    assert _run('--dataset=synthetic', '--mode=train', '--model_dir=' + model_dir,
                '--max_steps=20', '--seed=1') == 0
    return model_dir




def _runs(model_dir):
    with open(os.path.join(model_dir, run_records.RUNS_FILE)) as f:
        return [json.loads(line) for line in f]


def _copy(model_dir, path):
    shutil.copytree(model_dir, str(path))
    return str(path)


# Provenance and the data set a model_dir was trained on.

def test_eval_and_predict_default_to_the_trained_data_set(trained, tmp_path, caplog):
    model_dir = _copy(trained, tmp_path / 'run')
    with caplog.at_level(logging.INFO, logger='absl'):
        assert _run('--mode=eval', '--model_dir=' + model_dir) == 0  # no --dataset given
    with open(os.path.join(model_dir, 'eval_results.json')) as f:
        results = json.load(f)
    assert results['dataset'] == 'synthetic' and results['num_examples'] == 1000
    assert results['versions']['tensorflow'] and results['versions']['numpy']
    # An explicit other data set is used as asked, with a warning, and recorded as such.
    binary = str(tmp_path / 'data')
    write_binary_release(binary)
    caplog.clear()
    with caplog.at_level(logging.INFO, logger='absl'):
        assert _run('--mode=eval', '--model_dir=' + model_dir, '--dataset=cifar10',
                    '--data_dir=' + binary) == 0
    assert 'was trained on the synthetic set; using --dataset=cifar10 as asked' in caplog.text
    with open(os.path.join(model_dir, 'eval_results.json')) as f:
        assert json.load(f)['dataset'] == 'cifar10'
    assert [r['dataset'] for r in _runs(model_dir)[-2:]] == ['synthetic', 'cifar10']


@pytest.mark.slow
def test_runs_jsonl_records_every_run_and_how_it_ended(trained, tmp_path, caplog):
    model_dir = _copy(trained, tmp_path / 'run')
    with caplog.at_level(logging.INFO, logger='absl'):
        assert _run('--dataset=synthetic', '--mode=train', '--model_dir=' + model_dir,
                    '--max_steps=25', '--learning_rate=0.0005', '--seed=1') == 0
    assert 'other experiment flags than its last training run: --learning_rate: 0.001 -> ' \
           '0.0005' in caplog.text
    assert _run('--mode=train', '--dataset=synthetic', '--model_dir=' + model_dir,
                '--max_steps=200', '--learning_rate=1e30', '--seed=1') == 1
    first, resumed, diverged = _runs(model_dir)
    assert first['mode'] == 'train' and first['ended'] == 'finished'
    assert (first['global_step_at_start'], first['global_step_at_end']) == (0, 20)
    assert (resumed['global_step_at_start'], resumed['global_step_at_end']) == (20, 25)
    assert resumed['flags']['learning_rate'] == 0.0005
    assert diverged['ended'] == 'non_finite_loss' and 'finite' in diverged['message']
    assert diverged['global_step_at_end'] == 25  # the last finite checkpoint stays the latest
    for record in (first, resumed, diverged):
        assert set(record['versions']) == {'python', 'tensorflow', 'numpy', 'absl-py',
                                           'squeezenet_v1'}
        assert record['cpu'] and 'avx512_bf16' in record and 'amx' in record
        assert record['gpus'] == [] and record['started'] <= record['finished']
    # A refused run writes nothing, runs.jsonl included.
    before = os.listdir(model_dir)
    assert _run('--mode=export', '--model_dir=' + model_dir, '--export_dir=' + model_dir) == 1
    assert sorted(os.listdir(model_dir)) == sorted(before) and len(_runs(model_dir)) == 3


@pytest.mark.slow
def test_resuming_with_another_data_set_warns_and_says_labels_change(trained, tmp_path, caplog):
    model_dir = _copy(trained, tmp_path / 'run')
    data_dir = str(tmp_path / 'data')
    write_binary_release(data_dir)
    with caplog.at_level(logging.INFO, logger='absl'):
        assert _run('--mode=train', '--model_dir=' + model_dir, '--data_dir=' + data_dir,
                    '--max_steps=21', '--seed=1') == 0
    assert '--dataset: synthetic -> cifar10' in caplog.text
    assert 'labels.txt now names the new data set' in caplog.text


# Data and downloads.

class _Handler(http.server.SimpleHTTPRequestHandler):
    requests = []

    def log_message(self, *args):
        pass

    def do_GET(self):
        _Handler.requests.append(self.path)
        if self.path.startswith('/drip/'):  # one byte every half second, forever
            self.send_response(200)
            self.send_header('Content-Length', '1000000')
            self.end_headers()
            try:
                while True:
                    self.wfile.write(b'x')
                    self.wfile.flush()
                    time.sleep(0.5)
            except OSError:
                return
        super().do_GET()


@pytest.fixture
def server(tmp_path):
    served = tmp_path / 'served'
    build = str(tmp_path / 'build')
    contents = write_binary_release(build)
    served.mkdir()
    archive = make_archive(build, cifar10.BINARY_DIR, str(served / cifar10.BINARY.archive))
    httpd = http.server.ThreadingHTTPServer(
        ('127.0.0.1', 0), functools.partial(_Handler, directory=str(served)))
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    _Handler.requests = []
    try:
        yield 'http://127.0.0.1:%d/' % httpd.server_address[1], download.file_md5(archive), \
            contents
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_missing_batch_is_restored_by_download_and_the_advice_says_so(server, tmp_path):
    base, md5, contents = server
    data_dir = str(tmp_path / 'data')
    write_binary_release(data_dir)
    folder = os.path.join(data_dir, cifar10.BINARY_DIR)
    os.remove(os.path.join(folder, 'data_batch_3.bin'))
    with open(os.path.join(folder, 'data_batch_1.bin'), 'ab') as f:
        f.write(b'')  # present files stay as they are
    kept = os.stat(os.path.join(folder, 'data_batch_1.bin')).st_mtime_ns
    with pytest.raises(DataError, match='missing data_batch_3.bin. Either run again with '
                                        '--download to fetch cifar-10-binary.tar.gz'):
        datasets.prepare_split('cifar10', 'train', data_dir, str(tmp_path / 'cache'))
    source = datasets.prepare_split('cifar10', 'train', data_dir, str(tmp_path / 'cache'),
                                    download=True, download_url=base + cifar10.BINARY.archive,
                                    download_md5=md5)
    assert source.num_examples == 20
    assert _Handler.requests == ['/' + cifar10.BINARY.archive]
    with open(os.path.join(folder, 'data_batch_3.bin'), 'rb') as f:
        assert f.read()[1:3073] == contents['data_batch_3.bin'][0][0].tobytes()
    assert os.stat(os.path.join(folder, 'data_batch_1.bin')).st_mtime_ns == kept


@pytest.mark.slow
def test_download_has_a_deadline_and_logs_the_lack_of_progress(server, tmp_path, caplog,
                                                              monkeypatch):
    base, _, _ = server
    monkeypatch.setattr(download, '_REPORT_SECS', 1.0)
    with caplog.at_level(logging.INFO, logger='absl'):
        # The server drips a byte every half second for ever: only the deadline ends this.
        with pytest.raises(DataError, match='still incomplete after the 3 s deadline'):
            download.download(base + 'drip/archive.tar.gz', str(tmp_path / 'archive.tar.gz'),
                              deadline_secs=3)
    assert 'Downloading %sdrip/archive.tar.gz:   0.0%%' % base in caplog.text
    assert sorted(os.listdir(str(tmp_path))) == ['build', 'served']  # no partial file left


@pytest.mark.parametrize('url', ['notaurl', 'ftp//nowhere', '/local/path.tar.gz'])
def test_download_url_that_is_not_a_url(tmp_path, url):
    with pytest.raises(DataError, match='--download_url %s is not a URL' % url):
        download.download(url, str(tmp_path / 'x.tar.gz'))
    assert os.listdir(str(tmp_path)) == []


def test_label_names_file_not_utf8(binary_release, tmp_path):
    data_dir, _ = binary_release
    meta = os.path.join(data_dir, cifar10.BINARY_DIR, 'batches.meta.txt')
    with open(meta, 'wb') as f:
        f.write(b'\xff\xfeplane\ncar\n')
    with pytest.raises(DataError, match='batches.meta.txt is not UTF-8 text'):
        datasets.prepare_split('cifar10', 'test', data_dir, str(tmp_path / 'cache'))


def test_batch_size_beyond_memory_is_refused_before_any_graph(tmp_path, caplog):
    model_dir = str(tmp_path / 'run')
    with caplog.at_level(logging.INFO, logger='absl'):
        assert _run('--dataset=synthetic', '--model_dir=' + model_dir,
                    '--batch_size=65536') == 1
    assert '--batch_size=65536 needs about' in caplog.text
    assert 'the largest that fits is about' in caplog.text
    assert not os.path.exists(model_dir)
    with pytest.raises(memory.BatchTooLargeError):
        memory.check_batch_fits(10 ** 7, training=False)
    memory.check_batch_fits(32, training=True)


# The front door, fuzzed: modes x model_dirs x flags, each answered without a traceback.

def _model_dir_variants(trained, root):
    """{name: (path, whether eval/predict/export can work on it)}."""
    os.makedirs(root)
    variants = {'trained': (_copy(trained, os.path.join(root, 'trained')), True)}

    def damaged(name, damage, usable):
        path = _copy(trained, os.path.join(root, name))
        damage(path)
        variants[name] = (path, usable)

    def write(name, content):
        def damage(path):
            with open(os.path.join(path, name), 'wb') as f:
                f.write(content)
        return damage

    def remove_checkpoints(path):
        for name in os.listdir(path):
            if name.startswith('model.ckpt-'):
                os.remove(os.path.join(path, name))

    def truncate_data(path):
        data = os.path.join(path, 'model.ckpt-20.data-00000-of-00001')
        with open(data, 'r+b') as f:
            f.truncate(100)

    damaged('empty_state', write('checkpoint', b''), True)
    damaged('garbage_state', write('checkpoint', b'\x00\xff{{{'), True)
    damaged('garbage_flags', write('flags.json', b'[1, 2'), True)
    damaged('garbage_runs', write('runs.jsonl', b'\xff\n'), True)
    damaged('no_checkpoints', remove_checkpoints, False)
    damaged('truncated', truncate_data, False)
    damaged('glob[1]', lambda path: None, True)
    damaged('new\nline', lambda path: None, True)
    os.symlink(_copy(trained, os.path.join(root, 'target')), os.path.join(root, 'symlink'))
    variants['symlink'] = (os.path.join(root, 'symlink'), True)
    with open(os.path.join(root, 'a_file'), 'w') as f:
        f.write('not a folder')
    variants['a_file'] = (os.path.join(root, 'a_file'), False)
    variants['under_a_file'] = (os.path.join(root, 'a_file', 'run'), False)
    variants['missing'] = (os.path.join(root, 'missing'), False)
    return variants


@pytest.mark.slow
def test_fuzzed_front_door_never_gives_a_traceback(trained, tmp_path, caplog):
    variants = _model_dir_variants(trained, str(tmp_path / 'dirs'))
    images = tmp_path / 'images'
    images.mkdir()
    synthetic.write_png_files(str(images), 2)
    bad_file = tmp_path / 'a_file'
    bad_file.write_text('x')
    mode_flags = {
        'eval': [[]],
        'predict': [['--images=%s' % images], ['--images=%s,%s' % (images, tmp_path / 'nope')],
                    ['--images=%s' % images, '--predictions_json=%s' % tmp_path],
                    ['--images=%s' % images,
                     '--predictions_json=%s' % (tmp_path / 'missing' / 'p.json')]],
        'export': [['--export_dir=%s' % (bad_file / 'export')], ['--export_dir=.'],
                   ['--export_dir=%s' % bad_file]],
        'train': [['--max_steps=20'], ['--max_steps=1', '--batch_size=60000']],
    }
    cases = [(mode, name, extra) for mode in mode_flags for name in variants
             for extra in mode_flags[mode]]
    random.Random(20261125).shuffle(cases)
    for mode, name, extra in cases[:30]:
        path, usable = variants[name]
        caplog.clear()
        args = ['--mode=' + mode, '--model_dir=' + path, '--dataset=synthetic'] + extra
        with caplog.at_level(logging.INFO, logger='absl'):
            status = _run(*args)  # an exception here is the traceback a user would see
        errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
        if _expected(mode, name, usable, ' '.join(extra)) == 'fail':
            assert status != 0 and errors, (args, status)
        else:
            assert status == 0, (args, errors)


def _expected(mode, name, usable, extra):
    if mode == 'train':
        refused = name in ('a_file', 'under_a_file') or 'batch_size=60000' in extra
        return 'fail' if refused else 'ok'  # a damaged or missing model_dir trains anew
    if not usable or mode == 'export' or 'nope' in extra or 'predictions_json' in extra:
        return 'fail'  # every export_dir tried is one an export must refuse
    return 'ok'


@pytest.mark.parametrize('args, message', [
    ([], SYNTHETIC + ': error: missing arguments'),
    (['folder', '--count=many'], "flag --count=many: invalid literal for int()"),
    (['folder', '--count=-3'], 'flag --count=-3: -3 is not an integer in the range [1, 1000]'),
    (['folder', 'other'], SYNTHETIC + ': error: unexpected arguments: other'),
])
def test_python_m_synthetic_usage(tmp_path, args, message, capsys):
    assert synthetic.main(args) == 2
    err = capsys.readouterr().err
    assert message in err and 'usage: python -m squeezenet_v1.data.synthetic FOLDER' in err
    assert os.listdir(str(tmp_path)) == []


def test_synthetic_into_a_file_is_a_message(tmp_path, capsys):
    target = tmp_path / 'a_file'
    target.write_text('x')
    assert synthetic.main([str(target / 'x')]) == 1
    assert SYNTHETIC + ': error: cannot write into' in capsys.readouterr().err


@pytest.mark.parametrize('module, message', [
    ('squeezenet_v1.evaluation.summarize',
     'python -m squeezenet_v1.evaluation.summarize: error: missing arguments'),
    ('squeezenet_v1.data.synthetic', SYNTHETIC + ': error: missing arguments'),
    ('squeezenet_v1.cluster.local_cluster',
     'python -m squeezenet_v1.cluster.local_cluster: error: flags workers=0'),
])
def test_every_small_command_answers_through_python_m(module, message):
    # The TensorFlow-free ones here; golden's and parameters' are in test_golden.py (slow) and
    # test_every_command_is_a_console_script below.
    args = ['--workers=0', '--', '--mode=train'] if 'local_cluster' in module else []
    proc = subprocess.run([sys.executable, '-m', module] + args, cwd=REPO, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 2 and proc.stderr.startswith(message), proc.stderr[-2000:]
    assert 'usage: python -m %s' % module in proc.stderr
    proc = subprocess.run([sys.executable, '-m', module, '--help'], cwd=REPO,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout.startswith('usage: python -m %s' % module)


def test_bad_flags_through_the_real_command_line(tmp_path, caplog):
    assert _run('--mode=predict', '--model_dir=%s' % tmp_path, '--images=x',
                '--predictions_json=%s' % tmp_path) == 1
    assert '--predictions_json %s is a folder' % tmp_path in caplog.text


@pytest.mark.slow
def test_a_healthy_run_prints_no_error_line(trained, tmp_path, cache_dir):
    model_dir = _copy(trained, tmp_path / 'run')
    env = {k: v for k, v in os.environ.items() if k != 'TF_CPP_MIN_LOG_LEVEL'}
    proc = subprocess.run([sys.executable, 'run_train.py', '--mode=eval', '--dataset=synthetic',
                           '--model_dir=' + model_dir], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    errors = [line for line in proc.stderr.splitlines() if line[:1] in 'EF' and line[1:5].isdigit()]
    if os.path.exists('/proc/driver/nvidia/version'):  # a GPU machine: TensorFlow's errors shown
        assert not any('cuInit' in line for line in errors), errors
    else:  # the `tensorflow` wheel's "failed call to cuInit" hidden with the other C++ errors
        assert errors == [], errors


# Install: what the README uses comes with `pip install -e .`.

@pytest.mark.slow
def test_tensorboard_is_installed_with_the_package():
    from importlib import metadata
    assert any(r.startswith('tensorboard') for r in metadata.requires('squeezenet_v1'))
    tensorboard = shutil.which('tensorboard', path=os.path.dirname(sys.executable))
    assert tensorboard, 'pip install -e . should have installed the tensorboard command'
    proc = subprocess.run([tensorboard, '--version'], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0 and proc.stdout.strip()


def test_parameters_prints_the_table_and_refuses_stray_arguments(capsys):
    from squeezenet_v1 import parameters
    assert parameters.main([]) == 0
    assert 'total                                         146,570' in capsys.readouterr().out
    assert parameters.main(['stray']) == 2
    err = capsys.readouterr().err
    assert 'python -m squeezenet_v1.parameters: error: unexpected arguments: stray' in err


def test_every_command_is_a_console_script():
    from importlib import metadata
    scripts = {e.name: e for e in metadata.entry_points(group='console_scripts')
               if e.value.startswith(('squeezenet_v1', 'run_train'))}
    assert sorted(scripts) == ['squeezenet-checkpoint', 'squeezenet-golden',
                               'squeezenet-local-cluster',
                               'squeezenet-parameters', 'squeezenet-summarize',
                               'squeezenet-synthetic', 'squeezenet-train']
    for entry in scripts.values():
        assert callable(entry.load()), entry
        assert shutil.which(entry.name, path=os.path.dirname(sys.executable)), entry.name


# Outputs never replace a user's file; a stopped or refused read leaves a true record; special
# files and silent servers are answered, not waited on.

def test_predictions_json_never_overwrites_a_file_it_did_not_write(trained, tmp_path, caplog):
    model_dir = _copy(trained, tmp_path / 'run')
    images = tmp_path / 'images'
    images.mkdir()
    synthetic.write_png_files(str(images), 1)
    image = os.path.join(str(images), os.listdir(str(images))[0])
    index = os.path.join(model_dir, 'model.ckpt-20.index')
    for target, refusal in ((index, 'exists and is not an earlier output of this command'),
                            (image, "is one of this command's inputs"),
                            (os.path.join(model_dir, 'flags.json'), 'exists and is not an')):
        with open(target, 'rb') as f:
            before = f.read()
        caplog.clear()
        with caplog.at_level(logging.INFO, logger='absl'):
            assert _run('--mode=predict', '--model_dir=' + model_dir, '--images=' + image,
                        '--predictions_json=' + target) == 1
        assert refusal in caplog.text
        with open(target, 'rb') as f:
            assert f.read() == before
    out = str(tmp_path / 'predictions.json')
    for _ in range(2):  # an earlier predictions file is ours to replace
        assert _run('--mode=predict', '--model_dir=' + model_dir, '--images=' + image,
                    '--predictions_json=' + out) == 0


def test_signal_during_eval_ends_with_its_status_and_is_recorded(trained, tmp_path,
                                                                 monkeypatch, caplog):
    import signal
    from squeezenet_v1.evaluation import evaluate
    model_dir = _copy(trained, tmp_path / 'run')
    assert not os.path.exists(os.path.join(model_dir, 'eval_results.json'))
    real_evaluate = evaluate.evaluate

    def evaluate_then_signal(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGTERM)
        return real_evaluate(*args, **kwargs)

    monkeypatch.setattr(evaluate, 'evaluate', evaluate_then_signal)
    with caplog.at_level(logging.INFO, logger='absl'):
        assert _run('--mode=eval', '--model_dir=' + model_dir) == 143
    assert 'Stopped by SIGTERM during --mode=eval' in caplog.text
    assert _runs(model_dir)[-1]['ended'] == 'signal'
    assert not os.path.exists(os.path.join(model_dir, 'eval_results.json'))  # none half-made


def test_refused_reads_leave_no_record_and_unreadable_flags_are_named(tmp_path, caplog):
    from conftest import write_checkpoint_of_output_size
    model_dir = str(tmp_path / 'five')
    os.makedirs(model_dir)
    write_checkpoint_of_output_size(model_dir, 5)
    for mode in ('eval', 'predict'):
        assert _run('--mode=' + mode, '--dataset=synthetic', '--model_dir=' + model_dir,
                    '--images=' + model_dir) == 1
    assert not os.path.exists(os.path.join(model_dir, run_records.RUNS_FILE))
    with open(os.path.join(model_dir, 'flags.json'), 'w') as f:
        f.write('a\nb\n')
    with caplog.at_level(logging.INFO, logger='absl'):
        assert _run('--mode=eval', '--model_dir=' + model_dir) == 1
    assert 'flags.json is unreadable, so the data set' in caplog.text
    assert 'Give --dataset' in caplog.text


def test_special_files_answer_instead_of_hanging(trained, tmp_path, caplog):
    from squeezenet_v1.deploy import predict
    model_dir = _copy(trained, tmp_path / 'run')
    os.mkfifo(os.path.join(str(tmp_path), 'fifo'))
    entries = predict.expand_image_paths(['/dev/zero', str(tmp_path / 'fifo')])
    images, errors = predict.load_images([path for path, _ in entries])
    assert not images
    assert all('is not a plain file' in errors[p] for p in ('/dev/zero', str(tmp_path / 'fifo')))
    os.remove(os.path.join(model_dir, 'checkpoint'))
    os.mkfifo(os.path.join(model_dir, 'checkpoint'))
    assert checkpoints_state(model_dir) == ([], 'it was not a plain file')


def checkpoints_state(model_dir):
    from squeezenet_v1.model_dir import checkpoint_writer
    return checkpoint_writer.read_state(model_dir)


def test_download_deadline_holds_when_the_server_never_answers(tmp_path, monkeypatch):
    import socket
    import urllib.request
    real_open, waits = urllib.request.OpenerDirector.open, []

    def open_url(opener, url, timeout):
        waits.append(timeout)
        return real_open(opener, url, timeout=timeout)

    monkeypatch.setattr(urllib.request.OpenerDirector, 'open', open_url)
    listener = socket.socket()
    listener.bind(('127.0.0.1', 0))
    listener.listen(1)  # accepts connections (the kernel does) and never answers
    try:
        with pytest.raises(DataError, match='still incomplete after the 2 s deadline'):
            download.download('http://127.0.0.1:%d/a.tar.gz' % listener.getsockname()[1],
                              str(tmp_path / 'a.tar.gz'), timeout=3600, deadline_secs=2)
        assert waits == [2]  # no single wait outlasts the deadline, whatever --timeout says
    finally:
        listener.close()
    assert os.listdir(str(tmp_path)) == []


def test_synthetic_class_folders_hold_count_images_of_each_split(tmp_path, capsys):
    folder = tmp_path / 'images'
    assert synthetic.main([str(folder), '--count=40', '--class_folders', '--classes=4']) == 0
    assert capsys.readouterr().out.startswith('80 images in ')
    for split in ('train', 'test'):
        classes = sorted(os.listdir(str(folder / split)))
        assert classes == sorted(synthetic.LABEL_NAMES[:4])
        assert sum(len(os.listdir(str(folder / split / c))) for c in classes) == 40
    # --classes alone would be ignored: it is refused instead.
    assert synthetic.main([str(tmp_path / 'other'), '--classes=2']) == 2
    assert '--classes goes with --class_folders' in capsys.readouterr().err
    assert not (tmp_path / 'other').exists()
