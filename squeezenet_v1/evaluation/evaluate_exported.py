"""`--mode=eval --exported_model=PATH`: an exported artifact's accuracy on the test split.

So a user checks the file they will ship (the int8 TFLite's quantization included) on the data
the checkpoint was evaluated on. The artifact runs in its own runtime (artifacts.py); accuracy,
loss (mean cross-entropy of its probabilities, in float64) and per-class accuracy are logged in
the form `--mode=eval` uses. Nothing is written: the results belong to the file, not to a
model_dir's history.
"""

import math
import os

import numpy as np
from absl import logging

from squeezenet_v1.data import cifar10
from squeezenet_v1.deploy import artifacts
from squeezenet_v1.training import run_records

# Probabilities are clipped here before the log, as a softmax rounded to 0 in float32 would
# otherwise make one image's loss infinite.
_TINY = 1e-30


def export_folder(exported_model):
    """The export an artifact belongs to: the folder holding labels.txt and size_report.json."""
    path = os.path.abspath(exported_model).rstrip(os.sep)
    return os.path.dirname(path)


def exported_label_names(exported_model):
    """The class names the export wrote beside the artifact (its labels.txt)."""
    artifacts.check_artifact(exported_model)  # a missing or wrong file is told as such first
    folder = export_folder(exported_model)
    if not os.path.isfile(os.path.join(folder, run_records.LABELS_FILE)):
        raise artifacts.ArtifactError(
            '%s has no %s beside it, so its classes have no names. Give a file of a folder '
            '--mode=export wrote.' % (exported_model, run_records.LABELS_FILE))
    return run_records.model_label_names(folder, None, None)


def split_images(source):
    """(uint8 images [N, 32, 32, 3], int labels [N]) of a SplitSource's record files."""
    parts = [cifar10.read_binary_batch(path) for path in source.record_files]
    images = np.concatenate([p[0] for p in parts]).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return np.ascontiguousarray(images), np.concatenate([p[1] for p in parts]).astype(np.int64)


def evaluate_exported(artifact, label_names, source):
    """Runs an opened artifact (artifacts.open_artifact) over the split; logs and returns the
    results."""
    exported_model, kind = artifact.path, artifact.kind
    images, labels = split_images(source)
    probabilities = artifact.probabilities(images)
    artifacts.check_label_count(exported_model, probabilities, label_names)
    if len(label_names) != len(source.label_names):
        raise artifacts.ArtifactError(
            '%s has %d classes; the %s test split has %d. Give --dataset the set it was '
            'trained on.' % (exported_model, len(label_names), source.dataset,
                             len(source.label_names)))
    correct = np.argmax(probabilities, axis=1) == labels
    chosen = probabilities[np.arange(len(labels)), labels].astype(np.float64)
    results = {
        'exported_model': exported_model,
        'kind': kind,
        'accuracy': float(np.mean(correct)),
        'loss': math.fsum(-np.log(np.maximum(chosen, _TINY))) / len(labels),
        'num_examples': int(len(labels)),
        'per_class_accuracy': {
            name: float(np.mean(correct[labels == k])) if np.any(labels == k) else None
            for k, name in enumerate(label_names)},
        'dataset': source.dataset,
        'split': source.split,
    }
    logging.info('Evaluation of %s (%s) on %d %s images: accuracy = %.4f, loss = %.4f',
                 exported_model, kind, results['num_examples'], source.dataset,
                 results['accuracy'], results['loss'])
    for name, accuracy in results['per_class_accuracy'].items():
        logging.info('  %-20s %s', name, 'n/a' if accuracy is None else '%.4f' % accuracy)
    return results
