"""Give MXNet's CPU operators every core the process may use.

Without ``OMP_NUM_THREADS``, MXNet 1.x on x86 runs its OpenMP operators (oneDNN
convolutions included) on half of ``omp_get_num_procs()``
(``src/engine/openmp.cc``), on the assumption that every core is a pair of
hyper-threads. Where it is not, half the machine idles: on a 2-core virtual
machine with one thread per core, the standard-CNN training step runs on one
core, and ``OMP_NUM_THREADS=2`` makes it about 1.7x faster.

So, before mxnet is imported and only when neither ``OMP_NUM_THREADS`` nor
``MXNET_OMP_MAX_THREADS`` is set, :func:`set_default_threads` sets
``OMP_NUM_THREADS`` to the number of *physical* cores the process may run on
(hyper-thread siblings counted once, as MXNet intends), capped by a cgroup v2
CPU quota (containers). A value the user sets always wins; so does an mxnet
already imported, whose thread pool is fixed by then.
"""
import math
import os
import sys

__all__ = ["usable_cores", "set_default_threads", "set_by_default"]

#: The value :func:`set_default_threads` put into ``os.environ`` (None: it set nothing).
_DEFAULT_SET = None


def _cpus_allowed():
    try:
        return sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return list(range(os.cpu_count() or 1))


def _core_id(cpu, sysfs):
    """(package, core) of logical CPU ``cpu``; its own id where sysfs does not say."""
    topology = os.path.join(sysfs, "cpu%d" % cpu, "topology")
    try:
        with open(os.path.join(topology, "physical_package_id")) as f:
            package = f.read().strip()
        with open(os.path.join(topology, "core_id")) as f:
            return package, f.read().strip()
    except OSError:
        return "cpu", str(cpu)


def _cgroup_quota(path):
    """CPUs granted by a cgroup v2 ``cpu.max`` file (``"200000 100000"`` -> 2.0); None: no limit."""
    try:
        with open(path) as f:
            quota, period = f.read().split()[:2]
    except (OSError, ValueError):
        return None
    if quota == "max":
        return None
    try:
        return float(quota) / float(period)
    except (ValueError, ZeroDivisionError):
        return None


def usable_cores(sysfs="/sys/devices/system/cpu", cgroup_cpu_max="/sys/fs/cgroup/cpu.max"):
    """Physical cores this process may run on, at least 1.

    Counts the distinct (package, core) pairs of the CPUs in the process's
    affinity mask, then caps the count by the cgroup (v2) CPU quota, rounded up.
    """
    cores = len({_core_id(cpu, sysfs) for cpu in _cpus_allowed()}) or 1
    quota = _cgroup_quota(cgroup_cpu_max)
    if quota is not None:
        cores = min(cores, max(1, math.ceil(quota)))
    return cores


def set_default_threads(environ=None, **kwargs):
    """Set ``OMP_NUM_THREADS`` to :func:`usable_cores` unless the user or mxnet already decided.

    Returns the value set, or None when nothing was changed. ``kwargs`` go to
    :func:`usable_cores`.
    """
    global _DEFAULT_SET
    own = environ is None
    environ = os.environ if own else environ
    if ("OMP_NUM_THREADS" in environ or "MXNET_OMP_MAX_THREADS" in environ
            or "mxnet" in sys.modules):
        return None
    value = str(usable_cores(**kwargs))
    environ["OMP_NUM_THREADS"] = value
    if own:
        _DEFAULT_SET = value
    return value


def set_by_default():
    """Whether this process's thread count is free to change: unset, or the one chosen here.

    A launcher that starts several processes on one host divides the cores
    between them only when the user did not choose a count.
    """
    if "MXNET_OMP_MAX_THREADS" in os.environ:
        return False
    value = os.environ.get("OMP_NUM_THREADS")
    return value is None or value == _DEFAULT_SET
