"""Predict and export: every format gives the checkpoint's Session outputs, and is small."""

import base64
import contextlib
import io
import json
import logging
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import time
import urllib.request

import numpy as np
import pytest
import tensorflow as tf

from conftest import run_in_process, run_train, write_checkpoint_of_output_size
from squeezenet_v1.data import cifar10
from squeezenet_v1.cluster import local_cluster
from squeezenet_v1.deploy import artifacts
from squeezenet_v1.deploy import export
from squeezenet_v1.deploy import onnx_model
from squeezenet_v1.data import image_size
from squeezenet_v1.deploy import predict
from squeezenet_v1.data import input_pipeline
from squeezenet_v1.data import synthetic
from squeezenet_v1.model import new_model

tf1 = tf.compat.v1


@pytest.fixture(scope='module')
def trained(tmp_path_factory, seeded_run):
    """A copy of the shared seeded run, exported once through run_train.py."""
    model_dir = str(tmp_path_factory.mktemp('trained') / 'run')
    shutil.copytree(seeded_run[0], model_dir)
    with contextlib.redirect_stdout(io.StringIO()) as printed:
        assert run_in_process('--mode=export', '--model_dir=' + model_dir) == 0
    return model_dir, printed.getvalue()


def _test_images(count=None):
    images, labels = synthetic.make_split('test')
    hwc = images.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return (hwc, labels) if count is None else (hwc[:count], labels[:count])


def _session_probabilities(model_dir, images_hwc):
    """The reference: the checkpoint restored into the eval graph over the record pipeline."""
    with tempfile.TemporaryDirectory() as scratch:
        records = cifar10.write_binary_batch(
            os.path.join(scratch, 'images.bin'),
            images_hwc.transpose(0, 3, 1, 2).reshape(len(images_hwc), -1),
            np.zeros(len(images_hwc)))
        with tf.Graph().as_default():
            model = new_model(10)
            images, labels = input_pipeline.input_fn([records], model, False, len(images_hwc))
            model.run_model_setup(images, labels, is_training=False)
            saver = tf1.train.Saver()
            with tf1.Session() as sess:
                saver.restore(sess, tf1.train.latest_checkpoint(model_dir))
                return sess.run(model.probs)


@pytest.mark.needs_onnx
def test_size_report_proves_the_under_1mb_claim(trained):
    model_dir, stdout = trained
    with open(os.path.join(model_dir, 'export', 'size_report.json')) as f:
        report = json.load(f)
    assert report['parameters'] == 146570 and report['global_step'] == 300
    assert report['float32_weight_bytes'] == 586280 < 1000000
    assert report['frozen_graph_bytes'] < 1000000
    assert report['checkpoint_bytes_without_adam'] < report['checkpoint_bytes']
    assert report['checkpoint_bytes'] > 3 * report['float32_weight_bytes']  # weights + 2 slots
    assert report['tflite_int8_bytes'] < report['tflite_float32_bytes'] / 2
    assert report['tflite_skipped'] == {} and report['skipped'] == {}
    for row in ('float32 weights', 'frozen graph', 'SavedModel', 'TFLite int8', 'ONNX', 'Keras 3'):
        assert row in stdout
    assert sorted(os.listdir(os.path.join(model_dir, 'export'))) == sorted([
        'saved_model', 'frozen_graph.pb', 'model_float32.tflite', 'model_int8.tflite',
        'model.onnx', 'model.keras', 'labels.txt', 'size_report.json'])


# Every artifact against the TF1 graph: measured by export, asserted here.

FLOAT_ARTIFACTS = ('saved_model', 'frozen_graph.pb', 'model_float32.tflite', 'model.onnx',
                   'model.keras')


