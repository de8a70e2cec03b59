"""What a golden record holds, computed on the running TensorFlow: graphs, numbers, export.

`capture(fixed_weights)` builds everything with the package's own functions, so that a change in
our code or in TensorFlow shows:

- the training graph (`training/graph.py`) and the evaluation graph (the notebook's
  input_fn and forward pass; evaluate.py's batched input yields the same images bit for bit,
  which tests/test_data.py checks), listed op by op (name, type, output dtypes and shapes,
  inputs), with the input pipeline's functions and every variable's shape and initializer
  expression;
- the loss at every step of a seeded short run on the synthetic set (op determinism on), and
  the trained weights after it, read back from a checkpoint the running Saver wrote;
- the eval logits of a fixed checkpoint (`fixed_weights`, or the weights just trained when
  recording) on the first synthetic test images, restored through a checkpoint the running
  Saver wrote and the package's own restore;
- the exported SavedModel (`export.export`): its serving signature and its outputs on the same
  images, as uint8.

Everything is returned as a Capture: `summary` (JSON-able), `listings` (graph name -> lines)
and `weights` (variable name -> float32 array).
"""

import collections
import hashlib
import os
import platform
import re
import tempfile
import warnings

import numpy as np
import tensorflow as tf

import squeezenet_v1
from squeezenet_v1 import machine
from squeezenet_v1.model_dir import checkpoints
from squeezenet_v1.data import datasets
from squeezenet_v1.deploy import export
from squeezenet_v1.files import temporaries
from squeezenet_v1.errors import first_line
from squeezenet_v1.data import input_pipeline
from squeezenet_v1.training import session_options
from squeezenet_v1.data import synthetic
from squeezenet_v1.training import graph as training_graph
from squeezenet_v1.training.loop import start_input
from squeezenet_v1.data.cifar10 import IMAGE_SIZE, NUM_CHANNELS
from squeezenet_v1.model import new_model

tf1 = tf.compat.v1

# The short run: long enough for Adam to move every weight, short enough to drift little.
SETTINGS = {'seed': 7, 'steps': 20, 'batch_size': 32, 'learning_rate': 0.001,
            'eval_images': 16}
GRAPHS = ('train', 'eval')
_SERVING_TAG = 'serve'
_SIGNATURE_KEY = 'serving_default'
_CPU_FLAGS = ('avx2', 'fma', 'avx512f', 'avx512_vnni', 'avx512_bf16', 'avx512_fp16', 'amx_bf16',
              'amx_tile')

Capture = collections.namedtuple('Capture', ['summary', 'listings', 'weights'])


class CaptureError(Exception):
    """A stage could not run on this TensorFlow; the message names the stage."""


def environment():
    """The versions and CPU a capture ran with: told in reports, never compared."""
    flags = machine.cpu_flags()
    return {'python': platform.python_version(), 'tensorflow': tf.__version__,
            'numpy': np.__version__, 'squeezenet_v1': squeezenet_v1.__version__,
            'cpu': machine.cpu_model(), 'cpu_count': os.cpu_count(),
            'cpu_flags': [f for f in _CPU_FLAGS if f in flags],
            'onednn': os.environ.get('TF_ENABLE_ONEDNN_OPTS', 'default')}


