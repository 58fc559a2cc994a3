"""Warm-up of the SN layers' ``u``: power iterations run before training, weights untouched.

``u`` starts random, so without a warm-up the first training steps divide by a
poor estimate of sigma; PyTorch runs 15 power iterations when it attaches
spectral normalization for the same reason. :func:`warm_up` runs them on every
SN layer of a network from its weight alone (no forward of the network), with
the same :func:`~sngan_gluon.nn.spectral_norm.power_iteration` the layers use,
and by default until sigma has converged rather than a fixed 15 times.

A block of iterations runs as one cached graph of those operators
(:func:`_iteration_op`): the same arithmetic, bit for bit, as calling them one by
one, at a tenth of the cost for a small layer, where the time goes to
dispatching operators rather than to the products.
"""
import functools

from mxnet import autograd, nd, sym

from .._compat import param_deferred, param_initialized
from .spectral_norm import power_iteration, weight_matrix
from .walk import sn_layers

__all__ = ["warm_up", "advance_u", "iterate_to", "weight_ready"]


def weight_ready(layer):
    """Whether ``layer``'s weight holds data (initialized, shape known)."""
    return param_initialized(layer.weight)


#: Power iterations at most per layer when iterating to a tolerance.
MAX_ITERATIONS = 1500


@functools.lru_cache(maxsize=None)
def _iteration_op(rows, iterations, epsilon):
    """``(w_mat (rows, n), u (1, rows)) -> (sigma, u_new)``: :func:`power_iteration`
    over ``iterations`` as one ``CachedOp``, built once per (rows, iterations, epsilon)."""
    outputs = power_iteration(sym, sym.var("w_mat"), sym.var("u"), rows, iterations, epsilon)
    return nd.CachedOp(sym.Group(list(outputs)), flags=[("static_alloc", True)])


def iterate_to(w_mat, u, iterations, tol=None, epsilon=1e-12, max_iterations=MAX_ITERATIONS):
    """Power iterations on ``w_mat`` (m, n) from ``u`` (1, m), without gradients.

    ``tol=None``: exactly ``iterations``. Otherwise blocks of ``iterations`` are run
    until sigma rises by less than ``tol`` (relative) across a block, or until
    ``max_iterations``. A fixed count is not enough for a random weight, whose
    top singular values lie close together: 15 iterations (PyTorch's choice)
    leave sigma up to a few percent low on a (128, 1152) Xavier matrix, while
    ``tol=1e-4`` stops within 0.1% after 30 to 300 iterations.

    Returns
    -------
    sigma : NDArray (1, 1); u : NDArray (1, m), the advanced estimate.
    """
    done, previous = 0, None
    block = _iteration_op(w_mat.shape[0], iterations, epsilon)
    with autograd.pause():
        while True:
            sigma, u = block(w_mat, u)
            done += iterations
            if tol is None or done >= max_iterations:
                return sigma, u
            value = float(sigma.asscalar())
            if previous is not None and abs(value - previous) <= tol * value:
                return sigma, u
            previous = value


def advance_u(layer, iterations=15, tol=1e-4):
    """Advance SN ``layer``'s ``u`` by power iterations of its current weight.

    ``iterations``, ``tol``: as for :func:`iterate_to`. The weight and every
    other Parameter are left as they are; ``u`` is written on all its contexts
    (computed once, on the first). Returns sigma, an NDArray (1, 1).
    """
    ctx = layer.weight.list_ctx()[0]
    w_mat = weight_matrix(nd, layer.weight.data(ctx), layer._sn_out_axis)
    sigma, u_new = iterate_to(w_mat, layer.u.data(ctx), iterations, tol, layer._epsilon)
    layer.u.set_data(u_new)
    return sigma


def warm_up(net, iterations=15, tol=1e-4, inputs=None):
    """Advance the ``u`` of every SN layer of ``net`` by power iterations of its weight.

    Parameters
    ----------
    net : gluon.Block
        An initialized network (or one SN layer). Its weights are not changed and
        the network is not run, unless ``inputs`` are needed (below).
    iterations : int
        Power iterations per layer, or with ``tol`` the block size between checks.
    tol : float or None
        Iterate each layer until its sigma rises by less than ``tol`` (relative)
        across a block of ``iterations``: sigma then lies within 1% of the
        largest singular value (see :func:`iterate_to`). None: exactly
        ``iterations`` (PyTorch's fixed 15).
    inputs : NDArray or tuple of NDArrays, optional
        Example inputs of ``net``. Only used when some weight shapes are still
        deferred (``in_channels=0`` and no forward yet): one inference forward
        (outside ``autograd.record``, so no ``u`` moves) completes them.

    Returns
    -------
    net

    Raises
    ------
    RuntimeError
        When a weight is not initialized, or its shape is still deferred and no
        ``inputs`` were given (the message says which layer and what to do).
    """
    if isinstance(iterations, bool) or not isinstance(iterations, int) or iterations < 1:
        raise ValueError("warm_up: iterations must be an integer >= 1, got %r" % (iterations,))
    if tol is not None and not tol > 0:
        raise ValueError("warm_up: tol must be > 0 or None, got %r" % (tol,))
    layers = sn_layers(net)
    for layer in layers:
        for param in (layer.weight, layer.u):
            if not (param_initialized(param) or param_deferred(param)):
                raise RuntimeError("warm_up: %s is not initialized; call net.initialize() "
                                   "first" % param.name)
    pending = [layer.name for layer in layers if not weight_ready(layer)]
    if pending and inputs is not None:
        with autograd.pause(train_mode=False):
            net(*inputs) if isinstance(inputs, (tuple, list)) else net(inputs)
        pending = [layer.name for layer in layers if not weight_ready(layer)]
    if pending:
        raise RuntimeError("warm_up: the weight shapes of %s are still deferred: run one forward "
                           "pass first, or pass example inputs (warm_up(net, inputs=x))"
                           % ", ".join(pending))
    # Under hybridize(static_alloc=True) a graph's write of u is not ordered before a
    # write from outside it: let earlier forwards finish first.
    nd.waitall()
    for layer in layers:
        advance_u(layer, iterations, tol)
    return net
