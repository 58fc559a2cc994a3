"""Fixtures shared by several test files."""
import signal

import pytest

import sngan_gluon  # noqa: F401  (makes mxnet importable on every Python)
from sngan_gluon.data import get_dataset


@pytest.fixture(scope="module")
def dataset():
    """The synthetic 32x32 dataset the training tests run on (read only)."""
    return get_dataset("synthetic", image_size=32)


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
