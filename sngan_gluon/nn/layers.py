"""Spectrally normalized Gluon layers: drop-in replacements for Gluon's own.

Each class subclasses its Gluon counterpart and keeps its constructor, argument
for argument, adding ``power_iterations`` and ``epsilon``; swapping
``nn.Conv2D(64, 3, padding=1)`` for ``SNConv2D(64, 3, padding=1)`` changes
nothing else in a model. Deferred shape inference (``in_channels=0``,
``in_units=0``) works as in Gluon. See :mod:`sngan_gluon.nn.spectral_norm` for
the normalization itself, which every class here shares.

Each layer has one extra Parameter, ``u`` of shape ``(1, out_dim)``,
``grad_req='null'``: advanced by ``power_iterations`` steps on every forward in
training mode (``autograd.record()``), never outside it, saved by
``save_parameters`` and never touched by an optimizer.
"""
from mxnet.gluon import nn
from mxnet.ndarray import NDArray

from .._compat import dense_shape_args, layer_kwargs
from .spectral_norm import SpectralNormMixin, scale_last_axis

__all__ = ["SNConv1D", "SNConv2D", "SNConv3D", "SNConv2DTranspose", "SNDense", "SNEmbedding"]


class _SNConv(SpectralNormMixin):
    """Checks shared by the SN convolutions: layout and input rank."""

    _layouts = ()

    def _check_layout(self, layout):
        if layout not in self._layouts:
            raise ValueError("%s: layout %r is not supported; use one of %s"
                             % (type(self).__name__, layout, ", ".join(self._layouts)))

    def forward(self, x, *args):
        if isinstance(x, NDArray) and x.ndim != len(self._layouts[0]):
            raise ValueError("%s (%s): expected a %d-D input in layout %s, got shape %s"
                             % (type(self).__name__, self.name, len(self._layouts[0]),
                                layer_kwargs(self)["layout"], x.shape))
        return super().forward(x, *args)


class SNConv1D(_SNConv, nn.Conv1D):
    """Spectrally normalized ``nn.Conv1D``.

    Inputs: ``x`` (N, C_in, W). Outputs: (N, channels, W_out). Weight
    ``(channels, C_in/groups, k)``, normalized as a ``(channels, -1)`` matrix.
    """

    _layouts = ("NCW", "NWC")

    def __init__(self, channels, kernel_size, strides=1, padding=0, dilation=1, groups=1,
                 layout="NCW", activation=None, use_bias=True, weight_initializer=None,
                 bias_initializer="zeros", in_channels=0, power_iterations=1, epsilon=1e-12,
                 **kwargs):
        self._check_layout(layout)
        super().__init__(channels, kernel_size, strides, padding, dilation, groups, layout,
                         activation, use_bias, weight_initializer, bias_initializer,
                         in_channels, **kwargs)
        self._init_spectral_norm(channels, power_iterations, epsilon)


class SNConv2D(_SNConv, nn.Conv2D):
    """Spectrally normalized ``nn.Conv2D``.

    Inputs: ``x`` (N, C_in, H, W). Outputs: (N, channels, H_out, W_out). Weight
    ``(channels, C_in/groups, kh, kw)``, normalized as a ``(channels, -1)`` matrix.
    """

    _layouts = ("NCHW", "NHWC")

    def __init__(self, channels, kernel_size, strides=(1, 1), padding=(0, 0), dilation=(1, 1),
                 groups=1, layout="NCHW", activation=None, use_bias=True, weight_initializer=None,
                 bias_initializer="zeros", in_channels=0, power_iterations=1, epsilon=1e-12,
                 **kwargs):
        self._check_layout(layout)
        super().__init__(channels, kernel_size, strides, padding, dilation, groups, layout,
                         activation, use_bias, weight_initializer, bias_initializer,
                         in_channels, **kwargs)
        self._init_spectral_norm(channels, power_iterations, epsilon)


