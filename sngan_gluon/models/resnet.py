"""The ResNet generator and discriminator of SN-GAN (Miyato et al., ICLR 2018,
appendix B, tables 4 and 5) with the projection discriminator of Miyato & Koyama,
"cGANs with Projection Discriminator", ICLR 2018.

Layouts (widths in units of ``ch``; "opt" is the optimized first block):

* 32x32, paper table 4, authors' ``gen_models/resnet_32.py`` and
  ``dis_models/snresnet_32.py``. G: ch=256, dense to 4x4x1, up blocks 1, 1, 1.
  D: ch=128, opt down 1, down 1, block 1, block 1; the last dense has no bias.
* 48x48 (STL-10), paper table 5; the authors publish no code for it. G: ch=64,
  dense to 6x6x8, up blocks 4, 2, 1. D: ch=64, opt down 1, down 2, 4, 8, block 16.
* 64x64, authors' ``gen_models/resnet_64.py`` and ``dis_models/snresnet_64.py``.
  G: ch=64, dense to 4x4x16, up blocks 8, 4, 2, 1. D: ch=64, opt down 1,
  down 2, 4, 8, 16.

Initialization, as the authors' code (``gen_models/resblocks.py``,
``dis_models/resblocks.py``): the 3x3 convolutions inside residual blocks
GlorotUniform with gain sqrt(2); 1x1 shortcuts, the generator's first dense and
last convolution, the discriminator's last dense and the projection embedding
GlorotUniform with gain 1; biases zero; (conditional) BatchNorm ``gamma = 1,
beta = 0``.
"""
from mxnet.gluon import HybridBlock, nn

from ..nn.conditional import ConditionalBatchNorm
from ._common import (RESIDUAL_GAIN, Discriminator, Generator, ProjectionOutput, check_ch,
                      check_common, check_image_size, check_momentum, discriminator_layers,
                      glorot_uniform)

__all__ = ["ResNetGenerator", "ResNetDiscriminator", "GeneratorBlock", "DiscriminatorBlock",
           "OptimizedDiscriminatorBlock"]

#: image_size -> (bottom width, default ch, widths in units of ch: dense, then each up block)
GENERATOR_LAYOUTS = {
    32: (4, 256, (1, 1, 1, 1)),
    48: (6, 64, (8, 4, 2, 1)),
    64: (4, 64, (16, 8, 4, 2, 1)),
}

#: image_size -> (default ch, block widths in units of ch, downsample per block, dense bias).
#: The first block is always the optimized down block.
DISCRIMINATOR_LAYOUTS = {
    32: (128, (1, 1, 1, 1), (True, True, False, False), False),
    48: (64, (1, 2, 4, 8, 16), (True, True, True, True, False), True),
    64: (64, (1, 2, 4, 8, 16), (True, True, True, True, True), True),
}


#: Any width ``ch`` is a whole number of channels (the layouts' widths are multiples of it).
CH_MULTIPLE = 1


def default_ch(net, image_size):
    """The layout's ``ch`` of the generator (``net`` 'g') or discriminator ('d') at
    ``image_size``."""
    return GENERATOR_LAYOUTS[image_size][1] if net == "g" else DISCRIMINATOR_LAYOUTS[image_size][0]


def _upsample(F, x):
    """Nearest-neighbour 2x upsampling: (N, C, H, W) -> (N, C, 2H, 2W)."""
    return F.UpSampling(x, scale=2, sample_type="nearest")


def _downsample(F, x):
    """2x2 average pooling: (N, C, H, W) -> (N, C, H/2, W/2)."""
    return F.Pooling(x, kernel=(2, 2), stride=(2, 2), pool_type="avg")


