"""Exporting the newest checkpoint: SavedModel, frozen GraphDef, TFLite, ONNX, Keras 3; each
measured against the TF1 graph, and their sizes.

Export writes only into a folder that is absent, empty, or an earlier export (it holds
size_report.json and nothing an export does not write); never into or above the model_dir, over
a file or through a symlink. Everything is written into a temporary folder beside --export_dir
and renamed into place only when complete, so an export is whole or absent.
"""

import errno
import os
import re
import warnings

import numpy as np

import tensorflow as tf
from absl import logging

from squeezenet_v1.model_dir import checkpoints
from squeezenet_v1.model_dir import run_records
from squeezenet_v1.files import atomic
from squeezenet_v1.files import literal_paths
from squeezenet_v1.files import reading
from squeezenet_v1.files import temporaries
from squeezenet_v1 import interrupts
from squeezenet_v1 import parameters
from squeezenet_v1.data import synthetic
from squeezenet_v1.deploy import artifacts
from squeezenet_v1.deploy import keras_model
from squeezenet_v1.deploy import onnx_model
from squeezenet_v1.deploy import serving
from squeezenet_v1.errors import UserError, first_line

tf1 = tf.compat.v1

SAVED_MODEL_DIR = 'saved_model'
FROZEN_GRAPH_FILE = 'frozen_graph.pb'
TFLITE_FLOAT_FILE = 'model_float32.tflite'
TFLITE_INT8_FILE = 'model_int8.tflite'
ONNX_FILE = 'model.onnx'
KERAS_FILE = 'model.keras'
SIZE_REPORT_FILE = artifacts.SIZE_REPORT_FILE
EXPORT_NAMES = frozenset([SAVED_MODEL_DIR, FROZEN_GRAPH_FILE, TFLITE_FLOAT_FILE,
                          TFLITE_INT8_FILE, ONNX_FILE, KERAS_FILE, SIZE_REPORT_FILE,
                          run_records.LABELS_FILE])
# Each artifact's probabilities against the TF1 graph's: what the float ones must hold. The int8
# TFLite's weights are quantized by design; its difference is measured and reported, not bound.
MAX_PROBABILITY_DIFFERENCE = 1e-5
QUANTIZED = frozenset([TFLITE_INT8_FILE])
# Checked on the test split when it is at hand, else on this many synthetic test images.
SYNTHETIC_CHECK_IMAGES = 1000
ONE_MB = 1000000


class ExportTargetError(UserError):
    """--export_dir names a place an export must not write to."""


def check_export_dir(export_dir, model_dir):
    """Raises ExportTargetError unless export_dir is absent, empty or an earlier export."""
    def refuse(why):
        raise ExportTargetError('--export_dir %s %s. Name a new folder (the default is '
                                '<model_dir>/export).' % (export_dir, why))

    if os.path.basename(export_dir.rstrip(os.sep)) in ('', '.', '..'):
        refuse('names a folder by . or ..; an export replaces its folder')
    if os.path.islink(export_dir):
        refuse('is a symlink; an export would replace it')
    target = os.path.realpath(export_dir)
    model = os.path.realpath(model_dir)
    if target == model or model.startswith(target.rstrip(os.sep) + os.sep):
        refuse('is the model_dir %s or holds it; an export replaces its folder' % model_dir)
    existing = target
    while not os.path.lexists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        refuse('is a file' if existing == target else 'is under a file (%s)' % existing)
    if existing != target:
        if not os.access(existing, os.W_OK | os.X_OK):
            refuse('cannot be created: %s is not writable' % existing)
        return
    names = set(os.listdir(target))
    foreign = _foreign_entries(target)
    if foreign:
        refuse('holds files an export does not write (%s)' % ', '.join(foreign[:5]))
    if names and SIZE_REPORT_FILE not in names:
        refuse('is not empty and holds no %s, so it is not an earlier export' % SIZE_REPORT_FILE)
    if not os.access(os.path.dirname(target), os.W_OK | os.X_OK):
        refuse('cannot be replaced: %s is not writable' % os.path.dirname(target))


# What an export writes, folder by folder (relative to the export): anything else is a user's.
_EXPORT_TREE = {
    '': EXPORT_NAMES,
    SAVED_MODEL_DIR: {'saved_model.pb', 'fingerprint.pb', 'variables', 'assets'},
    os.path.join(SAVED_MODEL_DIR, 'variables'): re.compile(
        r'^variables\.(index|data-\d{5}-of-\d{5})$'),
    os.path.join(SAVED_MODEL_DIR, 'assets'): frozenset(),
}


