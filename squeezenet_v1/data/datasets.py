"""Resolves `--dataset` and `--data_dir` into binary record files the input pipeline reads.

The binary release is read in place; the python release and the synthetic set are converted to
the binary record format once and kept in a cache named by their content (records_cache_dir()),
so one pipeline serves all three and a killed run leaves nothing the next one does not reuse.
"""

import collections
import hashlib
import os

import numpy as np
from absl import logging

from squeezenet_v1.data import cifar10
from squeezenet_v1.data import cifar100
from squeezenet_v1.data import image_folder
from squeezenet_v1.data import download as download_lib
from squeezenet_v1.files import atomic
from squeezenet_v1.files import reading
from squeezenet_v1.files import temporaries
from squeezenet_v1.data import synthetic
from squeezenet_v1.data.errors import DataError

DATASETS = ('cifar10', 'synthetic', 'cifar100', 'cifar100_coarse', 'folder')
CACHE_DIR_ENV = 'SQUEEZENET_V1_CACHE_DIR'

# A data set of official releases: its name, the releases, what to do without one, and the
# release --download fetches.
_Family = collections.namedtuple('_Family', ['title', 'releases', 'get_the_data', 'download'])
CIFAR10 = _Family('CIFAR-10', cifar10.RELEASES, cifar10.GET_THE_DATA, cifar10.BINARY)
CIFAR100 = _Family('CIFAR-100', cifar100.RELEASES, cifar100.GET_THE_DATA, cifar100.BINARY)

SplitSource = collections.namedtuple(
    'SplitSource', ['dataset', 'split', 'record_files', 'num_examples', 'label_names'])


def records_cache_dir():
    """Where converted records are kept: $SQUEEZENET_V1_CACHE_DIR, else the user's cache."""
    return os.environ.get(CACHE_DIR_ENV) or os.path.join(
        os.environ.get('XDG_CACHE_HOME') or os.path.expanduser('~/.cache'), 'squeezenet_v1')


def prepare_split(dataset, split, data_dir, cache_dir, download=False,
                  download_url=None, download_md5=None,
                  download_deadline_secs=download_lib.DEFAULT_DEADLINE_SECS):
    """Checks the data for one split and returns a SplitSource of validated record files.

    With `download`, an absent CIFAR-10, or batch files missing from its folder, are fetched
    (from `download_url`, default the official binary archive, checked against `download_md5`,
    within `download_deadline_secs`) and extracted into data_dir first. Records
    converted from another format are kept in cache_dir under a name made of their content.
    """
    cifar10.check_split(split)
    if dataset == 'synthetic':
        images, labels = synthetic.make_split(split)
        path = _cached_records(cache_dir, 'synthetic_%s' % split, images, labels)
        return SplitSource(dataset, split, [path], len(labels), list(synthetic.LABEL_NAMES))
    if dataset not in DATASETS:
        raise ValueError('dataset must be one of %s, got %r' % (DATASETS, dataset))
    if dataset == 'folder':
        path, count, names = image_folder.prepare_split(data_dir, split, cache_dir)
        return SplitSource(dataset, split, [path], count, names)
    fetch = _Fetch(download, download_url, download_md5, download_deadline_secs)
    if dataset.startswith('cifar100'):
        coarse = dataset == 'cifar100_coarse'
        release, folder = _find_or_fetch_release(data_dir, fetch, CIFAR100)
        images, labels = cifar100.read_split(folder, release, split, coarse)
        names = cifar100.read_names(folder, release, coarse)
        files = [_cached_records(cache_dir, '%s_%s' % (dataset, split), images, labels)]
        logging.info('CIFAR-100 %s split (%d %s classes): %d images from %s', split, len(names),
                     'coarse' if coarse else 'fine', len(labels), folder)
        return SplitSource(dataset, split, files, len(labels), names)
    release, folder = _find_or_fetch_release(data_dir, fetch, CIFAR10)
    images, labels = cifar10.read_release_split(folder, release, split)
    names = cifar10.read_label_names(folder)
    if release is cifar10.BINARY:
        files = [os.path.join(folder, n) for n in release.batch_files(split)]
    else:
        files = [_cached_records(cache_dir, 'cifar10_%s' % split, images, labels)]
    logging.info('CIFAR-10 %s split: %d images from %s', split, len(labels), folder)
    return SplitSource(dataset, split, files, len(labels), names)


def _cached_records(cache_dir, name, images, labels):
    """The path of these records in cache_dir (`<name>-<sha256 prefix>.bin`), written if absent.

    The content names the file, so concurrent runs agree on it, a file of the right name holds
    the right records, and a killed writer leaves only a temporary the next call removes.
    """
    records = cifar10.binary_records(images, labels)
    digest = hashlib.sha256(records).hexdigest()[:16]
    path = os.path.join(cache_dir, '%s-%s.bin' % (name, digest))
    try:
        os.makedirs(cache_dir, exist_ok=True)
        temporaries.remove_stale_temporaries(cache_dir)
        if not (os.path.isfile(path) and os.path.getsize(path) == len(records)
                and reading.file_digest(path).startswith(digest)):
            atomic.write_bytes_atomic(path, records)
    except OSError as e:
        raise DataError('cannot write converted records into the cache folder %s (%s). Set %s '
                        'to a folder you can write to.' % (cache_dir, e.strerror or e,
                                                           CACHE_DIR_ENV))
    return path