class GeneratorBlock(HybridBlock):
    """Up-sampling residual block of the generator (paper figure 8a).

    Residual: BN -> ReLU -> 2x nearest upsample -> 3x3 conv -> BN -> ReLU -> 3x3 conv.
    Shortcut: 2x nearest upsample -> 1x1 conv. BatchNorms are conditional when
    ``num_classes > 0``.

    Inputs: ``x`` (N, in_channels, H, W), ``y`` (N,) when conditional.
    Outputs: (N, channels, 2H, 2W).
    """

    def __init__(self, in_channels, channels, num_classes=0, momentum=0.9, **kwargs):
        super().__init__(**kwargs)
        self.num_classes = num_classes
        conv_init, sc_init = glorot_uniform(RESIDUAL_GAIN), glorot_uniform()
        with self.name_scope():
            if num_classes > 0:
                self.bn1 = ConditionalBatchNorm(in_channels, num_classes, momentum=momentum)
                self.bn2 = ConditionalBatchNorm(channels, num_classes, momentum=momentum)
            else:
                self.bn1 = nn.BatchNorm(momentum=momentum, in_channels=in_channels)
                self.bn2 = nn.BatchNorm(momentum=momentum, in_channels=channels)
            self.conv1 = nn.Conv2D(channels, 3, padding=1, in_channels=in_channels,
                                   weight_initializer=conv_init)
            self.conv2 = nn.Conv2D(channels, 3, padding=1, in_channels=channels,
                                   weight_initializer=conv_init)
            self.shortcut = nn.Conv2D(channels, 1, in_channels=in_channels,
                                      weight_initializer=sc_init)

    def _bn(self, bn, x, y):
        return bn(x, y) if self.num_classes > 0 else bn(x)

    def hybrid_forward(self, F, x, y=None):
        h = F.relu(self._bn(self.bn1, x, y))
        h = self.conv1(_upsample(F, h))
        h = F.relu(self._bn(self.bn2, h, y))
        h = self.conv2(h)
        return h + self.shortcut(_upsample(F, x))


class DiscriminatorBlock(HybridBlock):
    """Residual block of the discriminator (paper figure 8b).

    Residual: ReLU -> 3x3 conv (in -> in) -> ReLU -> 3x3 conv (in -> out)
    [-> 2x2 average pool]. Shortcut: identity when the shape is kept, else
    1x1 conv [-> 2x2 average pool]. The hidden width equals ``in_channels``, as in
    the authors' ``dis_models/resblocks.py``.

    Inputs: ``x`` (N, in_channels, H, W). Outputs: (N, channels, H', W'), ``H' = H/2``
    when ``downsample``, else ``H``.
    """

    def __init__(self, in_channels, channels, downsample, layers, **kwargs):
        super().__init__(**kwargs)
        self._downsample = downsample
        conv_init = glorot_uniform(RESIDUAL_GAIN)
        with self.name_scope():
            self.conv1 = layers.conv(in_channels, 3, padding=1, in_channels=in_channels,
                                     weight_initializer=conv_init)
            self.conv2 = layers.conv(channels, 3, padding=1, in_channels=in_channels,
                                     weight_initializer=conv_init)
            self.shortcut = None
            if downsample or in_channels != channels:
                self.shortcut = layers.conv(channels, 1, in_channels=in_channels,
                                            weight_initializer=glorot_uniform())

    def hybrid_forward(self, F, x):
        h = self.conv2(F.relu(self.conv1(F.relu(x))))
        sc = x if self.shortcut is None else self.shortcut(x)
        if self._downsample:
            h, sc = _downsample(F, h), _downsample(F, sc)
        return h + sc


class OptimizedDiscriminatorBlock(HybridBlock):
    """The discriminator's first block, which sees the image (paper appendix B.4).

    Residual: 3x3 conv -> ReLU -> 3x3 conv -> 2x2 average pool (no ReLU on the
    image). Shortcut: 2x2 average pool -> 1x1 conv.

    Inputs: ``x`` (N, in_channels, H, W). Outputs: (N, channels, H/2, W/2).
    """

    def __init__(self, in_channels, channels, layers, **kwargs):
        super().__init__(**kwargs)
        conv_init = glorot_uniform(RESIDUAL_GAIN)
        with self.name_scope():
            self.conv1 = layers.conv(channels, 3, padding=1, in_channels=in_channels,
                                     weight_initializer=conv_init)
            self.conv2 = layers.conv(channels, 3, padding=1, in_channels=channels,
                                     weight_initializer=conv_init)
            self.shortcut = layers.conv(channels, 1, in_channels=in_channels,
                                        weight_initializer=glorot_uniform())

    def hybrid_forward(self, F, x):
        h = _downsample(F, self.conv2(F.relu(self.conv1(x))))
        return h + self.shortcut(_downsample(F, x))


