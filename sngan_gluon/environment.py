"""What the doctor (``python -m sngan_gluon.doctor``) reports: one screen about this machine.

Python, numpy, the MXNet version and build (``mx.runtime.Features``), the
OpenMP threads; each CUDA library that MXNet's CUDA build links and the file it
was loaded from; the NVIDIA driver; each GPU with its memory and compute
capability and whether the installed MXNet has kernels for it; and what to do
next. :func:`report` returns the lines and the exit code, :mod:`sngan_gluon.cli.doctor`
prints them.
"""
import os
import platform
import sys

import numpy as np

from . import _cuda_libs, _threads, cuda_driver, devices

__all__ = ["report"]

_GPU_INSTALL = "pip uninstall -y mxnet && pip install '.[gpu]' (README, GPUs)"


def _omp_threads():
    value = os.environ.get("MXNET_OMP_MAX_THREADS") or os.environ.get("OMP_NUM_THREADS")
    from_package = _threads.set_by_default() and "OMP_NUM_THREADS" in os.environ
    source = ("set by sngan_gluon: the physical cores this process may use" if from_package
              else "set by the user" if value else "MXNet's default")
    return "%s (%s)" % (value or "unset", source)


def _gib(size):
    return "%.1f GiB" % (size / 2 ** 30)


def report(build=None, gpus=None, driver=None, library_path=_cuda_libs.loaded_path):
    """(lines, exit code): 1 where a GPU is present that the installed CUDA build of
    MXNet has no kernels for, or the driver could not be queried; else 0.

    The arguments replace the queries (tests): ``build`` a :class:`devices.MXNetBuild`,
    ``gpus`` a list of :class:`cuda_driver.GPU` (None: no driver), ``driver`` a
    (release, CUDA version) pair, ``library_path`` a function of a soname.
    """
    build = build or devices.mxnet_build()
    status = 0
    lines = ["Python %s (%s), %s %s" % (platform.python_version(), sys.executable,
                                         platform.system(), platform.machine()),
             "numpy %s" % np.__version__,
             "MXNet %s (distribution %s), %s build: %s"
             % (build.version, build.distribution or "unknown", "CUDA" if build.cuda else "CPU",
                ", ".join(build.features) or "no features"),
             "OpenMP threads: %s" % _omp_threads()]

    if build.cuda:
        lines.append("CUDA libraries:")
        for soname in _cuda_libs.MXNET_CU117_NEEDS + (_cuda_libs.DRIVER_LIBRARY,):
            lines.append("  %-20s %s" % (soname, library_path(soname) or "not loaded"))
    else:
        lines.append("CUDA libraries: none (the CPU build links none)")

    try:
        if gpus is None and driver is None:
            driver = cuda_driver.driver_versions()
            gpus = cuda_driver.gpus() if driver is not None else None
    except cuda_driver.CudaDriverError as err:
        lines.append("NVIDIA driver: installed, but %s" % err)
        return lines + ["Next: check the driver with nvidia-smi"], 1
    if driver is None:
        lines.append("NVIDIA driver: not installed (%s not found)" % _cuda_libs.DRIVER_LIBRARY)
    else:
        lines.append("NVIDIA driver: %s (runs CUDA up to %s)" % (driver[0] or "release unknown",
                                                                   driver[1]))

    lines.append("GPUs:" if gpus else "GPUs: none visible")
    usable, problems = [], []
    for gpu in gpus or ():
        problem = devices.kernel_problem(gpu, build) if build.cuda else None
        if not build.cuda:
            kernels = "no (the CPU build)"
        elif build.kernels is None:
            kernels = "not known for %s" % build.name
        elif problem:
            kernels, status = "NO", 1
            problems.append(problem)
        else:
            kernels = "yes"
        if build.cuda and not problem:
            usable.append(gpu.index)
        lines.append("  %d: %s, %s, compute capability %d.%d; MXNet kernels: %s"
                     % (gpu.index, gpu.name, _gib(gpu.memory), gpu.capability[0],
                        gpu.capability[1], kernels))
    lines.append("Next: " + _next(build, gpus, usable, problems))
    return lines, status


def _next(build, gpus, usable, problems):
    if problems:
        return ("%s; %s" % ("train on the others with --gpus %s" % ",".join(map(str, usable)),
                            problems[0]) if usable else problems[0])
    if usable:
        return "train on the GPU with --use-gpu%s" % (
            " (or --gpus %s)" % ",".join(map(str, usable)) if len(usable) > 1 else "")
    if build.cuda:
        if gpus is None:
            return "install the NVIDIA driver (>= 520), or use the CPU build"
        return ("MXNet's CUDA build sees no GPU: check nvidia-smi and CUDA_VISIBLE_DEVICES, or "
                "use the CPU build")
    if gpus:
        return "to train on the GPU: %s, then --use-gpu" % _GPU_INSTALL
    return "train on the CPU (no --use-gpu); for an NVIDIA GPU see docs/gpu.md"
