"""CIFAR-10's official formats: hand-built records read back exactly, and every bad input."""

import os
import pickle

import numpy as np
import pytest
import tensorflow as tf

from conftest import make_archive, write_binary_release, write_python_release
from squeezenet_v1.data import cifar10
from squeezenet_v1.data import datasets
from squeezenet_v1.data import input_pipeline
from squeezenet_v1.data import synthetic
from squeezenet_v1.data.errors import DataError
from squeezenet_v1.model import new_model

tf1 = tf.compat.v1


def _read_all(record_files, batch_size=3, is_training=False):
    """Every (image, label) the notebook's pipeline yields, as numpy arrays."""
    with tf.Graph().as_default():
        images, labels = input_pipeline.input_fn(record_files, new_model(10), is_training,
                                                 batch_size)
        out_images, out_labels = [], []
        with tf1.Session() as sess:
            while True:
                try:
                    i, l = sess.run([images, labels])
                except tf.errors.OutOfRangeError:
                    break
                out_images.append(i)
                out_labels.append(l)
    return np.concatenate(out_images), np.concatenate(out_labels)


def _read_all_batched(record_files, batch_size):
    """Every (image, label) the Evaluator reads: the split's batches through preprocess_batch."""
    with tf.Graph().as_default():
        records = tf1.placeholder(tf.uint8, [None, cifar10.IMAGE_BYTES])
        images = input_pipeline.preprocess_batch(new_model(10), records)
        out_images, out_labels = [], []
        with tf1.Session() as sess:
            split = input_pipeline.read_evaluation_split(record_files, 10)
            for batch, labels in input_pipeline.evaluation_batches(split, batch_size):
                out_images.append(sess.run(images, {records: batch}))
                out_labels.append(labels)
    return np.concatenate(out_images), np.concatenate(out_labels)


def _standardized_centre(image_bytes):
    hwc = image_bytes.reshape(3, 32, 32).transpose(1, 2, 0).astype(np.float64)[4:28, 4:28]
    return (hwc - hwc.mean()) / max(hwc.std(), 1 / np.sqrt(hwc.size))


def test_binary_records_read_back_with_exact_labels_and_pixels(binary_release, tmp_path):
    data_dir, contents = binary_release
    source = datasets.prepare_split('cifar10', 'test', data_dir, str(tmp_path))
    images, labels = contents['test_batch.bin']
    assert source.num_examples == 5 and source.label_names[0] == 'airplane'
    got_images, got_labels = _read_all(source.record_files)   # 5 records, batches of 3 + 2
    assert got_labels.dtype == np.int32 and got_labels.shape == (5,)
    np.testing.assert_array_equal(got_labels, labels)
    for k in range(5):
        np.testing.assert_allclose(got_images[k], _standardized_centre(images[k]), atol=1e-4)


def test_reader_keeps_plane_order_red_green_blue(tmp_path):
    image = np.zeros((3, 32, 32), np.uint8)
    image[0, 0, 0], image[1, 0, 1], image[2, 31, 31] = 10, 20, 30
    path = cifar10.write_binary_batch(str(tmp_path / 'one.bin'), image.reshape(1, -1), [7])
    images, labels = cifar10.read_binary_batch(path)
    assert labels.tolist() == [7]
    hwc = images[0].reshape(3, 32, 32).transpose(1, 2, 0)
    assert (hwc[0, 0, 0], hwc[0, 1, 1], hwc[31, 31, 2]) == (10, 20, 30)
    assert os.path.getsize(path) == 3073


@pytest.mark.parametrize('batch_size', [1, 300, 500])
def test_batched_evaluation_input_is_the_notebooks_bit_for_bit(tmp_path, batch_size):
    # The Evaluator's vectorized preprocessing must not move a single bit of any image, with a
    # partial last batch (300) and without (500, 1).
    source = datasets.prepare_split('synthetic', 'test', 'data', str(tmp_path))
    files = source.record_files[:1] if batch_size > 1 else [_first_records(source, tmp_path, 7)]
    notebook = _read_all(files, batch_size)
    batched = _read_all_batched(files, batch_size)
    assert len(batched[1]) == (1000 if batch_size > 1 else 7)
    assert batched[0].dtype == notebook[0].dtype and batched[1].dtype == notebook[1].dtype
    np.testing.assert_array_equal(batched[1], notebook[1])
    np.testing.assert_array_equal(batched[0], notebook[0])


