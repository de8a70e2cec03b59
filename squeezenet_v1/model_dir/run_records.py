"""What a run records beside its checkpoints: `flags.json`, `labels.txt`, and `runs.jsonl`.

Every run that gets past its checks (train, eval, predict, export) appends one JSON line to
`<model_dir>/runs.jsonl`: when it started, the mode and all flags, global_step at its start and
end, how it ended, the versions and the CPU/GPU. A refused run writes nothing (see claim.py
and run_context.py: every check comes before the first write).
"""

import datetime
import os

from absl import logging

from squeezenet_v1.files import atomic
from squeezenet_v1.files import reading
from squeezenet_v1 import machine
from squeezenet_v1.errors import UserError
from squeezenet_v1.run_flags import EXPERIMENT_FLAGS

RUNS_FILE = 'runs.jsonl'
FLAGS_FILE = 'flags.json'
LABELS_FILE = 'labels.txt'  # class names in output order
# What evaluation records beside the checkpoints it evaluated (evaluation/evaluate.py).
EVAL_RESULTS_FILE = 'eval_results.json'
EVAL_HISTORY_FILE = 'eval_history.jsonl'
MAX_LABELS_BYTES = 1 << 20


def recorded_flags(model_dir, required=False):
    """The flags the last training run in model_dir recorded (flags.json), or {} if none.

    With `required`, a flags.json that is there but unreadable is a UserError: the caller
    cannot tell what the model_dir was trained with.
    """
    path = os.path.join(model_dir, FLAGS_FILE)
    if not os.path.lexists(path):
        return {}
    recorded = reading.read_plain_json(path)  # None for a FIFO, a folder or invalid JSON
    if isinstance(recorded, dict):
        return recorded
    if required:
        raise UserError('%s is unreadable, so the data set %s was trained on is unknown. Give '
                        '--dataset, or restore the file.'
                        % (path, model_dir))
    return {}


def changed_experiment_flags(previous, current):
    """['--name: old -> new', ...] for experiment flags that differ from an earlier run's."""
    return ['--%s: %s -> %s' % (name, previous[name], current.get(name))
            for name in EXPERIMENT_FLAGS
            if name in previous and previous[name] != current.get(name)]


class RunLog(object):
    """One run's line in runs.jsonl: `start(step)` once the checks pass, `finish(...)` at the end.

    A run that never started (refused by a check) writes nothing.
    """

    def __init__(self, model_dir, mode, flag_values):
        self.model_dir = model_dir
        self.record = {'started': _now(), 'mode': mode, 'flags': flag_values}
        self.started = False

    def start(self, global_step, facts=None):
        """The run got past its checks at `global_step`; `facts` (the data set, the cluster
        task) join its line."""
        self.record.update(facts or {})
        self.record['global_step_at_start'] = global_step
        self.started = True

    def finish(self, global_step, ended, message=None):
        """Appends the line; `ended` is finished, signal, non_finite_loss, dead_relu or error."""
        if not self.started:
            return
        self.record.update({'finished': _now(), 'global_step_at_end': global_step,
                            'ended': ended, 'message': message})
        self.record['versions'] = machine.versions()
        try:
            self.record.update(machine.hardware())
            atomic.append_json_line(os.path.join(self.model_dir, RUNS_FILE), self.record)
        except OSError as e:  # a read-only model_dir must not fail a prediction
            logging.warning('could not append to %s (%s); the run is not recorded.',
                            os.path.join(self.model_dir, RUNS_FILE), e.strerror or e)
        except UserError as e:  # a FIFO or a link in its place
            logging.warning('%s The run is not recorded.', e)


def _now():
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds')


def write_label_names(folder, names):
    """Writes folder/labels.txt: the class names, one a line, in output order."""
    atomic.write_text_atomic(os.path.join(folder, LABELS_FILE), '\n'.join(names) + '\n')


def model_label_names(model_dir, dataset, data_dir):
    """The names a model_dir was trained with: its labels.txt, else those of `dataset`."""
    # Here, not at the top: summarize reads this module and starts without numpy.
    from squeezenet_v1.data import class_names
    from squeezenet_v1.data import datasets
    from squeezenet_v1.data.errors import DataError
    path = os.path.join(model_dir, LABELS_FILE)
    if not os.path.lexists(path):
        return datasets.label_names(dataset, data_dir)
    fix = 'Restore it (one class name a line, UTF-8) or delete it to use the data set\'s names.'
    try:
        text = reading.read_text(path, MAX_LABELS_BYTES)
    except reading.UnreadableFileError as e:
        raise DataError('%s %s' % (e, fix))
    except OSError as e:
        raise DataError('%s cannot be read (%s). %s' % (path, e.strerror or e, fix))
    return class_names.checked_names([line for line in text.splitlines() if line.strip()],
                                     path, fix)
