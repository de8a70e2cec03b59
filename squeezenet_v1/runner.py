"""What `run_train.py` does once its flags are parsed: one table from --mode to its work.

    run(flags_obj) -> exit status
      run_context.resolve(flags_obj, MODES[mode]) -> Run    every check, before any write
      MODES[mode].run(run, on_start)                       the work

`run` takes the parsed flags as an argument (it never reads absl's global FLAGS) and turns the
errors a user can fix into one clear message. A run that gets past its checks calls
`on_start(global_step)` and so appends its line to <model_dir>/runs.jsonl, however it ends.
"""

import collections
import os

from absl import logging

from squeezenet_v1.files import atomic
from squeezenet_v1 import interrupts
from squeezenet_v1 import run_context
from squeezenet_v1 import run_flags
from squeezenet_v1.cluster import server
from squeezenet_v1.cluster import worker
from squeezenet_v1.data import datasets
from squeezenet_v1.deploy import artifacts
from squeezenet_v1.deploy import export
from squeezenet_v1.deploy import predict
from squeezenet_v1.errors import UserError
from squeezenet_v1.evaluation import continuous_eval
from squeezenet_v1.evaluation import evaluate
from squeezenet_v1.evaluation import evaluate_exported
from squeezenet_v1.model_dir import checkpoints
from squeezenet_v1.training import loop
from squeezenet_v1.model_dir import run_records
from squeezenet_v1.training import trainer
from squeezenet_v1.training.graph import op_determinism

EXIT_ERROR = 1
EXIT_DEAD_RUN = 3  # the final ReLU died: saved and stopped (loop.DeadRunError)
EXIT_INTERRUPTED = 130  # 128 + SIGINT, what a shell reports for Ctrl-C


class _SomeFilesFailed(Exception):
    """Prediction named the files it could not classify; the rest were reported."""


def run(flags_obj):
    """Runs --mode; returns 0, 1 for a reported error, 3 for a run stopped dead, or 128 + signal
    after an interruption."""
    mode = MODES[flags_obj.mode]
    run_log = run_records.RunLog(flags_obj.model_dir, flags_obj.mode, {
        name: getattr(flags_obj, name)
        for name in run_flags.RECORDED_FLAGS + run_flags.mode_flags(flags_obj.mode)})
    try:
        with interrupts.as_exceptions():
            resolved = run_context.resolve(flags_obj, mode)
            with op_determinism(flags_obj.seed if mode.seeded else None):
                (_serve if resolved.task and resolved.task.is_ps else mode.run)(
                    resolved, lambda step: run_log.start(step, run_context.record_of(resolved)))
    except checkpoints.CheckpointMismatchError as e:
        logging.error('%s', e)
        return EXIT_ERROR  # a refusal, found when the checkpoint is read: nothing recorded
    except (loop.TrainingInterrupted, interrupts.Interrupted, KeyboardInterrupt,
            _SomeFilesFailed, UserError) as e:
        return _finish(run_log, *_outcome(e, flags_obj.mode))
    return _finish(run_log, 'finished', None, 0)


def _outcome(error, mode_name):
    """Logs an error run() answers; returns (how the run ended, its message, exit status)."""
    if isinstance(error, loop.TrainingInterrupted):
        logging.warning('%s', error)
        return 'signal', str(error), 128 + error.signum
    if isinstance(error, interrupts.Interrupted):
        logging.warning('Stopped by %s during --mode=%s; what was being written was discarded.',
                        error, mode_name)
        return 'signal', str(error), 128 + error.signum
    if isinstance(error, KeyboardInterrupt):  # before the handlers were in place
        logging.warning('Interrupted (Ctrl-C); what was being written was discarded.')
        return 'signal', 'SIGINT', EXIT_INTERRUPTED
    if isinstance(error, _SomeFilesFailed):  # predict has logged the files
        return 'error', str(error), EXIT_ERROR
    logging.error('%s', error)
    if isinstance(error, loop.DeadRunError):
        return 'dead_relu', str(error), EXIT_DEAD_RUN
    if isinstance(error, loop.NonFiniteLossError):
        return 'non_finite_loss', str(error), EXIT_ERROR
    return 'error', str(error), EXIT_ERROR


