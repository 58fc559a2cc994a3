"""Datasets by name, decoded once into memory, and their conversion to network tensors.

``get_dataset(name, ...)`` returns an :class:`ImageDataset`: a whole split held
as one uint8 array ``images`` (N, H, W, C), channel-last, RGB, square, in the
orientation of the source, with int32 ``labels`` (N,). Decoding, resizing and
channel conversion happen once, at load time; a training batch is then a slice
of that array turned into float32 (B, C, H, W) in [-1, 1] by :func:`to_tensor`
in one vectorized step.

Datasets (``DATASETS``; default side in ``DEFAULT_IMAGE_SIZES``):

* ``cifar10`` (32): the CIFAR-10 binary release. Read from ``root`` (where
  ``gluon.data.vision.CIFAR10(root=root)`` keeps it) or ``root/cifar-10-batches-bin``.
* ``stl10`` (48, as in Miyato et al. 2018, section 4): the STL-10 binary release
  under ``root/stl10_binary``. ``train=True`` is the 100,000 unlabeled images
  plus the 5,000 labelled training images, used unconditionally
  (``num_classes=0``, labels all 0: 95% of them have no label);
  ``train=False`` is the 8,000 labelled test images (``num_classes=10``).
* ``mnist``, ``fashion-mnist`` (32): Gluon's copies, in ``root/mnist`` and
  ``root/fashion-mnist``.
* ``folder`` (64): ``root`` is a folder of images (searched recursively;
  hidden files and folders skipped; symbolic links followed, each real folder
  read once, so a link loop adds nothing). Labels: when every image sits in
  one of two or more class sub-folders, the sorted sub-folder names become
  labels 0..K-1. Otherwise the folder is unlabelled (``num_classes=0``):
  with a single sub-folder, or with images directly in ``root``, even beside
  class sub-folders (then every image is used, without labels, and a warning
  says so). A file that cannot be decoded, a truncated PNG or JPEG included,
  raises a DatasetError naming it. The decoded images are cached on disk per
  (folder, size, channels) and memory-mapped by later runs (see
  :class:`FolderCache`); before decoding, the memory they will take is
  printed, and a folder that would not fit in the available memory is
  refused. ``train`` is ignored.
* ``digits`` (32): scikit-learn's bundled 8x8 handwritten digits, offline;
  a fixed 80% / 20% train / test split.
* ``synthetic`` (32): generated stripes and blobs in 10 classes, no files.

A missing CIFAR-10 / STL-10 archive is downloaded when ``download=True``
(Gluon's mirror first for CIFAR-10, then the dataset's original home), with
short network timeouts, so an offline machine fails in seconds with a
:class:`DatasetError` that names the URL to fetch and where to put it. An
archive already placed in ``root`` is verified and extracted without network.

Channels: ``channels=3`` repeats a grayscale source three times; ``channels=1``
turns a colour source into its luminance ``0.299 R + 0.587 G + 0.114 B``
(ITU-R BT.601, what OpenCV and Pillow use).
"""
import gzip
import hashlib
import http.client
import json
import os
import shutil
import socket
import sys
import tarfile
import urllib.request
import warnings
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlparse

import numpy as np
import mxnet as mx
from mxnet import gluon, nd
from tqdm import tqdm

from ._compat import repo_file_url
from .fileio import atomic_path, file_digest

__all__ = ["DATASETS", "DEFAULT_IMAGE_SIZES", "DatasetError", "ImageDataset", "get_dataset",
           "dataset_key", "to_tensor", "to_uint8"]

DATASETS = ("cifar10", "stl10", "mnist", "fashion-mnist", "folder", "digits", "synthetic")
DEFAULT_IMAGE_SIZES = {"cifar10": 32, "stl10": 48, "mnist": 32, "fashion-mnist": 32,
                       "folder": 64, "digits": 32, "synthetic": 32}
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".webp")

# Seconds to wait for a connection or for the next chunk of a download.
NETWORK_TIMEOUT = 10.0

CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"
CIFAR10_MD5 = "c32a1d4ab5d03f1284b67883e8d87530"
# SHA-1 of the official batch files, as listed by mxnet.gluon.data.vision.CIFAR10.
_CIFAR10_SHA1 = {
    "data_batch_1.bin": "aadd24acce27caa71bf4b10992e9e7b2d74c2540",
    "data_batch_2.bin": "c0ba65cce70568cd57b4e03e9ac8d2a5367c1795",
    "data_batch_3.bin": "1dd00a74ab1d17a6e7d73e185b69dbf31242f295",
    "data_batch_4.bin": "aab85764eb3584312d3c7f65fd2fd016e36a258e",
    "data_batch_5.bin": "26e2849e66a845b7f1e4614ae70f4889ae604628",
    "test_batch.bin": "67eb016db431130d61cd03c7ad570b013799c88c",
}
_CIFAR10_RECORD = 1 + 3 * 32 * 32  # label byte, then R, G, B planes, each 32x32 row-major

