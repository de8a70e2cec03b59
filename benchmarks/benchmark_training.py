"""Is the TF1 graph code slower than its peers at their best? Training and evaluation, measured.

    python benchmarks/benchmark_training.py [--rounds=12] [--processes=3]
                                            [--scratch=DIR] [--output=benchmarks/results.json]
    python benchmarks/benchmark_training.py --quick

(about 30 minutes on 2 cores). Run it on a quiet machine: it warns when the load average was
high at its start. --quick is the harness's smoke test, run in CI: every contender built,
warmed up and timed for one short window (one process each, batch 32, one batch of evaluation
images), the limits measured, the figures printed and not judged, nothing written; it exits 1
when a contender fails, and names the ones skipped for a missing optional package.

Every contender runs in its own worker processes (this script with --worker=NAME), --processes
of them per batch size one after the other, each warmed up before anything is timed, so
start-up, graph building, compilation and the first steps stay out of the figures, and no
contender shares a thread pool, a tf.data runtime or an allocator with another. The parent then alternates them: in each round every
worker in turn (the order rotated per round) runs for a window of --seconds while the others
are paused (SIGSTOP, so no background thread of theirs takes CPU), and reports its images/s.
A first round, not counted, warms each worker up alone (a PyTorch evaluation worker also picks
its fastest batch size there). The rounds are shared by --processes fresh processes of each
contender in turn (3: four rounds each), because a contender's speed differs from one
process to the next about as much as from one round to the next (about 3% each here), and a
median over few processes and rounds moves from run to run by more than its rounds spread.
Each figure is the median over rounds; each ratio is taken within a round (paired: both sides
saw the same state of a shared machine) and reported as the median with its min-max over
rounds.

Training contenders, all on the same synthetic records and the same tf.data pipeline (the
notebook's per-record preprocessing, shuffle, batch, prefetch):
  session_fp32, session_bf16     run_train.py's Session loop (--precision=fp32 / bf16)
  keras_fp32, keras_bf16         the same model in Keras 3, model.fit (float32 / mixed_bfloat16)
  keras_spe_fp32, keras_spe_bf16 the same with steps_per_execution=16 (less Python per step)
  torch_fp32, torch_bf16         PyTorch eager, channels_last (float32 / bf16 autocast)
  torch_compile_fp32, _bf16      the same under torch.compile (inductor), on request: slower
                                 than eager at batch 32 here, so not in the default list
  session_xla_fp32 (on request)  the Session loop with XLA auto-clustering (no run_train flag)
Evaluation contenders, over 10,000 test images (uint8 records in, classes out):
  eval_session_fp32, _bf16       run_train.py's --mode=eval path, squeezenet_v1.evaluation.evaluate.Evaluator
  eval_savedmodel_fp32, _bf16    the exported SavedModel, tf.saved_model.load
  eval_tflite_fp32, _int8        the exported TFLite flat buffers
  eval_onnx_fp32                 the exported model.onnx under onnxruntime (the onnx extra)
  eval_keras_fp32                the exported model.keras, keras.saving.load_model + predict
  eval_torch_fp32, _bf16         PyTorch inference_mode, channels_last (bf16: autocast)
  eval_torch_compile_fp32, _bf16 the same under torch.compile
plus the wall time of a whole evaluation process (start-up included) and this machine's limits:
its matmul peak (fp32 and bf16) and memory bandwidth, measured in the same run (limits.py).
Each contender is reported against the roofline they set for the model's convolutions, as
"x roofline": its time per image over the least time the machine allows (at its batch size and
precision; int8 has none), and training contenders also in GFLOP/s (3 x forward FLOPs x
images/s, forward FLOPs per image from the TF profiler). PyTorch contenders are skipped, with a
note, when torch is not installed.
"""

import collections
import datetime
import importlib.util
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

from absl import app
from absl import flags

HERE = os.path.dirname(os.path.abspath(__file__))
if '--quick' in sys.argv[1:]:
    # A smoke test leaves no file behind, bytecode caches of its workers included.
    sys.dont_write_bytecode = True
    os.environ['PYTHONDONTWRITEBYTECODE'] = '1'
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

import numpy as np  # noqa: E402

import compare_runs  # noqa: E402
import limits  # noqa: E402
from squeezenet_v1.data import cifar10  # noqa: E402
from squeezenet_v1.data import datasets  # noqa: E402

FLAGS = flags.FLAGS

# torch_compile_fp32/_bf16 and session_xla_fp32 run when named in --contenders: compiled
# PyTorch training was slower than eager at batch 32 in every trial here, and costs a compile
# per batch size.
TRAIN_CONTENDERS = ['session_fp32', 'session_bf16', 'keras_fp32', 'keras_bf16', 'keras_spe_fp32',
                    'keras_spe_bf16', 'torch_fp32', 'torch_bf16']
KERAS_STEPS_PER_EXECUTION = 16  # keras_spe_*: fit runs 16 steps per call of its train function
EVAL_CONTENDERS = ['eval_session_fp32', 'eval_session_bf16', 'eval_savedmodel_fp32',
                   'eval_savedmodel_bf16', 'eval_tflite_fp32', 'eval_tflite_int8',
                   'eval_onnx_fp32', 'eval_keras_fp32',
                   'eval_torch_fp32', 'eval_torch_bf16', 'eval_torch_compile_fp32',
                   'eval_torch_compile_bf16']
# PyTorch inference picks its fastest batch (compiled: of the two largest, each one compile).
TORCH_EVAL_BATCH_SIZES = (32, 128, 500)
OURS = ('session', 'session_xla', 'eval_session', 'eval_savedmodel', 'eval_tflite', 'eval_onnx',
        'eval_keras')

flags.DEFINE_list('batch_sizes', ['32', '128'], 'Training batch sizes to measure.')
flags.DEFINE_integer('rounds', 12, 'Alternating rounds; medians and spreads are over rounds.')
flags.DEFINE_integer('processes', 3, 'Worker processes per contender, one after the other, '
                     'the rounds shared between them: the spread then holds what differs from '
                     'one process to the next (thread placement, allocations, compiled code).',
                     lower_bound=1)
flags.DEFINE_integer('eval_rounds', 12, 'Alternating rounds of evaluation (each window is at '
                     'least one pass over the test images).')