def _foreign_entries(target):
    """Paths under target (relative) that an export does not write, symlinks included."""
    foreign = []
    for root, dirs, names in os.walk(target):
        relative = os.path.relpath(root, target)
        allowed = _EXPORT_TREE.get('' if relative == '.' else relative, frozenset())
        for name in sorted(dirs + names):
            path = os.path.join(root, name)
            known = allowed.match(name) if hasattr(allowed, 'match') else name in allowed
            if not known or os.path.islink(path):
                foreign.append(os.path.relpath(path, target))
        dirs[:] = [d for d in dirs if not os.path.islink(os.path.join(root, d))]
    return foreign


def export(model_dir, export_dir, label_names, checkpoint_path=None, check_images=None,
           dataset=None, saved_model_only=False):
    """Writes every format into export_dir from checkpoint_path (default: model_dir's newest);
    returns the report: sizes, and each artifact's agreement with the TF1 graph on
    check_images ((uint8 images [N, 32, 32, 3], what they are); default: synthetic test images).
    `dataset`, the set the model was trained on, is recorded for --mode=eval --exported_model.
    `saved_model_only` writes the SavedModel, the frozen graph and labels.txt, and measures
    them (the golden record captures the SavedModel and needs no other format).
    """
    check_export_dir(export_dir, model_dir)
    checkpoints.choose_checkpoint(model_dir, checkpoint_path)
    parent = os.path.dirname(os.path.abspath(export_dir))
    os.makedirs(parent, exist_ok=True)
    for path in temporaries.remove_stale_temporaries(parent):
        logging.info('Removed %s, left by an export that was killed.', path)
    staging = temporaries.make_temp_dir(parent, os.path.basename(export_dir))
    try:
        report = _export_into(model_dir, staging, label_names, checkpoint_path,
                              check_images or synthetic_check_images(), dataset,
                              saved_model_only)
        atomic.replace_dir(staging, export_dir)
    except (OSError, tf.errors.OpError) as e:
        temporaries.remove_path(staging)
        if not _disk_full(e):
            raise
        raise ExportTargetError('the disk holding %s is full (%s) while exporting; nothing was '
                                'written there and an earlier export is as it was. Free some '
                                'space, or give --export_dir on another disk.'
                                % (export_dir, first_line(e)))
    except BaseException:
        temporaries.remove_path(staging)
        raise
    logging.info('Exported %s into %s', report['checkpoint'], export_dir)
    return report


def _disk_full(error):
    """Whether Python (ENOSPC, EDQUOT) or TensorFlow's file writers ran out of room."""
    if isinstance(error, OSError):
        return error.errno in (errno.ENOSPC, errno.EDQUOT)
    return 'No space left on device' in str(error) or 'Disk quota exceeded' in str(error)


def _restore_and_measure(checkpoint_path, label_names):
    """(ServingGraph, Session, checkpoint path, its size), sized while it surely exists."""
    graph, sess = serving.restored_session(checkpoint_path, label_names)
    try:
        return graph, sess, checkpoint_path, _checkpoint_bytes(checkpoint_path)
    except BaseException:
        sess.close()
        raise


def synthetic_check_images():
    """(uint8 images, what they are) when no test split is at hand."""
    images, _ = synthetic.make_split('test')
    images = images[:SYNTHETIC_CHECK_IMAGES].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return images, '%d synthetic test images' % len(images)


