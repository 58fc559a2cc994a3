"""Spectral normalization for any Gluon network: swap its layers for their SN twins and back.

:func:`spectral_norm` walks a network and replaces every ``nn.Conv1D/2D/3D``,
``nn.Conv2DTranspose``, ``nn.Dense`` and ``nn.Embedding`` by the SN layer of
:mod:`sngan_gluon.nn.layers` built from the same hyper-parameters and the same
prefix, holding the *same* weight and bias Parameters: parameter names do not
change, so a file saved from the plain network loads into the converted one
(``allow_missing=True`` for the new ``u``), and trained weights are kept.
:func:`remove_spectral_norm` is the reverse, for deployment: each SN layer
becomes its plain layer holding ``W / sigma``, so an exported network runs
without the power iteration and computes what the SN network computes in
inference.

Only the exact Gluon classes are converted: a subclass may change what its
forward does with the weight, so it is left alone and named in the warning, as
are other layers with a weight and no SN twin (``Conv1DTranspose``, RNN cells).
"""
import warnings
from collections import Counter

import mxnet as mx
from mxnet.gluon import Block, HybridBlock, nn

from .._compat import (activation_name, conv_in_channels, dense_shape_args, hybridize_flags,
                       layer_kwargs, outside_name_scopes, own_param_names, param_deferred,
                       param_initialized)
from .layers import SNConv1D, SNConv2D, SNConv2DTranspose, SNConv3D, SNDense, SNEmbedding
from .spectral_norm import SpectralNormMixin
from .walk import replace_blocks, sn_layers
from .warmup import advance_u, weight_ready

__all__ = ["spectral_norm", "remove_spectral_norm", "layer_config", "SN_TWINS"]

#: Gluon layer class -> its spectrally normalized twin.
SN_TWINS = {nn.Conv1D: SNConv1D, nn.Conv2D: SNConv2D, nn.Conv3D: SNConv3D,
            nn.Conv2DTranspose: SNConv2DTranspose, nn.Dense: SNDense, nn.Embedding: SNEmbedding}
_PLAIN = {sn: plain for plain, sn in SN_TWINS.items()}

#: Power iterations run on ``u`` when a layer with an initialized weight is converted.
ATTACH_ITERATIONS = 15


def layer_config(layer):
    """The constructor arguments that rebuild ``layer``, a plain or SN layer of a known kind.

    Returns a dict for the Gluon constructor (no ``prefix``/``params``; SN layers'
    ``power_iterations``/``epsilon`` left out). The initializers are the layer's
    Parameters' own, so a rebuilt layer draws its weights as the original would.
    """
    if isinstance(layer, nn.Embedding):
        kw = layer_kwargs(layer)
        return dict(input_dim=kw["input_dim"], output_dim=kw["output_dim"], dtype=kw["dtype"],
                    weight_initializer=layer.weight.init, sparse_grad=kw["sparse_grad"])
    bias = dict(use_bias=layer.bias is not None,
                bias_initializer=layer.bias.init if layer.bias is not None else "zeros")
    if isinstance(layer, nn.Dense):
        return dict(**dense_shape_args(layer), activation=activation_name(layer),
                    dtype=layer.weight.dtype, weight_initializer=layer.weight.init, **bias)
    kw = layer_kwargs(layer)
    config = dict(channels=kw["num_filter"], kernel_size=kw["kernel"], strides=kw["stride"],
                  padding=kw["pad"], dilation=kw["dilate"], groups=kw["num_group"],
                  layout=kw["layout"], activation=activation_name(layer),
                  weight_initializer=layer.weight.init, in_channels=conv_in_channels(layer),
                  **bias)
    if "adj" in kw:
        config["output_padding"] = kw["adj"]
    return config


def _copy_hybridization(old, new):
    flags = hybridize_flags(old) if isinstance(old, HybridBlock) else None
    if flags is not None:
        new.hybridize(True, **flags)


def _sn_twin(layer, power_iterations, epsilon):
    """The SN twin of ``layer``, sharing its weight and bias Parameters (ValueError if the
    twin refuses a setting, e.g. a channel-last transposed convolution)."""
    with outside_name_scopes():
        # params=layer.params: the twin's get('weight') / get('bias') return the
        # layer's own Parameters (same names, data and sharing); only u is new.
        twin = SN_TWINS[type(layer)](**layer_config(layer), power_iterations=power_iterations,
                                     epsilon=epsilon, prefix=layer.prefix, params=layer.params)
    assert twin.weight is layer.weight and twin.name == layer.name
    if twin.u.dtype != layer.weight.dtype:
        twin.u.cast(layer.weight.dtype)
    weight = layer.weight
    if param_initialized(weight):
        # A plain convolution run in inference leaves its weight in a oneDNN
        # blocked layout that the power iteration's operators misread (depthwise
        # kernels fail outright); new arrays with the same values are plain.
        weight.reset_ctx(weight.list_ctx())
    if param_initialized(weight) or param_deferred(weight):  # initialize() was called
        twin.u.initialize(ctx=weight.list_ctx())
        if weight_ready(twin):
            # PyTorch's 15 iterations on attaching: a fair start at little cost on
            # large networks; warm_up(net) converges.
            advance_u(twin, ATTACH_ITERATIONS, tol=None)
    _copy_hybridization(layer, twin)
    return twin


