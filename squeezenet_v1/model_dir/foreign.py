"""TF1 checkpoints written by code around the model: their names mapped onto the model's.

A map is `init_from_checkpoint`'s: pairs OLD:NEW, where `squeezenet/:` maps the checkpoint's
scope `squeezenet/` onto the model's root and `a/b:c/d` one name; the first pair that matches a
name wins, a name no pair matches is taken as it is, and a pair that matches nothing is an
error. An `ExponentialMovingAverage` shadow is `<weight>/ExponentialMovingAverage`, as the TF1
CIFAR-10 tutorial's `cifar10_eval.py` restores it. TensorFlow reads every checkpoint
(`tf.train.load_checkpoint`); the names and shapes the model needs come from the model itself.
"""

import collections
import os
import re

import numpy as np
import tensorflow as tf

from squeezenet_v1.errors import UserError, first_line
from squeezenet_v1.files import literal_paths
from squeezenet_v1.model_dir import checkpoints

tf1 = tf.compat.v1

AVERAGE_SUFFIX = '/ExponentialMovingAverage'
_ADAM_SLOTS = ('/Adam', '/Adam_1')
_ADAM_POWERS = ('beta1_power', 'beta2_power')
_CHECKPOINT_SUFFIX = re.compile(r'\.(index|meta|data-\d{5}-of-\d{5})$')


class ForeignCheckpointError(UserError):
    """A checkpoint cannot be read, mapped or converted; the message names what and the fix."""


def parse_map(specs, flag='--map'):
    """[(old, new)] from 'OLD:NEW' strings ('squeezenet/:' maps a scope onto the root)."""
    pairs = []
    for spec in specs or ():
        old, colon, new = spec.partition(':')
        if not colon or not old or old.endswith('/') != (new.endswith('/') or new == ''):
            raise ForeignCheckpointError(
                '%s=%s is not OLD:NEW: a scope maps onto a scope (squeezenet/:, a/:b/) and a '
                'name onto a name (a/kernel:conv1/kernel).' % (flag, spec))
        pairs.append((old, new))
    return pairs


def find_checkpoint(path):
    """The checkpoint prefix `path` names: a prefix, one of its files, or a folder (its latest)."""
    prefix = _CHECKPOINT_SUFFIX.sub('', path)
    if os.path.isdir(path):
        with literal_paths.literal_path(os.path.join(path, 'checkpoint')) as state:
            found = tf1.train.latest_checkpoint(os.path.dirname(state))
        prefix = (os.path.join(path, os.path.basename(found)) if found
                  else checkpoints.latest_checkpoint(path))
        if not prefix:
            raise ForeignCheckpointError('%s holds no checkpoint (no `checkpoint` state file '
                                         'naming one, no complete model.ckpt-N). Give the '
                                         'checkpoint\'s prefix, e.g. DIR/model.ckpt-1000.' % path)
    if not os.path.isfile(prefix + '.index'):
        raise ForeignCheckpointError('%s is not a checkpoint: there is no %s.index. Give a '
                                     'checkpoint prefix (DIR/model.ckpt-1000) or its folder.'
                                     % (path, prefix))
    return prefix


def read_checkpoint(prefix):
    """{name: (shape, dtype name)} of every variable the checkpoint holds, read by TensorFlow."""
    try:
        with literal_paths.literal_path(prefix) as path:
            reader = tf1.train.load_checkpoint(path)
            shapes, dtypes = reader.get_variable_to_shape_map(), reader.get_variable_to_dtype_map()
    except Exception as e:  # OpError, DataLossError, ValueError: a damaged or foreign file
        raise ForeignCheckpointError('%s cannot be read as a checkpoint (%s).'
                                     % (prefix, first_line(e)))
    return {name: (list(shapes[name]), dtypes[name].name) for name in shapes}


def read_values(prefix, names):
    """{name: numpy value} of the named variables."""
    try:
        with literal_paths.literal_path(prefix) as path:
            reader = tf1.train.load_checkpoint(path)
            return {name: reader.get_tensor(name) for name in names}
    except Exception as e:
        raise ForeignCheckpointError('%s cannot be read: %s (a .data file truncated, or an '
                                     '.index of another checkpoint?).'
                                     % (prefix, first_line(e)))


