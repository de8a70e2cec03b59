"""A cluster of real run_train.py processes on 127.0.0.1: training, its checkpoints, its faults.

Every process is started here, on free ports, bounded in time and stopped by PID in a finally
block. Tiny runs (batch 8, tens of steps) on the synthetic set keep each test to seconds of
training; most of their time is three processes starting TensorFlow on two cores.
"""

import contextlib
import json
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
import tensorflow as tf
from tensorflow.core.protobuf import meta_graph_pb2

from conftest import PROGRESS_LINE, REPO, RUN_TRAIN, train_in_process
from conftest import run_in_process as _run
from squeezenet_v1.model_dir import checkpoints
from squeezenet_v1.cluster import tf_config
from squeezenet_v1.data import datasets
from squeezenet_v1.cluster import placement
from squeezenet_v1.evaluation import evaluate
from squeezenet_v1.deploy import export
from squeezenet_v1.deploy import predict
from squeezenet_v1.model_dir import run_records
from squeezenet_v1.data import synthetic
from squeezenet_v1.training.graph import op_determinism
from squeezenet_v1.cluster import local_cluster
from squeezenet_v1.cluster.local_cluster import cluster_spec, tf_config_json

tf1 = tf.compat.v1

STEP_LINE = re.compile(r'\[(\w+:\d)\] ' + PROGRESS_LINE.pattern)
TOOK = re.compile(r'\[(\w+:\d)\] finished at global_step (\d+): this worker took (\d+) of the '
                  r'steps')
TASKS = ('ps:0', 'worker:0', 'worker:1')


def _flags(model_dir, *extra):
    return ['--dataset=synthetic', '--model_dir=' + model_dir, '--mode=train',
            '--batch_size=8', '--log_every_n_steps=10', '--save_checkpoints_steps=20',
            '--seed=3'] + list(extra)


class _Cluster(object):
    """run_train.py processes of one TF_CONFIG cluster, started and stopped by name."""

    def __init__(self, tmp_path, spec, cache_dir):
        self.tmp_path, self.spec, self.cache_dir = tmp_path, spec, cache_dir
        self.procs, self.logs, self.starts = {}, {}, {}

    def start(self, name, run_flags):
        task_type, index = name.split(':')
        count = self.starts[name] = self.starts.get(name, 0) + 1
        path = str(self.tmp_path / ('%s-%d.log' % (name.replace(':', ''), count)))
        env = dict(os.environ, TF_CONFIG=tf_config_json(self.spec, task_type, int(index)),
                   SQUEEZENET_V1_CACHE_DIR=self.cache_dir)
        with open(path, 'w') as log:
            self.procs[name] = subprocess.Popen([sys.executable, RUN_TRAIN] + run_flags,
                                                cwd=REPO, env=env, stdout=log,
                                                stderr=subprocess.STDOUT)
        self.logs[name] = path

    def log(self, name):
        with open(self.logs[name]) as f:
            return f.read()

    def wait_for(self, name, pattern, timeout=120):
        """Returns the first match of pattern in name's log, or fails naming what it saw."""
        give_up = time.time() + timeout
        while time.time() < give_up:
            match = re.search(pattern, self.log(name))
            if match:
                return match
            assert self.procs[name].poll() is None, '%s exited before %r:\n%s' % (
                name, pattern, self.log(name)[-3000:])
            time.sleep(0.1)
        raise AssertionError('%s did not log %r in %d s:\n%s' % (name, pattern, timeout,
                                                                 self.log(name)[-3000:]))

    def exit_status(self, name, timeout=120):
        try:
            return self.procs[name].wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError('%s still running after %d s:\n%s' % (
                name, timeout, self.log(name)[-3000:]))

    def kill(self, name, signum=signal.SIGKILL):
        self.procs[name].send_signal(signum)
        if signum == signal.SIGKILL:
            self.procs[name].wait(timeout=30)

    def stop_all(self):
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGCONT)
                proc.kill()
        for proc in self.procs.values():
            proc.wait(timeout=30)


@contextlib.contextmanager
def _cluster(tmp_path, workers=2):
    spec = cluster_spec(1, workers, False)
    started = _Cluster(tmp_path, spec, str(tmp_path / 'cache'))
    try:
        yield started
    finally:
        started.stop_all()


