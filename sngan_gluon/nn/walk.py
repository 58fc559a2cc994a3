"""The one walk over a Gluon block tree, and what the package reads and rewrites with it.

Every traversal of a network is one walk, read through :func:`named_blocks`
or rewriting through :func:`replace_blocks`: pre-order, children in definition
order, each block once under the first path that reaches it, so a block held in
two places (a shared layer, a link back to a parent) is seen once. Paths are the
keys ``save_parameters`` uses (``features.0``, ``head.linear``), so they match
across runs and processes.

Built on it: :func:`weight_layers` (every layer with a weight SN applies to),
:func:`sn_layers`, and :func:`layer_matrix`, a layer's weight as the
(outputs, -1) matrix SN normalizes.
"""
from collections import OrderedDict

from mxnet import nd
from mxnet.gluon import Block, HybridBlock, nn

from .._compat import children, clear_cached_graph, replace_child
from .spectral_norm import SpectralNormMixin, weight_matrix

__all__ = ["PLAIN_KINDS", "TRANSPOSED_KINDS", "named_blocks", "replace_blocks", "weight_layers",
           "sn_layers", "out_axis", "layer_matrix"]

#: Plain Gluon layers whose weight's output axis is 0.
PLAIN_KINDS = (nn.Conv1D, nn.Conv2D, nn.Conv3D, nn.Dense, nn.Embedding)
#: Gluon stores a transposed convolution's weight (in, out, ...): its output axis is 1.
TRANSPOSED_KINDS = (nn.Conv1DTranspose, nn.Conv2DTranspose, nn.Conv3DTranspose)


def _walk(block, path, visit, expanded):
    """Call ``visit(parent, key, path, child)`` for every child slot under ``block``, pre-order,
    in definition order; descend into ``child`` when it returns True. A block is descended
    into once (``expanded`` holds the ids), so shared blocks and links back up end the walk."""
    if id(block) in expanded:
        return
    expanded.add(id(block))
    for key, child in list(children(block).items()):
        name = path + key
        if visit(block, key, name, child):
            _walk(child, name + ".", visit, expanded)


def named_blocks(block, prefix=""):
    """``[(path, block)]`` for ``block`` (path ``prefix``) and every block under it.

    Pre-order, children in definition order, each block once under the first
    path that reaches it. A child's path is ``prefix`` + its key under the root,
    then its parent's path + ``.`` + its key.
    """
    out, met = [(prefix, block)], {id(block)}

    def visit(parent, key, path, child):
        if id(child) not in met:
            met.add(id(child))
            out.append((path, child))
        return True

    _walk(block, prefix, visit, set())
    return out


def weight_layers(net, path=""):
    """OrderedDict path -> layer of every SN layer and plain convolution, transposed
    convolution, dense and embedding layer under ``net`` (``net`` itself excluded),
    each once, in definition order."""
    kinds = (SpectralNormMixin,) + PLAIN_KINDS + TRANSPOSED_KINDS
    return OrderedDict((name, block) for name, block in named_blocks(net, path)
                       if block is not net and isinstance(block, kinds))


def sn_layers(net):
    """Every SN layer of ``net`` (``net`` itself included), each once, in definition order."""
    return [block for _, block in named_blocks(net) if isinstance(block, SpectralNormMixin)]


def out_axis(layer):
    """The axis of ``layer``'s weight that indexes its outputs (the SN matrix's rows)."""
    if isinstance(layer, SpectralNormMixin):
        return layer._sn_out_axis
    return 1 if isinstance(layer, TRANSPOSED_KINDS) else 0


def layer_matrix(layer, ctx=None):
    """The layer's raw weight as the (outputs, -1) matrix SN normalizes: NDArray.

    A copy: a plain convolution run in inference keeps its weight in a oneDNN
    blocked layout that reshapes misread; the copy is in the plain layout.
    """
    ctx = ctx or layer.weight.list_ctx()[0]
    return weight_matrix(nd, layer.weight.data(ctx).copy(), out_axis(layer))


def replace_blocks(root, convert_one):
    """Rewrite the blocks under ``root`` in place; returns {id(old): (old, new)} of what changed.

    ``convert_one(path, child)`` returns a replacement, put in the parent's child
    slot; or ``child``, whose own children are visited next; or None, leaving
    ``child`` and everything under it alone. A child held in several places is
    converted once. Afterwards every attribute that still holds a replaced child
    (a block may call ``self.conv1`` besides holding it in a Sequential, or keep a
    list of taps) is re-pointed, and the cached graphs of hybridized blocks,
    built from the old children, are dropped.
    """
    memo = {}

    def visit(parent, key, path, child):
        if id(child) not in memo:
            memo[id(child)] = (child, convert_one(path, child))  # keeps `child` alive
        new = memo[id(child)][1]
        if new is not None and new is not child:
            replace_child(parent, key, new)
        return new is child

    _walk(root, "", visit, set())
    replaced = {key: pair for key, pair in memo.items() if pair[1] not in (None, pair[0])}

    def new_of(value):
        pair = replaced.get(id(value))
        return pair[1] if pair is not None and pair[0] is value else value

    for _, block in named_blocks(root):
        for attr, value in list(vars(block).items()):
            if attr == "_children":
                continue
            if isinstance(value, Block) and new_of(value) is not value:
                object.__setattr__(block, attr, new_of(value))
            elif isinstance(value, list):
                value[:] = [new_of(item) for item in value]
    for _, block in named_blocks(root):
        if isinstance(block, HybridBlock):
            clear_cached_graph(block)
    return replaced
