"""Pixels: resizing and channel conversion at load time, and the batch <-> tensor conversions.

Images are uint8 (N, H, W, C), channel-last; network tensors are float32
(N, C, H, W) in [-1, 1].
"""
import numpy as np
import mxnet as mx
from mxnet import nd

from .dataset import DatasetError

__all__ = ["to_tensor", "to_uint8", "resize", "resize_one", "set_channels", "opencv", "CHUNK"]

CHUNK = 2048  # images converted at a time, to bound the float / raw memory of large splits


def opencv():
    """The ``cv2`` module; a DatasetError saying what to install when it is missing."""
    try:
        import cv2
    except ImportError:  # pragma: no cover - opencv-python is a dependency
        raise DatasetError("resizing and decoding images needs OpenCV: pip install "
                           "opencv-python") from None
    return cv2


def resize_one(cv2, image, size):
    """(H, W, C) -> (size, size, C), same dtype: area averaging to shrink, bilinear to grow."""
    if image.shape[0] == size and image.shape[1] == size:
        return image
    shrink = image.shape[0] > size or image.shape[1] > size
    out = cv2.resize(image, (size, size),
                     interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
    return out.reshape(size, size, image.shape[2])  # OpenCV drops a single channel axis


def resize(images, size):
    """(N, H, W, C) -> (N, size, size, C), same dtype; the input itself when already that size."""
    if images.shape[1] == size and images.shape[2] == size:
        return images
    cv2 = opencv()
    out = np.empty((len(images), size, size, images.shape[3]), images.dtype)
    for i, image in enumerate(images):  # OpenCV resizes at most 4 channels per call
        out[i] = resize_one(cv2, image, size)
    return out


def set_channels(images, channels):
    """(N, H, W, C) uint8 -> (N, H, W, channels): repeat gray, or take the BT.601 luminance."""
    have = images.shape[3]
    if have == channels:
        return images
    if have == 1:
        return np.repeat(images, channels, axis=3)
    weights = np.array([0.299, 0.587, 0.114], np.float32)
    out = np.empty(images.shape[:3] + (1,), np.uint8)
    for start in range(0, len(images), CHUNK):
        luma = images[start:start + CHUNK].astype(np.float32) @ weights
        out[start:start + CHUNK, ..., 0] = np.clip(np.rint(luma), 0, 255)
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