def _steps_logged(log, name):
    return [int(m.group(2)) for m in STEP_LINE.finditer(log) if m.group(1) == name]


def _no_traceback(*logs):
    for log in logs:
        assert 'Traceback' not in log, log[-3000:]


@pytest.mark.slow
def test_tf_config_cluster_trains_to_max_steps_and_its_model_dir_serves_one_process(tmp_path):
    model_dir = str(tmp_path / 'run')
    with _cluster(tmp_path) as c:
        for name in TASKS:
            c.start(name, _flags(model_dir, '--max_steps=60'))
        statuses = {name: c.exit_status(name) for name in TASKS}  # all end by themselves
        logs = {name: c.log(name) for name in TASKS}
    assert statuses == {name: 0 for name in TASKS}, logs
    _no_traceback(*logs.values())
    took = {}
    for name in ('worker:0', 'worker:1'):
        assert _steps_logged(logs[name], name), logs[name][-3000:]
        finished = TOOK.search(logs[name])
        assert finished and finished.group(2) == '60', logs[name][-3000:]
        took[name] = int(finished.group(3))
    # Every update counted once: the workers' own steps add up to global_step, none past it.
    assert sum(took.values()) == 60, took
    assert 'worker:1 has finished' in logs['ps:0'] and 'this ps stops' in logs['ps:0']
    latest = checkpoints.latest_checkpoint(model_dir)
    assert latest.endswith('model.ckpt-60') and checkpoints.global_step_stored_in(latest) == 60
    # Only the chief wrote into model_dir: one run recorded, one summary file.
    with open(os.path.join(model_dir, run_records.RUNS_FILE)) as f:
        runs = [json.loads(line) for line in f]
    assert len(runs) == 1 and runs[0]['cluster']['task'] == 'worker:0', runs
    assert runs[0]['global_step_at_end'] == 60 and runs[0]['ended'] == 'finished'
    assert len([n for n in os.listdir(model_dir) if n.startswith('events.out')]) == 1

    # The cluster's checkpoint is a single process's: no device placement in its graph ...
    meta = meta_graph_pb2.MetaGraphDef()
    with open(latest + '.meta', 'rb') as f:
        meta.ParseFromString(f.read())
    assert [n.name for n in meta.graph_def.node if n.device] == []
    with tf.Graph().as_default():
        saver = tf1.train.import_meta_graph(latest + '.meta')
        with tf1.Session() as sess:
            saver.restore(sess, latest)
            assert sess.run(tf1.train.get_global_step()) == 60
    # ... and it evaluates, predicts, exports and resumes in one process (which refuses a
    # checkpoint holding any variable its own graph lacks).
    test = datasets.prepare_split('synthetic', 'test', 'data', str(tmp_path / 'cache'))
    assert evaluate.evaluate(model_dir, test, batch_size=500)['global_step'] == 60
    images = synthetic.make_split('test')[0][:4].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    assert len(predict.classify(model_dir, images, list(synthetic.LABEL_NAMES))) == 4
    export.export(model_dir, str(tmp_path / 'export'), list(synthetic.LABEL_NAMES))
    source = datasets.prepare_split('synthetic', 'train', 'data', str(tmp_path / 'cache'))
    assert train_in_process(model_dir, source, batch_size=8, max_steps=65, seed=3) == 65


