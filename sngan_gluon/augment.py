"""Differentiable augmentation for data-efficient GAN training (DiffAugment).

Zhao, Liu, Lin, Zhu and Han, *Differentiable Augmentation for Data-Efficient
GAN Training*, NeurIPS 2020: on a small dataset the discriminator memorizes
the real images and its feedback to the generator degrades. DiffAugment
applies the same kind of random transformation to every image the
discriminator sees, real and generated, in the discriminator's *and* the
generator's step; the transformations are differentiable, so the generator's
gradient flows through them. Since real and generated images are
transformed alike, the discriminator cannot tell the transformations apart, and
the generator is not pushed to produce them (the generator's own output, what
sampling returns, is never transformed).

Policies (the paper's, for images in [-1, 1]):

* ``color``: brightness ``+ U(-0.5, 0.5)``, saturation ``(x - mean_c) * U(0, 2)
  + mean_c`` (mean over channels), contrast ``(x - mean) * U(0.5, 1.5) + mean``
  (mean over the image); one draw per image.
* ``translation``: a shift by up to 1/8 of the image size in each direction,
  whole pixels, the uncovered border filled with 0.
* ``cutout``: a square of half the image size, at a random centre, set to 0.

The random parameters are drawn from a ``numpy.random.RandomState`` the caller
owns (the trainer uses its noise generator, which checkpoints save), so a
resumed run augments exactly as an uninterrupted one.
"""
import numpy as np
from mxnet import nd

__all__ = ["POLICIES", "DiffAugment", "parse_policy"]

POLICIES = ("color", "translation", "cutout")
TRANSLATION_RATIO = 0.125
CUTOUT_RATIO = 0.5


def parse_policy(text):
    """``"translation,cutout"`` -> ``("translation", "cutout")``; ``""``/``None`` -> ``()``.

    Raises ValueError naming an unknown policy.
    """
    names = tuple(p.strip() for p in (text or "").split(",") if p.strip())
    unknown = [p for p in names if p not in POLICIES]
    if unknown:
        raise ValueError("unknown DiffAugment policy %r; choose from %s"
                         % (unknown[0], ", ".join(POLICIES)))
    return names


def _shift_matrices(shifts, size):
    """(N, size, size) float32: row i has a one at column i - shift (if in range)."""
    index = np.arange(size)
    return (index[None, None, :] == (index[None, :, None] - shifts[:, None, None])
            ).astype(np.float32)


class DiffAugment:
    """Random differentiable augmentation of image batches.

    Parameters
    ----------
    policy : str or sequence of str
        Names from :data:`POLICIES`, applied in that order (e.g.
        ``"color,translation,cutout"``, the paper's choice for CIFAR-10).

    Inputs: ``x`` NDArray (N, C, H, W), images in [-1, 1] (recorded by autograd
    when called inside ``autograd.record()``); ``rng`` a ``RandomState``.
    Output: NDArray (N, C, H, W) on ``x``'s context.
    """

    def __init__(self, policy):
        self.policy = parse_policy(policy if isinstance(policy, str) else ",".join(policy))

    def __bool__(self):
        return bool(self.policy)

    def __call__(self, x, rng):
        for name in self.policy:
            x = getattr(self, "_" + name)(x, rng)
        return x

    @staticmethod
    def _per_image(values, x):
        return nd.array(np.asarray(values, np.float32).reshape(-1, 1, 1, 1), ctx=x.context)

    def _scale_about_mean(self, x, axis, factors):
        """``(x - mean) * factor + mean``, the mean over ``axis``, one factor per image."""
        mean = nd.mean(x, axis=axis, keepdims=True)
        return nd.broadcast_add(nd.broadcast_mul(nd.broadcast_sub(x, mean),
                                                 self._per_image(factors, x)), mean)

    def _color(self, x, rng):
        n = x.shape[0]
        x = nd.broadcast_add(x, self._per_image(rng.uniform(size=n) - 0.5, x))  # brightness
        x = self._scale_about_mean(x, 1, rng.uniform(size=n) * 2)  # saturation
        return self._scale_about_mean(x, (1, 2, 3), rng.uniform(size=n) + 0.5)  # contrast

    def _translation(self, x, rng):
        """out[n, c, i, j] = x[n, c, i - dy_n, j - dx_n], 0 where that is outside."""
        n, c, h, w = x.shape
        max_y, max_x = int(h * TRANSLATION_RATIO + 0.5), int(w * TRANSLATION_RATIO + 0.5)
        dy = rng.randint(-max_y, max_y + 1, size=n)
        dx = rng.randint(-max_x, max_x + 1, size=n)
        # A shift is a product with a permutation-like matrix on each side: exact,
        # differentiable, and a few small batched GEMMs at these image sizes.
        rows = nd.array(np.repeat(_shift_matrices(dy, h), c, axis=0), ctx=x.context)
        cols = nd.array(np.repeat(_shift_matrices(dx, w), c, axis=0), ctx=x.context)
        flat = x.reshape((n * c, h, w))
        out = nd.batch_dot(nd.batch_dot(rows, flat), cols, transpose_b=True)
        return out.reshape((n, c, h, w))

    def _cutout(self, x, rng):
        n, _, h, w = x.shape
        size_y, size_x = int(h * CUTOUT_RATIO + 0.5), int(w * CUTOUT_RATIO + 0.5)
        top = rng.randint(0, h + (1 - size_y % 2), size=n) - size_y // 2
        left = rng.randint(0, w + (1 - size_x % 2), size=n) - size_x // 2
        ys, xs = np.arange(h)[None, :, None], np.arange(w)[None, None, :]
        inside = ((ys >= top[:, None, None]) & (ys < (top + size_y)[:, None, None])
                  & (xs >= left[:, None, None]) & (xs < (left + size_x)[:, None, None]))
        mask = nd.array((~inside).astype(np.float32)[:, None], ctx=x.context)
        return nd.broadcast_mul(x, mask)
