"""sngan_gluon: Spectral Normalization GANs (Miyato et al., ICLR 2018) for MXNet Gluon."""
from . import _compat  # noqa: F401  (must run before anything imports mxnet)

__version__ = "0.1.0"
