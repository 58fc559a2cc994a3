"""The TensorFlow Inception weights, read from PyTorch's file format without torch.

The 2015 TensorFlow Inception weights are published converted to PyTorch as
``weights-inception-2015-12-05-6726825d.pth`` (torch-fidelity release v0.2.0;
pytorch-fid publishes the same file). :func:`read_torch_state_dict` reads such
a file with the standard library and numpy: both of PyTorch's formats, the zip
archive (PyTorch >= 1.6) and the older single pickle stream. Unpickling is
restricted to the handful of globals a state dict needs, so a file cannot run
code. :func:`tf_inception_params` converts the file once into a Gluon
``.params`` file under ``~/.mxnet/models`` (``$MXNET_HOME/models`` when set) and
returns its path; the download is checked against the SHA-256 prefix in its
name (torch.hub's naming convention).
"""
import collections
import io
import os
import pickle
import zipfile

import mxnet as mx
import numpy as np

from ._compat import params_with_prefix
from .data import download
from .fileio import atomic_path, error_summary, file_digest, user_output
from .metrics import MetricsError
from .tf_inception import TFInceptionV3

__all__ = ["WEIGHTS_URL", "read_torch_state_dict", "convert_state_dict",
           "tf_inception_params", "models_folder"]

WEIGHTS_URL = ("https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/"
               "weights-inception-2015-12-05-6726825d.pth")
_PTH_NAME = WEIGHTS_URL.rsplit("/", 1)[1]
_PTH_SHA256_PREFIX = "6726825d"
_PARAMS_NAME = "tf_inception_v3-%s.params"  # by the source .pth's SHA-256 prefix

_DTYPES = {"FloatStorage": np.float32, "DoubleStorage": np.float64, "HalfStorage": np.float16,
           "LongStorage": np.int64, "IntStorage": np.int32, "ShortStorage": np.int16,
           "CharStorage": np.int8, "ByteStorage": np.uint8, "BoolStorage": np.bool_}
# The legacy (pre-1.6) format opens with this magic number and protocol version.
_LEGACY_MAGIC = 0x1950a86a20f9469cfc6c
_LEGACY_PROTOCOL = 1001
# State-dict entries that are not weights of the graph: BatchNorm's step counter and
# the classifier bias (the scores use the logits without it, as torch-fidelity does).
_IGNORED_SUFFIXES = ("num_batches_tracked",)
_IGNORED_KEYS = ("fc.bias",)


def _rebuild_tensor(storage, offset, size, stride, *unused):
    """torch._utils._rebuild_tensor_v2 in numpy: a strided view of the storage, copied."""
    if isinstance(storage, _PendingStorage):  # legacy format: the bytes come later
        return _PendingTensor(storage, offset, size, stride)
    itemsize = storage.dtype.itemsize
    view = np.lib.stride_tricks.as_strided(storage[offset:], shape=tuple(size),
                                           strides=tuple(s * itemsize for s in stride))
    return np.array(view)


def _rebuild_parameter(data, *unused):
    return data


class _PendingStorage(object):
    """A legacy-format storage: its bytes follow the pickle, so tensors are built after it."""

    def __init__(self, key, dtype):
        self.key, self.dtype = key, dtype


class _PendingTensor(object):
    def __init__(self, storage, offset, size, stride):
        self.args = (storage, offset, size, stride)

    def build(self, storages):
        storage, offset, size, stride = self.args
        return _rebuild_tensor(storages[storage.key], offset, size, stride)


class _StateDictUnpickler(pickle.Unpickler):
    """Unpickles a PyTorch state dict into numpy arrays; refuses every other global."""

    def __init__(self, stream, load_storage):
        super(_StateDictUnpickler, self).__init__(stream)
        self._load_storage = load_storage

    def find_class(self, module, name):
        if module == "torch._utils" and name == "_rebuild_tensor_v2":
            return _rebuild_tensor
        if module == "torch._utils" and name == "_rebuild_parameter":
            return _rebuild_parameter
        if module == "collections" and name == "OrderedDict":
            return collections.OrderedDict
        if module == "torch" and name in _DTYPES:
            return np.dtype(_DTYPES[name])
        raise pickle.UnpicklingError("unexpected global %s.%s (not a plain state dict)"
                                     % (module, name))

    def persistent_load(self, pid):
        # ('storage', dtype, key, location, numel[, view metadata])
        if not isinstance(pid, tuple) or len(pid) < 5 or pid[0] != "storage":
            raise pickle.UnpicklingError("unexpected persistent id %r" % (pid,))
        if not isinstance(pid[1], np.dtype):
            raise pickle.UnpicklingError("unexpected storage type %r" % (pid[1],))
        return self._load_storage(pid[1].newbyteorder("<"), str(pid[2]), int(pid[4]))


