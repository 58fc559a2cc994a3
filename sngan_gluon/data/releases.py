"""The release formats of CIFAR-10, STL-10 and (Fashion-)MNIST, read into uint8 arrays.

Each loader takes ``(root, train, shard, size, download, channels)`` and
returns ``(images, labels, num_classes)``: uint8 (N, H, W, C), int32 (N,).
Missing files are found or fetched by :mod:`.download`.
"""
import gzip
import os

import numpy as np

from .._compat import repo_file_url
from .dataset import DatasetError
from .download import check_records, locate_files, locate_release, warn_if_unofficial
from .pixels import CHUNK, opencv, resize_one

__all__ = ["load_cifar10", "load_stl10", "load_mnist_like", "CIFAR10_URL", "CIFAR10_MD5",
           "STL10_URL", "STL10_MD5"]

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
# Gluon's copy of the archive (what mxnet.gluon.data.vision.CIFAR10 fetches), tried first.
_CIFAR10_MIRROR = ("gluon/dataset/cifar10", "cifar-10-binary.tar.gz",
                   "fab780a1e191a7eda0f345501ccd62d20f7ed891")
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


# --------------------------------------------------------------------------- cifar10

def _read_cifar10_batch(path):
    """A CIFAR-10 binary batch -> uint8 (n, 32, 32, 3) view and int32 labels (n,)."""
    check_records(path, _CIFAR10_RECORD, "CIFAR-10 records")
    records = np.fromfile(path, dtype=np.uint8).reshape(-1, _CIFAR10_RECORD)
    labels = records[:, 0].astype(np.int32)
    bad = np.flatnonzero(labels > 9)
    if bad.size:
        raise DatasetError("%s is corrupt: record %d has label %d, outside 0..9; delete it and "
                           "download it again" % (path, bad[0], labels[bad[0]]))
    return records[:, 1:].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1), labels


def load_cifar10(root, train, shard, size, download, channels):
    needed = (tuple("data_batch_%d.bin" % i for i in range(1, 6)) if train
              else ("test_batch.bin",))

    namespace, name, sha1 = _CIFAR10_MIRROR
    mirror = (repo_file_url(namespace, name), sha1)  # $MXNET_GLUON_REPO may move it
    folder = locate_release("CIFAR-10", root, [root, os.path.join(root, "cifar-10-batches-bin")],
                            needed, tuple(_CIFAR10_SHA1), "cifar-10-binary.tar.gz",
                            CIFAR10_URL, CIFAR10_MD5, root, download, [mirror])
    paths = [os.path.join(folder, name) for name in needed]
    warn_if_unofficial(paths, _CIFAR10_SHA1, "CIFAR-10")
    images, labels = zip(*(_read_cifar10_batch(path) for path in paths))
    return np.concatenate(images)[shard], np.concatenate(labels)[shard], 10


# --------------------------------------------------------------------------- stl10

def _stl10_images(path):
    """Memory-map an STL-10 ``*_X.bin`` file as uint8 (n, 3*96*96), checking its size."""
    check_records(path, _STL10_RECORD, "STL-10 images")
    return np.memmap(path, dtype=np.uint8, mode="r").reshape(-1, _STL10_RECORD)


def load_stl10(root, train, shard, size, download, channels):
    needed = ("unlabeled_X.bin", "train_X.bin") if train else ("test_X.bin", "test_y.bin")
    dest = os.path.join(root, "stl10_binary")
    folder = locate_release("STL-10", root, [dest, root], needed, _STL10_FILES,
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
    cv2 = opencv()
    out = np.empty((len(index), size, size, 3), np.uint8)
    for start in range(0, len(index), CHUNK):
        chunk = index[start:start + CHUNK]
        raw = np.concatenate([part[chunk[(chunk >= lo) & (chunk < hi)] - lo]
                              for part, lo, hi in zip(parts, bounds[:-1], bounds[1:])])
        # Each channel is stored column-major (Fortran order): as a C-order
        # (3, 96, 96) array it is indexed [channel, column, row].
        images = raw.reshape(-1, 3, _STL10_SIDE, _STL10_SIDE).transpose(0, 3, 2, 1)
        for i, image in enumerate(images):
            out[start + i] = resize_one(cv2, image, size)
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


def load_mnist_like(key):
    """A loader for ``key`` (``root/key/*.gz``), fetched from Gluon's copy of the files."""
    def load(root, train, shard, size, download, channels):
        folder = os.path.join(root, key)
        prefix = "train" if train else "t10k"
        names = (prefix + "-images-idx3-ubyte.gz", prefix + "-labels-idx1-ubyte.gz")
        sha1s = {name: _MNIST_SHA1[key][name] for name in names}
        paths = locate_files(key, folder, sha1s, "gluon/dataset/" + key, download)
        warn_if_unofficial(paths, sha1s, key)
        pixels, (n, rows, cols) = _read_idx(paths[0], 2051, 4)
        labels, (n_labels,) = _read_idx(paths[1], 2049, 2)
        if n != n_labels or labels.max(initial=0) > 9:
            raise DatasetError("%s and %s do not match (%d images, %d labels in 0..9 expected): "
                               "delete them and download them again" % (paths[0], paths[1], n, n))
        images = pixels.reshape(n, rows, cols, 1)[shard]
        return images, labels.astype(np.int32)[shard], 10
    return load
