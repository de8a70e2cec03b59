"""Trains and evaluates the notebook's SqueezeNet on CIFAR-10 (or a synthetic stand-in).

    python run_train.py --dataset=synthetic --model_dir=/tmp/sq --max_steps=600
    python run_train.py --mode=download --data_dir=data/
    python run_train.py --data_dir=data/ --model_dir=/tmp/sq_cifar

Resumes from the newest checkpoint in --model_dir; Ctrl-C or SIGTERM saves one and exits.
"""

import os
import sys

from squeezenet_v1 import interrupts

# Ctrl-C and SIGTERM are held from the first instruction and answered once it is safe: the
# TensorFlow import below would swallow a KeyboardInterrupt.
interrupts.hold_from_start()

from absl import app  # noqa: E402
from absl import flags  # noqa: E402
from absl import logging  # noqa: E402

from squeezenet_v1 import run_flags  # noqa: E402
from squeezenet_v1 import tensorflow_logs  # noqa: E402

FLAGS = flags.FLAGS
run_flags.define_flags(FLAGS)  # every flag, its help, bounds and role: squeezenet_v1/run_flags.py
# They are this program's own flags, so --help lists them (absl lists the main module's).
flags.adopt_module_key_flags(run_flags)


HELP_FLAGS = ('-h', '-?', '--help', '--helpshort')


def answer_help(argv):
    """Prints this program's flags and exits 0 when argv asks for help (before any `--`).

    absl's own --help lists the flags of the main module, which under a console script is the
    generated launcher (so it listed none), and exits 1; --helpfull adds absl's flags.
    """
    own = argv[1:argv.index('--')] if '--' in argv else argv[1:]
    asked = {arg.split('=', 1)[0] for arg in own
             if arg.split('=', 1)[1:] not in (['false'], ['0'])}  # --help=1 asks, =false not
    full = '--helpfull' in asked
    if not full and not asked & set(HELP_FLAGS):
        return
    program = os.path.basename(argv[0]) if argv else ''
    typed = program if program.startswith('squeezenet-') else 'python run_train.py'
    text = FLAGS.get_help() if full else FLAGS.module_help(run_flags).strip().split('\n', 1)[1]
    print('usage: %s [--flag=value ...]\n\n%s\nflags:\n%s\n' % (typed, __doc__, text))
    if not full:
        print('absl\'s own flags (--verbosity, --flagfile, ...): --helpfull. Every flag, its '
              'default and role: docs/flags.md.')
    sys.exit(0)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError('Unexpected arguments: %s' % ' '.join(argv[1:]))
    # TensorFlow is imported after flags are checked, so a bad flag answers at once.
    logging.info('Loading TensorFlow for --mode=%s.', FLAGS.mode)
    try:
        try:
            # Its start-up lines and notes are left out; --verbosity=1 shows them all.
            tensorflow_logs.load_tensorflow(show_all=FLAGS.verbosity >= 1)
        except ImportError as e:  # a broken or missing install: one line, not a traceback
            logging.error('TensorFlow cannot be loaded (%s): `pip install -e .` installs it; '
                          'nothing was written.', e)
            sys.exit(1)
        from squeezenet_v1 import runner
        interrupts.answer_dropped()
    except interrupts.Interrupted as e:
        logging.warning('Stopped by %s during start-up; nothing was written.', e)
        sys.exit(128 + e.signum)
    sys.exit(runner.run(FLAGS))


def console_main():
    """The `squeezenet-train` command: run_train.py as an installed console script."""
    answer_help(sys.argv)
    app.run(main)


if __name__ == '__main__':
    answer_help(sys.argv)
    app.run(main)
