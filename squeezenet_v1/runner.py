"""What `run_train.py` does once its flags are parsed: train, evaluate, predict or export.

`run(flags_obj)` takes the parsed flags as an argument (it never reads absl's global FLAGS)
and returns the process exit status, turning the errors a user can fix into one clear message.
"""

import os

from absl import logging

from squeezenet_v1 import files
from squeezenet_v1 import interrupts
from squeezenet_v1.cluster import server
from squeezenet_v1.cluster import tf_config
from squeezenet_v1.cluster import worker
from squeezenet_v1.data import datasets
from squeezenet_v1.deploy import artifacts
from squeezenet_v1.deploy import export
from squeezenet_v1.deploy import predict
from squeezenet_v1.data.cifar10 import DataError
from squeezenet_v1.errors import UserError, first_line
from squeezenet_v1.evaluation import continuous_eval
from squeezenet_v1.evaluation import evaluate
from squeezenet_v1.evaluation import evaluate_exported
from squeezenet_v1.training import checkpoints
from squeezenet_v1.training import loop
from squeezenet_v1.training import memory_check
from squeezenet_v1.training import model_dir as model_dirs
from squeezenet_v1.training import run_records
from squeezenet_v1.training import session_options
from squeezenet_v1.training import trainer
from squeezenet_v1.training.graph import op_determinism

_RUN_FLAGS = ('mode', 'data_dir', 'dataset', 'download', 'download_url', 'model_dir',
              'batch_size', 'eval_batch_size', 'max_steps', 'learning_rate',
              'save_checkpoints_steps', 'keep_checkpoint_max', 'log_every_n_steps',
              'save_summary_steps', 'seed', 'precision', 'sync_replicas')
_MODE_FLAGS = {'eval': ('checkpoint_path', 'exported_model'),
               'continuous_eval': ('eval_timeout_secs',),
               'predict': ('images', 'top_k', 'predictions_json', 'checkpoint_path',
                           'exported_model'),
               'export': ('export_dir', 'checkpoint_path')}

EXIT_ERROR = 1
EXIT_INTERRUPTED = 130  # 128 + SIGINT, what a shell reports for Ctrl-C


class _SomeFilesFailed(Exception):
    """Prediction named the files it could not classify; the rest were reported."""


def run(flags_obj):
    """Runs --mode; returns 0, 1 for a reported error, or 128 + signal after an interruption.

    A run that gets past its checks appends its line to <model_dir>/runs.jsonl, however it ends.
    """
    names = _RUN_FLAGS + _MODE_FLAGS.get(flags_obj.mode, ())
    run_log = run_records.RunLog(flags_obj.model_dir, flags_obj.mode,
                                {name: getattr(flags_obj, name) for name in names})
    try:
        with interrupts.as_exceptions():
            _run(flags_obj, run_log)
    except loop.TrainingInterrupted as e:
        logging.warning('%s', e)
        return _finish(run_log, 'signal', str(e), 128 + e.signum)
    except interrupts.Interrupted as e:
        logging.warning('Stopped by %s during --mode=%s; what was being written was discarded.',
                        e, flags_obj.mode)
        return _finish(run_log, 'signal', str(e), 128 + e.signum)
    except KeyboardInterrupt:  # before the handlers were in place
        logging.warning('Interrupted (Ctrl-C); what was being written was discarded.')
        return _finish(run_log, 'signal', 'SIGINT', EXIT_INTERRUPTED)
    except _SomeFilesFailed as e:
        return _finish(run_log, 'error', str(e), EXIT_ERROR)
    except loop.NonFiniteLossError as e:
        logging.error('%s', e)
        return _finish(run_log, 'non_finite_loss', str(e), EXIT_ERROR)
    except UserError as e:
        logging.error('%s', e)
        if isinstance(e, checkpoints.CheckpointMismatchError):
            run_log.started = False  # a refusal, found when the checkpoint is read: no record
        return _finish(run_log, 'error', str(e), EXIT_ERROR)
    return _finish(run_log, 'finished', None, 0)


def _finish(run_log, ended, message, status):
    latest = checkpoints.latest_checkpoint(run_log.model_dir) if run_log.started else None
    run_log.finish(checkpoints.global_step_stored_in(latest) if latest else None, ended, message)
    return status


def _run(flags_obj, run_log):
    if getattr(flags_obj, 'exported_model', None) and flags_obj.mode == 'eval':
        _evaluate_exported(flags_obj)
    elif flags_obj.mode == 'predict':
        _predict(flags_obj, run_log)
    elif flags_obj.mode == 'export':
        _export(flags_obj, run_log)
    else:
        with op_determinism(flags_obj.seed):
            _train_and_evaluate(flags_obj, run_log)


