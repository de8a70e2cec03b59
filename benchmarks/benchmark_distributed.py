"""Training on TensorFlow's gRPC runtime: images/s of 1 and 2 workers, and what a step sends.

    python benchmarks/benchmark_distributed.py [--output=benchmarks/results_distributed.json]

Runs run_train.py as real processes on 127.0.0.1 (one ps, TF_CONFIG per task, the synthetic
set, batch 32): one process without a cluster, then 1 ps + 1 worker, 1 ps + 2 workers
asynchronous, and 1 ps + 2 workers with --sync_replicas. The throughput of a run is taken from
the chief's log lines past a warm-up: images trained between two lines over the time between
them (in sync mode a step is one batch from every worker).

The bytes a worker exchanges with the ps are measured twice: counted from the variables (every
step reads every weight from the ps and sends it a gradient of the same size), and read from
the kernel's TCP counters (`ss -ti`, bytes_acked + bytes_received of the worker's sockets to
and from the ps) between two log lines of each run. From those bytes it predicts what one
ps's 10 Gb/s link allows for 8 and 64 workers, each as fast as one process on this machine:
every worker step moves those bytes through the ps, so the ps passes at most link / bytes steps
a second, whatever the number of workers; more ps tasks share the load, but variables are
placed whole, so the ps holding the largest carries at least its share.

This machine has 2 CPU cores, shared by the ps and every worker: a second worker takes cores
from the first, so these runs cannot show scaling, only the cost of the runtime and of
synchronisation. Its load average (it is shared) is recorded with the results.
"""

import datetime
import json
import os
import re
import subprocess
import sys
import tempfile
import time

from absl import app
from absl import flags

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

from squeezenet_v1 import machine
from squeezenet_v1.cluster import placement  # noqa: E402
from squeezenet_v1 import parameters  # noqa: E402
from squeezenet_v1.cluster.local_cluster import cluster_spec, tf_config_json  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_integer('batch_size', 32, 'Images per step and worker.')
flags.DEFINE_integer('steps', 300, 'global_step to train to in each run (sync: 200).')
flags.DEFINE_integer('warmup_steps', 100, 'Steps left out of the throughput (sync: 50).')
flags.DEFINE_string('output', os.path.join(REPO, 'benchmarks', 'results_distributed.json'),
                    'Where to write the JSON results.')

RUN_TRAIN = os.path.join(REPO, 'run_train.py')
_LOG_TIME = re.compile(r'^[IWE]\d{4} (\d\d):(\d\d):(\d\d\.\d+) ')
_STEP_LINE = re.compile(r'step (\d+)/\d+ \(epoch')
_LINK_BYTES_PER_SEC = 10e9 / 8  # 10 Gb/s
_RUN_TIMEOUT_SECS = 300
_MAX_PS = 8  # ps task counts the prediction considers


def _seconds(line):
    h, m, s = _LOG_TIME.match(line).groups()
    return int(h) * 3600 + int(m) * 60 + float(s)


def _step_lines(path):
    """[(seconds of day, global_step)] of the tutorial's lines in a log."""
    with open(path) as f:
        return [(_seconds(line), int(_STEP_LINE.search(line).group(1)))
                for line in f if _STEP_LINE.search(line) and _LOG_TIME.match(line)]


def _tcp_bytes(pid, peer_pid):
    """Bytes sent and received on pid's TCP sockets whose other end belongs to peer_pid."""
    out = subprocess.run(['ss', '-tinpH'], capture_output=True, text=True, check=True).stdout
    sockets, current = [], None
    for line in out.splitlines():
        if not line.startswith((' ', '\t')):
            fields = line.split()
            owner = re.search(r'pid=(\d+)', line)
            current = {'local': fields[3], 'peer': fields[4],
                       'pid': int(owner.group(1)) if owner else None}
            sockets.append(current)
        elif current is not None:
            for key in ('bytes_acked', 'bytes_received'):
                found = re.search(r'\b%s:(\d+)' % key, line)
                current[key] = int(found.group(1)) if found else 0
    peer_ends = {s['local'] for s in sockets if s['pid'] == peer_pid}
    return sum(s.get('bytes_acked', 0) + s.get('bytes_received', 0)
               for s in sockets if s['pid'] == pid and s['peer'] in peer_ends)


