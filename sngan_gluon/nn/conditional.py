"""Class-conditional batch normalization for conditional generators.

De Vries et al., "Modulating early visual processing by language", NeurIPS 2017
(conditional BN), as used in the generators of Miyato & Koyama, "cGANs with
Projection Discriminator", ICLR 2018 (section 5; the authors'
``CategoricalConditionalBatchNormalization``): the features are normalized
without a learned affine transform, then scaled and shifted by a gain and a bias
looked up per class.
"""
from mxnet.gluon import HybridBlock, nn

__all__ = ["ConditionalBatchNorm"]


class ConditionalBatchNorm(HybridBlock):
    """Batch normalization with a per-class gain and bias.

    ``out = gamma[y] * BN(x) + beta[y]``, where ``BN`` is
    ``nn.BatchNorm(center=False, scale=False)`` (batch statistics in training,
    running statistics outside it, as Gluon's) and ``gamma``, ``beta`` are
    ``(num_classes, num_features)`` embedding tables initialized to ones and
    zeros, so a fresh layer equals plain normalization for every class (as the
    authors' ``CategoricalConditionalBatchNormalization``).

    Parameters
    ----------
    num_features : int
        Size of axis 1 of the input (channels, or units of a 2-D input).
    num_classes : int
        Number of classes; labels are integers in ``[0, num_classes)``.
    momentum, epsilon : float
        As in ``nn.BatchNorm``.

    Inputs
    ------
    x : (N, num_features, ...) float, any rank >= 2.
    y : (N,) integer class labels (any numeric dtype).

    Outputs
    -------
    out : same shape as ``x``.
    """

    def __init__(self, num_features, num_classes, momentum=0.9, epsilon=1e-5, **kwargs):
        super().__init__(**kwargs)
        for name, value in (("num_features", num_features), ("num_classes", num_classes)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError("ConditionalBatchNorm: %s must be an integer >= 1, got %r"
                                 % (name, value))
        self._num_features = num_features
        self._num_classes = num_classes
        with self.name_scope():
            self.bn = nn.BatchNorm(momentum=momentum, epsilon=epsilon, center=False, scale=False,
                                   in_channels=num_features)
            self.gamma = nn.Embedding(num_classes, num_features, weight_initializer="ones")
            self.beta = nn.Embedding(num_classes, num_features, weight_initializer="zeros")

    def hybrid_forward(self, F, x, y):
        h = self.bn(x)
        # (N, C, ...) -> (N, C, prod(...)): one broadcast serves inputs of every rank.
        flat = F.reshape(h, (0, 0, -1))
        gamma = F.expand_dims(self.gamma(y), axis=2)
        beta = F.expand_dims(self.beta(y), axis=2)
        out = F.broadcast_add(F.broadcast_mul(flat, gamma), beta)
        return F.reshape_like(out, x)

    def __repr__(self):
        return "%s(%d, num_classes=%d)" % (type(self).__name__, self._num_features,
                                           self._num_classes)
