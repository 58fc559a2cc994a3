"""Specification of the spectral-norm layers (paper section 2.1, Algorithm 1)."""
import numpy as np
import pytest

import sngan_gluon  # noqa: F401  (makes mxnet importable on every Python)
import mxnet as mx
from mxnet import autograd, gluon, nd
from mxnet.gluon import nn

from sngan_gluon.nn import (SNConv1D, SNConv2D, SNConv2DTranspose, SNConv3D, SNDense,
                            SNEmbedding)

import exported  # tests/exported.py


def _labels(shape, high):
    return nd.array(np.random.RandomState(1).randint(0, high, size=shape))


# name -> (factory, input maker, output axis of the stored weight)
LAYERS = {
    "conv1d": (lambda **k: SNConv1D(4, 3, padding=1, **k),
               lambda: nd.random.normal(shape=(2, 3, 8)), 0),
    "conv2d": (lambda **k: SNConv2D(5, 3, strides=2, padding=1, **k),
               lambda: nd.random.normal(shape=(2, 3, 6, 6)), 0),
    "conv3d": (lambda **k: SNConv3D(4, (2, 3, 3), **k),
               lambda: nd.random.normal(shape=(2, 2, 3, 5, 5)), 0),
    "conv2d_transpose": (lambda **k: SNConv2DTranspose(4, 4, strides=2, padding=1, **k),
                         lambda: nd.random.normal(shape=(2, 6, 5, 5)), 1),
    "dense": (lambda **k: SNDense(6, **k), lambda: nd.random.normal(shape=(2, 7)), 0),
    "embedding": (lambda **k: SNEmbedding(10, 6, **k), lambda: _labels((2, 3), 10), 0),
}


def _build(name, seed=0, hybridize=False, **kwargs):
    mx.random.seed(seed)
    make, make_input, _ = LAYERS[name]
    layer = make(**kwargs)
    layer.initialize()
    x = make_input()
    layer(x)  # completes deferred initialization without touching u
    if hybridize == "static":
        layer.hybridize(static_alloc=True, static_shape=True)
    elif hybridize:
        layer.hybridize()
    return layer, x


def _matrix(weight, out_axis):
    w = weight.asnumpy()
    if out_axis == 1:
        w = w.swapaxes(0, 1)
    return w.reshape(w.shape[0], -1)


def _train_forward(layer, x, steps=1):
    for _ in range(steps):
        with autograd.record():
            y = layer(x)
    return y