def mapped_names(stored, pairs, flag='--map'):
    """{checkpoint name: model name}; ForeignCheckpointError for a pair that matches nothing."""
    used, mapping = set(), {}
    for name in stored:
        mapping[name] = name
        for old, new in pairs:
            if old.endswith('/') and name.startswith(old):
                mapping[name] = new + name[len(old):]
            elif name == old:
                mapping[name] = new
            else:
                continue
            used.add((old, new))
            break
    unused = [old + ':' + new for old, new in pairs if (old, new) not in used]
    if unused:
        raise ForeignCheckpointError('%s=%s matches no variable of the checkpoint. Run '
                                     '`squeezenet-checkpoint inspect` to see its names.'
                                     % (flag, unused[0]))
    return mapping


def what_it_is(name):
    """What a variable the model does not need is, when that is recognisable; else None."""
    if name.endswith(AVERAGE_SUFFIX):
        return 'ExponentialMovingAverage shadow'
    if name.endswith(_ADAM_SLOTS):
        return 'Adam slot'
    if name.split('/')[-1] in _ADAM_POWERS:
        return "Adam's " + name.split('/')[-1]
    if name.split('/')[-1] == 'global_step':
        return 'global_step'
    if name.endswith(('/Momentum', '/RMSProp', '/RMSProp_1', '/Adagrad')):
        return 'another optimizer\'s slot'
    return None


def model_variables(output_size):
    """(weights, optimizer) of the training graph: {name: (shape, dtype name)} each; the
    optimizer's are Adam's slots and powers. global_step is neither."""
    from squeezenet_v1 import SqueezeNetModel
    with tf.Graph().as_default():
        model = SqueezeNetModel(32, 24, output_size)
        model.run_model_setup(tf1.placeholder(tf.float32, [None, 24, 24, 3]),
                              tf1.placeholder(tf.int32, [None]), is_training=True)
        described = {v.op.name: (v.shape.as_list(), v.dtype.base_dtype.name)
                     for v in tf1.global_variables()}
    weights = {name: spec for name, spec in described.items()
               if name != 'global_step' and what_it_is(name) is None}
    optimizer = {name: spec for name, spec in described.items()
                 if name not in weights and name != 'global_step'}
    return weights, optimizer


def output_size_of(stored, mapping):
    """The class count the mapped checkpoint's final_conv/bias says (10 when it has none)."""
    for name, target in mapping.items():
        if target == 'final_conv/bias' and len(stored[name][0]) == 1:
            return int(stored[name][0][0])
    return 10


Report = collections.namedtuple('Report', ['prefix', 'matched', 'missing', 'wrong', 'extra',
                                           'loads'])
Report.__doc__ = """matched: [(checkpoint name, model name)]; missing: model names no variable
maps to; wrong: [(checkpoint name, model name, stored (shape, dtype), wanted)]; extra:
[(checkpoint name, what it is or None)]; loads: whether the weights load as they are."""


def inspect(prefix, pairs, averages=False):
    """The checkpoint set against the model's weights (their averages with `averages`)."""
    stored = read_checkpoint(prefix)
    mapping = mapped_names(stored, pairs)
    weights, _ = model_variables(output_size_of(stored, mapping))
    by_target = {}
    for name, target in mapping.items():
        by_target.setdefault(target, name)
    wanted = {(name + AVERAGE_SUFFIX if averages else name): spec
              for name, spec in weights.items()}
    matched, wrong = [], []
    for target, spec in sorted(wanted.items()):
        if target not in by_target:
            continue
        source = by_target[target]
        if tuple(stored[source][0]) != tuple(spec[0]) or stored[source][1] != spec[1]:
            wrong.append((source, target, stored[source], spec))
        else:
            matched.append((source, target))
    missing = sorted(set(wanted) - set(by_target))
    used = {source for source, _ in matched} | {w[0] for w in wrong}
    extra = []
    for name in sorted(set(stored) - used):
        target = mapping[name]
        if averages and target in weights:
            extra.append((name, 'the weight itself; its average is taken'))
        else:
            extra.append((name, what_it_is(target)))
    return Report(prefix, matched, missing, wrong, extra, not missing and not wrong)


