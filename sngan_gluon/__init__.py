"""sngan_gluon: Spectral Normalization GANs (Miyato et al., ICLR 2018) for MXNet Gluon.

Public API: the spectrally normalized layers (``SNConv1D/2D/3D``,
``SNConv2DTranspose``, ``SNDense``, ``SNEmbedding``), ``ConditionalBatchNorm``,
spectral normalization of any Gluon network (``spectral_norm``,
``remove_spectral_norm``, ``warm_up``), the model registry (``get_generator``, ``get_discriminator``) and the losses.
"""
from ._threads import set_default_threads

set_default_threads()  # before mxnet is imported: see _threads for why

from ._cuda_libs import load_cuda_libraries  # noqa: E402

load_cuda_libraries()  # before mxnet is imported: the CUDA build's libraries (_cuda_libs)

from . import _compat  # noqa: F401,E402  (must run before anything imports mxnet)

from . import losses  # noqa: E402
from .models import get_discriminator, get_generator  # noqa: E402
from .nn import (ConditionalBatchNorm, SNConv1D, SNConv2D, SNConv2DTranspose,  # noqa: E402
                 SNConv3D, SNDense, SNEmbedding, remove_spectral_norm, spectral_norm, warm_up)

__version__ = "0.1.0"

__all__ = ["SNConv1D", "SNConv2D", "SNConv3D", "SNConv2DTranspose", "SNDense", "SNEmbedding",
           "ConditionalBatchNorm", "spectral_norm", "remove_spectral_norm", "warm_up",
           "get_generator", "get_discriminator", "losses"]
