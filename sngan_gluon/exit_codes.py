"""Exit codes of the package's processes, one meaning each.

Every command-line tool returns them (:mod:`sngan_gluon.cli` re-exports them),
and the job launcher (:mod:`sngan_gluon.supervise`) reads its workers' codes and
returns its own with the same meanings.
"""

#: A flag, a file or a setting the user gave is wrong (argparse's own code).
EXIT_USER_ERROR = 2
#: The work itself failed (training diverged, a worker died).
EXIT_FAILED = 1
#: A time limit ran out (as coreutils' ``timeout``).
EXIT_TIMEOUT = 124
#: Stopped by Ctrl-C or a termination signal (128 + SIGINT).
EXIT_INTERRUPTED = 130
