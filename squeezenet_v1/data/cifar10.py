"""CIFAR-10's two official releases on disk: finding them, reading them, checking them.

Every reader returns `(images, labels)`: uint8 images of shape (N, 3072) in the release's own
layout (the R plane, then G, then B, each 32x32 row-major) and uint8 labels of shape (N,).
Anything wrong with a file raises `DataError` naming the file, what is wrong and what to do,
before TensorFlow ever sees it.
"""

import codecs
import io
import os
import pickle

import numpy as np

from squeezenet_v1.data import class_names
from squeezenet_v1.data.errors import DataError
from squeezenet_v1.files import atomic
from squeezenet_v1.files import reading

IMAGE_SIZE = 32  # CIFAR-10 images are 32x32 ...
NUM_CHANNELS = 3  # ... RGB, stored as three planes.
IMAGE_BYTES = IMAGE_SIZE * IMAGE_SIZE * NUM_CHANNELS  # 3,072 pixel bytes per image.
LABEL_BYTES = 1  # The binary release puts one label byte before each image.
RECORD_BYTES = LABEL_BYTES + IMAGE_BYTES  # 3,073 bytes per binary record.
NUM_CLASSES = 10
LABEL_NAMES = ('airplane', 'automobile', 'bird', 'cat', 'deer',
               'dog', 'frog', 'horse', 'ship', 'truck')

BINARY_DIR = 'cifar-10-batches-bin'
PYTHON_DIR = 'cifar-10-batches-py'
TRAIN_BATCHES = tuple('data_batch_%d' % i for i in range(1, 6))
TEST_BATCHES = ('test_batch',)
SPLITS = ('train', 'test')
# Larger files are refused by their size before they are read: a batch holds 10,000 images.
MAX_BATCH_RECORDS = 10000
MAX_BINARY_BATCH_BYTES = MAX_BATCH_RECORDS * RECORD_BYTES
MAX_PYTHON_BATCH_BYTES = 2 * MAX_BINARY_BATCH_BYTES  # the pixels, labels and file names pickled
MAX_META_BYTES = 1 << 20


class Release(object):
    """One official release: its folder, archive, checksum and file naming."""

    def __init__(self, name, folder, archive, md5, size, suffix, split_files=None):
        self.name = name
        self.split_files = split_files  # {split: file}, where a split is one file (CIFAR-100)
        self.folder = folder
        self.archive = archive
        self.md5 = md5
        self.size = size  # the archive's bytes: a download that goes past them is refused
        self.suffix = suffix
        self.url = 'https://www.cs.toronto.edu/~kriz/' + archive

    def batch_files(self, split):
        if self.split_files:
            return [self.split_files[split] + self.suffix]
        names = TRAIN_BATCHES if split == 'train' else TEST_BATCHES
        return [name + self.suffix for name in names]


BINARY = Release('binary', BINARY_DIR, 'cifar-10-binary.tar.gz',
                 'c32a1d4ab5d03f1284b67883e8d87530', 170052171, '.bin')
PYTHON = Release('python', PYTHON_DIR, 'cifar-10-python.tar.gz',
                 'c58f30108f718f92721af3b95e74349a', 170498071, '')
RELEASES = (BINARY, PYTHON)

GET_THE_DATA = ('Run with --download to fetch it, or download %s from '
                'https://www.cs.toronto.edu/~kriz/cifar.html into the data directory '
                '(as the archive or extracted).' % BINARY.archive)


def check_split(split):
    if split not in SPLITS:
        raise ValueError('split must be one of %s, got %r' % (SPLITS, split))


def check_labels(labels, path, num_classes=NUM_CLASSES):
    """Raises DataError naming the first out-of-range label and its record index."""
    bad = np.flatnonzero(labels >= num_classes)
    if bad.size:
        raise DataError('%s: record %d has label %d, outside 0-%d; the file is corrupt or not a '
                        'CIFAR-10 batch. Replace it with a fresh copy.'
                        % (path, bad[0], labels[bad[0]], num_classes - 1))