def _run(name, workers, sync, steps, warmup, workdir):
    """One run; returns its figures, and the bytes a worker exchanged per step if measured."""
    model_dir = os.path.join(workdir, name)
    run_flags = ['--dataset=synthetic', '--mode=train', '--model_dir=' + model_dir,
                 '--batch_size=%d' % FLAGS.batch_size, '--max_steps=%d' % steps,
                 '--log_every_n_steps=10', '--save_checkpoints_steps=100000',
                 '--save_summary_steps=100000'] + (['--sync_replicas'] if sync else [])
    env = dict(os.environ)
    env.pop('TF_CONFIG', None)
    tasks = ['single'] if not workers else ['ps:0'] + ['worker:%d' % i for i in range(workers)]
    spec = cluster_spec(1, workers, False) if workers else None
    procs, logs = {}, {}
    try:
        for task in tasks:
            if spec:
                job, index = task.split(':')
                env['TF_CONFIG'] = tf_config_json(spec, job, int(index))
            logs[task] = os.path.join(workdir, '%s-%s.log' % (name, task.replace(':', '')))
            with open(logs[task], 'w') as log:
                procs[task] = subprocess.Popen([sys.executable, RUN_TRAIN] + run_flags,
                                               cwd=REPO, env=env, stdout=log,
                                               stderr=subprocess.STDOUT)
        chief = tasks[1] if workers else 'single'
        measured = _measure_bytes(procs, logs[chief], chief, warmup, steps) if workers else None
        for task in tasks:
            status = procs[task].wait(timeout=_RUN_TIMEOUT_SECS)
            if status != 0:
                with open(logs[task]) as f:
                    raise RuntimeError('%s of %s exited with %d:\n%s'
                                       % (task, name, status, f.read()[-3000:]))
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    lines = [(t, s) for t, s in _step_lines(logs[chief]) if s >= warmup]
    (t1, s1), (t2, s2) = lines[0], lines[-1]
    batches_per_step = workers if sync else 1
    images_per_sec = (s2 - s1) * FLAGS.batch_size * batches_per_step / (t2 - t1)
    result = {'workers': workers, 'sync': sync, 'images_per_sec': round(images_per_sec, 1),
              'images_per_sec_per_worker': round(images_per_sec / max(workers, 1), 1),
              'timed_steps': s2 - s1, 'timed_secs': round(t2 - t1, 2)}
    if measured:
        result.update(measured)
    return result


