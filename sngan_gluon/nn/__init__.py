"""Spectrally normalized layers and conditional BatchNorm for Gluon."""
from .conditional import ConditionalBatchNorm
from .layers import SNConv1D, SNConv2D, SNConv2DTranspose, SNConv3D, SNDense, SNEmbedding
from .spectral_norm import SpectralNormMixin

__all__ = ["SNConv1D", "SNConv2D", "SNConv3D", "SNConv2DTranspose", "SNDense", "SNEmbedding",
           "SpectralNormMixin", "ConditionalBatchNorm"]
