"""Never lose a user's files: each way an adversary once lost them, and the outcome we promise.

Training runs in this process (no TensorFlow start-up per run) on the synthetic set; a few
cases go through run_train.py to show the user-facing message. Process-level cases (kill -9,
a trainer rotating beside readers) are in test_faults.py.
"""

import errno
import hashlib
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest
import tensorflow as tf

from conftest import (write_checkpoint_of_output_size, REPO, RUN_TRAIN, run_in_process, run_train,
                      train_in_process)
from squeezenet_v1.model_dir import checkpoint_writer
from squeezenet_v1.model_dir import checkpoints
from squeezenet_v1.data import datasets
from squeezenet_v1.data import download
from squeezenet_v1.deploy import export
from squeezenet_v1.files import atomic
from squeezenet_v1.files import temporaries
from squeezenet_v1 import interrupts
from squeezenet_v1.model_dir import run_records
from squeezenet_v1.data import synthetic
from squeezenet_v1.training import loop
from squeezenet_v1.training import trainer

tf1 = tf.compat.v1
LABELS = list(synthetic.LABEL_NAMES)


@pytest.fixture(scope='module')
def source(tmp_path_factory):
    return datasets.prepare_split('synthetic', 'train', 'data',
                                  str(tmp_path_factory.mktemp('cache')))


@pytest.fixture(scope='module')
def template(tmp_path_factory, source):
    """A model_dir holding model.ckpt-5 and model.ckpt-10; tests work on copies of it."""
    model_dir = str(tmp_path_factory.mktemp('template') / 'run')
    train_in_process(model_dir, source, max_steps=10, save_checkpoints_steps=5)
    assert sorted(n for n in os.listdir(model_dir) if n.endswith('.index')) == [
        'model.ckpt-10.index', 'model.ckpt-5.index']
    return model_dir


def _copy(template, path):
    shutil.copytree(template, str(path), symlinks=True)
    return str(path)


def _snapshot(folder):
    """{relative path: content hash, or the target of a symlink} of everything under folder."""
    found = {}
    for root, dirs, names in os.walk(folder):
        for name in dirs + names:
            path = os.path.join(root, name)
            key = os.path.relpath(path, folder)
            if os.path.islink(path):
                found[key] = 'link -> ' + os.readlink(path)
            elif os.path.isfile(path):
                with open(path, 'rb') as f:
                    found[key] = hashlib.sha256(f.read()).hexdigest()
            else:
                found[key] = 'dir'
    return found


def _steps(model_dir):
    return sorted(checkpoints.step_in_name(n[:-len('.index')]) for n in os.listdir(model_dir)
                  if n.endswith('.index'))


def _train(model_dir, source, max_steps, **kwargs):
    kwargs.setdefault('save_checkpoints_steps', 5)
    return train_in_process(model_dir, source, max_steps=max_steps, log_every_n_steps=5, **kwargs)


def _messages(caplog):
    return '\n'.join(r.getMessage() for r in caplog.records)


# 1. Export never writes into or above the model_dir, over a file, through a symlink, or into a
#    folder holding anything an export does not write.

def test_export_refuses_every_target_that_would_replace_user_files(template, tmp_path):
    runs = tmp_path / 'runs'
    runs.mkdir()
    model_dir = _copy(template, runs / 'run')
    (runs / 'sibling').mkdir()
    (runs / 'sibling' / 'notes.txt').write_text('my results')
    (tmp_path / 'a_file').write_text('keep me')
    (tmp_path / 'used').mkdir()
    (tmp_path / 'used' / 'notes.txt').write_text('keep me too')
    os.symlink(str(runs / 'sibling'), str(tmp_path / 'link'))
    before = _snapshot(str(tmp_path))
    refusals = {
        model_dir: 'is the model_dir',
        str(runs): 'or holds it',
        str(tmp_path / 'a_file'): 'is a file',
        str(tmp_path / 'a_file' / 'export'): 'is under a file',
        str(tmp_path / 'link'): 'is a symlink',
        str(tmp_path / 'used'): 'holds files an export does not write \\(notes.txt\\)',
        os.path.join(model_dir, '.'): 'by . or ..',
    }
    for target, reason in refusals.items():
        with pytest.raises(export.ExportTargetError, match=reason):
            export.export(model_dir, target, LABELS)
    assert _snapshot(str(tmp_path)) == before

    proc = run_train('--mode=export', '--model_dir=' + model_dir, '--export_dir=' + str(runs))
    assert proc.returncode == 1, proc.stdout[-2000:]
    assert '--export_dir %s is the model_dir %s or holds it' % (runs, model_dir) in proc.stdout
    assert 'Traceback' not in proc.stdout
    assert _snapshot(str(tmp_path)) == before