def test_one_worker_cluster_computes_what_one_process_computes(tmp_path):
    """Placement changes no number: 1 ps + 1 worker with --seed gives one process's weights."""
    cluster_dir, single_dir = str(tmp_path / 'cluster'), str(tmp_path / 'single')
    with _cluster(tmp_path, workers=1) as c:
        for name in ('ps:0', 'worker:0'):
            c.start(name, _flags(cluster_dir, '--max_steps=20'))
        statuses = {name: c.exit_status(name) for name in ('ps:0', 'worker:0')}
        logs = {name: c.log(name) for name in ('ps:0', 'worker:0')}
    assert statuses == {'ps:0': 0, 'worker:0': 0}, logs
    source = datasets.prepare_split('synthetic', 'train', 'data', str(tmp_path / 'cache'))
    with op_determinism(3):  # what run_train.py does for --seed=3
        train_in_process(single_dir, source, batch_size=8, max_steps=20, seed=3)
    cluster_ckpt = tf1.train.load_checkpoint(checkpoints.latest_checkpoint(cluster_dir))
    single_ckpt = tf1.train.load_checkpoint(checkpoints.latest_checkpoint(single_dir))
    names = sorted(single_ckpt.get_variable_to_shape_map())
    assert sorted(cluster_ckpt.get_variable_to_shape_map()) == names
    for name in names:  # weights, Adam's slots and global_step alike
        np.testing.assert_array_equal(cluster_ckpt.get_tensor(name),
                                      single_ckpt.get_tensor(name), err_msg=name)