def format_report(report):
    """The lines `squeezenet-checkpoint inspect` prints: what is missing first."""
    lines = []
    if report.missing or report.wrong:
        lines.append('%s does not load into the model as it is:' % report.prefix)
    for name in report.missing:
        lines.append('  missing      %s' % name)
    for source, target, stored, wanted in report.wrong:
        lines.append('  wrong shape  %s %s %s (the model needs %s %s as %s)'
                     % (source, stored[0], stored[1], wanted[0], wanted[1], target))
    if report.loads:
        lines.append('%s loads into the model: %d weights matched.'
                     % (report.prefix, len(report.matched)))
    for source, target in report.matched:
        lines.append('  matched      %s%s' % (source, '' if source == target else ' -> ' + target))
    for name, what in report.extra:
        lines.append('  extra        %s%s' % (name, ' (%s)' % what if what else ''))
    return '\n'.join(lines)


def converted_values(prefix, pairs, averages):
    """({model name: value} to write, [lines said about what was left out])."""
    report = inspect(prefix, pairs, averages)
    if not report.loads:
        if averages and report.missing:
            raise ForeignCheckpointError(
                '%s has no moving average of %s; give no --moving_averages to take the weights '
                'themselves.' % (prefix, ', '.join(n[:-len(AVERAGE_SUFFIX)]
                                                   for n in report.missing[:5])))
        raise ForeignCheckpointError(
            '%s does not load into the model (%s). Run `squeezenet-checkpoint inspect` with '
            'the same --map to see every name.'
            % (prefix, ', '.join(['%s is missing' % n for n in report.missing[:3]]
                                 + ['%s has another shape' % w[0] for w in report.wrong[:3]])))
    stored = read_checkpoint(prefix)
    mapping = mapped_names(stored, pairs)
    sources = {target: source for source, target in report.matched}
    said = []
    values = read_values(prefix, list(sources.values()))
    converted = {(target[:-len(AVERAGE_SUFFIX)] if averages else target): values[source]
                 for target, source in sources.items()}
    step_names = [name for name, target in mapping.items() if target == 'global_step']
    if step_names:
        step = read_values(prefix, step_names[:1])[step_names[0]]
        if (np.ndim(step) != 0 or not np.issubdtype(np.asarray(step).dtype, np.integer)
                or step < 0):
            raise ForeignCheckpointError('%s holds %s = %s, not a step count (0 or more); it '
                                         'is damaged.' % (prefix, step_names[0],
                                                          np.array2string(np.asarray(step))[:40]))
        converted['global_step'] = np.int64(step)
    else:
        converted['global_step'] = np.int64(0)
        said.append('%s holds no global_step; the converted checkpoint is at step 0.' % prefix)
    weights, optimizer = model_variables(output_size_of(stored, mapping))
    by_target = {target: source for source, target in mapping.items()}
    fitting = [name for name in optimizer if name in by_target
               and tuple(stored[by_target[name]][0]) == tuple(optimizer[name][0])]
    if not averages and len(fitting) == len(optimizer):
        slot_values = read_values(prefix, [by_target[name] for name in optimizer])
        converted.update({name: slot_values[by_target[name]] for name in optimizer})
    else:
        said.append('Adam\'s slots were left out (%s): a run from the converted checkpoint '
                    'starts Adam fresh.' % ('they belong to the weights, not their averages'
                                            if averages and fitting else
                                            '%d of %d map' % (len(fitting), len(optimizer))))
    return converted, said


