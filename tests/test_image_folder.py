"""--dataset=folder: a folder of images per class, of every type and size predict reads."""

import base64
import json
import logging
import os

import numpy as np
import pytest
import tensorflow as tf

from conftest import run_in_process
from squeezenet_v1.data import datasets
from squeezenet_v1.data import image_folder
from squeezenet_v1.data import images as images_lib
from squeezenet_v1.data.errors import DataError
from squeezenet_v1.deploy import predict

_GIF_1X1 = base64.b64decode('R0lGODlhAQABAIAAAP///wAAACH5BAEAAAAALAAAAAABAAEAAAICRAEAOw==')
_WEBP = base64.b64decode('UklGRh4AAABXRUJQVlA4TBEAAAAvB8ABAAdQjyLXo/+BiOh/AAA=')
CLASSES = ('cat', 'dog', 'emu', 'yak')


def _image(kind, seed, size=(40, 50)):
    rng = np.random.RandomState(seed)
    if kind == 'gif':
        return _GIF_1X1
    if kind == 'webp':
        return _WEBP
    if kind == 'cmyk':  # a print shop's JPEG; Pillow comes with tensorboard, a dependency
        import io
        from PIL import Image
        out = io.BytesIO()
        Image.fromarray(rng.randint(0, 256, size=size + (4,)).astype(np.uint8), 'CMYK').save(
            out, 'JPEG')
        return out.getvalue()
    channels = {'gray': 1, 'rgba': 4}.get(kind, 3)
    pixels = tf.constant(rng.randint(0, 256, size=size + (channels,)).astype(np.uint8))
    if kind == 'jpg':
        return tf.io.encode_jpeg(pixels).numpy()
    return tf.io.encode_png(pixels).numpy()


def write_folder(root, per_class=(4, 2),
                 kinds=('png', 'jpg', 'gray', 'rgba', 'gif', 'webp', 'cmyk')):
    """root/train/<class>/ and root/test/<class>/ of mixed formats, sizes and channel counts."""
    written = {}
    for split, count in zip(image_folder.SPLITS, per_class):
        for c, name in enumerate(CLASSES):
            folder = os.path.join(root, split, name)
            os.makedirs(folder)
            for i in range(count):
                kind = kinds[(c + i) % len(kinds)]
                ext = {'gray': 'png', 'rgba': 'png', 'cmyk': 'jpg'}.get(kind, kind)
                path = os.path.join(folder, '%d.%s' % (i, ext))
                with open(path, 'wb') as f:
                    f.write(_image(kind, 31 * c + i, size=(20 + 7 * i, 33 + c)))
                written[path] = c
    return written


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv(datasets.CACHE_DIR_ENV, str(tmp_path / 'cache'))
    return str(tmp_path / 'cache')


def test_images_are_made_exactly_as_predict_makes_them(tmp_path, cache):
    root = str(tmp_path / 'data')
    written = write_folder(root)
    source = datasets.prepare_split('folder', 'train', root, cache)  # every kind is in train
    assert source.label_names == list(CLASSES) and source.num_examples == 16
    images, labels = datasets.split_images(source)
    paths = sorted((p for p in written if '/train/' in p), key=lambda p: (written[p], p))
    expected, errors = predict.load_images(paths)
    assert errors == {}
    np.testing.assert_array_equal(images, np.stack([expected[p] for p in paths]))
    np.testing.assert_array_equal(labels, [written[p] for p in paths])


def test_a_second_run_reads_the_cache_and_a_changed_folder_is_decoded_anew(tmp_path, cache,
                                                                          monkeypatch):
    root = str(tmp_path / 'data')
    write_folder(root)
    first = datasets.prepare_split('folder', 'train', root, cache)
    monkeypatch.setattr(images_lib.ImageDecoder, 'decode',
                        lambda self, path: pytest.fail('decoded again: %s' % path))
    assert datasets.prepare_split('folder', 'train', root, cache) == first
    monkeypatch.undo()
    os.remove(os.path.join(root, 'train', 'cat', '0.png'))
    changed = datasets.prepare_split('folder', 'train', root, cache)
    assert changed.record_files != first.record_files and changed.num_examples == 15