def _finish(run_log, ended, message, status):
    latest = checkpoints.latest_checkpoint(run_log.model_dir) if run_log.started else None
    try:
        step = checkpoints.global_step_stored_in(latest) if latest else None
    except UserError:  # a checkpoint not this project's holds no usable step: none recorded
        step = None
    run_log.finish(step, ended, message)
    return status


def _step_of(checkpoint_path):
    return checkpoints.global_step_stored_in(checkpoint_path) if checkpoint_path else None


def _serve(run, on_start):
    """A cluster's ps task: serve the variables until every worker has finished."""
    server.serve(run.task)


def _train(run, on_start, after_save=None):
    """trainer.train alone; worker.train_worker as a cluster's task (its chief writes)."""
    values = run.flags
    run_record = {name: getattr(values, name) for name in run_flags.RECORDED_FLAGS}
    run_record['num_classes'] = len(run.train_source.label_names)  # the model's output_size
    if run.warm_start:
        run_record['warm_start'] = run_context.warm_start_record(run.warm_start)
    if not run.task:
        return trainer.train(values.model_dir, run.train_source, run.settings, seed=values.seed,
                             precision=values.precision, run_record=run_record,
                             on_start=on_start, after_save=after_save,
                             warm_start=run.warm_start)
    agreed = {name: getattr(values, name) for name in run_flags.AGREED_FLAGS + ('model_dir',)}
    return worker.train_worker(run.task, values.model_dir, run.train_source, run.settings,
                               agreed, run_record=run_record, on_start=on_start,
                               warm_start=run.warm_start)


def _train_and_eval(run, on_start):
    """Trains, evaluating each checkpoint written; a cluster's chief evaluates its last one."""
    if not run.test_source:  # a cluster's other workers: the chief evaluates
        return _train(run, on_start)
    values = run.flags
    with evaluate.Evaluator(values.model_dir, run.test_source, values.eval_batch_size,
                            values.precision) as evaluator:
        every_table = values.per_class_every_eval
        evaluated_here = []
        _train(run, on_start, after_save=lambda path: evaluated_here.append(
            evaluator.evaluate(path, per_class_table=every_table)))
        if not _evaluate_if_new(evaluator, values.model_dir,
                                [results['global_step'] for results in evaluated_here]):
            if evaluated_here and not every_table:  # one line each; the table once, at the end
                evaluate.log_per_class_table(evaluated_here[-1])


def _evaluate_if_new(evaluator, model_dir, steps_evaluated_here):
    """Evaluates the latest checkpoint unless this run or an earlier one has; says whether."""
    latest = checkpoints.latest_checkpoint(model_dir)
    step = checkpoints.global_step_stored_in(latest)
    if step in steps_evaluated_here:
        return False  # its evaluation was just logged
    if step in evaluate.evaluated_steps(model_dir):
        logging.info('%s was evaluated already; its results are in %s.',
                     os.path.basename(latest), evaluate.EVAL_HISTORY_FILE)
        return False
    evaluator.evaluate(latest)  # a cluster's last checkpoint, or one a --mode=train wrote
    return True


def _eval(run, on_start):
    """One checkpoint's accuracy, recorded in model_dir; an exported file's, recorded nowhere."""
    values = run.flags
    if values.exported_model:
        with artifacts.open_artifact(values.exported_model) as artifact:
            return evaluate_exported.evaluate_exported(artifact, run.label_names,
                                                       run_context.exported_split(run))
    on_start(_step_of(run.checkpoint))
    return evaluate.evaluate(values.model_dir, run.test_source, values.eval_batch_size,
                             values.checkpoint_path, precision=values.precision)


