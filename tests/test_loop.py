"""The one training loop, driven as a single process drives it and as a cluster's worker does.

A single process moves global_step by one a step; a cluster's other workers move it too, so a
worker sees it jump. The loop's periods are crossings, its clock leaves saves out, its stop and
non-finite handling are one: each is checked here for both, on scripted steps (fast; the real
runs are in test_run_train.py and test_distributed.py).
"""

import collections
import logging
import math
import os
import signal

import numpy as np
import pytest

from squeezenet_v1.training import loop

SETTINGS = loop.LoopSettings(batch_size=4, max_steps=12, learning_rate=0.001,
                             save_checkpoints_steps=5, keep_checkpoint_max=5,
                             log_every_n_steps=5, save_summary_steps=5,
                             keep_training_when_dead=False)
# How far global_step moves per run: one in a single process; three for a worker whose two
# peers step between its own steps.
KINDS = {'single process': (None, 1), 'cluster worker': ('worker:1', 3)}


# A batch's logits as the loop looks at them: alive and different for each class.
_LOGITS = np.tile(np.arange(10, dtype=np.float32), (4, 1))


class _Clock(object):
    def __init__(self):
        self.now = 1000.0

    def time(self):
        return self.now


_Model = collections.namedtuple('_Model', ['output_size'])
_Training = collections.namedtuple('_Training', ['model', 'input_initializer', 'weights_finite',
                                                 'examples_per_epoch'])


class _Session(object):
    """Answers the loop's one direct question, whether the weights are finite."""

    def __init__(self, steps, infinite_from=None):
        self.steps, self.infinite_from = steps, infinite_from

    def run(self, fetch):
        assert fetch == 'weights_finite'
        return self.infinite_from is None or self.steps.last_step < self.infinite_from


class _ScriptedSteps(object):
    """The loop's `steps`: global_step moves `stride` a run, and each run takes 1 s."""

    batches_per_step = 1

    def __init__(self, task_name, stride, clock, losses=None, logits=None):
        self.task_name, self.stride, self.clock = task_name, stride, clock
        self.losses = losses or {}
        self.logits = _LOGITS if logits is None else logits
        self.finished_at = None

    def first_step(self, sess, training):
        return 0

    def make_run(self, sess, training, stop, summaries):
        def run(step, write_summary):
            self.clock.now += 1.0
            after = min(step + self.stride, SETTINGS.max_steps)
            results = ['train_op', self.losses.get(after, 1.5), 0.5, after, self.logits]
            self.last_step = after
            return results + ['summary'] if write_summary else results
        return run

    def finished(self, sess, step):
        self.finished_at = step


class _Files(object):
    """The loop's `files`: a save takes 50 s and may run `on_save(step)` (a signal, say)."""

    model_dir = '/nowhere/run'

    def __init__(self, clock, steps, on_save=None):
        self.clock, self.steps, self.on_save = clock, steps, on_save
        self.complete, self.summaries, self.opened, self.closed = [], [], False, False
        self.writer = self

    def open(self):
        self.opened = True

    def close(self):
        self.closed = True

    def add_summary(self, summary, step):
        self.summaries.append(step)

    def save(self):
        self.clock.now += 50.0
        step = self.steps.last_step
        self.complete.append('model.ckpt-%d' % step)
        if self.on_save:
            self.on_save(step)
        return 'prefix-%d' % step, step


def _drive(monkeypatch, kind, losses=None, on_save=None, after_save=None, clock=None,
           infinite_from=None, logits=None, chief=True):
    clock = clock or _Clock()
    task_name, stride = KINDS[kind]
    steps = _ScriptedSteps(task_name, stride, clock, losses, logits)
    files = _Files(clock, steps, on_save) if chief else None
    logged = []
    monkeypatch.setattr(loop.time, 'time', clock.time)
    monkeypatch.setattr(loop, 'log_step', lambda step, progress, loss, accuracy, count,
                        elapsed, task_name: logged.append((step, count, elapsed)))
    training = _Training(_Model(10), None, 'weights_finite', 48)
    result = loop.train_loop(_Session(steps, infinite_from), training, SETTINGS, steps, files,
                             after_save)
    return result, steps, files, logged