def _export_into(model_dir, out_dir, label_names, checkpoint_path, check_images, dataset,
                 saved_model_only):
    graph, sess, latest, checkpoint_bytes = checkpoints.with_checkpoint(
        model_dir, lambda path: _restore_and_measure(path, label_names), checkpoint_path)
    images, images_are = check_images
    with sess:
        global_step = int(sess.run(graph.global_step))
        model_variables = [v for v in graph.variables if v.op.name != 'global_step']
        weights = parameters.parameter_report(model_variables)
        values = dict(zip([v.op.name for v in model_variables], sess.run(model_variables)))
        reference = np.concatenate([
            sess.run(graph.probabilities, {graph.images: images[i:i + 256]})
            for i in range(0, len(images), 256)])
        with graph.graph.as_default():
            _write_saved_model(sess, graph, os.path.join(out_dir, SAVED_MODEL_DIR))
            frozen = _frozen_graph_def(sess, graph)
            weights_only_bytes = _weights_only_checkpoint_bytes(sess, graph, out_dir)
    atomic.write_bytes_atomic(os.path.join(out_dir, FROZEN_GRAPH_FILE),
                             frozen.SerializeToString())
    run_records.write_label_names(out_dir, label_names)
    tflite, skipped = {}, {}
    if not saved_model_only:
        with interrupts.deferred():  # the converters' destructors would swallow a Ctrl-C
            tflite = _write_tflite(os.path.join(out_dir, SAVED_MODEL_DIR), out_dir)
            skipped = dict(tflite.pop('skipped', {}))
            skipped.update(_write_onnx(frozen, os.path.join(out_dir, ONNX_FILE)))
        _write_keras(values, len(label_names), os.path.join(out_dir, KERAS_FILE))
    matches = _measure_against_tf1(out_dir, images, reference)

    report = {
        'checkpoint': os.path.basename(latest),
        'dataset': dataset,
        'global_step': global_step,
        'parameters': weights['total_parameters'],
        'float32_weight_bytes': weights['float32_bytes'],
        'checkpoint_bytes': checkpoint_bytes,
        'checkpoint_bytes_without_adam': weights_only_bytes,
        'saved_model_bytes': _tree_bytes(os.path.join(out_dir, SAVED_MODEL_DIR)),
        'frozen_graph_bytes': os.path.getsize(os.path.join(out_dir, FROZEN_GRAPH_FILE)),
        'tflite_float32_bytes': tflite.get(TFLITE_FLOAT_FILE),
        'tflite_int8_bytes': tflite.get(TFLITE_INT8_FILE),
        'onnx_bytes': _size_if_written(out_dir, ONNX_FILE),
        'onnx_opset': onnx_model.OPSET if ONNX_FILE in matches else None,
        'keras_bytes': _size_if_written(out_dir, KERAS_FILE),
        'skipped': skipped,
        'tflite_skipped': {n: r for n, r in skipped.items() if n.endswith('.tflite')},
        'agreement_images': images_are,
        'agreement': matches,  # the report's key since its first version
        # What --exported_model checks a file against before a runtime reads it.
        'sha256': {name: reading.file_digest(os.path.join(out_dir, name))
                   for name in matches if os.path.isfile(os.path.join(out_dir, name))},
    }
    atomic.write_json_atomic(os.path.join(out_dir, SIZE_REPORT_FILE), report)
    return report


def _write_saved_model(sess, graph, path):
    builder = tf1.saved_model.Builder(path)
    signature = tf1.saved_model.predict_signature_def(
        inputs={serving.INPUT_KEY: graph.images},
        outputs={serving.PROBABILITIES_KEY: graph.probabilities,
                 serving.CLASSES_KEY: graph.classes})
    builder.add_meta_graph_and_variables(
        sess, [tf1.saved_model.tag_constants.SERVING],
        signature_def_map={'serving_default': signature}, strip_default_attrs=True)
    builder.save()


def _frozen_graph_def(sess, graph):
    """Variables folded into constants; only what `probabilities` and `classes` need."""
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', DeprecationWarning)
        frozen = tf1.graph_util.convert_variables_to_constants(
            sess, graph.graph.as_graph_def(),
            [serving.PROBABILITIES_KEY, serving.CLASSES_KEY])
        return tf1.graph_util.remove_training_nodes(
            frozen, protected_nodes=[serving.INPUT_KEY, serving.PROBABILITIES_KEY,
                                     serving.CLASSES_KEY])


def _weights_only_checkpoint_bytes(sess, graph, out_dir):
    """Size of a checkpoint of the model's weights alone (no Adam slots, no global_step)."""
    # Inside the export's staging folder.
    scratch = temporaries.make_temp_dir(out_dir, 'weights_only')
    try:
        saver = tf1.train.Saver([v for v in graph.variables if v.op.name != 'global_step'])
        prefix = saver.save(sess, os.path.join(scratch, 'weights'), write_meta_graph=False,
                            write_state=False)
        return _checkpoint_bytes(prefix)
    finally:
        temporaries.remove_path(scratch)


def _write_tflite(saved_model_dir, out_dir):
    """Float32 and dynamic-range int8 flat buffers; a converter refusal skips the format, its
    reason under 'skipped'."""
    written, skipped = {}, {}
    for name, optimize in ((TFLITE_FLOAT_FILE, False), (TFLITE_INT8_FILE, True)):
        try:
            # convert() reads the SavedModel, so the literal path must stay open until it ends.
            with literal_paths.literal_path(saved_model_dir) as path:
                converter = tf.lite.TFLiteConverter.from_saved_model(
                    path, signature_keys=['serving_default'])
                if optimize:
                    converter.optimizations = [tf.lite.Optimize.DEFAULT]
                flat_buffer = converter.convert()
        except Exception as e:  # the converter raises many types; any refusal skips the format
            skipped[name] = 'the TFLite converter refused it: %s' % first_line(e)
            continue
        path = atomic.write_bytes_atomic(os.path.join(out_dir, name), flat_buffer)
        written[name] = os.path.getsize(path)
    if skipped:
        written['skipped'] = skipped
    return written


