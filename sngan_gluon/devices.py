"""Turn the device flags (``--use-gpu``, ``--gpus``, ``--cpus``) into MXNet contexts.

The one place train, generate and evaluate get their contexts from. A GPU run is
refused here, before any network is built, with one line (:class:`DeviceError`)
where it cannot work: a CPU build of MXNet, no NVIDIA driver, no GPU visible, a
GPU id that does not exist, or a GPU whose compute capability the installed
MXNet has no kernels for.

Kernels: a CUDA binary compiled for ``sm_XY`` runs on GPUs of the same major
capability X and a minor at least Y; with no PTX in the library, nothing is
compiled for newer GPUs at run time. ``mxnet-cu117==1.9.1`` carries sm_50, sm_60,
sm_70, sm_80 and sm_86 and no PTX (``cuobjdump --list-elf / --list-ptx`` on its
``libmxnet.so``), so it runs on capability 5.0 to 8.9, Maxwell to Ada, and on
Hopper (9.0) and Blackwell (10.x, 12.x) every kernel launch fails with "no kernel
image is available for execution on the device". Other CUDA builds are not
checked (:data:`KERNELS` lists what is known).
"""
import mxnet as mx

from . import _cuda_libs, cuda_driver
from .config import ConfigError

__all__ = ["DeviceError", "KERNELS", "MXNetBuild", "mxnet_build", "has_kernels",
           "supported_range", "kernel_problem", "contexts", "sn_hybridize_kwargs"]

#: The ``sm_XY`` kernels each known CUDA build of MXNet carries, as (X, Y).
KERNELS = {"mxnet-cu117": ((5, 0), (6, 0), (7, 0), (8, 0), (8, 6))}


class DeviceError(ConfigError):
    """The device flags cannot work on this machine; the message is one line."""


class MXNetBuild:
    """The MXNet in this process: ``version``, ``cuda`` (bool), ``distribution``
    (``mxnet-cu117``, or None where MXNet has no pip metadata), ``kernels`` (the
    ``sm`` list of :data:`KERNELS`, None where not known)."""

    def __init__(self, version, cuda, distribution, features=()):
        self.version, self.cuda, self.distribution = version, cuda, distribution
        self.features = tuple(features)
        self.kernels = KERNELS.get(distribution) if cuda else None

    @property
    def name(self):
        """``mxnet-cu117 1.9.1`` (the distribution where known)."""
        return "%s %s" % (self.distribution or "mxnet", self.version)


def mxnet_build():
    """The :class:`MXNetBuild` of the imported ``mxnet`` (``mx.runtime.Features``)."""
    features = mx.runtime.Features()
    enabled = [name for name in features if features.is_enabled(name)]
    cuda = "CUDA" in enabled
    builds = _cuda_libs.installed_builds()
    matching = [name for name in builds if _cuda_libs.is_cuda_build(name) == cuda]
    return MXNetBuild(mx.__version__, cuda, matching[0] if matching else None, enabled)


def has_kernels(capability, kernels):
    """True where one of ``kernels`` ((X, Y) pairs) runs on a GPU of ``capability``."""
    major, minor = capability
    return any(x == major and y <= minor for x, y in kernels)


def supported_range(kernels):
    """``5.0-8.9``: the capabilities ``kernels`` run on, as one range."""
    low, high = min(kernels), max(kernels)
    return "%d.%d-%d.9" % (low[0], low[1], high[0])


def kernel_problem(gpu, build):
    """One line saying why ``build`` cannot run on ``gpu`` (a :class:`cuda_driver.GPU`);
    None where it can, or where the build's kernels are not known."""
    if build.kernels is None or has_kernels(gpu.capability, build.kernels):
        return None
    major, minor = gpu.capability
    if gpu.capability >= (9, 0):
        source = ("or MXNet built from source with CUDA >= 11.8 for sm_90 (12.8 for "
                  "sm_100 and later)")
    else:
        source = "or MXNet built from source for sm_%d%d" % (major, minor)
    return ("GPU %d (%s) has compute capability %d.%d, and %s has kernels for %s only "
            "(%s): run on the CPU (leave out --use-gpu/--gpus), %s"
            % (gpu.index, gpu.name, major, minor, build.name, supported_range(build.kernels),
               ", ".join("sm_%d%d" % k for k in build.kernels), source))


def contexts(use_gpu=False, gpus=(), cpus=1):
    """The MXNet contexts for the device flags: ``[mx.gpu(i) for i in gpus]`` (``[0]``
    with ``use_gpu``), else ``cpus`` CPU contexts.

    Raises :class:`DeviceError` (one line) where the GPUs asked for cannot run this
    MXNet. Nothing is allocated on a device.
    """
    if not (use_gpu or gpus):
        return [mx.cpu(i) for i in range(cpus)]
    flag = "--gpus %s" % ",".join(map(str, gpus)) if gpus else "--use-gpu"
    build = mxnet_build()
    if not build.cuda:
        raise DeviceError("%s: the installed MXNet (%s) is the CPU build; for NVIDIA GPUs "
                          "install a CUDA build: pip install '.[gpu]' (docs/gpu.md), or "
                          "leave out %s" % (flag, build.name, flag))
    found = cuda_driver.gpus()
    if found is None:
        raise DeviceError("%s: the NVIDIA driver is not installed (%s not found); install it "
                          "(>= 520), or leave out %s"
                          % (flag, _cuda_libs.DRIVER_LIBRARY, flag))
    if not found:
        raise DeviceError("%s: %s is MXNet's CUDA build, but CUDA sees no GPU on this "
                          "machine: check CUDA_VISIBLE_DEVICES and nvidia-smi, or leave out %s"
                          % (flag, build.name, flag))
    ids = list(gpus) or [0]
    missing = [i for i in ids if i >= len(found)]
    if missing:
        raise DeviceError("%s: only %d GPU(s) visible (ids 0..%d)"
                          % (flag, len(found), len(found) - 1))
    for i in ids:
        problem = kernel_problem(found[i], build)
        if problem:
            raise DeviceError("%s: %s" % (flag, problem))
    return [mx.gpu(i) for i in ids]


def sn_hybridize_kwargs(ctxs, engine_ordered=None):
    """``hybridize()`` arguments for a network whose SN layers write ``u`` in-graph.

    A ``static_alloc`` graph declares an input that an operator mutates as read
    only, so the engine does not order the write of ``u`` before the next call's
    read; on the CPU the layer's fence orders them through the parallel-random
    resource (docs/spectral_norm.md, "Ordering the write"), which no rule keeps on
    a GPU (cuDNN dropout holds other resources). Without ``static_alloc`` the graph
    runs node by node through ``Imperative::InvokeOp``, whose ``SetDependency``
    declares every mutated input (``FMutateInputs``) as written: the engine then
    orders the write before every later read on any device. So off the CPU (and
    wherever ``engine_ordered`` is True) the network is hybridized without it.
    """
    if engine_ordered is None:
        engine_ordered = any(ctx.device_type != "cpu" for ctx in ctxs)
    return {} if engine_ordered else dict(static_alloc=True, static_shape=True)