@pytest.mark.needs_onnx
def test_every_exported_artifact_gives_the_tf1_graphs_probabilities(trained):
    model_dir, stdout = trained
    with open(os.path.join(model_dir, 'export', 'size_report.json')) as f:
        report = json.load(f)
    assert report['agreement_images'] == 'the synthetic test split (1000 images)'
    assert sorted(report['agreement']) == sorted(FLOAT_ARTIFACTS + ('model_int8.tflite',))
    for name in FLOAT_ARTIFACTS:
        measured = report['agreement'][name]
        assert measured['images'] == 1000
        assert measured['max_abs_probability_difference'] <= export.MAX_PROBABILITY_DIFFERENCE, (
            name, measured)
        assert measured['top1_agreement'] == 1.0, (name, measured)
    # The int8 file is quantized by design: measured and shown, its top-1 nearly always kept.
    assert report['agreement']['model_int8.tflite']['top1_agreement'] >= 0.99
    assert report['onnx_opset'] == onnx_model.OPSET
    assert 'against the TF1 graph on the synthetic test split (1000 images)' in stdout
    # And not only as export measured it: the ONNX file read here, by onnxruntime.
    import onnx
    import onnxruntime
    path = os.path.join(model_dir, 'export', 'model.onnx')
    assert onnx.load(path).opset_import[0].version == onnx_model.OPSET
    session = onnxruntime.InferenceSession(path, providers=['CPUExecutionProvider'])
    assert session.get_inputs()[0].type == 'tensor(uint8)'
    images, _ = _test_images(64)
    got = session.run(['probabilities:0'], {session.get_inputs()[0].name: images})[0]
    np.testing.assert_allclose(got, _session_probabilities(model_dir, images), rtol=0,
                               atol=export.MAX_PROBABILITY_DIFFERENCE)


_KERAS_ALONE = '''
import sys
sys.modules['squeezenet_v1'] = None  # this process must not need the package
import numpy as np, keras
model = keras.saving.load_model(sys.argv[1])
names = [layer.name for layer in model.layers]
assert {'conv1', 'fire1_squeeze', 'fire1_expand1x1', 'fire4_expand3x3', 'final_conv',
        'dropout', 'probabilities'} <= set(names), names
np.save(sys.argv[3], model.predict(np.load(sys.argv[2]), verbose=0))
'''


