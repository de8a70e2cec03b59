"""CIFAR-100's two official releases: 100 fine classes, or the 20 superclasses (coarse).

The python release (`cifar-100-python/{train,test,meta}`) pickles dicts with `b'data'`,
`b'fine_labels'` and `b'coarse_labels'`; `meta` names the classes (`b'fine_label_names'`,
`b'coarse_label_names'`). The binary release (`cifar-100-binary/{train,test}.bin`) stores per
image a coarse label byte, a fine label byte and 3,072 pixel bytes, and names the classes in
`fine_label_names.txt` and `coarse_label_names.txt`. Either is read as strictly as CIFAR-10's
(cifar10.py) and becomes the same `(images, labels)`; datasets.py caches them as CIFAR-10
binary records, so one input pipeline serves every data set.
"""

import os

import numpy as np

from squeezenet_v1.data import cifar10
from squeezenet_v1.data import class_names
from squeezenet_v1.data.errors import DataError
from squeezenet_v1.files import reading

FINE_CLASSES, COARSE_CLASSES = 100, 20
TRAIN_IMAGES = 50000
RECORD_BYTES = 2 + cifar10.IMAGE_BYTES
# Sizes bound the download (an endless body stops past them); the md5 tells the archive.
BINARY = cifar10.Release('binary', 'cifar-100-binary', 'cifar-100-binary.tar.gz',
                         '03b5dce01913d631647c71ecec9e9cb8', 170 * 1000 * 1000, '.bin',
                         split_files={'train': 'train', 'test': 'test'})
PYTHON = cifar10.Release('python', 'cifar-100-python', 'cifar-100-python.tar.gz',
                         'eb9058c3a382ffc7106e4002c42a8d85', 169001437, '',
                         split_files={'train': 'train', 'test': 'test'})
RELEASES = (BINARY, PYTHON)
GET_THE_DATA = ('Run with --download to fetch it, or download %s from '
                'https://www.cs.toronto.edu/~kriz/cifar.html into the data directory '
                '(as the archive or extracted).' % BINARY.archive)
_FIX = 'Replace it with a fresh copy.'


def num_classes(coarse):
    return COARSE_CLASSES if coarse else FINE_CLASSES


def read_split(folder, release, split, coarse):
    """(uint8 images (N, 3072), uint8 labels (N,)) of one split, fine or coarse."""
    cifar10.check_split(split)
    path = os.path.join(folder, release.batch_files(split)[0])
    if not os.path.isfile(path):
        raise DataError('%s: missing %s; the release is incomplete. %s'
                        % (folder, os.path.basename(path), GET_THE_DATA))
    if release is BINARY:
        return _read_binary(path, coarse)
    return _read_python(path, coarse)


def _read_binary(path, coarse):
    raw = np.frombuffer(cifar10.read_data_file(path, TRAIN_IMAGES * RECORD_BYTES), np.uint8)
    if raw.size == 0 or raw.size % RECORD_BYTES:
        raise DataError('%s: %d bytes is not a whole number of %d-byte CIFAR-100 records; the '
                        'file is truncated or not a CIFAR-100 split. %s'
                        % (path, raw.size, RECORD_BYTES, _FIX))
    records = raw.reshape(-1, RECORD_BYTES)
    labels = records[:, 0 if coarse else 1].copy()
    cifar10.check_labels(labels, path, num_classes(coarse))
    return records[:, 2:].copy(), labels


def _read_python(path, coarse):
    key = b'coarse_labels' if coarse else b'fine_labels'
    batch = cifar10.unpickle(path, 2 * TRAIN_IMAGES * RECORD_BYTES)
    if not isinstance(batch, dict) or b'data' not in batch or key not in batch:
        raise DataError('%s: expected a dict with b\'data\' and %r; the file is not a CIFAR-100 '
                        'python split. %s' % (path, key, _FIX))
    data = cifar10.checked_pixels(batch[b'data'], path)
    labels = cifar10.checked_label_list(batch[key], data.shape[0], path, num_classes(coarse))
    return np.ascontiguousarray(data), labels


def read_names(folder, release, coarse):
    """The release's own class names, fine or coarse, checked."""
    count = num_classes(coarse)
    fix = 'Replace it with a fresh copy of the release.'
    if release is BINARY:
        path = os.path.join(folder, '%s_label_names.txt' % ('coarse' if coarse else 'fine'))
        try:
            text = reading.read_text(path, cifar10.MAX_META_BYTES, follow_links=True)
        except (OSError, reading.UnreadableFileError) as e:
            raise DataError('%s cannot be read (%s). %s'
                            % (path, getattr(e, 'reason', None) or e.strerror, fix))
        return class_names.checked_names([line for line in text.splitlines() if line.strip()],
                                         path, fix, count)
    path = os.path.join(folder, 'meta')
    if not os.path.lexists(path):
        raise DataError('%s: missing meta, which names the classes. %s' % (folder, fix))
    meta = cifar10.unpickle(path, cifar10.MAX_META_BYTES)
    key = b'coarse_label_names' if coarse else b'fine_label_names'
    if not isinstance(meta, dict) or key not in meta:
        raise DataError('%s holds no %r. %s' % (path, key, fix))
    return class_names.checked_names(meta[key], path, fix, count)
