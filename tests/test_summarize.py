"""summarize: mean ± std over seeds from hand-written eval_history.jsonl files, no TensorFlow run.

Three seeded runs at steps 100-300 with numbers chosen so the statistics are exact by hand;
each other test changes one thing about them. One test runs the command as a user would, for
its exit codes; one checks the module itself imports no TensorFlow.
"""

import json
import math
import os
import subprocess
import sys

import pytest

from conftest import REPO
from squeezenet_v1.evaluation import summarize

# Run in this process, the command names itself as python -m would.
SUMMARIZE = 'python -m squeezenet_v1.evaluation.summarize'

# (accuracy, loss) at steps 100, 200, 300 for seeds 1, 2, 3.
RUNS = {
    'runA': (1, [(0.5, 1.5), (0.6, 1.0), (0.90, 0.3)]),
    'runB': (2, [(0.6, 1.3), (0.7, 0.9), (0.80, 0.5)]),
    'runC': (3, [(0.7, 1.1), (0.8, 0.8), (0.85, 0.4)]),
}
# Per class at step 300; runC's 'blue-horizontal' had no examples (null).
PER_CLASS = {'runA': (1.0, 0.8), 'runB': (0.9, 0.7), 'runC': (0.8, None)}
FLAGS = {'dataset': 'synthetic', 'batch_size': 32, 'learning_rate': 0.001, 'precision': 'fp32'}


def record(step, accuracy, loss, seed, per_class=(0.5, 0.5), **changes):
    """One eval_history line as evaluate writes it; `changes` override top-level or flag fields."""
    flags = dict(FLAGS, seed=seed, **{k: v for k, v in changes.items() if k in FLAGS})
    line = {'global_step': step, 'accuracy': accuracy, 'loss': loss, 'num_examples': 1000,
            'per_class_accuracy': dict(zip(['red-vertical', 'blue-horizontal'], per_class)),
            'dataset': flags['dataset'], 'split': 'test', 'checkpoint': 'model.ckpt-%d' % step,
            'flags': flags, 'versions': {'tensorflow': '2.21.0'},
            'evaluated_at': '2026-11-25T12:00:00+00:00', 'eval_seconds': 0.4}
    line.update((k, v) for k, v in changes.items() if k not in FLAGS or k == 'dataset')
    return line


def write_history(folder, lines, tail=''):
    """folder/eval_history.jsonl holding lines (dicts, or raw strings), then `tail` unterminated."""
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, summarize.HISTORY_FILE), 'w') as f:
        f.writelines((line if isinstance(line, str) else json.dumps(line)) + '\n'
                     for line in lines)
        f.write(tail)
    return folder


def seeded_runs(tmp_path, names=('runA', 'runB', 'runC'), **changes_by_run):
    """Writes the RUNS; returns their folders, each named runA.. (as the report names them)."""
    dirs = []
    for name in names:
        seed, points = RUNS[name]
        lines = [record(step, acc, loss, seed, **changes_by_run.get(name, {}))
                 for step, (acc, loss) in zip((100, 200, 300), points)]
        lines[-1]['per_class_accuracy'] = dict(zip(['red-vertical', 'blue-horizontal'],
                                                   PER_CLASS[name]))
        dirs.append(write_history(str(tmp_path / name), lines))
    return dirs


def run_main(capsys, *argv):
    status = summarize.main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