def capture(fixed_weights=None, settings=None):
    """Computes a Capture on this TensorFlow; `fixed_weights` None means the trained weights."""
    settings = dict(SETTINGS, **(settings or {}))
    scratch = temporaries.make_temp_dir(tempfile.gettempdir(), 'squeezenet_v1-golden')
    try:
        with training_graph.op_determinism(settings['seed']):
            training = _stage('the training run', _train, settings, scratch)
            weights = training['weights'] if fixed_weights is None else fixed_weights
            evaluation = _stage('the evaluation graph', _evaluate, settings, weights, scratch)
        # Outside op determinism: the serving graph seeds nothing, and restoring draws nothing.
        try:
            serving = _stage('the export', _export, settings, scratch)
        except CaptureError as e:  # the graphs and the loss can still be compared
            serving = {'signature': {}, 'probabilities': None, 'classes': None, 'failed': str(e)}
    finally:
        temporaries.remove_path(scratch)
    summary = {
        'environment': environment(),
        'settings': settings,
        'fingerprints': {'train': _fingerprint(training['listing']),
                         'eval': _fingerprint(evaluation['listing'])},
        'variables': {'train': training['variables'], 'eval': evaluation['variables']},
        'checkpoint_variables': training['checkpoint_variables'],
        'saver_round_trip': training['round_trip'] + evaluation['round_trip'],
        'signature': serving['signature'],
        'numbers': {'loss': training['losses'], 'eval_logits': evaluation['logits'],
                    'serving_probabilities': serving['probabilities'],
                    'serving_classes': serving['classes']},
        # Stages that failed after their graph was built, each a line naming it and why.
        'failures': [stage['failed'] for stage in (evaluation, serving) if 'failed' in stage],
    }
    listings = {'train': training['listing'], 'eval': evaluation['listing']}
    return Capture(summary, listings, training['weights'])


def _stage(what, function, *args):
    try:
        return function(*args)
    except Exception as e:  # any failure here is this TensorFlow's answer, named by stage
        raise CaptureError('%s failed on TensorFlow %s: %s: %s'
                           % (what, tf.__version__, type(e).__name__, first_line(e))) from e


def _fingerprint(lines):
    return hashlib.sha256('\n'.join(lines).encode('utf-8')).hexdigest()


# --- the training run -------------------------------------------------------------------------

def _train(settings, scratch):
    source = datasets.prepare_split('synthetic', 'train', 'data', datasets.records_cache_dir())
    with warnings.catch_warnings():
        # The graph seed reaching the map function is what makes the run repeatable.
        warnings.filterwarnings('ignore', message=r'Seed \d+ from outer graph')
        training = training_graph.build_training_graph(
            source, settings['batch_size'], settings['learning_rate'], settings['seed'], 'fp32')
    trainable = _trainable(training.graph)
    with tf1.Session(graph=training.graph, config=session_options.session_config()) as sess:
        sess.run(training.init_op)
        start_input(sess, training)
        run_step = sess.make_callable(training.fetches)
        losses = [_float(run_step()[1]) for _ in range(settings['steps'])]
        weights = dict(zip([v.op.name for v in trainable], sess.run(trainable)))
        prefix = training.saver.save(sess, os.path.join(scratch, 'train', 'model.ckpt'),
                                     global_step=settings['steps'], write_meta_graph=False)
    reader = tf1.train.load_checkpoint(prefix)
    dtypes = reader.get_variable_to_dtype_map()
    checkpoint_variables = {name: '%s%s' % (dtypes[name].name, _dims(shape))
                            for name, shape in reader.get_variable_to_shape_map().items()}
    return {'listing': graph_listing(training.graph),
            'variables': variable_listing(training.graph),
            'losses': losses, 'weights': weights,
            'checkpoint_variables': dict(sorted(checkpoint_variables.items())),
            'round_trip': _round_trip('train', reader, weights)}


def _trainable(graph):
    with graph.as_default():
        return tf1.trainable_variables()


def _round_trip(which, reader, weights):
    """['<which> <variable>: ...'] for each weight the checkpoint does not give back bit for bit."""
    problems = []
    for name, value in sorted(weights.items()):
        if not reader.has_tensor(name):
            problems.append('%s %s: not in the checkpoint the Saver wrote' % (which, name))
            continue
        read = reader.get_tensor(name)
        if read.shape != value.shape or read.tobytes() != value.tobytes():
            problems.append('%s %s: reads back %s, not what was written'
                            % (which, name, _describe_change(value, read)))
    return problems


# --- the evaluation graph and the fixed checkpoint --------------------------------------------