# 2. Checkpoints without a state file, or with a corrupt one, are adopted, never deleted.

def test_checkpoint_copied_into_an_empty_model_dir_is_resumed(template, tmp_path, source,
                                                              caplog):
    model_dir = str(tmp_path / 'new')
    os.makedirs(model_dir)
    for name in os.listdir(template):
        if name.startswith('model.ckpt-10.'):
            shutil.copy(os.path.join(template, name), model_dir)
    copied = _snapshot(model_dir)
    with caplog.at_level(logging.INFO, logger='absl'):
        assert _train(model_dir, source, 15) == 15
    log = _messages(caplog)
    assert 'Resuming from %s' % os.path.join(model_dir, 'model.ckpt-10') in log
    assert 'Rebuilt %s from the 1 complete checkpoints in the folder, because there was none' % (
        os.path.join(model_dir, 'checkpoint')) in log
    assert all(_snapshot(model_dir)[name] == digest for name, digest in copied.items())
    assert _steps(model_dir) == [10, 15]


@pytest.mark.slow
@pytest.mark.parametrize('state', [b'', b'garbage {{{', b'\xff\xfe\x00'])
def test_corrupt_state_file_is_rebuilt_and_training_resumes(template, tmp_path, source, caplog,
                                                            state):
    model_dir = _copy(template, tmp_path / 'run')
    with open(os.path.join(model_dir, 'checkpoint'), 'wb') as f:
        f.write(state)
    kept = {k: v for k, v in _snapshot(model_dir).items() if k.startswith('model.ckpt-10')}
    with caplog.at_level(logging.INFO, logger='absl'):
        assert _train(model_dir, source, 12) == 12
    log = _messages(caplog)
    assert 'Resuming from %s' % os.path.join(model_dir, 'model.ckpt-10') in log
    assert 'because it was unreadable' in log
    assert all(_snapshot(model_dir)[name] == digest for name, digest in kept.items())
    assert _steps(model_dir) == [5, 10, 12]
    assert tf1.train.get_checkpoint_state(model_dir).model_checkpoint_path.endswith('ckpt-12')


# 3. A copied TF1 run whose state file names the original folder by absolute paths.

@pytest.mark.slow
def test_copy_of_a_run_with_absolute_paths_never_touches_the_original(template, tmp_path,
                                                                      source, caplog):
    original = _copy(template, tmp_path / 'original')
    with open(os.path.join(original, 'checkpoint'), 'w') as f:  # what TF1's Saver wrote
        f.write('model_checkpoint_path: "%s/model.ckpt-10"\n' % original)
        for step in (5, 10):
            f.write('all_model_checkpoint_paths: "%s/model.ckpt-%d"\n' % (original, step))
    copy = _copy(original, tmp_path / 'copy')
    before = _snapshot(original)
    with caplog.at_level(logging.INFO, logger='absl'):
        _train(copy, source, 20, keep_checkpoint_max=1)
    log = _messages(caplog)
    assert 'Resuming from %s' % os.path.join(copy, 'model.ckpt-10') in log
    assert 'because it named %s/model.ckpt-' % original in log
    assert 'outside this folder' in log
    assert _snapshot(original) == before
    assert _steps(copy) == [20]  # the copy's own rotation happened, in the copy


# 4. Glob characters in a path are literal.

def test_glob_characters_in_model_dir_touch_no_sibling(template, tmp_path, source):
    sibling = _copy(template, tmp_path / 'run1')
    odd = _copy(template, tmp_path / 'run[1]')
    before = _snapshot(sibling)
    assert _train(odd, source, 15, keep_checkpoint_max=1) == 15
    assert _snapshot(sibling) == before
    assert _steps(odd) == [15]
    assert checkpoints.latest_checkpoint(odd) == os.path.join(odd, 'model.ckpt-15')


# 5. A damaged newest checkpoint: resume from the newest complete one, keep the damaged one.