@pytest.fixture
def in_tmp(tmp_path, monkeypatch):
    """Runs from tmp_path, so runs are named runA, runB, runC as given."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_three_seeds_exact_statistics(in_tmp, capsys):
    seeded_runs(in_tmp)
    status, out, err = run_main(capsys, 'runA', 'runB', 'runC', '--json', 'summary.json')
    assert status == 0 and err == ''
    report = json.load(open('summary.json'))
    assert [row['step'] for row in report['rows']] == [100, 200, 300]
    first, _, last = report['rows']
    assert first['runs'] == 3
    assert first['accuracy'] == pytest.approx({'mean': 0.6, 'std': 0.1, 'min': 0.5, 'max': 0.7})
    assert first['loss'] == pytest.approx({'mean': 1.3, 'std': 0.2, 'min': 1.1, 'max': 1.5})
    assert last['accuracy'] == pytest.approx({'mean': 0.85, 'std': 0.05, 'min': 0.8, 'max': 0.9})
    assert last['loss'] == pytest.approx({'mean': 0.4, 'std': 0.1, 'min': 0.3, 'max': 0.5})
    assert report['per_class_accuracy']['step'] == 300
    assert report['per_class_accuracy']['mean'] == pytest.approx(
        {'red-vertical': 0.9, 'blue-horizontal': 0.75})  # the null is left out, not a 0
    assert [(r['run'], r['seed'], r['dead_relu']) for r in report['runs']] == [
        ('runA', 1, False), ('runB', 2, False), ('runC', 3, False)]
    assert out.startswith('3 runs (seeds 1, 2, 3): dataset synthetic, split test, '
                          'num_examples 1000, eval_precision fp32, --batch_size 32, '
                          '--learning_rate 0.001, '
                          '--precision fp32\n')
    assert '100      3      0.6000 ± 0.1000  0.5000  0.7000  1.3000 ± 0.2000  1.1000  1.5000' \
        in out.splitlines()
    assert 'blue-horizontal  0.7500' in out
    assert 'note:' not in out


def test_json_holds_what_the_table_shows(in_tmp, capsys):
    seeded_runs(in_tmp)
    status, out, _ = run_main(capsys, 'runA', 'runB', 'runC', '--json', 'summary.json')
    assert status == 0
    report = json.load(open('summary.json'))
    assert report['status'] == 'summarized' and report['exit_code'] == 0
    table = [line.split() for line in out.splitlines()[3:6]]  # after header, blank, column names
    for cells, row in zip(table, report['rows']):
        expected = [row['step'], row['runs']]
        for key in ('accuracy', 'loss'):
            stats = row[key]
            expected += [stats['mean'], '±', stats['std'], stats['min'], stats['max']]
        assert cells == [str(v) if isinstance(v, (int, str)) else '%.4f' % v for v in expected]
    assert report['notes'] == [] and report['warnings'] == []
    assert summarize.format_report(report) == out.splitlines()  # the table is made from the JSON


def test_single_run_has_an_undefined_spread(in_tmp, capsys):
    seeded_runs(in_tmp, names=('runA',))
    status, out, _ = run_main(capsys, 'runA')
    assert status == 0
    assert out.startswith('1 run (seed 1): ')
    assert '300      1         0.9000 ± n/a  0.9000  0.9000     0.3000 ± n/a  0.3000  0.3000' \
        in out.splitlines()


def test_a_step_evaluated_twice_counts_with_its_last_line(in_tmp, capsys):
    seeded_runs(in_tmp)
    with open('runB/eval_history.jsonl', 'a') as f:  # step 100 of runB re-evaluated
        f.write(json.dumps(record(100, 0.9, 0.7, 2)) + '\n')
    status, _, _ = run_main(capsys, 'runA', 'runB', 'runC', '--json', 'summary.json')
    assert status == 0
    row = json.load(open('summary.json'))['rows'][0]
    assert row['step'] == 100 and row['runs'] == 3
    assert row['accuracy'] == pytest.approx({'mean': 0.7, 'std': math.sqrt(0.04), 'min': 0.5,
                                             'max': 0.9})
    assert row['loss']['mean'] == pytest.approx(1.1)


def test_a_run_lacking_a_step_is_named_and_the_step_not_averaged(in_tmp, capsys):
    seeded_runs(in_tmp)
    with open('runC/eval_history.jsonl') as f:
        lines = f.readlines()
    with open('runC/eval_history.jsonl', 'w') as f:
        f.writelines(lines[:1] + lines[2:])  # no step 200
    status, out, _ = run_main(capsys, 'runA', 'runB', 'runC', '--json', 's.json')
    assert status == 0
    report = json.load(open('s.json'))
    assert [row['step'] for row in report['rows']] == [100, 300]
    assert [(r['steps'], r['missing_steps']) for r in report['runs']] == [
        ([100, 200, 300], []), ([100, 200, 300], []), ([100, 300], [200])]
    assert report['notes'] == ['runC lacks step 200 that other runs have; it is not averaged.']
    assert 'note: runC lacks step 200' in out
    assert not any(line.lstrip().startswith('200 ') for line in out.splitlines())


def test_no_shared_step_is_refused(in_tmp, capsys):
    write_history('runA', [record(100, 0.5, 1.5, 1)])
    write_history('runB', [record(200, 0.6, 1.3, 2)])
    status, out, _ = run_main(capsys, 'runA', 'runB')
    assert status == 1
    assert 'no global_step is shared by all runs' in out


def test_a_different_learning_rate_is_refused_and_named(in_tmp, capsys):
    seeded_runs(in_tmp, runB={'learning_rate': 0.01})
    status, out, _ = run_main(capsys, 'runA', 'runB', 'runC', '--json', 's.json')
    assert status == 1
    assert '  runB: --learning_rate 0.01 vs 0.001 (runA, runC)' in out.splitlines()
    assert 'mean ± std' not in out  # no table
    report = json.load(open('s.json'))
    assert report['status'] == 'refused' and report['rows'] == []
    assert report['differences'] == ['runB: --learning_rate 0.01 vs 0.001 (runA, runC)']


def test_a_different_dataset_is_refused(in_tmp, capsys):
    seeded_runs(in_tmp, runA={'dataset': 'cifar10'})
    status, out, _ = run_main(capsys, 'runA', 'runB', 'runC')
    assert status == 1
    assert '  runA: dataset cifar10 vs synthetic (runB, runC)' in out.splitlines()
    assert '  runA: --dataset cifar10 vs synthetic (runB, runC)' in out.splitlines()
    assert 'mean ± std' not in out


def test_a_run_evaluated_in_another_precision_is_refused(in_tmp, capsys):
    # --mode=eval --precision=bf16 gives other numbers for the same checkpoints.
    seeded_runs(in_tmp, runA={'eval_precision': 'bf16'}, runB={'eval_precision': 'fp32'},
                runC={'eval_precision': 'fp32'})
    status, out, _ = run_main(capsys, 'runA', 'runB', 'runC')
    assert status == 1
    assert '  runA: eval_precision bf16 vs fp32 (runB, runC)' in out.splitlines()
    assert 'mean ± std' not in out


def test_a_split_changing_within_a_run_is_refused(in_tmp, capsys):
    seeded_runs(in_tmp)
    with open('runA/eval_history.jsonl', 'a') as f:
        f.write(json.dumps(record(400, 0.95, 0.2, 1, split='train')) + '\n')
    status, out, _ = run_main(capsys, 'runA', 'runB', 'runC')
    assert status == 1
    assert "  runA: split changes within its history ('test', 'train')" in out.splitlines()


def test_a_dead_relu_run_is_flagged_and_still_averaged(in_tmp, capsys):
    seeded_runs(in_tmp, names=('runA', 'runB'))
    dead = math.log(2) + 0.00005  # two classes: a uniform prediction's loss is ln 2
    write_history('runD', [record(step, 0.5, dead, 4) for step in (100, 200, 300)])
    status, out, _ = run_main(capsys, 'runA', 'runB', 'runD', '--json', 's.json')
    assert status == 0
    report = json.load(open('s.json'))
    assert [r['dead_relu'] for r in report['runs']] == [False, False, True]
    assert report['rows'][-1]['runs'] == 3
    assert report['rows'][-1]['loss']['max'] == pytest.approx(dead)
    flagged = [line for line in out.splitlines() if line.endswith('DEAD ReLU')]
    assert flagged == ['runD     4   300    0.5000  0.6932  DEAD ReLU']
    assert ('note: DEAD ReLU: runD ended with every logit zero (loss ln(number of classes)): '
            'the final ReLU died, such a run does not learn and should be rerun with another '
            '--seed. Such runs are included in the averages, not left out.') in out


def test_dead_and_no_signal_runs_are_told_apart_by_what_evaluation_saw(in_tmp, capsys):
    seeded_runs(in_tmp, names=('runA',))
    uniform = math.log(2)
    write_history('runD', [record(step, 0.5, uniform, 4, uniform_predictions='dead_relu')
                           for step in (100, 200, 300)])
    write_history('runN', [record(step, 0.5, uniform, 5, uniform_predictions='no_signal')
                           for step in (100, 200, 300)])
    status, out, _ = run_main(capsys, 'runA', 'runD', 'runN', '--json', 's.json')
    assert status == 0, out
    report = json.load(open('s.json'))
    assert [r['uniform_predictions'] for r in report['runs']] == [None, 'dead_relu', 'no_signal']
    assert [line.split()[0] for line in out.splitlines() if line.endswith('DEAD ReLU')] == ['runD']
    assert [line.split()[0] for line in out.splitlines() if line.endswith('NO SIGNAL')] == ['runN']
    assert 'note: NO SIGNAL: runN ended giving every image the same prediction' in out
    assert 'another --seed will not help' in out


def test_one_run_has_no_spread_and_says_so(in_tmp, capsys):
    seeded_runs(in_tmp, names=('runA',))
    status, out, _ = run_main(capsys, 'runA', '--json', 's.json')
    assert status == 0, out
    assert '0.9000 ± n/a' in out and '± 0.0000' not in out
    assert 'note: one run: its spread (std) is undefined' in out
    assert json.load(open('s.json'))['rows'][-1]['accuracy']['std'] is None


def test_an_unknown_uniform_predictions_value_is_one_line(in_tmp, capsys):
    write_history('runA', [record(100, 0.5, 1.0, 1, uniform_predictions='zombie')])
    status, _, err = run_main(capsys, 'runA')
    assert status == 2
    assert err.startswith(SUMMARIZE + ': error: runA/eval_history.jsonl:1 has a '
                          'uniform_predictions that is none of null, dead_relu, no_signal')


def test_an_old_history_without_flags_is_averaged_with_a_note(in_tmp, capsys):
    seeded_runs(in_tmp, names=('runA',))
    old = [record(step, 0.6, 1.0, None) for step in (100, 200, 300)]
    for line in old:
        del line['flags']
    write_history('old', old)
    status, out, _ = run_main(capsys, 'runA', 'old')
    assert status == 0
    assert '2 runs (seeds 1, ?)' in out
    assert ('note: old records no experiment flags (an older history): its --dataset, '
            '--batch_size, --learning_rate, --precision, --sync_replicas are not checked.') in out


def test_a_truncated_last_line_is_warned_and_ignored(in_tmp, capsys):
    seeded_runs(in_tmp)
    with open('runB/eval_history.jsonl', 'a') as f:  # a crash in the middle of an append
        f.write(json.dumps(record(400, 0.9, 0.2, 2))[:40])
    status, out, err = run_main(capsys, 'runA', 'runB', 'runC')
    assert status == 0
    assert err == (SUMMARIZE + ': warning: runB/eval_history.jsonl:4 is an incomplete last '
                   'line (a crash while appending?); ignored.\n')
    assert 'runB lacks' not in out and 'lack step 400' not in out


@pytest.mark.parametrize('bad, problem', [
    ('{"global_step": 200, "accuracy"', 'is not JSON'),
    ('[1, 2]', 'is not a JSON object'),
    ('{"global_step": 200, "accuracy": 0.5}', 'has no finite number as loss (None)'),
    ('{"global_step": "200", "accuracy": 0.5, "loss": 1.0}', 'has no whole-number global_step'),
    # json.loads accepts NaN and Infinity; a hand-edited line may hold any type.
    ('{"global_step": 200, "accuracy": NaN, "loss": 1.0}', 'has no finite number as accuracy'),
    ('{"global_step": 200, "accuracy": 0.5, "loss": Infinity}', 'has no finite number as loss'),
    ('{"global_step": 200, "accuracy": 0.5, "loss": 1.0, "per_class_accuracy": [0.5]}',
     'has a per_class_accuracy that is not {class name: number or null}'),
    ('{"global_step": 200, "accuracy": 0.5, "loss": 1.0, "per_class_accuracy": {"a": "0.5"}}',
     'has a per_class_accuracy that is not {class name: number or null}'),
    ('{"global_step": 200, "accuracy": 0.5, "loss": 1.0, "flags": "oops"}',
     'has flags that are not a JSON object'),
])
def test_a_malformed_line_is_an_error_naming_file_and_line(in_tmp, capsys, bad, problem):
    write_history('runA', [record(100, 0.5, 1.5, 1), bad, record(300, 0.9, 0.3, 1)])
    status, out, err = run_main(capsys, 'runA')
    assert status == 2 and out == ''
    assert err.startswith(SUMMARIZE + ': error: runA/eval_history.jsonl:2 %s' % problem)


def test_a_malformed_last_line_with_its_newline_is_an_error(in_tmp, capsys):
    write_history('runA', [record(100, 0.5, 1.5, 1), '{"global_step": 2'])
    status, _, err = run_main(capsys, 'runA')
    assert status == 2 and 'runA/eval_history.jsonl:2 is not JSON' in err


def test_a_folder_without_history_is_an_error_saying_how_to_make_one(in_tmp, capsys):
    seeded_runs(in_tmp, names=('runA',))
    os.mkdir('empty')
    status, out, err = run_main(capsys, 'runA', 'empty')
    assert status == 2 and out == ''
    assert 'empty holds no eval_history.jsonl' in err
    assert 'python run_train.py --mode=train_and_eval' in err
    assert '--mode=eval --checkpoint_path=' in err
    status, _, err = run_main(capsys, 'absent')
    assert status == 2 and 'absent does not exist' in err


def test_the_history_file_itself_may_be_named_but_not_twice(in_tmp, capsys):
    seeded_runs(in_tmp, names=('runA', 'runB'))
    status, out, _ = run_main(capsys, 'runA/eval_history.jsonl', 'runB')
    assert status == 0 and out.startswith('2 runs (seeds 1, 2)')
    status, _, err = run_main(capsys, 'runA/eval_history.jsonl', 'runA')
    assert status == 2 and 'are the same run' in err


def test_usage_errors_exit_2(in_tmp, capsys):
    seeded_runs(in_tmp, names=('runA',))
    assert run_main(capsys)[0] == 2
    status, _, err = run_main(capsys, 'runA', '--bogus')
    assert status == 2 and "summarize: error: Unknown command line flag 'bogus'" in err


def test_command_line_exit_codes(in_tmp):
    seeded_runs(in_tmp, runC={'precision': 'bf16'})
    os.mkdir('empty')
    env = dict(os.environ, PYTHONPATH=REPO)

    def command(*args):
        return subprocess.run([sys.executable, '-m', 'squeezenet_v1.evaluation.summarize'] + list(args),
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              timeout=120)

    ok = command('runA', 'runB')
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.startswith('2 runs (seeds 1, 2)')
    refused = command('runA', 'runB', 'runC')
    assert refused.returncode == 1
    assert '  runC: --precision bf16 vs fp32 (runA, runB)' in refused.stdout.splitlines()
    assert command('empty').returncode == 2
    assert command().returncode == 2


def test_the_command_starts_without_tensorflow():
    """summarize reads JSON; starting TensorFlow (seconds) for it would be waste."""
    script = ('import sys, squeezenet_v1.evaluation.summarize; '
              "print(sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'numpy')))")
    result = subprocess.run([sys.executable, '-c', script], stdout=subprocess.PIPE, text=True,
                            timeout=60, check=True, cwd=REPO)
    assert result.stdout == '[]\n'


# --json never replaces an input, or a file summarize did not write.

@pytest.mark.parametrize('target', ['runA/eval_history.jsonl', 'runA/flags.json'])
def test_json_over_an_input_or_a_users_file_is_refused_and_changes_nothing(in_tmp, capsys,
                                                                          target):
    seeded_runs(in_tmp)
    with open('runA/flags.json', 'w') as f:
        f.write('{"seed": 1}')
    before = {name: open(name, 'rb').read() for name in ('runA/eval_history.jsonl',
                                                         'runA/flags.json')}
    status, out, err = run_main(capsys, 'runA', 'runB', 'runC', '--json', target)
    assert status == 2 and out == ''
    assert err.startswith(SUMMARIZE + ': error: --json %s ' % target)
    assert {name: open(name, 'rb').read() for name in before} == before


def test_json_replaces_its_own_earlier_report(in_tmp, capsys):
    seeded_runs(in_tmp)
    assert run_main(capsys, 'runA', 'runB', 'runC', '--json', 'summary.json')[0] == 0
    assert json.load(open('summary.json'))['format'] == summarize.REPORT_FORMAT
    assert run_main(capsys, 'runA', 'runB', '--json', 'summary.json')[0] == 0
    assert [r['run'] for r in json.load(open('summary.json'))['runs']] == ['runA', 'runB']


def test_a_history_that_is_not_utf8_is_one_line(in_tmp, capsys):
    write_history('runA', [record(100, 0.5, 1.5, 1)])
    with open('runA/eval_history.jsonl', 'ab') as f:
        f.write(b'\xff\xfe{}\n')
    status, out, err = run_main(capsys, 'runA')
    assert status == 2 and out == '' and err.startswith(SUMMARIZE + ': error: cannot read ')


def test_a_reader_that_stops_early_is_no_traceback(in_tmp):
    # 4,000 steps: a report far larger than a pipe holds, so `head` leaves while it is written.
    for name, seed in (('runA', 1), ('runB', 2)):
        write_history(name, [record(step, 0.5, 1.0, seed) for step in range(1, 4001)])
    proc = subprocess.run('%s -m squeezenet_v1.evaluation.summarize runA runB | head -1'
                          % sys.executable, shell=True, cwd=str(in_tmp), capture_output=True,
                          text=True, timeout=120, env=dict(os.environ, PYTHONPATH=REPO))
    assert proc.stdout.startswith('2 runs (seeds 1, 2)') and proc.stderr == '', proc.stderr


def test_the_diagnosis_of_uniform_predictions():
    import numpy as np
    from squeezenet_v1 import dead_relu
    uniform, learnt = math.log(10), 0.5
    zeros, equal = np.zeros((4, 10), np.float32), np.ones((4, 10), np.float32)
    same_rows = np.tile(np.arange(10, dtype=np.float32), (4, 1))
    varied = np.random.RandomState(0).rand(4, 10).astype(np.float32)
    assert dead_relu.diagnose(uniform, zeros, 10) == dead_relu.DEAD
    assert dead_relu.diagnose(uniform, equal, 10) == dead_relu.NO_SIGNAL
    assert dead_relu.diagnose(learnt, varied, 10) is None
    # The same logits for every image: no signal in an evaluation, dropout's noise in training.
    assert dead_relu.diagnose(learnt, same_rows, 10, without_dropout=True) == dead_relu.NO_SIGNAL
    assert dead_relu.diagnose(learnt, same_rows, 10) is None
    assert dead_relu.diagnose(learnt, varied, 10, without_dropout=True) is None
