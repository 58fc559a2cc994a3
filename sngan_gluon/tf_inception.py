"""The 2015 TensorFlow Inception graph in Gluon, the network behind published IS and FID.

Every Inception Score and FID a GAN paper prints (Salimans et al. 2016, Heusel
et al. 2017, Miyato et al. 2018) was measured with TensorFlow's
``inception-2015-12-05`` graph. :class:`TFInceptionV3` rebuilds that graph
as torch-fidelity (``feature_extractor_inceptionv3.py``) and pytorch-fid
(``inception.py``) reimplement it, quirks included:

* the input path: uint8 images resized to 299x299 with TensorFlow 1's bilinear
  resize (``align_corners=False``: output pixel ``i`` samples input position
  ``i * in / out``, no half-pixel offset; :func:`tf1_resize_matrix`), then
  scaled to [-1, 1] by ``(x - 128) / 128``;
* batch normalization with ``epsilon = 1e-3`` after every bias-free convolution;
* the average pooling branches of the Mixed blocks leave padded zeros out of
  the average (``count_include_pad=False``), and the last block (``Mixed_7c``)
  max-pools where the paper's Inception-v3 average-pools;
* a 1008-way classifier, of which the scores use the logits *without* bias.

Child blocks carry torch-fidelity's attribute names (``Mixed_5b.branch1x1.conv``),
so its state dict maps onto ours key by key (:mod:`sngan_gluon.inception_weights`).
"""
import numpy as np
from mxnet.gluon import HybridBlock, nn

__all__ = ["TFInceptionV3", "tf1_resize_matrix", "INPUT_SIZE", "NUM_FEATURES", "NUM_CLASSES"]

INPUT_SIZE = 299
NUM_FEATURES = 2048
NUM_CLASSES = 1008


def tf1_resize_matrix(in_size, out_size=INPUT_SIZE):
    """Bilinear resize along one axis as TensorFlow 1.x does it, as a matrix.

    Output pixel ``i`` samples input position ``p = i * (in_size / out_size)``
    (``align_corners=False``) and blends pixels ``floor(p)`` and
    ``min(floor(p) + 1, in_size - 1)``. The position is computed in float32, as
    torch-fidelity's ``interpolate_bilinear_2d_like_tensorflow1x`` does, so the
    same pixels are chosen.

    Returns
    -------
    numpy.ndarray, (out_size, in_size) float32
        Row ``i`` holds the two blending weights of output pixel ``i``.
    """
    scale = np.float32(in_size / out_size)
    position = np.arange(out_size, dtype=np.float32) * scale
    low = position.astype(np.int64)
    high = np.minimum(low + 1, in_size - 1)
    frac = position - low.astype(np.float32)
    matrix = np.zeros((out_size, in_size), np.float32)
    rows = np.arange(out_size)
    np.add.at(matrix, (rows, low), np.float32(1) - frac)
    np.add.at(matrix, (rows, high), frac)
    return matrix


class BasicConv2D(HybridBlock):
    """Bias-free convolution, batch normalization (epsilon 1e-3), ReLU."""

    def __init__(self, channels, kernel_size, strides=1, padding=0, in_channels=0, **kwargs):
        super(BasicConv2D, self).__init__(**kwargs)
        self.conv = nn.Conv2D(channels, kernel_size, strides=strides, padding=padding,
                              use_bias=False, in_channels=in_channels)
        self.bn = nn.BatchNorm(epsilon=1e-3, in_channels=channels)

    def hybrid_forward(self, F, x):
        # Activation runs as one oneDNN kernel; F.relu is a generic, several times slower op.
        return F.Activation(self.bn(self.conv(x)), act_type="relu")


def _avg_pool_same(F, x):
    # TensorFlow's SAME average pooling divides by the pixels inside the image only.
    return F.Pooling(x, kernel=(3, 3), stride=(1, 1), pad=(1, 1), pool_type="avg",
                     count_include_pad=False)


def _max_pool_valid(F, x):
    return F.Pooling(x, kernel=(3, 3), stride=(2, 2), pool_type="max")