def _damage(model_dir, how):
    if how == 'index missing':
        os.remove(os.path.join(model_dir, 'model.ckpt-10.index'))
    else:
        data = os.path.join(model_dir, 'model.ckpt-10.data-00000-of-00001')
        with open(data, 'r+b') as f:
            f.truncate(os.path.getsize(data) // 2)


@pytest.mark.parametrize('how', ['index missing', 'data truncated'])
def test_damaged_newest_checkpoint_is_kept_and_the_intact_one_resumed(template, tmp_path,
                                                                      source, caplog, how):
    model_dir = _copy(template, tmp_path / 'run')
    _damage(model_dir, how)
    damaged = {k: v for k, v in _snapshot(model_dir).items() if k.startswith('model.ckpt-10.')}
    assert checkpoints.latest_checkpoint(model_dir) == os.path.join(model_dir, 'model.ckpt-5')
    with caplog.at_level(logging.INFO, logger='absl'):
        assert _train(model_dir, source, 12) == 12
    log = _messages(caplog)
    assert 'Resuming from %s' % os.path.join(model_dir, 'model.ckpt-5') in log
    assert '%s is incomplete (%s' % (os.path.join(model_dir, 'model.ckpt-10'),
                                     'no .index file' if how == 'index missing'
                                     else 'unreadable') in log
    # Step 10 was saved again: the damaged files were set aside under .incomplete, not removed.
    after = _snapshot(model_dir)
    assert all(after[name + '.incomplete'] == digest for name, digest in damaged.items())
    assert _steps(model_dir) == [5, 10, 12]


@pytest.mark.slow
def test_truncated_checkpoint_in_eval_is_named_not_a_traceback(template, tmp_path):
    model_dir = _copy(template, tmp_path / 'run')
    _damage(model_dir, 'data truncated')
    os.remove(os.path.join(model_dir, 'model.ckpt-5.index'))
    proc = run_train('--mode=eval', '--dataset=synthetic', '--model_dir=' + model_dir)
    assert proc.returncode == 1, proc.stdout[-2000:]
    assert 'no complete checkpoint in %s' % model_dir in proc.stdout
    assert '%s is incomplete (unreadable' % os.path.join(model_dir, 'model.ckpt-10') in proc.stdout
    assert 'Traceback' not in proc.stdout


# 6. A refused run changes nothing.

def test_checkpoint_of_another_shape_refuses_before_writing_anything(tmp_path, source):
    model_dir = tmp_path / 'five'
    model_dir.mkdir()
    write_checkpoint_of_output_size(str(model_dir), 5)
    before = _snapshot(str(model_dir))
    with pytest.raises(checkpoints.CheckpointMismatchError, match='final_conv/bias is \\[5\\]'):
        _train(str(model_dir), source, 5, run_record={'dataset': 'synthetic'})
    assert _snapshot(str(model_dir)) == before  # no flags.json, labels.txt or lock file


@pytest.mark.slow
def test_train_and_eval_without_a_test_split_refuses_before_training(binary_release, tmp_path):
    data_dir, _ = binary_release
    os.remove(os.path.join(data_dir, 'cifar-10-batches-bin', 'test_batch.bin'))
    model_dir = str(tmp_path / 'run')
    proc = run_train('--data_dir=' + data_dir, '--model_dir=' + model_dir, '--max_steps=2')
    assert proc.returncode == 1, proc.stdout[-2000:]
    assert 'test_batch.bin' in proc.stdout and 'Traceback' not in proc.stdout
    assert not os.path.exists(model_dir)


# 7. Readers beside a rotating trainer take the newest checkpoint again.

def test_reader_whose_checkpoint_is_rotated_away_takes_the_newest(template, tmp_path, caplog):
    model_dir = _copy(template, tmp_path / 'run')
    seen = []

    def read(prefix):
        seen.append(os.path.basename(prefix))
        if len(seen) == 1:  # a trainer saves model.ckpt-15 and rotates model.ckpt-10 away
            for name in os.listdir(model_dir):
                if name.startswith('model.ckpt-10.'):
                    os.rename(os.path.join(model_dir, name),
                              os.path.join(model_dir, name.replace('ckpt-10', 'ckpt-15')))
        return checkpoints.num_classes(prefix)

    with caplog.at_level(logging.INFO, logger='absl'):
        assert checkpoints.with_checkpoint(model_dir, read) == 10
    assert seen == ['model.ckpt-10', 'model.ckpt-15']
    assert 'model.ckpt-10 was removed while being read' in _messages(caplog)


# 8. Temporaries: ours and TensorFlow's are cleaned, by exact name and only when their writer
#    is gone; a user's files that merely look similar stay.

def test_leftovers_of_killed_runs_are_cleaned_and_user_files_kept(template, tmp_path, source,
                                                                 caplog):
    model_dir = _copy(template, tmp_path / 'run')
    dead = subprocess.Popen([sys.executable, '-c', 'pass'])
    dead.wait()
    alive = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])
    try:
        leftovers = ['.flags.json.%d-abc123.tmp' % dead.pid,
                     '.model.ckpt-15.%d-x_y_z.tmp' % dead.pid,
                     'model.ckpt-15_temp', 'model.ckpt-15.index.tempstate123456']
        kept = ['.flags.json.%d-abc123.tmp' % alive.pid, 'notes.tmp', '.my.tmp',
                'model.ckpt-15.index.backup', 'model.ckpt-x.index']
        for name in leftovers[1:3]:
            os.makedirs(os.path.join(model_dir, name))
        for name in [leftovers[0], leftovers[3]] + kept:
            with open(os.path.join(model_dir, name), 'w') as f:
                f.write('x')
        with caplog.at_level(logging.INFO, logger='absl'):
            _train(model_dir, source, 11)
    finally:
        alive.kill()
        alive.wait()
    names = os.listdir(model_dir)
    assert not set(leftovers) & set(names)
    assert set(kept) <= set(names)
    log = _messages(caplog)
    for name in leftovers:
        assert 'Removed %s' % os.path.join(model_dir, name) in log


