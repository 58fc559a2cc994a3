"""Generator / discriminator pairs by name.

=========  ==========  ===========  ==================================================
arch       sizes       conditional  source
=========  ==========  ===========  ==================================================
dcgan      32, 48      yes          SN-GAN paper, "standard CNN" (appendix B, table 3)
resnet     32, 48, 64  yes          SN-GAN paper tables 4, 5; authors' sngan_projection
dcgan64    64          no           MXNet's example/gluon/sn_gan
=========  ==========  ===========  ==================================================

Every generator maps ``z`` (N, z_dim) [and labels ``y`` (N,)] to images
(N, channels, S, S) in [-1, 1]; every discriminator maps images [and labels] to
logits of shape (N,). All are HybridBlocks whose parameters carry their own
initializers: ``net.initialize()`` gives the authors' initialization.
"""
from ._common import Discriminator, Generator
from .dcgan import DCGANDiscriminator, DCGANGenerator
from .dcgan64 import DCGAN64Discriminator, DCGAN64Generator
from .resnet import ResNetDiscriminator, ResNetGenerator

__all__ = ["get_generator", "get_discriminator", "MODELS", "Generator", "Discriminator",
           "DCGANGenerator", "DCGANDiscriminator", "ResNetGenerator", "ResNetDiscriminator",
           "DCGAN64Generator", "DCGAN64Discriminator"]

#: arch -> (generator class, discriminator class)
MODELS = {
    "dcgan": (DCGANGenerator, DCGANDiscriminator),
    "resnet": (ResNetGenerator, ResNetDiscriminator),
    "dcgan64": (DCGAN64Generator, DCGAN64Discriminator),
}


def _pair(arch):
    if arch not in MODELS:
        raise ValueError("unknown arch %r; valid names: %s" % (arch, ", ".join(sorted(MODELS))))
    return MODELS[arch]


def get_generator(arch, image_size=32, z_dim=128, num_classes=0, **kwargs):
    """Build the generator of ``arch`` (uninitialized).

    Parameters
    ----------
    arch : str
        One of ``MODELS``: 'dcgan', 'resnet', 'dcgan64'.
    image_size : int
        Output side ``S``; each arch lists the sizes it has a layout for.
    z_dim : int
        Noise dimension.
    num_classes : int
        0: unconditional ``G(z)``; > 0: conditional ``G(z, y)`` (conditional BatchNorm).
    **kwargs
        Passed to the class: ``channels`` (3 or 1), ``ch`` (width), ``prefix``.

    Returns
    -------
    Generator
        ``G(z[, y])``: z (N, z_dim) float32, y (N,) int -> (N, channels, S, S) in [-1, 1].
    """
    return _pair(arch)[0](image_size=image_size, z_dim=z_dim, num_classes=num_classes, **kwargs)


def get_discriminator(arch, image_size=32, num_classes=0, sn=True, **kwargs):
    """Build the discriminator of ``arch`` (uninitialized).

    Parameters
    ----------
    arch : str
        One of ``MODELS``.
    image_size : int
        Input side ``S``.
    num_classes : int
        0: unconditional ``D(x)``; > 0: projection discriminator ``D(x, y)``.
    sn : bool
        Spectral normalization of every convolution, dense and embedding layer;
        False builds the same network from Gluon's plain layers.
    **kwargs
        Passed to the class: ``channels``, ``ch``, ``power_iterations``, ``prefix``
        (and ``slope`` for 'dcgan').

    Returns
    -------
    Discriminator
        ``D(x[, y])``: x (N, channels, S, S), y (N,) int -> logits (N,).
    """
    return _pair(arch)[1](image_size=image_size, num_classes=num_classes, sn=sn, **kwargs)