flags.DEFINE_float('seconds', 2.0, 'Length of one timed window (one contender, one round).')
flags.DEFINE_float('warmup_seconds', 1.0, 'Untimed steps each training worker runs at start-up, '
                   'before the untimed warm-up round.')
flags.DEFINE_list('contenders', TRAIN_CONTENDERS, 'Training contenders to run.')
flags.DEFINE_list('eval_contenders', EVAL_CONTENDERS, 'Evaluation contenders to run.')
flags.DEFINE_integer('eval_images', 10000, 'Test images per evaluation pass.')
flags.DEFINE_integer('eval_batch_size', 500, 'Evaluation batch (run_train.py\'s default).')
flags.DEFINE_bool('quick', False, 'Smoke test of the harness (run in CI): every contender '
                  'built and timed for one short window, one process each, batch 32, 500 '
                  'evaluation images; prints its figures (not measurements), writes no file, '
                  'exits 1 when a contender fails.')
flags.DEFINE_list('pair', None, 'The short loop for speed work: OURS,PEER (two training or two '
                  'evaluation contenders), at the first --batch_sizes value, %d rounds over %d '
                  'processes each: their paired ratio with its spread in under 5 minutes, before '
                  'the full run confirms it. Writes --output only when given.'
                  % (8, 2))
flags.DEFINE_string('output', os.path.join(HERE, 'results.json'),
                    'Where to write the JSON results.')
# A worker's flags (set by the parent).
flags.DEFINE_integer('folder_decode', None, 'Measure --dataset=folder instead: write N '
                     'synthetic PNGs of each split as class folders, then time the first '
                     'prepare_split (decoding) against the second (the cache hit).')
flags.DEFINE_string('worker', None, 'Internal: run one contender as a worker process.')
flags.DEFINE_integer('batch_size', 32, 'Internal: the worker\'s batch size.')
flags.DEFINE_string('scratch', None, 'A folder for records, model and export, reused by later '
                    'runs (default: a temporary one).')


# ----------------------------------------------------------------------------------------------
# Worker side: one contender per process, driven over stdin/stdout.

def _say(message):
    sys.stdout.write('@@ %s\n' % message)
    sys.stdout.flush()


def _command():
    """The parent's next order: the window length in seconds, or None to stop."""
    words = sys.stdin.readline().split()
    if not words or words[0] != 'run':
        return None
    return float(words[1])


class _Ticker(object):
    """Paces a training worker: call tick() after every step; False means stop.

    Warm-up (at least warmup_seconds and 20 steps after the first, which may compile) is not
    timed; then each window counts the steps finished within the seconds the parent asked for.
    """

    def __init__(self, batch_size, warmup_seconds):
        self.batch_size = batch_size
        self.warmup_seconds = warmup_seconds
        self.warming = True
        self.start = None
        self.steps = 0
        self.seconds = 0.0

    def tick(self, steps=1):
        """`steps`: how many steps finished since the last tick (Keras runs several per call
        with steps_per_execution)."""
        now = time.perf_counter()
        self.steps += steps
        if self.start is None:  # the first step: compilation and graph set-up, not warm-up
            self.start, self.steps = now, 0
            return True
        elapsed = now - self.start
        if self.warming:
            if elapsed < self.warmup_seconds or self.steps < 20:
                return True
            _say('ready')
        else:
            if elapsed < self.seconds:
                return True
            _say('rate %.3f %d %.4f' % (self.steps * self.batch_size / elapsed, self.steps,
                                         elapsed))
        seconds = _command()
        if seconds is None:
            return False
        self.warming, self.seconds, self.steps = False, seconds, 0
        self.start = time.perf_counter()
        return True


def _serve_passes(run_pass, images_per_pass, before_first_window=None, warm_up=None):
    """Protocol loop for evaluation workers: each window is whole passes, at least `seconds`.

    `before_first_window` runs once when the first window is ordered (the parent's untimed
    warm-up round, when no other worker runs): a worker can time its choices there.
    `warm_up` (default: one pass) runs before the worker says it is ready.
    """
    (warm_up or run_pass)()
    _say('ready')
    while True:
        seconds = _command()
        if seconds is None:
            return
        if before_first_window:
            before_first_window()
            before_first_window = None
        start, passes = time.perf_counter(), 0
        while True:
            run_pass()
            passes += 1
            elapsed = time.perf_counter() - start
            if elapsed >= seconds:
                break
        _say('rate %.3f %d %.4f' % (passes * images_per_pass / elapsed, passes, elapsed))


def _train_source(scratch):
    return datasets.prepare_split('synthetic', 'train', 'data', scratch)


def _session_worker(precision, batch_size, scratch, xla=False):
    import tensorflow as tf
    from squeezenet_v1.training import session_options
    from squeezenet_v1.training.graph import build_training_graph
    from squeezenet_v1.training.loop import start_input
    training = build_training_graph(_train_source(scratch), batch_size, 0.001,
                                    precision=precision)
    config = session_options.session_config(precision, xla)
    with tf.compat.v1.Session(graph=training.graph, config=config) as sess:
        sess.run(training.init_op)
        start_input(sess, training)
        step = sess.make_callable(training.fetches)  # run_train.py's per-step call
        ticker = _Ticker(batch_size, FLAGS.warmup_seconds)
        step()
        while ticker.tick():
            step()