def _read_zip(path):
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        pickles = [n for n in names if n.endswith("/data.pkl") or n == "data.pkl"]
        if len(pickles) != 1:
            raise MetricsError("%s is a zip file but not a PyTorch file (no data.pkl)" % path)
        prefix = pickles[0][:-len("data.pkl")]
        if prefix + "byteorder" in names and archive.read(prefix + "byteorder") != b"little":
            raise MetricsError("%s was saved on a big-endian machine" % path)

        def load_storage(dtype, key, numel):
            return np.frombuffer(archive.read("%sdata/%s" % (prefix, key)), dtype, count=numel)

        return _StateDictUnpickler(io.BytesIO(archive.read(pickles[0])), load_storage).load()


def _read_legacy(path):
    with open(path, "rb") as f:
        if pickle.load(f) != _LEGACY_MAGIC or pickle.load(f) != _LEGACY_PROTOCOL:
            raise MetricsError("%s is not a PyTorch file" % path)
        pickle.load(f)  # sys_info: endianness and type sizes; little-endian is assumed
        pending = {}

        def load_storage(dtype, key, numel):
            return pending.setdefault(key, _PendingStorage(key, dtype))

        state = _StateDictUnpickler(f, load_storage).load()
        storages = {}
        for key in pickle.load(f):  # then each storage: its int64 element count, its bytes
            count = int(np.frombuffer(f.read(8), "<i8")[0])
            dtype = pending[key].dtype
            storages[key] = np.frombuffer(f.read(count * dtype.itemsize), dtype, count=count)
    if isinstance(state, dict):
        for name, value in state.items():
            if isinstance(value, _PendingTensor):
                state[name] = value.build(storages)
    return state


def read_torch_state_dict(path):
    """Read a PyTorch state dict (``torch.save`` of a dict of tensors) without torch.

    Parameters
    ----------
    path : str
        A ``.pth`` file in the zip format (PyTorch >= 1.6) or the legacy one.

    Returns
    -------
    collections.OrderedDict of str -> numpy.ndarray

    Raises
    ------
    MetricsError
        The file is missing, truncated, not a PyTorch file, or holds anything but
        tensors in a dict.
    """
    if not os.path.isfile(path):
        raise MetricsError("weights file not found: %s" % path)
    try:
        if zipfile.is_zipfile(path):
            state = _read_zip(path)
        else:
            state = _read_legacy(path)
    except MetricsError:
        raise
    except (pickle.UnpicklingError, zipfile.BadZipFile, EOFError, KeyError, ValueError,
            TypeError, IndexError, AttributeError, OSError) as err:
        raise MetricsError("cannot read %s as PyTorch weights: %s"
                           % (path, error_summary(err))) from err
    if not isinstance(state, dict) or not all(isinstance(v, np.ndarray) for v in state.values()):
        raise MetricsError("%s does not hold a state dict of tensors" % path)
    return state


def models_folder(root=None):
    """Where converted weights live: ``root``, else gluoncv's rule (``$MXNET_HOME/models``
    when ``MXNET_HOME`` is set, otherwise ``~/.mxnet/models``)."""
    if root is None:
        home = os.environ.get("MXNET_HOME", os.path.join("~", ".mxnet"))
        root = os.path.join(home, "models")
    return os.path.expanduser(root)


def _gluon_key(torch_key):
    # BatchNorm's affine parameters are weight/bias in torch, gamma/beta in Gluon.
    if torch_key.endswith(".bn.weight"):
        return torch_key[:-len("weight")] + "gamma"
    if torch_key.endswith(".bn.bias"):
        return torch_key[:-len("bias")] + "beta"
    return torch_key


