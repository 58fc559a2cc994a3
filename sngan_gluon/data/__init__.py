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

The package, one job per module: ``registry`` (names, sizes, :func:`get_dataset`),
``dataset`` (:class:`ImageDataset`, :class:`DatasetError`), ``pixels`` (resizing,
channels, tensors), ``download`` (the package's one downloader; finding and
verifying release files), ``releases`` (the CIFAR-10, STL-10 and MNIST formats),
``folder`` (image folders, their cache, the memory check) and ``toy`` (``digits``,
``synthetic``).
"""
from . import download
from .dataset import DatasetError, ImageDataset
from .download import NETWORK_TIMEOUT
from .folder import (IMAGE_EXTENSIONS, FolderCache, available_memory, check_memory,
                     format_bytes, image_bytes)
from .pixels import to_tensor, to_uint8
from .registry import DATASETS, DEFAULT_IMAGE_SIZES, dataset_key, get_dataset
from .releases import CIFAR10_MD5, CIFAR10_URL, STL10_MD5, STL10_URL

__all__ = ["DATASETS", "DEFAULT_IMAGE_SIZES", "DatasetError", "ImageDataset", "get_dataset",
           "dataset_key", "to_tensor", "to_uint8"]
