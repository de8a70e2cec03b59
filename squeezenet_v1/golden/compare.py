"""Comparing a golden record with a capture on the running TensorFlow: what moved, and by how much.

Structure (ops, variables and their initializers, the checkpoint's variables, the serving
signature) must be equal. Numbers must be within TOLERANCES, or bit-identical with `exact`.
Each difference is one line, `<section> <item>: <what moved>`.

The tolerances absorb what float32 rounding moves between CPUs and thread counts. Measured on
one machine (2 cores with AVX512 and AMX) by checking a record made with the defaults under
TF_ENABLE_ONEDNN_OPTS=0, ONEDNN_MAX_CPU_ISA=AVX2 or AVX512_CORE, one intra-op thread and
`taskset -c 0`: the losses moved up to 1.2e-4 (from step 2 on, growing with the steps), the
trained weights up to 6.6e-3 in one element and 1.7e-4 on average over a variable (Adam turns a
rounding-sized gradient into a full step of the learning rate when its sign flips), the serving
probabilities up to 1.5e-8, the eval logits not at all. Each tolerance is 4.5 to 650 times that,
and under what a real change moves: a loss by 1e-2, a weight's 20-step update by 4e-3 on average,
a logit of about 0.1 by 1e-3.
"""

import collections

import numpy as np

Tolerance = collections.namedtuple('Tolerance', ['atol', 'rtol'])
Tolerance.__doc__ = """|current - recorded| <= atol + rtol * |recorded| holds."""

TOLERANCES = {
    'loss': Tolerance(1e-3, 0.0),                    # per step of the short run
    'weights_mean': Tolerance(1e-3, 0.0),            # mean |diff| over one trained variable
    'weights_max': Tolerance(3e-2, 0.0),             # any one trained weight
    'eval_logits': Tolerance(1e-5, 1e-4),            # fixed checkpoint, fixed inputs
    'serving_probabilities': Tolerance(1e-5, 0.0),   # the exported SavedModel
}

Difference = collections.namedtuple('Difference', ['section', 'item', 'message'])


def difference_line(difference):
    return '%s %s: %s' % difference


Comparison = collections.namedtuple(
    'Comparison', ['differences', 'structure_same', 'numbers_hold', 'bit_identical',
                   'max_abs_diff'])
Comparison.__doc__ = """differences: [Difference]; structure_same, numbers_hold: bools;
bit_identical: {number kind: bool}; max_abs_diff: {number kind: float or None}."""


def compare(recorded, current, exact=False):
    """A Comparison of two Captures (golden_capture.Capture): structure, then numbers."""
    structure = []
    for graph in sorted(recorded.listings):
        structure += _compare_listing(graph, recorded.listings[graph],
                                      current.listings.get(graph, []))
    old, new = recorded.summary, current.summary
    for graph in sorted(old['variables']):
        structure += _compare_maps('variable', graph + '/', old['variables'][graph],
                                   new['variables'].get(graph, {}))
    structure += _compare_maps('checkpoint', '', old['checkpoint_variables'],
                               new['checkpoint_variables'])
    structure += _compare_maps('signature', '', old['signature'], new['signature'])
    structure += [Difference('saver', *line.split(': ', 1)) for line in new['saver_round_trip']]

    numbers = _Numbers(exact)
    for line in new.get('failures', []):
        stage, why = line.split(' failed', 1)
        numbers.differences.append(Difference('stage', stage, 'failed' + why))
    numbers.sequence('loss', 'step', old['numbers']['loss'], new['numbers']['loss'],
                     first_index=1)
    numbers.weights(recorded.weights, current.weights)
    numbers.rows('eval_logits', 'eval logits', old['numbers']['eval_logits'],
                 new['numbers']['eval_logits'])
    numbers.rows('serving_probabilities', 'serving probabilities',
                 old['numbers']['serving_probabilities'], new['numbers']['serving_probabilities'])
    numbers.classes(old['numbers'], new['numbers'])
    return Comparison(structure + numbers.differences, not structure, not numbers.differences,
                      numbers.bit_identical, numbers.max_abs_diff)


