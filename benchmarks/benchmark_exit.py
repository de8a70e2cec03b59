"""How long run_train.py takes to exit after its last line, against the pipeline it replaced.

    python benchmarks/benchmark_exit.py [--runs=3] [--steps=400]

Each run trains --steps on the synthetic set in a fresh model_dir (`--mode=train`), and the time
from its last output line to its exit is measured from outside. The peer is the same command with
tf.data's autotune model thread left on (input_pipeline.without_autotune_model made a no-op),
as before the fix: its Session.close joins that thread, often only at the end of a sleep that
doubles up to 60 s. Runs alternate between the two, so both see the same load. Prints each run,
the medians and their ratio, and the CPU; writes nothing.
"""

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PEER = ('import runpy, sys; from squeezenet_v1.data import input_pipeline; '
        'input_pipeline.without_autotune_model = lambda dataset: dataset; '
        'sys.argv = ["run_train.py"] + sys.argv[1:]; '
        'runpy.run_path("run_train.py", run_name="__main__")')


def cpu_name():
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('model name'):
                    return line.split(':', 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or 'unknown CPU'


def last_line_to_exit(command, steps, scratch):
    """Seconds from the process's last output line to its exit (its status must be 0)."""
    model_dir = tempfile.mkdtemp(dir=scratch)
    shutil.rmtree(model_dir)
    proc = subprocess.Popen(command + ['--dataset=synthetic', '--mode=train',
                                       '--max_steps=%d' % steps, '--model_dir=' + model_dir],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    last = time.monotonic()
    for _ in proc.stdout:
        last = time.monotonic()
    status = proc.wait(timeout=600)
    exited = time.monotonic()
    if status:
        raise SystemExit('%s exited with status %d' % (' '.join(command), status))
    return exited - last


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--runs', type=int, default=3, help='runs of each (default 3)')
    parser.add_argument('--steps', type=int, default=400,
                        help='training steps a run (default 400: the model thread\'s sleep has '
                             'grown past 10 s by then)')
    args = parser.parse_args()
    commands = {'run_train.py': [sys.executable, 'run_train.py'],
                'autotune model on (before)': [sys.executable, '-c', PEER]}
    seconds = {name: [] for name in commands}
    scratch = tempfile.mkdtemp(prefix='benchmark_exit.')
    try:
        for run in range(args.runs):
            for name, command in commands.items():
                seconds[name].append(last_line_to_exit(command, args.steps, scratch))
                print('run %d  %-28s last line -> exit %6.2f s' % (run + 1, name,
                                                                   seconds[name][-1]))
                sys.stdout.flush()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    ours, before = (statistics.median(seconds[name]) for name in commands)
    print('median last line -> exit: run_train.py %.2f s, before the fix %.2f s (%.1fx); '
          'worst: %.2f s vs %.2f s; %d runs of %d steps each on %s (%d cores)'
          % (ours, before, before / ours, max(seconds['run_train.py']),
             max(seconds['autotune model on (before)']), args.runs, args.steps, cpu_name(),
             os.cpu_count()))


if __name__ == '__main__':
    main()
