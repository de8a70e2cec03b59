"""Starts a cluster of run_train.py processes on this machine, to try the distributed runtime.

    python -m squeezenet_v1.cluster.local_cluster --ps=1 --workers=2 -- --dataset=synthetic \\
        --model_dir=/tmp/squeezenet_cluster --max_steps=600

Each task gets its TF_CONFIG on 127.0.0.1 with a free port and the same run_train.py flags
(those after `--`). Every line a task prints is shown prefixed with its name (`worker:1 | `).
Worker 0 is the chief (with --chief, a separate chief task is). The launcher exits with the
chief's status once every task has ended; the ps tasks and the other workers end by themselves
when training is done, and any still running --grace_secs after the chief are stopped (SIGTERM,
then SIGKILL), named in a warning. Ctrl-C or SIGTERM is passed on to every task (the chief saves
a checkpoint) and the launcher exits with the chief's status; SIGHUP (its terminal closed) is
passed on as SIGTERM. Killed itself (SIGKILL), the launcher cannot pass anything on: on Linux
the kernel sends every task SIGTERM when it dies.
"""

import ctypes
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time

from absl import flags

from squeezenet_v1 import command_line
from squeezenet_v1.cluster import tf_config

_TRAINING_MODES = ('train', 'train_and_eval')
_KILL_AFTER_TERM_SECS = 15


COMMAND = command_line.Command(
    'squeezenet_v1.cluster.local_cluster',
    '[--ps=N] [--workers=N] [--chief] [--grace_secs=S] -- RUN_TRAIN_FLAGS',
    'Runs run_train.py as a cluster of ps tasks and workers on this machine, each with the '
    'run_train.py flags given after --.')
flags.DEFINE_integer('ps', 1, 'Parameter server tasks.', lower_bound=1,
                     flag_values=COMMAND.flags)
flags.DEFINE_integer('workers', 2, 'Worker tasks; worker 0 is the chief unless --chief.',
                     lower_bound=0, flag_values=COMMAND.flags)
flags.DEFINE_bool('chief', False, 'Add a separate "chief" task, as Kubeflow\'s TFJob does.',
                  flag_values=COMMAND.flags)
flags.DEFINE_float('grace_secs', 60, 'How long tasks may run on after the chief has ended.',
                   lower_bound=0, flag_values=COMMAND.flags)
flags.register_multi_flags_validator(
    ['workers', 'chief'], lambda f: f['workers'] >= (0 if f['chief'] else 1),
    message='--workers must be at least 1 (0 with --chief): some task must train.',
    flag_values=COMMAND.flags)


def _parse(args):
    """(this command's parsed flags, run_train.py's flags); UsageError when they cannot run."""
    own, run_train_flags = args, []
    if '--' in args:
        own, run_train_flags = args[:args.index('--')], args[args.index('--') + 1:]
    if COMMAND.parse(own) is None:
        return None, None
    modes = [f.split('=', 1)[1] for f in run_train_flags if f.startswith('--mode=')]
    if any(mode not in _TRAINING_MODES for mode in modes):
        raise command_line.UsageError(
            '--mode=%s: a cluster trains; use --mode=train or train_and_eval, and evaluate, '
            'predict or export in one process afterwards' % modes[-1])
    if any(f.startswith('--mode') and '=' not in f for f in run_train_flags):
        raise command_line.UsageError('give run_train.py\'s mode as --mode=VALUE')
    return COMMAND.flags, run_train_flags