class SNConv3D(_SNConv, nn.Conv3D):
    """Spectrally normalized ``nn.Conv3D``.

    Inputs: ``x`` (N, C_in, D, H, W). Outputs: (N, channels, D_out, H_out, W_out).
    Weight ``(channels, C_in/groups, kd, kh, kw)``, normalized as ``(channels, -1)``.
    """

    _layouts = ("NCDHW", "NDHWC")

    def __init__(self, channels, kernel_size, strides=(1, 1, 1), padding=(0, 0, 0),
                 dilation=(1, 1, 1), groups=1, layout="NCDHW", activation=None, use_bias=True,
                 weight_initializer=None, bias_initializer="zeros", in_channels=0,
                 power_iterations=1, epsilon=1e-12, **kwargs):
        self._check_layout(layout)
        super().__init__(channels, kernel_size, strides, padding, dilation, groups, layout,
                         activation, use_bias, weight_initializer, bias_initializer,
                         in_channels, **kwargs)
        self._init_spectral_norm(channels, power_iterations, epsilon)


class SNConv2DTranspose(_SNConv, nn.Conv2DTranspose):
    """Spectrally normalized ``nn.Conv2DTranspose``.

    Inputs: ``x`` (N, C_in, H, W). Outputs: (N, channels, H_out, W_out) with
    ``H_out = (H - 1) * stride - 2 * padding + dilation * (kernel - 1) + output_padding + 1``,
    as Gluon's.

    MXNet stores a transposed convolution's weight as ``(C_in, channels/groups, kh,
    kw)``: the *output* axis is axis 1, not 0. The weight is normalized as the
    ``(channels/groups, -1)`` matrix ``W.swapaxes(0, 1)``, the map from inputs to
    outputs, so ``u`` has shape ``(1, channels/groups)``. Only the channel-first
    layout is supported (MXNet's CPU kernels have no other).

    MXNet 1.9.1's oneDNN ``Deconvolution`` aborts ("could not execute a primitive")
    when it must compute the gradient of a weight that is itself computed, as
    ``W / sigma`` is. So the layer runs the equivalent stride-1 ``Convolution`` of
    the zero-upsampled input with the flipped, transposed kernel: the same
    numbers, gradients that work everywhere, at ``stride**2`` times the
    multiply-adds of a native transposed convolution.
    """

    _layouts = ("NCHW",)
    _sn_out_axis = 1

    def __init__(self, channels, kernel_size, strides=(1, 1), padding=(0, 0),
                 output_padding=(0, 0), dilation=(1, 1), groups=1, layout="NCHW",
                 activation=None, use_bias=True, weight_initializer=None,
                 bias_initializer="zeros", in_channels=0, power_iterations=1, epsilon=1e-12,
                 **kwargs):
        self._check_layout(layout)
        if channels % groups:
            raise ValueError("SNConv2DTranspose: channels (%d) must be divisible by groups (%d)"
                             % (channels, groups))
        super().__init__(channels, kernel_size, strides, padding, output_padding, dilation,
                         groups, layout, activation, use_bias, weight_initializer,
                         bias_initializer, in_channels, **kwargs)
        self._init_spectral_norm(channels // groups, power_iterations, epsilon)

    def hybrid_forward(self, F, x, weight, u, bias=None):
        kw = layer_kwargs(self)
        kernel, stride, dilate = kw["kernel"], kw["stride"], kw["dilate"]
        pad, adj, groups = kw["pad"], kw["adj"], kw["num_group"]
        w_sn = self._spectral_weight(F, weight, u, True)
        # A one-pixel transposed convolution with no gradient: it lets deferred
        # initialization infer C_in from the data (the reshapes below infer only
        # forwards) and adds an exact zero to the output.
        probe = F.Deconvolution(F.BlockGrad(F.slice(x, begin=(0, 0, 0, 0), end=(1, None, 1, 1))),
                                F.BlockGrad(w_sn), kernel=kernel, num_filter=kw["num_filter"],
                                num_group=groups, no_bias=True)
        # (C_in, C_out/g, kh, kw) -> (C_out, C_in/g, kh, kw), spatially flipped.
        w_conv = F.reshape(w_sn, (-4, groups, -1, -2))
        w_conv = F.reshape(F.swapaxes(w_conv, 1, 2), (-3, -2))
        w_conv = F.flip(F.flip(w_conv, axis=2), axis=3)
        z = x
        for axis, s in ((2, stride[0]), (3, stride[1])):
            if s > 1:  # insert s - 1 zeros between neighbours along `axis`
                z = F.expand_dims(z, axis + 1)
                z = F.concat(z, *([F.zeros_like(z)] * (s - 1)), dim=axis + 1)
                z = F.reshape(z, (0, 0, -3, -2) if axis == 2 else (0, 0, 0, -3))
                z = F.slice_axis(z, axis=axis, begin=0, end=-(s - 1))
        before = [dilate[i] * (kernel[i] - 1) - pad[i] for i in range(2)]
        after = [before[i] + adj[i] for i in range(2)]
        for axis in (2, 3):
            i = axis - 2
            if before[i] < 0:
                z = F.slice_axis(z, axis=axis, begin=-before[i], end=None)
            if after[i] < 0:
                z = F.slice_axis(z, axis=axis, begin=0, end=after[i])
        widths = [max(v, 0) for i in range(2) for v in (before[i], after[i])]
        if any(widths):
            z = F.pad(z, mode="constant", constant_value=0, pad_width=(0, 0, 0, 0) + tuple(widths))
        args = (z, w_conv) if bias is None else (z, w_conv, bias)
        out = F.Convolution(*args, kernel=kernel, stride=(1, 1), dilate=dilate, pad=(0, 0),
                            num_filter=kw["num_filter"], num_group=groups, no_bias=bias is None)
        out = F.broadcast_add(out, F.sum(probe, axis=(0, 1, 2, 3), keepdims=True) * 0)
        if self.act is not None:
            out = self.act(out)
        return out


class SNDense(SpectralNormMixin, nn.Dense):
    """Spectrally normalized ``nn.Dense``.

    Inputs: ``x`` (N, in_units) (or (N, ...) flattened when ``flatten=True``).
    Outputs: (N, units). Weight ``(units, in_units)``; ``u`` has shape (1, units).

    ``x (W / sigma)^T`` is computed as ``(x W^T) / sigma``: the same numbers and
    gradients, with the division applied to the (N, units) output rather than to
    the (units, in_units) weight, a pass ``in_units`` times smaller than the
    product itself.
    """

    def __init__(self, units, activation=None, use_bias=True, flatten=True, dtype="float32",
                 weight_initializer=None, bias_initializer="zeros", in_units=0,
                 power_iterations=1, epsilon=1e-12, **kwargs):
        super().__init__(units, activation, use_bias, flatten, dtype, weight_initializer,
                         bias_initializer, in_units, **kwargs)
        self._init_spectral_norm(units, power_iterations, epsilon)

    def _weight_last_dim(self):
        return None

    def hybrid_forward(self, F, x, weight, u, bias=None):
        inv_sigma = self._inv_sigma(F, weight, u, True)
        shape = dense_shape_args(self)
        out = F.FullyConnected(x, weight, no_bias=True, num_hidden=shape["units"],
                               flatten=shape["flatten"])
        out = scale_last_axis(F, out, inv_sigma)
        if bias is not None:
            out = F.broadcast_add(out, bias)
        if self.act is not None:
            out = self.act(out)
        return out


class SNEmbedding(SpectralNormMixin, nn.Embedding):
    """Spectrally normalized ``nn.Embedding`` (the projection discriminator's ``V``).

    Inputs: integer labels ``x`` of any shape. Outputs: ``x.shape + (output_dim,)``.
    The table ``(input_dim, output_dim)`` is normalized as it is stored, rows =
    entries, as in the authors' ``SNEmbedID``; ``u`` has shape (1, input_dim).
    """

    def __init__(self, input_dim, output_dim, dtype="float32", weight_initializer=None,
                 sparse_grad=False, power_iterations=1, epsilon=1e-12, **kwargs):
        if sparse_grad:
            raise ValueError("SNEmbedding: sparse_grad=True is not supported; every row of "
                             "the table enters sigma, so its gradient is dense")
        super().__init__(input_dim, output_dim, dtype, weight_initializer, sparse_grad,
                         **kwargs)
        self._init_spectral_norm(input_dim, power_iterations, epsilon)

    def _weight_last_dim(self):
        return None

    def hybrid_forward(self, F, x, weight, u):
        # Rows of W / sigma are the looked-up rows divided by sigma: scale the
        # (..., output_dim) lookup, not the whole table.
        out = F.Embedding(x, weight, **layer_kwargs(self))
        return scale_last_axis(F, out, self._inv_sigma(F, weight, u, True))
