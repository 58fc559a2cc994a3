"""Find the MXNet build that is installed, and load its CUDA 11 libraries before ``mxnet``.

MXNet 1.9.1's CUDA wheel (``mxnet-cu117``) links the CUDA 11 libraries by name
(``libcudart.so.11.0``, ``libcublas.so.11``, ``libcudnn.so.8``, ...; the full
list is :data:`MXNET_CU117_NEEDS`) and ships none of them. The ``[gpu]`` extra
installs NVIDIA's ``nvidia-*-cu11`` wheels, which put those libraries in
``site-packages/nvidia/<part>/lib``, a folder the dynamic loader does not search.
So :func:`load_cuda_libraries` opens each of them by its full path with
``RTLD_GLOBAL`` before ``mxnet`` is imported; when ``libmxnet.so`` is loaded,
the loader finds every name it needs already loaded (glibc matches a loaded
library by its soname) and looks no further. PyTorch loads its ``nvidia-*``
dependencies the same way (``torch/__init__.py``, ``_load_global_deps``).

The driver's ``libcuda.so.1`` is the one library no wheel can bring. Where a
CUDA build is installed and that library is missing, ``import mxnet`` would
fail with ``OSError: libcuda.so.1: cannot open shared object file``; this module
raises :class:`MXNetBuildError` with one line that says what to do instead.

This module uses the standard library only: it runs before numpy and mxnet.
"""
import ctypes
import glob
import importlib.util
import os
import re
import sys

__all__ = ["MXNetBuildError", "MXNET_CU117_NEEDS", "NVIDIA_LIBRARIES", "DRIVER_LIBRARY",
           "installed_builds", "check_builds", "nvidia_lib_dirs", "load_cuda_libraries",
           "loaded_path", "driver_present", "LOADED"]

#: What ``mxnet/libmxnet.so`` of ``mxnet-cu117==1.9.1`` lists as NEEDED, besides the
#: C/C++ runtime and the driver's ``libcuda.so.1`` (``readelf -d``).
MXNET_CU117_NEEDS = ("libcudart.so.11.0", "libcublas.so.11", "libcufft.so.10",
                     "libcusolver.so.11", "libcusparse.so.11", "libcurand.so.10",
                     "libnvrtc.so.11.2", "libnvToolsExt.so.1", "libcudnn.so.8", "libnccl.so.2")

#: The NVIDIA driver's CUDA library: installed with the driver, never by pip.
DRIVER_LIBRARY = "libcuda.so.1"

#: (folder under site-packages/nvidia, file pattern), in an order where each library's
#: own CUDA dependencies come before it (cublasLt before cublas, cuBLAS and cuSPARSE
#: before cuSOLVER). The cuDNN 8 parts (``libcudnn_*``) and NVRTC's builtins are opened
#: by cuDNN and NVRTC at run time by name, so they are loaded here too.
NVIDIA_LIBRARIES = (
    ("cuda_runtime", "libcudart.so.11.0"),
    ("cublas", "libcublasLt.so.11"),
    ("cublas", "libcublas.so.11"),
    ("cufft", "libcufft.so.10"),
    ("curand", "libcurand.so.10"),
    ("cusparse", "libcusparse.so.11"),
    ("cusolver", "libcusolver.so.11"),
    ("cuda_nvrtc", "libnvrtc.so.11.2"),
    ("cuda_nvrtc", "libnvrtc-builtins.so.11.*"),
    ("nvtx", "libnvToolsExt.so.1"),
    ("nccl", "libnccl.so.2"),
    ("cudnn", "libcudnn.so.8"),
    ("cudnn", "libcudnn_ops_infer.so.8"),
    ("cudnn", "libcudnn_ops_train.so.8"),
    ("cudnn", "libcudnn_cnn_infer.so.8"),
    ("cudnn", "libcudnn_cnn_train.so.8"),
    ("cudnn", "libcudnn_adv_infer.so.8"),
    ("cudnn", "libcudnn_adv_train.so.8"),
)

#: (file name, full path) of every library :func:`load_cuda_libraries` loaded.
LOADED = []

# The distributions that install the module ``mxnet``: the CPU build and the CUDA
# builds (mxnet-cu117, mxnet-cu112, ...); mxnet-native/-mkl are older CPU variants.
_BUILD_NAME = re.compile(r"^mxnet(-native|-mkl|-cu\d+(mkl)?)?$")

# A CPU build is one pip install; a CUDA build also needs the nvidia-* wheels, which
# the package's [gpu] extra brings.
_CPU = "pip install mxnet==1.9.1"
_GPU = "pip install '.[gpu]' from the sngan_gluon folder"


class MXNetBuildError(ImportError):
    """MXNet cannot be imported as installed; the message is one line saying what to do."""