@pytest.mark.slow
def test_local_cluster_of_two_ps_a_chief_and_sync_replicas_resumes_one_process(tmp_path):
    model_dir = str(tmp_path / 'run')
    source = datasets.prepare_split('synthetic', 'train', 'data', str(tmp_path / 'cache'))
    assert train_in_process(model_dir, source, batch_size=8, max_steps=10, seed=3) == 10
    env = dict(os.environ, SQUEEZENET_V1_CACHE_DIR=str(tmp_path / 'cache'))
    env.pop('TF_CONFIG', None)
    log_path = str(tmp_path / 'local_cluster.log')
    with open(log_path, 'w') as log:
        launcher = subprocess.Popen(
            # A chief task beside the workers, as Kubeflow's TFJob lays a cluster out, and the
            # variables spread over two ps tasks.
            [sys.executable, '-m', 'squeezenet_v1.cluster.local_cluster', '--ps=2', '--chief',
             '--workers=1', '--']
            + _flags(model_dir, '--mode=train_and_eval', '--max_steps=40', '--sync_replicas'),
            cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        launcher.wait(timeout=180)
    finally:
        _stop_launcher(launcher, log_path)
    with open(log_path) as f:
        output = f.read()
    assert launcher.returncode == 0, output[-5000:]
    _no_traceback(output)
    for name in ('ps:0', 'ps:1', 'chief:0', 'worker:0'):
        assert re.search(r'^%-8s \| ' % name, output, re.M), name  # each line names its task
        assert 'local_cluster: %s exited with status 0' % name in output
    assert 'Resuming from %s' % os.path.join(model_dir, 'model.ckpt-10') in output
    # Each of the 30 steps averaged one gradient of each worker: both took part in all 30.
    took = {m.group(1): int(m.group(3)) for m in TOOK.finditer(output)}
    assert took == {'chief:0': 30, 'worker:0': 30}, output[-5000:]
    assert 'Dropped a gradient' not in output
    with open(os.path.join(model_dir, 'eval_results.json')) as f:
        assert json.load(f)['global_step'] == 40


def _alive(pid):
    try:
        with open('/proc/%d/stat' % pid) as f:
            return f.read().split(')')[-1].split()[0] != 'Z'  # a zombie has ended
    except FileNotFoundError:
        return False


@pytest.mark.slow
@pytest.mark.parametrize('signum', [signal.SIGKILL, signal.SIGHUP])
def test_tasks_end_with_their_launcher_however_it_is_stopped(tmp_path, signum):
    model_dir = str(tmp_path / 'run')
    log_path = str(tmp_path / 'local_cluster.log')
    with open(log_path, 'w') as log:
        launcher = subprocess.Popen(
            [sys.executable, '-m', 'squeezenet_v1.cluster.local_cluster', '--ps=1', '--workers=1',
             '--'] + _flags(model_dir, '--mode=train', '--max_steps=100000'),
            cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
    pids = []
    try:
        give_up = time.time() + 180
        while not re.search(r'\[worker:0\] step \d+/\d+ \(epoch', open(log_path).read()):
            assert launcher.poll() is None and time.time() < give_up, open(log_path).read()[-3000:]
            time.sleep(0.2)
        pids = [int(p) for p in re.findall(r'local_cluster: started \S+ as process (\d+)',
                                           open(log_path).read())]
        assert len(pids) == 2
        launcher.send_signal(signum)  # SIGKILL: no handler of its own can run
        launcher.wait(timeout=60)
        give_up = time.time() + 120
        while any(_alive(pid) for pid in pids) and time.time() < give_up:
            time.sleep(0.2)
        assert not any(_alive(pid) for pid in pids), open(log_path).read()[-3000:]
    finally:
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        _stop_launcher(launcher, log_path)


def _stop_launcher(launcher, log_path):
    """SIGTERM (the launcher stops its tasks); if it must be killed, its tasks are killed too."""
    if launcher.poll() is not None:
        return  # it ended by itself, after its tasks
    launcher.terminate()
    try:
        launcher.wait(timeout=30)
        return
    except subprocess.TimeoutExpired:
        launcher.kill()
        launcher.wait()
    with open(log_path) as f:
        pids = re.findall(r'local_cluster: started \S+ as process (\d+)', f.read())
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(int(pid), signal.SIGKILL)


@pytest.mark.slow
@pytest.mark.fault
def test_killed_workers_rejoin_and_a_killed_chief_resumes_from_its_last_checkpoint(tmp_path):
    model_dir = str(tmp_path / 'run')
    run_flags = _flags(model_dir, '--max_steps=160')
    with _cluster(tmp_path) as c:
        for name in TASKS:
            c.start(name, run_flags)
        c.wait_for('worker:1', r'\[worker:1\] step \d+')
        # A non-chief worker killed and restarted rejoins. The chief is paused meanwhile, so
        # the run cannot end before the restarted worker is back.
        c.kill('worker:0', signal.SIGSTOP)
        c.kill('worker:1')
        c.start('worker:1', run_flags)
        c.wait_for('worker:1', r'\[worker:1\] step \d+')
        c.kill('worker:0', signal.SIGCONT)
        c.wait_for('worker:0', r'Saved checkpoint .*model\.ckpt-(\d+)')
        # The chief killed and restarted resumes from its last checkpoint; the other worker is
        # paused while it restarts, so some steps are left for it.
        c.kill('worker:1', signal.SIGSTOP)
        c.kill('worker:0')
        last = checkpoints.latest_checkpoint(model_dir)
        c.start('worker:0', run_flags)
        c.wait_for('worker:0', r'Resuming from')
        c.kill('worker:1', signal.SIGCONT)
        statuses = {name: c.exit_status(name) for name in TASKS}
        logs = {name: c.log(name) for name in TASKS}
    assert statuses == {name: 0 for name in TASKS}, logs
    _no_traceback(*logs.values())
    assert 'Resuming from %s\n' % last in logs['worker:0'], logs['worker:0'][-3000:]
    resumed_steps = _steps_logged(logs['worker:0'], 'worker:0')
    assert resumed_steps and min(resumed_steps) > checkpoints.step_in_name(last)
    assert _steps_logged(logs['worker:1'], 'worker:1'), logs['worker:1'][-3000:]
    final = checkpoints.latest_checkpoint(model_dir)
    assert final.endswith('model.ckpt-160') and checkpoints.global_step_stored_in(final) == 160


@pytest.mark.slow
@pytest.mark.fault
def test_sync_replicas_wait_for_a_restarted_worker_and_a_restarted_chief(tmp_path):
    model_dir = str(tmp_path / 'run')
    run_flags = _flags(model_dir, '--max_steps=80', '--sync_replicas')
    with _cluster(tmp_path) as c:
        for name in TASKS:
            c.start(name, run_flags)
        c.wait_for('worker:1', r'\[worker:1\] step \d+')
        # Every step needs worker:1's gradient: the chief waits for it to come back.
        c.kill('worker:1')
        c.start('worker:1', run_flags)
        c.wait_for('worker:1', r'\[worker:1\] step \d+')
        c.wait_for('worker:0', r'Saved checkpoint')
        # Restarted, the chief restores its last checkpoint and hands worker:1 that step.
        c.kill('worker:0')
        last = checkpoints.latest_checkpoint(model_dir)
        c.start('worker:0', run_flags)
        statuses = {name: c.exit_status(name) for name in TASKS}
        logs = {name: c.log(name) for name in TASKS}
    assert statuses == {name: 0 for name in TASKS}, logs
    _no_traceback(*logs.values())
    assert 'Resuming from %s\n' % last in logs['worker:0'], logs['worker:0'][-3000:]
    # The restarted chief's steps, each of both workers: all of them from the checkpoint on.
    took = {m.group(1): int(m.group(3)) for name in ('worker:0', 'worker:1')
            for m in TOOK.finditer(logs[name])}
    assert took['worker:0'] == 80 - checkpoints.step_in_name(last), (took, last)
    assert took['worker:1'] >= took['worker:0'], took
    final = checkpoints.latest_checkpoint(model_dir)
    assert final.endswith('model.ckpt-80') and checkpoints.global_step_stored_in(final) == 80


@pytest.mark.slow
@pytest.mark.parametrize('chief_flags, worker_flags, differences', [
    (['--sync_replicas'], [], ['--sync_replicas=False (the chief\'s: True)']),
    ([], ['--max_steps=400', '--batch_size=4'],
     ['--batch_size=4 (the chief\'s: 8)', '--max_steps=400 (the chief\'s: 60)']),
], ids=['sync_replicas', 'max_steps_and_batch_size'])
def test_a_worker_with_other_flags_stops_every_task_naming_the_difference(
        tmp_path, chief_flags, worker_flags, differences):
    model_dir = str(tmp_path / 'run')
    with _cluster(tmp_path) as c:
        c.start('ps:0', _flags(model_dir, '--max_steps=60'))
        c.start('worker:0', _flags(model_dir, '--max_steps=60', *chief_flags))
        c.start('worker:1', _flags(model_dir, '--max_steps=60', *worker_flags))
        # Bounded by the tasks' own waits: each ends within seconds of the refusal.
        statuses = {name: c.exit_status(name, timeout=120) for name in TASKS}
        logs = {name: c.log(name) for name in TASKS}
    assert statuses == {name: 1 for name in TASKS}, logs
    _no_traceback(*logs.values())
    refusal = ('worker:1 refuses to train: its flags differ from the chief\'s (worker:0): %s. '
               'Start every task of the cluster with the same flags.' % ', '.join(differences))
    for name in TASKS:
        errors = [line for line in logs[name].splitlines() if line.startswith('E1')]
        assert len(errors) == 1 and refusal in errors[0], (name, logs[name][-3000:])
    # worker:1 never stepped, so nothing passed the chief's --max_steps.
    assert not _steps_logged(logs['worker:1'], 'worker:1')
    latest = checkpoints.latest_checkpoint(model_dir)
    assert latest is None or checkpoints.global_step_stored_in(latest) <= 60


@pytest.mark.slow
@pytest.mark.fault
def test_killed_ps_stops_the_workers_naming_it_and_the_restarted_cluster_resumes(tmp_path):
    model_dir = str(tmp_path / 'run')
    with _cluster(tmp_path) as c:
        for name in TASKS:
            c.start(name, _flags(model_dir, '--max_steps=100000', '--save_checkpoints_steps=10'))
        c.wait_for('worker:0', r'Saved checkpoint')
        c.wait_for('worker:1', r'\[worker:1\] step \d+')
        c.kill('ps:0')
        for name in ('worker:0', 'worker:1'):
            assert c.exit_status(name, timeout=60) == 1, c.log(name)[-3000:]
            log = c.log(name)
            assert '[%s] lost ps:0 at %s' % (name, c.spec['ps'][0]) in log, log[-3000:]
            _no_traceback(log)
        last = checkpoints.latest_checkpoint(model_dir)
        final = checkpoints.step_in_name(last) + 30
        for name in TASKS:
            c.start(name, _flags(model_dir, '--max_steps=%d' % final))
        statuses = {name: c.exit_status(name) for name in TASKS}
        logs = {name: c.log(name) for name in TASKS}
    assert statuses == {name: 0 for name in TASKS}, logs
    assert 'Resuming from %s\n' % last in logs['worker:0'], logs['worker:0'][-3000:]
    assert checkpoints.global_step_stored_in(checkpoints.latest_checkpoint(model_dir)) == final
    # Checkpoints are named by the step they hold, so the resumed run took exactly the rest.
    took = [int(m.group(3)) for name in ('worker:0', 'worker:1')
            for m in TOOK.finditer(logs[name])]
    assert sum(took) == final - checkpoints.step_in_name(last), took


# TF_CONFIG refused before any work, through the runner as run_train.py calls it.



def _tf_config(cluster_spec_, task_type='worker', index=0):
    return json.dumps({'cluster': cluster_spec_, 'task': {'type': task_type, 'index': index}})


def test_bad_tf_config_and_a_port_in_use_are_refused_before_any_work(tmp_path, monkeypatch,
                                                                     caplog):
    monkeypatch.setenv(datasets.CACHE_DIR_ENV, str(tmp_path / 'cache'))
    model_dir = str(tmp_path / 'run')
    busy = socket.socket()
    busy.bind(('127.0.0.1', 0))
    busy.listen()
    busy_address = '127.0.0.1:%d' % busy.getsockname()[1]
    spec = cluster_spec(1, 2, False)
    cases = [
        ('{"cluster": {"ps": ["a:1"]', 'TF_CONFIG is not valid JSON'),
        (_tf_config(spec, 'worker', 2), 'TF_CONFIG task {"type": "worker", "index": 2} is not '
                                        'in its cluster (ps has 1 (indices 0-0), worker has 2'),
        (_tf_config(spec, 'chief', 0), 'TF_CONFIG task {"type": "chief", "index": 0} is not in '
                                       'its cluster'),
        (_tf_config(dict(spec, worker=[busy_address, spec['worker'][1]])),
         'port %s of worker:0 (%s in TF_CONFIG) is in use by another process'
         % (busy_address.split(':')[1], busy_address)),
    ]
    try:
        for text, message in cases:
            monkeypatch.setenv('TF_CONFIG', text)
            caplog.clear()
            with caplog.at_level(logging.INFO, logger='absl'):
                assert _run('--dataset=synthetic', '--mode=train', '--model_dir=' + model_dir,
                            '--max_steps=1') == 1, text
            assert message in caplog.text, caplog.text
            errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
            assert len(errors) == 1 and '\n' not in errors[0].getMessage()
            # Refused before anything was written or the data prepared.
            assert not os.path.exists(model_dir) and not (tmp_path / 'cache').exists()
    finally:
        busy.close()


@pytest.mark.parametrize('text, message', [
    ('[]', 'must be a JSON object'),
    ('{"cluster": {"ps": ["h:1"], "worker": ["h:2"]}}', 'has no "task"'),
    ('{"cluster": {"worker": ["h:1", "h:2"]}, "task": {"type": "worker", "index": 0}}',
     'no "ps" job'),
    ('{"cluster": {"ps": ["h:1"], "worker": ["h:2"], "evaluator": ["h:3"]}, '
     '"task": {"type": "worker", "index": 0}}', '"evaluator" job'),
    ('{"cluster": {"ps": ["h:1"], "worker": ["h:1"]}, "task": {"type": "ps", "index": 0}}',
     'gives h:1 to both ps:0 and worker:0'),
    ('{"cluster": {"ps": ["h:99999"], "worker": ["h:2"]}, "task": {"type": "ps", "index": 0}}',
     'address "h:99999" of ps:0 is not "host:port"'),
    ('{"cluster": {"ps": ["h:1"], "worker": ["h:2"]}, "task": {"type": "ps", "index": true}}',
     'index true is not a non-negative integer'),
    ('{"cluster": {"ps": ["h:1"], "worker": ["h:2"]}, "tasks": {}}', 'unknown keys "tasks"'),
    ('{"cluster": {"ps": ["h:1"], "worker": "h:2"}, "task": {"type": "ps"}}',
     'must be a list of "host:port" strings'),
    ('{"cluster": {"ps": ["h:1"], "worker": ["h:2"]}, "task": {"type": ["worker"]}}',
     'task type ["worker"] is not a job name'),
    ('{"cluster": {"ps": ["localhost:23022"], "worker": ["127.0.0.1:23022"]}, '
     '"task": {"type": "ps"}}', 'gives 127.0.0.1:23022 (as localhost:23022) to both ps:0 and '
     'worker:0'),
    ('{"cluster": {"ps": ["[::1]:5"], "worker": ["LOCALHOST:5"]}, "task": {"type": "ps"}}',
     'to both ps:0 and worker:0'),
])
def test_malformed_tf_config_names_the_problem(text, message):
    with pytest.raises(tf_config.ClusterConfigError, match=re.escape(message)):
        tf_config.parse(text)


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 70000) | st.floats() | st.text(max_size=12)
    | st.sampled_from(['ps', 'worker', 'chief', 'evaluator', 'h:1', 'localhost:2',
                       '127.0.0.1:2', '[::1]:2', 'h:0', ':1', 'h:x']),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
        st.sampled_from(['cluster', 'task', 'type', 'index', 'ps', 'worker', 'chief',
                         'environment', 'rpc_layer', 'x']), inner, max_size=4),
    max_leaves=12)