def _continuous_eval(run, on_start):
    """Evaluates each checkpoint a trainer writes, until --max_steps or --eval_timeout_secs."""
    values = run.flags
    on_start(_step_of(checkpoints.latest_checkpoint(values.model_dir)))
    continuous_eval.continuous_eval(values.model_dir, run.test_source, values.eval_batch_size,
                                    values.max_steps, values.eval_timeout_secs,
                                    precision=values.precision,
                                    every_table=values.per_class_every_eval)


def _predict(run, on_start):
    """Classifies --images; prints the table and writes --predictions_json when given."""
    values = run.flags
    if not values.exported_model:  # an export's file records nothing in a model_dir
        on_start(_step_of(run.checkpoint))
    results = predict.predict(values.model_dir, list(values.images), run.label_names,
                              top_k=values.top_k, checkpoint_path=values.checkpoint_path,
                              exported_model=values.exported_model)
    print(predict.format_results(results))
    if values.predictions_json:
        atomic.write_json_atomic(values.predictions_json, results)
    failed = [r['file'] for r in results if 'error' in r]
    if failed:
        message = '%d of %d files could not be classified: %s' % (
            len(failed), len(results), ', '.join(predict.printable(f) for f in failed))
        logging.error('%s', message)
        raise _SomeFilesFailed(message)


def _export(run, on_start):
    """Writes every deployable file of the checkpoint, each measured against the TF1 graph."""
    values = run.flags
    on_start(_step_of(run.checkpoint))
    check_images = None
    if run.test_source:
        images, _ = datasets.split_images(run.test_source)
        check_images = images, 'the %s test split (%d images)' % (run.dataset, len(images))
    report = export.export(values.model_dir, run_context.export_dir(values), run.label_names,
                           values.checkpoint_path, check_images, dataset=run.dataset)
    print(export.format_size_report(report))
    for name, reason in report['skipped'].items():
        logging.warning('%s was not written: %s', name, reason)


def _download(run, on_start):
    """Fetches (or finds) the data set, checks both splits and says what they hold; it writes
    the data and the records cache only (no model_dir, no runs.jsonl line)."""
    values = run.flags
    sources = [datasets.prepare_split(
        run.dataset, split, values.data_dir, datasets.records_cache_dir(), download=True,
        download_url=values.download_url, download_deadline_secs=values.download_deadline_secs)
        for split in ('train', 'test')]
    names = sources[0].label_names
    where = ('made on the spot, nothing to download' if run.dataset == 'synthetic'
             else 'in %s' % values.data_dir)
    logging.info('%s (%s): %s; %d classes: %s. Ready to train.', run.dataset, where,
                 ', '.join('%s %d images' % (s.split, s.num_examples) for s in sources),
                 len(names), ', '.join(names[:10]) + (', ...' if len(names) > 10 else ''))


Mode = collections.namedtuple('Mode', [
    'run',                     # run(Run, on_start)
    'trains', 'evaluates',     # reads the training split / the test split
    'reads_checkpoint',        # starts from one checkpoint: --checkpoint_path or the latest
    'writes_label_names',      # needs the class names the model_dir was trained with
    'measures_on_test_split',  # uses the test split when there is one
    'checks_output',           # checks an output path before anything is written, or None
    'seeded',                  # --seed enables op determinism
    'uses_model_dir',          # reads or writes --model_dir (download alone does not)
])
Mode.__new__.__defaults__ = (True,)

MODES = {
    'train': Mode(_train, True, False, False, False, False, None, True),
    'train_and_eval': Mode(_train_and_eval, True, True, False, False, False, None, True),
    'eval': Mode(_eval, False, True, True, False, False, None, True),
    'continuous_eval': Mode(_continuous_eval, False, True, False, False, False, None, True),
    'predict': Mode(_predict, False, False, True, True, False,
                    run_context.check_predictions_json, False),
    'export': Mode(_export, False, False, True, True, True, run_context.check_export_dir, False),
    'download': Mode(_download, False, False, False, False, False, None, False,
                     uses_model_dir=False),
}
assert set(MODES) == set(run_flags.MODES)
