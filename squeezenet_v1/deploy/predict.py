"""Classifying image files with the latest checkpoint, or with any file an export wrote.

Files are decoded by TensorFlow's own decoders (PNG, JPEG; GIF, BMP and WebP too) to RGB:
grayscale is replicated to three channels and an alpha channel is dropped (not composited).
Every image is then resized to 32x32 the same way (bilinear with antialiasing, rounded to
uint8; a 32x32 image passes unchanged) and goes through the serving graph, which applies the
notebook's evaluation preprocessing. A file that cannot be read or decoded is reported by
name; the other files' results are kept.
"""

import json
import os

import numpy as np
import tensorflow as tf

from squeezenet_v1.files import reading
from squeezenet_v1.data import images as images_lib
from squeezenet_v1.data.images import IMAGE_EXTENSIONS
from squeezenet_v1.deploy import artifacts
from squeezenet_v1.deploy import serving
from squeezenet_v1.errors import UserError

tf1 = tf.compat.v1



class NoImagesError(UserError):
    """--images named nothing that could be classified."""


def expand_image_paths(specs):
    """[(path, None) or (spec, why it gives no image)]: files named, and image files of folders.

    Folders are listed (sorted, not recursive) for the IMAGE_EXTENSIONS; blank names are
    skipped; a folder without images or unreadable is an entry with its reason, so the other
    files are still classified.
    """
    entries = []
    for spec in specs:
        if not spec.strip():
            continue
        if not os.path.isdir(spec):
            entries.append((spec, None))
            continue
        try:
            names = sorted(os.listdir(spec))
        except OSError as e:
            entries.append((spec, 'is a folder that cannot be listed (%s)' % (e.strerror or e)))
            continue
        found = [os.path.join(spec, name) for name in names
                 if name.lower().endswith(IMAGE_EXTENSIONS)
                 and os.path.isfile(os.path.join(spec, name))]
        if not found:
            entries.append((spec, 'is a folder with no image files (%s)'
                            % ', '.join(IMAGE_EXTENSIONS)))
        entries.extend((path, None) for path in found)
    if not entries:
        raise NoImagesError('--images named no files: give image files or folders, '
                            'comma-separated.')
    return entries


def printable(name):
    """A file name as one line a person can read: quoted with escapes if it has odd characters."""
    return name if name.isprintable() else json.dumps(name)


def load_images(paths):
    """(decoded images by path, error messages by path) for the given files."""
    decoder = images_lib.ImageDecoder()
    images, errors = {}, {}
    try:
        for path in paths:
            try:
                images[path] = decoder.decode(path)
            except ValueError as e:
                errors[path] = '%s %s' % (printable(path), e)
    finally:
        decoder.close()
    return images, errors


def classify(model_dir, images, label_names, top_k=3, batch_size=256, checkpoint_path=None,
             exported_model=None):
    """Top-k (class index, label, probability) lists for uint8 images [N, 32, 32, 3].

    The model is exported_model (any file of an export, see artifacts.py) when given, else
    checkpoint_path's, else the newest in model_dir.
    """
    if exported_model:
        with artifacts.open_artifact(exported_model) as artifact:
            probabilities = artifact.probabilities(images)
        artifacts.check_label_count(exported_model, probabilities, label_names)
    else:
        serving_graph, sess = serving.chosen_restored_session(model_dir, label_names,
                                                              checkpoint_path)
        try:
            probabilities = np.concatenate([
                sess.run(serving_graph.probabilities,
                         {serving_graph.images: images[i:i + batch_size]})
                for i in range(0, len(images), batch_size)]) if len(images) else np.zeros((0, 0))
        finally:
            sess.close()
    k = min(top_k, len(label_names))
    results = []
    for row in probabilities:
        best = np.argsort(-row, kind='stable')[:k]
        results.append([{'class': int(c), 'label': label_names[c], 'probability': float(row[c])}
                        for c in best])
    return results


def predict(model_dir, image_specs, label_names, top_k=3, checkpoint_path=None,
            exported_model=None):
    """One result dict per file, in order: {'file', 'predictions'} or {'file', 'error'}."""
    entries = expand_image_paths(image_specs)
    paths = [path for path, problem in entries if problem is None]
    images, errors = load_images(paths)
    errors.update({spec: '%s %s' % (printable(spec), problem)
                   for spec, problem in entries if problem})
    good = [p for p in paths if p in images]
    stacked = np.stack([images[p] for p in good]) if good else np.zeros((0, 32, 32, 3), np.uint8)
    predictions = dict(zip(good, classify(model_dir, stacked, label_names, top_k,
                                          checkpoint_path=checkpoint_path,
                                          exported_model=exported_model)))
    return [{'file': p, 'predictions': predictions[p]} if p in predictions
            else {'file': p, 'error': errors[p]} for p, _ in entries]


def is_predictions_file(path):
    """Whether path is a plain file holding what predict() returns, as JSON (ours to replace)."""
    results = reading.read_plain_json(path)
    return isinstance(results, list) and all(
        isinstance(r, dict) and 'file' in r and ('predictions' in r or 'error' in r)
        for r in results)


def format_results(results):
    """Lines a person reads: each file with its top-k labels, or its error."""
    lines = []
    for result in results:
        if 'error' in result:
            lines.append('%s: ERROR: %s' % (printable(result['file']), result['error']))
        else:
            lines.append('%s: %s' % (printable(result['file']), ', '.join(
                '%s (%.3f)' % (p['label'], p['probability']) for p in result['predictions'])))
    return '\n'.join(lines)