def free_ports(count, host='127.0.0.1'):
    """`count` different ports on host that nothing listens on now."""
    sockets = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((host, 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def cluster_spec(num_ps, num_workers, with_chief, host='127.0.0.1'):
    """{'ps': [...], 'worker': [...](, 'chief': [...])} on host with free ports."""
    ports = iter(free_ports(num_ps + num_workers + (1 if with_chief else 0), host))
    spec = {'ps': ['%s:%d' % (host, next(ports)) for _ in range(num_ps)],
            'worker': ['%s:%d' % (host, next(ports)) for _ in range(num_workers)]}
    if with_chief:
        spec['chief'] = ['%s:%d' % (host, next(ports))]
    return {job: addresses for job, addresses in spec.items() if addresses}


def tf_config_json(spec, task_type, index):
    return json.dumps({'cluster': spec, 'task': {'type': task_type, 'index': index}})


class _Task(object):
    """One run_train.py process of the cluster, its output copied line by line with a prefix."""

    def __init__(self, name, spec, run_train_flags, lock, width):
        task_type, index = name.split(':')
        env = dict(os.environ, **{tf_config.TF_CONFIG: tf_config_json(spec, task_type, int(index))})
        self.name = name
        # Its own session: a Ctrl-C in the terminal reaches the launcher, which passes it on
        # once, instead of reaching every task at the same time as well.
        self.proc = subprocess.Popen(
            [sys.executable, '-m', 'run_train'] + list(run_train_flags), env=env,
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            start_new_session=True, preexec_fn=_stop_with(os.getpid()))
        prefix = ('%-*s | ' % (width, name)).encode()
        self._copier = threading.Thread(target=self._copy, args=(prefix, lock), daemon=True)
        self._copier.start()

    def _copy(self, prefix, lock):
        out = sys.stdout.buffer
        for line in self.proc.stdout:
            with lock:
                out.write(prefix + line if line.endswith(b'\n') else prefix + line + b'\n')
                out.flush()

    def finish_output(self):
        self._copier.join(timeout=5)


_PR_SET_PDEATHSIG = 1  # linux/prctl.h


def _stop_with(launcher_pid):
    """A child's preexec_fn: SIGTERM when the launcher dies, however it dies (SIGKILL too).

    The chief then saves a checkpoint and every task ends, instead of training on unseen with
    parent 1. Linux only (prctl); elsewhere the launcher's own handlers are all there is.
    """
    def set_parent_death_signal():
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
        except (OSError, AttributeError):
            return
        if os.getppid() != launcher_pid:  # it died before the line above
            os.kill(os.getpid(), signal.SIGTERM)
    return set_parent_death_signal


def run(args, run_train_flags):
    """Runs the cluster; returns the chief's exit status (128 + signal when it was stopped)."""
    spec = cluster_spec(args.ps, args.workers, args.chief)
    names = (['ps:%d' % i for i in range(args.ps)]
             + (['chief:0'] if args.chief else [])
             + ['worker:%d' % i for i in range(args.workers)])
    chief_name = 'chief:0' if args.chief else 'worker:0'
    lock = threading.Lock()
    width = max(len(n) for n in names)
    _say(lock, 'local_cluster: %s' % json.dumps(spec))
    received = []

    def forward(signum, frame):
        received.append(signum)
        for task in tasks:
            if task.proc.poll() is None:  # a closed terminal (SIGHUP) stops them as SIGTERM does
                task.proc.send_signal(signal.SIGTERM if signum == signal.SIGHUP else signum)

    tasks = []
    previous = {s: signal.signal(s, forward)
                for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    try:
        for name in names:
            tasks.append(_Task(name, spec, run_train_flags, lock, width))
            _say(lock, 'local_cluster: started %s as process %d' % (name, tasks[-1].proc.pid))
        chief = next(t for t in tasks if t.name == chief_name)
        reported = set()
        while chief.proc.poll() is None:
            _report_exits(tasks, reported, lock)
            time.sleep(0.2)
        # A failed chief leaves the others nothing to finish (the ps tasks wait for it).
        give_up = time.time() + (args.grace_secs if chief.proc.returncode == 0 else 0)
        while any(t.proc.poll() is None for t in tasks) and time.time() < give_up:
            _report_exits(tasks, reported, lock)
            time.sleep(0.2)
        _report_exits(tasks, reported, lock)
        left = [t for t in tasks if t.proc.poll() is None]
        if left:
            _say(lock, 'local_cluster: %s still running %s after the chief ended: stopping '
                 'them.' % (', '.join(t.name for t in left), '%g s' % args.grace_secs
                            if chief.proc.returncode == 0 else 'when it failed'))
        return chief.proc.returncode
    finally:
        _stop(tasks)
        for task in tasks:
            task.finish_output()
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _report_exits(tasks, reported, lock):
    for task in tasks:
        if task.name not in reported and task.proc.poll() is not None:
            reported.add(task.name)
            _say(lock, 'local_cluster: %s exited with status %d' % (task.name,
                                                                    task.proc.returncode))


def _stop(tasks):
    """SIGTERM to every task still running, SIGKILL to any left after a while; waits for all."""
    for task in tasks:
        if task.proc.poll() is None:
            task.proc.terminate()
    give_up = time.time() + _KILL_AFTER_TERM_SECS
    for task in tasks:
        try:
            task.proc.wait(timeout=max(0.1, give_up - time.time()))
        except subprocess.TimeoutExpired:
            task.proc.kill()
            task.proc.wait()


def _say(lock, text):
    with lock:
        sys.stdout.write(text + '\n')
        sys.stdout.flush()


def main(args=None):
    """The command line (`args` without the program name); returns the exit status."""
    try:
        own_flags, run_train_flags = _parse(sys.argv[1:] if args is None else args)
    except command_line.UsageError as e:
        return COMMAND.usage_error(e)
    if own_flags is None:
        return 0  # --help was printed
    status = run(own_flags, run_train_flags)
    return status if status >= 0 else 128 - status  # killed by a signal: as a shell reports it


if __name__ == '__main__':
    sys.exit(main())
