"""The spectral normalization of a weight, written once for every SN layer.

Miyato et al., "Spectral Normalization for Generative Adversarial Networks",
ICLR 2018: a layer's weight ``W`` is replaced by ``W / sigma(W)`` (eq. 8), with
``sigma(W)``, the largest singular value, estimated by power iteration
(section 2.1, Algorithm 1) and a vector ``u`` that is carried from one training
step to the next, so one iteration per step suffices.

The weight reshape rule
-----------------------
``W`` is viewed as a matrix whose rows are the layer's *output* axis:

* ``Dense`` ``(units, in_units)``, ``Conv*D`` ``(channels, in_channels/groups, *kernel)``
  and ``Embedding`` ``(input_dim, output_dim)``: axis 0, so ``W_mat = W.reshape(W.shape[0], -1)``.
* ``Conv*DTranspose`` ``(in_channels, channels/groups, *kernel)``: MXNet stores the
  *input* channels first, so the output axis is axis 1 and
  ``W_mat = W.swapaxes(0, 1).reshape(W.shape[1], -1)`` (as PyTorch's ``spectral_norm``
  does with ``dim=1`` for its transposed convolutions).

``u`` has shape ``(1, rows)``. For a 2-D weight the choice of rows does not
change sigma (a matrix and its transpose share singular values); for
``Embedding`` the rows are the table's entries (``input_dim``), as in the
authors' ``SNEmbedID`` and PyTorch.

How ``u`` is written inside a hybridized graph
----------------------------------------------
``u`` is a ``grad_req='null'`` Parameter, so it is saved with the weights and no
optimizer touches it. Writing it from inside a graph needs an operator that
mutates an input; MXNet's built-in ``sgd_mom_update`` mutates its ``mom``
input, and with ``momentum=0, lr=1, wd=0`` it sets ``mom = -grad`` exactly. The
value handed to it is ``where(is_train, u_new, u_old)``, so outside training it
writes back the same bits. ``is_train`` comes from ``Dropout`` on a single one
(``Dropout`` is the identity outside training and yields 0 or 2, never 1,
inside it), which costs one random draw per call and no host round trip. The
whole update is native graph code: no Python callback, the same operators
hybridized or not, and no custom operator to register before ``SymbolBlock``
can import an exported network.

Ordering
~~~~~~~~
MXNet 1.9.1 runs a ``static_alloc`` graph's nodes as engine operations whose
dependencies are their inputs (read) and outputs and resources (written); an input
an operator mutates is declared as *read* only. So the engine does not order the
write of ``u`` before a later read of ``u``: when a hybridized discriminator is
called twice in one step (``D(real)``, then ``D(fake)``), the second call could
read ``u`` before the first call's write had run. It did, at random, and the
hybridized network then drifted away from the imperative one (and from PyTorch)
within a few steps. The layer therefore fences every write: a second ``Dropout``
on the written value follows the write, and every read of ``u`` waits for the
``Dropout`` that gives ``is_train``. Both hold the device's parallel-random
resource, which the engine hands to operators in the order they were pushed, so a
call's reads follow every earlier call's write. This relies on MXNet's default of
one parallel-random resource per CPU (``MXNET_CPU_PARALLEL_RAND_COPY=1``); on
GPUs the trainer hybridizes D without ``static_alloc``, where the engine orders the
write itself (:func:`sngan_gluon.devices.sn_hybridize_kwargs`).
``tests/test_layers.py`` (``test_two_calls_per_step_advance_u_in_call_order_under_
static_alloc``) pins it.

Reads of ``u`` from *outside* the graph (``u.data().asnumpy()``, a kvstore
broadcast, ``save_parameters``) are not fenced: wait for the layer's output (or
``nd.waitall()``) before reading or saving ``u``; the trainer does so.

Where the time goes
-------------------
On CPU the normalization is a few passes over ``W``, and profiling showed MXNet's
generic kernels for them, not memory traffic, to be the cost; so each pass uses
the fastest kernel MXNet has for it (``benchmarks/sn_overhead.py``):
the two matrix-vector products run as oneDNN kernels (a 1x1 ``Convolution`` and a
``FullyConnected``) instead of ``dot``'s gemm; the division by ``sigma`` is a
``FullyConnected`` over the weight's last axis with the weight ``I / sigma``,
whose backward gives ``<G, W>`` from one BLAS product; and ``SNDense`` and
``SNEmbedding`` divide their (N, units) output instead of their weight.

Gradients flow through ``W`` only: ``u`` and ``v`` are computed from
``BlockGrad(W)`` and ``sigma = u^T W v`` is differentiated with ``u, v`` held
constant, as in the paper's Algorithm 1 and PyTorch.
"""
import mxnet as mx
from mxnet import nd

from .._compat import compose_operator, identity_like, layer_kwargs

__all__ = ["weight_matrix", "power_iteration", "scale_last_axis", "SpectralNormMixin"]


