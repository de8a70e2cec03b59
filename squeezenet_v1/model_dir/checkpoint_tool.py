"""`squeezenet-checkpoint inspect|convert`: a TF1 checkpoint that is not exactly ours.

    squeezenet-checkpoint inspect CKPT [--map=OLD/:NEW/ ...] [--moving_averages]
    squeezenet-checkpoint convert CKPT OUT_DIR [--map=OLD/:NEW/ ...] [--moving_averages]

CKPT is a checkpoint prefix (DIR/model.ckpt-1000), one of its files, or a folder (its latest).
inspect lists every variable the checkpoint holds against what the model needs (matched,
missing, wrong shape, extra and what each extra one is) and exits 0 only when the weights load
as they are after the map, 1 otherwise. convert writes the weights (their moving averages with
--moving_averages), global_step, and Adam's slots when every one maps, as model.ckpt-<step> in
the model's own names into OUT_DIR (absent or empty), whole or not at all; --mode eval,
predict, export and a resumed training then read OUT_DIR as a model_dir. 2 is a usage error.
"""

import os
import sys

from absl import flags

from squeezenet_v1 import command_line
from squeezenet_v1 import tensorflow_logs
from squeezenet_v1.errors import UserError, first_line

EXIT_LOADS, EXIT_DOES_NOT_LOAD = 0, 1

COMMAND = command_line.Command(
    'squeezenet_v1.model_dir.checkpoint_tool',
    'inspect CKPT | convert CKPT OUT_DIR [--map=OLD:NEW ...] [--moving_averages]',
    'Inspect a TF1 checkpoint against the SqueezeNet model, or convert it into the model\'s own '
    'names (a scope mapped, the moving averages taken) in a new folder. inspect exits 0 when the '
    'weights load as they are, 1 when they do not; both exit 2 on a usage error.')
flags.DEFINE_multi_string('map', [], 'OLD:NEW, as init_from_checkpoint maps: squeezenet/: maps '
                          'the scope squeezenet/ onto the model\'s root; several allowed.',
                          flag_values=COMMAND.flags)
flags.DEFINE_bool('moving_averages', False, 'Take each weight\'s ExponentialMovingAverage in '
                  'its place, as the TF1 tutorial\'s cifar10_eval.py restored them.',
                  flag_values=COMMAND.flags)


def main(args=None):
    """The command line (`args` without the program name); returns the exit status."""
    try:
        parsed = COMMAND.parse(sys.argv[1:] if args is None else args, min_args=2, max_args=3)
        if parsed is None:
            return EXIT_LOADS
        command = parsed[0]
        if command not in ('inspect', 'convert'):
            raise command_line.UsageError('the command is inspect or convert, not %r' % command)
        if len(parsed) != (2 if command == 'inspect' else 3):
            raise command_line.UsageError('inspect takes CKPT; convert takes CKPT OUT_DIR')
    except command_line.UsageError as e:
        return COMMAND.usage_error(e)
    _quiet_tensorflow()
    from squeezenet_v1.model_dir import foreign
    try:
        pairs = foreign.parse_map(COMMAND.flags.map)
        prefix = foreign.find_checkpoint(parsed[1])
        if command == 'inspect':
            report = foreign.inspect(prefix, pairs, COMMAND.flags.moving_averages)
            print(foreign.format_report(report))
            return EXIT_LOADS if report.loads else EXIT_DOES_NOT_LOAD
        return _convert(foreign, prefix, parsed[2], pairs)
    except UserError as e:
        print('%s %s: error: %s' % (COMMAND.prog, command, e), file=sys.stderr)
        return EXIT_DOES_NOT_LOAD
    except Exception as e:  # a full disk (OSError, TensorFlow's OpError): one line, no traceback
        print('%s %s: error: %s (nothing was written)' % (COMMAND.prog, command, first_line(e)),
              file=sys.stderr)
        return EXIT_DOES_NOT_LOAD


def _convert(foreign, prefix, out_dir, pairs):
    from squeezenet_v1.files import atomic
    from squeezenet_v1.files import temporaries
    foreign.check_output_dir(out_dir, prefix)
    values, said = foreign.converted_values(prefix, pairs, COMMAND.flags.moving_averages)
    parent = os.path.dirname(os.path.abspath(out_dir))
    if not os.path.isdir(parent):
        raise foreign.ForeignCheckpointError('the folder %s does not exist; create it first.'
                                             % parent)
    temporaries.remove_stale_temporaries(parent)  # a killed conversion's staging folder
    staging = temporaries.make_temp_dir(parent, os.path.basename(os.path.abspath(out_dir)))
    try:
        written = foreign.write_checkpoint(values, staging)
        atomic.replace_dir(staging, out_dir)
    except BaseException:
        temporaries.remove_path(staging)
        raise
    for line in said:
        print(line)
    print('%s written from %s: %d variables%s.' % (
        os.path.join(out_dir, os.path.basename(written)), prefix, len(values),
        ', the moving averages as the weights' if COMMAND.flags.moving_averages else ''))
    return EXIT_LOADS


def _quiet_tensorflow():
    tf = tensorflow_logs.load_tensorflow()
    tf.get_logger().setLevel('ERROR')


if __name__ == '__main__':
    sys.exit(main())