STL10_URL = "http://ai.stanford.edu/~acoates/stl10/stl10_binary.tar.gz"
STL10_MD5 = "91f7769df0f17e558f3565bffb0c7dfb"
_STL10_FILES = ("unlabeled_X.bin", "train_X.bin", "train_y.bin", "test_X.bin", "test_y.bin")
_STL10_SIDE = 96
_STL10_RECORD = 3 * _STL10_SIDE * _STL10_SIDE

# SHA-1 of Gluon's MNIST / Fashion-MNIST files (mxnet.gluon.data.vision.MNIST / FashionMNIST).
_MNIST_SHA1 = {
    "mnist": {
        "train-images-idx3-ubyte.gz": "6c95f4b05d2bf285e1bfb0e7960c31bd3b3f8a7d",
        "train-labels-idx1-ubyte.gz": "2a80914081dc54586dbdf242f9805a6b8d2a15fc",
        "t10k-images-idx3-ubyte.gz": "c3a25af1f52dad7f726cce8cacb138654b760d48",
        "t10k-labels-idx1-ubyte.gz": "763e7fa3757d93b0cdec073cef058b2004252c17"},
    "fashion-mnist": {
        "train-images-idx3-ubyte.gz": "0cf37b0d40ed5169c6b3aba31069a9770ac9043d",
        "train-labels-idx1-ubyte.gz": "236021d52f1e40852b06a4c3008d8de8aef1e40b",
        "t10k-images-idx3-ubyte.gz": "626ed6a7c06dd17c0eec72fa3be1740f146a2863",
        "t10k-labels-idx1-ubyte.gz": "17f9ab60e7257a1620f4ad76bbbaf857c3920701"},
}

DIGITS_SEED = 0
DIGITS_TRAIN_FRACTION = 0.8
SYNTHETIC_SIZES = {True: 2048, False: 512}
_CHUNK = 2048  # images converted at a time, to bound the float / raw memory of large splits

_checked_files = set()  # (path, size, mtime) already compared with the official SHA-1


class DatasetError(ValueError):
    """A dataset cannot be loaded because of something the user can fix; the message says
    what is wrong and what to do."""


class ImageDataset(gluon.data.Dataset):
    """One split of a dataset, decoded and held in memory.

    Parameters
    ----------
    images : numpy.ndarray
        uint8 (N, S, S, C), channel-last RGB (C=3) or grayscale (C=1).
    labels : numpy.ndarray
        integer (N,); all 0 when ``num_classes`` is 0.
    num_classes : int
        Number of classes, 0 for unlabelled data.
    name : str
        The dataset's name, for messages.

    Attributes
    ----------
    images, labels, num_classes, name, image_size (S), channels (C).

    ``dataset[i]`` is ``(images[i], labels[i])``: uint8 (S, S, C) and an int32 scalar.
    """

    def __init__(self, images, labels, num_classes, name="custom"):
        images = np.ascontiguousarray(images)
        labels = np.ascontiguousarray(labels, dtype=np.int32)
        if (images.dtype != np.uint8 or images.ndim != 4 or images.shape[1] != images.shape[2]
                or images.shape[3] not in (1, 3)):
            raise DatasetError("images must be uint8 (N, S, S, C) with C in (1, 3), got %s %s"
                               % (images.dtype, images.shape))
        if labels.shape != (len(images),):
            raise DatasetError("labels must have shape (%d,) to match the images, got %s"
                               % (len(images), labels.shape))
        if num_classes and len(labels) and not 0 <= labels.min() <= labels.max() < num_classes:
            raise DatasetError("labels must lie in 0..%d, found %d..%d"
                               % (num_classes - 1, labels.min(), labels.max()))
        self.images, self.labels = images, labels
        self.num_classes, self.name = int(num_classes), name

    @property
    def image_size(self):
        return self.images.shape[1]

    @property
    def channels(self):
        return self.images.shape[3]

    def __getitem__(self, idx):
        return self.images[idx], self.labels[idx]

    def __len__(self):
        return len(self.images)

    def __repr__(self):
        return "ImageDataset(%r, %d images %dx%dx%d, %d classes)" % (
            self.name, len(self), self.image_size, self.image_size, self.channels,
            self.num_classes)