def test_ctrl_c_during_a_download_leaves_no_partial_file(tmp_path, monkeypatch):
    source_file = tmp_path / 'served' / 'archive.tar.gz'
    source_file.parent.mkdir()
    source_file.write_bytes(b'x' * 3000000)
    target_dir = tmp_path / 'data'
    target_dir.mkdir()

    def interrupt(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(download, '_log_progress', interrupt)
    with pytest.raises(KeyboardInterrupt):
        download.download('file://%s' % source_file, str(target_dir / 'archive.tar.gz'))
    assert os.listdir(str(target_dir)) == []


# Signals at the edges of training.

def test_signal_after_the_final_save_finishes_the_run(template, tmp_path, source, monkeypatch,
                                                      caplog):
    model_dir = _copy(template, tmp_path / 'run')
    real_save = checkpoint_writer.save

    def save_then_signal(sess, saver, model_dir, step, complete, keep):
        result = real_save(sess, saver, model_dir, step, complete, keep)
        if step == 12:
            os.kill(os.getpid(), signal.SIGTERM)
        return result

    monkeypatch.setattr(checkpoint_writer, 'save', save_then_signal)
    with caplog.at_level(logging.INFO, logger='absl'):
        assert _train(model_dir, source, 12) == 12  # returns: no TrainingInterrupted
    assert 'SIGTERM arrived after the final step was saved' in _messages(caplog)


@pytest.mark.slow
def test_second_signal_during_a_save_ends_with_its_status(template, tmp_path, source,
                                                          monkeypatch):
    model_dir = _copy(template, tmp_path / 'run')
    real_info, real_fsync = loop.logging.info, atomic.fsync_file

    def info_then_signal(message, *args):
        real_info(message, *args)
        if message.startswith('step') and args[0] == 13:
            os.kill(os.getpid(), signal.SIGTERM)  # the first: stop after saving

    def fsync_then_signal(path):
        real_fsync(path)
        os.kill(os.getpid(), signal.SIGINT)  # the second, in the middle of that save

    monkeypatch.setattr(loop.logging, 'info', info_then_signal)
    monkeypatch.setattr(atomic, 'fsync_file', fsync_then_signal)
    with pytest.raises(loop.TrainingInterrupted, match='second signal \\(SIGINT\\)') as raised:
        train_in_process(model_dir, source, max_steps=100, log_every_n_steps=1,
                    save_checkpoints_steps=100)
    assert raised.value.signum == signal.SIGINT
    assert _steps(model_dir) == [5, 10]
    assert [n for n in os.listdir(model_dir) if n.startswith('.') and n != '.lock'] == []
    assert checkpoint_writer.read_state(model_dir) == (['model.ckpt-5', 'model.ckpt-10'], None)


def test_a_signal_a_destructor_dropped_in_start_up_still_stops_the_run(tmp_path, monkeypatch):
    # Python runs a signal handler wherever the main thread is; raised inside a destructor, its
    # Interrupted is printed and dropped. Graph building collects garbage all the time.
    class SignalsWhenCollected(object):
        def __del__(self):
            os.kill(os.getpid(), signal.SIGTERM)

    real_build = trainer.build_training_graph

    def build_then_drop_a_signal(*args, **kwargs):
        training = real_build(*args, **kwargs)
        SignalsWhenCollected()  # collected at once: the handler raises inside __del__
        return training

    dropped = []
    monkeypatch.setattr(sys, 'unraisablehook', lambda unraisable: dropped.append(
        unraisable.exc_type))
    monkeypatch.setattr(trainer, 'build_training_graph', build_then_drop_a_signal)
    model_dir = str(tmp_path / 'run')
    status = run_in_process('--dataset=synthetic', '--model_dir=' + model_dir, '--mode=train',
                            '--max_steps=300', '--save_checkpoints_steps=100')
    assert dropped == [interrupts.Interrupted]  # the signal was dropped where it was raised
    assert status == 128 + signal.SIGTERM
    assert checkpoints.latest_checkpoint(model_dir) is None  # not one step was trained
    with open(os.path.join(model_dir, run_records.RUNS_FILE)) as f:
        assert json.loads(f.readlines()[-1])['ended'] == 'signal'


def test_an_answered_signal_is_not_raised_again():
    with pytest.raises(interrupts.Interrupted):
        with interrupts.as_exceptions():
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(10)  # not reached: the handler raises when os.kill returns
    with interrupts.handled_by(lambda signum, frame: None):  # would raise a dropped one
        pass


def _signal_when_logged(args, text, signum):
    """(exit status, output) of run_train.py with args, sent signum once it logs `text`."""
    # TensorFlow's lines shown too: its "Restoring parameters from" marks an evaluation's start.
    proc = subprocess.Popen([sys.executable, RUN_TRAIN] + args, cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True,
                            env=dict(os.environ, SQUEEZENET_V1_TF_LOGS='1'))
    try:
        lines = []
        for line in proc.stdout:  # bounded: the process ends, and communicate() has a timeout
            lines.append(line)
            if text in line:
                proc.send_signal(signum)
                break
        rest = proc.communicate(timeout=120)[0]
        return proc.returncode, ''.join(lines) + rest
    finally:
        proc.kill()


@pytest.mark.parametrize('mode, signum', [
    pytest.param('eval', signal.SIGINT, marks=pytest.mark.slow),
    pytest.param('export', signal.SIGINT, marks=pytest.mark.slow),
    ('train', signal.SIGTERM)])
def test_a_signal_while_tensorflow_loads_is_answered_and_nothing_written(template, tmp_path, mode,
                                                                        signum):
    # TensorFlow's import swallows a KeyboardInterrupt: the signal is held from run_train.py's
    # first instruction and answered once the import is done.
    model_dir = _copy(template, tmp_path / 'run')
    before = _snapshot(model_dir)
    status, output = _signal_when_logged(
        ['--mode=' + mode, '--dataset=synthetic', '--model_dir=' + model_dir, '--max_steps=300'],
        'Loading TensorFlow for --mode=%s.' % mode, signum)
    assert status == 128 + signum, output[-2000:]
    assert 'Stopped by %s' % signal.Signals(signum).name in output
    assert 'Traceback' not in output
    assert _snapshot(model_dir) == before


@pytest.mark.slow
@pytest.mark.parametrize('phase, signum', [
    ('Starting from scratch', signal.SIGINT),
    ('] step 10/', signal.SIGTERM),
    ('Saved checkpoint', signal.SIGINT),
    ('Restoring parameters from', signal.SIGTERM),
    ('Evaluation of model.ckpt-20', signal.SIGINT),
], ids=['before_the_first_step', 'training', 'after_a_save', 'during_evaluation',
        'after_evaluation'])
def test_a_signal_at_every_phase_a_log_line_marks_ends_with_its_status(tmp_path, phase, signum):
    model_dir = str(tmp_path / 'run')
    status, output = _signal_when_logged(
        ['--mode=train_and_eval', '--dataset=synthetic', '--model_dir=' + model_dir,
         '--max_steps=100000', '--save_checkpoints_steps=20', '--log_every_n_steps=10'],
        phase, signum)
    assert status == 128 + signum, output[-3000:]
    assert 'Traceback' not in output
    assert 'topped by %s' % signal.Signals(signum).name in output  # "Stopped by", "stopped by"
    # Whatever the phase, the folder is whole: no temporaries left, the newest checkpoint reads
    # back, every history line parses, and the run is recorded as stopped by a signal.
    names = os.listdir(model_dir)
    assert not [n for n in names if temporaries.temp_owner_pid(n) is not None], names
    latest = checkpoints.latest_checkpoint(model_dir)
    if latest:
        assert checkpoints.scan(model_dir).incomplete == {}
    history = os.path.join(model_dir, run_records.EVAL_HISTORY_FILE)
    if os.path.exists(history):
        with open(history) as f:
            assert all(json.loads(line)['global_step'] for line in f)
    with open(os.path.join(model_dir, run_records.RUNS_FILE)) as f:
        assert json.loads(f.readlines()[-1])['ended'] == 'signal'


# Power loss: a checkpoint's files and the folder reach the disk before the state names them.

def test_fsync_before_the_state_file_names_a_checkpoint(tmp_path, source, monkeypatch):
    events = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        events.append(('fsync', os.readlink('/proc/self/fd/%d' % fd)))
        return real_fsync(fd)

    def replace(src, dst):
        events.append(('replace', os.path.abspath(src), os.path.abspath(dst)))
        return real_replace(src, dst)

    monkeypatch.setattr(os, 'fsync', fsync)
    monkeypatch.setattr(os, 'replace', replace)
    model_dir = os.path.realpath(str(tmp_path / 'run'))
    _train(model_dir, source, 5, run_record={'max_steps': 5})

    def position(kind, path):
        return [i for i, e in enumerate(events) if e[0] == kind and e[-1] == path]

    state = os.path.join(model_dir, 'checkpoint')
    state_renamed = position('replace', state)[-1]
    for ext in ('.index', '.meta', '.data-00000-of-00001'):
        final = os.path.join(model_dir, 'model.ckpt-5' + ext)
        (published,) = position('replace', final)
        staged = events[published][1]
        assert position('fsync', staged)[-1] < published  # the file's data first,
        folder_synced = [i for i in position('fsync', model_dir) if i > published]
        assert folder_synced and folder_synced[0] < state_renamed  # its name next, then state
    for name in ('checkpoint', 'flags.json', 'labels.txt'):
        final = os.path.join(model_dir, name)
        renamed = position('replace', final)[-1]
        temporary = events[renamed][1]
        assert position('fsync', temporary) and position('fsync', temporary)[-1] < renamed
        assert [i for i in position('fsync', model_dir) if i > renamed]


# 9. An export over a user's file, a lock file that is not a plain file, a damaged newest
#    checkpoint: each refused or named, nothing replaced.

def test_export_refuses_an_earlier_export_holding_a_users_file(tmp_path):
    export_dir = tmp_path / 'exported'
    (export_dir / 'saved_model' / 'variables').mkdir(parents=True)
    for name in ('size_report.json', 'labels.txt', 'saved_model/saved_model.pb',
                 'saved_model/variables/variables.index'):
        (export_dir / name).write_text('x')
    export.check_export_dir(str(export_dir), str(tmp_path / 'run'))  # an earlier export: fine
    (export_dir / 'saved_model' / 'variables' / 'keep.txt').write_text('mine')
    with pytest.raises(export.ExportTargetError, match='saved_model/variables/keep.txt'):
        export.check_export_dir(str(export_dir), str(tmp_path / 'run'))


@pytest.mark.parametrize('kind', ['symlink', 'fifo', 'folder'])
def test_lock_file_that_is_not_a_plain_file_is_refused(tmp_path, kind):
    from squeezenet_v1.model_dir.claim import ModelDirLockedError, model_dir_lock
    precious = tmp_path / 'precious.txt'
    precious.write_text('my results')
    model_dir = tmp_path / 'run'
    model_dir.mkdir()
    lock = str(model_dir / '.lock')
    {'symlink': lambda: os.symlink(str(precious), lock), 'fifo': lambda: os.mkfifo(lock),
     'folder': lambda: os.mkdir(lock)}[kind]()
    with pytest.raises(ModelDirLockedError, match='lock'):
        with model_dir_lock(str(model_dir)):
            pass
    assert precious.read_text() == 'my results'


def test_readers_name_the_damaged_newest_checkpoint(template, tmp_path, caplog):
    model_dir = _copy(template, tmp_path / 'run')
    _damage(model_dir, 'index missing')
    with caplog.at_level(logging.INFO, logger='absl'):
        assert checkpoints.with_checkpoint(model_dir, checkpoints.num_classes) == 10
    assert '%s is incomplete (no .index file): it is kept as it is and not used; reading ' \
           'model.ckpt-5' % os.path.join(model_dir, 'model.ckpt-10') in _messages(caplog)


# 10. Results first, then files: a model_dir that cannot be written loses no result and gives
#     no traceback; training that has no room refuses before the first step.

@pytest.mark.slow
def test_eval_into_a_read_only_model_dir_says_the_result_then_one_line(template, tmp_path,
                                                                        monkeypatch, caplog):
    model_dir = _copy(template, tmp_path / 'run')
    before = _snapshot(model_dir)

    def read_only(path, *args, **kwargs):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), path)

    monkeypatch.setattr(atomic, 'write_json_atomic', read_only)
    monkeypatch.setattr(atomic, 'append_json_line', read_only)
    with caplog.at_level(logging.INFO, logger='absl'):
        assert run_in_process('--mode=eval', '--dataset=synthetic', '--model_dir=' + model_dir) == 1
    messages = [r.getMessage() for r in caplog.records]
    result = [i for i, m in enumerate(messages) if m.startswith('Evaluation of model.ckpt-10')]
    refusal = [i for i, m in enumerate(messages) if 'the results above were not written into '
               '%s (Read-only file system)' % model_dir in m]
    assert result and refusal and result[0] < refusal[0], messages
    assert _snapshot(model_dir) == before