class MixedA(HybridBlock):
    """Mixed_5b/5c/5d (35x35): 1x1, 5x5, double 3x3 and average-pool branches."""

    def __init__(self, pool_features, **kwargs):
        super(MixedA, self).__init__(**kwargs)
        self.branch1x1 = BasicConv2D(64, 1)
        self.branch5x5_1 = BasicConv2D(48, 1)
        self.branch5x5_2 = BasicConv2D(64, 5, padding=2)
        self.branch3x3dbl_1 = BasicConv2D(64, 1)
        self.branch3x3dbl_2 = BasicConv2D(96, 3, padding=1)
        self.branch3x3dbl_3 = BasicConv2D(96, 3, padding=1)
        self.branch_pool = BasicConv2D(pool_features, 1)

    def hybrid_forward(self, F, x):
        return F.concat(self.branch1x1(x),
                        self.branch5x5_2(self.branch5x5_1(x)),
                        self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x))),
                        self.branch_pool(_avg_pool_same(F, x)), dim=1)


class MixedB(HybridBlock):
    """Mixed_6a: 35x35 -> 17x17 by strided 3x3, double 3x3 and max-pool branches."""

    def __init__(self, **kwargs):
        super(MixedB, self).__init__(**kwargs)
        self.branch3x3 = BasicConv2D(384, 3, strides=2)
        self.branch3x3dbl_1 = BasicConv2D(64, 1)
        self.branch3x3dbl_2 = BasicConv2D(96, 3, padding=1)
        self.branch3x3dbl_3 = BasicConv2D(96, 3, strides=2)

    def hybrid_forward(self, F, x):
        return F.concat(self.branch3x3(x),
                        self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x))),
                        _max_pool_valid(F, x), dim=1)


