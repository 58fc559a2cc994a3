"""Make ``import mxnet`` work on every supported Python; the one home of private MXNet APIs.

mxnet 1.9.1 still refers to the NumPy aliases ``np.bool``, ``np.int``, ... that
NumPy 1.24 removed. On Python <= 3.11 the package pins NumPy 1.23.5, which still
has them; Python 3.12 has no wheel that old, so this module puts the aliases
back (they were plain builtins) before mxnet is imported. Every module of the
package imports mxnet only after the package ``__init__`` imported this one.

The rest are small functions around the private MXNet and Gluon 1.9.1 APIs the
package needs (a block's children, a layer's stored arguments, a Parameter's
state, the C API that composes a Symbol): every other module calls these, so a
change of MXNet's internals touches this module only.
"""
import builtins
import contextlib
import sys

import numpy as np

_REMOVED_ALIASES = ("bool", "int", "float", "complex", "object", "str")

for _name in _REMOVED_ALIASES:
    if _name not in np.__dict__:
        setattr(np, _name, getattr(builtins, _name))

import mxnet  # noqa: E402,F401  (imported here so the order above is guaranteed)


def repo_file_url(namespace, filename):
    """The URL of ``filename`` in Gluon's dataset mirror (``namespace``: 'gluon/dataset/mnist').

    Wraps ``mxnet.gluon.utils._get_repo_file_url`` (private in MXNet 1.9.1), so
    that a change of it touches this module only.
    """
    from mxnet.gluon.utils import _get_repo_file_url
    return _get_repo_file_url(namespace, filename)


def gluoncv_model_zoo():
    """``gluoncv.model_zoo``, importable even where torch >= 2 is installed.

    gluoncv 0.10's ``__init__`` probes for its optional PyTorch half and raises
    RuntimeError ("Legacy torch==2.x detected") when it finds torch 2, which the
    test extra installs for the equality tests. Its MXNet half does not use
    torch, so torch is hidden from that one probe while gluoncv is first imported.
    """
    if "gluoncv" not in sys.modules:
        saved = sys.modules.get("torch")
        sys.modules["torch"] = None  # makes `import torch` raise ImportError: "not found"
        try:
            import gluoncv  # noqa: F401
        finally:
            if saved is None:
                del sys.modules["torch"]
            else:
                sys.modules["torch"] = saved
    import gluoncv.model_zoo
    return gluoncv.model_zoo


# --- Gluon Block and Parameter internals (MXNet 1.9.1 keeps these private) ---

def children(block):
    """``block._children``: the ordered dict name -> child Block, for reading only.

    Gluon 1.x offers no public ordered view of a block's direct children with their names.
    """
    return block._children


def replace_child(block, key, new):
    """Put Block ``new`` in ``block``'s child slot ``key`` (writes ``block._children[key]``).

    Gluon 1.x has no public way to swap a registered child; attributes holding the old
    child are the caller's to re-point.
    """
    block._children[key] = new


def own_param_names(block):
    """The names of the Parameters ``block`` registered itself (``block._reg_params``),
    not those of its children; Gluon 1.x exposes only the recursive ``collect_params``."""
    return block._reg_params


def params_with_prefix(block):
    """``block._collect_params_with_prefix()``: the dict structured name -> Parameter,
    keyed as ``save_parameters`` writes them ('features.0.weight'); Gluon 1.x's
    public ``collect_params`` keys by the prefixed name instead."""
    return block._collect_params_with_prefix()


def layer_kwargs(layer):
    """``layer._kwargs``: the operator arguments a Gluon layer (Conv, Embedding, BatchNorm)
    stored from its constructor, the only record of them in Gluon 1.x."""
    return layer._kwargs


def activation_name(layer):
    """The ``activation`` a Gluon Dense or Conv layer was built with (None if none);
    read from its ``act`` block's private ``_act_type``."""
    return layer.act._act_type if layer.act is not None else None


def dense_shape_args(layer):
    """``units``, ``flatten`` and ``in_units`` of Gluon ``nn.Dense`` ``layer`` as a dict
    (its private ``_units``, ``_flatten``, ``_in_units``: ``in_units`` may be 0, deferred)."""
    return dict(units=layer._units, flatten=layer._flatten, in_units=layer._in_units)


def conv_in_channels(layer):
    """The ``in_channels`` a Gluon convolution was built with (private ``_in_channels``;
    0 while deferred)."""
    return layer._in_channels


def param_initialized(param):
    """Whether Parameter ``param`` holds data (``param._data is not None``); ``data()``
    would raise instead of answering."""
    return param._data is not None


def param_deferred(param):
    """Whether ``param.initialize()`` was called but its shape is still unknown
    (``param._deferred_init`` is set); Gluon 1.x has no public flag for it."""
    return bool(param._deferred_init)


def hybridize_flags(block):
    """The ``hybridize()`` keyword arguments of ``block`` if it is hybridized, else None
    (reads ``block._active`` and ``block._flags``, private in Gluon 1.x)."""
    return dict(block._flags) if block._active else None


def clear_cached_graph(block):
    """Drop the graph HybridBlock ``block`` cached from its children
    (``block._clear_cached_op()``), so the next call traces the current ones."""
    block._clear_cached_op()


# --- Symbol internals (used by the in-graph write of SN's ``u``) ---

def compose_operator(op_name, inputs, attrs, name):
    """The Symbol of operator ``op_name`` applied to positional Symbol ``inputs``.

    ``attrs``: the operator's arguments (dict); ``name``: the node's name hint,
    completed by the current ``mx.name`` scope as a generated wrapper would. Goes
    through the C API (``NNGetOpHandle``, ``MXSymbolCreateAtomicSymbol``) and
    ``Symbol._compose`` because the generated wrappers pass inputs by keyword, which
    NNVM cannot match for operators without ``FListInputNames`` ("Not enough argument").
    """
    import ctypes
    from mxnet.base import (_LIB, OpHandle, SymbolHandle, c_str, c_str_array, check_call,
                            mx_uint)
    handle = OpHandle()
    check_call(_LIB.NNGetOpHandle(c_str(op_name), ctypes.byref(handle)))
    keys = list(attrs)
    sym_handle = SymbolHandle()
    check_call(_LIB.MXSymbolCreateAtomicSymbol(
        handle, mx_uint(len(keys)), c_str_array(keys),
        c_str_array([str(attrs[k]) for k in keys]), ctypes.byref(sym_handle)))
    sym = mxnet.sym.Symbol(sym_handle)
    manager = mxnet.name.NameManager._current
    if not hasattr(manager, "value"):
        manager.value = mxnet.name.NameManager()
    sym._compose(*inputs, name=manager.value.get(None, name))
    return sym


def identity_like(F, lhs, rhs):
    """``lhs`` unchanged, its shape and type tied to ``rhs``'s in both directions for
    shape inference (``F._internal._identity_with_attr_like_rhs``: no public twin)."""
    return F._internal._identity_with_attr_like_rhs(lhs, rhs)


@contextlib.contextmanager
def outside_name_scopes():
    """Build Gluon blocks as if at top level, inside any caller's ``name_scope``.

    Inside a scope Gluon prepends the scope's prefix to a prefix passed in, so a
    block rebuilt with an existing block's prefix would get another name. Clears
    ``gluon.block._BlockScope._current`` (private) for the duration.
    """
    from mxnet.gluon.block import _BlockScope
    current = getattr(_BlockScope._current, "value", None)
    _BlockScope._current.value = None
    try:
        yield
    finally:
        _BlockScope._current.value = current