def convert_state_dict(state, source="the state dict"):
    """Arrays for :class:`~sngan_gluon.tf_inception.TFInceptionV3` from torch-fidelity's keys.

    Parameters
    ----------
    state : dict of str -> numpy.ndarray
        torch-fidelity's ``FeatureExtractorInceptionV3`` (or pytorch-fid's
        ``FIDInceptionA``-style) state dict.
    source : str
        Named in error messages.

    Returns
    -------
    dict of str -> numpy.ndarray (float32)
        Keyed as Gluon's ``save_parameters`` keys the network.

    Raises
    ------
    MetricsError
        A key is missing or unexpected, or a shape differs: not this network.
    """
    expected = {key: param.shape
                for key, param in params_with_prefix(TFInceptionV3()).items()}
    arrays = {}
    for key, value in state.items():
        if key.endswith(_IGNORED_SUFFIXES) or key in _IGNORED_KEYS:
            continue
        arrays[_gluon_key(key)] = np.ascontiguousarray(value, dtype=np.float32)
    missing = sorted(set(expected) - set(arrays))
    unexpected = sorted(set(arrays) - set(expected))
    if missing or unexpected:
        raise MetricsError(
            "%s is not the TF Inception network: %d weights missing (%s), %d unexpected (%s)"
            % (source, len(missing), ", ".join(missing[:3]) or "-", len(unexpected),
               ", ".join(unexpected[:3]) or "-"))
    for key, shape in sorted(expected.items()):
        got = arrays[key].shape
        if len(got) != len(shape) or any(s not in (0, g) for s, g in zip(shape, got)):
            raise MetricsError("%s is not the TF Inception network: %s has shape %s, expected %s"
                               % (source, key, got, tuple(s or "?" for s in shape)))
    return arrays


def _save_params(arrays, path):
    """Write ``arrays`` as a Gluon ``.params`` file, atomically (nothing left on failure);
    a models folder that cannot be written is an OutputError naming the file."""
    with user_output(path), atomic_path(path) as tmp:
        mx.nd.save(tmp, {key: mx.nd.array(value) for key, value in arrays.items()})


def _is_torch_file(path):
    with open(path, "rb") as f:
        head = f.read(2)
    return head == b"PK" or head[:1] == b"\x80"  # a zip archive, or a pickle stream


def _convert(pth, params):
    arrays = convert_state_dict(read_torch_state_dict(pth), source=pth)
    _save_params(arrays, params)


def tf_inception_params(params_file=None, root=None):
    """A Gluon ``.params`` file of the TF Inception weights, converting and caching as needed.

    Parameters
    ----------
    params_file : str or None
        ``--feature-net-params``: the published ``.pth`` (or another
        torch-fidelity state dict), converted once into ``root``; or an already
        converted ``.params`` file, used as it is. None: the published weights,
        from ``root`` or downloaded there.
    root : str or None
        See :func:`models_folder`.

    Returns
    -------
    (str, str)
        The ``.params`` path and a name for these weights (for cache file names):
        ``tf-inception-<first 8 hex digits of the source file's SHA-256>``, so
        the published weights are ``tf-inception-6726825d``.

    Raises
    ------
    MetricsError
        Missing file (with the URL and where to put it), failed download or hash
        check, unreadable or foreign weights. Nothing is cached on failure.
    """
    folder = models_folder(root)
    if params_file is not None:
        if not os.path.isfile(params_file):
            raise MetricsError("TF Inception weights file not found: %s" % params_file)
        tag = file_digest(params_file, "sha256")[:8]
        if not _is_torch_file(params_file):
            return params_file, "tf-inception-%s" % tag
        params = os.path.join(folder, _PARAMS_NAME % tag)
        if not os.path.isfile(params):
            _convert(params_file, params)
        return params, "tf-inception-%s" % tag
    params = os.path.join(folder, _PARAMS_NAME % _PTH_SHA256_PREFIX)
    if os.path.isfile(params):
        return params, "tf-inception-%s" % _PTH_SHA256_PREFIX
    pth = os.path.join(folder, _PTH_NAME)
    if not os.path.isfile(pth):
        try:
            download.fetch(WEIGHTS_URL, pth)
        except download.DOWNLOAD_ERRORS as err:
            raise MetricsError(
                "TF Inception weights are missing: download %s into %s, or pass "
                "--feature-net-params FILE (the .pth or a converted .params); download failed: %s"
                % (WEIGHTS_URL, folder, error_summary(err)[:160])) from err
    digest = file_digest(pth, "sha256")
    if not digest.startswith(_PTH_SHA256_PREFIX):
        raise MetricsError("%s has SHA-256 %s..., expected %s...: a corrupt or different file; "
                           "delete it and download %s again"
                           % (pth, digest[:8], _PTH_SHA256_PREFIX, WEIGHTS_URL))
    _convert(pth, params)
    return params, "tf-inception-%s" % _PTH_SHA256_PREFIX
