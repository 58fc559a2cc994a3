"""Pieces every model family shares: the SN/plain layer choice, the projection
output, and the input checks at a network's boundary."""
import math
from collections import namedtuple
from functools import partial

import mxnet as mx
from mxnet.gluon import HybridBlock, nn
from mxnet.gluon.contrib.nn import SyncBatchNorm
from mxnet.ndarray import NDArray

from .._compat import layer_kwargs
from ..nn import SNConv2D, SNDense, SNEmbedding
from ..nn.walk import replace_blocks

__all__ = ["DiscriminatorLayers", "discriminator_layers", "glorot_uniform", "RESIDUAL_GAIN",
           "ProjectionOutput", "Generator", "Discriminator", "check_common", "check_image_size"]

#: The three layer classes a discriminator is built from.
DiscriminatorLayers = namedtuple("DiscriminatorLayers", ["conv", "dense", "embedding"])


def discriminator_layers(sn, power_iterations=1):
    """``SNConv2D, SNDense, SNEmbedding`` when ``sn``, else Gluon's own classes.

    Both sets take the same constructor arguments, so a discriminator is written
    once and ``sn=False`` builds the identical network without normalization
    (for comparisons with and without SN).
    """
    if not sn:
        return DiscriminatorLayers(nn.Conv2D, nn.Dense, nn.Embedding)
    return DiscriminatorLayers(partial(SNConv2D, power_iterations=power_iterations),
                               partial(SNDense, power_iterations=power_iterations),
                               partial(SNEmbedding, power_iterations=power_iterations))


def glorot_uniform(gain=1.0):
    """Chainer's ``GlorotUniform(scale=gain)``: U(-a, a), ``a = gain*sqrt(6/(fan_in+fan_out))``.

    MXNet's ``Xavier('uniform', 'avg', magnitude)`` draws with
    ``a = sqrt(magnitude / ((fan_in + fan_out) / 2))`` and counts fans the same way
    (``shape[1] * prod(shape[2:])``, ``shape[0] * prod(shape[2:])``), so
    ``magnitude = 3 * gain**2``.
    """
    return mx.init.Xavier(rnd_type="uniform", factor_type="avg", magnitude=3.0 * gain ** 2)


#: gain of the 3x3 convolutions inside the authors' residual blocks
RESIDUAL_GAIN = math.sqrt(2.0)


def _check_labels(block, y, batch):
    if block.num_classes > 0:
        if y is None:
            raise ValueError("%s is conditional (num_classes=%d): call it with labels y of "
                             "shape (N,)" % (type(block).__name__, block.num_classes))
        if isinstance(y, NDArray) and y.shape != (batch,):
            raise ValueError("%s: labels y must have shape (%d,), got %s"
                             % (type(block).__name__, batch, y.shape))
    elif y is not None:
        raise ValueError("%s is unconditional (num_classes=0): call it without labels"
                         % type(block).__name__)


class Generator(HybridBlock):
    """Base of the generators: checks ``z`` (N, z_dim) and ``y`` (N,) before the graph runs.

    Subclasses set ``z_dim``, ``num_classes``, ``image_size``, ``channels`` and
    write ``hybrid_forward(F, z, y=None)``.
    """

    def forward(self, z, y=None):
        if isinstance(z, NDArray) and (z.ndim != 2 or z.shape[1] != self.z_dim):
            raise ValueError("%s: z must have shape (N, %d), got %s"
                             % (type(self).__name__, self.z_dim, z.shape))
        _check_labels(self, y, z.shape[0] if isinstance(z, NDArray) else None)
        return super().forward(z) if y is None else super().forward(z, y)


class Discriminator(HybridBlock):
    """Base of the discriminators: checks ``x`` (N, C, S, S) and ``y`` (N,).

    Every discriminator returns logits of shape ``(N,)`` (flat: one logit per
    image, ready for the losses in :mod:`sngan_gluon.losses`).
    """

    def forward(self, x, y=None):
        expected = (self.channels, self.image_size, self.image_size)
        if isinstance(x, NDArray) and (x.ndim != 4 or x.shape[1:] != expected):
            raise ValueError("%s: x must have shape (N, %d, %d, %d), got %s"
                             % ((type(self).__name__,) + expected + (x.shape,)))
        _check_labels(self, y, x.shape[0] if isinstance(x, NDArray) else None)
        return super().forward(x) if y is None else super().forward(x, y)