def _evaluate(settings, weights, scratch):
    """Eval logits of `weights` on the first test images, through the notebook's eval graph."""
    source = datasets.prepare_split('synthetic', 'test', 'data', datasets.records_cache_dir())
    model_dir = os.path.join(scratch, 'fixed')
    prefix = write_checkpoint(weights, checkpoints.checkpoint_prefix(model_dir, settings['steps']),
                              settings['steps'])
    graph = tf.Graph()
    with graph.as_default():
        tf1.set_random_seed(0)  # under op determinism an iterator needs a seed
        model = new_model(len(source.label_names))
        images, labels = input_pipeline.input_fn(
            source.record_files, model, is_training=False, batch_size=settings['eval_images'])
        model.run_model_setup(images, labels, is_training=False)
        tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=model.logits)
        variables = tf1.global_variables()
        saver = tf1.train.Saver(variables)
    graph.finalize()
    result = {'listing': graph_listing(graph), 'variables': variable_listing(graph),
              'round_trip': _round_trip('fixed', tf1.train.load_checkpoint(prefix), weights)}
    try:
        with tf1.Session(graph=graph, config=session_options.session_config()) as sess:
            checkpoints.restore(sess, saver, prefix, variables)
            result['logits'] = _floats(sess.run(model.logits))
    except Exception as e:  # the graph is listed; the logits are this TensorFlow's failure
        result['logits'] = None
        result['failed'] = 'restoring the fixed checkpoint into the evaluation graph failed: ' \
            '%s: %s' % (type(e).__name__, first_line(e))
    return result


def write_checkpoint(weights, prefix, global_step):
    """Writes `weights` (name -> array) and global_step as a checkpoint with the running Saver."""
    with tf.Graph().as_default() as graph:
        for name, value in sorted(weights.items()):
            tf1.get_variable(name, initializer=tf.constant(value))
        tf1.get_variable('global_step', initializer=tf.constant(global_step, tf.int64),
                         trainable=False)
        saver = tf1.train.Saver()
        with tf1.Session(graph=graph) as sess:
            sess.run(tf1.global_variables_initializer())
            os.makedirs(os.path.dirname(prefix), exist_ok=True)
            return saver.save(sess, prefix, write_meta_graph=False)


def fixed_images(count):
    """The first `count` synthetic test images, uint8 [count, 32, 32, 3], and their labels."""
    images, labels = synthetic.make_split('test')
    hwc = images[:count].reshape(count, NUM_CHANNELS, IMAGE_SIZE, IMAGE_SIZE).transpose(0, 2, 3, 1)
    return np.ascontiguousarray(hwc), labels[:count]


# --- the export -------------------------------------------------------------------------------

def _export(settings, scratch):
    """Exports the fixed checkpoint; its serving signature and outputs on the fixed images."""
    export_dir = os.path.join(scratch, 'export')
    export.export(os.path.join(scratch, 'fixed'), export_dir, list(synthetic.LABEL_NAMES),
                  saved_model_only=True)
    images, _ = fixed_images(settings['eval_images'])
    with tf.Graph().as_default() as graph, tf1.Session(graph=graph) as sess:
        meta_graph = tf1.saved_model.loader.load(
            sess, [_SERVING_TAG], os.path.join(export_dir, export.SAVED_MODEL_DIR))
        signature = meta_graph.signature_def[_SIGNATURE_KEY]
        inputs = {key: graph.get_tensor_by_name(t.name) for key, t in signature.inputs.items()}
        outputs = {key: graph.get_tensor_by_name(t.name) for key, t in signature.outputs.items()}
        (input_key,) = inputs  # the export has a single input
        results = sess.run(outputs, {inputs[input_key]: images})
    described = {'method_name': signature.method_name}
    for side, tensors in (('inputs', signature.inputs), ('outputs', signature.outputs)):
        for key, info in sorted(tensors.items()):
            shape = [d.size for d in info.tensor_shape.dim]
            described['%s/%s' % (side, key)] = '%s%s %s' % (
                tf.dtypes.as_dtype(info.dtype).name,
                _dims(None if info.tensor_shape.unknown_rank else shape), info.name)
    return {'signature': described,
            'probabilities': _floats(results.get('probabilities', np.zeros(0))),
            'classes': [int(c) for c in results.get('classes', [])]}


# --- listings ---------------------------------------------------------------------------------

