"""The "standard CNN" of the SN-GAN paper (Miyato et al., ICLR 2018, appendix B, table 3).

Layouts: 32x32 (CIFAR-10, ``M = 4``) and 48x48 (STL-10, ``M = 6``), ``M = image_size / 8``.

Initialization follows the authors' Chainer code (pfnet-research/chainer-gan-lib,
``common/net.py``: ``DCGANGenerator``, ``SNDCGANDiscriminator``): every weight
``Normal(0.02)``, biases zero, BatchNorm ``gamma = 1, beta = 0``. The projection
embedding of the conditional discriminator (the authors have no conditional
standard CNN) uses GlorotUniform, as their ResNet projection discriminators do.

Deviations from that code, and why:

* Discriminator widths follow the paper's table 3 (64, 64, 128, 128, 256, 256,
  512: each stride-2 convolution keeps the width of the convolution before it);
  chainer-gan-lib widens at the stride-2 convolutions instead (64, 128, 128, 256,
  256, 512, 512).
* LeakyReLU slope 0.1, as the paper states for table 3; chainer-gan-lib calls
  ``F.leaky_relu`` with its default 0.2 (``slope=0.2`` reproduces it).
* The BatchNorm after the generator's dense layer (in the code, not in the
  table) normalizes each of the ``ch`` channels of the reshaped (N, ch, M, M)
  map, not each of the ``M*M*ch`` units as the code's ``bn0`` does: in MXNet
  1.9.1 a hybridized graph in which a BatchNorm output is reshaped into a
  (de)convolution fails in backward ("Check failed: !is_view") or corrupts
  memory, on the oneDNN CPU build. The difference is the number of statistics
  (ch instead of M*M*ch); tests/test_models.py trains this layout hybridized.
* The generator's last layer is a 3x3 stride-1 ``Conv2D`` as in the paper;
  the code uses a ``Deconvolution2D`` with the same kernel, which is the same
  family of functions with the same number of parameters.
"""
import mxnet as mx
from mxnet.gluon import HybridBlock, nn

from ..nn.conditional import ConditionalBatchNorm
from ._common import (Discriminator, Generator, ProjectionOutput, check_ch, check_common,
                      check_image_size, check_momentum, discriminator_layers, glorot_uniform)

__all__ = ["DCGANGenerator", "DCGANDiscriminator"]

#: image_size -> M, the spatial size at the bottom of both networks
BOTTOM_WIDTH = {32: 4, 48: 6}

#: The paper's ``ch`` of both networks; any width ``ch`` must be a multiple of CH_MULTIPLE
#: (the narrowest layers have ``ch / 8`` channels).
DEFAULT_CH, CH_MULTIPLE = 512, 8


def default_ch(net, image_size):
    """The paper's ``ch`` of the generator (``net`` 'g') or discriminator ('d')."""
    return DEFAULT_CH


def _init():
    return mx.init.Normal(0.02)


def _batch_norm(num_features, num_classes, momentum):
    if num_classes > 0:
        return ConditionalBatchNorm(num_features, num_classes, momentum=momentum)
    return nn.BatchNorm(momentum=momentum, in_channels=num_features)


class _UpBlock(HybridBlock):
    """4x4 stride-2 transposed convolution, (conditional) BatchNorm, ReLU.

    Inputs: ``x`` (N, in_channels, H, W), ``y`` (N,) when conditional.
    Outputs: (N, channels, 2H, 2W).
    """

    def __init__(self, in_channels, channels, num_classes, momentum=0.9, **kwargs):
        super().__init__(**kwargs)
        self.num_classes = num_classes
        with self.name_scope():
            # Plain transposed convolution: the paper normalizes only D, and Gluon's
            # own layer takes MXNet's fast native (oneDNN) Deconvolution path.
            self.deconv = nn.Conv2DTranspose(channels, 4, strides=2, padding=1,
                                             in_channels=in_channels, weight_initializer=_init())
            self.bn = _batch_norm(channels, num_classes, momentum)

    def hybrid_forward(self, F, x, y=None):
        h = self.deconv(x)
        h = self.bn(h, y) if self.num_classes > 0 else self.bn(h)
        return F.relu(h)


