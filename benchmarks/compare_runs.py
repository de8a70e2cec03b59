"""Do consecutive runs of benchmark_training.py agree? Their paired ratios, side by side.

    python benchmarks/compare_runs.py run1.json run2.json run3.json

For every paired ratio the runs share, prints each run's median [min-max over rounds] and
whether the runs agree: every run's median lies within every other run's min-max. The summary
also counts the looser reading, ranges that overlap, and the largest gap between two runs'
medians, as a share of the smaller.
"""

import json
import sys


def _ratios(results):
    ratios = {}
    for batch_size, summary in results.get('training', {}).items():
        for name, ratio in summary['paired_ratios'].items():
            ratios['train b%s %s' % (batch_size, name)] = ratio
    for name, ratio in results.get('evaluation', {}).get('paired_ratios', {}).items():
        ratios['%s' % name] = ratio
    return ratios


def main(paths):
    runs = []
    for path in paths:
        with open(path) as f:
            runs.append(_ratios(json.load(f)))
    names = [n for n in runs[0] if all(n in run for run in runs)]
    disagree = overlap = 0
    largest_gap = (0.0, None)
    for name in names:
        spreads = [run[name] for run in runs]
        agree = all(other['min'] <= spread['median'] <= other['max']
                    for spread in spreads for other in spreads)
        disagree += not agree
        overlap += max(s['min'] for s in spreads) <= min(s['max'] for s in spreads)
        medians = [s['median'] for s in spreads]
        largest_gap = max(largest_gap, (max(medians) / min(medians) - 1, name))
        print('%-58s %s  %s' % (name, '  '.join(
            '%.3f [%.3f-%.3f]' % (s['median'], s['min'], s['max']) for s in spreads),
            'agree' if agree else 'DISAGREE'))
    print('%d of %d ratios agree across %d runs' % (len(names) - disagree, len(names),
                                                     len(runs)))
    print('%d of %d have ranges that all overlap; the medians differ by at most %.1f%% (%s)'
          % (overlap, len(names), 100 * largest_gap[0], largest_gap[1]))


if __name__ == '__main__':
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    main(sys.argv[1:])