def _dataset_to_read(flags_obj):
    """The data set eval and predict use: the one model_dir was trained on unless --dataset says.

    An explicit --dataset other than the recorded one is used, with a warning.
    """
    recorded = run_records.recorded_flags(flags_obj.model_dir,
                                         required=not _given(flags_obj, 'dataset'))
    recorded = recorded.get('dataset')
    if recorded not in datasets.DATASETS:
        return flags_obj.dataset
    if not _given(flags_obj, 'dataset'):
        return recorded
    if recorded != flags_obj.dataset:
        logging.warning('%s was trained on the %s set; using --dataset=%s as asked, and '
                        'recording it with the results.', flags_obj.model_dir, recorded,
                        flags_obj.dataset)
    return flags_obj.dataset


def _given(flags_obj, name):
    """Whether the user set --name on the command line (absl FlagValues know; others: no)."""
    try:
        return bool(flags_obj[name].present)
    except (TypeError, KeyError, AttributeError):
        return True


def _train_and_evaluate(flags_obj, run_log):
    """--mode train, eval, continuous_eval or train_and_eval; every check runs before the
    first file is written."""
    model_dir = flags_obj.model_dir
    training = flags_obj.mode in ('train', 'train_and_eval')
    # A TF_CONFIG cluster of several processes makes this process one of its tasks; only its
    # chief writes into model_dir and evaluates (see cluster/worker.py).
    task = tf_config.task_from_environment() if training else None
    if task and task.is_ps:
        server.serve(task)
        return
    chief = task is None or task.is_chief
    if flags_obj.sync_replicas and not task and training:
        logging.warning('--sync_replicas does nothing here: TF_CONFIG names no cluster of '
                        'several processes, so this process trains alone.')
    session_options.check_precision_supported(flags_obj.precision)
    model_dirs.check_model_dir(model_dir, will_write=training and chief)
    if training:
        memory_check.check_batch_fits(flags_obj.batch_size, training=True)
    if flags_obj.mode != 'train':
        memory_check.check_batch_fits(flags_obj.eval_batch_size, training=False,
                                flag='--eval_batch_size')
    cache_dir = datasets.records_cache_dir()
    dataset = flags_obj.dataset if training else _dataset_to_read(flags_obj)
    run_log.record['dataset'] = dataset

    def source(split):
        return datasets.prepare_split(
            dataset, split, flags_obj.data_dir, cache_dir,
            download=flags_obj.download, download_url=flags_obj.download_url,
            download_deadline_secs=flags_obj.download_deadline_secs)

    # Both splits are checked before training, so a bad test split cannot waste a run.
    train_source = source('train') if training else None
    test_source = source('test') if flags_obj.mode != 'train' and chief else None
    if flags_obj.mode == 'eval':
        run_log.start(checkpoints.global_step_stored_in(checkpoints.choose_checkpoint(
            model_dir, flags_obj.checkpoint_path)))
        evaluate.evaluate(model_dir, test_source, flags_obj.eval_batch_size,
                          flags_obj.checkpoint_path, precision=flags_obj.precision)
    elif flags_obj.mode == 'continuous_eval':
        latest = checkpoints.latest_checkpoint(model_dir)
        run_log.start(checkpoints.global_step_stored_in(latest) if latest else None)
        continuous_eval.continuous_eval(model_dir, test_source, flags_obj.eval_batch_size,
                                        flags_obj.max_steps, flags_obj.eval_timeout_secs,
                                        precision=flags_obj.precision)
    elif test_source:  # train_and_eval, alone or as a cluster's chief
        with evaluate.Evaluator(model_dir, test_source, flags_obj.eval_batch_size,
                                flags_obj.precision) as evaluator:
            evaluated_here = []
            _train(flags_obj, run_log, train_source, task,
                   after_save=lambda path: evaluated_here.append(evaluator.evaluate(path)))
            latest = checkpoints.latest_checkpoint(model_dir)
            step = checkpoints.global_step_stored_in(latest)
            if any(results['global_step'] == step for results in evaluated_here):
                pass  # its evaluation was just logged
            elif step in evaluate.evaluated_steps(model_dir):  # by an earlier run on this folder
                logging.info('%s was evaluated already; its results are in %s.',
                             os.path.basename(latest), evaluate.EVAL_HISTORY_FILE)
            else:  # a cluster's last checkpoint, or one an earlier --mode=train wrote
                evaluator.evaluate(latest)
    else:
        _train(flags_obj, run_log, train_source, task)