def get_dataset(name, root="data", image_size=None, channels=3, train=True,
                num_parts=1, part_index=0, download=True):
    """Load one split of a dataset into memory.

    Parameters
    ----------
    name : str
        One of ``DATASETS`` (case-insensitive; ``_`` may stand for ``-``).
    root : str
        Folder of the dataset files; for ``folder``, the folder of images.
    image_size : int, optional
        Side S of the square images returned; default ``DEFAULT_IMAGE_SIZES[name]``.
        Shrinking uses area averaging, enlarging bilinear interpolation.
    channels : {1, 3}
        Channels C of the images returned (see the module docstring).
    train : bool
        The training split, else the test split.
    num_parts, part_index : int
        Keep only shard ``part_index`` of ``num_parts``: images
        ``part_index, part_index + num_parts, ...`` of the split. Shards of one
        split are disjoint and together cover it (one per distributed worker).
    download : bool
        Download missing CIFAR-10 / STL-10 / MNIST files.

    Returns
    -------
    ImageDataset
        ``images`` uint8 (N, S, S, C), ``labels`` int32 (N,).

    Raises
    ------
    DatasetError
        For an unknown name, bad sizes, missing files that cannot be
        downloaded, corrupt files or an empty image folder.
    """
    key = dataset_key(name)
    if key not in DATASETS:
        raise DatasetError("unknown dataset %r; valid names: %s" % (name, ", ".join(DATASETS)))
    size = DEFAULT_IMAGE_SIZES[key] if image_size is None else image_size
    if not _is_int(size) or size < 1:
        raise DatasetError("image_size must be a positive integer, got %r" % (image_size,))
    if channels not in (1, 3):
        raise DatasetError("channels must be 1 or 3, got %r" % (channels,))
    if not _is_int(num_parts) or num_parts < 1:
        raise DatasetError("num_parts must be a positive integer, got %r" % (num_parts,))
    if not _is_int(part_index) or not 0 <= part_index < num_parts:
        raise DatasetError("part_index must be in 0..%d for num_parts=%d, got %r"
                           % (num_parts - 1, num_parts, part_index))
    shard = slice(int(part_index), None, int(num_parts))
    root = os.path.expanduser(str(root))
    loader = _LOADERS[key]
    images, labels, num_classes = loader(root, bool(train), shard, int(size), download,
                                         channels)
    if len(images) == 0:
        raise DatasetError("shard %d of %d of %s is empty: the split has fewer than %d images"
                           % (part_index, num_parts, key, num_parts))
    images = _set_channels(_resize(images, int(size)), channels)
    return ImageDataset(images, labels, num_classes, key)


def dataset_key(name):
    """The ``DATASETS`` spelling of a dataset name: lower case, ``-`` for ``_``."""
    return str(name).lower().replace("_", "-")


def _is_int(value):
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


# --------------------------------------------------------------------------- pixels

def _cv2():
    try:
        import cv2
    except ImportError:  # pragma: no cover - opencv-python is a dependency
        raise DatasetError("resizing and decoding images needs OpenCV: pip install "
                           "opencv-python") from None
    return cv2


