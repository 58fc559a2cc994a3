"""Specification of spectral_norm(net), remove_spectral_norm(net) and warm_up(net)."""
import numpy as np
import pytest

import sngan_gluon  # noqa: F401  (makes mxnet importable on every Python)
import mxnet as mx
from mxnet import autograd, gluon, nd
from mxnet.gluon import HybridBlock, nn

from sngan_gluon._compat import gluoncv_model_zoo
from sngan_gluon.models import get_discriminator
from sngan_gluon.nn import (SNConv1D, SNConv2D, SNConv2DTranspose, SNConv3D, SNDense,
                            SNEmbedding, remove_spectral_norm, spectral_norm, warm_up)
from sngan_gluon.nn.convert import SN_TWINS, layer_config
from sngan_gluon.nn.warmup import sn_layers

import exported  # tests/exported.py


def _zoo(name, **kwargs):
    return lambda: gluoncv_model_zoo().get_model(name, pretrained=False, **kwargs)


# Networks converted by the tests: three model-zoo networks (mobilenetv2 has depthwise
# convolutions, groups == channels) and this package's DCGAN discriminator without SN.
NETS = {
    "cifar_resnet20_v1": _zoo("cifar_resnet20_v1"),
    "mobilenetv2_0.25": _zoo("mobilenetv2_0.25", classes=10),
    "resnet18_v1b": _zoo("resnet18_v1b", classes=10),
    "dcgan_discriminator": lambda: get_discriminator("dcgan", sn=False, ch=64),
}


def _x(seed=0):
    return nd.array(np.random.RandomState(seed).normal(size=(2, 3, 32, 32)))


def _layers(net, path=""):
    """(path, layer) of every layer with a weight, by its place in the network."""
    out = []
    for key, child in net._children.items():
        if "weight" in child._reg_params:
            out.append((path + key, child))
        out.extend(_layers(child, path + key + "."))
    return out


def _initialized(name, seed=0):
    mx.random.seed(seed)
    net = NETS[name]()
    net.initialize()
    net(_x())  # completes deferred shapes (and runs plain convolutions in inference)
    return net


def _us(net):
    return {layer.name: layer.u.data().asnumpy() for layer in sn_layers(net)}


@pytest.mark.parametrize("name", sorted(NETS))
def test_every_layer_is_converted_with_the_same_hyper_parameters(name):
    net = _initialized(name)
    before = [(path, type(layer), layer_config(layer), layer.name, layer.weight,
               layer.weight.data().asnumpy()) for path, layer in _layers(net)]
    names = set(net.collect_params().keys())
    assert spectral_norm(net, power_iterations=2) is net
    after = dict(_layers(net))
    assert len(after) == len(before)
    for path, kind, config, layer_name, weight, value in before:
        twin = after[path]
        assert type(twin) is SN_TWINS[kind], path
        assert layer_config(twin) == config, path
        assert twin.name == layer_name and twin.power_iterations == 2
        assert twin.weight is weight  # the same Parameter: trained weights are kept
        np.testing.assert_array_equal(twin.weight.data().asnumpy(), value)
    added = set(net.collect_params().keys()) - names
    assert added == {layer_name + "_u" for _, _, _, layer_name, _, _ in before}
    if name == "mobilenetv2_0.25":
        assert any(layer_config(twin)["groups"] > 1 for twin in after.values()
                   if isinstance(twin, SNConv2D))


@pytest.mark.parametrize("name", sorted(NETS))
def test_converted_network_trains_hybridized_and_u_advances_in_training_only(name):
    net = spectral_norm(_initialized(name))
    net.hybridize(static_alloc=True, static_shape=True)
    x = _x(1)
    for layer in sn_layers(net):  # unnormalized: any power iteration step changes it
        layer.u.set_data(nd.random.normal(shape=layer.u.shape))
    y0 = net(x).asnumpy()
    u0 = _us(net)
    assert all(np.array_equal(u0[k], v) for k, v in _us(net).items())  # inference: u kept
    trainer = gluon.Trainer(net.collect_params(), "sgd", {"learning_rate": 0.1})
    weights = {p.name: p.data().asnumpy() for p in net.collect_params().values()
               if p.name.endswith("weight")}
    with autograd.record():
        loss = (net(x) ** 2).mean()
    loss.backward()
    trainer.step(2)
    nd.waitall()
    assert np.isfinite(loss.asscalar())
    assert all(not np.array_equal(u0[k], v) for k, v in _us(net).items())
    changed = [k for k, v in weights.items()
               if not np.array_equal(net.collect_params()[k].data().asnumpy(), v)]
    assert changed  # the optimizer moved the weights through the SN graph
    u1 = _us(net)
    net(x).wait_to_read()
    assert all(np.array_equal(u1[k], v) for k, v in _us(net).items())
    assert y0.shape == net(x).shape


