"""Is the TF1 graph code slower than rewriting it? Training and evaluation throughput, measured.

    python benchmarks/benchmark_training.py [--rounds=5] [--output=benchmarks/results.json]

Contenders, at each batch size, alternated in rounds (A B C ..., order rotated per round) in one
process on the same synthetic records and the same tf.data pipeline (the notebook's per-record
preprocessing, shuffle, batch, prefetch):
  session_fp32  run_train.py's Session loop: the same graph, fetches and session config
  keras_fit     the same model as Keras 3, trained with model.fit (Adam, same loss)
  session_bf16  the Session loop with oneDNN's bfloat16 rewrite (only on AVX512-BF16/AMX CPUs)
  session_xla   the Session loop with XLA auto-clustering
  torch_eager   the same model in PyTorch, channels_last, when torch is installed
Each figure is the median over rounds of the steady-state images/s (warm-up steps excluded);
each ratio is given both as a ratio of medians and as the median of same-round ratios (paired),
which cancels most of a shared machine's drift.
Evaluation throughput and the input pipeline alone are measured the same way. Forward FLOPs
per image come from the TF profiler; achieved GFLOP/s in training = 3 x forward FLOPs x images/s.
"""

import datetime
import json
import os
import platform
import statistics
import sys
import tempfile
import time

from absl import app
from absl import flags

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from squeezenet_v1 import datasets, input_pipeline, session_options, train  # noqa: E402
from squeezenet_v1 import model as model_lib  # noqa: E402

tf1 = tf.compat.v1
FLAGS = flags.FLAGS

flags.DEFINE_list('batch_sizes', ['32', '128'], 'Batch sizes to measure.')
flags.DEFINE_integer('rounds', 5, 'Alternating rounds per contender; the median is reported.')
flags.DEFINE_integer('steps', 100, 'Timed training steps per round.')
flags.DEFINE_integer('warmup_steps', 20, 'Untimed steps before each round.')
flags.DEFINE_list('contenders', ['session_fp32', 'keras_fit', 'session_bf16', 'session_xla',
                                 'torch_eager'], 'Which contenders to run.')
flags.DEFINE_string('output', os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                           'results.json'), 'Where to write the JSON results.')


class SessionTrainer(object):
    """run_train.py's loop body: the training graph, its session config, one callable per step."""

    def __init__(self, source, batch_size, precision='fp32', xla=False):
        self.training = train.build_training_graph(source, batch_size, precision=precision)
        self.sess = tf1.Session(graph=self.training.graph,
                                config=session_options.session_config(precision, xla))
        self.sess.run(self.training.init_op)
        self.step = self.sess.make_callable(self.training.fetches)

    def images_per_second(self, batch_size, warmup, steps):
        return _timed(self.step, batch_size, warmup, steps)


class KerasTrainer(object):
    """Keras 3 model.fit on the same tf.data pipeline, timed by a per-batch callback."""

    def __init__(self, source, batch_size):
        import keras
        from keras_squeezenet import build_keras_squeezenet
        self.model = build_keras_squeezenet(len(source.label_names))
        self.dataset = input_pipeline.make_dataset(source.record_files,
                                                   model_lib.new_model(len(source.label_names)),
                                                   True, batch_size)
        times = self.times = []

        class _Clock(keras.callbacks.Callback):
            def on_train_batch_end(self, batch, logs=None):
                times.append(time.perf_counter())

        self.clock = _Clock()

    def images_per_second(self, batch_size, warmup, steps):
        del self.times[:]
        self.model.fit(self.dataset, steps_per_epoch=warmup + steps, epochs=1, verbose=0,
                       callbacks=[self.clock])
        return steps * batch_size / (self.times[-1] - self.times[warmup - 1])