@pytest.mark.slow
def test_keras_file_loads_and_predicts_in_a_process_without_this_package(trained, tmp_path):
    model_dir, _ = trained
    images, _ = _test_images(64)
    np.save(str(tmp_path / 'images.npy'), images)
    proc = subprocess.run([sys.executable, '-c', _KERAS_ALONE,
                           os.path.join(model_dir, 'export', 'model.keras'),
                           str(tmp_path / 'images.npy'), str(tmp_path / 'out.npy')],
                          cwd=str(tmp_path), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    np.testing.assert_allclose(np.load(str(tmp_path / 'out.npy')),
                               _session_probabilities(model_dir, images), rtol=0,
                               atol=export.MAX_PROBABILITY_DIFFERENCE)


@pytest.mark.slow
def test_export_without_the_onnx_extra_skips_it_and_says_so(trained, tmp_path, monkeypatch,
                                                             caplog):
    model_dir, _ = trained
    monkeypatch.setitem(sys.modules, 'onnxruntime', None)  # `import onnxruntime` fails
    with caplog.at_level(logging.WARNING, logger='absl'):
        with contextlib.redirect_stdout(io.StringIO()) as printed:
            assert run_in_process('--mode=export', '--model_dir=' + model_dir,
                                  '--export_dir=' + str(tmp_path / 'export')) == 0
    with open(str(tmp_path / 'export' / 'size_report.json')) as f:
        report = json.load(f)
    assert report['skipped'] == {
        'model.onnx': 'onnxruntime not installed: pip install -e ".[onnx]" (tf2onnx, onnx, '
                      'onnxruntime)'}
    assert not (tmp_path / 'export' / 'model.onnx').exists()
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert [w for w in warnings if 'model.onnx' in w] == [
        'model.onnx was not written: onnxruntime not installed: pip install -e ".[onnx]" '
        '(tf2onnx, onnx, onnxruntime)'], warnings  # one line
    assert re.search(r'ONNX +skipped', printed.getvalue()), printed.getvalue()
    assert sorted(report['agreement']) == sorted(
        set(FLOAT_ARTIFACTS + ('model_int8.tflite',)) - {'model.onnx'})


@pytest.fixture(scope='module')
def checkpoint_predictions(trained, tmp_path_factory):
    """(PNG paths, the checkpoint's predictions of them, its eval accuracy): the reference."""
    model_dir, _ = trained
    folder = tmp_path_factory.mktemp('artifact_images')
    images, _ = _test_images(3)
    paths, _ = _write_images(str(folder / 'images'), images)
    png = [p for p in paths if p.endswith('.png')]
    out = str(folder / 'checkpoint.json')
    assert run_in_process('--mode=predict', '--model_dir=' + model_dir, '--images=' +
                          ','.join(png), '--predictions_json=' + out) == 0
    with open(out) as f:
        predictions = json.load(f)
    with open(os.path.join(model_dir, 'eval_results.json')) as f:
        return png, predictions, json.load(f)['accuracy']


@pytest.mark.parametrize('artifact', [
    pytest.param(name, marks=pytest.mark.needs_onnx) if name == 'model.onnx'
    else pytest.param(name, marks=pytest.mark.slow)
    for name in FLOAT_ARTIFACTS + ('model_int8.tflite',)])  # one in the fast tier
def test_predict_and_eval_read_every_exported_artifact(trained, checkpoint_predictions, tmp_path,
                                                       caplog, artifact):
    model_dir, _ = trained
    png, expected, checkpoint_accuracy = checkpoint_predictions
    path = os.path.join(model_dir, 'export', artifact)
    out = str(tmp_path / 'artifact.json')
    assert run_in_process('--mode=predict', '--model_dir=' + model_dir, '--images=' +
                          ','.join(png), '--predictions_json=' + out,
                          '--exported_model=' + path) == 0
    with open(out) as f:
        got = json.load(f)
    tolerance = 0.02 if 'int8' in artifact else export.MAX_PROBABILITY_DIFFERENCE
    for ours, theirs in zip(expected, got):
        assert ours['file'] == theirs['file']
        assert ours['predictions'][0]['label'] == theirs['predictions'][0]['label']
        assert abs(ours['predictions'][0]['probability']
                   - theirs['predictions'][0]['probability']) <= tolerance
    # eval: the file's accuracy on the test split, the checkpoint's own; nothing written.
    history = _history_lines(model_dir)
    caplog.clear()
    with caplog.at_level(logging.INFO, logger='absl'):
        assert run_in_process('--mode=eval', '--model_dir=' + model_dir,
                              '--exported_model=' + path) == 0
    found = re.search(r'Evaluation of .* on 1000 synthetic images: accuracy = ([\d.]+)',
                      caplog.text)
    assert found, caplog.text
    assert abs(float(found.group(1)) - checkpoint_accuracy) <= (0.01 if 'int8' in artifact
                                                                 else 0.0)
    assert _history_lines(model_dir) == history


def _history_lines(model_dir):
    with open(os.path.join(model_dir, 'eval_history.jsonl')) as f:
        return f.read()


@pytest.mark.parametrize('make, message', [
    (lambda d, e: _garbage(os.path.join(d, 'notes.txt')), 'is not an exported model'),
    (lambda d, e: os.path.join(d, 'gone.onnx'), 'does not exist'),
    (lambda d, e: os.path.join(d, 'no_labels_here', 'gone.onnx'), 'does not exist'),
    (lambda d, e: os.path.join(e, 'saved_model', 'saved_model.pb'), 'give its folder'),
    pytest.param(lambda d, e: _garbage(os.path.join(d, 'broken.onnx')), 'ONNX',
                 marks=pytest.mark.needs_onnx),
    (lambda d, e: _garbage(os.path.join(d, 'nolabels', 'model.keras')), 'has no labels.txt'),
    # Damage the TFLite interpreter answers with a segfault, not an exception: without a
    # recorded hash the file is opened in a child process first ...
    (lambda d, e: _cut(os.path.join(e, 'model_float32.tflite'), os.path.join(d, 'm.tflite'),
                       3000), 'the TFLite interpreter'),
    # ... and beside its export's size_report.json, its recorded sha256 tells it apart.
    (lambda d, e: _flipped_in_export(e, d, 'model_float32.tflite'),
     'is not the file its export wrote'),
], ids=['not_an_artifact', 'missing', 'missing_no_labels', 'saved_model_pb', 'garbage_onnx',
        'no_labels', 'tflite_that_crashes', 'changed_since_export'])
def test_a_bad_exported_model_is_one_line(trained, tmp_path, caplog, make, message):
    model_dir, _ = trained
    shutil.copy(os.path.join(model_dir, 'labels.txt'), str(tmp_path / 'labels.txt'))
    path = make(str(tmp_path), os.path.join(model_dir, 'export'))
    caplog.clear()
    with caplog.at_level(logging.ERROR, logger='absl'):
        assert run_in_process('--mode=eval', '--model_dir=' + model_dir,
                              '--exported_model=' + path) == 1
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and message in errors[0] and '\n' not in errors[0], errors


@pytest.mark.needs_onnx
def test_predict_refuses_an_export_whose_labels_do_not_match_its_classes(trained, tmp_path,
                                                                          caplog):
    model_dir, _ = trained
    shutil.copy(os.path.join(model_dir, 'export', 'model.onnx'), str(tmp_path / 'model.onnx'))
    with open(os.path.join(model_dir, 'labels.txt')) as f:
        (tmp_path / 'labels.txt').write_text(''.join(f.readlines()[:9]))
    images, _ = _test_images(1)
    paths, _ = _write_images(str(tmp_path / 'images'), images)
    caplog.clear()
    with caplog.at_level(logging.ERROR, logger='absl'):
        assert run_in_process('--mode=predict', '--model_dir=' + model_dir, '--images=' +
                              paths[0], '--exported_model=' + str(tmp_path / 'model.onnx')) == 1
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and 'gives 10 classes but its labels.txt names 9' in errors[0], errors


def _cut(source, path, size):
    with open(source, 'rb') as f:
        data = f.read(size)
    with open(path, 'wb') as f:
        f.write(data)
    return path


def _flipped_in_export(export_dir, folder, name):
    copy = os.path.join(folder, 'export')
    shutil.copytree(export_dir, copy)
    with open(os.path.join(copy, name), 'r+b') as f:
        f.seek(2000)
        byte = f.read(1)
        f.seek(2000)
        f.write(bytes([byte[0] ^ 0xFF]))
    return os.path.join(copy, name)


def _garbage(path):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, 'wb') as f:
        f.write(b'not a model')
    return path