def test_training_without_room_for_a_checkpoint_refuses_before_writing(tmp_path, monkeypatch,
                                                                        caplog):
    real_statvfs = os.statvfs

    def nearly_full(path):
        stat = real_statvfs(path)
        return os.statvfs_result((stat.f_bsize, stat.f_frsize, stat.f_blocks, 100, 100)
                                 + tuple(stat)[5:])

    monkeypatch.setattr(os, 'statvfs', nearly_full)
    model_dir = tmp_path / 'run'
    assert run_in_process('--dataset=synthetic', '--mode=train', '--model_dir=%s' % model_dir,
                          '--max_steps=5') == 1
    assert 'a checkpoint of this model needs about' in caplog.text
    assert 'nothing was trained' in caplog.text
    assert not model_dir.exists()


# 11. A history belongs to one run.

@pytest.mark.slow
def test_a_run_from_scratch_sets_an_earlier_runs_results_aside(tmp_path, caplog):
    model_dir = tmp_path / 'run'
    model_dir.mkdir()  # an earlier run's results, its checkpoints deleted
    old_line = json.dumps({'global_step': 10, 'accuracy': 0.99, 'flags': {'seed': None}})
    (model_dir / 'eval_history.jsonl').write_text(old_line + '\n')
    (model_dir / 'eval_results.json').write_text(old_line)
    with caplog.at_level(logging.INFO, logger='absl'):
        assert run_in_process('--dataset=synthetic', '--model_dir=%s' % model_dir,
                              '--max_steps=10', '--save_checkpoints_steps=10', '--seed=5') == 0
    history = [json.loads(line) for line in open(str(model_dir / 'eval_history.jsonl'))]
    assert [(h['global_step'], h['flags']['seed']) for h in history] == [(10, 5)]
    assert json.load(open(str(model_dir / 'eval_results.json')))['flags']['seed'] == 5
    aside = sorted(n for n in os.listdir(str(model_dir)) if '.before-' in n)
    assert [n.split('.before-')[0] for n in aside] == ['eval_history.jsonl', 'eval_results.json']
    assert open(str(model_dir / aside[0])).read() == old_line + '\n'
    assert 'was evaluated already' not in caplog.text  # it was, just now, by this run


def test_a_history_line_that_is_not_utf8_counts_as_no_result(tmp_path):
    from squeezenet_v1.evaluation import evaluate
    (tmp_path / 'eval_history.jsonl').write_bytes(
        b'{"global_step": 10, "checkpoint": "model.ckpt-10"}\n\xff\xfe{"global_step": 20}\n')
    assert evaluate.evaluated_steps(str(tmp_path)) == {10}