def _train(flags_obj, run_log, train_source, task, after_save=None):
    """trainer.train alone; worker.train_worker as a cluster's task, whose chief's checkpoints
    are evaluated after training, the last one only."""
    settings = loop.LoopSettings(
        flags_obj.batch_size, flags_obj.max_steps, flags_obj.learning_rate,
        flags_obj.save_checkpoints_steps, flags_obj.keep_checkpoint_max,
        flags_obj.log_every_n_steps, flags_obj.save_summary_steps)
    run_record = {name: getattr(flags_obj, name) for name in _RUN_FLAGS}
    if task:
        run_log.record['cluster'] = task.describe()
        worker.train_worker(task, flags_obj.model_dir, train_source, settings,
                            seed=flags_obj.seed, precision=flags_obj.precision,
                            sync_replicas=flags_obj.sync_replicas, run_record=run_record,
                            on_start=run_log.start)
    else:
        trainer.train(flags_obj.model_dir, train_source, settings, seed=flags_obj.seed,
                      precision=flags_obj.precision, run_record=run_record,
                      on_start=run_log.start, after_save=after_save)


def _label_names(flags_obj, run_log):
    dataset = run_log.record['dataset'] = _dataset_to_read(flags_obj)
    return run_records.model_label_names(flags_obj.model_dir, dataset, flags_obj.data_dir)


def _predict(flags_obj, run_log):
    if flags_obj.predictions_json:
        # The image files named; a folder of images may hold the predictions file.
        files.check_output_file(flags_obj.predictions_json, '--predictions_json',
                                predict.is_predictions_file,
                                inputs=[path for path in flags_obj.images if os.path.isfile(path)])
    exported_model = getattr(flags_obj, 'exported_model', None)
    if exported_model:  # the export's file, its names; nothing recorded in a model_dir
        label_names = evaluate_exported.exported_label_names(exported_model)
    else:
        label_names = _label_names(flags_obj, run_log)
        run_log.start(checkpoints.global_step_stored_in(checkpoints.choose_checkpoint(
            flags_obj.model_dir, flags_obj.checkpoint_path)))
    results = predict.predict(flags_obj.model_dir, flags_obj.images, label_names,
                              top_k=flags_obj.top_k, checkpoint_path=flags_obj.checkpoint_path,
                              exported_model=exported_model)
    print(predict.format_results(results))
    if flags_obj.predictions_json:
        files.write_json_atomic(flags_obj.predictions_json, results)
    failed = [r['file'] for r in results if 'error' in r]
    if failed:
        message = '%d of %d files could not be classified: %s' % (
            len(failed), len(results), ', '.join(predict.printable(f) for f in failed))
        logging.error('%s', message)
        raise _SomeFilesFailed(message)


def _evaluate_exported(flags_obj):
    """--mode=eval --exported_model: the file's accuracy on the test split; writes nothing."""
    label_names = evaluate_exported.exported_label_names(flags_obj.exported_model)
    with artifacts.open_artifact(flags_obj.exported_model) as artifact:  # before the data
        source = datasets.prepare_split(
            _exported_dataset(flags_obj), 'test', flags_obj.data_dir,
            datasets.records_cache_dir(), download=flags_obj.download,
            download_url=flags_obj.download_url,
            download_deadline_secs=flags_obj.download_deadline_secs)
        evaluate_exported.evaluate_exported(artifact, label_names, source)


def _exported_dataset(flags_obj):
    """--dataset when given, else the set the export's size_report.json names."""
    if _given(flags_obj, 'dataset'):
        return flags_obj.dataset
    report = files.read_plain_json(os.path.join(
        evaluate_exported.export_folder(flags_obj.exported_model), export.SIZE_REPORT_FILE))
    recorded = report.get('dataset') if isinstance(report, dict) else None
    return recorded if recorded in datasets.DATASETS else flags_obj.dataset


def _export(flags_obj, run_log):
    export_dir = flags_obj.export_dir or os.path.join(flags_obj.model_dir, 'export')
    export.check_export_dir(export_dir, flags_obj.model_dir)
    label_names = _label_names(flags_obj, run_log)
    run_log.start(checkpoints.global_step_stored_in(checkpoints.choose_checkpoint(
        flags_obj.model_dir, flags_obj.checkpoint_path)))
    report = export.export(flags_obj.model_dir, export_dir, label_names,
                           flags_obj.checkpoint_path, _check_images(flags_obj, run_log),
                           dataset=run_log.record['dataset'])
    print(export.format_size_report(report))
    for name, reason in report['skipped'].items():
        logging.warning('%s was not written: %s', name, reason)


def _check_images(flags_obj, run_log):
    """The test split export measures each artifact on; None (synthetic images) without it."""
    dataset = run_log.record['dataset']
    try:
        source = datasets.prepare_split(dataset, 'test', flags_obj.data_dir,
                                        datasets.records_cache_dir())
    except DataError as e:
        logging.info('Measuring the exports on synthetic images: no %s test split (%s).',
                     dataset, first_line(e))
        return None
    images, _ = evaluate_exported.split_images(source)
    return images, 'the %s test split (%d images)' % (dataset, len(images))
