"""Generators rebuilt from checkpoints, and images drawn from them.

A sampling request the generator cannot honour (a truncation too small, a class
it does not know, an output type it does not write) is a :class:`SamplingError`,
one line naming the flag.
"""
import math
import os

import numpy as np

import mxnet as mx
from mxnet import nd

from . import checkpoint as ckpt
from .checkpoint_search import load_newest
from .data import to_uint8
from .errors import UserError
from .fileio import atomic_path, error_summary, user_output
from .models import get_generator
from .visualize import save_image_grid

#: The smallest truncation accepted. Redrawing keeps a draw with probability
#: about 0.8 t for a small t, so the redraws needed grow as 1 / t: at 0.01 a
#: batch takes about a thousand cheap rounds; at 1e-6 it would take millions.
MIN_TRUNCATION = 0.01


class SamplingError(UserError, ValueError):
    """A sampling setting the generator cannot honour; the message names the flag."""


def check_truncation(truncation):
    """Raise SamplingError unless ``truncation`` is None or a finite number >= MIN_TRUNCATION."""
    if truncation is None:
        return
    if not (isinstance(truncation, (int, float)) and math.isfinite(truncation)
            and truncation >= MIN_TRUNCATION):
        raise SamplingError("--truncation must be a finite number >= %g (smaller values reject "
                         "almost every noise draw), got %r" % (MIN_TRUNCATION, truncation))


def draw_noise(rng, n, z_dim, truncation=None):
    """``n`` noise vectors (n, z_dim) float32 from ``rng`` (a numpy RandomState).

    ``truncation`` t redraws entries with |z| > t (the truncation trick); it
    must be at least :data:`MIN_TRUNCATION` (SamplingError otherwise).
    """
    check_truncation(truncation)
    z = rng.normal(size=(n, z_dim))
    if truncation is not None:
        bad = np.abs(z) > truncation
        while bad.any():
            z[bad] = rng.normal(size=int(bad.sum()))
            bad = np.abs(z) > truncation
    return z.astype(np.float32)


def check_label(label, num_classes):
    """Raise SamplingError unless ``label`` is None or a class of a generator of
    ``num_classes`` classes (0: unconditional, which takes no label)."""
    if label is not None and num_classes == 0:
        raise SamplingError("--class %d: this generator is unconditional" % label)
    if label is not None and not 0 <= label < num_classes:
        raise SamplingError("--class %d: the generator knows classes 0..%d"
                            % (label, num_classes - 1))


def generate_batches(net, num, z_dim, rng, num_classes=0, label=None, batch_size=100,
                     ctx=None, truncation=None):
    """Yield ``num`` images of generator ``net`` in batches: NDArray (B, C, H, W) in [-1, 1].

    Each batch draws its noise (B, z_dim) from ``rng`` (a numpy RandomState), then,
    for a conditional ``net`` (``num_classes`` > 0), its labels (B,): all ``label``,
    or uniform over the classes when ``label`` is None. ``net`` runs as it is set
    (outside ``autograd.record``: inference mode). One sequence of draws serves
    the trainer's evaluation, the quality benchmark and checkpoints alike.
    """
    ctx = ctx or mx.cpu()
    done = 0
    while done < num:
        n = min(batch_size, num - done)
        z = nd.array(draw_noise(rng, n, z_dim, truncation), ctx=ctx)
        if num_classes:
            y = np.full(n, label) if label is not None else rng.randint(0, num_classes, size=n)
            yield net(z, nd.array(y, ctx=ctx, dtype="int32"))
        else:
            yield net(z)
        done += n