def _numpy_power_step(w_mat, u):
    v = u @ w_mat
    v /= np.linalg.norm(v)
    u = v @ w_mat.T
    return u / np.linalg.norm(u)


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_sigma_matches_svd_after_power_iterations(name):
    layer, x = _build(name)
    _train_forward(layer, x, steps=100)
    w_mat = _matrix(layer.weight.data(), LAYERS[name][2])
    sv = np.linalg.svd(w_mat, compute_uv=False)
    assert abs(layer.sigma() - sv[0]) / sv[0] < 1e-4
    normalized = _matrix(layer.normalized_weight(), LAYERS[name][2])
    assert abs(np.linalg.svd(normalized, compute_uv=False)[0] - 1.0) < 1e-3


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_output_equals_plain_layer_with_normalized_weight(name):
    layer, x = _build(name)
    _train_forward(layer, x, steps=5)
    y = layer(x)  # inference: u stays, the weight is divided by the same sigma
    ref = {
        "conv1d": lambda: nn.Conv1D(4, 3, padding=1),
        "conv2d": lambda: nn.Conv2D(5, 3, strides=2, padding=1),
        "conv3d": lambda: nn.Conv3D(4, (2, 3, 3)),
        "conv2d_transpose": lambda: nn.Conv2DTranspose(4, 4, strides=2, padding=1),
        "dense": lambda: nn.Dense(6),
        "embedding": lambda: nn.Embedding(10, 6),
    }[name]()
    ref.initialize()
    ref(x)
    ref.weight.set_data(layer.normalized_weight())
    if hasattr(layer, "bias") and layer.bias is not None:
        ref.bias.set_data(layer.bias.data() + 0.5)
        layer.bias.set_data(layer.bias.data() + 0.5)
        y = layer(x)
    np.testing.assert_allclose(y.asnumpy(), ref(x).asnumpy(), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("hybridize", [False, True])
def test_dense_scales_its_output_like_a_normalized_weight(hybridize):
    """SNDense divides x W^T, not W, by sigma: same numbers with bias, activation,
    ``flatten=False`` on a 3-D input and deferred ``in_units``."""
    mx.random.seed(0)
    layer = SNDense(5, activation="tanh", flatten=False, bias_initializer="ones")
    layer.initialize()
    x = nd.random.normal(shape=(2, 3, 7))
    if hybridize:
        layer.hybridize()
    _train_forward(layer, x, steps=3)
    y = layer(x)
    assert y.shape == (2, 3, 5) and layer.weight.shape == (5, 7)
    w = layer.normalized_weight().asnumpy()
    ref = np.tanh(x.asnumpy() @ w.T + 1.0)
    np.testing.assert_allclose(y.asnumpy(), ref, rtol=1e-5, atol=1e-6)


def test_transpose_conv_normalizes_along_its_output_axis():
    layer, x = _build("conv2d_transpose")
    # MXNet stores (C_in=6, C_out=4, kh, kw): u follows the output axis, axis 1.
    assert layer.weight.shape == (6, 4, 4, 4)
    assert layer.u.shape == (1, 4)
    _train_forward(layer, x, steps=100)
    w = layer.weight.data().asnumpy()
    along_out = np.linalg.svd(w.swapaxes(0, 1).reshape(4, -1), compute_uv=False)[0]
    along_in = np.linalg.svd(w.reshape(6, -1), compute_uv=False)[0]
    assert abs(along_out - along_in) / along_out > 1e-3  # the two readings differ here
    assert abs(layer.sigma() - along_out) / along_out < 1e-4


@pytest.mark.parametrize("name,rows", [("conv1d", 4), ("conv2d", 5), ("conv3d", 4),
                                       ("conv2d_transpose", 4), ("dense", 6),
                                       ("embedding", 10)])
def test_u_is_a_null_grad_parameter_of_shape_1_by_out(name, rows):
    layer, _ = _build(name)
    assert layer.u.shape == (1, rows)
    assert layer.u.grad_req == "null"
    layer.collect_params().setattr("grad_req", "write")  # a common freezing idiom
    assert layer.u.grad_req == "null"


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_optimizer_never_updates_u(name):
    layer, x = _build(name)
    trainer = gluon.Trainer(layer.collect_params(), "sgd", {"learning_rate": 1e6})
    with autograd.record():
        loss = layer(x).sum()
    loss.backward()
    u_after_forward = layer.u.data().asnumpy().copy()
    w_before = layer.weight.data().asnumpy().copy()
    trainer.step(1)
    np.testing.assert_array_equal(layer.u.data().asnumpy(), u_after_forward)
    assert not np.allclose(layer.weight.data().asnumpy(), w_before)  # the step did happen


@pytest.mark.parametrize("hybridize", [False, True])
@pytest.mark.parametrize("name", ["conv2d", "dense", "conv2d_transpose"])
def test_u_unchanged_in_inference(name, hybridize):
    layer, x = _build(name, hybridize=hybridize)
    u0 = layer.u.data().asnumpy().copy()
    y1 = layer(x)
    with autograd.record(train_mode=False):
        y2 = layer(x)
    with autograd.predict_mode():
        y3 = layer(x)
    np.testing.assert_array_equal(layer.u.data().asnumpy(), u0)
    np.testing.assert_array_equal(y1.asnumpy(), y2.asnumpy())  # deterministic evaluation
    np.testing.assert_array_equal(y1.asnumpy(), y3.asnumpy())


@pytest.mark.parametrize("hybridize", [False, True, "static"])
@pytest.mark.parametrize("power_iterations", [1, 3])
@pytest.mark.parametrize("name", ["conv2d", "conv2d_transpose", "embedding"])
def test_u_advances_power_iterations_steps_per_training_forward(name, power_iterations,
                                                                 hybridize):
    layer, x = _build(name, hybridize=hybridize, power_iterations=power_iterations)
    w_mat = _matrix(layer.weight.data(), LAYERS[name][2])
    expected = layer.u.data().asnumpy().astype(np.float64)
    for _ in range(2):  # two forwards -> 2 * power_iterations steps
        # With static_alloc MXNet does not order an outside read of u after the
        # in-graph write; the output depends on the write, so waiting for it suffices.
        _train_forward(layer, x).wait_to_read()
        for _ in range(power_iterations):
            expected = _numpy_power_step(w_mat, expected)
    np.testing.assert_allclose(layer.u.data().asnumpy(), expected, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_gradient_matches_finite_differences(name):
    """At the converged u the paper's gradient (u, v constant) is the exact one."""
    layer, x = _build(name)
    layer.cast("float64")
    if name != "embedding":
        x = x.astype("float64")
    _train_forward(layer, x, steps=300)
    r = nd.array(np.random.RandomState(2).normal(size=layer(x).shape), dtype="float64")

    def loss():
        return float((layer(x) * r).sum().asscalar())

    layer.weight.grad()[:] = 0
    with autograd.record(train_mode=False):
        out = (layer(x) * r).sum()
    out.backward()
    grad = layer.weight.grad().asnumpy().ravel()
    w = layer.weight.data()
    flat = w.asnumpy().ravel()
    rng = np.random.RandomState(3)
    h = 1e-6
    for i in rng.choice(flat.size, size=8, replace=False):
        for sign, store in ((1, "plus"), (-1, "minus")):
            shifted = flat.copy()
            shifted[i] += sign * h
            w[:] = shifted.reshape(w.shape)
            if store == "plus":
                plus = loss()
            else:
                minus = loss()
        w[:] = flat.reshape(w.shape)
        numeric = (plus - minus) / (2 * h)
        assert abs(numeric - grad[i]) <= 1e-5 + 1e-4 * abs(numeric), (i, numeric, grad[i])


def test_u_gets_no_gradient_and_weight_does():
    layer, x = _build("conv2d")
    with autograd.record():
        layer(x).sum().backward()
    assert layer.u.grad_req == "null"
    assert float(nd.abs(layer.weight.grad()).sum().asscalar()) > 0


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_hybridized_equals_imperative(name, tmp_path):
    path = str(tmp_path / "p.params")
    imperative, x = _build(name)
    imperative.save_parameters(path)
    hybrid, _ = _build(name, seed=5)
    hybrid.load_parameters(path)
    hybrid.hybridize()
    outs = []
    for layer in (imperative, hybrid):
        trainer = gluon.Trainer(layer.collect_params(), "sgd", {"learning_rate": 0.1})
        ys = []
        for _ in range(10):
            with autograd.record():
                y = layer(x)
                loss = (y * y).mean()
            loss.backward()
            trainer.step(1)
            ys.append(y.asnumpy())
        outs.append((np.stack(ys), layer.u.data().asnumpy()))
    assert np.abs(outs[0][0] - outs[1][0]).max() <= 1e-5
    assert np.abs(outs[0][1] - outs[1][1]).max() <= 1e-5


def _small_discriminator(hybridize):
    net = nn.HybridSequential()
    net.add(SNConv2D(8, 3, padding=1), nn.LeakyReLU(0.1),
            SNConv2D(8, 4, strides=2, padding=1), nn.LeakyReLU(0.1), SNDense(1))
    net.initialize(mx.init.Xavier())
    if hybridize:
        net.hybridize()
    return net


def test_hybridized_parent_equals_imperative(tmp_path):
    mx.random.seed(0)
    x = nd.random.normal(shape=(4, 3, 8, 8))
    a = _small_discriminator(False)
    a(x)
    path = str(tmp_path / "d.params")
    a.save_parameters(path)
    b = _small_discriminator(True)
    b.load_parameters(path)
    results = []
    for net in (a, b):
        trainer = gluon.Trainer(net.collect_params(), "adam", {"learning_rate": 1e-3})
        for _ in range(10):
            with autograd.record():
                y = net(x)
                loss = nd.relu(1 - y).mean()
            loss.backward()
            trainer.step(4)
        results.append((y.asnumpy(), [net[i].u.data().asnumpy() for i in (0, 2, 4)]))
    assert np.abs(results[0][0] - results[1][0]).max() <= 1e-5
    for ua, ub in zip(results[0][1], results[1][1]):
        assert np.abs(ua - ub).max() <= 1e-5


@pytest.mark.parametrize("hybridize", [False, True])
def test_save_load_round_trips_u_and_resumes_identically(tmp_path, hybridize):
    path = str(tmp_path / "mid.params")
    layer, x = _build("conv2d", hybridize=hybridize)
    _train_forward(layer, x, steps=3)
    layer.save_parameters(path)
    saved_u = layer.u.data().asnumpy().copy()
    continued = [_train_forward(layer, x).asnumpy() for _ in range(3)]
    reloaded, _ = _build("conv2d", seed=9, hybridize=hybridize)
    assert not np.allclose(reloaded.u.data().asnumpy(), saved_u)
    reloaded.load_parameters(path)
    np.testing.assert_array_equal(reloaded.u.data().asnumpy(), saved_u)
    resumed = [_train_forward(reloaded, x).asnumpy() for _ in range(3)]
    np.testing.assert_array_equal(np.stack(resumed), np.stack(continued))
    np.testing.assert_array_equal(reloaded.u.data().asnumpy(), layer.u.data().asnumpy())


@pytest.mark.parametrize("hybridize", [False, True])
@pytest.mark.parametrize("name", ["conv2d", "dense", "conv2d_transpose", "embedding"])
def test_zero_weight_gives_no_nan(name, hybridize):
    layer, x = _build(name, hybridize=hybridize)
    layer.weight.set_data(nd.zeros(layer.weight.shape))
    u0 = layer.u.data().asnumpy().copy()
    with autograd.record():
        y = layer(x)
        y.sum().backward()
    assert np.isfinite(y.asnumpy()).all()
    assert np.isfinite(layer.weight.grad().asnumpy()).all()
    # u is kept rather than collapsed to zero, so it recovers once W is non-zero
    np.testing.assert_array_equal(layer.u.data().asnumpy(), u0)
    layer.weight.set_data(nd.random.normal(shape=layer.weight.shape))
    _train_forward(layer, x, steps=100)
    w_mat = _matrix(layer.weight.data(), LAYERS[name][2])
    top = np.linalg.svd(w_mat, compute_uv=False)[0]
    assert abs(layer.sigma() - top) / top < 1e-3


@pytest.mark.parametrize("hybridize", [False, True])
@pytest.mark.parametrize("name", ["conv2d", "dense", "conv2d_transpose"])
def test_float64_works(name, hybridize):
    layer, x = _build(name)
    layer.cast("float64")
    if hybridize:
        layer.hybridize()
    x = x.astype("float64")
    y = _train_forward(layer, x, steps=300)
    assert y.dtype == np.float64 and layer.u.data().dtype == np.float64
    w_mat = _matrix(layer.weight.data(), LAYERS[name][2])
    top = np.linalg.svd(w_mat, compute_uv=False)[0]
    assert abs(layer.sigma() - top) / top < 1e-8  # beyond float32's reach


def test_replicas_on_two_contexts_keep_identical_u():
    ctxs = [mx.cpu(0), mx.cpu(1)]
    mx.random.seed(0)
    net = _small_discriminator(True)
    net.collect_params().initialize(mx.init.Xavier(), ctx=ctxs, force_reinit=True)
    trainer = gluon.Trainer(net.collect_params(), "adam", {"learning_rate": 1e-2},
                            kvstore="local")
    x = nd.random.normal(shape=(8, 3, 8, 8))
    for _ in range(5):
        parts = gluon.utils.split_and_load(x, ctxs)
        with autograd.record():
            losses = [nd.relu(1 - net(p)).mean() for p in parts]
        autograd.backward(losses)
        trainer.step(8)
    for i in (0, 2, 4):
        u0, u1 = (net[i].u.data(c).asnumpy() for c in ctxs)
        np.testing.assert_array_equal(u0, u1)
    assert not np.allclose(net[0].u.data(ctxs[0]).asnumpy(), 0)


def test_an_exported_network_runs_in_a_process_without_sngan_gluon(tmp_path):
    mx.random.seed(0)
    x = nd.random.normal(shape=(2, 3, 8, 8))
    net = _small_discriminator(True)
    _train_forward(net, x, steps=3)
    expected = net(x).asnumpy()
    exported.export(net, tmp_path, 0)
    # only built-in operators: the other process cannot import sngan_gluon
    (loaded,) = exported.run_elsewhere(tmp_path, [x.asnumpy()])
    np.testing.assert_allclose(loaded["first"], expected, rtol=1e-6, atol=1e-6)
    assert len(loaded["u_before"]) == 3  # one u per SN layer
    for before, after in zip(loaded["u_before"], loaded["u_after"]):
        np.testing.assert_array_equal(after, before)  # inference leaves u alone
    np.testing.assert_array_equal(loaded["second"], loaded["first"])


@pytest.mark.parametrize("bad", [0, -1, 1.5, True])
def test_bad_power_iterations_raise_value_error_naming_the_layer(bad):
    with pytest.raises(ValueError, match="SNConv2D.*power_iterations"):
        SNConv2D(4, 3, power_iterations=bad)
    with pytest.raises(ValueError, match="SNDense.*power_iterations"):
        SNDense(4, power_iterations=bad)


def test_bad_layout_and_rank_raise_value_error_naming_the_layer():
    with pytest.raises(ValueError, match="SNConv2D.*layout 'NCW'"):
        SNConv2D(4, 3, layout="NCW")
    with pytest.raises(ValueError, match="SNConv2DTranspose.*layout 'NHWC'"):
        SNConv2DTranspose(4, 3, layout="NHWC")
    for hybridize in (False, True):
        layer = SNConv2D(4, 3)
        layer.initialize()
        if hybridize:
            layer.hybridize()
        with pytest.raises(ValueError, match=r"SNConv2D.*4-D input.*\(2, 3, 8\)"):
            layer(nd.ones((2, 3, 8)))
    with pytest.raises(ValueError, match="epsilon"):
        SNDense(3, epsilon=0)


def _u_after_steps_with_two_calls(hybridize, steps=20):
    """``u`` of every layer of a 3-layer SN MLP after each of ``steps`` Adam steps whose
    loss calls the network twice, ``D(a) - D(b)``, as GAN code calls D on real and fake."""
    mx.random.seed(3)
    net = nn.HybridSequential()
    net.add(SNDense(64, in_units=2), nn.LeakyReLU(0.1), SNDense(64, in_units=64),
            nn.LeakyReLU(0.1), SNDense(1, in_units=64))
    net.initialize()
    if hybridize:
        net.hybridize(static_alloc=True, static_shape=True)
    trainer = gluon.Trainer(net.collect_params(), "adam", {"learning_rate": 1e-2})
    rng = np.random.RandomState(0)
    history = []
    for _ in range(steps):
        a, b = (nd.array(rng.normal(size=(64, 2))) for _ in range(2))
        with autograd.record():
            loss = net(a).mean() - net(b).mean()
        loss.backward()
        trainer.step(1)
        nd.waitall()
        history.append(np.concatenate([net[i].u.data().asnumpy().ravel() for i in (0, 2, 4)]))
    return np.array(history)


def test_two_calls_per_step_advance_u_in_call_order_under_static_alloc():
    """The second call reads the ``u`` the first call wrote, hybridized as imperatively.

    MXNet's static-alloc graphs do not tell the engine that an in-graph update writes
    its input, so without the layer's fence the second call could read ``u`` before
    the first call's write had run: a race that made runs differ from step 1 on.
    """
    expected = _u_after_steps_with_two_calls(False)
    for _ in range(3):  # a race: several runs to catch it
        np.testing.assert_allclose(_u_after_steps_with_two_calls(True), expected, atol=1e-5)