class ResNetGenerator(Generator):
    """ResNet generator (paper tables 4, 5; authors' ``gen_models/resnet_*.py``).

    ``z`` -> dense to ``B*B*w0`` -> reshape (N, w0, B, B) -> up blocks
    (:class:`GeneratorBlock`) -> BatchNorm -> ReLU -> 3x3 conv to ``channels`` ->
    tanh. The widths ``w`` are multiples of ``ch`` (see the module's table). With
    ``num_classes > 0`` the blocks' BatchNorms are conditional; the last
    BatchNorm stays unconditional, as in the authors' code.

    Parameters
    ----------
    image_size : int
        32, 48 or 64.
    z_dim : int
        Noise dimension (paper: 128).
    num_classes : int
        0 for an unconditional generator.
    channels : int
        Output image channels.
    ch : int or None
        Base width; None takes the layout's (256 at 32, 64 at 48 and 64).
    momentum : float
        Momentum of every BatchNorm's running statistics (Gluon's meaning: the
        weight of the old value); see :class:`~sngan_gluon.models.DCGANGenerator`.

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
        check_common("resnet", num_classes, channels)
        check_image_size("resnet", image_size, GENERATOR_LAYOUTS)
        check_momentum("resnet", momentum)
        bottom, _, multipliers = GENERATOR_LAYOUTS[image_size]
        ch = default_ch("g", image_size) if ch is None else ch
        check_ch("resnet", ch, CH_MULTIPLE)
        super().__init__(**kwargs)
        self.image_size, self.z_dim, self.num_classes, self.channels = (
            image_size, z_dim, num_classes, channels)
        widths = [m * ch for m in multipliers]
        self._bottom, self._width = bottom, widths[0]
        with self.name_scope():
            self.dense = nn.Dense(bottom ** 2 * widths[0], in_units=z_dim,
                                  weight_initializer=glorot_uniform())
            self.blocks = nn.HybridSequential()
            for w_in, w_out in zip(widths[:-1], widths[1:]):
                self.blocks.add(GeneratorBlock(w_in, w_out, num_classes, momentum))
            self.bn = nn.BatchNorm(momentum=momentum, in_channels=widths[-1])
            self.out = nn.Conv2D(channels, 3, padding=1, in_channels=widths[-1],
                                 weight_initializer=glorot_uniform())

    def hybrid_forward(self, F, z, y=None):
        h = F.reshape(self.dense(z), (0, self._width, self._bottom, self._bottom))
        for block in self.blocks:
            h = block(h, y) if self.num_classes > 0 else block(h)
        return F.tanh(self.out(F.relu(self.bn(h))))


class ResNetDiscriminator(Discriminator):
    """ResNet discriminator (paper tables 4, 5; authors' ``dis_models/snresnet_*.py``).

    ``x`` -> :class:`OptimizedDiscriminatorBlock` -> :class:`DiscriminatorBlock` s
    -> ReLU -> global sum pooling to ``h`` (N, w_last) -> dense to 1, plus the
    projection ``sum(V[y] * h, axis=1)`` when ``num_classes > 0`` (authors'
    ``l_y``, an SN embedding).

    Parameters
    ----------
    image_size : int
        32, 48 or 64.
    num_classes : int
        0 for an unconditional discriminator.
    channels : int
        Input image channels.
    ch : int or None
        Base width; None takes the layout's (128 at 32, 64 at 48 and 64).
    sn : bool
        Spectrally normalized layers when True, Gluon's plain ones when False.
    power_iterations : int
        Power iterations per training step of every SN layer.

    Inputs
    ------
    x : (N, channels, image_size, image_size) float32.
    y : (N,) integer labels, only when ``num_classes > 0``.

    Outputs
    -------
    logits : (N,).
    """

    def __init__(self, image_size=32, num_classes=0, channels=3, ch=None, sn=True,
                 power_iterations=1, **kwargs):
        check_common("resnet", num_classes, channels)
        check_image_size("resnet", image_size, DISCRIMINATOR_LAYOUTS)
        _, multipliers, downsample, dense_bias = DISCRIMINATOR_LAYOUTS[image_size]
        ch = default_ch("d", image_size) if ch is None else ch
        check_ch("resnet", ch, CH_MULTIPLE)
        super().__init__(**kwargs)
        self.image_size, self.num_classes, self.channels = image_size, num_classes, channels
        layers = discriminator_layers(sn, power_iterations)
        widths = [m * ch for m in multipliers]
        with self.name_scope():
            self.blocks = nn.HybridSequential()
            self.blocks.add(OptimizedDiscriminatorBlock(channels, widths[0], layers))
            for w_in, w_out, down in zip(widths[:-1], widths[1:], downsample[1:]):
                self.blocks.add(DiscriminatorBlock(w_in, w_out, down, layers))
            self.head = ProjectionOutput(widths[-1], num_classes, layers, use_bias=dense_bias,
                                         weight_initializer=glorot_uniform(),
                                         embedding_initializer=glorot_uniform())

    def hybrid_forward(self, F, x, y=None):
        h = F.sum(F.relu(self.blocks(x)), axis=(2, 3))
        return self.head(h, y) if self.num_classes > 0 else self.head(h)