def _resize_one(cv2, image, size):
    """(H, W, C) -> (size, size, C), same dtype: area averaging to shrink, bilinear to grow."""
    if image.shape[0] == size and image.shape[1] == size:
        return image
    shrink = image.shape[0] > size or image.shape[1] > size
    out = cv2.resize(image, (size, size),
                     interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
    return out.reshape(size, size, image.shape[2])  # OpenCV drops a single channel axis


def _resize(images, size):
    """(N, H, W, C) -> (N, size, size, C), same dtype; the input itself when already that size."""
    if images.shape[1] == size and images.shape[2] == size:
        return images
    cv2 = _cv2()
    out = np.empty((len(images), size, size, images.shape[3]), images.dtype)
    for i, image in enumerate(images):  # OpenCV resizes at most 4 channels per call
        out[i] = _resize_one(cv2, image, size)
    return out


def _set_channels(images, channels):
    """(N, H, W, C) uint8 -> (N, H, W, channels): repeat gray, or take the BT.601 luminance."""
    have = images.shape[3]
    if have == channels:
        return images
    if have == 1:
        return np.repeat(images, channels, axis=3)
    weights = np.array([0.299, 0.587, 0.114], np.float32)
    out = np.empty(images.shape[:3] + (1,), np.uint8)
    for start in range(0, len(images), _CHUNK):
        luma = images[start:start + _CHUNK].astype(np.float32) @ weights
        out[start:start + _CHUNK, ..., 0] = np.clip(np.rint(luma), 0, 255)
    return out


def to_tensor(batch, ctx=None):
    """uint8 images (N, H, W, C), numpy or NDArray -> float32 NDArray (N, C, H, W) in [-1, 1].

    Computes ``x / 127.5 - 1``. An NDArray is converted on its own context (or
    ``ctx``); a numpy array is converted on the host and copied to ``ctx``
    (default CPU).
    """
    if batch.ndim != 4 or batch.dtype != np.uint8:
        raise DatasetError("to_tensor expects uint8 images (N, H, W, C), got %s %s"
                           % (np.dtype(batch.dtype).name, tuple(batch.shape)))
    if isinstance(batch, nd.NDArray):
        if ctx is not None:
            batch = batch.as_in_context(ctx)
        return batch.transpose((0, 3, 1, 2)).astype(np.float32) / 127.5 - 1
    out = np.empty((batch.shape[0], batch.shape[3]) + batch.shape[1:3], np.float32)
    np.copyto(out, batch.transpose(0, 3, 1, 2), casting="unsafe")
    np.divide(out, 127.5, out=out)
    np.subtract(out, 1, out=out)
    return nd.array(out, ctx=ctx or mx.cpu(), dtype=np.float32)


def to_uint8(x):
    """float images (N, C, H, W) in [-1, 1], numpy or NDArray -> numpy uint8 (N, H, W, C).

    Inverse of :func:`to_tensor`: ``round((x + 1) * 127.5)`` clipped to 0..255.
    """
    if isinstance(x, nd.NDArray):
        x = x.asnumpy()
    x = np.asarray(x)
    if x.ndim != 4:
        raise DatasetError("to_uint8 expects images (N, C, H, W), got shape %s" % (x.shape,))
    out = np.clip(np.rint((x.astype(np.float32) + 1) * 127.5), 0, 255).astype(np.uint8)
    return np.ascontiguousarray(out.transpose(0, 2, 3, 1))


# --------------------------------------------------------------------------- files

def _warn_if_unofficial(paths, sha1s, what):
    """Warn once per file when a file's SHA-1 differs from the official release.

    Such files are still used when their format is valid (a re-packed copy, or a
    small file a test wrote); the warning says so, so a surprising result can be
    traced to them.
    """
    odd = []
    for path in paths:
        stat = os.stat(path)
        key = (os.path.abspath(path), stat.st_size, stat.st_mtime_ns)
        if key in _checked_files:
            continue
        _checked_files.add(key)
        if not gluon.utils.check_sha1(path, sha1s[os.path.basename(path)]):
            odd.append(path)
    if odd:
        warnings.warn("%s file(s) %s differ from the official release (SHA-1 mismatch); using "
                      "them since their format is valid" % (what, ", ".join(odd)), stacklevel=4)


def _probe(url):
    """Raise OSError within NETWORK_TIMEOUT seconds when ``url``'s host cannot be reached.

    Gluon's downloader (requests without a timeout, 5 retries) can wait for
    minutes on a machine without network; this check makes it fail fast.
    """
    parts = urlparse(url)
    if urllib.request.getproxies().get(parts.scheme):
        return  # the proxy, not the host, is what requests will talk to
    port = parts.port or (443 if parts.scheme == "https" else 80)
    socket.create_connection((parts.hostname, port), timeout=NETWORK_TIMEOUT).close()


def _fetch(url, path, md5):
    """Download ``url`` to ``path`` and check its MD5; raise on failure, leaving no file."""
    with urllib.request.urlopen(url, timeout=NETWORK_TIMEOUT) as response, \
            atomic_path(path) as partial:
        with open(partial, "wb") as fout, tqdm(total=response.length, unit="B", unit_scale=True,
                                               desc="downloading " + os.path.basename(path)) as bar:
            for block in iter(lambda: response.read(1 << 20), b""):
                fout.write(block)
                bar.update(len(block))
        digest = file_digest(partial, "md5")
        if digest != md5:
            raise OSError("the download of %s has MD5 %s, not %s (incomplete or changed)"
                          % (url, digest, md5))


def _extract(archive, dest, names):
    """Extract the members of ``archive`` whose base names are in ``names`` into ``dest``.

    Only those members are written, each under its base name, so the archive's
    own folder layout (and any hostile path in it) does not matter.
    """
    os.makedirs(dest, exist_ok=True)
    found = set()
    try:
        with tarfile.open(archive, "r:*") as tar:
            for member in tar:
                base = os.path.basename(member.name)
                if member.isfile() and base in names and base not in found:
                    with tar.extractfile(member) as src, \
                            atomic_path(os.path.join(dest, base)) as part, open(part, "wb") as dst:
                        shutil.copyfileobj(src, dst, 1 << 20)
                    found.add(base)
    except (tarfile.TarError, EOFError, OSError) as err:
        raise DatasetError("cannot extract %s (%s): delete it and download it again"
                           % (archive, err)) from None
    missing = sorted(set(names) - found)
    if missing:
        raise DatasetError("archive %s lacks %s: delete it and download it again"
                           % (archive, ", ".join(missing)))


def _find_folder(folders, names):
    for folder in folders:
        if all(os.path.isfile(os.path.join(folder, name)) for name in names):
            return folder
    return None


def _locate_release(what, root, folders, needed, all_files, archive_name, url, md5, dest,
                    download, mirror=None):
    """The folder (one of ``folders``) holding the files ``needed``, obtained if need be.

    In order: files already there; an archive ``root/archive_name`` already there
    (MD5-checked, extracted into ``dest``); ``mirror()`` (e.g. Gluon's own
    download); a download of ``url``. Raises DatasetError naming the URL and the
    place for the files when all of that fails.
    """
    folder = _find_folder(folders, needed)
    if folder is not None:
        return folder
    archive = os.path.join(root, archive_name)
    places = " or ".join(folders)
    if os.path.isfile(archive):
        if file_digest(archive, "md5") == md5:
            _extract(archive, dest, all_files)
            return dest
        if not download:
            raise DatasetError("%s archive %s is incomplete or corrupt (MD5 is not %s): delete it "
                               "and download it again from %s" % (what, archive, md5, url))
    reasons = ["%s has the wrong MD5" % archive] if os.path.isfile(archive) else []
    if download:
        if mirror is not None:
            try:
                mirror()
            except Exception as err:  # any failure of the mirror: try the original home
                reasons.append("mirror: %s: %s" % (type(err).__name__, err))
            folder = _find_folder(folders, needed)
            if folder is not None:
                return folder
        try:
            _fetch(url, archive, md5)
            _extract(archive, dest, all_files)
            return dest
        except (OSError, http.client.HTTPException, DatasetError) as err:
            reasons.append("%s: %s: %s" % (urlparse(url).hostname, type(err).__name__, err))
    why = ("download failed (%s; offline?)" % "; ".join(reasons) if reasons
           else "download=False")
    raise DatasetError("%s files %s not found in %s and %s: download %s (MD5 %s) and put it in "
                       "%s (it is extracted on the next run), or extract its %s there"
                       % (what, ", ".join(needed), places, why, url, md5, root,
                          ", ".join(all_files)))


def _check_records(path, record, what):
    """Raise DatasetError unless the file holds a whole, non-zero number of ``record`` bytes."""
    size = os.path.getsize(path)
    if size == 0 or size % record:
        raise DatasetError("%s is truncated or corrupt (%d bytes, not a whole number of %d-byte "
                           "%s): delete it and download it again" % (path, size, record, what))


# --------------------------------------------------------------------------- cifar10

def _read_cifar10_batch(path):
    """A CIFAR-10 binary batch -> uint8 (n, 32, 32, 3) view and int32 labels (n,)."""
    _check_records(path, _CIFAR10_RECORD, "CIFAR-10 records")
    records = np.fromfile(path, dtype=np.uint8).reshape(-1, _CIFAR10_RECORD)
    labels = records[:, 0].astype(np.int32)
    bad = np.flatnonzero(labels > 9)
    if bad.size:
        raise DatasetError("%s is corrupt: record %d has label %d, outside 0..9; delete it and "
                           "download it again" % (path, bad[0], labels[bad[0]]))
    return records[:, 1:].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1), labels


