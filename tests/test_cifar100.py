"""CIFAR-100, fine and coarse, from both official layouts: tiny releases built here by hand."""

import functools
import http.server
import os
import pickle
import threading

import numpy as np
import pytest
import tensorflow as tf

from conftest import make_archive, run_in_process
from squeezenet_v1.data import datasets
from squeezenet_v1.data import download
from squeezenet_v1.data.errors import DataError

FINE = ['fine%02d' % i for i in range(100)]
COARSE = ['coarse%02d' % i for i in range(20)]


def _split(num, seed):
    rng = np.random.RandomState(seed)
    images = rng.randint(0, 256, size=(num, 3072)).astype(np.uint8)
    fine = (np.arange(num) * 7 % 100).astype(np.uint8)
    return images, fine, (fine // 5).astype(np.uint8)


def write_cifar100_python(data_dir, train=6, test=5):
    folder = os.path.join(data_dir, 'cifar-100-python')
    os.makedirs(folder)
    contents = {}
    for name, num, seed in (('train', train, 1), ('test', test, 2)):
        images, fine, coarse = _split(num, seed)
        with open(os.path.join(folder, name), 'wb') as f:
            pickle.dump({b'data': images, b'fine_labels': [int(x) for x in fine],
                         b'coarse_labels': [int(x) for x in coarse],
                         b'filenames': [b'x.png'] * num}, f, protocol=2)
        contents[name] = images, fine, coarse
    with open(os.path.join(folder, 'meta'), 'wb') as f:
        pickle.dump({b'fine_label_names': [n.encode() for n in FINE],
                     b'coarse_label_names': [n.encode() for n in COARSE]}, f, protocol=2)
    return contents


def write_cifar100_binary(data_dir, train=6, test=5):
    folder = os.path.join(data_dir, 'cifar-100-binary')
    os.makedirs(folder)
    contents = {}
    for name, num, seed in (('train', train, 3), ('test', test, 4)):
        images, fine, coarse = _split(num, seed)
        records = np.concatenate([coarse[:, None], fine[:, None], images], axis=1)
        with open(os.path.join(folder, name + '.bin'), 'wb') as f:
            f.write(records.tobytes())
        contents[name] = images, fine, coarse
    for kind, names in (('fine', FINE), ('coarse', COARSE)):
        with open(os.path.join(folder, '%s_label_names.txt' % kind), 'w') as f:
            f.write('\n'.join(names) + '\n')
    return contents


def _records(source):
    return datasets.split_images(source)


@pytest.mark.parametrize('write', [write_cifar100_python, write_cifar100_binary],
                         ids=['python', 'binary'])
@pytest.mark.parametrize('dataset, names, column', [('cifar100', FINE, 1),
                                                    ('cifar100_coarse', COARSE, 2)],
                         ids=['fine', 'coarse'])
def test_each_layout_reads_exact_pixels_labels_and_the_releases_names(tmp_path, write, dataset,
                                                                      names, column):
    data_dir = str(tmp_path / 'data')
    contents = write(data_dir)
    for split in ('train', 'test'):
        source = datasets.prepare_split(dataset, split, data_dir, str(tmp_path / 'cache'))
        images, labels = _records(source)
        expected = contents['train' if split == 'train' else 'test']
        planes = expected[0].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
        np.testing.assert_array_equal(images, planes)
        np.testing.assert_array_equal(labels, expected[column])
        assert source.label_names == names and source.num_examples == len(labels)
    assert datasets.label_names(dataset, data_dir) == names


def test_an_archive_in_data_dir_is_checked_against_the_official_md5(tmp_path):
    build, data_dir = str(tmp_path / 'build'), tmp_path / 'data'
    write_cifar100_binary(build)
    data_dir.mkdir()
    make_archive(build, 'cifar-100-binary', str(data_dir / 'cifar-100-binary.tar.gz'))
    with pytest.raises(DataError, match='cifar-100-binary.tar.gz: md5 .* does not match the '
                                        'official 03b5dce01913d631647c71ecec9e9cb8'):
        datasets.prepare_split('cifar100', 'train', str(data_dir), str(tmp_path / 'cache'))


def test_download_fetches_the_binary_archive(tmp_path):
    build, served = str(tmp_path / 'build'), tmp_path / 'served'
    write_cifar100_binary(build)
    served.mkdir()
    archive = make_archive(build, 'cifar-100-binary', str(served / 'cifar-100-binary.tar.gz'))
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    httpd = http.server.ThreadingHTTPServer(('127.0.0.1', 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        source = datasets.prepare_split(
            'cifar100_coarse', 'test', str(tmp_path / 'data'), str(tmp_path / 'cache'),
            download=True, download_md5=download.file_md5(archive),
            download_url='http://127.0.0.1:%d/cifar-100-binary.tar.gz' % httpd.server_address[1])
    finally:
        httpd.shutdown()
        httpd.server_close()
    assert source.num_examples == 5 and source.label_names == COARSE


def test_no_cifar100_says_how_to_get_it(tmp_path):
    with pytest.raises(DataError, match='no CIFAR-100 in .*cifar-100-binary/ or '
                                        'cifar-100-python/.*--download'):
        datasets.prepare_split('cifar100', 'train', str(tmp_path), str(tmp_path / 'cache'))


@pytest.mark.parametrize('damage, message', [
    (lambda f: open(os.path.join(f, 'train.bin'), 'ab').write(b'x'), 'not a whole number'),
    (lambda f: open(os.path.join(f, 'fine_label_names.txt'), 'a').write('extra\n'),
     '101 class names for 100 classes'),
    (lambda f: os.remove(os.path.join(f, 'test.bin')), 'missing test.bin'),
], ids=['truncated', 'names', 'missing_split'])
def test_a_damaged_binary_release_is_one_line(tmp_path, damage, message):
    data_dir = str(tmp_path / 'data')
    write_cifar100_binary(data_dir)
    damage(os.path.join(data_dir, 'cifar-100-binary'))
    with pytest.raises(DataError, match=message):
        for split in ('train', 'test'):
            datasets.prepare_split('cifar100', split, data_dir, str(tmp_path / 'cache'))


@pytest.mark.slow
@pytest.mark.parametrize('dataset, classes, names', [('cifar100', 100, FINE),
                                                     ('cifar100_coarse', 20, COARSE)],
                         ids=['fine', 'coarse'])
def test_a_run_is_sized_to_the_data_sets_classes(tmp_path, monkeypatch, dataset, classes, names):
    monkeypatch.setenv(datasets.CACHE_DIR_ENV, str(tmp_path / 'cache'))
    data_dir, model_dir = str(tmp_path / 'data'), str(tmp_path / 'run')
    write_cifar100_python(data_dir, train=40, test=10)
    assert run_in_process('--dataset=' + dataset, '--data_dir=' + data_dir, '--max_steps=2',
                          '--batch_size=4', '--save_checkpoints_steps=2',
                          '--model_dir=' + model_dir) == 0
    shapes = dict(tf.compat.v1.train.list_variables(os.path.join(model_dir, 'model.ckpt-2')))
    assert shapes['final_conv/kernel'] == [1, 1, 256, classes]
    with open(os.path.join(model_dir, 'labels.txt')) as f:
        assert f.read().splitlines() == names
    # eval reads the data set the model_dir recorded; another class count is refused.
    assert run_in_process('--mode=eval', '--data_dir=' + data_dir, '--model_dir=' + model_dir) == 0
    other = 'cifar100_coarse' if dataset == 'cifar100' else 'cifar100'
    assert run_in_process('--mode=eval', '--dataset=' + other, '--data_dir=' + data_dir,
                          '--model_dir=' + model_dir) == 1
    assert run_in_process('--mode=train', '--dataset=' + other, '--data_dir=' + data_dir,
                          '--max_steps=3', '--model_dir=' + model_dir) == 1