def _keras_worker(precision, batch_size, scratch, steps_per_execution=1):
    import keras
    from squeezenet_v1.data import input_pipeline
    from squeezenet_v1 import model as model_lib
    from squeezenet_v1.deploy.keras_model import build_keras_squeezenet
    if precision == 'bf16':
        keras.mixed_precision.set_global_policy('mixed_bfloat16')
    source = _train_source(scratch)
    model = build_keras_squeezenet(len(source.label_names),
                                   steps_per_execution=steps_per_execution)
    dataset = input_pipeline.make_dataset(source.record_files,
                                          model_lib.new_model(len(source.label_names)),
                                          True, batch_size)
    ticker = _Ticker(batch_size, FLAGS.warmup_seconds)

    finished = [0]

    class _Pace(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            # `batch` is the index of the last step run: several with steps_per_execution.
            steps, finished[0] = batch + 1 - finished[0], batch + 1
            if not ticker.tick(steps):
                self.model.stop_training = True

    model.fit(dataset, steps_per_epoch=10 ** 9, epochs=1, verbose=0, callbacks=[_Pace()])


def _torch_model(num_classes, compiled, training):
    import torch
    from torch_squeezenet import TorchSqueezeNet
    torch.manual_seed(0)
    model = TorchSqueezeNet(num_classes).to(memory_format=torch.channels_last)
    model.train(training)
    return model, (torch.compile(model, dynamic=False) if compiled else model)


def _torch_worker(precision, compiled, batch_size, scratch):
    import contextlib
    import torch
    from squeezenet_v1.data import input_pipeline
    from squeezenet_v1 import model as model_lib
    source = _train_source(scratch)
    model, forward = _torch_model(len(source.label_names), compiled, True)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.001, fused=True)
    loss_fn = torch.nn.CrossEntropyLoss()
    dataset = input_pipeline.make_dataset(source.record_files,
                                          model_lib.new_model(len(source.label_names)),
                                          True, batch_size)
    batches = dataset.as_numpy_iterator()

    def autocast():
        if precision == 'bf16':
            return torch.autocast('cpu', dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def step():
        images, labels = next(batches)
        # NHWC numpy -> NCHW tensor in channels_last memory: no copy of the pixels.
        x = torch.from_numpy(np.require(images, requirements='W')).permute(0, 3, 1, 2)
        y = torch.from_numpy(labels.astype(np.int64))
        optimizer.zero_grad(set_to_none=True)
        with autocast():
            loss = loss_fn(forward(x), y)
        loss.backward()
        optimizer.step()
        return loss.item()

    ticker = _Ticker(batch_size, FLAGS.warmup_seconds)
    step()
    while ticker.tick():
        step()


def _test_images(scratch):
    """The evaluation split as uint8 NHWC images and int32 labels (numpy, no TensorFlow)."""
    with open(os.path.join(scratch, 'test_records.bin'), 'rb') as f:
        records = np.frombuffer(f.read(), np.uint8).reshape(-1, cifar10.RECORD_BYTES)
    images = records[:, cifar10.LABEL_BYTES:].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return np.ascontiguousarray(images), records[:, 0].astype(np.int32)


def _batches(array, batch_size):
    return [array[i:i + batch_size] for i in range(0, len(array), batch_size)]


def _eval_session_worker(precision, scratch, setup):
    from squeezenet_v1.evaluation import evaluate
    model_dir = os.path.join(scratch, 'model_' + precision)  # each worker writes its own results
    shutil.copytree(setup['model_dir'], model_dir, dirs_exist_ok=True)
    source = datasets.SplitSource('synthetic', 'test', [os.path.join(scratch, 'test_records.bin')],
                                  setup['eval_images'], setup['label_names'])
    # run_train.py --mode=eval [--precision=bf16]'s Evaluator.
    with evaluate.Evaluator(model_dir, source, FLAGS.eval_batch_size, precision) as evaluator:
        _serve_passes(evaluator.evaluate, setup['eval_images'])


def _eval_savedmodel_worker(precision, scratch, setup):
    import tensorflow as tf
    from squeezenet_v1.deploy import export
    from squeezenet_v1.deploy import serving
    if precision == 'bf16':
        tf.config.optimizer.set_experimental_options(
            {'auto_mixed_precision_onednn_bfloat16': True})
    loaded = tf.saved_model.load(os.path.join(setup['export_dir'], export.SAVED_MODEL_DIR))
    predict = loaded.signatures['serving_default']
    images, _ = _test_images(scratch)
    batches = [tf.constant(b) for b in _batches(images, FLAGS.eval_batch_size)]

    def run_pass():
        for batch in batches:
            predict(**{serving.INPUT_KEY: batch})[serving.CLASSES_KEY].numpy()
    _serve_passes(run_pass, len(images))


def _eval_tflite_worker(precision, scratch, setup):
    import tensorflow as tf
    from squeezenet_v1.deploy import export
    name = export.TFLITE_FLOAT_FILE if precision == 'fp32' else export.TFLITE_INT8_FILE
    path = os.path.join(setup['export_dir'], name)
    # artifacts.tflite_interpreter's interpreter, given both cores.
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        Interpreter = tf.lite.Interpreter
    interpreter = Interpreter(model_path=path, num_threads=os.cpu_count())
    images, _ = _test_images(scratch)
    batch = FLAGS.eval_batch_size
    input_index = interpreter.get_input_details()[0]['index']
    interpreter.resize_tensor_input(input_index, [batch, 32, 32, 3])
    interpreter.allocate_tensors()
    output_index = next(d['index'] for d in interpreter.get_output_details()
                        if len(d['shape']) == 1)  # classes
    batches = [b for b in _batches(images, batch) if len(b) == batch]

    def run_pass():
        for b in batches:
            interpreter.set_tensor(input_index, b)
            interpreter.invoke()
            interpreter.get_tensor(output_index)
    _serve_passes(run_pass, len(batches) * batch)


def _eval_onnx_worker(scratch, setup):
    import onnxruntime
    from squeezenet_v1.deploy import export
    session = onnxruntime.InferenceSession(os.path.join(setup['export_dir'], export.ONNX_FILE),
                                           providers=['CPUExecutionProvider'])
    name = session.get_inputs()[0].name
    images, _ = _test_images(scratch)
    batches = _batches(images, FLAGS.eval_batch_size)

    def run_pass():
        for batch in batches:
            session.run(['classes:0'], {name: batch})
    _serve_passes(run_pass, len(images))


def _eval_keras_worker(scratch, setup):
    import keras
    from squeezenet_v1.deploy import export
    model = keras.saving.load_model(os.path.join(setup['export_dir'], export.KERAS_FILE))
    images, _ = _test_images(scratch)

    def run_pass():
        np.argmax(model.predict(images, batch_size=FLAGS.eval_batch_size, verbose=0), axis=1)
    _serve_passes(run_pass, len(images))


def _eval_torch_worker(precision, compiled, scratch, setup):
    import contextlib
    import torch
    model, forward = _torch_model(len(setup['label_names']), compiled, False)
    images, _ = _test_images(scratch)

    def preprocess(batch):
        # The notebook's evaluation preprocessing: centre crop 24x24, per-image standardization.
        x = batch[:, 4:28, 4:28, :].float()
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        std = x.std(dim=(1, 2, 3), keepdim=True, correction=0)
        x = (x - mean) / torch.clamp(std, min=1.0 / (24 * 24 * 3) ** 0.5)
        return x.permute(0, 3, 1, 2)  # NCHW view of channels_last memory

    def autocast():
        if precision == 'bf16':
            return torch.autocast('cpu', dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def run_pass(batches):
        with torch.inference_mode(), autocast():
            for batch in batches:
                forward(preprocess(batch)).argmax(dim=1).numpy()

    # At its best: the fastest of a few batch sizes, timed in the untimed warm-up round.
    sizes = TORCH_EVAL_BATCH_SIZES[-2:] if compiled else TORCH_EVAL_BATCH_SIZES
    candidates = {size: [torch.from_numpy(b) for b in _batches(images, size)] for size in sizes}
    chosen = [candidates[max(candidates)]]

    def warm_up():
        for batches in candidates.values():
            run_pass(batches[:1] + batches[-1:])  # compiles for its shapes

    def choose():
        timings = {}
        for size, batches in candidates.items():
            start = time.perf_counter()
            run_pass(batches)
            timings[size] = time.perf_counter() - start
        best = min(timings, key=timings.get)
        sys.stderr.write('torch evaluation batch %d chosen from %s\n' % (best, timings))
        _say('batch %d' % best)
        chosen[0] = candidates[best]
    _serve_passes(lambda: run_pass(chosen[0]), len(images), before_first_window=choose,
                  warm_up=warm_up)


def _eval_wall_worker(scratch, setup):
    """What a user's `--mode=eval` costs, start-up included: import, build, restore, evaluate."""
    from squeezenet_v1.evaluation import evaluate
    model_dir = os.path.join(scratch, 'model_wall')
    if not os.path.isdir(model_dir):
        shutil.copytree(setup['model_dir'], model_dir, dirs_exist_ok=True)
    source = datasets.SplitSource('synthetic', 'test', [os.path.join(scratch, 'test_records.bin')],
                                  setup['eval_images'], setup['label_names'])
    evaluate.evaluate(model_dir, source, FLAGS.eval_batch_size)


def _setup_worker(scratch):
    """Records, a briefly trained model, its export, forward FLOPs; written to setup.json."""
    import tensorflow as tf
    from squeezenet_v1.deploy import export
    from squeezenet_v1.training import loop, trainer
    from squeezenet_v1.training.graph import op_determinism
    train_source = _train_source(scratch)
    test_source = datasets.prepare_split('synthetic', 'test', 'data', scratch)
    with open(test_source.record_files[0], 'rb') as f:
        test_records = f.read()
    repeats = -(-FLAGS.eval_images // test_source.num_examples)
    with open(os.path.join(scratch, 'test_records.bin'), 'wb') as f:
        f.write((test_records * repeats)[:FLAGS.eval_images * cifar10.RECORD_BYTES])
    model_dir = os.path.join(scratch, 'model')
    with op_determinism(1):
        trainer.train(model_dir, train_source, loop.LoopSettings(
            batch_size=32, max_steps=50, learning_rate=0.001, save_checkpoints_steps=50,
            keep_checkpoint_max=5, log_every_n_steps=50, save_summary_steps=100), seed=1)
    export_dir = os.path.join(scratch, 'export')
    export.export(model_dir, export_dir, train_source.label_names)
    options = tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()
    options['output'] = 'none'
    flops = tf.compat.v1.profiler.profile(limits.model_graph(1), options=options).total_float_ops
    setup = {'model_dir': model_dir, 'export_dir': export_dir, 'eval_images': FLAGS.eval_images,
             'label_names': list(train_source.label_names), 'forward_flops_per_image': flops}
    with open(os.path.join(scratch, 'setup.json'), 'w') as f:
        json.dump(setup, f)


def _limits_worker():
    """This machine's matmul FLOP/s (fp32, bf16) and memory bytes/s, and the model's convs."""
    _say('limits %s' % json.dumps({
        'peak': {'fp32': limits.matmul_peak('fp32'), 'bf16': limits.matmul_peak('bf16')},
        'bandwidth': limits.bandwidth(), 'convolutions': limits.convolutions(
            limits.model_graph())}))


def _run_worker(name):
    scratch = FLAGS.scratch
    setup = None
    if os.path.exists(os.path.join(scratch, 'setup.json')):
        with open(os.path.join(scratch, 'setup.json')) as f:
            setup = json.load(f)
    precision = name.rsplit('_', 1)[-1]
    if name == 'setup':
        return _setup_worker(scratch)
    if name == 'limits':
        return _limits_worker()
    if name == 'eval_wall':
        return _eval_wall_worker(scratch, setup)
    if name.startswith('session_'):
        return _session_worker(precision, FLAGS.batch_size, scratch, xla='xla' in name)
    if name.startswith('keras_'):
        return _keras_worker(precision, FLAGS.batch_size, scratch,
                             KERAS_STEPS_PER_EXECUTION if '_spe' in name else 1)
    if name.startswith('torch_'):
        return _torch_worker(precision, 'compile' in name, FLAGS.batch_size, scratch)
    if name.startswith('eval_session_'):
        return _eval_session_worker(precision, scratch, setup)
    if name.startswith('eval_savedmodel_'):
        return _eval_savedmodel_worker(precision, scratch, setup)
    if name.startswith('eval_tflite_'):
        return _eval_tflite_worker(precision, scratch, setup)
    if name == 'eval_onnx_fp32':
        return _eval_onnx_worker(scratch, setup)
    if name == 'eval_keras_fp32':
        return _eval_keras_worker(scratch, setup)
    if name.startswith('eval_torch_'):
        return _eval_torch_worker(precision, 'compile' in name, scratch, setup)
    raise app.UsageError('unknown worker %r' % name)


# ----------------------------------------------------------------------------------------------
# Parent side: start workers, alternate them, collect and report.

class _Worker(object):
    """One contender's process; the parent talks to it over its stdin/stdout."""

    def __init__(self, name, scratch, settings, batch_size=None):
        self.name = name
        self.log_path = os.path.join(scratch, '%s_%s.log' % (name, batch_size or 'eval'))
        self.log = open(self.log_path, 'w')
        command = [sys.executable, os.path.abspath(__file__), '--worker=' + name,
                   '--scratch=' + scratch, '--warmup_seconds=%g' % settings.warmup_seconds,
                   '--eval_batch_size=%d' % FLAGS.eval_batch_size,
                   '--eval_images=%d' % settings.eval_images]
        if batch_size:
            command.append('--batch_size=%d' % batch_size)
        # Its own process group, so that it can be paused whole (helper processes included).
        self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=self.log, text=True, bufsize=1,
                                        start_new_session=True)
        self.paused = False
        self.batch_size = batch_size
        _LIVE_WORKERS.add(self)

    def pause(self):
        """Stops every thread of the worker (SIGSTOP) while others are timed: a waiting
        process's background threads (tf.data, OpenMP spinning, compile pools) take no CPU."""
        if not self.paused and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGSTOP)
            self.paused = True

    def resume(self):
        if self.paused:
            os.killpg(self.process.pid, signal.SIGCONT)
            self.paused = False

    def read(self):
        """The worker's next protocol message (its other output is ignored)."""
        while True:
            line = self.process.stdout.readline()
            if not line:
                self.process.wait()
                self.log.flush()
                with open(self.log_path) as f:
                    tail = f.read()[-3000:]
                raise RuntimeError('worker %s exited (status %s):\n%s'
                                   % (self.name, self.process.returncode, tail))
            if line.startswith('@@ '):
                return line[3:].strip()

    def run(self, seconds):
        """Resumes the worker, has it run one timed window, pauses it; returns its images/s."""
        self.resume()
        self.process.stdin.write('run %g\n' % seconds)
        self.process.stdin.flush()
        words = self.read().split()
        while words[0] == 'batch':  # a worker that chose its batch size says which
            self.batch_size = int(words[1])
            words = self.read().split()
        self.pause()
        return float(words[1])

    def stop(self):
        """Tells the worker to finish (close() waits for it)."""
        if self.process.poll() is None:
            self.resume()
        try:
            self.process.stdin.write('quit\n')
            self.process.stdin.close()
        except (BrokenPipeError, OSError, ValueError):
            pass

    def close(self):
        self.stop()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        self.log.close()
        _LIVE_WORKERS.discard(self)


_LIVE_WORKERS = set()


def _end_workers_on_sigterm():
    """A parent ended by SIGTERM (CI's timeout) kills its workers' process groups first: they
    run in sessions of their own, paused, and would outlive it."""
    def terminate(signum, unused_frame):
        for worker in list(_LIVE_WORKERS):
            try:
                os.killpg(worker.process.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        raise SystemExit(128 + signum)
    signal.signal(signal.SIGTERM, terminate)


def _run_once(name, scratch, settings):
    """Runs a one-shot worker (setup, limits, eval_wall); returns (wall seconds, messages)."""
    worker = _Worker(name, scratch, settings)
    start = time.perf_counter()
    messages = []
    try:
        while True:
            messages.append(worker.read())
    except RuntimeError:
        if worker.process.returncode != 0:
            raise
    wall = time.perf_counter() - start
    worker.close()
    return wall, messages


def _alternate(names, scratch, settings, batch_size):
    """Runs the rounds over settings.processes generations of workers, one per name each.

    A contender's speed differs from one process to the next about as much as from one round
    to the next (three runs with one process per contender disagreed by up to 5% where each
    run's rounds spread 2-4%), so every contender gets `processes` fresh processes in turn, each
    warmed up before its share of the rounds. Returns ({name: [images/s per round]},
    {name: reason} for workers that failed to start, {name: batch size} for workers that chose
    their own).
    """
    rounds = settings.eval_rounds if batch_size is None else settings.rounds
    per_process = compare_runs.rounds_per_process(rounds, settings.processes)
    rates, failed, chosen_batch = {name: [] for name in names}, {}, {}
    first_round = 0
    for generation_rounds in per_process:
        if not generation_rounds:
            continue
        _one_generation([n for n in names if n not in failed], scratch, settings, batch_size,
                        first_round, generation_rounds, rates, failed, chosen_batch)
        first_round += generation_rounds
    return {n: r for n, r in rates.items() if n not in failed}, failed, chosen_batch


def _one_generation(names, scratch, settings, batch_size, first_round, rounds, rates, failed,
                    chosen_batch):
    """Starts one worker per name, waits for all to warm up, runs `rounds` rounds into rates."""
    workers = {}
    if not names:
        return
    for name in names:
        workers[name] = _Worker(name, scratch, settings, batch_size)
    for name in list(workers):
        try:
            message = workers[name].read()
            assert message == 'ready', message
            workers[name].pause()
        except RuntimeError as e:
            failed[name] = str(e).strip().splitlines()[-1]
            print('%s failed to start: %s' % (name, failed[name]), flush=True)
            del workers[name]
    names = [n for n in names if n in workers]
    if not names:
        return
    try:
        for name in names:  # not counted: each warms up alone
            workers[name].run(settings.seconds)
        chosen_batch.update((n, w.batch_size) for n, w in workers.items()
                            if w.batch_size != batch_size)
        for round_index in range(first_round, first_round + rounds):
            shift = round_index % len(names)
            for name in names[shift:] + names[:shift]:
                rates[name].append(workers[name].run(settings.seconds))
            print('%s round %d: %s' % ('batch %d' % batch_size if batch_size else 'eval',
                                       round_index + 1,
                                       ', '.join('%s %.0f' % (n, rates[n][-1]) for n in names)),
                  flush=True)
    finally:
        for worker in workers.values():
            worker.stop()
        for worker in workers.values():
            worker.close()


def _precision(name):
    return name.rsplit('_', 1)[-1]


def _roofline_rate(machine_limits, name, batch_size, training):
    """The images/s the model's convolutions allow at most, in this contender's precision.

    See limits.py for what the bound counts. None for int8: its peak is not measured, and
    TFLite's dynamic-range model moves float activations between int8 matmuls.
    """
    precision = _precision(name)
    if precision not in limits.ELEMENT_BYTES:
        return None
    seconds = limits.roofline_seconds(
        machine_limits['convolutions'], batch_size,
        limits.TRAINING_PASSES if training else limits.INFERENCE_PASSES,
        machine_limits['peak'][precision], machine_limits['bandwidth'],
        limits.ELEMENT_BYTES[precision])
    return batch_size / seconds


def _is_ours(name):
    return name.rsplit('_', 1)[0] in OURS


def _spread(values):
    return {'median': round(statistics.median(values), 3), 'min': round(min(values), 3),
            'max': round(max(values), 3)}


def _paired(rates, ours, peers):
    """Per-round ratio of `ours` to the best of `peers` in that round, with its spread."""
    peers = [p for p in peers if p in rates]
    if ours not in rates or not peers:
        return None
    ratios = [rates[ours][r] / max(rates[p][r] for p in peers) for r in range(len(rates[ours]))]
    best = [max(peers, key=lambda p: rates[p][r]) for r in range(len(rates[ours]))]
    result = _spread(ratios)
    result['best_peer_by_round'] = best
    result['all_rounds'] = [round(x, 3) for x in ratios]
    return result


# Optional packages and the contenders that need them: without one, those are skipped, named.
OPTIONAL_PACKAGES = [
    ('torch', ('torch',), 'PyTorch is not installed (pip install torch); not measured.'),
    ('keras', ('keras',), 'Keras 3 is not installed (pip install keras); not measured.'),
    ('onnx', ('tf2onnx', 'onnx', 'onnxruntime'),
     '%s not installed (pip install -e ".[onnx]"); not measured.'),
]


def _available(names):
    """(the contenders that can run here, {name: why not} for the others)."""
    skipped = {}
    for part, modules, reason in OPTIONAL_PACKAGES:
        missing = [m for m in modules if importlib.util.find_spec(m) is None]
        if missing:
            for name in names:
                if part in name and name not in skipped:
                    skipped[name] = reason % ', '.join(missing) if '%s' in reason else reason
    flags_here = set()
    try:
        with open('/proc/cpuinfo') as f:
            flags_here = set(next(l for l in f if l.startswith('flags')).split(':', 1)[1].split())
    except (OSError, StopIteration):
        pass
    if not flags_here & {'avx512_bf16', 'amx_bf16'}:
        for name in names:
            if name.endswith('bf16'):
                skipped[name] = 'no AVX512-BF16 or AMX on this CPU; bf16 would be emulated.'
    return [n for n in names if n not in skipped], skipped


def machine():
    cpu = platform.processor() or 'unknown'
    cpu_flags = set()
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('model name'):
                    cpu = line.split(':', 1)[1].strip()
                if line.startswith('flags'):
                    cpu_flags = set(line.split(':', 1)[1].split())
    except OSError:
        pass
    versions = {'python': platform.python_version()}
    for module in ('tensorflow', 'keras', 'torch'):
        try:
            versions[module] = __import__(module).__version__
        except ImportError:
            pass
    return dict(versions, cpu=cpu, cores=os.cpu_count(), cpu_flags=sorted(
        cpu_flags & {'avx2', 'avx512f', 'avx512_bf16', 'amx_bf16', 'amx_int8', 'amx_tile'}))


Settings = collections.namedtuple('Settings', ['batch_sizes', 'rounds', 'eval_rounds', 'seconds',
                                               'warmup_seconds', 'eval_images', 'processes'])


# --pair: enough rounds for a spread, few enough for under 5 minutes with the set-up.
PAIR_ROUNDS, PAIR_PROCESSES = 8, 2


# --quick: one round of one short window per contender, one process each, one evaluation batch.
QUICK_SETTINGS = Settings([32], 1, 1, 0.2, 0.0, 500, 1)


def _settings():
    """The run's settings from the flags; --quick's and --pair's override them."""
    if FLAGS.quick:
        return QUICK_SETTINGS
    if FLAGS.pair:
        return Settings([int(FLAGS.batch_sizes[0])], PAIR_ROUNDS, PAIR_ROUNDS, FLAGS.seconds,
                        FLAGS.warmup_seconds, FLAGS.eval_images, PAIR_PROCESSES)
    return Settings([int(b) for b in FLAGS.batch_sizes], FLAGS.rounds, FLAGS.eval_rounds,
                    FLAGS.seconds, FLAGS.warmup_seconds, FLAGS.eval_images, FLAGS.processes)


def _folder_decode(count):
    """Prints the folder data set's decode rate, and its second run's, read from the cache."""
    import tempfile
    from squeezenet_v1.data import synthetic
    with tempfile.TemporaryDirectory() as scratch:
        root = os.path.join(scratch, 'data')
        written = len(synthetic.write_class_folders(root, count, synthetic.NUM_CLASSES))
        times = []
        for _ in range(2):
            started = time.time()
            source = datasets.prepare_split('folder', 'train', root, os.path.join(scratch, 'c'))
            times.append(time.time() - started)
    print('folder data set, %d PNGs written, %d in the train split, on %s:'
          % (written, source.num_examples, machine()['cpu']))
    print('  decoding:   %.2f s  (%.0f images/s)' % (times[0], source.num_examples / times[0]))
    print('  cache hit:  %.3f s  (%.0fx faster)' % (times[1], times[0] / max(times[1], 1e-9)))


def main(argv):
    if len(argv) > 1:
        raise app.UsageError('Unexpected arguments: %s' % ' '.join(argv[1:]))
    if FLAGS.worker:
        _run_worker(FLAGS.worker)
        if FLAGS.worker == 'eval_wall':
            return  # a user's process ends normally: its shutdown is part of the wall time
        # Straight out: interpreter shutdown with both TensorFlow's and PyTorch's thread pools
        # alive can hang, and a worker has nothing left to clean up.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)
    _end_workers_on_sigterm()
    if FLAGS.folder_decode:
        return _folder_decode(FLAGS.folder_decode)
    if FLAGS.pair and FLAGS.quick:
        raise app.UsageError('--quick runs every contender; --pair runs two: choose one')
    if FLAGS.pair:
        return _run_pair()
    settings = _settings()
    started = time.time()
    train_names, skipped = _available(FLAGS.contenders)
    eval_names, eval_skipped = _available(FLAGS.eval_contenders)
    skipped.update(eval_skipped)
    for name, reason in skipped.items():
        print('%s skipped: %s' % (name, reason), flush=True)
    results = {'date': datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds'),
               'machine': machine(),
               'command': ' '.join(['python', 'benchmarks/benchmark_training.py'] + sys.argv[1:]),
               'rounds': settings.rounds, 'eval_rounds': settings.eval_rounds,
               'processes_per_contender': settings.processes,
               'seconds_per_window': settings.seconds,
               'warmup_seconds': settings.warmup_seconds, 'skipped': skipped, 'training': {},
               'load_average_at_start': round(os.getloadavg()[0], 2)}
    with tempfile.TemporaryDirectory() as temporary:
        scratch = FLAGS.scratch or temporary  # a given folder keeps its set-up for the next run
        os.makedirs(scratch, exist_ok=True)
        if not os.path.exists(os.path.join(scratch, 'setup.json')):
            _run_once('setup', scratch, settings)
        with open(os.path.join(scratch, 'setup.json')) as f:
            setup = json.load(f)
        if setup['eval_images'] != settings.eval_images:
            raise app.UsageError('--scratch=%s was set up for %d evaluation images, not %d; '
                                 'choose another folder.' % (scratch, setup['eval_images'],
                                                             settings.eval_images))
        flops = setup['forward_flops_per_image']
        results['forward_flops_per_image'] = flops
        _, messages = _run_once('limits', scratch, settings)
        machine_limits = json.loads(messages[-1].split(' ', 1)[1])
        results['matmul_gflops_per_sec'] = {
            k: round(v / 1e9, 1) for k, v in machine_limits['peak'].items()}
        results['memory_gb_per_sec'] = round(machine_limits['bandwidth'] / 1e9, 1)
        results['convolutions_per_image'] = machine_limits['convolutions']
        print('matmul peak GFLOP/s: %s; memory bandwidth %.1f GB/s'
              % (results['matmul_gflops_per_sec'], results['memory_gb_per_sec']), flush=True)
        failed = {}
        for batch_size in settings.batch_sizes if train_names else []:
            rates, failed_here, _ = _alternate(train_names, scratch, settings, batch_size)
            failed.update(failed_here)
            results['training'][str(batch_size)] = _training_summary(
                rates, flops, machine_limits, batch_size)
        if eval_names:
            rates, failed_here, chosen_batch = _alternate(eval_names, scratch, settings, None)
            failed.update(failed_here)
            results['evaluation'] = _eval_summary(rates, machine_limits, {
                n: chosen_batch.get(n, FLAGS.eval_batch_size) for n in rates})
            results['evaluation']['images'] = settings.eval_images
            results['evaluation']['batch_size'] = FLAGS.eval_batch_size
            results['evaluation']['torch_batch_size'] = dict(chosen_batch)
            walls = [_run_once('eval_wall', scratch, settings)[0]
                     for _ in range(1 if FLAGS.quick else 3)]
            results['evaluation']['eval_process_wall_seconds'] = _spread(walls)
        results['failed'] = failed
    results['wall_seconds'] = round(time.time() - started, 1)
    results['load_average_at_end'] = round(os.getloadavg()[0], 2)  # ours included
    _print_report(results)
    if FLAGS.quick:
        ran = set(results.get('evaluation', {}).get('images_per_sec', {}))
        for summary in results['training'].values():
            ran.update(summary['images_per_sec'])
        print('--quick: %d contenders built and timed, %d skipped, %d failed; one short window '
              'each, so the figures are not measurements; nothing written'
              % (len(ran), len(skipped), len(failed)))
        return 1 if failed else 0
    os.makedirs(os.path.dirname(os.path.abspath(FLAGS.output)), exist_ok=True)
    tmp = FLAGS.output + '.tmp'
    with open(tmp, 'w') as f:
        json.dump(results, f, indent=2)
        f.write('\n')
    os.replace(tmp, FLAGS.output)
    print('wrote %s' % FLAGS.output)


def _run_pair():
    """--pair=OURS,PEER: one paired ratio with its spread, in minutes, for each change tried."""
    known = TRAIN_CONTENDERS + ['keras_spe_fp32', 'torch_compile_fp32', 'torch_compile_bf16',
                                'session_xla_fp32'] + EVAL_CONTENDERS
    if len(FLAGS.pair) != 2 or any(n not in known for n in FLAGS.pair):
        raise app.UsageError('--pair takes two contenders, OURS,PEER, from: %s'
                             % ', '.join(sorted(set(known))))
    kinds = {name.startswith('eval_') for name in FLAGS.pair}
    if len(kinds) != 1:
        raise app.UsageError('--pair compares two training or two evaluation contenders')
    names, skipped = _available(FLAGS.pair)
    if skipped:
        raise app.UsageError('; '.join('%s: %s' % item for item in skipped.items()))
    settings = _settings()
    started = time.time()
    with tempfile.TemporaryDirectory() as temporary:
        scratch = FLAGS.scratch or temporary
        os.makedirs(scratch, exist_ok=True)
        if not os.path.exists(os.path.join(scratch, 'setup.json')):
            _run_once('setup', scratch, settings)
        batch_size = None if kinds == {True} else settings.batch_sizes[0]
        rates, failed, _ = _alternate(names, scratch, settings, batch_size)
    if failed:
        raise app.UsageError('failed: %s' % failed)
    ratio = _paired(rates, names[0], [names[1]])
    result = {'pair': names, 'batch_size': batch_size, 'rounds': settings.rounds,
              'processes': settings.processes, 'machine': machine(),
              'images_per_sec': {n: _spread(r) for n, r in rates.items()},
              'paired_ratio': ratio, 'wall_seconds': round(time.time() - started, 1)}
    for name in names:
        print('%-24s %s images/s' % (name, _format_spread(result['images_per_sec'][name])))
    print('%s / %s = %s (paired by round; %d rounds, %d processes each; %.0f s)' % (
        names[0], names[1], _format_spread(ratio, '%.3f'), settings.rounds,
        settings.processes, result['wall_seconds']))
    if FLAGS['output'].present:
        with open(FLAGS.output + '.tmp', 'w') as f:
            json.dump(result, f, indent=2)
        os.replace(FLAGS.output + '.tmp', FLAGS.output)
        print('wrote %s' % FLAGS.output)


def _format_spread(spread, number='%.0f'):
    return (number + ' [' + number + '-' + number + ']') % (
        spread['median'], spread['min'], spread['max'])


def _training_summary(rates, flops, machine_limits, batch_size):
    summary = {'images_per_sec': {n: _spread(r) for n, r in rates.items()},
               'all_rounds': {n: [round(x, 1) for x in r] for n, r in rates.items()},
               'gflops_per_sec': {}, 'times_roofline': {}, 'paired_ratios': {}}
    for name, r in rates.items():
        summary['gflops_per_sec'][name] = round(3 * flops * statistics.median(r) / 1e9, 1)
        summary['times_roofline'][name] = _times_roofline(
            _roofline_rate(machine_limits, name, batch_size, True), r)
    for precision in ('fp32', 'bf16'):
        ours = 'session_' + precision
        peers = [n for n in rates if not _is_ours(n) and _precision(n) == precision]
        summary['paired_ratios']['%s_vs_best_%s_peer' % (ours, precision)] = \
            _paired(rates, ours, peers)
        for peer in peers:
            summary['paired_ratios']['%s_vs_%s' % (ours, peer)] = _paired(rates, ours, [peer])
    summary['paired_ratios']['session_bf16_vs_session_fp32'] = _paired(
        rates, 'session_bf16', ['session_fp32'])
    summary['paired_ratios'] = {k: v for k, v in summary['paired_ratios'].items() if v}
    return summary


def _times_roofline(roofline_rate, rates):
    """The median time per image over the roofline's (None where there is no roofline)."""
    return None if roofline_rate is None else round(roofline_rate / statistics.median(rates), 2)


def _eval_summary(rates, machine_limits, batch_sizes):
    summary = {'images_per_sec': {n: _spread(r) for n, r in rates.items()},
               'all_rounds': {n: [round(x, 1) for x in r] for n, r in rates.items()},
               'times_roofline': {
                   n: _times_roofline(_roofline_rate(machine_limits, n, batch_sizes[n], False), r)
                   for n, r in rates.items()},
               'paired_ratios': {}}
    for precision in ('fp32', 'bf16', 'int8'):
        # int8 (TFLite's dynamic-range model) has no PyTorch twin: it meets the best of all.
        peers = [n for n in rates if 'torch' in n
                 and (_precision(n) == precision or precision == 'int8')]
        for ours in [n for n in rates if _is_ours(n) and _precision(n) == precision]:
            summary['paired_ratios']['%s_vs_best_torch_%s' % (
                ours, 'any' if precision == 'int8' else precision)] = _paired(rates, ours, peers)
    # --mode=eval, and ONNX, against the model exported from the same checkpoint.
    for ours in ('eval_session_fp32', 'eval_session_bf16', 'eval_onnx_fp32'):
        peer = 'eval_savedmodel_' + _precision(ours)
        summary['paired_ratios']['%s_vs_%s' % (ours, peer)] = _paired(rates, ours, [peer])
    summary['paired_ratios'] = {k: v for k, v in summary['paired_ratios'].items() if v}
    return summary


def _fmt(spread, digits=0):
    pattern = '%%.%df [%%.%df-%%.%df]' % (digits, digits, digits)
    return pattern % (spread['median'], spread['min'], spread['max'])


def _fmt_times(times_roofline):
    return 'n/a' if times_roofline is None else '%.1fx' % times_roofline


def _print_report(results):
    m = results['machine']
    print()
    print('machine: %s, %d cores (%s), TensorFlow %s, Keras %s, PyTorch %s' % (
        m['cpu'], m['cores'], ' '.join(m['cpu_flags']), m.get('tensorflow'), m.get('keras'),
        m.get('torch', 'not installed')))
    peak = results['matmul_gflops_per_sec']
    print('matmul peak: %.0f GFLOP/s fp32, %.0f GFLOP/s bf16; memory bandwidth %.1f GB/s; '
          'forward FLOPs per image: {:,}'.format(results['forward_flops_per_image'])
          % (peak['fp32'], peak['bf16'], results['memory_gb_per_sec']))
    print('x roofline: the contender\'s time per image over the least time the model\'s '
          'convolutions allow on this machine (benchmarks/limits.py)')
    print('%d rounds of %g s per contender, shared by %d processes of each in turn; median '
          '[min-max] over rounds; ratios paired by round'
          % (results['rounds'], results['seconds_per_window'],
             results.get('processes_per_contender', 1)))
    for batch_size, r in results['training'].items():
        print('\ntraining, batch %s' % batch_size)
        print('  %-20s %26s %9s %10s' % ('contender', 'images/s', 'GFLOP/s', 'x roofline'))
        for name, spread in r['images_per_sec'].items():
            print('  %-20s %26s %9.1f %10s' % (name, _fmt(spread), r['gflops_per_sec'][name],
                                               _fmt_times(r['times_roofline'][name])))
        for name, ratio in r['paired_ratios'].items():
            print('  %-42s %s' % (name, _fmt(ratio, 3)))
    e = results.get('evaluation')
    if e:
        print('\nevaluation, %d images, batch %d (PyTorch: its fastest, %s), median [min-max] of %d '
              'rounds' % (e['images'], e['batch_size'], ', '.join(
                  '%s %d' % (n, b) for n, b in e['torch_batch_size'].items()) or '-',
                  results['eval_rounds']))
        print('  %-24s %26s %10s' % ('contender', 'images/s', 'x roofline'))
        for name, spread in e['images_per_sec'].items():
            print('  %-24s %26s %10s' % (name, _fmt(spread), _fmt_times(e['times_roofline'][name])))
        for name, ratio in e['paired_ratios'].items():
            print('  %-46s %s' % (name, _fmt(ratio, 3)))
        print('  whole --mode=eval process (start-up included): %s s'
              % _fmt(e['eval_process_wall_seconds'], 2))
    for name, reason in results.get('failed', {}).items():
        print('FAILED %s: %s' % (name, reason))
    if results['load_average_at_start'] > 0.5 * m['cores'] and not FLAGS.quick:
        # PyTorch's OpenMP suffers most from other processes' load: its figures would be low.
        print('\nWARNING: the machine was busy when this run started (load average %.1f on %d '
              'cores); measure again on a quiet machine.' % (results['load_average_at_start'],
                                                            m['cores']))
    print('\n%.0f s in all' % results['wall_seconds'])


if __name__ == '__main__':
    app.run(main)
