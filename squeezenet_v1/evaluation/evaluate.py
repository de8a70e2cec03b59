"""Exact evaluation of checkpoints: every test image counted once, every result kept.

Like the TF1 tutorial's `cifar10_eval.py`, but global_step is read from the restored graph, not
parsed from a file name, and the last partial batch is counted. An `Evaluator` builds the graph
once and evaluates one checkpoint after another (train_and_eval evaluates each checkpoint it
writes; continuous_eval each one it finds). Each evaluation is recorded in model_dir:
`eval_results.json` holds the latest, `eval_history.jsonl` gains a line, and the TensorBoard
curve under `eval/` a point.
"""

import datetime
import math
import os
import time

import numpy as np
import tensorflow as tf
from absl import logging

from squeezenet_v1 import dead_relu
from squeezenet_v1 import machine
from squeezenet_v1 import waits
from squeezenet_v1.model_dir import checkpoints
from squeezenet_v1.files import atomic
from squeezenet_v1.files import reading
from squeezenet_v1 import run_flags
from squeezenet_v1.errors import UserError
from squeezenet_v1.data import cifar10
from squeezenet_v1.data import input_pipeline
from squeezenet_v1.model_dir import run_records
from squeezenet_v1.training.session_options import session_config
from squeezenet_v1.model import new_model

tf1 = tf.compat.v1

EVAL_RESULTS_FILE = run_records.EVAL_RESULTS_FILE
EVAL_HISTORY_FILE = run_records.EVAL_HISTORY_FILE


class ResultsNotWrittenError(UserError):
    """An evaluation ran and was reported, but its files could not be written."""


def evaluation_graph(num_classes):
    """(graph, model, records placeholder): the evaluation path, fed uint8 records [N, 3072].

    Fed decoded batches, as a served model is: see input_pipeline.read_evaluation_split. The
    model's predictions and logits are what an Evaluator fetches.
    """
    graph = tf.Graph()
    with graph.as_default():
        # Evaluation draws no random numbers, but under op determinism (--seed) every graph
        # whose variables have initializers needs a seed.
        tf1.set_random_seed(0)
        model = new_model(num_classes)
        records = tf1.placeholder(tf.uint8, [None, cifar10.IMAGE_BYTES], 'records')
        labels = tf1.placeholder(tf.int32, [None], 'labels')  # for the graph's loss; not fed
        model.run_model_setup(input_pipeline.preprocess_batch(model, records), labels,
                              is_training=False)
    return graph, model, records


class Evaluator(object):
    """Evaluates checkpoints of one model on `source` and records each result in model_dir.

    `precision` is run_train.py's --precision ('fp32', 'bf16' or 'fp16'), applied to the
    evaluation session through session_options. Use as a context manager, or call close().
    """

    def __init__(self, model_dir, source, batch_size, precision='fp32'):
        self.model_dir = model_dir
        self.source = source
        self.precision = precision
        self._batch_size = batch_size
        # Read once, before anything is built: every checkpoint is evaluated on the same split.
        self._split = input_pipeline.read_evaluation_split(source.record_files,
                                                           len(source.label_names))
        self._graph, self._model, records = evaluation_graph(len(source.label_names))
        with self._graph.as_default():
            self._variables = tf1.global_variables()
            self._saver = tf1.train.Saver(self._variables)
        self._graph.finalize()
        # --precision applies to evaluation as a TF1 session_config did to every session.
        self._sess = tf1.Session(graph=self._graph, config=session_config(precision))
        self._predict = self._sess.make_callable([self._model.predictions, self._model.logits],
                                                 feed_list=[records])
        self._writer = None

    def close(self):
        with waits.announced('closing the evaluation\'s TensorFlow session'):
            self._sess.close()
            if self._writer:
                self._writer.close()

    def __enter__(self):
        return self

    def __exit__(self, *unused_exc_info):
        self.close()

    def evaluate(self, checkpoint_path=None, per_class_table=True):
        """Evaluates checkpoint_path (default: model_dir's newest), records and returns the results.

        Logs one line, and the per-class table after it when `per_class_table`.

        The results dict holds global_step, accuracy, loss (mean cross-entropy), num_examples,
        per_class_accuracy (by class name), dataset, split, checkpoint, eval_precision (the
        session's, see session_options), the run's experiment flags, versions, evaluated_at and
        eval_seconds.
        """
        started = time.time()
        checkpoint_path = checkpoints.with_checkpoint(self.model_dir, self._restore,
                                                      checkpoint_path)
        results = self._count(checkpoint_path)
        results['eval_seconds'] = round(time.time() - started, 3)
        # Said first, so a write that fails (a read-only or full model_dir) loses nothing.
        logging.info('Evaluation of %s at step %d on %d %s images: accuracy = %.4f, loss = %.4f '
                     '(%.1f s)', results['checkpoint'], results['global_step'],
                     results['num_examples'], self.source.dataset, results['accuracy'],
                     results['loss'], results['eval_seconds'])
        if per_class_table:
            log_per_class_table(results)
        try:
            self._record(results)
        except OSError as e:
            raise ResultsNotWrittenError(
                'the results above were not written into %s (%s). Make room, or make the folder '
                'writable, and evaluate again.' % (self.model_dir, e.strerror or e))
        return results

    def _restore(self, checkpoint_path):
        with self._graph.as_default():
            checkpoints.restore(self._sess, self._saver, checkpoint_path, self._variables)
        # Taken while the files are surely there (a trainer's rotation may remove them next).
        self._fingerprint = checkpoints.fingerprint(checkpoint_path)
        return checkpoint_path

    def _count(self, checkpoint_path):
        global_step = int(self._sess.run(self._model.global_step))
        labels = self._split[1]
        batches = [self._predict(records) for records, _ in
                   input_pipeline.evaluation_batches(self._split, self._batch_size)]
        predictions, logits = (np.concatenate(parts) for parts in zip(*batches))
        if labels.size != self.source.num_examples:
            raise RuntimeError('evaluated %d images but the %s split has %d'
                               % (labels.size, self.source.split, self.source.num_examples))
        correct = labels == predictions
        flags = run_records.recorded_flags(self.model_dir)
        loss = mean_cross_entropy(logits, labels)
        return {
            'global_step': global_step,
            'accuracy': float(np.mean(correct)),
            'loss': loss,
            # A dead final ReLU (every logit zero) or live logits equal for every image.
            'uniform_predictions': dead_relu.diagnose(loss, logits, len(self.source.label_names),
                                                      without_dropout=True),
            'num_examples': int(labels.size),
            'per_class_accuracy': {
                name: float(np.mean(correct[labels == k])) if np.any(labels == k) else None
                for k, name in enumerate(self.source.label_names)},
            'dataset': self.source.dataset,
            'split': self.source.split,
            'checkpoint': _checkpoint_name(self.model_dir, checkpoint_path),
            'checkpoint_fingerprint': self._fingerprint,
            'eval_precision': self.precision,
            'flags': {name: flags[name] for name in run_flags.EXPERIMENT_FLAGS if name in flags},
            'versions': machine.versions(),
            'evaluated_at': datetime.datetime.now(datetime.timezone.utc).isoformat(
                timespec='seconds'),
        }

    def _record(self, results):
        # The history first: results must not name a checkpoint the history then does not.
        atomic.check_appendable(os.path.join(self.model_dir, EVAL_HISTORY_FILE))
        atomic.write_json_atomic(os.path.join(self.model_dir, EVAL_RESULTS_FILE), results)
        # Unsorted: per_class_accuracy keeps the classes in label order.
        atomic.append_json_line(os.path.join(self.model_dir, EVAL_HISTORY_FILE), results,
                               sort_keys=False)
        if self._writer is None:
            with self._graph.as_default():
                self._writer = tf1.summary.FileWriter(os.path.join(self.model_dir, 'eval'))
        self._writer.add_summary(tf1.Summary(value=[
            tf1.Summary.Value(tag='accuracy', simple_value=results['accuracy']),
            tf1.Summary.Value(tag='loss', simple_value=results['loss'])]),
            results['global_step'])
        self._writer.flush()