def _first_records(source, tmp_path, count):
    with open(source.record_files[0], 'rb') as f:
        head = f.read(count * cifar10.RECORD_BYTES)
    path = str(tmp_path / 'head.bin')
    with open(path, 'wb') as f:
        f.write(head)
    return path


def test_training_pipeline_shapes_and_sparse_int32_labels(binary_release, tmp_path):
    data_dir, _ = binary_release
    source = datasets.prepare_split('cifar10', 'train', data_dir, str(tmp_path))
    assert source.num_examples == 20
    with tf.Graph().as_default():
        images, labels = input_pipeline.input_fn(source.record_files, new_model(10), True, 8)
        assert images.shape.as_list() == [8, 24, 24, 3]  # static: training batches are full
        with tf1.Session() as sess:
            for _ in range(4):  # repeats past one epoch
                i, l = sess.run([images, labels])
                assert i.shape == (8, 24, 24, 3) and l.shape == (8,) and l.dtype == np.int32



def test_a_seeded_pipeline_calls_a_subclass_augmentation_with_its_seed(binary_release, tmp_path):
    # The seeded pipeline passes its stateless seed to the model's own methods: a subclass's
    # override is used, and the instance is left as it was.
    from squeezenet_v1 import SqueezeNetModel

    class OwnAugmentation(SqueezeNetModel):
        seeds = []

        def random_crop_and_flip(self, float_image, seed=None):
            self.seeds.append(seed)
            return super().random_crop_and_flip(float_image, seed)

    data_dir, _ = binary_release
    source = datasets.prepare_split('cifar10', 'train', data_dir, str(tmp_path))
    model = OwnAugmentation(32, 24, 10)
    before = dict(vars(model))
    with tf.Graph().as_default():
        dataset = input_pipeline.resumable_dataset(source.record_files, source.num_examples,
                                                   model, 4, seed=3, first_step=0)
        images, labels, steps = tf1.data.make_one_shot_iterator(dataset).get_next()
        with tf1.Session() as sess:
            first = sess.run(images)
    assert len(OwnAugmentation.seeds) == 1 and OwnAugmentation.seeds[0] is not None
    assert first.shape == (4, 24, 24, 3) and vars(model) == before

def test_python_release_matches_its_arrays_and_label_names(tmp_path):
    data_dir = str(tmp_path / 'data')
    contents = write_python_release(data_dir)
    source = datasets.prepare_split('cifar10', 'train', data_dir, str(tmp_path))
    assert source.label_names[:2] == ['plane', 'car'] and source.num_examples == 20
    images, labels = cifar10.read_binary_batch(source.record_files[0])
    np.testing.assert_array_equal(labels, np.concatenate(
        [contents['data_batch_%d' % i][1] for i in range(1, 6)]))
    np.testing.assert_array_equal(images[:4], contents['data_batch_1'][0])


@pytest.mark.parametrize('release', [cifar10.BINARY, cifar10.PYTHON])
def test_archive_is_verified_then_extracted(tmp_path, monkeypatch, release):
    build = str(tmp_path / 'build')
    (write_binary_release if release is cifar10.BINARY else write_python_release)(build)
    data_dir = tmp_path / 'data'
    data_dir.mkdir()
    archive = make_archive(build, release.folder, str(data_dir / release.archive))
    from squeezenet_v1.data import download
    monkeypatch.setattr(release, 'md5', download.file_md5(archive))
    source = datasets.prepare_split('cifar10', 'test', str(data_dir), str(tmp_path))
    assert source.num_examples == 5
    assert sorted(os.listdir(data_dir)) == sorted([release.archive, release.folder])


def test_archive_with_wrong_md5_is_refused_before_extraction(tmp_path):
    build = str(tmp_path / 'build')
    write_binary_release(build)
    data_dir = tmp_path / 'data'
    data_dir.mkdir()
    make_archive(build, cifar10.BINARY_DIR, str(data_dir / cifar10.BINARY.archive))
    with pytest.raises(DataError, match='cifar-10-binary.tar.gz: md5 .* does not match the '
                                        'official c32a1d4ab5d03f1284b67883e8d87530'):
        datasets.prepare_split('cifar10', 'test', str(data_dir), str(tmp_path))
    assert os.listdir(data_dir) == [cifar10.BINARY.archive]


