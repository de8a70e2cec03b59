"""`--dataset=folder`: a user's own images, one folder per class, decoded once into the cache.

    DATA_DIR/train/<class>/*.png|jpg|jpeg|gif|bmp|webp
    DATA_DIR/test/<class>/...

The class names are the folder names, sorted (as tf.keras.utils.image_dataset_from_directory
and torchvision's ImageFolder name them). Every image is made 32x32 RGB exactly as predict
makes a picture (images.ImageDecoder), so the model predicts a new picture the way it saw its
training data. Both splits are decoded into CIFAR-10 binary records in the records cache, under
a name made of the folder's fingerprint (every file's name, size and modification time): a
second run decodes nothing, and a changed folder is decoded anew.

A file that is not an image (by its extension, or because TensorFlow cannot decode it) is
skipped with a warning naming it rather than failing the run: a folder of photographs often
holds a .DS_Store, a Thumbs.db or a text note, and one of them must not cost a training run.
Every problem of the layout (no train/ or test/, a class in one split only, an empty class,
fewer than 2 classes, two names that differ only in case, no room in the cache) is one line
naming it and the fix, before anything is decoded.
"""

import collections
import hashlib
import os
import shutil
import time

import numpy as np
from absl import logging

from squeezenet_v1.data import cifar10
from squeezenet_v1.data import class_names
from squeezenet_v1.data import images as images_lib
from squeezenet_v1.data.errors import DataError
from squeezenet_v1.files import atomic

SPLITS = ('train', 'test')
_PROGRESS_SECS = 5.0
_LAYOUT = ('--dataset=folder reads DATA_DIR/train/<class>/<images> and '
           'DATA_DIR/test/<class>/<images>')

Listing = collections.namedtuple('Listing', ['names', 'files', 'skipped', 'fingerprint'])
Listing.__doc__ = """names: the classes, sorted; files: {split: [(path, class index)]};
skipped: files that are not images by their extension; fingerprint: of every file's name,
size and modification time."""


def list_folder(data_dir):
    """The Listing of data_dir; DataError for any problem of its layout."""
    splits = {}
    for split in SPLITS:
        folder = os.path.join(data_dir, split)
        if not os.path.isdir(folder):
            raise DataError('%s has no %s/ folder. %s.' % (data_dir, split, _LAYOUT))
        splits[split] = sorted(name for name in _listdir(folder)
                               if os.path.isdir(os.path.join(folder, name)))
    train, test = splits['train'], splits['test']
    for split, here, there in (('train', train, test), ('test', test, train)):
        only = sorted(set(here) - set(there))
        if only:
            other = 'test' if split == 'train' else 'train'
            raise DataError('%s/%s has the class %s, which %s/%s has not: both splits need the '
                            'same class folders. Add it to %s/ or remove it.'
                            % (data_dir, split, only[0], data_dir, other, other))
    if len(train) < 2:
        raise DataError('%s/train holds %d class folder%s; a classifier needs at least 2. %s.'
                        % (data_dir, len(train), '' if len(train) == 1 else 's', _LAYOUT))
    lowered = collections.Counter(name.lower() for name in train)
    clash = sorted(name for name in train if lowered[name.lower()] > 1)
    if clash:
        raise DataError('%s/train has class folders whose names differ only in case (%s); on '
                        'another file system they are one folder. Rename one.'
                        % (data_dir, ', '.join(clash)))
    names = class_names.checked_names(train, os.path.join(data_dir, 'train'),
                                      'Rename the class folder.')
    files, skipped, stamp = {}, [], hashlib.sha256()
    for split in SPLITS:
        files[split] = []
        for index, name in enumerate(names):
            folder = os.path.join(data_dir, split, name)
            found = 0
            for entry in sorted(_listdir(folder)):
                path = os.path.join(folder, entry)
                if not os.path.isfile(path):
                    continue
                if not entry.lower().endswith(images_lib.IMAGE_EXTENSIONS):
                    skipped.append(path)
                    continue
                info = os.stat(path)
                stamp.update(('%s\0%s\0%s\0%d\0%d\n' % (split, name, entry, info.st_size,
                                                        info.st_mtime_ns)).encode('utf-8',
                                                                                   'replace'))
                files[split].append((path, index))
                found += 1
            if not found:
                raise DataError('%s holds no image files (%s). Put images in it, or remove the '
                                'class from both splits.'
                                % (folder, ', '.join(images_lib.IMAGE_EXTENSIONS)))
    return Listing(names, files, skipped, stamp.hexdigest()[:16])