class LoadedGenerator:
    """A generator restored from a checkpoint, ready to sample.

    Attributes: ``net`` (the hybridized generator), ``z_dim``, ``num_classes``,
    ``image_size``, ``channels``, ``config`` (the run's settings as a dict),
    ``iteration``, ``ema`` (whether the EMA weights were loaded), ``path``.
    """

    def __init__(self, checkpoint, ctx=None, use_ema=True):
        self.ctx = ctx or mx.cpu()
        self._use_ema = use_ema
        load_newest(checkpoint, self._load)  # a damaged one: the next older one
        self.net.hybridize()

    def _load(self, path):
        state = ckpt.read_state(path)
        config = state["config"]
        self.path, self.config, self.iteration = path, config, int(state["iteration"])
        self.z_dim = int(config["z_dim"])
        self.num_classes = int(state.get("num_classes", 0))
        self.image_size = int(state["image_size"])
        self.channels = int(state["channels"])
        ema_file = os.path.join(path, "generator_ema.params")
        self.ema = bool(self._use_ema and os.path.isfile(ema_file))
        params = ema_file if self.ema else os.path.join(path, "generator.params")
        self.net = get_generator(config["arch"], image_size=self.image_size, z_dim=self.z_dim,
                                 num_classes=self.num_classes, channels=self.channels,
                                 ch=config.get("g_ch"))
        try:
            self.net.load_parameters(params, ctx=self.ctx)
        except (mx.base.MXNetError, OSError, ValueError, AssertionError) as err:
            raise ckpt.DamagedCheckpoint("cannot load %s: %s" % (params, error_summary(err)))

    def generate(self, num, seed=0, label=None, batch_size=100, truncation=None):
        """Yield image batches: float32 NDArray (B, C, H, W) in [-1, 1], ``num`` images in all.

        ``label``: the class of every image (conditional generators; None: uniform
        random classes). The generator runs in inference mode (BatchNorm running
        statistics).
        """
        check_label(label, self.num_classes)
        check_truncation(truncation)
        return generate_batches(self.net, num, self.z_dim, np.random.RandomState(seed),
                                num_classes=self.num_classes, label=label,
                                batch_size=batch_size, ctx=self.ctx, truncation=truncation)

    def sample(self, num, **kwargs):
        """``num`` images as uint8 (num, H, W, C), the layout of the training images."""
        return np.concatenate([to_uint8(b) for b in self.generate(num, **kwargs)])

    def images(self, z, y=None, batch_size=100):
        """The generator's images of given noise: uint8 (N, H, W, C).

        ``z``: float (N, z_dim); ``y``: int (N,) class labels, for a conditional
        generator only. Inference mode, as :meth:`generate`.
        """
        z = np.asarray(z, np.float32)
        if (y is None) != (self.num_classes == 0):
            raise ValueError("labels y are needed by a conditional generator and refused by an "
                             "unconditional one (num_classes=%d)" % self.num_classes)
        out = []
        for start in range(0, len(z), batch_size):
            zb = nd.array(z[start:start + batch_size], ctx=self.ctx)
            if y is None:
                out.append(to_uint8(self.net(zb)))
            else:
                yb = nd.array(np.asarray(y)[start:start + batch_size], ctx=self.ctx,
                              dtype="int32")
                out.append(to_uint8(self.net(zb, yb)))
        return np.concatenate(out)

    def describe(self):
        """One line naming the generator: arch, EMA or raw, dataset, size, iteration."""
        return "%s generator%s on %s (%dx%d), iteration %d" % (
            self.config["arch"], " (EMA)" if self.ema else "", self.config["dataset"],
            self.image_size, self.image_size, self.iteration)


#: The file types :func:`save_images` writes, by extension.
OUTPUT_TYPES = (".png", ".npz")


def check_output(path, types=OUTPUT_TYPES):
    """Raise SamplingError unless ``path`` ends in one of ``types`` (case-insensitive)."""
    ext = os.path.splitext(path)[1].lower()
    if ext not in types:
        raise SamplingError("--out must end in %s, got %r" % (" or ".join(types), path))
    return ext


def save_images(images, path, nrow=None, caption=None):
    """Write uint8 images (N, H, W, C): ``.png`` a grid (``nrow`` a row), ``.npz`` an array.

    The ``.npz`` holds ``images``: uint8 (N, H, W, C) channel-last, 0..255, the
    orientation and colour order of the training images. Either file is written
    whole or not at all; an existing file of that name is replaced. A file that
    cannot be written there is an :class:`~sngan_gluon.fileio.OutputError`.
    """
    with user_output(path):
        if check_output(path) == ".npz":
            with atomic_path(path, suffix=".npz") as tmp:  # numpy appends .npz otherwise
                np.savez_compressed(tmp, images=images)
        else:
            save_image_grid(images, path, nrow=nrow, caption=caption)