class TorchTrainer(object):
    """The same model in PyTorch eager, channels_last, fed from the same tf.data pipeline."""

    def __init__(self, source, batch_size):
        import torch
        from torch_squeezenet import TorchSqueezeNet
        torch.manual_seed(0)
        self.torch = torch
        self.model = TorchSqueezeNet(len(source.label_names)).to(
            memory_format=torch.channels_last)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=0.001)
        self.loss = torch.nn.CrossEntropyLoss()
        dataset = input_pipeline.make_dataset(source.record_files,
                                              model_lib.new_model(len(source.label_names)),
                                              True, batch_size)
        self.batches = iter(dataset.as_numpy_iterator())

    def _step(self):
        images, labels = next(self.batches)
        # NHWC numpy -> NCHW tensor in channels_last memory: no copy of the pixels.
        x = self.torch.from_numpy(np.require(images, requirements="W")).permute(0, 3, 1, 2)
        y = self.torch.from_numpy(labels.astype(np.int64))
        self.optimizer.zero_grad(set_to_none=True)
        loss = self.loss(self.model(x), y)
        loss.backward()
        self.optimizer.step()
        return loss.item()

    def images_per_second(self, batch_size, warmup, steps):
        self.model.train()
        return _timed(self._step, batch_size, warmup, steps)


def session_eval_rate(source, batch_size, steps):
    """Evaluation graph (eval preprocessing, no dropout) over the test set, repeated."""
    with tf.Graph().as_default() as graph:
        model = model_lib.new_model(len(source.label_names))
        dataset = input_pipeline.make_dataset(source.record_files, model, False, batch_size)
        images, labels = tf1.data.make_one_shot_iterator(dataset.repeat()).get_next()
        model.run_model_setup(images, labels, is_training=False)
        init = tf1.global_variables_initializer()
    with tf1.Session(graph=graph, config=session_options.session_config()) as sess:
        sess.run(init)
        step = sess.make_callable([model.loss, model.predictions])
        return _timed(step, batch_size, FLAGS.warmup_steps, steps)


def keras_eval_rate(keras_trainer, source, batch_size, steps):
    dataset = input_pipeline.make_dataset(source.record_files,
                                          model_lib.new_model(len(source.label_names)),
                                          False, batch_size).repeat()
    keras_trainer.model.evaluate(dataset, steps=FLAGS.warmup_steps, verbose=0)
    start = time.perf_counter()
    keras_trainer.model.evaluate(dataset, steps=steps, verbose=0)
    return steps * batch_size / (time.perf_counter() - start)


def pipeline_rate(source, batch_size, steps):
    """The training input pipeline alone: images/s it can deliver."""
    with tf.Graph().as_default() as graph:
        images, labels = input_pipeline.input_fn(
            source.record_files, model_lib.new_model(len(source.label_names)), True, batch_size)
    with tf1.Session(graph=graph) as sess:
        return _timed(sess.make_callable([images.op, labels.op]), batch_size,
                      FLAGS.warmup_steps, steps)


def _timed(step, batch_size, warmup, steps):
    """Images/s of `steps` calls of step() after `warmup` untimed ones."""
    for _ in range(warmup):
        step()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return steps * batch_size / (time.perf_counter() - start)


def forward_flops_per_image():
    """Float operations of one image's forward pass, as the TF profiler counts them."""
    with tf.Graph().as_default() as graph:
        model = model_lib.new_model(10)
        model.model_layers(tf1.placeholder(tf.float32, [1, 24, 24, 3]), is_training=False)
        options = tf1.profiler.ProfileOptionBuilder.float_operation()
        options['output'] = 'none'
        return tf1.profiler.profile(graph, options=options).total_float_ops