# --- structure --------------------------------------------------------------------------------

_FIELDS = ('type', 'outputs', 'inputs')


def _compare_listing(graph, old_lines, new_lines):
    """Ops and function nodes removed, added, or changed in type, outputs or inputs."""
    old, new = _parse_listing(old_lines), _parse_listing(new_lines)
    differences = []
    for key in old:
        kind, name = key
        item = '%s/%s' % (graph, name)
        if key not in new:
            differences.append(Difference(kind, item, 'removed (was %s)' % old[key][0]))
            continue
        for field, was, now in zip(_FIELDS, old[key], new[key]):
            if was != now:
                differences.append(Difference(kind, item, _field_change(field, was, now)))
    for key in new:
        if key not in old:
            differences.append(Difference(key[0], '%s/%s' % (graph, key[1]),
                                          'added (%s)' % ' '.join(f for f in new[key][:2] if f)))
    if not differences and old_lines != new_lines:
        differences.append(Difference('graph', graph, 'the same ops, built in another order'))
    return differences


def _field_change(field, was, now):
    """`type A -> B`; for lists of equal length only the positions that changed."""
    old_items, new_items = was.split(' '), now.split(' ')
    if field != 'type' and was and now and len(old_items) == len(new_items):
        return '; '.join('%s %d %s -> %s' % (field.rstrip('s'), i, a, b)
                         for i, (a, b) in enumerate(zip(old_items, new_items)) if a != b)
    return '%s %s -> %s' % (field, was or '(none)', now or '(none)')


def _parse_listing(lines):
    """{(kind, name): (type, outputs, inputs)} from a golden_capture.graph_listing."""
    parsed = collections.OrderedDict()
    for line in lines:
        kind, name, op_type, outputs, inputs = line.split('\t')
        parsed[(kind, name)] = (op_type, outputs, inputs)
    return parsed


def _compare_maps(section, prefix, old, new):
    differences = []
    for name in sorted(set(old) | set(new)):
        was, now = old.get(name), new.get(name)
        if was != now:
            differences.append(Difference(section, prefix + name, '%s -> %s' % (
                'absent' if was is None else was, 'absent' if now is None else now)))
    return differences


# --- numbers ----------------------------------------------------------------------------------

