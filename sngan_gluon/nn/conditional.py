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
    ``(num_classes, num_features)`` Parameters (one row per class) initialized to
    ones and zeros, so a fresh layer equals plain normalization for every class (as the
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
            self.gamma = self.params.get("gamma", shape=(num_classes, num_features), init="ones")
            self.beta = self.params.get("beta", shape=(num_classes, num_features), init="zeros")

    def hybrid_forward(self, F, x, y, gamma, beta):
        h = self.bn(x)
        # The rows are looked up as one_hot(y) . table rather than with Embedding:
        # a hybridized generator reads the same labels in many conditional
        # BatchNorms, and once more than MXNET_EXEC_INPLACE_GRAD_SUM_CAP (8)
        # Embeddings share them, MXNet 1.9 asks Embedding for a gradient of its
        # integer input, which it refuses ("Embedding layer doesn't support
        # calculate data gradient"). The product costs N x num_classes x C.
        onehot = F.one_hot(y, self._num_classes)
        # (N, C, ...) -> (N, C, prod(...)): one broadcast serves inputs of every rank.
        flat = F.reshape(h, (0, 0, -1))
        scale = F.expand_dims(F.dot(onehot, gamma), axis=2)
        shift = F.expand_dims(F.dot(onehot, beta), axis=2)
        out = F.broadcast_add(F.broadcast_mul(flat, scale), shift)
        return F.reshape_like(out, x)

    def __repr__(self):
        return "%s(%d, num_classes=%d)" % (type(self).__name__, self._num_features,
                                           self._num_classes)
