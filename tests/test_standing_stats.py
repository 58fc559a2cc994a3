"""Standing statistics: the running statistics become the average of the batch statistics."""
import numpy as np
import pytest

import mxnet as mx
from mxnet import nd
from mxnet.gluon import nn

from sngan_gluon.models import get_generator
from sngan_gluon.sampling import draw_noise
from sngan_gluon.standing_stats import batch_norms, standing_statistics


def _two_layer_net(z_dim):
    """Dense(6) -> BatchNorm(0.8) -> ReLU -> Dense(4) -> BatchNorm(0.9), non-trivial gamma, beta."""
    mx.random.seed(3)
    net = nn.HybridSequential()
    net.add(nn.Dense(6, in_units=z_dim), nn.BatchNorm(momentum=0.8, in_channels=6),
            nn.Activation("relu"), nn.Dense(4, in_units=6), nn.BatchNorm(in_channels=4))
    net.initialize(mx.init.Normal(0.5))
    rng = np.random.RandomState(1)
    for bn in (net[1], net[4]):
        bn.gamma.set_data(nd.array(rng.uniform(0.5, 2.0, bn.gamma.shape)))
        bn.beta.set_data(nd.array(rng.uniform(-1.0, 1.0, bn.beta.shape)))
        bn.running_mean.set_data(nd.array(rng.uniform(-3, 3, bn.running_mean.shape)))
    net.hybridize()
    return net


def _numpy_standing(net, z_dim, batches, batch_size, seed):
    """The same computation in float64 numpy: [(mean (C,), biased var (C,)) per BatchNorm]."""
    def get(param):
        return param.data().asnumpy().astype(np.float64)

    dense = [(get(net[i].weight), get(net[i].bias)) for i in (0, 3)]
    norms = [(get(net[i].gamma), get(net[i].beta)) for i in (1, 4)]
    rng = np.random.RandomState(seed)
    sums = [np.zeros(6), np.zeros(6), np.zeros(4), np.zeros(4)]
    for _ in range(batches):
        h = draw_noise(rng, batch_size, z_dim).astype(np.float64)
        for i in range(2):
            h = h @ dense[i][0].T + dense[i][1]
            mean, var = h.mean(0), h.var(0)
            sums[2 * i] += mean
            sums[2 * i + 1] += var
            h = (h - mean) / np.sqrt(var + 1e-5) * norms[i][0] + norms[i][1]
            if i == 0:
                h = np.maximum(h, 0)
    return [(sums[0] / batches, sums[1] / batches), (sums[2] / batches, sums[3] / batches)]


def test_standing_statistics_are_the_average_batch_statistics_of_a_numpy_computation():
    net = _two_layer_net(z_dim=5)
    expected = _numpy_standing(net, 5, batches=7, batch_size=16, seed=4)
    assert standing_statistics(net, 5, batches=7, batch_size=16, seed=4) == 2
    for bn, (mean, var) in zip((net[1], net[4]), expected):
        np.testing.assert_allclose(bn.running_mean.data().asnumpy(), mean, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(bn.running_var.data().asnumpy(), var, rtol=1e-4, atol=1e-5)
    # and inference now normalizes with them: the numpy forward with the standing statistics
    z = draw_noise(np.random.RandomState(9), 3, 5)
    p = [(net[i].weight.data().asnumpy(), net[i].bias.data().asnumpy()) for i in (0, 3)]
    h = z @ p[0][0].T + p[0][1]
    for i, (bn, (mean, var)) in enumerate(zip((net[1], net[4]), expected)):
        h = ((h - mean) / np.sqrt(var + 1e-5) * bn.gamma.data().asnumpy()
             + bn.beta.data().asnumpy())
        h = np.maximum(h, 0) @ p[1][0].T + p[1][1] if i == 0 else h
    np.testing.assert_allclose(net(nd.array(z)).asnumpy(), h, rtol=1e-4, atol=1e-4)


def test_standing_statistics_change_no_weight_and_no_gradient():
    G = get_generator("dcgan", z_dim=8, ch=32)
    G.initialize(mx.init.Normal(0.02))
    G(nd.zeros((2, 8)))
    G.hybridize()
    params = G.collect_params()
    for p in params.values():
        if p.grad_req != "null":
            p.grad()[:] = 7.0
    before = {k: v.data().asnumpy().copy() for k, v in params.items()}
    standing_statistics(G, 8, batches=3, batch_size=8, seed=0)
    changed = {k for k, v in params.items() if not np.array_equal(v.data().asnumpy(), before[k])}
    assert changed == {k for k in params if k.endswith(("running_mean", "running_var"))}
    assert len(changed) == 2 * len(batch_norms(G)) == 8  # dense BN + three deconvolution BNs
    for p in params.values():
        if p.grad_req != "null":
            assert (p.grad().asnumpy() == 7.0).all(), p.name


def test_conditional_generator_gets_the_statistics_of_every_inner_batchnorm():
    G = get_generator("dcgan", z_dim=8, ch=32, num_classes=3)
    G.initialize(mx.init.Normal(0.02))
    G(nd.zeros((2, 8)), nd.zeros((2,), dtype="int32"))
    layers = batch_norms(G)
    assert len(layers) == 4
    standing_statistics(G, 8, batches=2, batch_size=8, seed=0, num_classes=3)
    for bn in layers:
        assert (bn.running_var.data().asnumpy() > 0).all()
        assert np.abs(bn.running_mean.data().asnumpy()).max() > 0


def test_standing_statistics_refuse_a_bad_batch_count():
    with pytest.raises(ValueError, match="batches must be an integer >= 1, got 0"):
        standing_statistics(_two_layer_net(5), 5, batches=0)
