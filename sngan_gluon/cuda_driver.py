"""What the NVIDIA driver says about this machine's GPUs, through ``ctypes``.

The CUDA driver API (``libcuda.so.1``) numbers the GPUs exactly as MXNet does
(``mx.gpu(i)`` is CUDA device ``i``: ``CUDA_VISIBLE_DEVICES`` and
``CUDA_DEVICE_ORDER`` apply to both), so each :class:`GPU` here is the device a
context of the same index runs on. The driver's release (``550.54.14``) comes
from NVML (``libnvidia-ml.so.1``), which the driver installs beside it.

Standard library only: it works with either MXNet build, and without MXNet.
"""
import collections
import ctypes

from ._cuda_libs import DRIVER_LIBRARY, driver_present

__all__ = ["GPU", "CudaDriverError", "driver_present", "driver_versions", "gpus"]

#: index: the CUDA device number (``mx.gpu(index)``); memory: bytes;
#: capability: (major, minor), e.g. (8, 6).
GPU = collections.namedtuple("GPU", "index name memory capability")

_CUDA_SUCCESS = 0
_CUDA_ERROR_NO_DEVICE = 100
_ATTR_CC_MAJOR = 75  # CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR
_ATTR_CC_MINOR = 76


class CudaDriverError(RuntimeError):
    """The driver is installed but a query failed (its CUresult is in the message)."""


def _libcuda():
    try:
        return ctypes.CDLL(DRIVER_LIBRARY)
    except OSError:
        return None


def _check(result, call):
    if result != _CUDA_SUCCESS:
        raise CudaDriverError("%s failed with CUDA error %d" % (call, result))


def driver_versions():
    """(driver release or None, highest CUDA version it runs, e.g. "12.4"), or None
    without a driver."""
    cuda = _libcuda()
    if cuda is None:
        return None
    version = ctypes.c_int()
    _check(cuda.cuDriverGetVersion(ctypes.byref(version)), "cuDriverGetVersion")
    cuda_version = "%d.%d" % (version.value // 1000, version.value % 1000 // 10)
    release = None
    try:
        nvml = ctypes.CDLL("libnvidia-ml.so.1")
        if nvml.nvmlInit_v2() == 0:
            text = ctypes.create_string_buffer(96)
            if nvml.nvmlSystemGetDriverVersion(text, ctypes.c_uint(96)) == 0:
                release = text.value.decode()
            nvml.nvmlShutdown()
    except (OSError, AttributeError):
        pass
    return release, cuda_version


def gpus():
    """The GPUs CUDA sees, as a list of :class:`GPU`; None where the driver is not installed.

    An empty list: the driver is there, but no GPU is visible (none in the machine, or
    ``CUDA_VISIBLE_DEVICES`` hides them all).
    """
    cuda = _libcuda()
    if cuda is None:
        return None
    result = cuda.cuInit(0)
    if result == _CUDA_ERROR_NO_DEVICE:
        return []
    _check(result, "cuInit")
    count = ctypes.c_int()
    _check(cuda.cuDeviceGetCount(ctypes.byref(count)), "cuDeviceGetCount")
    found = []
    for index in range(count.value):
        device = ctypes.c_int()
        _check(cuda.cuDeviceGet(ctypes.byref(device), index), "cuDeviceGet")
        name = ctypes.create_string_buffer(256)
        _check(cuda.cuDeviceGetName(name, 256, device), "cuDeviceGetName")
        memory = ctypes.c_size_t()
        _check(cuda.cuDeviceTotalMem_v2(ctypes.byref(memory), device), "cuDeviceTotalMem")
        major, minor = ctypes.c_int(), ctypes.c_int()
        _check(cuda.cuDeviceGetAttribute(ctypes.byref(major), _ATTR_CC_MAJOR, device),
               "cuDeviceGetAttribute")
        _check(cuda.cuDeviceGetAttribute(ctypes.byref(minor), _ATTR_CC_MINOR, device),
               "cuDeviceGetAttribute")
        found.append(GPU(index, name.value.decode(), memory.value, (major.value, minor.value)))
    return found