def test_a_hybridized_network_drops_its_cached_plain_graph():
    net = _initialized("cifar_resnet20_v1")
    net.hybridize(static_alloc=True)
    x = _x(5)
    plain = net(x).asnumpy()
    spectral_norm(net)
    converted = net(x).asnumpy()
    assert not np.allclose(converted, plain, rtol=1e-3)
    assert all(layer._active for layer in sn_layers(net))
    net.hybridize(active=False)
    np.testing.assert_allclose(net(x).asnumpy(), converted, rtol=1e-5, atol=1e-6)


def test_converted_networks_export_and_run_in_a_process_without_sngan_gluon(tmp_path):
    names = sorted(NETS)
    x = _x(2)
    expected = []
    for i, name in enumerate(names):
        net = spectral_norm(_initialized(name))
        net.hybridize()
        expected.append(net(x).asnumpy())
        exported.export(net, tmp_path, i)
    loaded = exported.run_elsewhere(tmp_path, [x.asnumpy()] * len(names))
    for name, want, got in zip(names, expected, loaded):
        np.testing.assert_allclose(got["first"], want, rtol=1e-5, atol=1e-6, err_msg=name)
        assert got["u_before"], name  # the SN vectors travelled with the weights


@pytest.mark.parametrize("name", sorted(NETS))
def test_parameters_saved_from_the_plain_network_load(name, tmp_path):
    plain = _initialized(name, seed=3)
    path = str(tmp_path / "plain.params")
    plain.save_parameters(path)
    net = spectral_norm(NETS[name]())  # a fresh, uninitialized network
    net.initialize()
    net.load_parameters(path, allow_missing=True)  # every parameter but u
    warm_up(net, tol=None)
    loaded = dict(net._collect_params_with_prefix())
    for key, param in plain._collect_params_with_prefix().items():
        np.testing.assert_array_equal(loaded[key].data().asnumpy(), param.data().asnumpy())
    assert {k for k in loaded if k not in plain._collect_params_with_prefix()} == \
        {k for k in loaded if k.endswith(".u")}


@pytest.mark.parametrize("name", sorted(NETS))
def test_remove_spectral_norm_gives_the_same_inference_output(name, tmp_path):
    net = spectral_norm(_initialized(name))
    net.hybridize()
    x = _x(4)
    with autograd.record():
        net(x)  # u moves away from its initial value
    expected = net(x).asnumpy()
    names = {k for k in net.collect_params() if not k.endswith("_u")}
    assert remove_spectral_norm(net) is net
    assert not sn_layers(net) and set(net.collect_params()) == names
    np.testing.assert_allclose(net(x).asnumpy(), expected, rtol=1e-4, atol=1e-5)
    net.export(str(tmp_path / "plain"))
    with open(str(tmp_path / "plain-symbol.json")) as f:
        assert "sgd_mom_update" not in f.read()  # no power iteration left in the graph