class MixedC(HybridBlock):
    """Mixed_6b..6e (17x17): factorized 7x7 branches with ``channels_7x7`` inner channels."""

    def __init__(self, channels_7x7, **kwargs):
        super(MixedC, self).__init__(**kwargs)
        c7 = channels_7x7
        self.branch1x1 = BasicConv2D(192, 1)
        self.branch7x7_1 = BasicConv2D(c7, 1)
        self.branch7x7_2 = BasicConv2D(c7, (1, 7), padding=(0, 3))
        self.branch7x7_3 = BasicConv2D(192, (7, 1), padding=(3, 0))
        self.branch7x7dbl_1 = BasicConv2D(c7, 1)
        self.branch7x7dbl_2 = BasicConv2D(c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_3 = BasicConv2D(c7, (1, 7), padding=(0, 3))
        self.branch7x7dbl_4 = BasicConv2D(c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_5 = BasicConv2D(192, (1, 7), padding=(0, 3))
        self.branch_pool = BasicConv2D(192, 1)

    def hybrid_forward(self, F, x):
        b7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        d7 = self.branch7x7dbl_1(x)
        for layer in (self.branch7x7dbl_2, self.branch7x7dbl_3, self.branch7x7dbl_4,
                      self.branch7x7dbl_5):
            d7 = layer(d7)
        return F.concat(self.branch1x1(x), b7, d7, self.branch_pool(_avg_pool_same(F, x)), dim=1)


class MixedD(HybridBlock):
    """Mixed_7a: 17x17 -> 8x8 by strided 3x3, 7x7-then-3x3 and max-pool branches."""

    def __init__(self, **kwargs):
        super(MixedD, self).__init__(**kwargs)
        self.branch3x3_1 = BasicConv2D(192, 1)
        self.branch3x3_2 = BasicConv2D(320, 3, strides=2)
        self.branch7x7x3_1 = BasicConv2D(192, 1)
        self.branch7x7x3_2 = BasicConv2D(192, (1, 7), padding=(0, 3))
        self.branch7x7x3_3 = BasicConv2D(192, (7, 1), padding=(3, 0))
        self.branch7x7x3_4 = BasicConv2D(192, 3, strides=2)

    def hybrid_forward(self, F, x):
        b7 = self.branch7x7x3_1(x)
        for layer in (self.branch7x7x3_2, self.branch7x7x3_3, self.branch7x7x3_4):
            b7 = layer(b7)
        return F.concat(self.branch3x3_2(self.branch3x3_1(x)), b7, _max_pool_valid(F, x), dim=1)


class MixedE(HybridBlock):
    """Mixed_7b/7c (8x8): split 1x3 / 3x1 branches; ``pool`` is 'avg' (7b) or 'max' (7c).

    TensorFlow's graph max-pools in Mixed_7c, unlike the paper's Inception-v3;
    the FID reference keeps it, so we do.
    """

    def __init__(self, pool="avg", **kwargs):
        super(MixedE, self).__init__(**kwargs)
        assert pool in ("avg", "max"), pool
        self._pool = pool
        self.branch1x1 = BasicConv2D(320, 1)
        self.branch3x3_1 = BasicConv2D(384, 1)
        self.branch3x3_2a = BasicConv2D(384, (1, 3), padding=(0, 1))
        self.branch3x3_2b = BasicConv2D(384, (3, 1), padding=(1, 0))
        self.branch3x3dbl_1 = BasicConv2D(448, 1)
        self.branch3x3dbl_2 = BasicConv2D(384, 3, padding=1)
        self.branch3x3dbl_3a = BasicConv2D(384, (1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = BasicConv2D(384, (3, 1), padding=(1, 0))
        self.branch_pool = BasicConv2D(192, 1)

    def hybrid_forward(self, F, x):
        b3 = self.branch3x3_1(x)
        d3 = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        if self._pool == "avg":
            pooled = _avg_pool_same(F, x)
        else:
            pooled = F.Pooling(x, kernel=(3, 3), stride=(1, 1), pad=(1, 1), pool_type="max")
        return F.concat(self.branch1x1(x), self.branch3x3_2a(b3), self.branch3x3_2b(b3),
                        self.branch3x3dbl_3a(d3), self.branch3x3dbl_3b(d3),
                        self.branch_pool(pooled), dim=1)


class TFInceptionV3(HybridBlock):
    """TensorFlow's 2015 Inception graph: pool features and unbiased logits of uint8 images.

    Build it, load weights (``net.load_parameters(path)`` with the ``.params`` file
    that :func:`sngan_gluon.inception_weights.tf_inception_params` returns), then
    call it with the images and the two resize matrices of their size;
    :class:`sngan_gluon.feature_nets.TFInceptionExtractor` does all of this.

    Inputs:
        - **x**: uint8 or float images in 0..255, ``(N, 3, H, W)``.
        - **resize_rows**: ``tf1_resize_matrix(H)``, ``(299, H)`` float32.
        - **resize_cols**: ``tf1_resize_matrix(W)``, ``(299, W)`` float32.

    Outputs:
        - **features**: ``(N, 2048)`` float32, the global average pool (FID, KID,
          precision/recall).
        - **logits**: ``(N, 1008)`` float32, the classifier without its bias
          (torch-fidelity's ``logits_unbiased``, for the Inception Score).
    """

    def __init__(self, **kwargs):
        super(TFInceptionV3, self).__init__(**kwargs)
        self.Conv2d_1a_3x3 = BasicConv2D(32, 3, strides=2, in_channels=3)
        self.Conv2d_2a_3x3 = BasicConv2D(32, 3)
        self.Conv2d_2b_3x3 = BasicConv2D(64, 3, padding=1)
        self.Conv2d_3b_1x1 = BasicConv2D(80, 1)
        self.Conv2d_4a_3x3 = BasicConv2D(192, 3)
        self.Mixed_5b = MixedA(32)
        self.Mixed_5c = MixedA(64)
        self.Mixed_5d = MixedA(64)
        self.Mixed_6a = MixedB()
        self.Mixed_6b = MixedC(128)
        self.Mixed_6c = MixedC(160)
        self.Mixed_6d = MixedC(160)
        self.Mixed_6e = MixedC(192)
        self.Mixed_7a = MixedD()
        self.Mixed_7b = MixedE("avg")
        self.Mixed_7c = MixedE("max")
        self.fc = nn.Dense(NUM_CLASSES, use_bias=False, in_units=NUM_FEATURES)

    def hybrid_forward(self, F, x, resize_rows, resize_cols):
        # Separable resize: along W, then along H (torch-fidelity's order), as two matmuls;
        # the second a batch_dot over the N * 3 planes, which needs no transposes.
        x = F.dot(F.cast(x, "float32"), resize_cols, transpose_b=True)   # (N, 3, H, 299)
        x = F.reshape(x, shape=(-3, -2))                                  # (N * 3, H, 299)
        rows = F.broadcast_like(F.expand_dims(resize_rows, axis=0), x, lhs_axes=(0,),
                                rhs_axes=(0,))                            # (N * 3, 299, H)
        x = F.reshape(F.batch_dot(rows, x), shape=(-4, -1, 3, -2))        # (N, 3, 299, 299)
        x = (x - 128.0) / 128.0
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))
        x = _max_pool_valid(F, x)
        x = _max_pool_valid(F, self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x)))
        for block in (self.Mixed_5b, self.Mixed_5c, self.Mixed_5d, self.Mixed_6a,
                      self.Mixed_6b, self.Mixed_6c, self.Mixed_6d, self.Mixed_6e,
                      self.Mixed_7a, self.Mixed_7b, self.Mixed_7c):
            x = block(x)
        features = F.flatten(F.Pooling(x, kernel=(1, 1), global_pool=True, pool_type="avg"))
        return features, self.fc(features)