class ProjectionOutput(HybridBlock):
    """The discriminator's last layer, with the projection term when conditional.

    ``out = linear(h) + sum(V[y] * h, axis=1)`` (Miyato & Koyama 2018, eq. 3:
    ``f(x, y) = y^T V phi(x) + psi(phi(x))``); ``V`` is an (SN) embedding
    ``(num_classes, in_units)``. Without classes it is ``linear(h)`` alone.

    Inputs: ``h`` (N, in_units) features, ``y`` (N,) labels when conditional.
    Outputs: (N,) logits.
    """

    def __init__(self, in_units, num_classes, layers, use_bias=True,
                 weight_initializer=None, embedding_initializer=None, **kwargs):
        super().__init__(**kwargs)
        self.num_classes = num_classes
        with self.name_scope():
            self.linear = layers.dense(1, use_bias=use_bias, in_units=in_units,
                                       weight_initializer=weight_initializer)
            if num_classes > 0:
                self.embed = layers.embedding(num_classes, in_units,
                                              weight_initializer=embedding_initializer)

    def hybrid_forward(self, F, h, y=None):
        out = F.reshape(self.linear(h), (-1,))
        if self.num_classes > 0:
            out = out + F.sum(self.embed(y) * h, axis=1)
        return out


def check_common(arch, num_classes, channels):
    """Argument checks every model constructor shares (ValueError naming the value)."""
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 0:
        raise ValueError("%s: num_classes must be an integer >= 0 (0: unconditional), got %r"
                         % (arch, num_classes))
    if isinstance(channels, bool) or not isinstance(channels, int) or channels < 1:
        raise ValueError("%s: channels must be an integer >= 1 (3: RGB, 1: grayscale), got %r"
                         % (arch, channels))


def check_momentum(arch, momentum):
    """A BatchNorm momentum (Gluon's: the weight of the old running value) in [0, 1)."""
    if isinstance(momentum, bool) or not isinstance(momentum, (int, float)) \
            or not 0 <= momentum < 1:
        raise ValueError("%s: momentum must be in [0, 1), got %r" % (arch, momentum))


def check_ch(arch, ch, multiple):
    """A base width ``ch``: an integer >= ``multiple`` that ``multiple`` divides (the
    narrowest layer of ``arch`` has ``ch / multiple`` channels)."""
    if isinstance(ch, bool) or not isinstance(ch, int) or ch < multiple or ch % multiple:
        what = "an integer >= 1" if multiple == 1 else "a positive multiple of %d" % multiple
        raise ValueError("%s: ch must be %s, got %r" % (arch, what, ch))


def check_image_size(arch, image_size, supported):
    if image_size not in supported:
        raise ValueError("%s: no layout for image_size=%r; supported: %s"
                         % (arch, image_size, ", ".join(str(s) for s in sorted(supported))))


def to_sync_batchnorm(block, num_devices):
    """Replace every ``nn.BatchNorm`` inside ``block`` by ``SyncBatchNorm`` (in place).

    For data-parallel training on ``num_devices`` devices: the batch statistics
    are then those of the whole batch rather than of each device's share. Call it
    before ``initialize``; the replacements keep each layer's channels, momentum,
    epsilon, center and scale. Returns ``block``.
    """
    def convert_one(path, child):
        if type(child) is not nn.BatchNorm:  # noqa: E721  (subclasses are left alone)
            return child
        kw = layer_kwargs(child)
        return SyncBatchNorm(in_channels=child.gamma.shape[0], num_devices=num_devices,
                             momentum=kw["momentum"], epsilon=kw["eps"],
                             center=child.beta.grad_req != "null",
                             scale=child.gamma.grad_req != "null", prefix=child.prefix)

    replace_blocks(block, convert_one)
    return block
