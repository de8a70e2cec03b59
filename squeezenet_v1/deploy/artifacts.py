"""Every exported model, opened the way its users open it, behind one call: probabilities().

An artifact is told by its name: a folder holding saved_model.pb (the TF1 SavedModel, loaded
with tf.saved_model.load as TensorFlow 2 users do), `*.pb` (the frozen GraphDef), `*.tflite`
(LiteRT, else tf.lite), `*.onnx` (onnxruntime) or `*.keras` (keras.saving.load_model). Each
takes uint8 images [N, 32, 32, 3] and returns float32 probabilities [N, classes];
`--mode=predict` and `--mode=eval` use them to check an artifact before it ships, and export
uses them to measure each against the TF1 graph (`probability_match`).
"""

import os
import subprocess
import sys
import warnings

import numpy as np
import tensorflow as tf
from absl import logging

from squeezenet_v1 import tensorflow_logs
from squeezenet_v1.files import literal_paths

from squeezenet_v1.files import reading
from squeezenet_v1.errors import UserError, first_line
from squeezenet_v1.model_dir import run_records

tf1 = tf.compat.v1

_BATCH = 256


class ArtifactError(UserError):
    """An exported model that cannot be opened or run here."""


def kind_of(path):
    """'SavedModel', 'frozen graph', 'TFLite', 'ONNX' or 'Keras 3' by the path's name; None."""
    if os.path.isdir(path):
        return 'SavedModel' if os.path.isfile(os.path.join(path, 'saved_model.pb')) else None
    return {'.pb': 'frozen graph', '.tflite': 'TFLite', '.onnx': 'ONNX',
            '.keras': 'Keras 3'}.get(os.path.splitext(path)[1].lower())


def check_artifact(path):
    """The kind of the artifact at path; ArtifactError naming it and the fix when it is none."""
    if not os.path.exists(path):
        raise ArtifactError('--exported_model %s does not exist. Export one with --mode=export.'
                            % path)
    if os.path.basename(path) == 'saved_model.pb':
        raise ArtifactError('--exported_model %s is the SavedModel\'s graph file: give its folder, '
                            '%s.' % (path, os.path.dirname(path)))
    kind = kind_of(path)
    if kind is None:
        raise ArtifactError(
            '--exported_model %s is not an exported model: give the saved_model folder, '
            'frozen_graph.pb, a .tflite, model.onnx or model.keras of an export.' % path)
    return kind


def open_artifact(path, just_written=False):
    """The artifact at path, ready to run; ArtifactError naming it and the fix when it is not.

    `just_written`: export reading back the files it has just written skips the checks that
    guard against a changed or damaged file.
    """
    kind = check_artifact(path)
    if not just_written:
        vouched = _check_recorded_sha256(path)
        if kind == 'TFLite' and not vouched:
            _probe_tflite(path)
    opener = {'SavedModel': _SavedModel, 'frozen graph': _FrozenGraph, 'TFLite': _TFLite,
              'ONNX': _Onnx, 'Keras 3': _Keras}[kind]
    try:
        return opener(path)
    except ArtifactError:
        raise
    except Exception as e:  # each runtime raises its own types for a damaged file
        raise ArtifactError('%s %s cannot be opened (%s: %s). Export it again.'
                            % (kind, path, type(e).__name__, first_line(e).rstrip('.')))


def check_label_count(path, probabilities, label_names):
    """Refuses an artifact whose outputs are not one per name of its labels.txt."""
    if len(probabilities) and probabilities.shape[1] != len(label_names):
        raise ArtifactError('%s gives %d classes but its labels.txt names %d. Export it again.'
                            % (path, probabilities.shape[1], len(label_names)))


# Export's report beside the files, where it records each file's sha256 (among much else).
SIZE_REPORT_FILE = 'size_report.json'


def recorded_sha256(path):
    """The sha256 the export beside a file recorded for it, or None (a folder, no record)."""
    if os.path.isdir(path):
        return None
    report = reading.read_plain_json(
        os.path.join(os.path.dirname(os.path.abspath(path)), SIZE_REPORT_FILE))
    recorded = report.get('sha256') if isinstance(report, dict) else None
    return recorded.get(os.path.basename(path)) if isinstance(recorded, dict) else None


def _check_recorded_sha256(path):
    """Refuses a file that differs from what its export wrote, when the export recorded it;
    whether it was recorded (and so vouched for).

    A damaged .tflite can crash the TFLite interpreter (a segfault, not an exception), so a file
    is compared with its recorded hash before any runtime reads it.
    """
    expected = recorded_sha256(path)
    if not expected:
        return False
    if reading.file_digest(path) != expected:
        raise ArtifactError('%s is not the file its export wrote (its sha256 differs from the '
                            'one in %s): it was changed or damaged. Export it again.'
                            % (path, SIZE_REPORT_FILE))
    return True


class _Artifact(object):
    kind = None

    def __init__(self, path):
        self.path = path

    def probabilities(self, images):
        """float32 probabilities [N, classes] for uint8 images [N, 32, 32, 3]."""
        images = np.asarray(images, np.uint8)
        if not len(images):
            return np.zeros((0, 0), np.float32)
        return np.concatenate([np.asarray(self._run(images[i:i + _BATCH]), np.float32)
                               for i in range(0, len(images), _BATCH)])

    def close(self):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *unused):
        self.close()