def _load_cifar10(root, train, shard, size, download, channels):
    needed = (tuple("data_batch_%d.bin" % i for i in range(1, 6)) if train
              else ("test_batch.bin",))

    def mirror():
        _probe(repo_file_url("gluon/dataset/cifar10", "cifar-10-binary.tar.gz"))
        gluon.data.vision.CIFAR10(root=root, train=train)

    folder = _locate_release("CIFAR-10", root, [root, os.path.join(root, "cifar-10-batches-bin")],
                             needed, tuple(_CIFAR10_SHA1), "cifar-10-binary.tar.gz",
                             CIFAR10_URL, CIFAR10_MD5, root, download, mirror)
    paths = [os.path.join(folder, name) for name in needed]
    _warn_if_unofficial(paths, _CIFAR10_SHA1, "CIFAR-10")
    images, labels = zip(*(_read_cifar10_batch(path) for path in paths))
    return np.concatenate(images)[shard], np.concatenate(labels)[shard], 10


# --------------------------------------------------------------------------- stl10

def _stl10_images(path):
    """Memory-map an STL-10 ``*_X.bin`` file as uint8 (n, 3*96*96), checking its size."""
    _check_records(path, _STL10_RECORD, "STL-10 images")
    return np.memmap(path, dtype=np.uint8, mode="r").reshape(-1, _STL10_RECORD)


def _load_stl10(root, train, shard, size, download, channels):
    needed = ("unlabeled_X.bin", "train_X.bin") if train else ("test_X.bin", "test_y.bin")
    dest = os.path.join(root, "stl10_binary")
    folder = _locate_release("STL-10", root, [dest, root], needed, _STL10_FILES,
                             "stl10_binary.tar.gz", STL10_URL, STL10_MD5, dest, download)
    parts = [_stl10_images(os.path.join(folder, name)) for name in needed if "_X" in name]
    bounds = np.cumsum([0] + [len(part) for part in parts])
    index = np.arange(bounds[-1])[shard]
    if train:
        labels, num_classes = np.zeros(len(index), np.int32), 0
    else:
        label_path = os.path.join(folder, "test_y.bin")
        labels = np.fromfile(label_path, dtype=np.uint8).astype(np.int32)
        if len(labels) != bounds[-1] or labels.min(initial=1) < 1 or labels.max(initial=1) > 10:
            raise DatasetError("%s is corrupt (%d labels in 1..10 expected for %d images): delete "
                               "it and download it again" % (label_path, bounds[-1], bounds[-1]))
        labels, num_classes = labels[index] - 1, 10
    # Read, reorient and resize a chunk at a time: the unlabeled split is 2.8 GB raw.
    cv2 = _cv2()
    out = np.empty((len(index), size, size, 3), np.uint8)
    for start in range(0, len(index), _CHUNK):
        chunk = index[start:start + _CHUNK]
        raw = np.concatenate([part[chunk[(chunk >= lo) & (chunk < hi)] - lo]
                              for part, lo, hi in zip(parts, bounds[:-1], bounds[1:])])
        # Each channel is stored column-major (Fortran order): as a C-order
        # (3, 96, 96) array it is indexed [channel, column, row].
        images = raw.reshape(-1, 3, _STL10_SIDE, _STL10_SIDE).transpose(0, 3, 2, 1)
        for i, image in enumerate(images):
            out[start + i] = _resize_one(cv2, image, size)
    return out, labels, num_classes


# --------------------------------------------------------------------------- mnist

