"""The parameter report: what the notebook's "less than 1MB" claim rests on, counted."""

import collections
import sys

import numpy as np

from squeezenet_v1 import command_line
from squeezenet_v1 import tensorflow_logs

FLOAT32_BYTES = 4

ParameterRow = collections.namedtuple('ParameterRow', ['name', 'shape', 'count'])


def parameter_rows(variables):
    """One ParameterRow per variable, in the order given."""
    rows = []
    for variable in variables:
        shape = tuple(int(d) for d in variable.shape)
        rows.append(ParameterRow(variable.op.name, shape, int(np.prod(shape, dtype=np.int64))))
    return rows


def parameter_report(variables):
    """A dict with the per-variable rows, the total count and its float32 size in bytes."""
    rows = parameter_rows(variables)
    total = sum(row.count for row in rows)
    return {
        'layers': [{'name': r.name, 'shape': list(r.shape), 'count': r.count} for r in rows],
        'total_parameters': total,
        'float32_bytes': total * FLOAT32_BYTES,
    }


def format_parameter_report(report):
    """The report as a fixed-width table a person can read."""
    width = max([len(layer['name']) for layer in report['layers']] + [len('total')])
    lines = ['%-*s  %-18s  %9s' % (width, 'variable', 'shape', 'params')]
    for layer in report['layers']:
        lines.append('%-*s  %-18s  %9s' % (width, layer['name'], layer['shape'],
                                           '{:,}'.format(layer['count'])))
    lines.append('%-*s  %-18s  %9s' % (width, 'total', '',
                                       '{:,}'.format(report['total_parameters'])))
    lines.append('float32 size: {:,} bytes ({:.3f} MB)'.format(
        report['float32_bytes'], report['float32_bytes'] / 1e6))
    return '\n'.join(lines)


def model_parameter_report(output_size=10, resize_dim=24):
    """Builds the model in a scratch graph and reports its trainable variables."""
    import tensorflow as tf  # here, not above: --help answers without loading TensorFlow
    from squeezenet_v1.model import SqueezeNetModel
    tf1 = tf.compat.v1
    with tf.Graph().as_default():
        model = SqueezeNetModel(32, resize_dim, output_size)
        inputs = tf1.placeholder(tf.float32, [None, resize_dim, resize_dim, 3])
        model.model_layers(inputs, is_training=False)
        return parameter_report(tf1.trainable_variables())


COMMAND = command_line.Command(
    'squeezenet_v1.parameters', '',
    'Prints the per-layer parameter table of the notebook\'s model for CIFAR-10.')


def main(args=None):
    """The command line (`args` without the program name); returns the exit status."""
    try:
        if COMMAND.parse(sys.argv[1:] if args is None else args) is None:
            return 0
    except command_line.UsageError as e:
        return COMMAND.usage_error(e)
    tensorflow_logs.load_tensorflow()
    print(format_parameter_report(model_parameter_report()))
    return 0


if __name__ == '__main__':
    sys.exit(main())
