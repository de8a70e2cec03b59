"""What a --mode needs, resolved once before it runs: `resolve(flags_obj, mode) -> Run`.

Every check of the command line against the machine and the disk runs here, before any file
is written, so a refused run leaves no trace. The Run is immutable: the modes (runner.py) read
it and pass on what they compute as return values.
"""

import collections
import os

from absl import logging

from squeezenet_v1.files import atomic
from squeezenet_v1.files import output_files

from squeezenet_v1.files import reading
from squeezenet_v1 import run_flags
from squeezenet_v1.cluster import tf_config
from squeezenet_v1.data import datasets
from squeezenet_v1.data.errors import DataError
from squeezenet_v1.deploy import artifacts
from squeezenet_v1.deploy import export
from squeezenet_v1.deploy import predict
from squeezenet_v1.errors import first_line
from squeezenet_v1.model_dir import checkpoints
from squeezenet_v1.training import loop
from squeezenet_v1.training import memory_check
from squeezenet_v1.model_dir import claim
from squeezenet_v1.model_dir import foreign
from squeezenet_v1.model_dir import run_records
from squeezenet_v1.training import session_options

Run = collections.namedtuple('Run', [
    'flags',         # run_flags.Values: every flag's parsed value
    'task',          # this process's tf_config.Task in a TF_CONFIG cluster; None alone
    'dataset',       # the data set read: --dataset, or what the model_dir or export recorded
    'label_names',   # the class names predict and export write (the model_dir's or export's)
    'train_source',  # datasets.SplitSource of the training split, when the mode trains
    'test_source',   # ... of the test split, when the mode evaluates a checkpoint (export:
                     # if there is one; an exported file's: run_context.exported_split)
    'checkpoint',    # the checkpoint a reading mode starts from (its global_step is recorded)
    'settings',      # loop.LoopSettings, when the mode trains
    'warm_start',    # foreign.WarmStart of --warm_start_from for a new training run, or None
])
Run.__new__.__defaults__ = (None,)


def record_of(run):
    """What runs.jsonl records of the run besides its flags and steps."""
    record = {'dataset': run.dataset} if run.dataset else {}
    if run.task:
        record['cluster'] = run.task.describe()
    if run.warm_start:
        record['warm_start'] = warm_start_record(run.warm_start)
    return record


def warm_start_record(warm):
    """What flags.json and runs.jsonl say of a warm start's source."""
    return {'checkpoint': warm.prefix, 'fingerprint': warm.fingerprint, 'fresh': warm.fresh}


def resolve(flags_obj, mode):
    """The Run of `mode` (a runner.Mode) on `flags_obj`; raises the UserError of a failed check."""
    values = run_flags.values_of(flags_obj)
    if not mode.uses_model_dir:  # --mode=download: the data set named, nothing else
        return Run(values, None, values.dataset, None, None, None, None, None)
    task = tf_config.task_from_environment() if mode.trains else None
    if task and task.is_ps:  # it serves the variables; the workers read the data
        return Run(values, task, None, None, None, None, None, None)
    chief = task is None or task.is_chief
    if mode.checks_output:
        mode.checks_output(values)
    exported = values.exported_model
    if exported:
        # The file first; its runtime opens it before the test split is read (exported_split).
        label_names = artifacts.exported_label_names(exported)
        return Run(values, None, _exported_dataset(flags_obj, exported), label_names, None,
                   None, None, None)
    _check_before_writing(values, mode, task, chief)
    checkpoint = None
    if mode.reads_checkpoint:
        checkpoint = checkpoints.choose_checkpoint(values.model_dir, values.checkpoint_path)
        checkpoints.global_step_stored_in(checkpoint)  # refused now if it holds no step
    dataset = values.dataset if mode.trains else _dataset_to_read(flags_obj)
    label_names = (run_records.model_label_names(values.model_dir, dataset, values.data_dir)
                   if mode.writes_label_names else None)
    train_source = _source(values, dataset, 'train') if mode.trains else None
    return Run(values, task, dataset, label_names, train_source,
               _test_source(values, mode, dataset) if chief else None,
               checkpoint, _loop_settings(values) if mode.trains else None,
               _warm_start(values, train_source) if chief and mode.trains else None)