def _assign(F, target, value):
    """Write ``value`` into the Parameter array ``target`` in-graph; returns ``value``.

    ``sgd_mom_update(weight=0, grad=-value, mom=target, lr=1, momentum=0)`` sets
    ``mom = 0 * mom - 1 * (-value) = value`` bit for bit and outputs ``0 + value``.
    """
    attrs = dict(lr=1.0, momentum=0.0, wd=0.0, rescale_grad=1.0)
    inputs = [F.zeros_like(value), F.negative(value), target]
    if F is nd:
        return nd.sgd_mom_update(*inputs, **attrs)
    # Composed positionally: the generated ``sym.sgd_mom_update`` passes inputs by keyword,
    # which NNVM cannot match for this operator ("Not enough argument").
    return compose_operator("sgd_mom_update", inputs, attrs, "sn_write_u")


def _is_train(F, like):
    """A (1, 1) array: 1.0 inside ``autograd`` training mode, 0.0 outside it."""
    one = F.ones_like(F.slice_axis(like, axis=1, begin=0, end=1))
    return F.Dropout(one, p=0.5) != one


def _fence(F, after):
    """A (1, 1) zero computed after ``after`` by an operator that holds the device's
    parallel-random resource (a ``Dropout``), so the engine orders it against every
    other such operator in the order they were pushed."""
    return F.Dropout(F.zeros_like(F.slice_axis(after, axis=1, begin=0, end=1)), p=0.5)


def _l2_normalize(F, x, epsilon):
    """``x / max(||x||, epsilon)`` for a row vector ``x`` of shape (1, n); also returns the norm."""
    norm = F.sqrt(F.sum(F.square(x), axis=1, keepdims=True))
    return F.broadcast_div(x, F.maximum(norm, epsilon)), norm


def weight_matrix(F, weight, out_axis):
    """``weight`` (out, ...) or, for ``out_axis=1``, (in, out, ...) -> matrix (out, -1)."""
    if out_axis == 1:
        weight = F.swapaxes(weight, 0, 1)
    # flatten, not reshape: its shape stays unknown until the whole weight shape is,
    # so deferred shape inference never hands `dot` a half-known matrix.
    return F.flatten(weight)


def _times_matrix(F, u, w_mat):
    """``u W`` as a row: u (1, m), w_mat (m, n) -> (1, n). No gradient is taken through it.

    A 1x1 convolution of W seen as one (1, m, n, 1) image of m channels: on CPU,
    oneDNN runs this matrix-vector product about 8x faster than ``dot``'s gemm.
    """
    image = F.expand_dims(F.expand_dims(w_mat, axis=0), axis=3)
    out = F.Convolution(image, F.reshape(u, shape=(1, -1, 1, 1)), kernel=(1, 1), num_filter=1,
                        no_bias=True)
    return F.reshape(out, shape=(1, -1))


def _matrix_times(F, w_mat, v, rows):
    """``W v`` as a row: w_mat (rows, n), v (1, n) -> (1, rows); differentiable in W.

    A FullyConnected with W as its weight: oneDNN's product and its rank-one weight
    gradient ``g v^T`` cost a fraction of ``dot``'s.
    """
    return F.FullyConnected(v, w_mat, num_hidden=rows, no_bias=True)


def power_iteration(F, w_mat, u, out_dim, power_iterations, epsilon):
    """Estimate the largest singular value of ``w_mat`` (paper, Algorithm 1).

    Parameters
    ----------
    w_mat : (m, n) the weight as a matrix; gradients flow to it through ``sigma``.
    u : (1, m) the carried left singular vector estimate.
    out_dim : m, the number of rows.

    Returns
    -------
    sigma : (1, 1) ``u_new^T W v``, differentiable in ``W`` with ``u_new, v`` constant.
    u_new : (1, m) the advanced estimate (no gradient).

    A vanishing ``W v`` (a zero weight) keeps the old ``u`` instead of collapsing
    it to zero, so the estimate recovers when the weight becomes non-zero.
    """
    w_const = F.BlockGrad(w_mat)
    u_new = u
    for step in range(power_iterations):
        v, _ = _l2_normalize(F, _times_matrix(F, u_new, w_const), epsilon)
        v = F.BlockGrad(v)
        # The last product uses the differentiable W: it is both the next u and
        # the W v of sigma, so the iteration costs no extra matrix-vector product.
        last = step == power_iterations - 1
        wv = _matrix_times(F, w_mat if last else w_const, v, out_dim)
        candidate, norm = _l2_normalize(F, F.BlockGrad(wv), epsilon)
        keep = F.broadcast_like(norm > epsilon, candidate)
        u_new = F.BlockGrad(F.where(keep, candidate, u_new))
    sigma = F.sum(u_new * wv, axis=1, keepdims=True)
    return F.maximum(sigma, epsilon), u_new