def read_binary_batch(path, num_classes=NUM_CLASSES, max_records=MAX_BATCH_RECORDS):
    """Reads one binary-release batch (label byte + 3,072 pixel bytes per record).

    An official batch holds at most 10,000 records; a records file of the cache (a whole
    split of any data set, written here) passes max_records=None.
    """
    max_bytes = float('inf') if max_records is None else max_records * RECORD_BYTES
    raw = np.frombuffer(read_data_file(path, max_bytes), dtype=np.uint8)
    if raw.size == 0 or raw.size % RECORD_BYTES:
        raise DataError('%s: %d bytes is not a whole number of %d-byte CIFAR-10 records; the file '
                        'is truncated or not a CIFAR-10 batch. Replace it with a fresh copy.'
                        % (path, raw.size, RECORD_BYTES))
    records = raw.reshape(-1, RECORD_BYTES)
    labels = records[:, 0].copy()
    check_labels(labels, path, num_classes)
    return records[:, LABEL_BYTES:].copy(), labels


def _text(value):
    return value.decode('latin1') if isinstance(value, bytes) else value


class _DtypeRecipe:
    """Stands in for numpy.dtype while unpickling; numpy never sees an unchecked dtype state.

    numpy.dtype.__setstate__ trusts its input: a flipped flags byte makes a uint8 dtype claim
    to hold object references, and numpy then fails from inside its C code. So the pickled
    arguments and state are kept here, checked against what a plain number dtype can be, and
    only then turned into a real dtype.
    """

    def __init__(self, name, align=False, copy=True):
        self.name, self.state = name, None

    def __setstate__(self, state):
        self.state = state

    def resolve(self):
        try:
            dtype = np.dtype(_text(self.name))
        except (TypeError, ValueError) as e:
            raise pickle.UnpicklingError('bad dtype %r (%s)' % (self.name, e))
        if dtype.kind not in 'biuf':
            raise pickle.UnpicklingError('dtype %s is not a number type' % dtype)
        state = self.state
        if state is None:
            return dtype
        # (version, byte order, subarray, names, fields, itemsize, alignment, flags[, metadata])
        if (not isinstance(state, tuple) or len(state) not in (8, 9) or
                state[2:8] != (None, None, None, -1, -1, 0) or
                _text(state[1]) not in ('|', '<', '>', '=')):
            raise pickle.UnpicklingError('dtype %s has a malformed state %r' % (dtype, state))
        return dtype.newbyteorder(_text(state[1])) if dtype.itemsize > 1 else dtype


def _checked_dtype(recipe, raw, what):
    """The dtype of pickled raw bytes, from its _DtypeRecipe once that has been checked."""
    if not isinstance(recipe, _DtypeRecipe) or not isinstance(raw, bytes):
        raise pickle.UnpicklingError('%s has no plain dtype and data' % what)
    return recipe.resolve()


class _CheckedArray(np.ndarray):
    """numpy.ndarray as unpickled here: its dtype is resolved from a checked _DtypeRecipe."""

    def __setstate__(self, state):
        if not isinstance(state, tuple) or len(state) not in (4, 5):
            raise pickle.UnpicklingError('malformed ndarray state')
        *head, recipe, is_fortran, raw = state
        dtype = _checked_dtype(recipe, raw, 'ndarray state')
        super().__setstate__(tuple(head) + (dtype, is_fortran, raw))


def _reconstruct(subtype, shape, typecode):
    """numpy's _reconstruct, for _CheckedArray only: an empty array that BUILD then fills."""
    if subtype is not _CheckedArray:
        raise pickle.UnpicklingError('refusing to reconstruct %r' % (subtype,))
    return _CheckedArray.__new__(_CheckedArray, (0,), dtype=np.uint8)


def _scalar(recipe, raw):
    """numpy's scalar(dtype, bytes), with the dtype checked."""
    dtype = _checked_dtype(recipe, raw, 'numpy scalar')
    if len(raw) != dtype.itemsize:
        raise pickle.UnpicklingError('numpy scalar of %d bytes for %s' % (len(raw), dtype))
    return np.frombuffer(raw, dtype)[0]


