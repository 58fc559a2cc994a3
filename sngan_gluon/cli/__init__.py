"""Command-line front ends: they parse flags and call the package, nothing else.

The one-line-error parser and the help formatter that every CLI shares live
here, with the exit codes (defined in :mod:`sngan_gluon.exit_codes`, where the
launcher reads them too), the ``--checkpoint`` flag of the tools that read a
run, and :func:`user_error`, how a CLI reports a
:class:`~sngan_gluon.errors.UserError`. A CLI catches ``UserError`` alone: any
other exception is a bug in the package and keeps its traceback.
"""
import argparse
import math
import sys

from ..exit_codes import (EXIT_FAILED, EXIT_INTERRUPTED, EXIT_TIMEOUT,  # noqa: F401
                          EXIT_USER_ERROR)


class OneLineParser(argparse.ArgumentParser):
    """argparse that reports a bad flag in one line, exit code 2 (the usage is in --help).

    Its help shows each flag's default once, where it means something
    (:class:`DefaultsHelpFormatter`).
    """

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", DefaultsHelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message):
        self.exit(EXIT_USER_ERROR, "error: %s (see %s --help)\n" % (message, self.prog))


class DefaultsHelpFormatter(argparse.HelpFormatter):
    """Appends ``(default: X)`` to a flag's help only where X tells the reader something.

    Left out: switches (``store_true`` / ``store_false``: their help says what
    they turn on or off), required flags and positionals, defaults of None,
    ``""`` or ``[]`` (no value: the help says what happens then), and help
    texts that already state their default.
    """

    def _get_help_string(self, action):
        text = action.help or ""
        if "(default" in text or "default:" in text or not _states_a_value(action):
            return text
        return text + " (default: %(default)s)"


#: The help of every ``--checkpoint`` flag.
CHECKPOINT_HELP = "a run folder (its newest checkpoint) or a checkpoint folder"


def checkpoint_parser(prog, description):
    """A :class:`OneLineParser` whose first flag is the required ``--checkpoint``."""
    parser = OneLineParser(prog=prog, description=description)
    parser.add_argument("--checkpoint", required=True, help=CHECKPOINT_HELP)
    return parser


def user_error(err):
    """Report a :class:`~sngan_gluon.errors.UserError` as one line on stderr; returns
    the exit code, :data:`EXIT_USER_ERROR`."""
    print("error: %s" % err, file=sys.stderr)
    return EXIT_USER_ERROR


def _states_a_value(action):
    default = action.default
    return (bool(action.option_strings) and not action.required and action.nargs != 0
            and default is not argparse.SUPPRESS and default is not None
            and not (isinstance(default, (str, list, tuple)) and len(default) == 0))


def positive_int(text):
    """argparse type: an integer > 0."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError("expected a positive integer, got %r" % text)
    if value <= 0:
        raise argparse.ArgumentTypeError("must be a positive integer, got %r" % text)
    return value


def finite_float(text):
    """argparse type: a float that is neither infinite nor NaN."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError("expected a number, got %r" % text)
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError("must be a finite number, got %r" % text)
    return value
