"""Trains and evaluates the notebook's SqueezeNet on CIFAR-10 (or a synthetic stand-in).

    python run_train.py --dataset=synthetic --model_dir=/tmp/sq --max_steps=600
    python run_train.py --data_dir=data/ --download --model_dir=/tmp/sq_cifar

Resumes from the newest checkpoint in --model_dir; Ctrl-C or SIGTERM saves one and exits.
"""

import math
import sys

from squeezenet_v1 import interrupts

# Ctrl-C and SIGTERM are held from the first instruction and answered once it is safe: the
# TensorFlow import below would swallow a KeyboardInterrupt.
interrupts.hold_from_start()

from absl import app  # noqa: E402
from absl import flags  # noqa: E402
from absl import logging  # noqa: E402

from squeezenet_v1.data.download import DEFAULT_DEADLINE_SECS  # noqa: E402

FLAGS = flags.FLAGS

flags.DEFINE_enum('mode', 'train_and_eval',
                  ['train', 'eval', 'train_and_eval', 'continuous_eval', 'predict', 'export'],
                  'Train; evaluate a checkpoint; train and evaluate every checkpoint written; '
                  'evaluate each checkpoint as a trainer writes it; classify --images; or export.')
flags.DEFINE_string('data_dir', 'data/', 'Folder holding CIFAR-10, extracted or as the archive.')
flags.DEFINE_enum('dataset', 'cifar10', ['cifar10', 'synthetic'],
                  'cifar10, or synthetic: a small learnable set made on the spot, no download. '
                  'eval and predict default to the set the model_dir was trained on.')
flags.DEFINE_bool('download', False, 'Download CIFAR-10 into --data_dir when it is absent.')
flags.DEFINE_string('download_url', None, 'Mirror of cifar-10-binary.tar.gz to download from '
                    '(default: the CIFAR-10 home page); its md5 must be the official one.')
flags.DEFINE_integer('download_deadline_secs', DEFAULT_DEADLINE_SECS,
                     'Give up a download that has not '
                     'finished after this many seconds.')
flags.DEFINE_string('model_dir', '/tmp/squeezenet_v1_model',
                    'Folder for checkpoints, summaries, flags.json and eval_results.json.')
flags.DEFINE_integer('batch_size', 32, 'Images per training step.')
# The fastest batch measured here (250 to 1,000 are within a few per cent); in fp32 the logits
# are bit for bit the same at every batch size, so the results do not depend on it.
flags.DEFINE_integer('eval_batch_size', 500, 'Images per evaluation step (the results are the '
                     'same for every value).')
flags.DEFINE_string('checkpoint_path', None, 'With --mode eval, predict or export: the '
                    'checkpoint to use, e.g. <model_dir>/model.ckpt-1000 (default: the latest).')
flags.DEFINE_integer('eval_timeout_secs', 600, 'With --mode=continuous_eval: stop when no new '
                     'checkpoint has appeared for this many seconds.')
flags.DEFINE_integer('max_steps', 10000, 'Train until global_step reaches this.')
# Adam's own default, which the notebook used by calling AdamOptimizer().
flags.DEFINE_float('learning_rate', 0.001, 'Adam learning rate.')
flags.DEFINE_integer('save_checkpoints_steps', 1000, 'Save a checkpoint every this many steps.')
flags.DEFINE_integer('keep_checkpoint_max', 5, 'Keep at most this many recent checkpoints; 0 keeps '
                     'every one, as TF1\'s Saver did.')
flags.DEFINE_integer('log_every_n_steps', 100, 'Log loss and speed every this many steps.')
flags.DEFINE_integer('save_summary_steps', 100, 'Write TensorBoard summaries this often.')
flags.DEFINE_enum('precision', 'fp32', ['fp32', 'bf16', 'fp16'],
                  'fp32 (the notebook); bf16: oneDNN mixed precision on CPUs with AVX512-BF16 or '
                  'AMX; fp16: CUDA mixed precision with loss scaling on a GPU. Training and '
                  'evaluation alike.')