def _read_idx(path, magic, header):
    """The payload of an (MNIST) IDX file as uint8, with its header's dimensions."""
    try:
        with gzip.open(path, "rb") as fin:
            data = fin.read()
    except (OSError, EOFError) as err:
        raise DatasetError("%s is truncated or corrupt (%s): delete it and download it again"
                           % (path, err)) from None
    dims = np.frombuffer(data[:4 * header], dtype=">u4").astype(np.int64)
    if len(dims) != header or dims[0] != magic or len(data) != 4 * header + np.prod(dims[1:]):
        raise DatasetError("%s is truncated or corrupt (not an IDX file of the expected size): "
                           "delete it and download it again" % path)
    return np.frombuffer(data, dtype=np.uint8, offset=4 * header), dims[1:]


def _load_mnist_like(key, gluon_class):
    """A loader for ``key`` (``root/key/*.gz``); ``gluon_class`` names the Gluon dataset that
    downloads it."""
    def load(root, train, shard, size, download, channels):
        folder = os.path.join(root, key)
        prefix = "train" if train else "t10k"
        image_name, label_name = prefix + "-images-idx3-ubyte.gz", prefix + "-labels-idx1-ubyte.gz"
        paths = [os.path.join(folder, image_name), os.path.join(folder, label_name)]
        urls = [repo_file_url("gluon/dataset/" + key, name)
                for name in (image_name, label_name)]
        if not all(os.path.isfile(path) for path in paths):
            why = "download=False"
            if download:
                try:
                    _probe(urls[0])
                    getattr(gluon.data.vision, gluon_class)(root=folder, train=train)
                except Exception as err:  # noqa: BLE001 - reported in the message below
                    why = "download failed (%s: %s; offline?)" % (type(err).__name__, err)
            if not all(os.path.isfile(path) for path in paths):
                raise DatasetError("%s files %s and %s not found in %s and %s: download %s and %s "
                                   "and put them in %s"
                                   % (key, image_name, label_name, folder, why, urls[0], urls[1],
                                      folder))
        _warn_if_unofficial(paths, _MNIST_SHA1[key], key)
        pixels, (n, rows, cols) = _read_idx(paths[0], 2051, 4)
        labels, (n_labels,) = _read_idx(paths[1], 2049, 2)
        if n != n_labels or labels.max(initial=0) > 9:
            raise DatasetError("%s and %s do not match (%d images, %d labels in 0..9 expected): "
                               "delete them and download them again" % (paths[0], paths[1], n, n))
        images = pixels.reshape(n, rows, cols, 1)[shard]
        return images, labels.astype(np.int32)[shard], 10
    return load


# --------------------------------------------------------------------------- memory

def image_bytes(num, size, channels):
    """Bytes that ``num`` uint8 images of ``size`` x ``size`` x ``channels`` take."""
    return int(num) * size * size * channels