def scale_last_axis(F, x, factor, last_dim=None):
    """``x * factor`` for a (1, 1) ``factor``, as a FullyConnected over ``x``'s last axis.

    ``x``: (..., last_dim), ``last_dim`` small (a kernel width); ``None`` falls back to
    ``broadcast_mul``, for tensors small enough not to matter. The product is
    ``x . (factor I)``: its backward gives ``d/d x = G factor`` and ``d/d factor =
    trace(G^T x) = <G, x>`` from two BLAS products. MXNet's own choices cost
    several times more on CPU: ``broadcast_mul``'s backward reduces to a scalar with
    a slow generic kernel, and a one-unit FullyConnected over a flattened copy
    pays for the copy and for oneDNN's poor handling of a width-1 product.
    """
    if last_dim is None:
        return F.broadcast_mul(x, F.reshape(factor, shape=(1,)))
    diagonal = F.broadcast_to(F.reshape(factor, shape=(1,)), shape=(last_dim,))
    return F.FullyConnected(x, F.diag(diagonal), num_hidden=last_dim, no_bias=True,
                            flatten=False)


class SpectralNormMixin:
    """Adds spectral normalization to a Gluon layer that has a ``weight`` Parameter.

    A subclass lists this mixin before the Gluon layer (``class SNConv2D(
    SpectralNormMixin, nn.Conv2D)``), calls :meth:`_init_spectral_norm` at the end
    of its constructor and inherits :meth:`hybrid_forward`, which hands the
    normalized weight to the Gluon layer's own ``hybrid_forward``.
    """

    #: Axis of the stored weight that indexes the layer's outputs (see module docstring).
    _sn_out_axis = 0

    def _init_spectral_norm(self, out_dim, power_iterations, epsilon):
        if isinstance(power_iterations, bool) or not isinstance(power_iterations, int) \
                or power_iterations < 1:
            raise ValueError("%s: power_iterations must be an integer >= 1, got %r"
                             % (type(self).__name__, power_iterations))
        if not epsilon > 0:
            raise ValueError("%s: epsilon must be > 0, got %r" % (type(self).__name__, epsilon))
        self._power_iterations = power_iterations
        self._sn_out_dim = out_dim
        self._epsilon = float(epsilon)
        with self.name_scope():
            self.u = self.params.get("u", shape=(1, out_dim), init=mx.init.Normal(1.0),
                                     grad_req="null", differentiable=False)

    @property
    def power_iterations(self):
        return self._power_iterations

    def _sigma(self, F, weight, u, write):
        """``sigma(W)`` (1, 1), differentiable in ``W``; with ``write``, ``u`` is advanced in
        training mode by an in-graph write the result depends on."""
        w_mat = weight_matrix(F, weight, self._sn_out_axis)
        if not write:
            return power_iteration(F, w_mat, u, self._sn_out_dim, self._power_iterations,
                                   self._epsilon)[0]
        is_train = _is_train(F, u)
        # Every read of u waits for is_train's Dropout, which the engine runs after
        # the fence of every earlier write (see "Ordering" in the module docstring).
        u_read = F.broadcast_add(u, F.zeros_like(is_train))
        sigma, u_new = power_iteration(F, w_mat, u_read, self._sn_out_dim,
                                       self._power_iterations, self._epsilon)
        written = _assign(F, u, F.where(F.broadcast_like(is_train, u), u_new, u_read))
        # The fence is a zero computed from the write; adding it keeps both in the
        # graph (a node no output depends on is pruned).
        return F.broadcast_add(sigma, F.BlockGrad(_fence(F, written)))

    def _inv_sigma(self, F, weight, u, write):
        """``1 / sigma(W)`` (1, 1), the factor every SN layer multiplies by."""
        return F.reciprocal(self._sigma(F, weight, u, write))

    def _spectral_weight(self, F, weight, u, write):
        """``W / sigma(W)``, the normalized weight, shaped as ``weight``."""
        scaled = scale_last_axis(F, weight, self._inv_sigma(F, weight, u, write),
                                 self._weight_last_dim())
        # Ties the result's shape to the weight's in both directions, so deferred
        # initialization can infer the weight from the layer's data.
        return identity_like(F, scaled, weight)

    def _weight_last_dim(self):
        """The size of the weight's last axis, known before deferred initialization."""
        return layer_kwargs(self)["kernel"][-1]

    def hybrid_forward(self, F, x, weight, u, **kwargs):
        return super().hybrid_forward(F, x, self._spectral_weight(F, weight, u, True), **kwargs)

    def sigma(self, ctx=None):
        """The sigma the next forward divides by, computed without advancing ``u``.

        Returns a Python float (reads the value back to the host: not for hot loops).
        """
        weight, u = self.weight.data(ctx), self.u.data(ctx)
        return float(self._sigma(nd, weight, u, False).asscalar())

    def normalized_weight(self, ctx=None):
        """``W / sigma`` as the next forward uses it, without advancing ``u``: NDArray."""
        weight, u = self.weight.data(ctx), self.u.data(ctx)
        return self._spectral_weight(nd, weight, u, False)