def machine():
    cpu = platform.processor() or 'unknown'
    try:
        with open('/proc/cpuinfo') as f:
            cpu = next(line.split(':', 1)[1].strip() for line in f if line.startswith('model name'))
    except (OSError, StopIteration):
        pass
    flags_present = sorted(session_options.cpu_flags() & {'avx512f', 'avx512_bf16', 'amx_bf16',
                                                          'amx_tile', 'avx2'})
    import keras
    versions = {'tensorflow': tf.__version__, 'keras': keras.__version__,
                'python': platform.python_version()}
    try:
        import torch
        versions['torch'] = torch.__version__
    except ImportError:
        pass
    return dict(versions, cpu=cpu, cores=os.cpu_count(), cpu_flags=flags_present)


def _available(contenders):
    """The contenders that can run here, and a plain reason for each that cannot."""
    runnable, skipped = [], {}
    for name in contenders:
        if name == 'session_bf16':
            try:
                session_options.check_precision_supported('bf16')
            except session_options.UnsupportedPrecisionError as e:
                skipped[name] = str(e)
                continue
        if name == 'torch_eager':
            try:
                import torch  # noqa: F401
            except ImportError:
                skipped[name] = 'PyTorch is not installed (pip install torch); not measured.'
                continue
        runnable.append(name)
    return runnable, skipped


def _make(name, source, batch_size):
    if name == 'session_fp32':
        return SessionTrainer(source, batch_size)
    if name == 'session_bf16':
        return SessionTrainer(source, batch_size, precision='bf16')
    if name == 'session_xla':
        return SessionTrainer(source, batch_size, xla=True)
    if name == 'keras_fit':
        return KerasTrainer(source, batch_size)
    if name == 'torch_eager':
        return TorchTrainer(source, batch_size)
    raise app.UsageError('unknown contender %r' % name)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError('Unexpected arguments: %s' % ' '.join(argv[1:]))
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    started = time.time()
    contenders, skipped = _available(FLAGS.contenders)
    for name, reason in skipped.items():
        print('%s skipped: %s' % (name, reason))
    flops = forward_flops_per_image()
    results = {'date': datetime.date.today().isoformat(), 'machine': machine(),
               'command': 'python benchmarks/benchmark_training.py ' + ' '.join(argv[1:]),
               'rounds': FLAGS.rounds, 'steps': FLAGS.steps, 'warmup_steps': FLAGS.warmup_steps,
               'forward_flops_per_image': flops, 'skipped': skipped, 'batch_sizes': {}}
    with tempfile.TemporaryDirectory() as scratch:
        train_source = datasets.prepare_split('synthetic', 'train', 'data', scratch)
        test_source = datasets.prepare_split('synthetic', 'test', 'data', scratch)
        for batch_size in [int(b) for b in FLAGS.batch_sizes]:
            results['batch_sizes'][str(batch_size)] = _measure_batch_size(
                batch_size, contenders, train_source, test_source, flops)
    results['wall_seconds'] = round(time.time() - started, 1)
    _print_report(results)
    os.makedirs(os.path.dirname(os.path.abspath(FLAGS.output)), exist_ok=True)
    tmp = FLAGS.output + '.tmp'
    with open(tmp, 'w') as f:
        json.dump(results, f, indent=2)
        f.write('\n')
    os.replace(tmp, FLAGS.output)
    print('wrote %s' % FLAGS.output)