def _measure_against_tf1(out_dir, images, reference):
    """{artifact written: its agreement with the TF1 graph's probabilities on the images},
    each read back from its file by its own runtime, as its users will."""
    matches = {}
    for name in (SAVED_MODEL_DIR, FROZEN_GRAPH_FILE, TFLITE_FLOAT_FILE, TFLITE_INT8_FILE,
                 ONNX_FILE, KERAS_FILE):
        path = os.path.join(out_dir, name)
        if os.path.exists(path):
            with artifacts.open_artifact(path, just_written=True) as artifact:
                matches[name] = artifacts.probability_match(reference,
                                                            artifact.probabilities(images))
    return matches


def _write_onnx(frozen, path):
    """{} when model.onnx is written; {name: why not} when the extra is missing or refuses
    (the command says it, once, from the report)."""
    missing = onnx_model.missing_packages()
    if missing:
        return {ONNX_FILE: missing}
    try:
        onnx_model.write_onnx(frozen, path)
    except Exception as e:  # the converter raises many types; a refusal skips the format
        return {ONNX_FILE: 'tf2onnx refused it: %s' % first_line(e)}
    return {}


def _write_keras(values, num_classes, path):
    """model.keras: the Keras 3 model of keras_model.py holding these weights."""
    model = keras_model.inference_model(num_classes)
    keras_model.set_checkpoint_weights(model, values)
    model.save(path)


def _size_if_written(out_dir, name):
    path = os.path.join(out_dir, name)
    return os.path.getsize(path) if os.path.exists(path) else None


def _checkpoint_bytes(prefix):
    folder = os.path.dirname(prefix)
    base = os.path.basename(prefix)
    sizes = [os.path.getsize(os.path.join(folder, n)) for n in os.listdir(folder)
             if n == base + '.index' or n.startswith(base + '.data-')]
    if len(sizes) < 2:
        raise FileNotFoundError('%s has lost its files' % prefix)
    return sum(sizes)


def _tree_bytes(path):
    return sum(os.path.getsize(os.path.join(root, n))
               for root, _, names in os.walk(path) for n in names)


# (label, size key, file a probability match is measured for)
_SIZE_ROWS = (
    ('float32 weights', 'float32_weight_bytes', None),
    ('checkpoint (with Adam slots)', 'checkpoint_bytes', None),
    ('checkpoint (weights only)', 'checkpoint_bytes_without_adam', None),
    ('SavedModel', 'saved_model_bytes', SAVED_MODEL_DIR),
    ('frozen graph', 'frozen_graph_bytes', FROZEN_GRAPH_FILE),
    ('TFLite float32', 'tflite_float32_bytes', TFLITE_FLOAT_FILE),
    ('TFLite int8 (dynamic range)', 'tflite_int8_bytes', TFLITE_INT8_FILE),
    ('ONNX', 'onnx_bytes', ONNX_FILE),
    ('Keras 3', 'keras_bytes', KERAS_FILE),
)


def format_size_report(report):
    """The table: each artifact's size against the notebook's 1 MB claim, and how far its
    probabilities are from the TF1 graph's (max |difference|, top-1 agreement)."""
    matches = report.get('agreement', {})
    rows = [('parameters', '{:,}'.format(report['parameters']), '', '', '')]
    for label, key, name in _SIZE_ROWS:
        size = report.get(key)
        measured = matches.get(name)
        rows.append((label, _mb(size) if size else 'skipped', _vs_1mb(size) if size else '',
                     '%.1e' % measured['max_abs_probability_difference'] if measured else '',
                     '%.2f%%' % (100 * measured['top1_agreement']) if measured else ''))
    width = max(len(row[0]) for row in rows)
    header = ('artifact', 'size', 'vs 1 MB', 'max |dp|', 'top-1 same')
    lines = [('%-*s  %16s  %-17s  %8s  %10s' % ((width,) + header)).rstrip()]
    lines += [('%-*s  %16s  %-17s  %8s  %10s' % ((width,) + row)).rstrip() for row in rows]
    if matches:
        lines.append('max |dp|, top-1 same: against the TF1 graph on %s.'
                     % report.get('agreement_images'))
    return '\n'.join(lines)


def _mb(size):
    return '{:,} B'.format(size)


def _vs_1mb(size):
    return '%.2f MB (%s)' % (size / ONE_MB, 'under' if size < ONE_MB else 'OVER')