@pytest.mark.parametrize('kind', sorted(KINDS))
def test_periods_are_crossings_and_saves_stay_out_of_the_speed(monkeypatch, kind):
    evaluations, clock = [], _Clock()

    def after_save(path):
        evaluations.append(path)
        clock.now += 100.0  # an evaluation's time: not training's

    step, steps, files, logged = _drive(monkeypatch, kind, after_save=after_save, clock=clock)
    stride = KINDS[kind][1]
    seen = list(range(stride, SETTINGS.max_steps, stride)) + [SETTINGS.max_steps]
    crossings = [s for i, s in enumerate(seen)
                 if s // 5 > ([0] + seen)[i] // 5 or s == SETTINGS.max_steps]
    assert step == SETTINGS.max_steps and steps.finished_at == SETTINGS.max_steps
    assert [s for s, _, _ in logged] == crossings
    assert files.complete == ['model.ckpt-%d' % s for s in crossings]
    assert evaluations == ['prefix-%d' % s for s in crossings]
    # Each run took 1 s; the saves (50 s) and evaluations (100 s) are not in the figures.
    assert [elapsed for _, _, elapsed in logged] == [float(count) for _, count, _ in logged]
    assert files.opened and files.closed


@pytest.mark.parametrize('kind', sorted(KINDS))
def test_a_signal_during_the_final_save_finishes_the_run(monkeypatch, caplog, kind):
    def signal_at_the_end(step):
        if step == SETTINGS.max_steps:
            os.kill(os.getpid(), signal.SIGTERM)

    with caplog.at_level(logging.INFO, logger='absl'):
        step, steps, files, _ = _drive(monkeypatch, kind, on_save=signal_at_the_end)
    assert step == SETTINGS.max_steps and steps.finished_at == SETTINGS.max_steps
    assert 'SIGTERM arrived after the final step was saved: the run is finished.' in caplog.text


@pytest.mark.parametrize('kind', sorted(KINDS))
def test_a_signal_mid_run_saves_then_stops_with_its_status(monkeypatch, kind):
    def signal_at_first_save(step):
        if len(files_seen) == 0:
            files_seen.append(step)
            os.kill(os.getpid(), signal.SIGINT)

    files_seen = []
    with pytest.raises(loop.TrainingInterrupted) as raised:
        _drive(monkeypatch, kind, on_save=signal_at_first_save)
    assert raised.value.signum == signal.SIGINT
    first = files_seen[0]
    assert 'stopped by SIGINT at step %d; checkpoint saved' % first in str(raised.value)
    assert (KINDS[kind][0] or '') in str(raised.value)


@pytest.mark.parametrize('kind', sorted(KINDS))
@pytest.mark.parametrize('saved_before', [False, True])
def test_a_non_finite_loss_stops_and_names_the_last_finite_checkpoint(monkeypatch, kind,
                                                                     saved_before):
    stride = KINDS[kind][1]
    bad_step = 9 if saved_before else stride
    with pytest.raises(loop.NonFiniteLossError) as raised:
        _drive(monkeypatch, kind, losses={bad_step: math.nan})
    message = str(raised.value)
    assert 'loss is nan at step %d' % bad_step in message
    if saved_before:
        assert 'The latest checkpoint in /nowhere/run, model.ckpt-' in message
    else:
        assert 'No checkpoint was saved: /nowhere/run holds none.' in message


@pytest.mark.parametrize('kind', sorted(KINDS))
def test_weights_gone_non_finite_under_a_finite_loss_stop_at_the_next_log_step(monkeypatch,
                                                                              kind):
    stride = KINDS[kind][1]
    first_log = [s for s in range(stride, 13, stride) if s // 5 >= 1][0]
    with pytest.raises(loop.NonFiniteLossError) as raised:
        _drive(monkeypatch, kind, infinite_from=1)
    assert 'weights are not finite at step %d' % first_log in str(raised.value)
    assert 'No checkpoint was saved' in str(raised.value)


def test_progress_says_the_epoch_and_the_time_left_at_the_pace_so_far(monkeypatch):
    now = [500.0]
    monkeypatch.setattr(loop.time, 'monotonic', lambda: now[0])
    progress = loop.Progress(first_step=100, max_steps=1100, batch_size=32,
                             examples_per_epoch=3200)
    now[0] += 60.0  # 100 steps a minute
    assert progress.seconds_left(200) == pytest.approx(540.0)
    assert loop.clock(progress.seconds_left(200)) == '9:00'
    assert progress.epoch(200) == pytest.approx(2.0)
    assert progress.seconds_left(100) == 0  # no step yet: no pace to go by
    now[0] -= 3600.0  # a clock set back cannot make the time left negative
    assert progress.seconds_left(200) == 0
    assert loop.clock(3723) == '1:02:03' and loop.clock(0) == '0:00'
    # A synchronous cluster's step averages a batch of each of its workers.
    synchronous = loop.Progress(0, 100, 32, 3200, batches_per_step=2)
    assert synchronous.epoch(50) == pytest.approx(1.0)


def test_a_dead_run_saves_evaluates_and_stops_and_on_its_last_step_finishes(monkeypatch):
    dead, zeros = math.log(10), np.zeros((4, 10), np.float32)
    evaluations = []
    with pytest.raises(loop.DeadRunError, match='Saved a checkpoint and stopped'):
        _drive(monkeypatch, 'single process', losses={5: dead}, logits=zeros,
               after_save=evaluations.append)
    assert evaluations == ['prefix-5']  # saved at the dead step, and evaluated (train_and_eval)
    with pytest.raises(loop.DeadRunError, match='the chief saves the checkpoints'):
        _drive(monkeypatch, 'cluster worker', losses={6: dead}, logits=zeros, chief=False)
    # Dead on the last step: the run has done what it was asked, and ends as finished.
    step, _, files, _ = _drive(monkeypatch, 'single process', losses={12: dead}, logits=zeros)
    assert step == 12 and files.complete[-1] == 'model.ckpt-12'