def test_a_file_that_is_not_an_image_is_skipped_with_a_warning_naming_it(tmp_path, cache,
                                                                           caplog):
    root = str(tmp_path / 'data')
    write_folder(root)
    with open(os.path.join(root, 'train', 'dog', 'notes.txt'), 'w') as f:
        f.write('not an image')
    with open(os.path.join(root, 'train', 'dog', 'broken.png'), 'wb') as f:
        f.write(b'\x89PNG\r\n\x1a\nnot really')
    with caplog.at_level(logging.WARNING, logger='absl'):
        source = datasets.prepare_split('folder', 'train', root, cache)
    assert source.num_examples == 16
    assert 'dog/notes.txt is not an image file' in caplog.text
    assert 'dog/broken.png' in caplog.text and 'it is skipped' in caplog.text


@pytest.mark.parametrize('change, message', [
    (lambda r: os.rename(os.path.join(r, 'test'), os.path.join(r, 'val')), 'has no test/ folder'),
    (lambda r: os.makedirs(os.path.join(r, 'train', 'gnu')), 'the class gnu, which'),
    (lambda r: [os.remove(os.path.join(r, 'test', 'emu', n))
                for n in os.listdir(os.path.join(r, 'test', 'emu'))], 'emu holds no image'),
    (lambda r: [os.rename(os.path.join(r, s, 'dog'), os.path.join(r, s, 'Cat'))
                for s in ('train', 'test')], r'differ only in case \(Cat, cat\)'),
], ids=['no_test', 'class_in_one_split', 'empty_class', 'case_clash'])
def test_a_bad_layout_is_one_line_before_anything_is_decoded(tmp_path, cache, change, message,
                                                             monkeypatch):
    root = str(tmp_path / 'data')
    write_folder(root)
    change(root)
    monkeypatch.setattr(images_lib.ImageDecoder, 'decode',
                        lambda self, path: pytest.fail('decoded %s' % path))
    with pytest.raises(DataError, match=message) as raised:
        datasets.prepare_split('folder', 'train', root, cache)
    assert '\n' not in str(raised.value)


def test_one_class_is_not_a_classifier(tmp_path, cache):
    root = tmp_path / 'data'
    for split in image_folder.SPLITS:
        (root / split / 'cat').mkdir(parents=True)
        (root / split / 'cat' / 'a.png').write_bytes(_image('png', 1))
    with pytest.raises(DataError, match='holds 1 class folder; a classifier needs at least 2'):
        datasets.prepare_split('folder', 'train', str(root), cache)


def test_a_folder_too_large_for_the_cache_disk_is_refused(tmp_path, cache, monkeypatch):
    root = str(tmp_path / 'data')
    write_folder(root)
    import collections
    import shutil
    usage = collections.namedtuple('usage', 'total used free')
    monkeypatch.setattr(shutil, 'disk_usage', lambda path: usage(1, 1, 1000))
    with pytest.raises(DataError, match='has 0 MB free. Free space there, or set '
                                        'SQUEEZENET_V1_CACHE_DIR'):
        datasets.prepare_split('folder', 'train', root, cache)


@pytest.mark.slow
def test_a_model_fine_tuned_into_four_folder_classes(tmp_path, cache):
    trained = str(tmp_path / 'cifar_like')
    assert run_in_process('--dataset=synthetic', '--mode=train', '--max_steps=20', '--seed=2',
                          '--model_dir=' + trained) == 0
    root, model_dir = str(tmp_path / 'data'), str(tmp_path / 'finetuned')
    write_folder(root)
    assert run_in_process('--dataset=folder', '--data_dir=' + root, '--mode=train_and_eval',
                          '--max_steps=5', '--save_checkpoints_steps=5', '--batch_size=4',
                          '--warm_start_from=' + trained, '--warm_start_exclude=final_conv',
                          '--model_dir=' + model_dir) == 0
    shapes = dict(tf.compat.v1.train.list_variables(os.path.join(model_dir, 'model.ckpt-5')))
    assert shapes['final_conv/kernel'] == [1, 1, 256, 4]
    with open(os.path.join(model_dir, 'labels.txt')) as f:
        assert f.read().splitlines() == list(CLASSES)
    with open(os.path.join(model_dir, 'flags.json')) as f:
        assert json.load(f)['num_classes'] == 4
    picture = os.path.join(root, 'test', 'yak', '0.png')
    assert run_in_process('--mode=predict', '--model_dir=' + model_dir,
                          '--images=' + picture) == 0
    # The 10-class model cannot resume on 4 classes, nor evaluate them: refused, nothing written.
    assert run_in_process('--dataset=folder', '--data_dir=' + root, '--mode=train',
                          '--max_steps=25', '--model_dir=' + trained) == 1
