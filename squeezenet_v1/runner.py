"""What `run_train.py` does once its flags are parsed: train, evaluate, predict or export.

`run(flags_obj)` takes the parsed flags as an argument (it never reads absl's global FLAGS)
and returns the process exit status, turning the errors a user can fix into one clear message.
"""

import os

from absl import logging

from squeezenet_v1 import checkpoints
from squeezenet_v1 import datasets
from squeezenet_v1 import evaluate
from squeezenet_v1 import export
from squeezenet_v1 import files
from squeezenet_v1 import predict
from squeezenet_v1 import session_options
from squeezenet_v1 import train
from squeezenet_v1.cifar10 import DataError
from squeezenet_v1.model_dir_lock import ModelDirLockedError

_RUN_FLAGS = ('mode', 'data_dir', 'dataset', 'download', 'download_url', 'model_dir',
              'batch_size', 'max_steps', 'learning_rate', 'save_checkpoints_steps',
              'keep_checkpoint_max', 'log_every_n_steps', 'save_summary_steps', 'seed',
              'precision')

EXIT_ERROR = 1
EXIT_INTERRUPTED = 130  # 128 + SIGINT, what a shell reports for Ctrl-C


class _SomeFilesFailed(Exception):
    """Prediction named the files it could not classify; the rest were reported."""


def run(flags_obj):
    """Runs --mode; returns 0, 1 for a reported error, or 128 + signal after an interruption."""
    try:
        _run(flags_obj)
    except train.TrainingInterrupted as e:
        logging.warning('%s', e)
        return 128 + e.signum
    except KeyboardInterrupt:
        logging.warning('Interrupted (Ctrl-C) before training or outside it; what was being '
                        'written was discarded.')
        return EXIT_INTERRUPTED
    except _SomeFilesFailed:
        return EXIT_ERROR
    except (DataError, checkpoints.CheckpointMismatchError, checkpoints.CheckpointSaveError,
            checkpoints.CheckpointVanishedError, train.NonFiniteLossError,
            checkpoints.NoCheckpointError, train.ModelDirError, ModelDirLockedError,
            predict.NoImagesError, export.ExportTargetError,
            session_options.UnsupportedPrecisionError) as e:
        logging.error('%s', e)
        return EXIT_ERROR
    return 0


def _run(flags_obj):
    if flags_obj.mode == 'predict':
        _predict(flags_obj)
    elif flags_obj.mode == 'export':
        _export(flags_obj)
    else:
        _train_and_evaluate(flags_obj)


def _train_and_evaluate(flags_obj):
    """--mode train, eval or train_and_eval; every check runs before the first file is written."""
    model_dir = flags_obj.model_dir
    training = flags_obj.mode in ('train', 'train_and_eval')
    session_options.check_precision_supported(flags_obj.precision)
    _check_model_dir(model_dir, will_write=training)
    train.set_determinism(flags_obj.seed)
    cache_dir = datasets.records_cache_dir()

    def source(split):
        return datasets.prepare_split(
            flags_obj.dataset, split, flags_obj.data_dir, cache_dir,
            download=flags_obj.download, download_url=flags_obj.download_url)

    # Both splits are checked before training, so a bad test split cannot waste a run.
    train_source = source('train') if training else None
    test_source = source('test') if flags_obj.mode != 'train' else None
    if training:
        train.train(model_dir, train_source, batch_size=flags_obj.batch_size,
                    max_steps=flags_obj.max_steps, learning_rate=flags_obj.learning_rate,
                    save_checkpoints_steps=flags_obj.save_checkpoints_steps,
                    keep_checkpoint_max=flags_obj.keep_checkpoint_max,
                    log_every_n_steps=flags_obj.log_every_n_steps,
                    save_summary_steps=flags_obj.save_summary_steps, seed=flags_obj.seed,
                    precision=flags_obj.precision,
                    run_record={name: getattr(flags_obj, name) for name in _RUN_FLAGS})
    if test_source:
        evaluate.evaluate(model_dir, test_source, batch_size=flags_obj.batch_size)


def _check_model_dir(model_dir, will_write):
    """Refuses a --model_dir that is a file or cannot be written; creates nothing."""
    if os.path.exists(model_dir) and not os.path.isdir(model_dir):
        raise train.ModelDirError('--model_dir %s is a file, not a folder. Choose a folder.'
                                  % model_dir)
    if not will_write:
        return
    existing = os.path.abspath(model_dir)
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        raise train.ModelDirError('--model_dir %s cannot be created (%s is a file). Choose a '
                                  'folder you can write to.' % (model_dir, existing))
    if not os.access(existing, os.W_OK | os.X_OK):
        if existing == os.path.abspath(model_dir):
            raise train.ModelDirError('--model_dir %s is not writable. Choose a folder you can '
                                      'write to, or fix its permissions.' % model_dir)
        raise train.ModelDirError('--model_dir %s cannot be created (%s is not writable). '
                                  'Choose a folder you can write to.' % (model_dir, existing))


def _label_names(flags_obj):
    return datasets.model_label_names(flags_obj.model_dir, flags_obj.dataset, flags_obj.data_dir)


def _predict(flags_obj):
    results = predict.predict(flags_obj.model_dir, flags_obj.images, _label_names(flags_obj),
                              top_k=flags_obj.top_k)
    print(predict.format_results(results))
    if flags_obj.predictions_json:
        files.write_json_atomic(flags_obj.predictions_json, results)
    failed = [r['file'] for r in results if 'error' in r]
    if failed:
        logging.error('%d of %d files could not be classified: %s', len(failed), len(results),
                      ', '.join(failed))
        raise _SomeFilesFailed()


def _export(flags_obj):
    export_dir = flags_obj.export_dir or os.path.join(flags_obj.model_dir, 'export')
    report = export.export(flags_obj.model_dir, export_dir, _label_names(flags_obj))
    print(export.format_size_report(report))
    for name, reason in report['tflite_skipped'].items():
        logging.warning('%s was not written: %s', name, reason)
