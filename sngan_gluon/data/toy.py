"""The toy sets, which need no files: scikit-learn's ``digits`` and the generated ``synthetic``.

Each loader takes ``(root, train, shard, size, download, channels)`` and
returns ``(images, labels, num_classes)``: uint8 (N, H, W, C), int32 (N,).
"""
import numpy as np

from .dataset import DatasetError
from .pixels import resize

__all__ = ["load_digits", "load_synthetic", "DIGITS_SEED", "DIGITS_TRAIN_FRACTION",
           "SYNTHETIC_SIZES"]

DIGITS_SEED = 0
DIGITS_TRAIN_FRACTION = 0.8
SYNTHETIC_SIZES = {True: 2048, False: 512}


def load_digits(root, train, shard, size, download, channels):
    """scikit-learn's 1,797 8x8 digits (values 0..16), split 80% / 20% by ``DIGITS_SEED``."""
    try:
        from sklearn import datasets  # optional: the [digits] extra
    except ImportError:
        raise DatasetError("the 'digits' dataset needs scikit-learn: pip install scikit-learn "
                           "(or pip install 'sngan_gluon[digits]')") from None
    digits = datasets.load_digits()
    order = np.random.RandomState(DIGITS_SEED).permutation(len(digits.images))
    n_train = int(DIGITS_TRAIN_FRACTION * len(order))  # 1437 of 1797
    index = np.sort(order[:n_train] if train else order[n_train:])[shard]
    # Interpolate the 0..16 values as floats, then map them to 0..255.
    values = resize(digits.images[index, :, :, None].astype(np.float32), size)
    images = np.clip(np.rint(values * (255.0 / 16.0)), 0, 255).astype(np.uint8)
    return images, digits.target[index].astype(np.int32), 10


# --------------------------------------------------------------------------- synthetic

_SYNTHETIC_COLOURS = np.array([  # one per class, far apart in hue
    [0.90, 0.10, 0.10], [0.95, 0.55, 0.05], [0.90, 0.85, 0.10], [0.40, 0.80, 0.10],
    [0.05, 0.60, 0.30], [0.10, 0.75, 0.80], [0.10, 0.35, 0.90], [0.45, 0.15, 0.85],
    [0.85, 0.15, 0.70], [0.55, 0.55, 0.55]], np.float32)


def load_synthetic(root, train, shard, size, download, channels):
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