# TensorFlow Serving: what was checked, stated by a test (docs/deploy.md says no more).

@pytest.mark.slow
def test_saved_model_signature_is_what_tensorflow_serving_reads(trained):
    model_dir, _ = trained
    cli = shutil.which('saved_model_cli', path=os.path.dirname(sys.executable))
    proc = subprocess.run([cli or 'saved_model_cli', 'show', '--all', '--dir',
                           os.path.join(model_dir, 'export', 'saved_model')],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    for line in ("signature_def['serving_default']:", "inputs['images'] tensor_info:",
                 'dtype: DT_UINT8', 'shape: (-1, 32, 32, 3)', "outputs['probabilities']",
                 "outputs['classes']", 'Method name is: tensorflow/serving/predict'):
        assert line in proc.stdout, proc.stdout


@pytest.mark.slow
def test_tensorflow_model_server_answers_a_rest_request(trained, tmp_path):
    server = shutil.which('tensorflow_model_server')
    if server is None:
        pytest.skip('tensorflow_model_server is not installed here (it is not on PyPI; '
                    'docs/deploy.md says only the signature was checked)')
    model_dir, _ = trained
    base = tmp_path / 'served'
    shutil.copytree(os.path.join(model_dir, 'export', 'saved_model'), str(base / '1'))
    port = local_cluster.free_ports(1)[0]
    proc = subprocess.Popen([server, '--rest_api_port=%d' % port, '--port=0',
                             '--model_name=squeezenet', '--model_base_path=%s' % base],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        images, _ = _test_images(2)
        request = json.dumps({'instances': images.tolist()}).encode()
        give_up = time.time() + 120
        while True:
            try:
                with urllib.request.urlopen(urllib.request.Request(
                        'http://127.0.0.1:%d/v1/models/squeezenet:predict' % port, request),
                        timeout=10) as answer:
                    predictions = json.load(answer)['predictions']
                break
            except OSError:
                assert time.time() < give_up and proc.poll() is None, 'no answer from the server'
                time.sleep(0.5)
        got = np.array([p['probabilities'] for p in predictions])
        np.testing.assert_allclose(got, _session_probabilities(model_dir, images), rtol=0,
                                   atol=export.MAX_PROBABILITY_DIFFERENCE)
    finally:
        proc.kill()
        proc.wait(timeout=30)


def test_saved_model_in_tf2_eager_equals_session(trained):
    model_dir, _ = trained
    images, _ = _test_images(50)
    loaded = tf.saved_model.load(os.path.join(model_dir, 'export', 'saved_model'))
    outputs = loaded.signatures['serving_default'](images=tf.constant(images))
    expected = _session_probabilities(model_dir, images)
    np.testing.assert_allclose(outputs['probabilities'].numpy(), expected, rtol=0, atol=1e-5)
    np.testing.assert_array_equal(outputs['classes'].numpy(), expected.argmax(axis=1))


def test_frozen_graph_equals_session_and_has_no_variables(trained):
    model_dir, _ = trained
    images, _ = _test_images(50)
    graph_def = tf1.GraphDef()
    with open(os.path.join(model_dir, 'export', 'frozen_graph.pb'), 'rb') as f:
        graph_def.ParseFromString(f.read())
    op_types = {node.op for node in graph_def.node}
    assert not op_types & {'VarHandleOp', 'VariableV2', 'ReadVariableOp', 'AssignVariableOp',
                           'SaveV2', 'RestoreV2', 'RandomUniform'}
    with tf.Graph().as_default():
        probabilities, = tf1.import_graph_def(graph_def, return_elements=['probabilities:0'])
        with tf1.Session() as sess:
            got = sess.run(probabilities, {'import/images:0': images})
    np.testing.assert_allclose(got, _session_probabilities(model_dir, images), rtol=0, atol=1e-5)


def _tflite_probabilities(path, images):
    runner = artifacts.tflite_interpreter(path).get_signature_runner('serving_default')
    return np.concatenate([runner(images=images[i:i + 100])['probabilities']
                           for i in range(0, len(images), 100)])


def test_tflite_float_equals_session_and_int8_keeps_accuracy(trained):
    model_dir, _ = trained
    images, labels = _test_images()
    float_path = os.path.join(model_dir, 'export', 'model_float32.tflite')
    float_probabilities = _tflite_probabilities(float_path, images)
    np.testing.assert_allclose(float_probabilities[:100],
                               _session_probabilities(model_dir, images[:100]), rtol=0, atol=1e-4)
    int8_probabilities = _tflite_probabilities(
        os.path.join(model_dir, 'export', 'model_int8.tflite'), images)
    float_accuracy = np.mean(float_probabilities.argmax(axis=1) == labels)
    int8_accuracy = np.mean(int8_probabilities.argmax(axis=1) == labels)
    print('synthetic test accuracy: TFLite float32 %.4f, int8 %.4f'
          % (float_accuracy, int8_accuracy))
    assert float_accuracy > 0.4
    assert abs(float_accuracy - int8_accuracy) <= 0.01


def _write_images(folder, images):
    """PNG and JPEG files of the given images; returns the paths and the pixels each decodes to."""
    os.makedirs(folder, exist_ok=True)
    paths, decoded = [], []
    for i, image in enumerate(images):
        if i % 2:
            data, path = tf.io.encode_jpeg(image, quality=90).numpy(), 'img%02d.jpg' % i
        else:
            data, path = tf.io.encode_png(image).numpy(), 'img%02d.png' % i
        with open(os.path.join(folder, path), 'wb') as f:
            f.write(data)
        paths.append(os.path.join(folder, path))
        decoded.append(tf.io.decode_image(data, channels=3).numpy())
    return paths, np.stack(decoded)


@pytest.mark.slow
def test_predict_on_png_and_jpeg_matches_session(trained, tmp_path):
    model_dir, _ = trained
    images, _ = _test_images(12)
    paths, decoded = _write_images(str(tmp_path / 'images'), images)
    out = str(tmp_path / 'predictions.json')
    proc = run_train('--mode=predict', '--model_dir=' + model_dir, '--top_k=2',
                     '--images=' + str(tmp_path / 'images'), '--predictions_json=' + out)
    assert proc.returncode == 0, proc.stdout[-3000:]
    with open(out) as f:
        results = json.load(f)
    assert [r['file'] for r in results] == paths
    expected = _session_probabilities(model_dir, decoded)
    for result, row in zip(results, expected):
        top = result['predictions']
        assert len(top) == 2 and top[0]['class'] == int(row.argmax())
        assert top[0]['label'] == synthetic.LABEL_NAMES[row.argmax()]
        assert abs(top[0]['probability'] - row.max()) < 1e-5
        assert '%s: %s (' % (result['file'], top[0]['label']) in proc.stdout


def test_bad_files_are_named_and_the_rest_still_classified(trained, tmp_path):
    model_dir, _ = trained
    images, _ = _test_images(1)
    folder = tmp_path / 'mixed'
    good, _ = _write_images(str(folder), images)
    (folder / 'notes.png').write_bytes(b'this is text, not a picture')
    (folder / 'empty.jpg').write_bytes(b'')
    gray = np.asarray(images[0][:, :, :1])
    rgba = np.concatenate([images[0], np.full((32, 32, 1), 7, np.uint8)], axis=-1)
    (folder / 'gray.png').write_bytes(tf.io.encode_png(gray).numpy())
    (folder / 'rgba.png').write_bytes(tf.io.encode_png(rgba).numpy())
    out = str(tmp_path / 'predictions.json')
    proc = run_train('--mode=predict', '--model_dir=' + model_dir, '--images=%s,%s' % (
        folder, tmp_path / 'missing.png'), '--predictions_json=' + out)
    assert proc.returncode == 1
    with open(out) as f:
        results = {os.path.basename(r['file']): r for r in json.load(f)}
    assert 'is not an image TensorFlow can decode' in results['notes.png']['error']
    assert 'is empty' in results['empty.jpg']['error']
    assert 'cannot be read (No such file or directory)' in results['missing.png']['error']
    assert '3 of 6 files could not be classified' in proc.stdout
    # Documented conversions: gray is replicated to RGB, alpha is dropped.
    expected = _session_probabilities(model_dir, np.stack([np.repeat(gray, 3, axis=-1),
                                                           images[0]]))
    gray_top = results['gray.png']['predictions'][0]
    rgba_top = results['rgba.png']['predictions'][0]
    assert abs(gray_top['probability'] - expected[0].max()) < 1e-5
    assert abs(rgba_top['probability'] - expected[1].max()) < 1e-5
    assert rgba_top == results[os.path.basename(good[0])]['predictions'][0]


# An 8x8 red WebP (lossless), made with Pillow; TensorFlow decodes WebP but cannot write it.
_WEBP = base64.b64decode('UklGRh4AAABXRUJQVlA4TBEAAAAvB8ABAAdQjyLXo/+BiOh/AAA=')


@pytest.mark.slow
def test_empty_folder_webp_blank_and_odd_names(trained, tmp_path):
    model_dir, _ = trained
    (tmp_path / 'empty').mkdir()
    folder = tmp_path / 'pictures'
    folder.mkdir()
    (folder / 'red.webp').write_bytes(_WEBP)
    images, _ = _test_images(1)
    odd = folder / 'two\nlines.png'
    odd.write_bytes(tf.io.encode_png(images[0]).numpy())
    out = str(tmp_path / 'predictions.json')
    proc = run_train('--mode=predict', '--model_dir=' + model_dir, '--predictions_json=' + out,
                     '--images=%s,,%s,' % (tmp_path / 'empty', folder))
    assert proc.returncode == 1, proc.stdout[-2000:]  # the empty folder is an error ...
    with open(out) as f:
        results = json.load(f)
    assert [r['file'] for r in results] == [str(tmp_path / 'empty'), str(folder / 'red.webp'),
                                            str(odd)]
    assert 'is a folder with no image files' in results[0]['error']
    if hasattr(tf.io, 'decode_webp'):  # TensorFlow 2.17 on decodes WebP ...
        assert 'predictions' in results[1]
    else:  # ... 2.16 names it, as any file its decoders refuse
        assert 'is not an image TensorFlow can decode' in results[1]['error']
    assert 'predictions' in results[2]  # ... the rest classified
    # One output line per file: the newline in a name is escaped, not printed.
    assert '"%s": ' % str(odd).replace('\n', '\\n') in proc.stdout
    assert not any(line.startswith('lines.png') for line in proc.stdout.splitlines())


_GIF_1X1 = base64.b64decode('R0lGODlhAQABAIAAAP///wAAACH5BAEAAAAALAAAAAABAAEAAAICRAEAOw==')


def _bmp_header(width, height):
    return (b'BM' + struct.pack('<IHHI', 0, 0, 0, 54)
            + struct.pack('<IiiHHIIiiII', 40, width, height, 1, 24, 0, 0, 0, 0, 0, 0))


def _with_size(encoded_png, width, height):
    """The PNG with other dimensions written into its header (its CRC no longer matches)."""
    return encoded_png[:16] + struct.pack('>II', width, height) + encoded_png[24:]


def test_the_size_an_image_declares_is_read_from_its_header():
    image = np.zeros((37, 53, 3), np.uint8)
    png = tf.io.encode_png(image).numpy()
    assert image_size.declared_size(png) == (53, 37)
    assert image_size.declared_size(tf.io.encode_jpeg(image).numpy()) == (53, 37)
    assert image_size.declared_size(tf.io.encode_jpeg(image, progressive=True).numpy()) == (53, 37)
    assert image_size.declared_size(_GIF_1X1) == (1, 1)
    assert image_size.declared_size(_WEBP) == (8, 8)
    assert image_size.declared_size(_bmp_header(640, -480)) == (640, 480)
    assert image_size.declared_size(png[:20]) is None  # cut inside its header
    assert image_size.declared_size(b'not an image') is None


def test_an_image_declaring_too_many_pixels_is_refused_before_it_is_decoded(tmp_path):
    png = tf.io.encode_png(np.zeros((4, 4, 3), np.uint8)).numpy()
    paths = {name: str(tmp_path / name) for name in ('bomb.png', 'bomb.bmp', 'large.png')}
    with open(paths['bomb.png'], 'wb') as f:
        f.write(_with_size(png, 20000, 20000))
    with open(paths['bomb.bmp'], 'wb') as f:
        f.write(_bmp_header(10000, 10000) + b'\0' * 64)
    with open(paths['large.png'], 'wb') as f:  # exactly at the limit: passed on to the decoder
        f.write(_with_size(png, 10000, image_size.MAX_IMAGE_PIXELS // 10000))
    images, errors = predict.load_images(sorted(paths.values()))
    assert not images
    for name in ('bomb.png', 'bomb.bmp'):
        assert 'over the limit of 50 million' in errors[paths[name]], errors
    assert 'declares 20000x20000 pixels' in errors[paths['bomb.png']]
    # The decoder saw it (and found its CRC broken): the limit is on what is declared.
    assert 'is not an image TensorFlow can decode' in errors[paths['large.png']]


@pytest.mark.slow
def test_no_images_named(trained):
    model_dir, _ = trained
    proc = run_train('--mode=predict', '--model_dir=' + model_dir, '--images=,')
    assert proc.returncode == 1 and '--images named no files' in proc.stdout
    proc = run_train('--mode=predict', '--model_dir=' + model_dir)
    assert proc.returncode != 0 and '--mode=predict needs --images' in proc.stdout


@pytest.mark.slow
def test_checkpoint_of_another_output_size_is_refused(tmp_path):
    model_dir = tmp_path / 'five'
    model_dir.mkdir()
    write_checkpoint_of_output_size(str(model_dir), 5)
    image_paths, _ = _write_images(str(tmp_path / 'images'), _test_images(1)[0])
    for mode in ('export', 'predict'):
        proc = run_train('--mode=' + mode, '--model_dir=%s' % model_dir,
                         '--images=%s' % image_paths[0])
        assert proc.returncode == 1, proc.stdout[-2000:]
        assert 'has 5 output classes but there are 10 class names' in proc.stdout
    assert not os.path.exists(model_dir / 'export')


def test_export_replaces_an_earlier_export_whole(trained, tmp_path):
    model_dir, _ = trained
    export_dir = str(tmp_path / 'exported')
    shutil.copytree(os.path.join(model_dir, 'export'), export_dir)
    os.remove(os.path.join(export_dir, 'model_int8.tflite'))  # an earlier, different export
    report = export.export(model_dir, export_dir, list(synthetic.LABEL_NAMES))
    assert report['global_step'] == 300
    assert 'model_int8.tflite' in os.listdir(export_dir)
    assert [n for n in os.listdir(str(tmp_path)) if n.startswith('.')] == []
    shutil.rmtree(export_dir)


@pytest.mark.slow
def test_export_into_a_path_with_glob_characters_writes_tflite(trained, tmp_path):
    model_dir, _ = trained
    # Glob characters in the folder above (where the export is staged) and in its own name.
    export_dir = tmp_path / 'my runs*' / 'ex[2]'
    report = export.export(model_dir, str(export_dir), list(synthetic.LABEL_NAMES))
    assert report['tflite_skipped'] == {}
    assert {'model_float32.tflite', 'model_int8.tflite'} <= set(os.listdir(str(export_dir)))