class DCGANGenerator(Generator):
    """Standard CNN generator (paper table 3).

    ``z`` -> dense to ``M*M*ch`` -> reshape (N, ch, M, M) -> BatchNorm -> ReLU
    -> three [4x4 stride-2 deconv, BatchNorm, ReLU] to ch/2, ch/4, ch/8 channels
    -> 3x3 stride-1 conv to ``channels`` -> tanh. The BatchNorm + ReLU after the
    dense layer are in the authors' code, not in the table (see the module
    docstring for why it is per channel here). With ``num_classes > 0`` every
    BatchNorm is a :class:`~sngan_gluon.nn.ConditionalBatchNorm`.

    Parameters
    ----------
    image_size : int
        32 or 48 (``M = 4`` or 6).
    z_dim : int
        Noise dimension (paper: 128).
    num_classes : int
        0 for an unconditional generator.
    channels : int
        Output image channels (3: RGB, 1: grayscale).
    ch : int or None
        Width at the bottom, a multiple of 8; None: the paper's 512.
    momentum : float
        Momentum of every BatchNorm's running statistics, as Gluon's
        ``nn.BatchNorm`` (the weight of the old value). MXNet updates them in
        backward, so in training they advance once per generator step, where
        PyTorch advances them on every training-mode call (twice per iteration
        at ``n_dis = 1``: D's fake batch and G's step); ``0.81 = 0.9**2``
        tracks the generator as fast as PyTorch does with 0.9 (train.py's
        ``--g-bn-momentum``; see
        docs/results.md, "Quality parity with PyTorch").

    Inputs
    ------
    z : (N, z_dim) float32.
    y : (N,) integer labels, only when ``num_classes > 0``.

    Outputs
    -------
    images : (N, channels, image_size, image_size) in [-1, 1].
    """

    def __init__(self, image_size=32, z_dim=128, num_classes=0, channels=3, ch=None,
                 momentum=0.9, **kwargs):
        check_common("dcgan", num_classes, channels)
        check_image_size("dcgan", image_size, BOTTOM_WIDTH)
        ch = default_ch("g", image_size) if ch is None else ch
        check_ch("dcgan", ch, CH_MULTIPLE)
        check_momentum("dcgan", momentum)
        super().__init__(**kwargs)
        self.image_size, self.z_dim, self.num_classes, self.channels = (
            image_size, z_dim, num_classes, channels)
        self._bottom, self._ch = BOTTOM_WIDTH[image_size], ch
        units = self._bottom ** 2 * ch
        with self.name_scope():
            self.dense = nn.Dense(units, in_units=z_dim, weight_initializer=_init())
            self.bn0 = _batch_norm(ch, num_classes, momentum)
            self.blocks = nn.HybridSequential()
            for width in (ch, ch // 2, ch // 4):
                self.blocks.add(_UpBlock(width, width // 2, num_classes, momentum))
            self.out = nn.Conv2D(channels, 3, padding=1, in_channels=ch // 8,
                                 weight_initializer=_init())

    def hybrid_forward(self, F, z, y=None):
        h = F.reshape(self.dense(z), (0, self._ch, self._bottom, self._bottom))
        h = F.relu(self.bn0(h, y) if self.num_classes > 0 else self.bn0(h))
        for block in self.blocks:
            h = block(h, y) if self.num_classes > 0 else block(h)
        return F.tanh(self.out(h))


class DCGANDiscriminator(Discriminator):
    """Standard CNN discriminator (paper table 3), optionally with a projection head.

    ``x`` -> 3x3/1 ch/8, 4x4/2 ch/8, 3x3/1 ch/4, 4x4/2 ch/4, 3x3/1 ch/2, 4x4/2 ch/2,
    3x3/1 ch (``ch = 512`` in the paper; every convolution padded to keep or halve
    the size and followed by LeakyReLU) -> flatten to ``h`` (N, M*M*ch) -> dense
    to 1. With ``num_classes > 0`` the projection ``sum(V[y] * h, axis=1)`` is
    added, on the same flattened ``h`` the dense layer sees (so ``V`` is
    ``(num_classes, M*M*ch)``), keeping ``f(x, y) = y^T V phi(x) + psi(phi(x))``
    of Miyato & Koyama 2018 literal.

    Parameters
    ----------
    image_size : int
        32 or 48.
    num_classes : int
        0 for an unconditional discriminator.
    channels : int
        Input image channels.
    ch : int or None
        Width of the last convolution, a multiple of 8; None: the paper's 512.
    sn : bool
        Spectrally normalized layers (``SNConv2D``, ``SNDense``, ``SNEmbedding``)
        when True, Gluon's plain ones when False.
    power_iterations : int
        Power iterations per training step of every SN layer.
    slope : float
        LeakyReLU slope (paper: 0.1).

    Inputs
    ------
    x : (N, channels, image_size, image_size) float32.
    y : (N,) integer labels, only when ``num_classes > 0``.

    Outputs
    -------
    logits : (N,).
    """

    def __init__(self, image_size=32, num_classes=0, channels=3, ch=None, sn=True,
                 power_iterations=1, slope=0.1, **kwargs):
        check_common("dcgan", num_classes, channels)
        check_image_size("dcgan", image_size, BOTTOM_WIDTH)
        ch = default_ch("d", image_size) if ch is None else ch
        check_ch("dcgan", ch, CH_MULTIPLE)
        super().__init__(**kwargs)
        self.image_size, self.num_classes, self.channels = image_size, num_classes, channels
        layers = discriminator_layers(sn, power_iterations)
        plan = [(ch // 8, 3, 1), (ch // 8, 4, 2), (ch // 4, 3, 1), (ch // 4, 4, 2),
                (ch // 2, 3, 1), (ch // 2, 4, 2), (ch, 3, 1)]
        with self.name_scope():
            self.features = nn.HybridSequential()
            in_channels = channels
            for width, kernel, stride in plan:
                self.features.add(layers.conv(width, kernel, strides=stride, padding=1,
                                              in_channels=in_channels,
                                              weight_initializer=_init()),
                                  nn.LeakyReLU(slope))
                in_channels = width
            self.head = ProjectionOutput(BOTTOM_WIDTH[image_size] ** 2 * ch, num_classes, layers,
                                         weight_initializer=_init(),
                                         embedding_initializer=glorot_uniform())

    def hybrid_forward(self, F, x, y=None):
        h = F.flatten(self.features(x))
        return self.head(h, y) if self.num_classes > 0 else self.head(h)
