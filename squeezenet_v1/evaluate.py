"""Exact evaluation of the newest complete checkpoint: every test image counted once.

Like the TF1 tutorial's `cifar10_eval.py`, but global_step is read from the restored graph, not
parsed from a file name, and the last partial batch is counted.
"""

import os

import numpy as np
import tensorflow as tf
from absl import logging

from squeezenet_v1 import checkpoints
from squeezenet_v1 import files
from squeezenet_v1 import input_pipeline
from squeezenet_v1 import provenance
from squeezenet_v1.session_options import session_config
from squeezenet_v1.model import new_model

tf1 = tf.compat.v1

EVAL_RESULTS_FILE = 'eval_results.json'


def evaluate(model_dir, source, batch_size=32):
    """Evaluates model_dir's latest checkpoint on `source`; writes and returns the results.

    The results dict holds global_step, accuracy, loss (mean cross-entropy), num_examples,
    per_class_accuracy (by class name), dataset, split and checkpoint; it is also written to
    model_dir/eval_results.json and as summaries under model_dir/eval.
    """
    checkpoints.require_latest_checkpoint(model_dir)  # before building anything
    graph = tf.Graph()
    with graph.as_default():
        # Evaluation draws no random numbers, but under op determinism (--seed) every graph that
        # builds an iterator needs a seed.
        tf1.set_random_seed(0)
        model = new_model(len(source.label_names))
        images, labels = input_pipeline.input_fn(
            source.record_files, model, is_training=False, batch_size=batch_size)
        model.run_model_setup(images, labels, is_training=False)
        per_example_loss = tf.nn.sparse_softmax_cross_entropy_with_logits(
            labels=labels, logits=model.logits)
        variables = tf1.global_variables()
        saver = tf1.train.Saver(variables)
    graph.finalize()

    all_labels, all_predictions, loss_sum = [], [], 0.0
    with graph.as_default(), tf1.Session(graph=graph, config=session_config()) as sess:
        def restore(checkpoint_path):
            checkpoints.restore(sess, saver, checkpoint_path, variables)
            return checkpoint_path

        latest = checkpoints.with_latest_checkpoint(model_dir, restore)
        global_step = int(sess.run(model.global_step))
        while True:
            try:
                batch_labels, batch_predictions, batch_loss = sess.run(
                    [labels, model.predictions, per_example_loss])
            except tf.errors.OutOfRangeError:
                break
            all_labels.append(batch_labels)
            all_predictions.append(batch_predictions)
            loss_sum += float(np.sum(batch_loss, dtype=np.float64))

    labels_np = np.concatenate(all_labels)
    predictions_np = np.concatenate(all_predictions)
    if labels_np.size != source.num_examples:
        raise RuntimeError('evaluated %d images but the %s split has %d'
                           % (labels_np.size, source.split, source.num_examples))
    correct = labels_np == predictions_np
    results = {
        'global_step': global_step,
        'accuracy': float(np.mean(correct)),
        'loss': loss_sum / labels_np.size,
        'num_examples': int(labels_np.size),
        'per_class_accuracy': {
            name: float(np.mean(correct[labels_np == k])) if np.any(labels_np == k) else None
            for k, name in enumerate(source.label_names)},
        'dataset': source.dataset,
        'split': source.split,
        'checkpoint': os.path.basename(latest),
        'versions': provenance.versions(),
    }
    _write_summaries(os.path.join(model_dir, 'eval'), results)
    files.write_json_atomic(os.path.join(model_dir, EVAL_RESULTS_FILE), results)
    logging.info('Evaluation of %s at step %d on %d %s images: accuracy = %.4f, loss = %.4f',
                 results['checkpoint'], global_step, results['num_examples'], source.dataset,
                 results['accuracy'], results['loss'])
    for name, accuracy in results['per_class_accuracy'].items():
        logging.info('  %-20s %s', name, 'n/a' if accuracy is None else '%.4f' % accuracy)
    return results


def _write_summaries(eval_dir, results):
    with tf.Graph().as_default():
        writer = tf1.summary.FileWriter(eval_dir)
        summary = tf1.Summary(value=[
            tf1.Summary.Value(tag='accuracy', simple_value=results['accuracy']),
            tf1.Summary.Value(tag='loss', simple_value=results['loss'])])
        writer.add_summary(summary, results['global_step'])
        writer.close()
