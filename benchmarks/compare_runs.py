"""Do consecutive runs of benchmark_training.py agree? Their paired ratios, side by side.

    python benchmarks/compare_runs.py run1.json run2.json run3.json

For every paired ratio the runs share, prints each run's median [min-max over rounds] and
whether the runs agree: every run's median lies within every other run's min-max. The summary
also counts the looser reading, ranges that overlap, and the largest gap between two runs'
medians, as a share of the smaller.

Then, from every round of every run (results.json keeps them, with how many processes shared
the rounds), it estimates the two kinds of noise a ratio carries: from one round to the next
within a process, and from one process to the next. A simulation of that noise says how many
ratios such runs should agree on, for the runs' own design and for others (processes x rounds):
how many rounds and processes a run needs before its spread holds the next run's median.
"""

import json
import math
import random
import statistics
import sys

DESIGNS = [(1, 4), (2, 4), (2, 8), (3, 12), (4, 16), (6, 12)]  # (processes, rounds) to simulate
TRIALS = 2000


def _ratios(results):
    ratios = {}
    for batch_size, summary in results.get('training', {}).items():
        for name, ratio in summary['paired_ratios'].items():
            if ratio:
                ratios['train b%s %s' % (batch_size, name)] = ratio
    for name, ratio in results.get('evaluation', {}).get('paired_ratios', {}).items():
        if ratio:
            ratios['%s' % name] = ratio
    return ratios


def rounds_per_process(rounds, processes):
    """How many of `rounds` each of `processes` processes runs, in turn (the benchmark's split)."""
    return [len(range(g, rounds, processes)) for g in range(processes)]


def _process_groups(rounds, processes):
    """The rounds' values split by the process that ran them, consecutive as the benchmark runs
    them."""
    groups, start = [], 0
    for count in rounds_per_process(len(rounds), processes):
        groups.append(rounds[start:start + count])
        start += count
    return [group for group in groups if group]


def noise(results_list):
    """(sd between rounds of one process, sd between processes), of log ratios, pooled; None
    when the runs keep no rounds or give nothing to estimate from."""
    within, within_dof, process_means = 0.0, 0, []
    for results in results_list:
        processes = results.get('processes_per_contender', 1)
        for ratio in _ratios(results).values():
            rounds = [math.log(r) for r in ratio.get('all_rounds', [])]
            groups = _process_groups(rounds, processes)
            for group in groups:
                if len(group) > 1:
                    mean = statistics.fmean(group)
                    within += sum((x - mean) ** 2 for x in group)
                    within_dof += len(group) - 1
            if len(groups) > 1 and all(len(g) == len(groups[0]) for g in groups):
                process_means.append(([statistics.fmean(g) for g in groups], len(groups[0])))
    if not within_dof or not process_means:
        return None
    round_var = within / within_dof
    # The spread of a process's mean holds its rounds' noise too (round_var / rounds): take it out.
    between = statistics.fmean(statistics.variance(means) - round_var / size
                               for means, size in process_means)
    return math.sqrt(round_var), math.sqrt(max(between, 0.0))


def simulated_agreement(round_sd, process_sd, processes, rounds, runs, trials=TRIALS, seed=0):
    """The share of ratios whose `runs` runs would agree (each median inside every other run's
    min-max), each run sharing `rounds` rounds among `processes` processes."""
    rng = random.Random(seed)
    agreed = 0
    for _ in range(trials):
        samples = []
        for _ in range(runs):
            values = []
            for count in rounds_per_process(rounds, processes):
                offset = rng.gauss(0.0, process_sd)
                values += [offset + rng.gauss(0.0, round_sd) for _ in range(count)]
            samples.append(values)
        medians = [statistics.median(values) for values in samples]
        agreed += all(min(values) <= m <= max(values) for values in samples for m in medians)
    return agreed / trials


def main(paths):
    results_list = []
    for path in paths:
        try:
            with open(path) as f:
                results_list.append(json.load(f))
        except (OSError, ValueError) as e:
            sys.exit('%s is not a results file of benchmark_training.py (%s)' % (path, e))
    runs = [_ratios(results) for results in results_list]
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
        gap = max(medians) / min(medians) - 1
        if largest_gap[1] is None or gap > largest_gap[0]:
            largest_gap = (gap, name)
        print('%-58s %s  %s' % (name, '  '.join(
            '%.3f [%.3f-%.3f]' % (s['median'], s['min'], s['max']) for s in spreads),
            'agree' if agree else 'DISAGREE'))
    print('%d of %d ratios agree across %d runs' % (len(names) - disagree, len(names),
                                                     len(runs)))
    print('%d of %d have ranges that all overlap; the medians differ by at most %.1f%% (%s)'
          % (overlap, len(names), 100 * largest_gap[0], largest_gap[1]))
    estimate = noise(results_list)
    if estimate is None:
        return
    round_sd, process_sd = estimate
    print('noise in these runs\' ratios: %.1f%% from round to round within a process, %.1f%% '
          'from process to process (sd)' % (100 * round_sd, 100 * process_sd))
    own = (results_list[0].get('processes_per_contender', 1), results_list[0].get('rounds'))
    print('ratios expected to agree across %d runs, simulated with that noise '
          '(processes x rounds):' % len(runs))
    for processes, rounds in sorted(set(DESIGNS + [own] if own[1] else DESIGNS)):
        share = simulated_agreement(round_sd, process_sd, processes, rounds, len(runs))
        print('  %d x %-3d %4.1f of %d%s' % (processes, rounds, share * len(names), len(names),
                                            '  (these runs)' if (processes, rounds) == own
                                            else ''))


if __name__ == '__main__':
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    main(sys.argv[1:])
