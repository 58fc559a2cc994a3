"""The in-memory dataset: one split as a uint8 array, and the error users can fix."""
import numpy as np
from mxnet import gluon

from ..errors import UserError

__all__ = ["DatasetError", "ImageDataset"]


class DatasetError(UserError, ValueError):
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
    identity : dict, optional
        What a checkpoint records of the data it was trained on: ``dataset``,
        ``part`` (``[index, count]``), ``count`` (these images) and ``digest`` (of
        their pixels, :func:`~sngan_gluon.fileio.array_digest`); None when unknown
        (a dataset built by hand).
    part : (int, int)
        ``(index, count)``: these are images ``index, index + count, ...`` of the split.

    Attributes
    ----------
    images, labels, num_classes, name, identity, part, image_size (S), channels (C).

    ``dataset[i]`` is ``(images[i], labels[i])``: uint8 (S, S, C) and an int32 scalar.
    """

    def __init__(self, images, labels, num_classes, name="custom", identity=None, part=(0, 1)):
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
        self.identity, self.part = identity, tuple(part)

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