class _SavedModel(_Artifact):
    kind = 'SavedModel'

    def __init__(self, path):
        super(_SavedModel, self).__init__(path)
        # As TensorFlow 2 users load it; its TF1 signature runs as a function.
        with literal_paths.literal_path(path) as literal:
            self._signature = tf.saved_model.load(literal).signatures['serving_default']

    def _run(self, batch):
        return self._signature(images=tf.constant(batch))['probabilities'].numpy()


class _FrozenGraph(_Artifact):
    kind = 'frozen graph'

    def __init__(self, path):
        super(_FrozenGraph, self).__init__(path)
        graph_def = tf1.GraphDef()
        # A protocol buffer is at most 2 GB; check_artifact has made sure it is a plain file.
        graph_def.ParseFromString(reading.read_bytes(path, 2 * reading.GB, follow_links=True))
        graph = tf.Graph()
        with graph.as_default():
            tf.graph_util.import_graph_def(graph_def, name='')
        self._sess = tf1.Session(graph=graph)
        self._images = graph.get_tensor_by_name('images:0')
        self._probabilities = graph.get_tensor_by_name('probabilities:0')

    def _run(self, batch):
        return self._sess.run(self._probabilities, {self._images: batch})

    def close(self):
        self._sess.close()


class _TFLite(_Artifact):
    kind = 'TFLite'

    def __init__(self, path):
        super(_TFLite, self).__init__(path)
        self._runner = tflite_interpreter(path).get_signature_runner('serving_default')
        self._ran = False

    def _run(self, batch):
        if self._ran:
            return self._runner(images=batch)['probabilities']
        with tensorflow_logs.held_stderr():  # its first run says it made an XNNPACK delegate
            probabilities = self._runner(images=batch)['probabilities']
        self._ran = True
        return probabilities


class _Onnx(_Artifact):
    kind = 'ONNX'

    def __init__(self, path):
        super(_Onnx, self).__init__(path)
        try:
            import onnxruntime
        except ImportError:
            raise ArtifactError('reading %s needs onnxruntime: pip install -e ".[onnx]"' % path)
        self._session = onnxruntime.InferenceSession(path, providers=['CPUExecutionProvider'])
        self._input = self._session.get_inputs()[0].name
        self._output = [o.name for o in self._session.get_outputs()
                        if o.name.startswith('probabilities')][0]

    def _run(self, batch):
        return self._session.run([self._output], {self._input: batch})[0]


class _Keras(_Artifact):
    kind = 'Keras 3'

    def __init__(self, path):
        super(_Keras, self).__init__(path)
        import keras
        self._model = keras.saving.load_model(path)

    def _run(self, batch):
        return self._model.predict_on_batch(batch)


_TFLITE_PROBE = """
import sys
import numpy as np
from squeezenet_v1.deploy.artifacts import tflite_interpreter
runner = tflite_interpreter(sys.argv[1]).get_signature_runner('serving_default')
runner(images=np.zeros((1, 32, 32, 3), np.uint8))
"""


def _probe_tflite(path):
    """Opens and runs the file in a child process (for a file no export's hash vouches for).

    The TFLite interpreter crashes the whole process on some damaged files; a child's crash is
    an ArtifactError instead.
    """
    probe = subprocess.run([sys.executable, '-c', _TFLITE_PROBE, path], capture_output=True,
                           text=True, timeout=300,
                           env=dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path)))
    if probe.returncode:
        raise ArtifactError('TFLite %s cannot be opened: the TFLite interpreter %s on it; it is '
                            'damaged or not a TFLite model. Export it again.'
                            % (path, 'crashed (signal %d)' % -probe.returncode
                               if probe.returncode < 0 else 'failed'))


def tflite_interpreter(model_path):
    """A TFLite interpreter for model_path: LiteRT's (ai_edge_litert) when installed.

    tf.lite.Interpreter is deprecated in its favour; without it the old one is used (--verbosity=1
    says so).
    """
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        # Nothing to install: the fallback gives the same numbers (tests/test_export_predict.py).
        logging.vlog(1, 'ai_edge_litert is not installed; running %s with tf.lite.Interpreter.',
                     model_path)
        with warnings.catch_warnings():
            warnings.simplefilter('ignore', UserWarning)  # its deprecation notice, said above
            return tf.lite.Interpreter(model_path=model_path)
    return Interpreter(model_path=model_path)


def probability_match(reference, probabilities):
    """How an artifact's probabilities compare with the TF1 graph's on the same images."""
    return {'images': int(len(reference)),
            'max_abs_probability_difference': float(np.max(np.abs(reference - probabilities)))
            if len(reference) else 0.0,
            'top1_agreement': float(np.mean(np.argmax(reference, axis=1)
                                            == np.argmax(probabilities, axis=1)))
            if len(reference) else 1.0}


def export_folder(exported_model):
    """The export an artifact belongs to: the folder holding labels.txt and size_report.json."""
    path = os.path.abspath(exported_model).rstrip(os.sep)
    return os.path.dirname(path)


def exported_label_names(exported_model):
    """The class names the export wrote beside the artifact (its labels.txt)."""
    check_artifact(exported_model)  # a missing or wrong file is told as such first
    folder = export_folder(exported_model)
    if not os.path.isfile(os.path.join(folder, run_records.LABELS_FILE)):
        raise ArtifactError(
            '%s has no %s beside it, so its classes have no names. Give a file of a folder '
            '--mode=export wrote.' % (exported_model, run_records.LABELS_FILE))
    return run_records.model_label_names(folder, None, None)
