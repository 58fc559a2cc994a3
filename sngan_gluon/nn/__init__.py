"""Spectrally normalized layers, conditional BatchNorm, and spectral normalization of any
Gluon network (``spectral_norm``, ``remove_spectral_norm``, ``warm_up``)."""
from .conditional import ConditionalBatchNorm
from .convert import remove_spectral_norm, spectral_norm
from .layers import SNConv1D, SNConv2D, SNConv2DTranspose, SNConv3D, SNDense, SNEmbedding
from .spectral_norm import SpectralNormMixin
from .warmup import warm_up

__all__ = ["SNConv1D", "SNConv2D", "SNConv3D", "SNConv2DTranspose", "SNDense", "SNEmbedding",
           "SpectralNormMixin", "ConditionalBatchNorm", "spectral_norm", "remove_spectral_norm",
           "warm_up"]
