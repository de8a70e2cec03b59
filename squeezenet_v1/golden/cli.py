"""The golden record's command line: `python -m squeezenet_v1.golden record|check DIR`.

What the commands do, and their exit statuses, is in records.py's docstring.
"""

import os
import sys
import warnings

from absl import flags

from squeezenet_v1 import command_line
from squeezenet_v1 import tensorflow_logs
from squeezenet_v1.files import atomic
from squeezenet_v1.files import output_files
from squeezenet_v1.errors import UserError
from squeezenet_v1.golden import known_differences
from squeezenet_v1.golden import EXIT_ERROR, EXIT_HOLDS, REPORT_FORMAT

COMMAND = command_line.Command(
    'squeezenet_v1.golden', 'record DIR | check DIR [--exact] [--json=FILE]',
    'Record, or check against, a golden record of the SqueezeNet graphs and numbers on the '
    'running TensorFlow. record writes one into DIR (absent, empty, or a golden record); check '
    'compares the running TensorFlow with DIR and exits 0 when all holds, 1 on drift, 2 on a '
    'usage error, a bad record or a failure to run.')
flags.DEFINE_bool('exact', False, 'With check: demand bit-identical numbers instead of the '
                  'tolerances.', flag_values=COMMAND.flags)
flags.DEFINE_string('json', None, 'With check: also write the report as JSON to this file (on '
                    'an error too).', flag_values=COMMAND.flags)


def main(args=None):
    """The command line (`args` without the program name); returns the exit status."""
    try:
        parsed = COMMAND.parse(sys.argv[1:] if args is None else args, min_args=2, max_args=2)
        if parsed is None:
            return EXIT_HOLDS
        command, golden_dir = parsed
        if command not in ('record', 'check'):
            raise command_line.UsageError('the command is record or check, not %r' % command)
        if command == 'record' and (COMMAND.flags.exact or COMMAND.flags.json):
            raise command_line.UsageError('--exact and --json go with check, not record')
    except command_line.UsageError as e:
        return COMMAND.usage_error(e)
    json_path = COMMAND.flags.json
    if json_path:
        try:
            output_files.check_output_file(
                json_path, '--json',
                lambda path: output_files.is_json_of_format(path, REPORT_FORMAT),
                inputs=[golden_dir])
        except UserError as e:
            print('%s check: error: %s' % (COMMAND.name, e), file=sys.stderr)
            return EXIT_ERROR
    _quiet_tensorflow()
    # TensorFlow loads only now: --help and a usage error answer without it.
    from squeezenet_v1.golden import capture as golden_capture
    from squeezenet_v1.golden import records
    try:
        if command == 'record':
            current = records.record(golden_dir)
            print(records.environment_line('recorded with', current.summary['environment']))
            if os.path.isfile(os.path.join(golden_dir, known_differences.KNOWN_FILE)):
                print('kept %s from the record replaced: check that its differences still '
                      'apply to the new record on the TensorFlow versions it names.'
                      % os.path.join(golden_dir, known_differences.KNOWN_FILE))
            print('golden record %s written: %d ops in the training graph, %d in the eval graph,'
                  ' %d steps, %d weights.' % (
                      golden_dir, sum(1 for l in current.listings['train'] if l.startswith('op')),
                      sum(1 for l in current.listings['eval'] if l.startswith('op')),
                      len(current.summary['numbers']['loss']),
                      sum(w.size for w in current.weights.values())))
            return EXIT_HOLDS
        result = records.check(golden_dir, exact=COMMAND.flags.exact)
    except KeyboardInterrupt:
        print('%s %s: interrupted' % (COMMAND.name, command), file=sys.stderr)
        return 130
    except Exception as e:  # one line, no traceback: the contract for other projects' CI
        told = isinstance(e, (records.GoldenRecordError, golden_capture.CaptureError))
        message = str(e) if told else '%s: %s' % (type(e).__name__, e)
        print('%s %s: error: %s' % (COMMAND.name, command, message.strip().splitlines()[0]),
              file=sys.stderr)
        if json_path:
            _write_json(json_path, {'format': REPORT_FORMAT, 'status': 'error',
                                    'exit_code': EXIT_ERROR,
                                    'record': golden_dir, 'error': message})
        return EXIT_ERROR
    print(result.text())
    if json_path and not _write_json(json_path, result.report):
        return EXIT_ERROR
    return result.exit_code


def _write_json(path, report):
    """Writes the report; False, after saying why on stderr, when it cannot."""
    try:
        atomic.write_json_atomic(path, report)
    except OSError as e:
        print('%s check: error: cannot write --json %s (%s); name a file in a folder you '
              'can write to.' % (COMMAND.name, path, e.strerror or e), file=sys.stderr)
        return False
    return True


def _quiet_tensorflow():
    """TensorFlow's deprecation notices would bury the report: errors only, for the CLI."""
    tf = tensorflow_logs.load_tensorflow()
    tf.get_logger().setLevel('ERROR')
    warnings.filterwarnings('ignore', module='tensorflow')


