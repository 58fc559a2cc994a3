"""The 64x64 DCGAN-style pair of MXNet's own SN-GAN example
(apache/mxnet ``example/gluon/sn_gan/model.py``), rewritten as hybridizable blocks.

Kept from the example: the layer plan, no biases anywhere, LeakyReLU(0.2) in
both networks (the example's generator uses LeakyReLU, not ReLU), and its
initialization (``train.py``: ``mx.init.Xavier()``, i.e. GlorotUniform with gain
1, for every weight; BatchNorm ``gamma = 1, beta = 0``). Unconditional only.
"""
import mxnet as mx
from mxnet.gluon import nn

from ._common import (Discriminator, Generator, check_ch, check_common, check_image_size,
                      check_momentum, discriminator_layers)

__all__ = ["DCGAN64Generator", "DCGAN64Discriminator"]

SUPPORTED_SIZES = (64,)

#: The example's ``ch`` of both networks; any width must be a multiple of CH_MULTIPLE.
DEFAULT_CH, CH_MULTIPLE = 512, 8


def default_ch(net, image_size):
    """The example's ``ch`` of the generator (``net`` 'g') or discriminator ('d')."""
    return DEFAULT_CH


def _check(image_size, num_classes, channels, ch):
    check_common("dcgan64", num_classes, channels)
    check_image_size("dcgan64", image_size, SUPPORTED_SIZES)
    if num_classes != 0:
        raise ValueError("dcgan64 has no conditional variant; supported num_classes: 0 "
                         "(conditional models: dcgan, resnet)")
    check_ch("dcgan64", ch, CH_MULTIPLE)


class DCGAN64Generator(Generator):
    """``z`` (N, z_dim) -> (N, z_dim, 1, 1) -> 4x4 transposed convolutions.

    ch 4x4/1 pad 0 (1 -> 4), then ch/2, ch/4, ch/8 4x4/2 pad 1 (4 -> 32), each
    followed by BatchNorm and LeakyReLU(0.2); then ``channels`` 4x4/2 pad 1
    (32 -> 64) and tanh. ``ch = 512`` as in the example (None: 512). ``momentum``: that
    of every BatchNorm's running statistics (Gluon's meaning, as ``nn.BatchNorm``).

    Inputs: ``z`` (N, z_dim) float32.
    Outputs: (N, channels, 64, 64) in [-1, 1].
    """

    def __init__(self, image_size=64, z_dim=128, num_classes=0, channels=3, ch=None,
                 momentum=0.9, **kwargs):
        ch = default_ch("g", image_size) if ch is None else ch
        _check(image_size, num_classes, channels, ch)
        check_momentum("dcgan64", momentum)
        super().__init__(**kwargs)
        self.image_size, self.z_dim, self.num_classes, self.channels = (
            image_size, z_dim, num_classes, channels)
        init = mx.init.Xavier()
        with self.name_scope():
            self.body = nn.HybridSequential()
            in_channels = z_dim
            for i, width in enumerate((ch, ch // 2, ch // 4, ch // 8)):
                stride, pad = (1, 0) if i == 0 else (2, 1)
                self.body.add(nn.Conv2DTranspose(width, 4, strides=stride, padding=pad,
                                                 use_bias=False, in_channels=in_channels,
                                                 weight_initializer=init),
                              nn.BatchNorm(momentum=momentum, in_channels=width),
                              nn.LeakyReLU(0.2))
                in_channels = width
            self.body.add(nn.Conv2DTranspose(channels, 4, strides=2, padding=1, use_bias=False,
                                             in_channels=in_channels, weight_initializer=init))

    def hybrid_forward(self, F, z):
        return F.tanh(self.body(F.reshape(z, (0, 0, 1, 1))))


class DCGAN64Discriminator(Discriminator):
    """``x`` (N, C, 64, 64) -> 4x4/2 pad 1 convolutions ch/8, ch/4, ch/2, ch
    (64 -> 4), each followed by LeakyReLU(0.2) -> 4x4/1 pad 0 convolution to 1
    (4 -> 1) -> flatten. No biases. SN layers when ``sn``, Gluon's plain ones otherwise.

    Inputs: ``x`` (N, channels, 64, 64) float32.
    Outputs: logits (N,).
    """

    def __init__(self, image_size=64, num_classes=0, channels=3, ch=None, sn=True,
                 power_iterations=1, **kwargs):
        ch = default_ch("d", image_size) if ch is None else ch
        _check(image_size, num_classes, channels, ch)
        super().__init__(**kwargs)
        self.image_size, self.num_classes, self.channels = image_size, num_classes, channels
        layers = discriminator_layers(sn, power_iterations)
        init = mx.init.Xavier()
        with self.name_scope():
            self.body = nn.HybridSequential()
            in_channels = channels
            for width in (ch // 8, ch // 4, ch // 2, ch):
                self.body.add(layers.conv(width, 4, strides=2, padding=1, use_bias=False,
                                          in_channels=in_channels, weight_initializer=init),
                              nn.LeakyReLU(0.2))
                in_channels = width
            self.body.add(layers.conv(1, 4, strides=1, padding=0, use_bias=False,
                                      in_channels=in_channels, weight_initializer=init))

    def hybrid_forward(self, F, x):
        return F.reshape(self.body(x), (-1,))