def format_bytes(num):
    """``12345678`` -> ``'11.8 MiB'``."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if num < 1024 or unit == "GiB":
            return ("%d %s" if unit == "B" else "%.1f %s") % (num, unit)
        num /= 1024.0


def available_memory():
    """Bytes of memory available to a new allocation without swapping, or None if unknown.

    Linux's ``MemAvailable`` (free memory plus reclaimable caches), else the
    free physical pages; None where neither can be read.
    """
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def check_memory(num, size, channels, what):
    """Raise DatasetError when ``num`` images would not fit in the available memory."""
    need, have = image_bytes(num, size, channels), available_memory()
    if have is not None and need > have:
        raise DatasetError("%s: %d images at %dx%dx%d need %s of memory, more than the %s "
                           "available: use a smaller --image-size or fewer images"
                           % (what, num, size, size, channels, format_bytes(need),
                              format_bytes(have)))


# --------------------------------------------------------------------------- folder cache

class FolderCache:
    """The decoded images of an image folder, kept on disk for later runs.

    One ``.npy`` array per (folder, size, channels), uint8 (N, S, S, C) in the
    order of the sorted file list, beside a JSON manifest of that list with
    each file's size and modification time. A later run whose listing and
    stats match the manifest memory-maps the array instead of decoding again;
    any added, removed or changed file makes it decode afresh.

    The cache lives in ``root/.sngan_gluon_cache`` (hidden, so never listed as
    images); where ``root`` is not writable, in
    ``$XDG_CACHE_HOME/sngan_gluon/folders/<hash of root's real path>``; where
    neither is, the images stay in memory only. Delete the folder to drop it.

    Parameters
    ----------
    root : str
        The image folder.
    files : list of str
        Image paths relative to ``root``, in the order of the array.
    size, channels : int
        Side and channels of the decoded images.
    """

    VERSION = 1
    FOLDER_NAME = ".sngan_gluon_cache"

    def __init__(self, root, files, size, channels):
        self.root, self.size, self.channels = root, int(size), int(channels)
        self.entries = [[path] + _file_stat(os.path.join(root, path)) for path in files]
        self.folder = self._writable_folder()
        name = "%dpx-%dch" % (self.size, self.channels)
        self.array_path = self.folder and os.path.join(self.folder, name + ".npy")
        self.manifest_path = self.folder and os.path.join(self.folder, name + ".json")

    def _manifest(self):
        return {"version": self.VERSION, "size": self.size, "channels": self.channels,
                "files": self.entries}

    def load(self):
        """The cached images as a read-only memory map, or None when absent or stale."""
        if self.folder is None:
            return None
        try:
            with open(self.manifest_path) as f:
                if json.load(f) != self._manifest():
                    return None
            images = np.load(self.array_path, mmap_mode="r")
        except (OSError, ValueError):
            return None
        shape = (len(self.entries), self.size, self.size, self.channels)
        return images if images.shape == shape and images.dtype == np.uint8 else None

    def save(self, images):
        """Write ``images`` and then the manifest; a failure (disk full) only warns."""
        if self.folder is None:
            return
        try:
            with atomic_path(self.array_path) as tmp:
                np.save(tmp, images)
            with atomic_path(self.manifest_path) as tmp, open(tmp, "w") as f:
                json.dump(self._manifest(), f)
        except OSError as err:
            warnings.warn("cannot cache the decoded images in %s (%s): they will be decoded "
                          "again next time" % (self.folder, err), stacklevel=3)

    def _writable_folder(self):
        digest = hashlib.sha1(os.path.realpath(self.root).encode()).hexdigest()[:16]
        user_cache = os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")
        for folder in (os.path.join(self.root, self.FOLDER_NAME),
                       os.path.join(user_cache, "sngan_gluon", "folders", digest)):
            try:
                os.makedirs(folder, exist_ok=True)
            except OSError:
                continue
            if os.access(folder, os.W_OK):
                return folder
        return None


def _file_stat(path):
    """[size in bytes, modification time in ns] of ``path`` (following links)."""
    try:
        stat = os.stat(path)
    except OSError as err:
        raise DatasetError("cannot read image %s (%s): fix or remove it"
                           % (path, err.strerror)) from None
    return [stat.st_size, stat.st_mtime_ns]


# --------------------------------------------------------------------------- folder

def _list_images(root):
    """Image paths under ``root``, relative and sorted; hidden files and folders skipped.

    Symbolic links to folders are followed, but every real folder is read once,
    under the first name met: a link back to a parent (a loop) or a second link
    to a folder adds nothing.
    """
    found, seen = [], set()
    for folder, subdirs, files in os.walk(root, followlinks=True):
        real = os.path.realpath(folder)
        if real in seen:
            subdirs[:] = []
            continue
        seen.add(real)
        subdirs[:] = [d for d in subdirs if not d.startswith(".")]
        rel = os.path.relpath(folder, root)
        found.extend(os.path.normpath(os.path.join(rel, name)) for name in files
                     if not name.startswith(".") and name.lower().endswith(IMAGE_EXTENSIONS))
    return sorted(found)


def _folder_labels(root, files):
    """Labels from class sub-folders: (int32 labels (N,), num_classes); see the module doc."""
    tops = [path.split(os.sep)[0] if os.sep in path else None for path in files]
    classes = sorted(set(top for top in tops if top is not None))
    in_root = tops.count(None)
    if in_root and classes:
        warnings.warn("%d image(s) lie directly in %s beside the sub-folders %s: the folder is "
                      "used without labels; move them into a sub-folder to train with classes"
                      % (in_root, root, ", ".join(classes[:3]) + (", ..." if len(classes) > 3
                                                                 else "")), stacklevel=4)
    if in_root or len(classes) < 2:
        return np.zeros(len(files), np.int32), 0
    return np.searchsorted(classes, tops).astype(np.int32), len(classes)


def _is_truncated_jpeg(data):
    """Whether ``data`` is a JPEG whose last scan has no end-of-image marker.

    OpenCV decodes such a file without an error, painting the missing rows
    grey. The entropy-coded data of a scan cannot hold the byte pair FF D9, so
    the end-of-image marker must follow the last start-of-scan marker (FF DA);
    an EXIF thumbnail's own markers come before it.
    """
    if data[:2] != b"\xff\xd8":
        return False
    last_scan = data.rfind(b"\xff\xda")
    return last_scan < 0 or data.find(b"\xff\xd9", last_scan + 2) < 0


def _decode(path, size):
    """One image file -> uint8 (size, size, 3) RGB: centre square crop, then resize."""
    cv2 = _cv2()
    try:
        data = np.fromfile(path, dtype=np.uint8)
        image = None if _is_truncated_jpeg(data.tobytes()) else cv2.imdecode(data,
                                                                             cv2.IMREAD_COLOR)
    except (OSError, cv2.error):
        image = None
    if image is None:
        raise DatasetError("cannot read image %s (unreadable, truncated or corrupt): fix or "
                           "remove it" % path)
    height, width = image.shape[:2]
    side = min(height, width)
    top, left = (height - side) // 2, (width - side) // 2
    square = image[top:top + side, left:left + side, ::-1]  # OpenCV decodes BGR
    return _resize_one(cv2, np.ascontiguousarray(square), size)


def _decode_all(root, files, size, channels):
    """Decode ``files`` (relative to ``root``) -> uint8 (N, size, size, channels) in memory."""
    out = np.empty((len(files), size, size, 3), np.uint8)
    paths = [os.path.join(root, path) for path in files]
    # OpenCV releases the GIL while decoding, so threads decode in parallel.
    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
        for i, image in enumerate(pool.map(lambda path: _decode(path, size), paths)):
            out[i] = image
    return _set_channels(out, channels)


def _load_folder(root, train, shard, size, download, channels):
    if not os.path.isdir(root):
        raise DatasetError("image folder %r does not exist: pass the folder holding your images "
                           "as root (--data-path)" % root)
    files = _list_images(root)
    if not files:
        raise DatasetError("no images (%s) found under %r: put your images there, optionally one "
                           "sub-folder per class" % (", ".join(IMAGE_EXTENSIONS), root))
    labels, num_classes = _folder_labels(root, files)
    cache = FolderCache(root, files, size, channels)
    images = cache.load()
    if images is None:
        check_memory(len(files), size, channels, "folder %s" % root)
        print("decoding %d images of %s to %dx%dx%d (%s); they are kept in %s for later runs"
              % (len(files), root, size, size, channels,
                 format_bytes(image_bytes(len(files), size, channels)), cache.folder or
                 "memory only (no writable cache folder)"), file=sys.stderr)
        images = _decode_all(root, files, size, channels)
        cache.save(images)
    else:
        check_memory(len(range(len(files))[shard]), size, channels, "folder %s" % root)
    return images[shard], labels[shard], num_classes


# --------------------------------------------------------------------------- digits

def _load_digits(root, train, shard, size, download, channels):
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise DatasetError("the 'digits' dataset needs scikit-learn: pip install scikit-learn "
                           "(or pip install 'sngan_gluon[digits]')") from None
    digits = load_digits()
    order = np.random.RandomState(DIGITS_SEED).permutation(len(digits.images))
    n_train = int(DIGITS_TRAIN_FRACTION * len(order))  # 1437 of 1797
    index = np.sort(order[:n_train] if train else order[n_train:])[shard]
    # Interpolate the 0..16 values as floats, then map them to 0..255.
    values = _resize(digits.images[index, :, :, None].astype(np.float32), size)
    images = np.clip(np.rint(values * (255.0 / 16.0)), 0, 255).astype(np.uint8)
    return images, digits.target[index].astype(np.int32), 10


# --------------------------------------------------------------------------- synthetic

_SYNTHETIC_COLOURS = np.array([  # one per class, far apart in hue
    [0.90, 0.10, 0.10], [0.95, 0.55, 0.05], [0.90, 0.85, 0.10], [0.40, 0.80, 0.10],
    [0.05, 0.60, 0.30], [0.10, 0.75, 0.80], [0.10, 0.35, 0.90], [0.45, 0.15, 0.85],
    [0.85, 0.15, 0.70], [0.55, 0.55, 0.55]], np.float32)


def _load_synthetic(root, train, shard, size, download, channels):
    """Class c: stripes at angle c * 18 degrees in colour c, with a blob of the complement.

    Phase, stripe frequency and blob place and size vary per image, from
    ``RandomState(0)`` (train) or ``RandomState(1)`` (test); pixels are
    generated at ``size``, so every size is sharp.
    """
    n = SYNTHETIC_SIZES[train]
    rng = np.random.RandomState(0 if train else 1)
    labels = (np.arange(n) % 10).astype(np.int32)
    phase = rng.uniform(0, 2 * np.pi, n).astype(np.float32)
    freq = rng.uniform(2.0, 4.0, n).astype(np.float32)
    centre = rng.uniform(0.25, 0.75, (n, 2)).astype(np.float32)
    radius = rng.uniform(0.08, 0.18, n).astype(np.float32)
    index = np.arange(n)[shard]
    grid = (np.arange(size, dtype=np.float32) + 0.5) / size
    yy, xx = grid[:, None], grid[None, :]
    out = np.empty((len(index), size, size, 3), np.uint8)
    for start in range(0, len(index), 256):
        i = index[start:start + 256]
        angle = (labels[i] * np.pi / 10).astype(np.float32)[:, None, None]
        along = xx * np.cos(angle) + yy * np.sin(angle)
        stripes = 0.5 + 0.5 * np.sin(2 * np.pi * freq[i, None, None] * along
                                     + phase[i, None, None])
        dist2 = (xx - centre[i, 0, None, None]) ** 2 + (yy - centre[i, 1, None, None]) ** 2
        blob = np.exp(-dist2 / (2 * radius[i, None, None] ** 2))[..., None]
        colour = _SYNTHETIC_COLOURS[labels[i]][:, None, None, :]
        image = stripes[..., None] * colour * (1 - blob) + blob * (1 - colour)
        out[start:start + 256] = np.clip(np.rint(image * 255), 0, 255)
    return out, labels[index], 10


_LOADERS = {
    "cifar10": _load_cifar10,
    "stl10": _load_stl10,
    "mnist": _load_mnist_like("mnist", "MNIST"),
    "fashion-mnist": _load_mnist_like("fashion-mnist", "FashionMNIST"),
    "folder": _load_folder,
    "digits": _load_digits,
    "synthetic": _load_synthetic,
}