def _plain_twin(layer):
    """The plain Gluon layer of SN ``layer``, holding fresh Parameters: ``W / sigma`` and a
    copy of the bias, on the contexts of ``layer``'s weight."""
    ctxs = layer.weight.list_ctx()
    weight = layer.normalized_weight(ctxs[0])
    with outside_name_scopes():
        plain = _PLAIN[type(layer)](**layer_config(layer), prefix=layer.prefix)
    plain.cast(layer.weight.dtype)  # Gluon's convolutions take no dtype argument
    for name, value in (("weight", weight), ("bias", getattr(layer, "bias", None))):
        param = getattr(plain, name, None)
        if param is None or value is None:
            continue
        value = value if name == "weight" else value.data(ctxs[0])
        param.shape = value.shape  # fills the axes a deferred layer left at 0
        param.initialize(init=mx.init.Zero(), ctx=ctxs)
        param.set_data(value)
    _copy_hybridization(layer, plain)
    return plain


def _has_weight(block):
    return any(name.endswith("weight") for name in own_param_names(block))


def _check_block(block, function):
    if not isinstance(block, Block):
        raise TypeError("%s expects a Gluon Block, got %s" % (function, type(block).__name__))


def _convert_root(block, convert_one):
    """Run ``convert_one`` over ``block``'s descendants, or on ``block`` itself when it is a
    layer; returns the (possibly new) root."""
    new = convert_one("", block)
    if new is None:
        return block
    if new is block:
        replace_blocks(block, convert_one)
    return new


def spectral_norm(block, power_iterations=1, epsilon=1e-12, exclude=None):
    """Spectrally normalize every convolution, dense and embedding layer of ``block``.

    Parameters
    ----------
    block : gluon.Block
        A network (converted in place) or a single layer (its twin is returned).
    power_iterations, epsilon
        As for the SN layers (:class:`~sngan_gluon.nn.SNConv2D`).
    exclude : callable(name, block) -> bool, optional
        Blocks to leave alone, with everything under them. ``name`` is the
        block's path from ``block`` (``'features.0'``, ``'output'``: the keys of
        ``_collect_params_with_prefix``; ``''`` for ``block`` itself); the
        block's ``.name`` gives its Gluon name.

    Returns
    -------
    block, converted; or the SN twin when ``block`` itself is a layer.

    Each twin keeps the layer's hyper-parameters (channels, kernel, strides,
    padding, dilation, groups, layout, activation, bias, flatten, input size,
    initializers, dtype), prefix, weight and bias Parameters and hybridization.
    Where the weight is already initialized, ``u`` is initialized on its
    contexts and advanced by 15 power iterations, as PyTorch does when it
    attaches SN; :func:`~sngan_gluon.nn.warm_up` iterates to convergence.
    SN layers already present are left alone, so converting twice changes
    nothing. A ``UserWarning`` lists what was left alone when nothing was
    converted or when layers with a weight have no SN twin.
    """
    _check_block(block, "spectral_norm")
    if isinstance(power_iterations, bool) or not isinstance(power_iterations, int) \
            or power_iterations < 1:
        raise ValueError("spectral_norm: power_iterations must be an integer >= 1, got %r"
                         % (power_iterations,))
    if not epsilon > 0:
        raise ValueError("spectral_norm: epsilon must be > 0, got %r" % (epsilon,))
    if exclude is not None and not callable(exclude):
        raise TypeError("spectral_norm: exclude must be a callable(name, layer), got %s"
                        % type(exclude).__name__)
    done, already, unknown = [], [], Counter()

    def convert_one(name, layer):
        if isinstance(layer, SpectralNormMixin):
            already.append(name)
        elif exclude is not None and exclude(name, layer):
            return None  # the block and everything under it
        elif type(layer) in SN_TWINS:
            try:
                twin = _sn_twin(layer, power_iterations, epsilon)
            except ValueError as err:  # a setting the SN layer does not support
                unknown["%s (%s)" % (type(layer).__name__, err)] += 1
                return layer
            done.append(name)
            return twin
        elif _has_weight(layer):
            unknown[type(layer).__name__] += 1
        return layer

    root = _convert_root(block, convert_one)
    if not done or unknown:
        _warn("spectral_norm", block, done, already, unknown, "no SN twin")
    return root


def _warn(function, block, done, already, unknown, why):
    parts = ["%s converted %d layer(s) of %s" % (function, len(done), type(block).__name__)]
    if already:
        parts.append("%d already spectrally normalized" % len(already))
    if unknown:
        parts.append("left alone, %s: " % why + ", ".join(
            "%d %s" % (n, kind) for kind, n in sorted(unknown.items())))
    warnings.warn("; ".join(parts), UserWarning, stacklevel=3)


def remove_spectral_norm(block):
    """Replace every SN layer of ``block`` by its plain Gluon layer holding ``W / sigma``.

    For deployment: the result computes what the SN network computes in
    inference (``u`` no longer advances, no power iteration is run) and exports
    without the SN layers. Parameter names stay the same (``u`` aside). The
    weights must be initialized (RuntimeError otherwise; nothing is changed).

    Parameters
    ----------
    block : gluon.Block
        A network (converted in place) or a single SN layer (its plain layer is returned).

    Returns
    -------
    block; or the plain layer when ``block`` itself is an SN layer. A network
    without SN layers is returned unchanged with a ``UserWarning``.
    """
    _check_block(block, "remove_spectral_norm")
    found = sn_layers(block)
    unready = [b.name for b in found
               if not (param_initialized(b.weight) and param_initialized(b.u))]
    if unready:
        raise RuntimeError("remove_spectral_norm: the weights of %s are not initialized (call "
                           "initialize() and run one forward first); nothing was changed"
                           % ", ".join(unready))
    done, unknown = [], Counter()

    def convert_one(name, layer):
        if type(layer) in _PLAIN:
            done.append(name)
            return _plain_twin(layer)
        if isinstance(layer, SpectralNormMixin):
            unknown[type(layer).__name__] += 1
        return layer

    root = _convert_root(block, convert_one)
    if not done or unknown:
        _warn("remove_spectral_norm", block, done, [], unknown, "subclasses of SN layers")
    return root
