"""Exporting the latest checkpoint: SavedModel, frozen GraphDef, TFLite; and their sizes.

Everything is written into a staging folder beside --export_dir and renamed into place only
when complete, so an export is whole or absent.
"""

import os
import shutil
import tempfile
import warnings

import tensorflow as tf
from absl import logging

from squeezenet_v1 import checkpoints
from squeezenet_v1 import files
from squeezenet_v1 import params
from squeezenet_v1 import serving

tf1 = tf.compat.v1

SAVED_MODEL_DIR = 'saved_model'
FROZEN_GRAPH_FILE = 'frozen_graph.pb'
TFLITE_FLOAT_FILE = 'model_float32.tflite'
TFLITE_INT8_FILE = 'model_int8.tflite'
SIZE_REPORT_FILE = 'size_report.json'
LABELS_FILE = 'labels.txt'
ONE_MB = 1000000


def export(model_dir, export_dir, label_names):
    """Writes every format into export_dir from model_dir's latest checkpoint; returns sizes."""
    latest = checkpoints.require_latest_checkpoint(model_dir)
    parent = os.path.dirname(os.path.abspath(export_dir))
    os.makedirs(parent, exist_ok=True)
    staging = tempfile.mkdtemp(prefix='.%s.staging-' % os.path.basename(export_dir), dir=parent)
    os.chmod(staging, 0o755)  # mkdtemp's 0700 would hide the export from a serving user
    try:
        report = _export_into(model_dir, latest, staging, label_names)
        _replace_dir(staging, export_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    logging.info('Exported %s into %s', latest, export_dir)
    return report


def _export_into(model_dir, latest, out_dir, label_names):
    graph, sess = serving.restored_session(model_dir, label_names)
    with sess:
        global_step = int(sess.run(graph.global_step))
        weights = params.parameter_report(
            [v for v in graph.variables if v.op.name != 'global_step'])
        with graph.graph.as_default():
            _write_saved_model(sess, graph, os.path.join(out_dir, SAVED_MODEL_DIR))
            frozen = _frozen_graph_def(sess, graph)
            weights_only_bytes = _weights_only_checkpoint_bytes(sess, graph)
    files.write_bytes_atomic(os.path.join(out_dir, FROZEN_GRAPH_FILE),
                             frozen.SerializeToString())
    files.write_text_atomic(os.path.join(out_dir, LABELS_FILE), '\n'.join(label_names) + '\n')
    tflite = _write_tflite(os.path.join(out_dir, SAVED_MODEL_DIR), out_dir)

    report = {
        'checkpoint': os.path.basename(latest),
        'global_step': global_step,
        'parameters': weights['total_parameters'],
        'float32_weight_bytes': weights['float32_bytes'],
        'checkpoint_bytes': _checkpoint_bytes(latest),
        'checkpoint_bytes_without_adam': weights_only_bytes,
        'saved_model_bytes': _tree_bytes(os.path.join(out_dir, SAVED_MODEL_DIR)),
        'frozen_graph_bytes': os.path.getsize(os.path.join(out_dir, FROZEN_GRAPH_FILE)),
        'tflite_float32_bytes': tflite.get(TFLITE_FLOAT_FILE),
        'tflite_int8_bytes': tflite.get(TFLITE_INT8_FILE),
        'tflite_skipped': tflite.get('skipped', {}),
    }
    files.write_json_atomic(os.path.join(out_dir, SIZE_REPORT_FILE), report)
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


def _weights_only_checkpoint_bytes(sess, graph):
    """Size of a checkpoint of the model's weights alone (no Adam slots, no global_step)."""
    with tempfile.TemporaryDirectory() as scratch:
        saver = tf1.train.Saver([v for v in graph.variables if v.op.name != 'global_step'])
        prefix = saver.save(sess, os.path.join(scratch, 'weights'), write_meta_graph=False,
                            write_state=False)
        return _checkpoint_bytes(prefix)


def _write_tflite(saved_model_dir, out_dir):
    """Float32 and dynamic-range int8 flat buffers; a converter refusal skips with a warning."""
    written, skipped = {}, {}
    for name, optimize in ((TFLITE_FLOAT_FILE, False), (TFLITE_INT8_FILE, True)):
        try:
            converter = tf.lite.TFLiteConverter.from_saved_model(
                saved_model_dir, signature_keys=['serving_default'])
            if optimize:
                converter.optimizations = [tf.lite.Optimize.DEFAULT]
            flat_buffer = converter.convert()
        except Exception as e:  # the converter raises many types; any refusal skips the format
            reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            logging.warning('TFLite converter refused %s; skipping it: %s', name, reason)
            skipped[name] = reason
            continue
        path = files.write_bytes_atomic(os.path.join(out_dir, name), flat_buffer)
        written[name] = os.path.getsize(path)
    if skipped:
        written['skipped'] = skipped
    return written


def _checkpoint_bytes(prefix):
    folder = os.path.dirname(prefix)
    base = os.path.basename(prefix)
    return sum(os.path.getsize(os.path.join(folder, n)) for n in os.listdir(folder)
               if n == base + '.index' or n.startswith(base + '.data-'))


def _tree_bytes(path):
    return sum(os.path.getsize(os.path.join(root, n))
               for root, _, names in os.walk(path) for n in names)


def _replace_dir(staging, target):
    """Puts staging at target; an earlier export there is removed only once the new one is in."""
    old = None
    if os.path.exists(target):
        old = tempfile.mkdtemp(prefix='.%s.old-' % os.path.basename(target),
                               dir=os.path.dirname(os.path.abspath(target)))
        os.rmdir(old)
        os.replace(target, old)
    os.replace(staging, target)
    if old:
        shutil.rmtree(old, ignore_errors=True)


_SIZE_ROWS = (
    ('float32 weights', 'float32_weight_bytes'),
    ('checkpoint (with Adam slots)', 'checkpoint_bytes'),
    ('checkpoint (weights only)', 'checkpoint_bytes_without_adam'),
    ('SavedModel', 'saved_model_bytes'),
    ('frozen graph', 'frozen_graph_bytes'),
    ('TFLite float32', 'tflite_float32_bytes'),
    ('TFLite int8 (dynamic range)', 'tflite_int8_bytes'),
)


def format_size_report(report):
    """The size table, with each size in bytes and against the notebook's 1 MB claim."""
    rows = [('parameters', '{:,}'.format(report['parameters']), '')]
    for label, key in _SIZE_ROWS:
        size = report[key]
        rows.append((label, _mb(size), _vs_1mb(size)) if size else (label, 'skipped', ''))
    width = max(len(row[0]) for row in rows)
    lines = ['%-*s  %16s  %s' % (width, 'artifact', 'size', 'vs 1 MB')]
    lines += [('%-*s  %16s  %s' % (width, a, b, c)).rstrip() for a, b, c in rows]
    return '\n'.join(lines)


def _mb(size):
    return '{:,} B'.format(size)


def _vs_1mb(size):
    return '%.2f MB (%s)' % (size / ONE_MB, 'under' if size < ONE_MB else 'OVER')
