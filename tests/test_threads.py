"""The default OpenMP thread count: physical cores, a user's choice kept, set before mxnet."""
import os
import subprocess
import sys

import pytest

from sngan_gluon import _threads


def _fake_sysfs(tmp_path, cores_of_cpus):
    """A sysfs tree where logical CPU i sits on core cores_of_cpus[i] of package 0."""
    for cpu, core in enumerate(cores_of_cpus):
        topology = tmp_path / ("cpu%d" % cpu) / "topology"
        topology.mkdir(parents=True)
        (topology / "physical_package_id").write_text("0\n")
        (topology / "core_id").write_text("%d\n" % core)
    return str(tmp_path)


@pytest.fixture
def four_cpus(monkeypatch):
    monkeypatch.setattr(_threads, "_cpus_allowed", lambda: [0, 1, 2, 3])


def test_hyperthread_siblings_count_once(tmp_path, four_cpus):
    sysfs = _fake_sysfs(tmp_path, [0, 0, 1, 1])
    assert _threads.usable_cores(sysfs=sysfs, cgroup_cpu_max="/nonexistent") == 2


def test_one_thread_per_core_counts_every_cpu(tmp_path, four_cpus):
    sysfs = _fake_sysfs(tmp_path, [0, 1, 2, 3])
    assert _threads.usable_cores(sysfs=sysfs, cgroup_cpu_max="/nonexistent") == 4


@pytest.mark.parametrize("cpu_max, expected", [("150000 100000\n", 2), ("50000 100000\n", 1),
                                               ("max 100000\n", 4), ("garbage\n", 4)])
def test_a_cgroup_quota_caps_the_count(tmp_path, four_cpus, cpu_max, expected):
    sysfs = _fake_sysfs(tmp_path / "sys", [0, 1, 2, 3])
    quota = tmp_path / "cpu.max"
    quota.write_text(cpu_max)
    assert _threads.usable_cores(sysfs=sysfs, cgroup_cpu_max=str(quota)) == expected


def test_default_is_set_only_where_nobody_chose(tmp_path, four_cpus, monkeypatch):
    monkeypatch.delitem(sys.modules, "mxnet")  # as if mxnet were not imported yet
    sysfs = _fake_sysfs(tmp_path, [0, 1, 2, 3])
    environ = {}
    assert _threads.set_default_threads(environ, sysfs=sysfs) == "4"
    assert environ == {"OMP_NUM_THREADS": "4"}
    for chosen in ({"OMP_NUM_THREADS": "1"}, {"MXNET_OMP_MAX_THREADS": "3"}):
        environ = dict(chosen)
        assert _threads.set_default_threads(environ, sysfs=sysfs) is None
        assert environ == chosen


def test_nothing_is_set_once_mxnet_is_imported():
    import mxnet  # noqa: F401
    environ = {}
    assert _threads.set_default_threads(environ) is None and environ == {}


def test_a_users_count_is_not_free_to_change(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.delenv("MXNET_OMP_MAX_THREADS", raising=False)
    monkeypatch.setattr(_threads, "_DEFAULT_SET", "2")
    assert _threads.set_by_default()
    monkeypatch.setenv("OMP_NUM_THREADS", "2")  # the count chosen here
    assert _threads.set_by_default()
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert not _threads.set_by_default()
    monkeypatch.delenv("OMP_NUM_THREADS")
    monkeypatch.setenv("MXNET_OMP_MAX_THREADS", "2")
    assert not _threads.set_by_default()


@pytest.mark.parametrize("user_value", [None, "1"])
def test_importing_the_package_sets_the_count_before_mxnet(user_value):
    env = {k: v for k, v in os.environ.items()
           if k not in ("OMP_NUM_THREADS", "MXNET_OMP_MAX_THREADS")}
    if user_value:
        env["OMP_NUM_THREADS"] = user_value
    code = ("import os, sys, sngan_gluon; from sngan_gluon._threads import usable_cores; "
            "print(os.environ['OMP_NUM_THREADS'], usable_cores())")
    out = subprocess.run([sys.executable, "-c", code], env=env, check=True,
                         capture_output=True, text=True).stdout.split()
    assert out[0] == (user_value or out[1])