def log_per_class_table(results):
    """The accuracy of each class, one line each, in label order."""
    for name, accuracy in results['per_class_accuracy'].items():
        logging.info('  %-20s %s', name, 'n/a' if accuracy is None else '%.4f' % accuracy)


def mean_cross_entropy(logits, labels):
    """The mean softmax cross-entropy, in float64 and exactly summed.

    The logits do not depend on the batch size, but TensorFlow's cross-entropy kernel does in
    its last bit; computed here, the loss is the same for every --eval_batch_size.
    """
    logits = logits.astype(np.float64)
    largest = logits.max(axis=1)
    log_sum_exp = largest + np.log(np.sum(np.exp(logits - largest[:, None]), axis=1))
    per_example = log_sum_exp - logits[np.arange(len(labels)), labels]
    return math.fsum(per_example) / len(labels)


def _checkpoint_name(model_dir, checkpoint_path):
    """The checkpoint's file name when it lies in model_dir, else its whole path."""
    if os.path.realpath(os.path.dirname(checkpoint_path)) == os.path.realpath(model_dir):
        return os.path.basename(checkpoint_path)
    return os.path.abspath(checkpoint_path)


def evaluate(model_dir, source, batch_size, checkpoint_path=None, precision='fp32'):
    """Evaluates one checkpoint (default: the newest in model_dir); records and returns results."""
    checkpoints.choose_checkpoint(model_dir, checkpoint_path)  # before building anything
    with Evaluator(model_dir, source, batch_size, precision) as evaluator:
        return evaluator.evaluate(checkpoint_path)


def evaluated_steps(model_dir):
    """The steps of model_dir's checkpoints that eval_history.jsonl holds results for.

    A line that cannot be read (cut short by a crash, edited by hand, not UTF-8) counts as no
    result: its checkpoint is evaluated again. So does a line whose checkpoint_fingerprint is
    not that of the checkpoint now under its name: its results are of other weights (an
    earlier run's). Lines without a fingerprint (written by earlier versions) and lines whose
    checkpoint is gone count by their step.
    """
    steps, other_weights = set(), []
    fingerprints = {}
    try:
        lines = reading.read_json_lines(os.path.join(model_dir, EVAL_HISTORY_FILE))
    except FileNotFoundError:
        lines = []
    for _, record in lines:
        try:
            name = record['checkpoint']
            if not isinstance(name, str) or os.path.dirname(name):
                continue  # a checkpoint from elsewhere (--checkpoint_path)
            step = int(record['global_step'])
            recorded = record.get('checkpoint_fingerprint')
        except (ValueError, KeyError, TypeError, AttributeError, OverflowError):
            continue  # a line cut short by a crash (None), or edited by hand
        if name not in fingerprints:
            fingerprints[name] = checkpoints.fingerprint(os.path.join(model_dir, name))
        if recorded and fingerprints[name] and recorded != fingerprints[name]:
            other_weights.append(name)
            continue
        steps.add(step)
    if other_weights:
        logging.warning('%s holds results for %s of other weights than the checkpoints now '
                        'there (an earlier run\'s); they are evaluated again.',
                        EVAL_HISTORY_FILE, ', '.join(sorted(set(other_weights))))
    return steps