flags.DEFINE_bool('sync_replicas', False, 'In a TF_CONFIG cluster: average one gradient from '
                  'each worker per step, instead of applying each as it comes.')
flags.DEFINE_integer('seed', None, 'Seed for a repeatable run (enables op determinism).')
flags.DEFINE_list('images', [], 'With --mode=predict: image files and folders to classify.')
flags.DEFINE_integer('top_k', 3, 'With --mode=predict: how many classes to show per image.')
flags.DEFINE_string('predictions_json', None, 'With --mode=predict: also write results here.')
flags.DEFINE_string('export_dir', None, 'With --mode=export: output folder (default: '
                    '<model_dir>/export).')
flags.DEFINE_string('exported_model', None, 'With --mode eval or predict: a file an export '
                    'wrote, used in place of the checkpoint: <export_dir>/saved_model, '
                    'frozen_graph.pb, a .tflite, model.onnx or model.keras (class names from '
                    'its labels.txt). Nothing is written into --model_dir.')

_MAX_BATCH = 65536
for _name in ('save_checkpoints_steps', 'log_every_n_steps',
              'save_summary_steps', 'max_steps', 'download_deadline_secs',
              'eval_timeout_secs'):
    flags.register_validator(_name, lambda v: v is not None and v >= 1,
                             message='--%s must be a positive integer.' % _name)
flags.register_validator('keep_checkpoint_max', lambda v: v is not None and v >= 0,
                         message='--keep_checkpoint_max must be 0 (keep every checkpoint) or more.')
for _name in ('batch_size', 'eval_batch_size'):
    flags.register_validator(_name, lambda v: v is not None and 1 <= v <= _MAX_BATCH,
                             message='--%s must be between 1 and %d.' % (_name, _MAX_BATCH))
flags.register_validator('learning_rate', lambda v: v is not None and v > 0 and math.isfinite(v),
                         message='--learning_rate must be a positive finite number.')
flags.register_validator('seed', lambda v: v is None or 0 <= v < 2**31,
                         message='--seed must be between 0 and 2**31 - 1.')
flags.register_validator('top_k', lambda v: v is not None and 1 <= v <= 1000,
                         message='--top_k must be between 1 and 1000.')
flags.register_validator('model_dir', bool, message='--model_dir must not be empty.')
flags.register_multi_flags_validator(
    ['mode', 'images'], lambda f: f['mode'] != 'predict' or bool(f['images']),
    message='--mode=predict needs --images: image files or folders, comma-separated.')
flags.register_validator('data_dir', bool, message='--data_dir must not be empty.')
flags.register_multi_flags_validator(
    ['mode', 'exported_model', 'checkpoint_path'],
    lambda f: f['exported_model'] is None or (f['mode'] in ('eval', 'predict')
                                              and f['checkpoint_path'] is None),
    message='--exported_model is read by --mode eval or predict, in place of --checkpoint_path.')
flags.register_multi_flags_validator(
    ['mode', 'checkpoint_path'],
    lambda f: f['checkpoint_path'] is None or f['mode'] in ('eval', 'predict', 'export'),
    message='--checkpoint_path picks the checkpoint for --mode eval, predict or export; training '
            'resumes from the latest and continuous_eval takes each in turn.')


def main(argv):
    if len(argv) > 1:
        raise app.UsageError('Unexpected arguments: %s' % ' '.join(argv[1:]))
    # TensorFlow is imported after flags are checked, so a bad flag answers at once.
    logging.info('Loading TensorFlow for --mode=%s.', FLAGS.mode)
    try:
        from squeezenet_v1 import runner
        interrupts.answer_dropped()
    except interrupts.Interrupted as e:
        logging.warning('Stopped by %s during start-up; nothing was written.', e)
        sys.exit(128 + e.signum)
    sys.exit(runner.run(FLAGS))


def console_main():
    """The `squeezenet-train` command: run_train.py as an installed console script."""
    app.run(main)


if __name__ == '__main__':
    app.run(main)
