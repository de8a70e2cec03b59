"""--download against a server on 127.0.0.1: progress, verification, nothing half-written."""

import functools
import http.server
import logging
import os
import re
import threading

import pytest

from conftest import make_archive, run_in_process, write_binary_release
from squeezenet_v1.data import cifar10
from squeezenet_v1.data import datasets
from squeezenet_v1.data import download
from squeezenet_v1.data.errors import DataError


class _TruncatingHandler(http.server.SimpleHTTPRequestHandler):
    """Serves files; /cut/<name> announces the full length but sends half, then hangs up."""

    def do_GET(self):
        if self.path.startswith('/cut/'):
            path = os.path.join(self.directory, self.path[len('/cut/'):])
            with open(path, 'rb') as f:
                data = f.read()
            self.send_response(200)
            self.send_header('Content-Length', str(len(data)))
            self.end_headers()
            self.wfile.write(data[:len(data) // 2])
            self.close_connection = True
            return
        super().do_GET()

    def log_message(self, *args):
        pass


@pytest.fixture
def server(tmp_path):
    """A local HTTP server over a folder holding a tiny cifar-10-binary.tar.gz."""
    served = tmp_path / 'served'
    build = str(tmp_path / 'build')
    write_binary_release(build)
    served.mkdir()
    archive = make_archive(build, cifar10.BINARY_DIR, str(served / cifar10.BINARY.archive))
    handler = functools.partial(_TruncatingHandler, directory=str(served))
    httpd = http.server.ThreadingHTTPServer(('127.0.0.1', 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield 'http://127.0.0.1:%d/' % httpd.server_address[1], download.file_md5(archive)
    httpd.shutdown()
    httpd.server_close()


def test_download_fetches_verifies_extracts_with_progress(server, tmp_path, caplog):
    base, md5 = server
    data_dir = tmp_path / 'data'
    with caplog.at_level(logging.INFO, logger='absl'):
        source = datasets.prepare_split('cifar10', 'train', str(data_dir), str(tmp_path),
                                        download=True, download_url=base + cifar10.BINARY.archive,
                                        download_md5=md5)
    assert source.num_examples == 20
    assert sorted(os.listdir(data_dir)) == [cifar10.BINARY_DIR, cifar10.BINARY.archive]
    assert any('100.0%' in r.getMessage() for r in caplog.records)
    # The data is now in place: a second start needs no server.
    assert datasets.prepare_split('cifar10', 'test', str(data_dir), str(tmp_path)).num_examples == 5


def test_download_with_wrong_checksum_leaves_nothing(server, tmp_path):
    base, _ = server
    data_dir = tmp_path / 'data'
    with pytest.raises(DataError, match='md5 .* does not match'):
        datasets.prepare_split('cifar10', 'train', str(data_dir), str(tmp_path), download=True,
                               download_url=base + cifar10.BINARY.archive,
                               download_md5='0' * 32)
    assert os.listdir(data_dir) == []


def test_download_cut_short_leaves_nothing(server, tmp_path):
    base, md5 = server
    data_dir = tmp_path / 'data'
    with pytest.raises(DataError, match='downloading .*/cut/cifar-10-binary.tar.gz failed'):
        datasets.prepare_split('cifar10', 'train', str(data_dir), str(tmp_path), download=True,
                               download_url=base + 'cut/' + cifar10.BINARY.archive,
                               download_md5=md5)
    assert os.listdir(data_dir) == []


def test_download_of_missing_url_names_it(server, tmp_path):
    base, md5 = server
    with pytest.raises(DataError, match='downloading .*nothing.tar.gz failed \\(HTTP Error 404'):
        download.download(base + 'nothing.tar.gz', str(tmp_path / 'x.tar.gz'), md5)
    assert not [n for n in os.listdir(tmp_path) if n.startswith('x.tar.gz')]


def test_download_from_a_file_url(tmp_path):
    source = tmp_path / 'source.bin'
    source.write_bytes(b'abc' * 1000)
    target = download.download('file://' + str(source), str(tmp_path / 'copy.bin'),
                               download.file_md5(str(source)))
    assert open(target, 'rb').read() == b'abc' * 1000


def test_mode_download_fetches_checks_and_says_what_it_holds(server, tmp_path, caplog,
                                                             monkeypatch):
    base, md5 = server
    # The tiny archive served here has its own md5, which the official release's stands for.
    monkeypatch.setattr(cifar10.BINARY, 'md5', md5)
    model_dir, data_dir = tmp_path / 'never_made', tmp_path / 'data'
    with caplog.at_level(logging.INFO, logger='absl'):
        status = run_in_process('--mode=download', '--data_dir=%s' % data_dir,
                                '--download_url=' + base + cifar10.BINARY.archive,
                                '--model_dir=%s' % model_dir)
    assert status == 0, caplog.text[-3000:]
    assert os.path.isdir(str(data_dir / cifar10.BINARY_DIR))
    assert not model_dir.exists()  # nothing trained, nothing recorded
    assert re.search(r'cifar10 \(in %s\): train \d+ images, test \d+ images; 10 classes: '
                     r'airplane, automobile, .*\. Ready to train\.' % re.escape(str(data_dir)),
                     caplog.text), caplog.text[-2000:]
    caplog.clear()
    with caplog.at_level(logging.INFO, logger='absl'):  # found this time, not fetched again
        assert run_in_process('--mode=download', '--data_dir=%s' % data_dir,
                              '--download_url=http://127.0.0.1:9/nothing.tar.gz',
                              '--model_dir=%s' % model_dir) == 0
    assert 'Ready to train.' in caplog.text and not model_dir.exists()


def test_mode_download_of_a_missing_set_with_no_server_is_one_line(tmp_path, caplog):
    with caplog.at_level(logging.ERROR, logger='absl'):
        status = run_in_process('--mode=download', '--data_dir=%s' % (tmp_path / 'data'),
                                '--download_url=http://127.0.0.1:9/cifar-10-binary.tar.gz',
                                '--download_deadline_secs=5',
                                '--model_dir=%s' % (tmp_path / 'never_made'))
    assert status == 1
    assert 'cifar-10-binary.tar.gz' in caplog.text and not (tmp_path / 'never_made').exists()
