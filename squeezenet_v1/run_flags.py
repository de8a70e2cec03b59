"""run_train.py's flags, each declared once, with its role.

    define_flags(flag_values)   # what run_train.py calls on absl's FLAGS

A flag's role says who reads it, and every list of names the code needs is derived here:
- EXPERIMENT: changes what a run computes. Recorded in flags.json and with each evaluation,
  compared by `summarize`, agreed on by every task of a cluster (`AGREED_FLAGS`).
- RUN: how the run goes (paths, periods, logging). Recorded in flags.json.
- MODE: read by the modes it names only; recorded in runs.jsonl with those modes' runs.
`loop=True` marks the flags the training loop runs by (`LOOP_SETTINGS`, the fields of
training.loop.LoopSettings). Bounds sit in the definitions; the validators below are only for
relations between flags. It imports absl and one constant of data/download.py: `summarize` and the
cluster read its names without TensorFlow or numpy.
"""

import collections
import math

from absl import flags

from squeezenet_v1.data.download import DEFAULT_DEADLINE_SECS
from squeezenet_v1.files import literal_paths

EXPERIMENT, RUN, MODE = 'experiment', 'run', 'mode'

MODES = ('train', 'eval', 'train_and_eval', 'continuous_eval', 'predict', 'export', 'download')
DATASETS = ('cifar10', 'synthetic', 'cifar100', 'cifar100_coarse', 'folder')
PRECISIONS = ('fp32', 'bf16', 'fp16')
MAX_BATCH = 65536

_Flag = collections.namedtuple('_Flag',
                               'role define name default help options loop agreed modes path')


def _flag(role, define, name, default, help_text, loop=False, agreed=False, modes=(),
          path=False, **options):
    return _Flag(role, define, name, default, help_text, options, loop,
                 agreed or role == EXPERIMENT, modes, path)


_INTEGER, _FLOAT, _STRING = flags.DEFINE_integer, flags.DEFINE_float, flags.DEFINE_string
_BOOL, _ENUM, _LIST = flags.DEFINE_bool, flags.DEFINE_enum, flags.DEFINE_list

