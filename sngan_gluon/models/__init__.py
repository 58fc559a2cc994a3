"""Generator / discriminator pairs by name.

=========  ==========  =======  ===========  ==============================================
arch       sizes       default  conditional  source
=========  ==========  =======  ===========  ==============================================
dcgan      32, 48      32       yes          SN-GAN paper, "standard CNN" (appendix B, tab. 3)
resnet     32, 48, 64  32       yes          SN-GAN paper tables 4, 5; authors' sngan_projection
dcgan64    64          64       no           MXNet's example/gluon/sn_gan
=========  ==========  =======  ===========  ==============================================

The sizes and the default side sit on each ``MODELS`` entry (:class:`Architecture`);
:func:`image_size_for` picks the side a run uses.

Every generator maps ``z`` (N, z_dim) [and labels ``y`` (N,)] to images
(N, channels, S, S) in [-1, 1]; every discriminator maps images [and labels] to
logits of shape (N,). All are HybridBlocks whose parameters carry their own
initializers: ``net.initialize()`` gives the authors' initialization.
"""
from collections import namedtuple

from ._common import Discriminator, Generator, check_ch
from . import dcgan, dcgan64, resnet
from .dcgan import DCGANDiscriminator, DCGANGenerator
from .dcgan64 import DCGAN64Discriminator, DCGAN64Generator
from .resnet import ResNetDiscriminator, ResNetGenerator
from .initialization import INITS, apply_init

__all__ = ["get_generator", "get_discriminator", "MODELS", "Architecture", "image_size_for",
           "check_ch",
           "INITS", "apply_init",
           "Generator", "Discriminator",
           "DCGANGenerator", "DCGANDiscriminator", "ResNetGenerator", "ResNetDiscriminator",
           "DCGAN64Generator", "DCGAN64Discriminator"]

#: One registry entry: the two classes, the image sides the pair has a layout
#: for, the side used when the user names none, the number every base width ``ch``
#: of the pair must be a multiple of, and ``default_ch(net, image_size)``: the width
#: the classes take for ``ch=None`` (``net`` 'g': the generator's, 'd': the
#: discriminator's).
Architecture = namedtuple("Architecture",
                          "generator discriminator sizes default_size ch_multiple default_ch")

#: arch -> Architecture; the command line builds its ``--arch`` choices from it.
#: The sizes are read from each family's own layout table, which its classes check.
MODELS = {
    "dcgan": Architecture(DCGANGenerator, DCGANDiscriminator,
                          sizes=tuple(sorted(dcgan.BOTTOM_WIDTH)), default_size=32,
                          ch_multiple=dcgan.CH_MULTIPLE, default_ch=dcgan.default_ch),
    "resnet": Architecture(ResNetGenerator, ResNetDiscriminator,
                           sizes=tuple(sorted(resnet.GENERATOR_LAYOUTS)), default_size=32,
                           ch_multiple=resnet.CH_MULTIPLE, default_ch=resnet.default_ch),
    "dcgan64": Architecture(DCGAN64Generator, DCGAN64Discriminator,
                            sizes=tuple(dcgan64.SUPPORTED_SIZES), default_size=64,
                            ch_multiple=dcgan64.CH_MULTIPLE, default_ch=dcgan64.default_ch),
}


def _entry(arch):
    if arch not in MODELS:
        raise ValueError("unknown arch %r; valid names: %s" % (arch, ", ".join(sorted(MODELS))))
    return MODELS[arch]


def image_size_for(arch, image_size=None, preferred=None):
    """The image side to build ``arch`` for.

    Parameters
    ----------
    arch : str
        One of ``MODELS``.
    image_size : int, optional
        The side the user asked for; it must be one of the arch's ``sizes``.
    preferred : int, optional
        A side to use when ``image_size`` is None and the arch supports it (the
        dataset's own side); otherwise the arch's ``default_size`` is used.

    Raises
    ------
    ValueError
        Naming the sides ``arch`` supports, when ``image_size`` is not one of them.
    """
    entry = _entry(arch)
    if image_size is None:
        return preferred if preferred in entry.sizes else entry.default_size
    if image_size not in entry.sizes:
        raise ValueError("%s has no layout for image size %r; it supports %s"
                         % (arch, image_size, ", ".join(str(s) for s in entry.sizes)))
    return image_size


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
    return _entry(arch).generator(image_size=image_size, z_dim=z_dim, num_classes=num_classes,
                                  **kwargs)


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
    return _entry(arch).discriminator(image_size=image_size, num_classes=num_classes, sn=sn,
                                      **kwargs)