def test_corrupt_archive_names_the_file(tmp_path, monkeypatch):
    data_dir = tmp_path / 'data'
    data_dir.mkdir()
    archive = data_dir / cifar10.BINARY.archive
    archive.write_bytes(b'\x1f\x8b\x08\x00' + b'not really gzip' * 10)
    from squeezenet_v1.data import download
    monkeypatch.setattr(cifar10.BINARY, 'md5', download.file_md5(str(archive)))
    with pytest.raises(DataError, match='cifar-10-binary.tar.gz: cannot be extracted'):
        datasets.prepare_split('cifar10', 'test', str(data_dir), str(tmp_path))
    assert sorted(os.listdir(data_dir)) == [cifar10.BINARY.archive]  # no half-extracted folder


def test_missing_data_says_how_to_get_it(tmp_path):
    with pytest.raises(DataError, match='no CIFAR-10 in .*--download'):
        datasets.prepare_split('cifar10', 'train', str(tmp_path), str(tmp_path))


def test_data_dir_that_is_a_file_is_refused(tmp_path):
    path = tmp_path / 'data'
    path.write_text('x')
    with pytest.raises(DataError, match='is a file, not a folder'):
        datasets.prepare_split('cifar10', 'train', str(path), str(tmp_path))


def test_missing_batch_file_is_named(binary_release, tmp_path):
    data_dir, _ = binary_release
    os.remove(os.path.join(data_dir, 'cifar-10-batches-bin', 'data_batch_3.bin'))
    with pytest.raises(DataError, match='missing data_batch_3.bin'):
        datasets.prepare_split('cifar10', 'train', data_dir, str(tmp_path))


@pytest.mark.parametrize('change, message', [
    (lambda b: b[:-1], 'not a whole number of 3073-byte'),
    (lambda b: b + b'\0', 'not a whole number of 3073-byte'),
    (lambda b: b'', '0 bytes is not a whole number'),
    (lambda b: bytes([10]) + b[1:], 'record 0 has label 10, outside 0-9'),
])
def test_bad_binary_batch_is_named_with_the_problem(binary_release, tmp_path, change, message):
    data_dir, _ = binary_release
    path = os.path.join(data_dir, 'cifar-10-batches-bin', 'test_batch.bin')
    with open(path, 'rb') as f:
        data = f.read()
    with open(path, 'wb') as f:
        f.write(change(data))
    with pytest.raises(DataError, match='test_batch.bin: .*' + message):
        datasets.prepare_split('cifar10', 'test', data_dir, str(tmp_path))


@pytest.mark.parametrize('batch, message', [
    ({b'data': np.zeros((2, 100), np.uint8), b'labels': [0, 1]}, r"expected uint8 \(N, 3072\)"),
    ({b'data': np.zeros((2, 3072), np.uint8), b'labels': [0]}, r"2 images but b'labels'"),
    ({b'data': np.zeros((2, 3072), np.uint8), b'labels': [0, 12]}, 'label 12, outside 0-9'),
    ({b'data': np.zeros((1, 3072), np.uint8), b'labels': [-1]}, 'negative label'),
    ([1, 2, 3], "expected a dict with b'data'"),
])
def test_bad_python_batch_is_named_with_the_problem(tmp_path, batch, message):
    data_dir = str(tmp_path / 'data')
    write_python_release(data_dir)
    path = os.path.join(data_dir, 'cifar-10-batches-py', 'test_batch')
    with open(path, 'wb') as f:
        pickle.dump(batch, f, protocol=2)
    with pytest.raises(DataError, match='test_batch: .*' + message):
        datasets.prepare_split('cifar10', 'test', data_dir, str(tmp_path))


def test_pickle_that_would_run_code_is_refused(tmp_path):
    data_dir = str(tmp_path / 'data')
    write_python_release(data_dir)
    path = os.path.join(data_dir, 'cifar-10-batches-py', 'test_batch')
    with open(path, 'wb') as f:
        pickle.dump(os.system, f, protocol=2)
    with pytest.raises(DataError, match='refusing to load'):
        datasets.prepare_split('cifar10', 'test', data_dir, str(tmp_path))