def installed_builds(paths=None):
    """``{name: version}`` of the installed distributions that provide the module ``mxnet``.

    Read from the names of the ``*.dist-info`` / ``*.egg-info`` folders on ``sys.path``
    (``mxnet_cu117-1.9.1.dist-info``), which pip writes as ``name-version``: listing a
    folder is quicker than ``importlib.metadata``'s parse of every installed
    distribution's metadata, and this runs on every ``import sngan_gluon``.
    """
    builds = {}
    for entry in (sys.path if paths is None else paths):
        try:
            names = os.listdir(entry or ".")
        except OSError:
            continue
        for folder in names:
            if not folder.lower().startswith("mxnet") or not folder.endswith(
                    (".dist-info", ".egg-info")):
                continue
            parts = folder.rsplit(".", 1)[0].split("-")
            name = parts[0].lower().replace("_", "-")
            if len(parts) > 1 and _BUILD_NAME.match(name):
                builds.setdefault(name, parts[1])
    return builds


def is_cuda_build(name):
    """True for a CUDA build's distribution name (``mxnet-cu117``)."""
    return "-cu" in name


def check_builds(builds):
    """Raise :class:`MXNetBuildError` unless exactly one MXNet build is installed.

    An MXNet on ``sys.path`` without distribution metadata (built from source and
    added by hand) passes: it is the user's own.
    """
    if len(builds) > 1:
        names = " and ".join("%s %s" % nv for nv in sorted(builds.items()))
        raise MXNetBuildError(
            "two MXNet builds are installed at once (%s): they share the module folder "
            "'mxnet', so neither is whole; keep one: pip uninstall -y %s, then %s (CPU) or %s"
            % (names, " ".join(sorted(builds)), _CPU, _GPU))
    if not builds and importlib.util.find_spec("mxnet") is None:
        raise MXNetBuildError("MXNet is not installed: %s for the CPU, or %s for an "
                             "NVIDIA GPU" % (_CPU, _GPU))


def nvidia_lib_dirs(paths=None):
    """``{part: folder}`` of the ``site-packages/nvidia/<part>/lib`` folders on ``sys.path``."""
    found = {}
    for entry in (sys.path if paths is None else paths):
        for lib_dir in sorted(glob.glob(os.path.join(entry or ".", "nvidia", "*", "lib"))):
            found.setdefault(os.path.basename(os.path.dirname(lib_dir)), lib_dir)
    return found


def driver_present():
    """True where the NVIDIA driver's ``libcuda.so.1`` can be loaded."""
    try:
        ctypes.CDLL(DRIVER_LIBRARY)
    except OSError:
        return False
    return True


def load_cuda_libraries(builds=None, paths=None):
    """Load the CUDA 11 libraries of the ``nvidia-*-cu11`` wheels, before ``mxnet``.

    Does nothing for a CPU build, and loads nothing where the wheels are absent
    (CUDA 11 installed system-wide is then found by the loader as usual). Raises
    :class:`MXNetBuildError` (one line) where two builds are installed, none is, or a
    CUDA build is installed on a machine without the NVIDIA driver.
    """
    builds = installed_builds() if builds is None else builds
    check_builds(builds)
    cuda = [name for name in builds if is_cuda_build(name)]
    if not cuda:
        return LOADED
    dirs = nvidia_lib_dirs(paths)
    for part, pattern in NVIDIA_LIBRARIES:
        files = sorted(glob.glob(os.path.join(dirs.get(part, "/nonexistent"), pattern)))
        if files and all(os.path.basename(files[0]) != name for name, _ in LOADED):
            ctypes.CDLL(files[0], mode=ctypes.RTLD_GLOBAL)
            LOADED.append((os.path.basename(files[0]), files[0]))
    if not driver_present():
        raise MXNetBuildError(
            "%s %s is MXNet's CUDA build, but the NVIDIA driver is not installed "
            "(%s not found): install the driver (>= 520), or use the CPU: "
            "pip uninstall -y %s && %s" % (cuda[0], builds[cuda[0]], DRIVER_LIBRARY, cuda[0], _CPU))
    return LOADED


class _LinkMap(ctypes.Structure):
    # the public head of glibc's struct link_map (<link.h>)
    _fields_ = [("l_addr", ctypes.c_void_p), ("l_name", ctypes.c_char_p),
                ("l_ld", ctypes.c_void_p), ("l_next", ctypes.c_void_p),
                ("l_prev", ctypes.c_void_p)]


_RTLD_NOLOAD = getattr(os, "RTLD_NOLOAD", 4)
_RTLD_DI_LINKMAP = 2


def loaded_path(soname):
    """The file a library already loaded in this process under ``soname`` came from.

    None where no library of that name is loaded. Uses ``dlopen(RTLD_NOLOAD)``, which
    finds a loaded library by its soname without loading anything, and ``dlinfo``.
    """
    try:
        handle = ctypes.CDLL(soname, mode=_RTLD_NOLOAD | os.RTLD_LAZY)._handle
    except OSError:
        return None
    libc = ctypes.CDLL(None)
    dlinfo = getattr(libc, "dlinfo", None) or ctypes.CDLL("libdl.so.2").dlinfo
    link_map = ctypes.POINTER(_LinkMap)()
    if dlinfo(ctypes.c_void_p(handle), _RTLD_DI_LINKMAP, ctypes.byref(link_map)) != 0:
        return None
    return os.path.realpath(link_map.contents.l_name.decode())