def graph_listing(graph):
    """One tab-separated line per op (`op`, name, type, outputs, inputs) and per function node.

    Control inputs are sorted (their order is a set's); function names lose the counters and
    hashes TensorFlow appends, so that two builds of one graph list the same.
    """
    lines = []
    for op in graph.get_operations():
        inputs = [_tensor_ref(t) for t in op.inputs]
        inputs += sorted('^' + c.name for c in op.control_inputs)
        lines.append('\t'.join(['op', op.name, op.type, ' '.join(_tensor_type(t) for t in
                                                                 op.outputs), ' '.join(inputs)]))
    library = graph.as_graph_def().library
    names = _function_names([f.signature.name for f in library.function])
    for function in sorted(library.function, key=lambda f: names[f.signature.name]):
        name = names[function.signature.name]
        signature = function.signature
        lines.append('\t'.join([
            'fn', name, 'signature',
            ' '.join(tf.dtypes.as_dtype(a.type).name for a in signature.output_arg
                     if a.type),
            ' '.join(tf.dtypes.as_dtype(a.type).name for a in signature.input_arg if a.type)]))
        for node in sorted(function.node_def, key=lambda n: n.name):
            inputs = [i for i in node.input if not i.startswith('^')]
            inputs += sorted(i for i in node.input if i.startswith('^'))
            lines.append('\t'.join(['fn', '%s/%s' % (name, node.name), node.op, '',
                                    ' '.join(inputs)]))
    return lines


def _function_names(raw_names):
    """{TensorFlow's function name: a stable one}: `_123` counters and `_make_dataset_<hash>`
    suffixes dropped, `#2` added where two would be named alike."""
    stable, taken = {}, collections.Counter()
    for raw in sorted(raw_names, key=lambda n: (_strip_counter(n), n)):
        base = _strip_counter(raw)
        taken[base] += 1
        stable[raw] = base if taken[base] == 1 else '%s#%d' % (base, taken[base])
    return stable


def _strip_counter(name):
    name = re.sub(r'^(_make_dataset)_[A-Za-z0-9_-]+$', r'\1', name)
    return re.sub(r'_\d+$', '', name)


def variable_listing(graph):
    """{variable name: '<dtype>[shape] = <initializer expression>'} for a graph's variables."""
    with graph.as_default():
        variables = tf1.global_variables()
    listing = {}
    for variable in variables:
        initial = variable.initializer.inputs[1]
        listing[variable.op.name] = '%s%s = %s' % (
            variable.dtype.base_dtype.name, _dims(variable.shape.as_list()), _expression(initial))
    return dict(sorted(listing.items()))


def _expression(tensor):
    """The initializer as an expression of op types, constants and random seeds."""
    op = tensor.op
    if op.type == 'Const':
        value = tf.make_ndarray(op.get_attr('value'))
        if value.size and np.all(value == value.flat[0]):
            text = '%.9g' % value.flat[0] if value.dtype.kind == 'f' else str(value.flat[0])
            return text if value.ndim == 0 else '%s*%s' % (text, _dims(list(value.shape)))
        return 'const%s' % (value.tolist() if value.size <= 8 else _dims(list(value.shape)))
    attrs = ['%s=%s' % (a, op.get_attr(a)) for a in ('seed', 'seed2')
             if a in op.node_def.attr]
    arguments = [_expression(t) for t in op.inputs] + attrs
    return '%s(%s)' % (op.type, ', '.join(arguments))


def _tensor_ref(tensor):
    return tensor.op.name if tensor.value_index == 0 else tensor.name


def _tensor_type(tensor):
    shape = tensor.shape
    return tensor.dtype.name + _dims(shape.as_list() if shape.rank is not None else None)


def _dims(shape):
    if shape is None:
        return '[*]'
    return '[%s]' % ','.join('?' if d is None or d < 0 else str(d) for d in shape)


def _float(value):
    """A float32 as the Python float that converts back to the very same float32."""
    return float(np.float32(value))


def _floats(array):
    return np.asarray(array, dtype=np.float32).astype(np.float64).tolist()


def _describe_change(old, new):
    if old.shape != new.shape:
        return 'shape %s instead of %s' % (list(new.shape), list(old.shape))
    return 'values off by up to %.3g' % float(np.max(np.abs(new.astype(np.float64) - old)))