def _latin1(text, encoding='latin1'):
    """codecs.encode as protocol-2 pickles use it, and only so: any other codec (hex doubles
    its input) would let a few hundred bytes of pickle ask for terabytes."""
    if not isinstance(text, str) or encoding not in ('latin1', 'latin-1'):
        raise pickle.UnpicklingError('refusing codecs.encode with %r' % (encoding,))
    return codecs.encode(text, 'latin1')


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickles plain containers and number arrays only: a batch file cannot run code."""

    _GLOBALS = {
        ('numpy.core.multiarray', '_reconstruct'): _reconstruct,
        ('numpy._core.multiarray', '_reconstruct'): _reconstruct,
        ('numpy.core.multiarray', 'scalar'): _scalar,
        ('numpy._core.multiarray', 'scalar'): _scalar,
        ('numpy', 'ndarray'): _CheckedArray,
        ('numpy', 'dtype'): _DtypeRecipe,
        ('_codecs', 'encode'): _latin1,  # how Python 3 writes bytes into protocol 2
    }

    def find_class(self, module, name):
        if (module, name) not in self._GLOBALS:
            raise pickle.UnpicklingError('refusing to load %s.%s' % (module, name))
        return self._GLOBALS[(module, name)]


def read_data_file(path, max_bytes):
    """A data file's bytes; a user's data folder may link its files, so links are followed."""
    try:
        return reading.read_bytes(path, max_bytes, follow_links=True)
    except OSError as e:
        raise DataError('%s: cannot be read (%s). %s' % (path, e.strerror or e, GET_THE_DATA))
    except reading.UnreadableFileError as e:
        raise DataError('%s Replace it with a fresh copy. %s' % (e, GET_THE_DATA))


def unpickle(path, max_bytes=MAX_PYTHON_BATCH_BYTES):
    # Read whole first: a length the pickle declares is then bounded by the bytes there are.
    data = read_data_file(path, max_bytes)
    try:
        return _ArrayUnpickler(io.BytesIO(data), encoding='bytes').load()
    except Exception as e:  # pickle raises many types on corrupt input
        raise DataError('%s: not a readable CIFAR-10 python batch (%s: %s); the file is corrupt. '
                        'Replace it with a fresh copy.' % (path, type(e).__name__, e))


def read_python_batch(path, num_classes=NUM_CLASSES):
    """Reads one python-release batch: a Python 2 pickle of {b'data', b'labels', ...}.

    b'data' is taken only as the release stores it (a uint8 array of N x 3,072, or its raw
    bytes), b'labels' only as a flat sequence of N integers within the class count.
    """
    batch = unpickle(path)
    if not isinstance(batch, dict) or b'data' not in batch or b'labels' not in batch:
        raise DataError("%s: expected a dict with b'data' and b'labels'; the file is not a "
                        'CIFAR-10 python batch. Replace it with a fresh copy.' % path)
    data = checked_pixels(batch[b'data'], path)
    labels = checked_label_list(batch[b'labels'], data.shape[0], path, num_classes)
    return np.ascontiguousarray(data), labels


def checked_pixels(data, path):
    if isinstance(data, bytes) and len(data) % IMAGE_BYTES == 0:
        data = np.frombuffer(data, dtype=np.uint8).reshape(-1, IMAGE_BYTES)
    if (not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2
            or data.shape[1] != IMAGE_BYTES):
        what = ('%s %s' % (data.dtype, data.shape) if isinstance(data, np.ndarray)
                else 'a %s' % type(data).__name__)
        raise DataError("%s: b'data' is %s, expected uint8 (N, %d) as the official release "
                        'stores it. Replace it with a fresh copy.' % (path, what, IMAGE_BYTES))
    if data.shape[0] == 0:
        raise DataError('%s: holds no images; the file is truncated. Replace it with a fresh copy.'
                        % path)
    return data


def checked_label_list(labels, count, path, num_classes):
    """The labels as uint8 (N,); DataError unless N integers within 0..num_classes-1."""
    if isinstance(labels, np.ndarray) and labels.dtype.kind in 'iu' and labels.ndim == 1:
        values = labels
    elif isinstance(labels, (list, tuple)):
        if len(labels) != count:
            raise DataError("%s: %d images but b'labels' has %d entries. Replace it with a fresh "
                            'copy.' % (path, count, len(labels)))
        for index, label in enumerate(labels):  # each checked before numpy sees it
            if isinstance(label, bool) or not isinstance(label, (int, np.integer)):
                raise DataError("%s: b'labels'[%d] is %s, not an integer; the file is corrupt "
                                'or not a CIFAR-10 batch. Replace it with a fresh copy.'
                                % (path, index, repr(label)[:40]))
            if label < 0:
                raise DataError('%s: negative label %d.' % (path, label))
            if label >= num_classes:
                raise DataError('%s: record %d has label %d, outside 0-%d; the file is corrupt or '
                                'not a CIFAR-10 batch. Replace it with a fresh copy.'
                                % (path, index, label, num_classes - 1))
        values = np.array(labels, dtype=np.int64)
    else:
        raise DataError("%s: b'labels' is a %s, not a list of integers. Replace it with a fresh "
                        'copy.' % (path, type(labels).__name__))
    if values.shape != (count,):
        raise DataError("%s: %d images but b'labels' has shape %s. Replace it with a fresh copy."
                        % (path, count, values.shape))
    if values.size and values.min() < 0:
        raise DataError('%s: negative label %d.' % (path, values.min()))
    check_labels(values, path, num_classes)
    return values.astype(np.uint8)


def read_label_names(folder):
    """Class names from batches.meta (python) or batches.meta.txt (binary), else the defaults."""
    meta = os.path.join(folder, 'batches.meta')
    text = os.path.join(folder, 'batches.meta.txt')
    fix = 'Replace it with a fresh copy, or delete it to use the standard CIFAR-10 names.'
    if os.path.lexists(meta):
        entry = unpickle(meta, MAX_META_BYTES)
        if isinstance(entry, dict) and b'label_names' in entry:
            return class_names.checked_names(entry[b'label_names'], meta, fix, NUM_CLASSES)
    elif os.path.lexists(text):
        try:
            lines = reading.read_text(text, MAX_META_BYTES, follow_links=True).splitlines()
        except OSError as e:
            raise DataError('%s: cannot be read (%s). %s' % (text, e.strerror or e, fix))
        except reading.UnreadableFileError as e:
            raise DataError('%s %s' % (e, fix))
        return class_names.checked_names([line for line in lines if line.strip()], text, fix,
                                         NUM_CLASSES)
    return list(LABEL_NAMES)


def read_release_split(folder, release, split):
    """Reads and concatenates every batch of one split of an extracted release folder."""
    check_split(split)
    reader = read_binary_batch if release is BINARY else read_python_batch
    missing = [name for name in release.batch_files(split)
               if not os.path.isfile(os.path.join(folder, name))]
    if missing:
        raise DataError('%s: missing %s; the release is incomplete. %s'
                        % (folder, ', '.join(missing), GET_THE_DATA))
    parts = [reader(os.path.join(folder, name)) for name in release.batch_files(split)]
    return (np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]))


def binary_records(images, labels):
    """The bytes of the binary release's format: a label byte, then 3,072 pixels, per image."""
    images = np.asarray(images, dtype=np.uint8).reshape(-1, IMAGE_BYTES)
    labels = np.asarray(labels, dtype=np.uint8).reshape(-1, 1)
    return np.concatenate([labels, images], axis=1).tobytes()


def write_binary_batch(path, images, labels):
    """Writes records in the binary release's format, whole or not at all."""
    return atomic.write_bytes_atomic(path, binary_records(images, labels))