def _warm_start(values, train_source):
    """--warm_start_from, checked against the model before anything is written; None when
    the model_dir holds a checkpoint already (it resumes from its own)."""
    if not values.warm_start_from:
        return None
    own = checkpoints.latest_checkpoint(values.model_dir)
    if own:
        logging.warning('%s holds %s: resuming from it; --warm_start_from %s is ignored.',
                        values.model_dir, os.path.basename(own), values.warm_start_from)
        return None
    return foreign.warm_start(values.warm_start_from, values.warm_start_map,
                              values.warm_start_exclude, len(train_source.label_names))


def _check_before_writing(values, mode, task, chief):
    if not (mode.trains or mode.evaluates):
        return
    if values.sync_replicas and not task and mode.trains:
        logging.warning('--sync_replicas does nothing here: TF_CONFIG names no cluster of '
                        'several processes, so this process trains alone.')
    session_options.check_precision_supported(values.precision)
    claim.check_model_dir(values.model_dir, will_write=mode.trains and chief)
    if mode.trains:
        memory_check.check_batch_fits(values.batch_size, training=True)
    if mode.evaluates:
        memory_check.check_batch_fits(values.eval_batch_size, training=False,
                                      flag='--eval_batch_size')
        # Where every evaluation appends: a FIFO or a link there is refused before a step.
        atomic.check_appendable(os.path.join(values.model_dir, run_records.EVAL_HISTORY_FILE))


def exported_split(run):
    """The test split an exported file is evaluated on, read once the file has opened."""
    return _source(run.flags, run.dataset, 'test')


def check_predictions_json(values):
    """--predictions_json is never one of the image files named (a folder may hold it)."""
    if values.predictions_json:
        output_files.check_output_file(values.predictions_json, '--predictions_json',
                                predict.is_predictions_file,
                                inputs=[path for path in values.images if os.path.isfile(path)])


def check_export_dir(values):
    export.check_export_dir(export_dir(values), values.model_dir)


def export_dir(values):
    return values.export_dir or os.path.join(values.model_dir, 'export')


def _loop_settings(values):
    return loop.LoopSettings(**{name: getattr(values, name) for name in run_flags.LOOP_SETTINGS})


def _source(values, dataset, split, download=True):
    return datasets.prepare_split(
        dataset, split, values.data_dir, datasets.records_cache_dir(),
        download=values.download and download, download_url=values.download_url,
        download_deadline_secs=values.download_deadline_secs)


def _test_source(values, mode, dataset):
    if mode.evaluates:  # checked before training, so a bad test split cannot waste a run
        return _source(values, dataset, 'test')
    if not mode.measures_on_test_split:
        return None
    try:  # export measures each file on it, else on synthetic images
        return _source(values, dataset, 'test', download=False)
    except DataError as e:
        logging.info('Measuring the exports on synthetic images: no %s test split (%s).',
                     dataset, first_line(e))
        return None


def _dataset_to_read(flags_obj):
    """The data set eval and predict use: the one model_dir was trained on unless --dataset says.

    An explicit --dataset other than the recorded one is used, with a warning.
    """
    given = _given(flags_obj, 'dataset')
    recorded = run_records.recorded_flags(flags_obj.model_dir, required=not given)
    recorded = recorded.get('dataset')
    if recorded not in datasets.DATASETS:
        return flags_obj.dataset
    if not given:
        return recorded
    if recorded != flags_obj.dataset:
        logging.warning('%s was trained on the %s set; using --dataset=%s as asked, and '
                        'recording it with the results.', flags_obj.model_dir, recorded,
                        flags_obj.dataset)
    return flags_obj.dataset


def _exported_dataset(flags_obj, exported_model):
    """--dataset when given, else the set the export's size_report.json names."""
    if _given(flags_obj, 'dataset'):
        return flags_obj.dataset
    report = reading.read_plain_json(os.path.join(
        artifacts.export_folder(exported_model), export.SIZE_REPORT_FILE))
    recorded = report.get('dataset') if isinstance(report, dict) else None
    return recorded if recorded in datasets.DATASETS else flags_obj.dataset


def _given(flags_obj, name):
    """Whether the user set --name on the command line (absl FlagValues know; others: no)."""
    try:
        return bool(flags_obj[name].present)
    except (TypeError, KeyError, AttributeError):
        return True