def _measure_batch_size(batch_size, contenders, train_source, test_source, flops):
    trainers = {name: _make(name, train_source, batch_size) for name in contenders}
    rates = {name: [] for name in contenders}
    for round_index in range(FLAGS.rounds):
        order = contenders[round_index % len(contenders):] + \
            contenders[:round_index % len(contenders)]
        for name in order:
            rates[name].append(trainers[name].images_per_second(
                batch_size, FLAGS.warmup_steps, FLAGS.steps))
        print('batch %d round %d: %s' % (batch_size, round_index + 1, ', '.join(
            '%s %.0f' % (n, rates[n][-1]) for n in contenders)), flush=True)
    train_rates = {n: statistics.median(r) for n, r in rates.items()}
    eval_rates = {}
    if 'session_fp32' in contenders and 'keras_fit' in contenders:
        session_eval, keras_eval = [], []
        for _ in range(FLAGS.rounds):
            session_eval.append(session_eval_rate(test_source, batch_size, FLAGS.steps))
            keras_eval.append(keras_eval_rate(trainers['keras_fit'], test_source, batch_size,
                                              FLAGS.steps))
        eval_rates = {'session_fp32': statistics.median(session_eval),
                      'keras_evaluate': statistics.median(keras_eval)}
    for trainer in trainers.values():
        if isinstance(trainer, SessionTrainer):
            trainer.sess.close()
    pipeline = statistics.median(pipeline_rate(train_source, batch_size, 4 * FLAGS.steps)
                                 for _ in range(3))
    base = train_rates.get('session_fp32')

    def paired(a, b):
        # Same-round ratios cancel the drift of a shared machine better than ratios of medians.
        if a not in rates or b not in rates:
            return None
        return round(statistics.median(x / y for x, y in zip(rates[a], rates[b])), 3)

    return {
        'train_images_per_sec': {n: round(v, 1) for n, v in train_rates.items()},
        'train_images_per_sec_all_rounds': {n: [round(v, 1) for v in r]
                                            for n, r in rates.items()},
        'train_gflops_per_sec': {n: round(3 * flops * v / 1e9, 1)
                                 for n, v in train_rates.items()},
        'paired_ratios': {
            'session_fp32_vs_keras_fit': paired('session_fp32', 'keras_fit'),
            'session_bf16_vs_session_fp32': paired('session_bf16', 'session_fp32'),
            'session_xla_vs_session_fp32': paired('session_xla', 'session_fp32'),
            'session_fp32_vs_torch_eager': paired('session_fp32', 'torch_eager'),
        },
        'ratios': {
            'session_fp32_vs_keras_fit': _ratio(base, train_rates.get('keras_fit')),
            'session_bf16_vs_session_fp32': _ratio(train_rates.get('session_bf16'), base),
            'session_xla_vs_session_fp32': _ratio(train_rates.get('session_xla'), base),
            'session_fp32_vs_torch_eager': _ratio(base, train_rates.get('torch_eager')),
            'eval_session_vs_keras': _ratio(eval_rates.get('session_fp32'),
                                            eval_rates.get('keras_evaluate')),
            'pipeline_vs_session_fp32_training': _ratio(pipeline, base),
        },
        'eval_images_per_sec': {n: round(v, 1) for n, v in eval_rates.items()},
        'input_pipeline_images_per_sec': round(pipeline, 1),
    }


def _ratio(a, b):
    return round(a / b, 3) if a and b else None


def _print_report(results):
    print()
    print('machine: %(cpu)s, %(cores)d cores, TensorFlow %(tensorflow)s' % results['machine'])
    print('forward FLOPs per image: {:,}'.format(results['forward_flops_per_image']))
    for batch_size, r in results['batch_sizes'].items():
        print('\nbatch size %s (median of %d rounds of %d steps)' % (
            batch_size, results['rounds'], results['steps']))
        print('  %-16s %12s %10s' % ('training', 'images/s', 'GFLOP/s'))
        for name, rate in r['train_images_per_sec'].items():
            print('  %-16s %12.1f %10.1f' % (name, rate, r['train_gflops_per_sec'][name]))
        for name, rate in r['eval_images_per_sec'].items():
            print('  eval %-11s %12.1f' % (name, rate))
        print('  %-16s %12.1f' % ('input pipeline', r['input_pipeline_images_per_sec']))
        print('  %-42s %10s %10s' % ('ratio', 'of medians', 'paired'))
        for name, ratio in r['ratios'].items():
            if ratio is not None:
                pair = r['paired_ratios'].get(name)
                print(('  %-42s %9.3fx %10s' % (name, ratio, '%.3fx' % pair if pair else '')).rstrip())


if __name__ == '__main__':
    app.run(main)