@settings(max_examples=400, deadline=None)
@given(config=_JSON)
def test_tf_config_of_any_json_shape_is_a_task_none_or_one_line(config):
    try:
        task = tf_config.parse(json.dumps(config))
    except tf_config.ClusterConfigError as e:
        assert '\n' not in str(e) and str(e).startswith('TF_CONFIG'), str(e)
    else:
        assert task is None or task.name in task.worker_names + [
            'ps:%d' % i for i in range(len(task.cluster.get('ps', [])))]


def test_no_cluster_or_a_one_process_cluster_changes_nothing():
    assert tf_config.parse('') is None and tf_config.parse('  ') is None
    assert tf_config.parse('{"cluster": {"worker": ["localhost:2222"]}, '
                         '"task": {"type": "worker", "index": 0}, "environment": "cloud"}') is None
    task = tf_config.parse('{"cluster": {"chief": ["h:1"], "worker": ["h:2", "h:3"], '
                         '"ps": ["h:4"]}, "task": {"type": "worker", "index": 0}}')
    assert task.name == 'worker:0' and not task.is_chief and task.chief_name == 'chief:0'
    assert task.worker_names == ['chief:0', 'worker:0', 'worker:1'] and task.worker_number == 1


@pytest.mark.parametrize('argv, message', [
    (['--ps=0', '--', '--mode=train'], 'flag --ps=0: 0 is not a positive integer'),
    (['--workers=0', '--', '--mode=train'], '--workers must be at least 1 (0 with --chief)'),
    (['--grace_secs=-1', '--', '--mode=train'], '-1.0 is not a non-negative number'),
    (['stray', '--', '--mode=train'], 'unexpected arguments: stray'),
    (['--', '--mode=eval'], '--mode=eval: a cluster trains'),
    (['--', '--mode', 'predict'], 'give run_train.py\'s mode as --mode=VALUE'),
])
def test_local_cluster_refuses_what_a_cluster_cannot_run(argv, message, capsys):
    assert local_cluster.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith('python -m squeezenet_v1.cluster.local_cluster: error: '), err
    assert message in err, err


def test_local_cluster_gives_every_task_its_own_free_port():
    spec = cluster_spec(2, 3, True)
    addresses = [a for job in ('ps', 'worker', 'chief') for a in spec[job]]
    assert [len(spec['ps']), len(spec['worker']), len(spec['chief'])] == [2, 3, 1]
    assert len(set(addresses)) == 6 and all(a.startswith('127.0.0.1:') for a in addresses)
    task = tf_config.parse(tf_config_json(spec, 'chief', 0))
    assert task.is_chief and task.worker_names == ['chief:0', 'worker:0', 'worker:1', 'worker:2']


def test_the_weights_spread_evenly_over_the_ps_tasks():
    """By size, not by count: round-robin put 99% of them on one of 2 ps tasks."""
    for num_ps, busiest in ((1, 1.0), (2, 0.51), (3, 0.34), (4, 0.26), (6, 0.26)):
        shares = placement.planned_weight_shares(num_ps)
        assert len(shares) == num_ps and abs(sum(shares) - 1) < 1e-9
        assert max(shares) <= busiest, (num_ps, shares)
