"""The benchmark's agreement check (no TensorFlow, no PyTorch, no timing)."""

import importlib.util
import json
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
