"""The benchmark's agreement check and its roofline arithmetic (no TensorFlow, no PyTorch, no
timing)."""

import importlib.util
import json
import math
import os

_PATH = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'benchmarks',
                     'compare_runs.py')
_spec = importlib.util.spec_from_file_location('compare_runs', _PATH)
compare_runs = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(compare_runs)


def _run(tmp_path, name, median, low, high):
    ratio = {'median': median, 'min': low, 'max': high}
    path = tmp_path / name
    path.write_text(json.dumps({'training': {'32': {'paired_ratios': {'a_vs_b': ratio}}},
                                'evaluation': {'paired_ratios': {'c_vs_d': ratio}}}))
    return str(path)


def test_runs_agree_when_each_median_lies_in_every_spread(tmp_path, capsys):
    compare_runs.main([_run(tmp_path, '1.json', 1.10, 1.05, 1.15),
                       _run(tmp_path, '2.json', 1.12, 1.08, 1.16)])
    out = capsys.readouterr().out
    assert 'train b32 a_vs_b' in out and 'c_vs_d' in out
    assert '2 of 2 ratios agree across 2 runs' in out
    assert '2 of 2 have ranges that all overlap; the medians differ by at most 1.8%' in out


def test_a_median_outside_another_runs_spread_disagrees(tmp_path, capsys):
    compare_runs.main([_run(tmp_path, '1.json', 1.10, 1.05, 1.15),
                       _run(tmp_path, '2.json', 1.30, 1.25, 1.35)])
    out = capsys.readouterr().out
    assert 'DISAGREE' in out
    assert '0 of 2 ratios agree' in out
    assert '0 of 2 have ranges that all overlap; the medians differ by at most 18.2%' in out


def test_overlapping_ranges_are_counted_apart_from_agreement(tmp_path, capsys):
    compare_runs.main([_run(tmp_path, '1.json', 1.00, 0.95, 1.05),
                       _run(tmp_path, '2.json', 1.08, 1.04, 1.10)])
    out = capsys.readouterr().out
    assert '0 of 2 ratios agree' in out
    assert '2 of 2 have ranges that all overlap; the medians differ by at most 8.0%' in out


def _rounds_run(tmp_path, name, rounds, processes):
    ratio = {'median': sorted(rounds)[len(rounds) // 2], 'min': min(rounds), 'max': max(rounds),
             'all_rounds': rounds}
    path = tmp_path / name
    path.write_text(json.dumps({'rounds': len(rounds), 'processes_per_contender': processes,
                                'training': {'32': {'paired_ratios': {'a_vs_b': ratio}}}}))
    return str(path)


def test_noise_is_split_into_rounds_and_processes():
    # Two processes of two rounds: rounds equal within each, the processes a factor 2 apart.
    results = {'processes_per_contender': 2, 'training': {'32': {'paired_ratios': {'a_vs_b': {
        'median': 1.5, 'min': 1.0, 'max': 2.0, 'all_rounds': [1.0, 1.0, 2.0, 2.0]}}}}}
    round_sd, process_sd = compare_runs.noise([results])
    assert round_sd == 0.0
    assert abs(process_sd - 0.4901) < 1e-3  # the sd of log(1) and log(2)
    # Rounds alone: both processes alike, their two rounds 10% apart (in log).
    results['training']['32']['paired_ratios']['a_vs_b']['all_rounds'] = [
        1.0, math.exp(0.1), 1.0, math.exp(0.1)]
    round_sd, process_sd = compare_runs.noise([results])
    assert abs(round_sd - 0.1 / math.sqrt(2)) < 1e-9 and process_sd == 0.0
    # One process: nothing to say about processes.
    results['processes_per_contender'] = 1
    assert compare_runs.noise([results]) is None


def test_more_rounds_and_processes_agree_more_and_process_noise_agrees_less():
    few = compare_runs.simulated_agreement(0.03, 0.0, 1, 4, runs=3)
    many = compare_runs.simulated_agreement(0.03, 0.0, 3, 12, runs=3)
    with_processes = compare_runs.simulated_agreement(0.03, 0.03, 3, 12, runs=3)
    assert few < with_processes < many
    # Distribution-free when rounds are alike: the same share for any round noise.
    assert compare_runs.simulated_agreement(0.01, 0.0, 1, 4, runs=3) == few


def test_the_comparison_ends_with_the_noise_and_what_other_designs_would_agree_on(
        tmp_path, capsys):
    compare_runs.main([_rounds_run(tmp_path, '1.json', [1.0, 1.1, 1.2, 1.3], 2),
                       _rounds_run(tmp_path, '2.json', [1.1, 1.0, 1.3, 1.2], 2)])
    out = capsys.readouterr().out
    assert 'from round to round within a process' in out
    assert '2 x 4 ' in out and '(these runs)' in out and '3 x 12' in out


_LIMITS_PATH = os.path.join(os.path.dirname(_PATH), 'limits.py')
_limits_spec = importlib.util.spec_from_file_location('limits', _LIMITS_PATH)
limits = importlib.util.module_from_spec(_limits_spec)
_limits_spec.loader.exec_module(limits)

# conv1 (3x3, 3 -> 64, 24x24 out) and a 1x1 layer, per image, as limits.convolutions counts.
_CONV1 = {'flops': 2 * 24 * 24 * 3 * 64 * 9, 'input': 24 * 24 * 3, 'filter': 9 * 3 * 64,
          'output': 24 * 24 * 64}
_SQUEEZE = {'flops': 2 * 12 * 12 * 64 * 32, 'input': 12 * 12 * 64, 'filter': 64 * 32,
            'output': 12 * 12 * 32}


def test_the_roofline_is_the_slower_of_arithmetic_and_memory_for_each_pass():
    # 1 FLOP/s against 1e12 bytes/s: arithmetic bounds every pass.
    assert limits.roofline_seconds({'fire1/squeeze': _SQUEEZE}, 2, limits.TRAINING_PASSES,
                                   1.0, 1e12, 4) == 3 * 2 * _SQUEEZE['flops']
    # The reverse: memory bounds it, and the filter is read once per batch, not per image.
    moved = (2 * (_SQUEEZE['input'] + _SQUEEZE['output']) + _SQUEEZE['filter']) * 4
    assert limits.roofline_seconds({'fire1/squeeze': _SQUEEZE}, 2, limits.INFERENCE_PASSES,
                                   1e18, 1.0, 4) == moved
    # bf16 moves half the bytes.
    assert limits.roofline_seconds({'fire1/squeeze': _SQUEEZE}, 2, limits.INFERENCE_PASSES,
                                   1e18, 1.0, 2) == moved / 2


def test_conv1_runs_no_input_gradient():
    assert limits.layer_passes('conv1', limits.TRAINING_PASSES) == ['forward', 'grad filter']
    assert limits.roofline_seconds({'conv1': _CONV1}, 1, limits.TRAINING_PASSES, 1.0, 1e12,
                                   4) == 2 * _CONV1['flops']