_Fetch = collections.namedtuple('_Fetch', ['enabled', 'url', 'md5', 'deadline_secs'])


def _find_or_fetch_release(data_dir, fetch, family):
    """Returns (release, extracted folder), extracting or downloading an archive if needed."""
    binary, python = family.releases
    if os.path.exists(data_dir) and not os.path.isdir(data_dir):
        raise DataError('--data_dir %s is a file, not a folder. Point --data_dir at the folder '
                        'that holds %s/ or %s.' % (data_dir, binary.folder, binary.archive))
    for release in family.releases:
        folder = os.path.join(data_dir, release.folder)
        if os.path.isdir(folder):
            _restore_missing_batches(data_dir, release, fetch, family)
            return release, folder
    for release in family.releases:
        archive = os.path.join(data_dir, release.archive)
        if os.path.isfile(archive):
            return release, _verify_and_extract(archive, data_dir, release, release.md5)
    if not fetch.enabled:
        raise DataError('no %s in %s: expected %s/ or %s/ or one of their archives. %s'
                        % (family.title, os.path.abspath(data_dir), binary.folder, python.folder,
                           family.get_the_data))
    release = family.download
    os.makedirs(data_dir, exist_ok=True)
    archive, md5 = _download_archive(data_dir, release, fetch)
    return release, _verify_and_extract(archive, data_dir, release, md5)


def _download_archive(data_dir, release, fetch):
    archive = os.path.join(data_dir, release.archive)
    md5 = fetch.md5 or release.md5
    download_lib.download(fetch.url or release.url, archive, md5,
                          deadline_secs=fetch.deadline_secs, max_bytes=release.size)
    return archive, md5


def _restore_missing_batches(data_dir, release, fetch, family):
    """Adds batch files missing from an extracted folder from its archive, fetched if asked.

    The files present are left as they are. Without an archive or --download, the advice says
    what to do.
    """
    folder = os.path.join(data_dir, release.folder)
    missing = [name for split in cifar10.SPLITS for name in release.batch_files(split)
               if not os.path.isfile(os.path.join(folder, name))]
    if not missing:
        return
    archive, md5 = os.path.join(data_dir, release.archive), release.md5
    if not os.path.isfile(archive):
        if not (fetch.enabled and release is family.download):
            how = ('run again with --download to fetch %s and restore them' % release.archive
                   if release is family.download else
                   'put %s in %s to restore them from it' % (release.archive, data_dir))
            raise DataError('%s: missing %s. Either %s (the files present are kept), or delete '
                            'the folder and start again.' % (folder, ', '.join(missing), how))
        archive, md5 = _download_archive(data_dir, release, fetch)
    download_lib.verify_md5(archive, md5)
    logging.info('Restoring %s into %s from %s', ', '.join(missing), folder, archive)
    download_lib.extract_archive(archive, data_dir, release.folder, only=missing)


def _verify_and_extract(archive, data_dir, release, md5):
    download_lib.verify_md5(archive, md5)
    logging.info('Extracting %s into %s', archive, data_dir)
    try:
        return download_lib.extract_archive(archive, data_dir, release.folder)
    except PermissionError as e:
        raise DataError('cannot extract %s into %s (%s): make the folder writable or extract '
                        'the archive there yourself (tar xzf).' % (archive, data_dir, e))


def label_names(dataset, data_dir):
    """Class names without reading any images: CIFAR-10's from batches.meta when present."""
    if dataset == 'synthetic':
        return list(synthetic.LABEL_NAMES)
    if dataset == 'folder':
        return image_folder.label_names(data_dir)
    if dataset.startswith('cifar100'):
        for release in cifar100.RELEASES:
            folder = os.path.join(data_dir, release.folder)
            if os.path.isdir(folder):
                return cifar100.read_names(folder, release, dataset == 'cifar100_coarse')
        raise DataError('no CIFAR-100 in %s to name the classes with. %s'
                        % (os.path.abspath(data_dir), cifar100.GET_THE_DATA))
    for release in cifar10.RELEASES:
        folder = os.path.join(data_dir, release.folder)
        if os.path.isdir(folder):
            return cifar10.read_label_names(folder)
    return list(cifar10.LABEL_NAMES)


def split_images(source):
    """(uint8 images [N, 32, 32, 3], int labels [N]) of a SplitSource's record files."""
    parts = [cifar10.read_binary_batch(path, len(source.label_names), max_records=None)
             for path in source.record_files]
    images = np.concatenate([p[0] for p in parts]).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return np.ascontiguousarray(images), np.concatenate([p[1] for p in parts]).astype(np.int64)
