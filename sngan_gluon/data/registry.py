"""Datasets by name: the list of names, their default sizes, and :func:`get_dataset`."""
import os

import numpy as np

from ..fileio import array_digest
from .dataset import DatasetError, ImageDataset
from .folder import load_folder
from .pixels import resize, set_channels
from .releases import load_cifar10, load_mnist_like, load_stl10
from .toy import load_digits, load_synthetic

__all__ = ["DATASETS", "DEFAULT_IMAGE_SIZES", "get_dataset", "dataset_key"]

_LOADERS = {  # each: (root, train, shard, size, download, channels) -> images, labels, classes
    "cifar10": load_cifar10,
    "stl10": load_stl10,
    "mnist": load_mnist_like("mnist"),
    "fashion-mnist": load_mnist_like("fashion-mnist"),
    "folder": load_folder,
    "digits": load_digits,
    "synthetic": load_synthetic,
}
DATASETS = tuple(_LOADERS)
DEFAULT_IMAGE_SIZES = {"cifar10": 32, "stl10": 48, "mnist": 32, "fashion-mnist": 32,
                       "folder": 64, "digits": 32, "synthetic": 32}


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
        ``images`` uint8 (N, S, S, C), ``labels`` int32 (N,); ``identity``: the
        name, part, image count and pixel digest of these images, which a
        checkpoint records so that a resume notices a changed dataset; ``part``
        ``(part_index, num_parts)``.

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
    images = set_channels(resize(images, int(size)), channels)
    part = (int(part_index), int(num_parts))
    identity = {"dataset": key, "part": list(part), "count": len(images),
                "digest": array_digest(images)}
    return ImageDataset(images, labels, num_classes, key, identity=identity, part=part)


def dataset_key(name):
    """The ``DATASETS`` spelling of a dataset name: lower case, ``-`` for ``_``."""
    return str(name).lower().replace("_", "-")


def _is_int(value):
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)
