"""Command-line front ends: they parse flags and call the package, nothing else."""
import argparse


class OneLineParser(argparse.ArgumentParser):
    """argparse that reports a bad flag in one line, exit code 2 (the usage is in --help)."""

    def error(self, message):
        self.exit(2, "error: %s (see %s --help)\n" % (message, self.prog))