class _Numbers(object):
    """Collects number differences, the largest difference and bit equality of each kind."""

    def __init__(self, exact):
        self.exact = exact
        self.differences = []
        self.max_abs_diff = {}
        self.bit_identical = {}

    def _note(self, kind, old, new):
        """Records kind's largest difference and bit equality; False when not comparable."""
        if new is None:  # its stage failed, a line of its own says why
            self.max_abs_diff[kind], self.bit_identical[kind] = None, False
            return False
        if old.shape != new.shape:
            self.differences.append(Difference(kind.replace('_', ' '), 'shape', '%s -> %s' % (
                list(old.shape), list(new.shape))))
            self.max_abs_diff[kind], self.bit_identical[kind] = None, False
            return False
        diff = np.abs(new.astype(np.float64) - old.astype(np.float64))
        self.max_abs_diff[kind] = max(self.max_abs_diff.get(kind) or 0.0,
                                      float(diff.max()) if diff.size else 0.0)
        self.bit_identical[kind] = (self.bit_identical.get(kind, True)
                                    and old.tobytes() == new.tobytes())
        return True

    def _out_of_tolerance(self, old, new, tolerance):
        """(diff, limit, failing mask): bit inequality with exact, else the tolerance."""
        diff = np.abs(new.astype(np.float64) - old.astype(np.float64))
        if self.exact:
            return diff, np.zeros_like(diff), old.view(np.uint32) != new.view(np.uint32)
        limit = tolerance.atol + tolerance.rtol * np.abs(old.astype(np.float64))
        return diff, limit, ~(diff <= limit)

    def _why(self, diff, limit):
        if self.exact:
            return 'diff %.2g, not bit-identical' % diff
        return 'diff %.2g > tol %.2g' % (diff, limit)

    def sequence(self, kind, label, old, new, first_index=0):
        old, new = np.float32(old), _array(new, np.float32)
        if not self._note(kind, old, new):
            return
        diff, limit, failing = self._out_of_tolerance(old, new, TOLERANCES[kind])
        for i in np.flatnonzero(failing):
            change = '%.6g -> %.6g (%s)' % (old[i], new[i], self._why(diff[i], limit[i]))
            self.differences.append(Difference(kind, '%s %d' % (label, i + first_index), change))

    def rows(self, kind, section, old, new):
        """One line per image (row) whose worst class is out of tolerance."""
        old, new = np.float32(old), _array(new, np.float32)
        if not self._note(kind, old, new):
            return
        diff, limit, failing = self._out_of_tolerance(old, new, TOLERANCES[kind])
        for row in np.flatnonzero(failing.any(axis=1)):
            col = int(np.argmax(np.where(failing[row], diff[row], -1)))
            count = int(failing[row].sum())
            self.differences.append(Difference(section, 'image %d' % row, (
                'class %d %.6g -> %.6g (%s)%s' % (
                    col, old[row, col], new[row, col], self._why(diff[row, col], limit[row, col]),
                    '; %d classes off' % count if count > 1 else ''))))

    def classes(self, old_numbers, new_numbers):
        old = np.asarray(old_numbers['serving_classes'], dtype=np.int64)
        new = _array(new_numbers['serving_classes'], np.int64)
        if not self._note('serving_classes', old, new):
            return
        probabilities = np.float32(old_numbers['serving_probabilities'])
        tolerance = TOLERANCES['serving_probabilities']
        for i in np.flatnonzero(old != new):
            # Two classes whose recorded probabilities tie within the tolerance may swap.
            tie = abs(float(probabilities[i, old[i]]) - float(probabilities[i, new[i]]))
            if self.exact or tie > tolerance.atol:
                self.differences.append(Difference('serving classes', 'image %d' % i,
                                                   '%d -> %d' % (old[i], new[i])))

    def weights(self, old, new):
        """Per trained variable: its mean and its largest |diff| against their tolerances."""
        self.max_abs_diff.setdefault('weights', 0.0)
        self.bit_identical.setdefault('weights', True)
        for name in sorted(set(old) | set(new)):
            if name not in old or name not in new:
                self.differences.append(Difference('weights', name, '%s -> %s' % (
                    'absent' if name not in old else list(old[name].shape),
                    'absent' if name not in new else list(new[name].shape))))
                self.bit_identical['weights'] = False
                continue
            was, now = np.asarray(old[name], np.float32), np.asarray(new[name], np.float32)
            if was.shape != now.shape:
                self.differences.append(Difference('weights', name, 'shape %s -> %s' % (
                    list(was.shape), list(now.shape))))
                self.bit_identical['weights'] = False
                continue
            self._note('weights', was, now)
            diff = np.abs(now.astype(np.float64) - was.astype(np.float64))
            if not diff.size:
                continue
            worst = np.unravel_index(int(np.argmax(diff)), diff.shape)
            where = 'max %.2g at %s (%.6g -> %.6g)' % (diff[worst], list(map(int, worst)),
                                                       was[worst], now[worst])
            mean_tol, max_tol = TOLERANCES['weights_mean'].atol, TOLERANCES['weights_max'].atol
            if self.exact and was.tobytes() != now.tobytes():
                self.differences.append(Difference('weights', name, 'mean diff %.2g, %s, not '
                                                   'bit-identical' % (diff.mean(), where)))
            elif not self.exact and (diff.mean() > mean_tol or diff.max() > max_tol):
                self.differences.append(Difference('weights', name, 'mean diff %.2g (tol %.2g), '
                                                   '%s (tol %.2g)' % (diff.mean(), mean_tol,
                                                                      where, max_tol)))


def _array(values, dtype):
    return None if values is None else np.asarray(values, dtype=dtype)
