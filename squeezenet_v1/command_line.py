"""The small commands' command lines, in run_train.py's style: absl flags and validators.

Each command defines its flags on a FlagValues of its own (several commands share a process in
the tests, and some share flag names such as --json), parses GNU style (flags and positional
arguments mixed, `--` ends the flags), answers --help on stdout with exit 0, and a usage error
with one line and its usage on stderr, exit 2, before any work.
"""

import os
import sys

from absl import flags

from squeezenet_v1.files import literal_paths

EXIT_USAGE = 2


class UsageError(Exception):
    """The command line is wrong; the message says what and how to write it."""


class Command(object):
    """A command's name as typed, usage line and flags (define them with
    flag_values=command.flags)."""

    def __init__(self, module, arguments, description):
        """Usage: python -m `module` `arguments`. Messages name the command as it was typed: its
        console script (squeezenet-summarize ...) or python -m."""
        self.description = description
        program = os.path.basename(sys.argv[0]) if sys.argv else ''
        self.prog = program if program.startswith('squeezenet-') else 'python -m %s' % module
        self.name = self.prog
        self.usage = '%s %s' % (self.prog, arguments)
        self.flags = flags.FlagValues()

    def parse(self, args, min_args=0, max_args=0):
        """Parses `args` (without the program name) into self.flags; returns the positionals.

        Returns None once it has printed the help (-h/--help before any `--`); raises
        UsageError for flags it refuses or a wrong number of positional arguments.
        """
        own = args[:args.index('--')] if '--' in args else args
        if '-h' in own or '--help' in own:
            print(self.help())
            return None
        self.flags.unparse_flags()  # no value left over from an earlier call in this process
        try:
            positionals = self.flags([self.prog] + list(args))[1:]
        except flags.Error as e:
            raise UsageError(str(e))
        if len(positionals) < min_args:
            raise UsageError('missing arguments')
        if max_args is not None and len(positionals) > max_args:
            raise UsageError('unexpected arguments: %s' % ' '.join(positionals[max_args:]))
        # Every path a command takes is a local one: its own positionals (what follows `--` is
        # another program's) and its string flags (--json).
        after_dashes = len(args) - len(own) - 1 if '--' in args else 0
        paths = positionals[:len(positionals) - after_dashes] + [
            self.flags[name].value for name in self.flags
            if isinstance(self.flags[name].value, str)]
        for path in paths:
            if literal_paths.is_url(path):
                raise UsageError('%s %s.' % (path, literal_paths.NOT_LOCAL))
        return positionals

    def help(self):
        lines = ['usage: ' + self.usage, '', self.description]
        if list(self.flags):
            lines += ['', 'flags:']
            for name in sorted(self.flags):
                flag = self.flags[name]
                default = '' if flag.default in (None, False) else ' (default: %s)' % flag.default
                lines.append('  --%s: %s%s' % (name, flag.help, default))
        return '\n'.join(lines)

    def usage_error(self, error):
        """Says what is wrong and the usage on stderr; returns the usage exit status."""
        print('%s: error: %s\nusage: %s' % (self.name, error, self.usage), file=sys.stderr)
        return EXIT_USAGE