def test_truncated_pickle_is_named(tmp_path):
    data_dir = str(tmp_path / 'data')
    write_python_release(data_dir)
    path = os.path.join(data_dir, 'cifar-10-batches-py', 'data_batch_2')
    with open(path, 'rb') as f:
        data = f.read()
    with open(path, 'wb') as f:
        f.write(data[:len(data) // 2])
    with pytest.raises(DataError, match='data_batch_2: not a readable CIFAR-10 python batch'):
        datasets.prepare_split('cifar10', 'train', data_dir, str(tmp_path))


def _python2_batch(images, labels, dtype_flags=0):
    """A batch exactly as Python 2's cPickle (protocol 2) wrote the release: str, not unicode."""
    def short_str(b):
        return b'U' + bytes([len(b)]) + b
    rows, columns = images.shape
    return b''.join([
        b'\x80\x02}(', short_str(b'data'),
        b'cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\nK\x00\x85', short_str(b'b'),
        b'\x87R(K\x01M', rows.to_bytes(2, 'little'), b'M', columns.to_bytes(2, 'little'),
        b'\x86cnumpy\ndtype\n', short_str(b'u1'), b'K\x00K\x01\x87R(K\x03', short_str(b'|'),
        b'NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK', bytes([dtype_flags]), b'tb\x89',
        b'T', images.nbytes.to_bytes(4, 'little'), images.tobytes(), b'tb',
        short_str(b'labels'), b'](', b''.join(b'K' + bytes([x]) for x in labels), b'eu.'])


def test_python2_pickled_batch_reads_back(tmp_path):
    images = np.arange(2 * 3072, dtype=np.int64).astype(np.uint8).reshape(2, 3072)
    path = str(tmp_path / 'data_batch_1')
    with open(path, 'wb') as f:
        f.write(_python2_batch(images, [3, 7]))
    read_images, read_labels = cifar10.read_python_batch(path)
    np.testing.assert_array_equal(read_images, images)
    np.testing.assert_array_equal(read_labels, [3, 7])


def test_numpy_scalars_and_big_endian_arrays_read_back(tmp_path):
    images = np.full((2, 3072), 9, np.uint8)
    path = str(tmp_path / 'data_batch_1')
    for labels in ([np.int64(4), np.int32(1)], np.array([4, 1], '>i8')):
        with open(path, 'wb') as f:
            pickle.dump({b'data': images, b'labels': labels}, f, protocol=2)
        np.testing.assert_array_equal(cifar10.read_python_batch(path)[1], [4, 1])


@pytest.mark.filterwarnings('error::pytest.PytestUnraisableExceptionWarning')
@pytest.mark.parametrize('flags', [1, 0x3f, 0xff])
def test_corrupt_dtype_state_is_refused_before_numpy_sees_it(tmp_path, flags):
    # numpy.dtype.__setstate__ trusts these flags: 0x3f makes uint8 claim to hold objects.
    path = str(tmp_path / 'data_batch_1')
    with open(path, 'wb') as f:
        f.write(_python2_batch(np.zeros((1, 3072), np.uint8), [0], dtype_flags=flags))
    with pytest.raises(DataError, match='data_batch_1: not a readable CIFAR-10 python batch '
                                        r'\(UnpicklingError: dtype uint8 has a malformed state'):
        cifar10.read_python_batch(path)


def test_synthetic_set_is_fixed_balanced_and_carries_its_class():
    images, labels = synthetic.make_split('train')
    again, _ = synthetic.make_split('train')
    np.testing.assert_array_equal(images, again)
    assert images.shape == (synthetic.NUM_TRAIN_EXAMPLES, 3072)
    assert np.bincount(labels).tolist() == [synthetic.NUM_TRAIN_EXAMPLES // 10] * 10
    # The colour cue: class 0 (red) has the most red contrast, class 1 (green) the most green.
    red, green = labels == 0, labels == 1
    spread = images.reshape(-1, 3, 1024).astype(np.float64).std(axis=2)
    assert spread[red, 0].mean() > spread[red, 1].mean() + 5
    assert spread[green, 1].mean() > spread[green, 0].mean() + 5


def test_one_flipped_byte_in_an_archive_fails_its_md5(tmp_path, monkeypatch):
    build = str(tmp_path / 'build')
    write_binary_release(build)
    data_dir = tmp_path / 'data'
    data_dir.mkdir()
    archive = make_archive(build, cifar10.BINARY_DIR, str(data_dir / cifar10.BINARY.archive))
    from squeezenet_v1.data import download
    monkeypatch.setattr(cifar10.BINARY, 'md5', download.file_md5(archive))
    with open(archive, 'r+b') as f:
        f.seek(os.path.getsize(archive) // 2)
        byte = f.read(1)
        f.seek(-1, os.SEEK_CUR)
        f.write(bytes([byte[0] ^ 0x01]))
    with pytest.raises(DataError, match='cifar-10-binary.tar.gz: md5 .* does not match'):
        datasets.prepare_split('cifar10', 'train', str(data_dir), str(tmp_path))
    assert os.listdir(data_dir) == [cifar10.BINARY.archive]