FLAGS_DECLARED = (
    _flag(RUN, _ENUM, 'mode', 'train_and_eval',
          'Train; evaluate a checkpoint; train and evaluate every checkpoint written; evaluate '
          'each checkpoint as a trainer writes it; classify --images; export; or download the '
          'data set into --data_dir and check it (no model_dir is made).',
          enum_values=list(MODES)),
    _flag(RUN, _STRING, 'data_dir', 'data/',
          'Folder holding the data set: CIFAR-10 or CIFAR-100, extracted or as the archive.',
          path=True),
    _flag(EXPERIMENT, _ENUM, 'dataset', 'cifar10',
          'cifar10; cifar100 (100 fine classes) or cifar100_coarse (its 20 superclasses), from '
          'either official release; folder: --data_dir/train/<class>/ and test/<class>/ '
          'image folders; or synthetic: a small learnable set made on the spot, no download. '
          'eval and predict default to the set the model_dir was trained on.',
          enum_values=list(DATASETS)),
    _flag(RUN, _BOOL, 'download', False,
          'Download the data set (CIFAR-10 or CIFAR-100) into --data_dir when it is absent.'),
    _flag(RUN, _STRING, 'download_url', None,
          'Mirror of the data set\'s binary archive (cifar-10-binary.tar.gz, '
          'cifar-100-binary.tar.gz) to download from (default: the CIFAR home page); its md5 '
          'must be the official one.'),
    _flag(RUN, _INTEGER, 'download_deadline_secs', DEFAULT_DEADLINE_SECS,
          'Give up a download that has not finished after this many seconds.', lower_bound=1),
    _flag(RUN, _STRING, 'model_dir', '/tmp/squeezenet_v1_model',
          'Folder for checkpoints, summaries, flags.json and eval_results.json.', path=True),
    _flag(EXPERIMENT, _INTEGER, 'batch_size', 32, 'Images per training step.', loop=True,
          lower_bound=1, upper_bound=MAX_BATCH),
    # The fastest batch measured here (250 to 1,000 are within a few per cent); in fp32 the
    # logits are bit for bit the same at every batch size, so the results do not depend on it.
    _flag(RUN, _INTEGER, 'eval_batch_size', 500,
          'Images per evaluation step (the results are the same for every value).',
          lower_bound=1, upper_bound=MAX_BATCH),
    _flag(RUN, _INTEGER, 'max_steps', 10000, 'Train until global_step reaches this.', loop=True,
          agreed=True, lower_bound=1),
    # Adam's own default, which the notebook used by calling AdamOptimizer().
    _flag(EXPERIMENT, _FLOAT, 'learning_rate', 0.001, 'Adam learning rate.', loop=True),
    _flag(RUN, _INTEGER, 'save_checkpoints_steps', 1000, 'Save a checkpoint every this many steps.',
          loop=True, lower_bound=1),
    _flag(RUN, _INTEGER, 'keep_checkpoint_max', 5,
          'Keep at most this many recent checkpoints; 0 keeps every one, as TF1\'s Saver did.',
          loop=True, lower_bound=0),
    _flag(RUN, _INTEGER, 'log_every_n_steps', 100, 'Log loss and speed every this many steps.',
          loop=True, lower_bound=1),
    _flag(RUN, _INTEGER, 'save_summary_steps', 100, 'Write TensorBoard summaries this often.',
          loop=True, lower_bound=1),
    _flag(RUN, _BOOL, 'keep_training_when_dead', False,
          'Train on when every final_conv output is zero (the final ReLU has died and no '
          'gradient flows); by default such a run saves a checkpoint and stops, exit status 3.',
          loop=True),
    _flag(EXPERIMENT, _ENUM, 'precision', 'fp32',
          'fp32 (the notebook); bf16: oneDNN mixed precision on CPUs with AVX512-BF16 or AMX; '
          'fp16: CUDA mixed precision with loss scaling on a GPU. Training and evaluation alike.',
          enum_values=list(PRECISIONS)),
    _flag(EXPERIMENT, _INTEGER, 'seed', None,
          'Seed for a repeatable run (enables op determinism).', lower_bound=0,
          upper_bound=2**31 - 1),
    _flag(EXPERIMENT, _BOOL, 'sync_replicas', False,
          'In a TF_CONFIG cluster: average one gradient from each worker per step, instead of '
          'applying each as it comes.'),
    _flag(RUN, _STRING, 'warm_start_from', None,
          'With --mode train or train_and_eval, into a model_dir with no checkpoint: start from '
          'the weights of this checkpoint (a prefix, or a folder: its latest), with a fresh Adam '
          'and global_step 0.', path=True),
    _flag(RUN, _LIST, 'warm_start_map', [],
          'With --warm_start_from: OLD:NEW pairs mapping the checkpoint\'s names onto the '
          'model\'s, as init_from_checkpoint maps them (squeezenet/: maps a scope onto the root).'),
    _flag(RUN, _LIST, 'warm_start_exclude', [],
          'With --warm_start_from: scopes that start fresh instead (e.g. final_conv, to '
          'fine-tune into another number of classes).'),
    _flag(MODE, _INTEGER, 'eval_timeout_secs', 600,
          'With --mode=continuous_eval: stop when no new checkpoint has appeared for this many '
          'seconds.', modes=('continuous_eval',), lower_bound=1),
    _flag(MODE, _BOOL, 'per_class_every_eval', False,
          'With --mode train_and_eval or continuous_eval: log the per-class accuracy table after '
          'every evaluation (by default each is one line, and the table follows the last). '
          '--mode=eval always logs it.',
          modes=('train_and_eval', 'continuous_eval')),
    _flag(MODE, _STRING, 'checkpoint_path', None,
          'With --mode eval, predict or export: the checkpoint to use, e.g. '
          '<model_dir>/model.ckpt-1000 (default: the latest).',
          modes=('eval', 'predict', 'export'), path=True),
    _flag(MODE, _STRING, 'exported_model', None,
          'With --mode eval or predict: a file an export wrote, used in place of the checkpoint: '
          '<export_dir>/saved_model, frozen_graph.pb, a .tflite, model.onnx or model.keras '
          '(class names from its labels.txt). Nothing is written into --model_dir.',
          modes=('eval', 'predict'), path=True),
    _flag(MODE, _LIST, 'images', [], 'With --mode=predict: image files and folders to classify.',
          modes=('predict',), path=True),
    _flag(MODE, _INTEGER, 'top_k', 3, 'With --mode=predict: how many classes to show per image.',
          modes=('predict',), lower_bound=1, upper_bound=1000),
    _flag(MODE, _STRING, 'predictions_json', None,
          'With --mode=predict: also write results here.', modes=('predict',), path=True),
    _flag(MODE, _STRING, 'export_dir', None,
          'With --mode=export: output folder (default: <model_dir>/export).', modes=('export',),
          path=True),
)