def write_checkpoint(values, folder):
    """Writes values as model.ckpt-<global_step> in folder, with its state file; returns it."""
    from squeezenet_v1.model_dir import checkpoint_writer
    step = int(values['global_step'])
    name = '%s-%d' % (checkpoints.CHECKPOINT_PREFIX, step)
    with tf.Graph().as_default():
        variables = {key: tf1.Variable(value, name='v%d' % i, trainable=False)
                     for i, (key, value) in enumerate(sorted(values.items()))}
        with tf1.Session() as sess:
            sess.run(tf1.global_variables_initializer())
            tf1.train.Saver(variables).save(sess, os.path.join(folder, name),
                                            write_meta_graph=False, write_state=False)
    checkpoint_writer.write_state(folder, [name])
    return os.path.join(folder, name)


def check_output_dir(out_dir, prefix):
    """OUT_DIR is absent or an empty folder, and neither holds nor is inside the source."""
    source = os.path.realpath(os.path.dirname(prefix))
    target = os.path.realpath(out_dir)
    if target == source or source.startswith(target.rstrip(os.sep) + os.sep):
        raise ForeignCheckpointError('%s holds the checkpoint being converted; give a new '
                                     'folder.' % out_dir)
    if os.path.lexists(out_dir) and (not os.path.isdir(out_dir) or os.path.islink(out_dir)
                                     or os.listdir(out_dir)):
        raise ForeignCheckpointError('%s exists and is not an empty folder; a conversion '
                                     'writes only into a new or empty one.' % out_dir)


WarmStart = collections.namedtuple('WarmStart', ['prefix', 'fingerprint', 'sources', 'fresh'])
WarmStart.__doc__ = """A new run's start from another checkpoint's weights: `sources` maps each
model weight taken to its name in the checkpoint; `fresh` lists the weights excluded."""


def warm_start(path, map_specs, exclude, output_size):
    """The WarmStart of --warm_start_from=path; ForeignCheckpointError, naming the variables and
    the fix, when a weight it takes is missing or of another shape."""
    prefix = find_checkpoint(path)
    stored = read_checkpoint(prefix)
    mapping = mapped_names(stored, parse_map(map_specs, '--warm_start_map'),
                           '--warm_start_map')
    weights, _ = model_variables(output_size)
    scopes = [scope.rstrip('/') for scope in exclude]
    for scope in scopes:
        if not any(name == scope or name.startswith(scope + '/') for name in weights):
            raise ForeignCheckpointError('--warm_start_exclude=%s is no scope of the model (its '
                                         'scopes: conv1, fire1 ... fire4, final_conv).' % scope)
    fresh = sorted(name for name in weights
                   if any(name == s or name.startswith(s + '/') for s in scopes))
    by_target = {target: source for source, target in sorted(mapping.items())}
    sources, problems = {}, []
    for name in sorted(set(weights) - set(fresh)):
        source = by_target.get(name)
        if source is None:
            problems.append('%s is not in it' % name)
        elif tuple(stored[source][0]) != tuple(weights[name][0]) or (
                stored[source][1] != weights[name][1]):
            problems.append('%s is %s %s there but %s %s in this model'
                            % (name, stored[source][0], stored[source][1], weights[name][0],
                               weights[name][1]))
        else:
            sources[name] = source
    if problems:
        raise ForeignCheckpointError(
            '--warm_start_from %s does not fit this model: %s. Exclude what changes with '
            '--warm_start_exclude (e.g. final_conv for another number of classes), or map the '
            'names with --warm_start_map.' % (prefix, '; '.join(problems[:4])))
    values = read_values(prefix, list(sources.values()))
    not_finite = sorted(name for name, source in sources.items()
                        if values[source].dtype.kind == 'f' and not np.all(np.isfinite(
                            values[source])))
    if not_finite:
        raise ForeignCheckpointError('--warm_start_from %s holds weights that are not finite '
                                     '(NaN or Inf) in %s; a run would not learn from them. Use '
                                     'an earlier checkpoint.' % (prefix, ', '.join(not_finite[:5])))
    return WarmStart(prefix, checkpoints.fingerprint(prefix), sources, fresh)


def apply_warm_start(sess, warm, variables):
    """Loads the warm start's weights into the initialized variables it maps."""
    values = read_values(warm.prefix, list(warm.sources.values()))
    by_name = {v.op.name: v for v in variables}
    checkpoints.load_values(sess, {by_name[name]: values[source]
                                   for name, source in warm.sources.items()})
