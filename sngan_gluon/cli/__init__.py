"""Command-line front ends: they parse flags and call the package, nothing else.

The exit codes and the one-line-error parser that every CLI shares live here.
"""
import argparse

#: A flag, a file or a setting the user gave is wrong (argparse's own code).
EXIT_USER_ERROR = 2
#: The work itself failed (training diverged, a worker died).
EXIT_FAILED = 1
#: A time limit ran out (as coreutils' ``timeout``).
EXIT_TIMEOUT = 124
#: Stopped by Ctrl-C or a termination signal (128 + SIGINT).
EXIT_INTERRUPTED = 130


class OneLineParser(argparse.ArgumentParser):
    """argparse that reports a bad flag in one line, exit code 2 (the usage is in --help)."""

    def error(self, message):
        self.exit(EXIT_USER_ERROR, "error: %s (see %s --help)\n" % (message, self.prog))
