"""Exporting the newest checkpoint: SavedModel, frozen GraphDef, TFLite; and their sizes.

Export writes only into a folder that is absent, empty, or an earlier export (it holds
size_report.json and nothing an export does not write); never into or above the model_dir, over
a file or through a symlink. Everything is written into a temporary folder beside --export_dir
and renamed into place only when complete, so an export is whole or absent.
"""

import os
import re
import warnings

import tensorflow as tf
from absl import logging

from squeezenet_v1.training import checkpoints
from squeezenet_v1.training import run_records
from squeezenet_v1 import files
from squeezenet_v1 import interrupts
from squeezenet_v1 import parameters
from squeezenet_v1.deploy import serving
from squeezenet_v1.errors import UserError

tf1 = tf.compat.v1

SAVED_MODEL_DIR = 'saved_model'
FROZEN_GRAPH_FILE = 'frozen_graph.pb'
TFLITE_FLOAT_FILE = 'model_float32.tflite'
TFLITE_INT8_FILE = 'model_int8.tflite'
SIZE_REPORT_FILE = 'size_report.json'
EXPORT_NAMES = frozenset([SAVED_MODEL_DIR, FROZEN_GRAPH_FILE, TFLITE_FLOAT_FILE,
                          TFLITE_INT8_FILE, SIZE_REPORT_FILE,
                          run_records.LABELS_FILE])
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


def export(model_dir, export_dir, label_names, checkpoint_path=None):
    """Writes every format into export_dir from checkpoint_path (default: model_dir's newest);
    returns the sizes."""
    check_export_dir(export_dir, model_dir)
    checkpoints.choose_checkpoint(model_dir, checkpoint_path)
    parent = os.path.dirname(os.path.abspath(export_dir))
    os.makedirs(parent, exist_ok=True)
    for path in files.remove_stale_temporaries(parent):
        logging.info('Removed %s, left by an export that was killed.', path)
    staging = files.make_temp_dir(parent, os.path.basename(export_dir))
    try:
        report = _export_into(model_dir, staging, label_names, checkpoint_path)
        files.replace_dir(staging, export_dir)
    except BaseException:
        files.remove_path(staging)
        raise
    logging.info('Exported %s into %s', report['checkpoint'], export_dir)
    return report


def _restore_and_measure(checkpoint_path, label_names):
    """(ServingGraph, Session, checkpoint path, its size), sized while it surely exists."""
    graph, sess = serving.restored_session(checkpoint_path, label_names)
    try:
        return graph, sess, checkpoint_path, _checkpoint_bytes(checkpoint_path)
    except BaseException:
        sess.close()
        raise


def _export_into(model_dir, out_dir, label_names, checkpoint_path):
    graph, sess, latest, checkpoint_bytes = checkpoints.with_checkpoint(
        model_dir, lambda path: _restore_and_measure(path, label_names), checkpoint_path)
    with sess:
        global_step = int(sess.run(graph.global_step))
        weights = parameters.parameter_report(
            [v for v in graph.variables if v.op.name != 'global_step'])
        with graph.graph.as_default():
            _write_saved_model(sess, graph, os.path.join(out_dir, SAVED_MODEL_DIR))
            frozen = _frozen_graph_def(sess, graph)
            weights_only_bytes = _weights_only_checkpoint_bytes(sess, graph, out_dir)
    files.write_bytes_atomic(os.path.join(out_dir, FROZEN_GRAPH_FILE),
                             frozen.SerializeToString())
    run_records.write_label_names(out_dir, label_names)
    with interrupts.deferred():  # the converter's destructors would swallow a KeyboardInterrupt
        tflite = _write_tflite(os.path.join(out_dir, SAVED_MODEL_DIR), out_dir)

    report = {
        'checkpoint': os.path.basename(latest),
        'global_step': global_step,
        'parameters': weights['total_parameters'],
        'float32_weight_bytes': weights['float32_bytes'],
        'checkpoint_bytes': checkpoint_bytes,
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


def _weights_only_checkpoint_bytes(sess, graph, out_dir):
    """Size of a checkpoint of the model's weights alone (no Adam slots, no global_step)."""
    scratch = files.make_temp_dir(out_dir, 'weights_only')  # inside the export's staging folder
    try:
        saver = tf1.train.Saver([v for v in graph.variables if v.op.name != 'global_step'])
        prefix = saver.save(sess, os.path.join(scratch, 'weights'), write_meta_graph=False,
                            write_state=False)
        return _checkpoint_bytes(prefix)
    finally:
        files.remove_path(scratch)


def _write_tflite(saved_model_dir, out_dir):
    """Float32 and dynamic-range int8 flat buffers; a converter refusal skips with a warning."""
    written, skipped = {}, {}
    for name, optimize in ((TFLITE_FLOAT_FILE, False), (TFLITE_INT8_FILE, True)):
        try:
            # convert() reads the SavedModel, so the literal path must stay open until it ends.
            with files.literal_path(saved_model_dir) as path:
                converter = tf.lite.TFLiteConverter.from_saved_model(
                    path, signature_keys=['serving_default'])
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
    sizes = [os.path.getsize(os.path.join(folder, n)) for n in os.listdir(folder)
             if n == base + '.index' or n.startswith(base + '.data-')]
    if len(sizes) < 2:
        raise FileNotFoundError('%s has lost its files' % prefix)
    return sum(sizes)


def _tree_bytes(path):
    return sum(os.path.getsize(os.path.join(root, n))
               for root, _, names in os.walk(path) for n in names)


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


def tflite_interpreter(model_path):
    """A TFLite interpreter for model_path: LiteRT's (ai_edge_litert) when installed.

    tf.lite.Interpreter is deprecated in its favour; without it the old one is used, with a note.
    """
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        logging.info('ai_edge_litert is not installed; running %s with the deprecated '
                     'tf.lite.Interpreter (pip install ai-edge-litert to use LiteRT).', model_path)
        with warnings.catch_warnings():
            warnings.simplefilter('ignore', UserWarning)  # its deprecation notice, said above
            return tf.lite.Interpreter(model_path=model_path)
    return Interpreter(model_path=model_path)