FLAG_NAMES = tuple(flag.name for flag in FLAGS_DECLARED)
EXPERIMENT_FLAGS = tuple(flag.name for flag in FLAGS_DECLARED if flag.role == EXPERIMENT)
AGREED_FLAGS = tuple(flag.name for flag in FLAGS_DECLARED if flag.agreed)
LOOP_SETTINGS = tuple(flag.name for flag in FLAGS_DECLARED if flag.loop)
Values = collections.namedtuple('Values', FLAG_NAMES)
Values.__doc__ = 'Every flag\'s parsed value, read-only, by name.'


def values_of(flag_values):
    """The parsed flags as Values; the modes read these, never the FlagValues."""
    values = (getattr(flag_values, name) for name in FLAG_NAMES)
    return Values(*(tuple(v) if isinstance(v, list) else v for v in values))


# What flags.json and every line of runs.jsonl record: all but the modes' own flags.
RECORDED_FLAGS = tuple(flag.name for flag in FLAGS_DECLARED if flag.role != MODE)


def mode_flags(mode):
    """The flags only --mode `mode` reads, which its line in runs.jsonl records too."""
    return tuple(flag.name for flag in FLAGS_DECLARED if mode in flag.modes)


def define_flags(flag_values=flags.FLAGS):
    """Defines run_train.py's flags and their validators on `flag_values`."""
    for flag in FLAGS_DECLARED:
        flag.define(name=flag.name, default=flag.default, help=flag.help, flag_values=flag_values,
                    **flag.options)
    for flag in FLAGS_DECLARED:
        if flag.path:  # checked once, here: every module after it takes a local path
            flags.register_validator(
                flag.name, lambda v: not any(map(literal_paths.is_url, _as_list(v))),
                message='--%s %s.' % (flag.name, literal_paths.NOT_LOCAL), flag_values=flag_values)
    flags.register_validator(
        'learning_rate', lambda v: v is not None and v > 0 and math.isfinite(v),
        message='--learning_rate must be a positive finite number.', flag_values=flag_values)
    for name in ('model_dir', 'data_dir'):
        flags.register_validator(name, bool, message='--%s must not be empty.' % name,
                                 flag_values=flag_values)
    flags.register_multi_flags_validator(
        ['mode', 'images'], lambda f: f['mode'] != 'predict' or bool(f['images']),
        message='--mode=predict needs --images: image files or folders, comma-separated.',
        flag_values=flag_values)
    flags.mark_flags_as_mutual_exclusive(['exported_model', 'checkpoint_path'],
                                         flag_values=flag_values)
    flags.register_multi_flags_validator(
        ['mode', 'warm_start_from', 'warm_start_map', 'warm_start_exclude'],
        lambda f: (f['warm_start_from'] is None and not f['warm_start_map']
                   and not f['warm_start_exclude'])
        or (f['warm_start_from'] is not None and f['mode'] in ('train', 'train_and_eval')),
        message='--warm_start_from starts a training run (--mode train or train_and_eval) from '
                'a checkpoint\'s weights; --warm_start_map and --warm_start_exclude go with it.',
        flag_values=flag_values)
    _refuse_outside_its_modes('exported_model', flag_values,
                              '--exported_model is read by --mode eval or predict, in place of '
                              '--checkpoint_path.')
    _refuse_outside_its_modes('checkpoint_path', flag_values,
                              '--checkpoint_path picks the checkpoint for --mode eval, predict or '
                              'export; training resumes from the latest and continuous_eval takes '
                              'each in turn.')


def _refuse_outside_its_modes(name, flag_values, message):
    modes = next(flag.modes for flag in FLAGS_DECLARED if flag.name == name)
    flags.register_multi_flags_validator(
        ['mode', name], lambda f: f[name] is None or f['mode'] in modes, message=message,
        flag_values=flag_values)


def _as_list(value):
    return value if isinstance(value, (list, tuple)) else [value]