def _listdir(folder):
    try:
        return os.listdir(folder)
    except OSError as e:
        raise DataError('%s cannot be listed (%s). Make it readable.' % (folder, e.strerror or e))


def prepare_split(data_dir, split, cache_dir):
    """(records file, number of images, class names) of one split, decoded once and cached."""
    cifar10.check_split(split)
    listing = list_folder(data_dir)
    path = os.path.join(cache_dir, 'folder_%s-%s.bin' % (split, listing.fingerprint))
    if os.path.isfile(path) and os.path.getsize(path) % cifar10.RECORD_BYTES == 0:
        count = os.path.getsize(path) // cifar10.RECORD_BYTES
        logging.info('%s/%s: %d images of %d classes, decoded earlier (%s).', data_dir, split,
                     count, len(listing.names), path)
        return path, count, listing.names
    _check_room(cache_dir, len(listing.files[split]), data_dir)
    for skipped in listing.skipped:
        logging.warning('%s is not an image file (by its extension); it is skipped.', skipped)
    decoded, labels = _decode(listing.files[split], '%s/%s' % (data_dir, split))
    if not len(labels):
        raise DataError('%s/%s holds no image TensorFlow can decode.' % (data_dir, split))
    empty = sorted(set(range(len(listing.names))) - set(labels))
    if empty:
        raise DataError('%s/%s/%s holds no image TensorFlow can decode. Put images in it, or '
                        'remove the class from both splits.'
                        % (data_dir, split, listing.names[empty[0]]))
    planes = np.stack(decoded).transpose(0, 3, 1, 2).reshape(len(decoded), cifar10.IMAGE_BYTES)
    try:
        os.makedirs(cache_dir, exist_ok=True)
        atomic.write_bytes_atomic(path, cifar10.binary_records(planes, np.array(labels)))
    except OSError as e:
        raise DataError('cannot write the decoded images into the cache folder %s (%s). Free '
                        'space there, or set SQUEEZENET_V1_CACHE_DIR to another folder.'
                        % (cache_dir, e.strerror or e))
    return path, len(labels), listing.names


def _check_room(cache_dir, count, data_dir):
    needed = count * cifar10.RECORD_BYTES
    existing = cache_dir
    while not os.path.isdir(existing) and os.path.dirname(existing) != existing:
        existing = os.path.dirname(existing)
    free = shutil.disk_usage(existing).free
    if needed > free:
        raise DataError('%s holds %d images, %d MB once decoded, but the disk holding the cache '
                        '%s has %d MB free. Free space there, or set SQUEEZENET_V1_CACHE_DIR to '
                        'a folder on a larger disk.' % (data_dir, count, needed >> 20, cache_dir,
                                                        free >> 20))


def _decode(files, where):
    """([uint8 [32, 32, 3]], [class index]) of the files TensorFlow decodes; warns of the rest."""
    decoder = images_lib.ImageDecoder()
    decoded, labels = [], []
    started = last = time.time()
    try:
        for done, (path, index) in enumerate(files, 1):
            try:
                decoded.append(decoder.decode(path))
                labels.append(index)
            except ValueError as e:
                logging.warning('%s %s; it is skipped.', path, e)
            if time.time() - last >= _PROGRESS_SECS:
                last = time.time()
                logging.info('Decoding %s: %d of %d images (%.0f images/s).', where, done,
                             len(files), done / (last - started))
    finally:
        decoder.close()
    logging.info('Decoded %s: %d images in %.1f s.', where, len(labels), time.time() - started)
    return decoded, labels


def label_names(data_dir):
    """The class names, from the folder names alone."""
    return list_folder(data_dir).names
