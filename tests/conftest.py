"""Fixtures shared by several test files."""
import signal

import pytest


@pytest.fixture
def stop_signals_not_ignored():
    """SIGINT and SIGHUP as an interactive terminal leaves them.

    A shell starts background jobs (a test run with ``&``) with SIGINT ignored,
    and training leaves ignored signals alone (``nohup``): tests that send these
    signals restore Python's own handlers first.
    """
    previous = {signal.SIGINT: signal.signal(signal.SIGINT, signal.default_int_handler),
                signal.SIGHUP: signal.signal(signal.SIGHUP, signal.SIG_DFL)}
    yield
    for signum, handler in previous.items():
        signal.signal(signum, handler)