class _Aliased(HybridBlock):
    """Holds its first convolution in a Sequential, as an attribute and in a list."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        with self.name_scope():
            self.features = nn.HybridSequential()
            self.features.add(nn.Conv2D(4, 3, padding=1), nn.Activation("relu"),
                              nn.Conv2D(4, 3, padding=1))
            self.stem = self.features[0]
        self.taps = [self.features[0], self.features[2]]

    def hybrid_forward(self, F, x):
        return self.features(x) + self.stem(x)


@pytest.mark.filterwarnings("ignore:.*unregistered container")
def test_attributes_that_point_at_a_replaced_child_are_repointed():
    net = _Aliased()
    net.initialize()
    net(_x())
    spectral_norm(net)
    assert isinstance(net.stem, SNConv2D) and net.stem is net.features[0]
    assert net.taps == [net.features[0], net.features[2]]
    assert len(sn_layers(net)) == 2  # the shared convolution is converted once


def test_exclude_leaves_the_chosen_layers_alone():
    net = get_discriminator("dcgan", sn=False, ch=64)
    seen = []

    def exclude(name, layer):
        seen.append(name)
        return name in ("features.0", "head.linear")

    spectral_norm(net, exclude=exclude)
    assert "features.0" in seen and "head.linear" in seen
    assert type(net.features[0]) is nn.Conv2D and type(net.head.linear) is nn.Dense
    assert isinstance(net.features[2], SNConv2D)
    net = get_discriminator("dcgan", sn=False, ch=64)
    spectral_norm(net, exclude=lambda name, layer: layer is net.features)
    assert not sn_layers(net.features)  # an excluded block's children are left alone too
    assert isinstance(net.head.linear, SNDense)


def test_converting_twice_changes_nothing_and_warns():
    net = get_discriminator("dcgan", sn=False, ch=64)
    spectral_norm(net)
    layers = [layer for _, layer in _layers(net)]
    with pytest.warns(UserWarning, match="converted 0 layer.*8 already spectrally normalized"):
        spectral_norm(net)
    assert [layer for _, layer in _layers(net)] == layers


def test_layers_without_an_sn_twin_are_left_alone_and_listed():
    class MyConv(nn.Conv2D):
        pass

    net = nn.HybridSequential()
    net.add(nn.Conv1DTranspose(3, 3), MyConv(3, 3), nn.Dense(4),
            nn.Conv2DTranspose(3, 3, layout="NHWC"))
    with pytest.warns(UserWarning) as record:
        spectral_norm(net)
    message = str(record[0].message)
    assert "converted 1 layer" in message
    assert "1 Conv1DTranspose" in message and "1 MyConv" in message
    assert "Conv2DTranspose (SNConv2DTranspose: layout 'NHWC'" in message
    assert [type(b) for b in net._children.values()] == \
        [nn.Conv1DTranspose, MyConv, SNDense, nn.Conv2DTranspose]


def test_a_network_without_layers_to_convert_warns():
    net = nn.HybridSequential()
    net.add(nn.BatchNorm(), nn.Activation("relu"))
    with pytest.warns(UserWarning, match="converted 0 layer"):
        assert spectral_norm(net) is net


def test_bad_arguments_raise_clear_errors():
    with pytest.raises(TypeError, match="expects a Gluon Block, got int"):
        spectral_norm(3)
    with pytest.raises(TypeError, match="expects a Gluon Block, got list"):
        remove_spectral_norm([nn.Dense(2)])
    with pytest.raises(ValueError, match="power_iterations must be an integer >= 1, got 0"):
        spectral_norm(nn.Dense(2), power_iterations=0)
    with pytest.raises(ValueError, match="epsilon must be > 0"):
        spectral_norm(nn.Dense(2), epsilon=0)
    with pytest.raises(TypeError, match="exclude must be a callable"):
        spectral_norm(nn.Dense(2), exclude="features.0")


# Every kind of layer with settings away from the defaults.
KINDS = [
    lambda: nn.Conv1D(4, 3, strides=2, padding=1, dilation=2, groups=2,
                      activation="relu", use_bias=False, in_channels=6,
                      weight_initializer=mx.init.Xavier(), prefix="c1_"),
    lambda: nn.Conv2D(6, (3, 1), strides=(2, 1), padding=(1, 0), groups=3, activation="tanh",
                      bias_initializer="ones", layout="NHWC", in_channels=3, prefix="c2_"),
    lambda: nn.Conv3D(4, 2, strides=2, dilation=(1, 2, 1), in_channels=2, prefix="c3_"),
    lambda: nn.Conv2DTranspose(6, 4, strides=2, padding=1, output_padding=1, groups=2,
                               in_channels=4, activation="sigmoid", prefix="t2_"),
    lambda: nn.Dense(5, activation="relu", use_bias=False, flatten=False, dtype="float64",
                     in_units=7, prefix="d_"),
    lambda: nn.Embedding(10, 3, dtype="float64", weight_initializer=mx.init.Normal(),
                         prefix="e_"),
]


@pytest.mark.parametrize("make", KINDS)
def test_a_single_layer_becomes_its_twin_and_back(make):
    layer = make()
    twin = spectral_norm(layer, epsilon=1e-8)
    assert type(twin) is SN_TWINS[type(layer)] and twin is not layer
    assert layer_config(twin) == layer_config(layer) and twin.prefix == layer.prefix
    assert twin.u.dtype == np.dtype(layer.weight.dtype) and twin._epsilon == 1e-8
    twin.initialize()
    plain = remove_spectral_norm(twin)
    assert type(plain) is type(layer) and layer_config(plain) == layer_config(layer)
    assert plain.weight.dtype == layer.weight.dtype and plain.prefix == layer.prefix
    np.testing.assert_allclose(plain.weight.data().asnumpy(),
                               twin.normalized_weight().asnumpy(), rtol=1e-3)


def test_twins_keep_their_prefix_when_converted_inside_a_name_scope():
    outer = nn.HybridSequential(prefix="outer_")
    with outer.name_scope():
        outer.add(nn.Dense(3, prefix="inner_"))
        assert outer[0].prefix == "outer_inner_"
        spectral_norm(outer)
    assert outer[0].prefix == "outer_inner_" and outer[0].u.name == "outer_inner_u"


def test_converting_before_initialization_defers_as_the_plain_layers_do():
    net = spectral_norm(get_discriminator("dcgan", sn=False, ch=64))
    net.initialize()
    assert net(_x()).shape == (2,)
    assert all(layer.weight.shape[1] > 0 for layer in sn_layers(net))


def test_remove_spectral_norm_without_sn_layers_warns_and_changes_nothing():
    net = get_discriminator("dcgan", sn=False, ch=64)
    layers = [layer for _, layer in _layers(net)]
    with pytest.warns(UserWarning, match="remove_spectral_norm converted 0 layer"):
        remove_spectral_norm(net)
    assert [layer for _, layer in _layers(net)] == layers


def test_remove_spectral_norm_needs_initialized_weights_and_changes_nothing():
    net = spectral_norm(nn.Dense(3))  # deferred: in_units unknown until a forward
    net.initialize()
    with pytest.raises(RuntimeError, match="not initialized.*nothing was changed"):
        remove_spectral_norm(net)
    assert isinstance(net, SNDense)
    net = get_discriminator("dcgan", sn=True, ch=64)
    layers = [layer for _, layer in _layers(net)]
    with pytest.raises(RuntimeError, match="not initialized.*nothing was changed"):
        remove_spectral_norm(net)
    assert [layer for _, layer in _layers(net)] == layers


def test_removed_layer_holds_the_normalized_weight():
    layer = SNConv2DTranspose(4, 3, strides=2, in_channels=3, prefix="t_")
    layer.initialize()
    expected = layer.normalized_weight().asnumpy()
    plain = remove_spectral_norm(layer)
    assert type(plain) is nn.Conv2DTranspose and plain.prefix == "t_"
    np.testing.assert_array_equal(plain.weight.data().asnumpy(), expected)
    assert layer_config(plain) == layer_config(layer)


# ---------------------------------------------------------------------------- warm-up
def _labels(shape, high):
    return nd.array(np.random.RandomState(1).randint(0, high, size=shape))


WARM = {
    "conv1d": (lambda: SNConv1D(16, 3), lambda: nd.ones((1, 8, 5)), 0),
    "conv2d": (lambda: SNConv2D(32, 3, padding=1), lambda: nd.ones((1, 16, 5, 5)), 0),
    "conv3d": (lambda: SNConv3D(8, 3), lambda: nd.ones((1, 4, 3, 3, 3)), 0),
    "conv2d_transpose": (lambda: SNConv2DTranspose(16, 4, strides=2, padding=1),
                         lambda: nd.ones((1, 32, 3, 3)), 1),
    "dense": (lambda: SNDense(64), lambda: nd.ones((1, 128)), 0),
    "embedding": (lambda: SNEmbedding(10, 64), lambda: _labels((2,), 10), 0),
}


def _svd_sigma(weight, out_axis):
    w = weight.asnumpy()
    w = w.swapaxes(0, 1) if out_axis == 1 else w
    return np.linalg.svd(w.reshape(w.shape[0], -1), compute_uv=False)[0]


@pytest.mark.parametrize("name", sorted(WARM))
def test_sigma_matches_svd_after_warm_up(name):
    make, make_input, out_axis = WARM[name]
    mx.random.seed(0)
    layer = make()
    layer.initialize(init=mx.init.Xavier())
    layer(make_input())
    weight = layer.weight.data().asnumpy()
    true = _svd_sigma(layer.weight.data(), out_axis)
    assert abs(layer.sigma() - true) / true > 0.01  # a random u is a poor estimate
    assert warm_up(layer) is layer
    assert abs(layer.sigma() - true) / true < 0.01
    np.testing.assert_array_equal(layer.weight.data().asnumpy(), weight)


def test_warm_up_reaches_every_layer_of_a_network():
    net = get_discriminator("dcgan", sn=True, num_classes=3, ch=64)
    net.initialize()
    net(_x(), nd.array([0, 2]))
    warm_up(net)
    # the projection D of the standard CNN (table 3): seven convolutions, the dense
    # layer and the class embedding, in definition order
    layers = sn_layers(net)
    assert [type(layer) for layer in layers] == [SNConv2D] * 7 + [SNDense, SNEmbedding]
    for layer in layers:
        true = _svd_sigma(layer.weight.data(), 0)  # every one maps along axis 0
        assert abs(layer.sigma() - true) / true < 0.01, layer.name


@pytest.mark.parametrize("shape", [(8, 27), (64, 1024), (1, 300)])
def test_warm_up_blocks_equal_the_layers_power_iteration_bit_for_bit(shape):
    """iterate_to runs blocks of iterations as a cached graph; each block must give what
    power_iteration gives, called operator by operator as a layer's imperative forward
    calls it, over chained blocks and for a zero weight (which keeps u)."""
    from sngan_gluon.nn.spectral_norm import power_iteration
    from sngan_gluon.nn.warmup import iterate_to
    rng = np.random.RandomState(shape[0])
    for scale in (0.05, 0.0):
        w = nd.array(rng.normal(size=shape) * scale)
        u = u_cached = nd.array(rng.normal(size=(1, shape[0])))
        for _ in range(3):
            sigma, u = power_iteration(nd, w, u, shape[0], 15, 1e-12)
            sigma_cached, u_cached = iterate_to(w, u_cached, 15)
            np.testing.assert_array_equal(sigma_cached.asnumpy(), sigma.asnumpy())
            np.testing.assert_array_equal(u_cached.asnumpy(), u.asnumpy())
    # to a tolerance: the same as blocks of 15 run one by one until sigma settles
    sigma, _ = iterate_to(w + 1, u, 15, tol=1e-4)
    assert abs(sigma.asscalar() - _svd_sigma(w + 1, 0)) / _svd_sigma(w + 1, 0) < 0.01


def test_warm_up_of_deferred_shapes_needs_a_forward_or_example_inputs():
    net = nn.HybridSequential()
    net.add(SNConv2D(4, 3, in_channels=3), SNConv2D(4, 3), SNDense(2))
    with pytest.raises(RuntimeError, match="not initialized; call net.initialize"):
        warm_up(net)
    net[0].weight.initialize()  # as load_parameters(allow_missing=True) leaves it
    with pytest.raises(RuntimeError, match="_u is not initialized; call net.initialize"):
        warm_up(net)
    net.initialize()
    # The first convolution knows its input channels; the others wait for data.
    with pytest.raises(RuntimeError, match="still deferred: run one forward pass first, or "
                                           "pass example inputs"):
        warm_up(net)
    warm_up(net, inputs=_x())
    assert all(layer.weight.shape[1] > 0 for layer in sn_layers(net))
    with pytest.raises(ValueError, match="iterations must be an integer >= 1"):
        warm_up(net, iterations=0)