def _measure_bytes(procs, chief_log, chief, warmup, steps):
    """TCP bytes between each worker and the ps per global step, between two chief log lines."""
    marks = (warmup, warmup + (steps - warmup) // 2)
    samples = []
    give_up = time.time() + _RUN_TIMEOUT_SECS
    while len(samples) < len(marks) and time.time() < give_up:
        lines = [s for _, s in _step_lines(chief_log) if s >= marks[len(samples)]]
        if lines:
            counts = {task: _tcp_bytes(proc.pid, procs['ps:0'].pid)
                      for task, proc in procs.items() if task.startswith('worker')}
            samples.append((lines[0], counts))
        elif procs[chief].poll() is not None:
            return None
        time.sleep(0.02)
    if len(samples) < 2:
        return None
    (step1, bytes1), (step2, bytes2) = samples
    return {'measured_bytes_per_step': {task: round((bytes2[task] - bytes1[task])
                                                    / (step2 - step1))
                                        for task in bytes1},
            'measured_between_steps': [step1, step2]}


def _predictions(bytes_per_step, images_per_sec_per_worker):
    """What ps links of 10 Gb/s allow 8 and 64 workers of images_per_sec_per_worker each.

    Every worker step moves bytes_per_step through the ps tasks, each its share of the weights
    (cluster/placement.py plans them by size; the largest variable is placed whole).
    """
    steps_per_sec = _LINK_BYTES_PER_SEC / bytes_per_step  # every worker's steps, together
    busiest = {n: max(placement.planned_weight_shares(n)) for n in range(1, _MAX_PS + 1)}
    rows = {}
    for workers in (8, 64):
        wanted = workers * images_per_sec_per_worker
        load = wanted / FLAGS.batch_size * bytes_per_step / _LINK_BYTES_PER_SEC
        enough = [n for n in sorted(busiest) if load * busiest[n] <= 1]
        rows[str(workers)] = {
            'images_per_sec_wanted': round(wanted),
            'link_load_one_ps': round(load, 2),
            'images_per_sec_one_ps': round(min(wanted, steps_per_sec * FLAGS.batch_size)),
            'ps_tasks_needed': enough[0] if enough else None,
        }
    return {'link_gbit_per_sec': 10, 'steps_per_sec_through_one_ps': round(steps_per_sec),
            'busiest_ps_share': {str(n): round(share, 3) for n, share in busiest.items()},
            'images_per_sec_cap_any_number_of_ps': round(
                steps_per_sec / min(busiest.values()) * FLAGS.batch_size),
            'workers': rows}


def main(argv):
    del argv
    started, load_before = time.time(), os.getloadavg()
    report = parameters.model_parameter_report()
    weights_bytes = report['float32_bytes']
    largest = max(layer['count'] for layer in report['layers']) * parameters.FLOAT32_BYTES
    counted = 2 * weights_bytes  # every weight read, every gradient sent, each step
    runs = {}
    with tempfile.TemporaryDirectory(prefix='benchmark_distributed_') as workdir:
        for name, workers, sync, steps, warmup in (
                ('single_process', 0, False, FLAGS.steps, FLAGS.warmup_steps),
                ('1_worker_async', 1, False, FLAGS.steps, FLAGS.warmup_steps),
                ('2_workers_async', 2, False, FLAGS.steps, FLAGS.warmup_steps),
                ('2_workers_sync', 2, True, FLAGS.steps * 2 // 3, FLAGS.warmup_steps // 2)):
            print('running %s ...' % name, flush=True)
            runs[name] = _run(name, workers, sync, steps, warmup, workdir)
    measured = (runs['1_worker_async'].get('measured_bytes_per_step') or {}).get('worker:0')
    # A worker with a machine like this one to itself trains as fast as one process here.
    per_worker = runs['single_process']['images_per_sec']
    results = {
        'date': datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M UTC'),
        'machine': '%s, %d cores, TensorFlow %s' % (machine.cpu_model(), os.cpu_count(),
                                                     machine.versions()['tensorflow']),
        'batch_size': FLAGS.batch_size,
        'runs': runs,
        'weights_float32_bytes': weights_bytes,
        'counted_bytes_per_step_per_worker': counted,
        'measured_bytes_per_step_per_worker': measured,
        'largest_variable_bytes': largest,
        'predictions': dict(_predictions(measured or counted, per_worker),
                            worker_images_per_sec=per_worker),
        'seconds': round(time.time() - started),
        # The machine is shared: its 1-minute load average around the runs, for reading them.
        'load_average_before_after': [round(load_before[0], 1), round(os.getloadavg()[0], 1)],
    }
    with open(FLAGS.output, 'w') as f:
        json.dump(results, f, indent=2, sort_keys=True)
        f.write('\n')
    print(_table(results))


def _table(results):
    lines = ['%s; batch %d per worker; 2 cores cannot show scaling (every process shares '
             'them); load average %s before, %s after'
             % ((results['machine'], results['batch_size']) + tuple(
                 results['load_average_before_after'])), '',
             '  run                 images/s   per worker']
    for name, run in results['runs'].items():
        lines.append('  %-18s %9.1f  %11.1f' % (name, run['images_per_sec'],
                                                 run['images_per_sec_per_worker']))
    lines += ['', '  bytes a worker exchanges with the ps per step: %s counted (2 x %s float32 '
              'weights), %s measured (TCP)' % (
                  '{:,}'.format(results['counted_bytes_per_step_per_worker']),
                  '{:,}'.format(results['weights_float32_bytes']),
                  '{:,}'.format(results['measured_bytes_per_step_per_worker'] or 0))]
    p = results['predictions']
    lines.append('  one ps on a 10 Gb/s link passes %s steps/s of all workers together'
                 % '{:,}'.format(p['steps_per_sec_through_one_ps']))
    for workers, row in p['workers'].items():
        lines.append('  %2s workers at %s images/s each want %s images/s: %.0f%% of one ps\'s '
                     'link, so %s images/s through one ps; %s'
                     % (workers, '{:,}'.format(round(p['worker_images_per_sec'])),
                        '{:,}'.format(row['images_per_sec_wanted']),
                        100 * row['link_load_one_ps'],
                        '{:,}'.format(row['images_per_sec_one_ps']),
                        ('%d ps tasks carry it' if row['ps_tasks_needed'] > 1
                         else '%d ps task carries it') % row['ps_tasks_needed']
                        if row['ps_tasks_needed'] else
                        'no number of ps tasks carries it'))
    lines.append('  variables are placed whole: the busiest ps holds %s of the weights with '
                 '1-%d ps tasks, so they pass at most %s images/s'
                 % ('/'.join('%.0f%%' % (100 * v) for v in p['busiest_ps_share'].values()),
                    len(p['busiest_ps_share']),
                    '{:,}'.format(p['images_per_sec_cap_any_number_of_ps'])))
    return '\n'.join(lines)


if __name__ == '__main__':
    app.run(main)
