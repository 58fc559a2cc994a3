"""Fixtures shared by several test files.

The expensive ones (tiny training runs, the digits judges' data and networks)
are session-scoped: made once, by the first test that asks, and read only.
"""
import os
import signal

# Before mxnet loads, and inherited by every process a test starts: OpenMP threads
# waiting for work sleep instead of spinning. Where other processes share the cores,
# spinning threads take them from the thread that has work: a tiny training run took
# four to six times the CPU time and wall time with the default policy. Results are unchanged
# (the same threads split the same work); the thread count stays the package's default.
os.environ.setdefault("OMP_WAIT_POLICY", "passive")
# numpy's OpenBLAS has threads of its own that spin the same way, and no passive policy:
# with the cores busy, an SVD of a 512x2304 matrix took 15 s on two threads against
# 0.14 s on one (0.14 s either way on idle cores). The tests' linear algebra (FID's
# matrix square roots, SVDs, the MLP judge) runs on one thread.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import pytest  # noqa: E402

import sngan_gluon  # noqa: E402,F401  (makes mxnet importable on every Python)
from sngan_gluon.data import get_dataset  # noqa: E402
from benchmark_scripts import import_benchmark  # noqa: E402
from tiny_runs import train_tiny_run  # noqa: E402


# The session fixtures below that a worker of pytest-xdist makes once for all the
# modules that ask for them; every other module is a group of its own.
SHARED_FIXTURES = ("tiny_runs", "digits")


def pytest_collection_modifyitems(items):
    """Group the tests for ``--dist loadgroup`` (setup.cfg): a module runs in one worker, so
    its module fixtures are made once, and modules that share a session fixture of
    ``SHARED_FIXTURES`` (or one built on it) run in the same worker."""
    groups = {}
    for item in items:
        module = item.nodeid.split("::")[0]
        shared = [name for name in SHARED_FIXTURES
                  if name in getattr(item, "fixturenames", ())]
        if shared and module not in groups:
            groups[module] = shared[0]
    for item in items:
        module = item.nodeid.split("::")[0]
        item.add_marker(pytest.mark.xdist_group(groups.get(module, module)))


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


@pytest.fixture(scope="session")
def tiny_runs(tmp_path_factory):
    """``{"uncond": folder, "cond": folder}``: the two runs of :mod:`tiny_runs`, one
    unconditional, one conditional (ten classes), both with SN (read only)."""
    base = tmp_path_factory.mktemp("tiny_runs")
    dataset = get_dataset("synthetic", image_size=32)
    return {name: train_tiny_run(base / name, dataset, base / "data", conditional)
            for name, conditional in (("uncond", False), ("cond", True))}


@pytest.fixture(scope="session")
def digits():
    """(train, held-out) digits as the quality benchmarks' judges see them: 32x32 RGB."""
    pytest.importorskip("sklearn")
    return (get_dataset("digits", image_size=32, channels=3, train=True),
            get_dataset("digits", image_size=32, channels=3, train=False))


@pytest.fixture(scope="session")
def cnn_judge_net(digits):
    """The first judge's classifier (``quality_digits.train_classifier``, 4 epochs) on
    :func:`digits`; read only."""
    pytest.importorskip("sklearn")
    return import_benchmark("quality_digits").train_classifier(*digits, epochs=4)[0]


@pytest.fixture(scope="session")
def mlp_judge(digits):
    """The second judge (``judge_mlp.MLPJudge``) trained on :func:`digits`; read only."""
    pytest.importorskip("sklearn")
    return import_benchmark("judge_mlp").MLPJudge.fit(*digits)
