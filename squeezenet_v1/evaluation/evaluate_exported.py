"""`--mode=eval --exported_model=PATH`: an exported artifact's accuracy on the test split.

So a user checks the file they will ship (the int8 TFLite's quantization included) on the data
the checkpoint was evaluated on. The artifact runs in its own runtime (artifacts.py); accuracy,
loss (mean cross-entropy of its probabilities, in float64) and per-class accuracy are logged in
the form `--mode=eval` uses. Nothing is written: the results belong to the file, not to a
model_dir's history.
"""

import math

import numpy as np
from absl import logging

from squeezenet_v1.data import datasets
from squeezenet_v1.deploy import artifacts

# Probabilities are clipped here before the log, as a softmax rounded to 0 in float32 would
# otherwise make one image's loss infinite.
_TINY = 1e-30


def evaluate_exported(artifact, label_names, source):
    """Runs an opened artifact (artifacts.open_artifact) over the split; logs and returns the
    results."""
    exported_model, kind = artifact.path, artifact.kind
    images, labels = datasets.split_images(source)
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
