"""ConditionalBatchNorm: plain BatchNorm per class, gains and biases looked up by label."""
import numpy as np
import pytest
from mxnet import autograd, gluon, nd
from mxnet.gluon import nn

from sngan_gluon.nn import ConditionalBatchNorm

C, K = 3, 4


def _pair(seed=0):
    """A ConditionalBatchNorm and a plain BatchNorm(center=False, scale=False)."""
    cbn = ConditionalBatchNorm(C, K)
    bn = nn.BatchNorm(center=False, scale=False, in_channels=C)
    cbn.initialize()
    bn.initialize()
    rng = np.random.RandomState(seed)
    x = nd.array(rng.normal(2.0, 3.0, size=(6, C, 5, 5)))
    y = nd.array([0, 1, 2, 3, 1, 0])
    return cbn, bn, x, y


def _train(block, x, *labels):
    """A training step's forward and backward. MXNet 1.9's oneDNN BatchNorm updates
    its running statistics in the backward pass, which runs only when something
    below it needs a gradient: here the input, in a generator the layers before."""
    x = x.copy()
    x.attach_grad()
    with autograd.record():
        out = block(x, *labels)
        loss = (out * out).sum()
    loss.backward()
    return out


def test_unit_gammas_zero_betas_equal_plain_batchnorm_in_training():
    cbn, bn, x, y = _pair()
    np.testing.assert_allclose(_train(cbn, x, y).asnumpy(), _train(bn, x).asnumpy(),
                               rtol=1e-5, atol=1e-5)


def test_training_mode_uses_batch_statistics_and_updates_running_stats():
    cbn, _, x, y = _pair()
    out = _train(cbn, x, y).asnumpy()
    np.testing.assert_allclose(out.mean(axis=(0, 2, 3)), 0, atol=1e-5)
    np.testing.assert_allclose(out.var(axis=(0, 2, 3)), 1, rtol=1e-3)
    # Gluon: running = momentum * running + (1 - momentum) * batch, momentum 0.9.
    batch_mean = x.asnumpy().mean(axis=(0, 2, 3))
    np.testing.assert_allclose(cbn.bn.running_mean.data().asnumpy(), 0.1 * batch_mean,
                               rtol=1e-5)


def test_inference_uses_running_statistics_like_plain_batchnorm():
    cbn, bn, x, y = _pair()
    _train(cbn, x, y)
    _train(bn, x)
    x2 = x[::-1] * 0.5
    np.testing.assert_allclose(cbn(x2, y).asnumpy(), bn(x2).asnumpy(), rtol=1e-5, atol=1e-5)


def test_classes_get_their_own_gain_and_bias():
    cbn, bn, x, y = _pair()
    gamma, beta = np.ones((K, C)), np.zeros((K, C))
    gamma[1], beta[1] = [2.0, 3.0, 4.0], [0.5, -1.0, 0.0]
    cbn.gamma.set_data(nd.array(gamma))
    cbn.beta.set_data(nd.array(beta))
    out = _train(cbn, x, y).asnumpy()
    plain = _train(bn, x).asnumpy()
    labels = y.asnumpy().astype(int)
    expected = plain * gamma[labels][:, :, None, None] + beta[labels][:, :, None, None]
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)
    # Two samples equal after normalization differ only through their class.
    assert not np.allclose(out[labels == 1], plain[labels == 1])
    np.testing.assert_allclose(out[labels == 0], plain[labels == 0], rtol=1e-5, atol=1e-5)


def test_gradient_reaches_only_the_rows_of_present_classes():
    cbn, _, x, _ = _pair()
    y = nd.array([0, 0, 2, 2, 0, 2])
    with autograd.record():
        loss = (cbn(x, y) * nd.random.normal(shape=x.shape)).sum()
    loss.backward()
    rows = np.abs(cbn.gamma.grad().asnumpy()).sum(axis=1)
    assert rows[0] > 0 and rows[2] > 0 and rows[1] == 0 and rows[3] == 0


def test_two_dimensional_input():
    cbn = ConditionalBatchNorm(5, 2)
    cbn.initialize()
    x = nd.random.normal(shape=(4, 5))
    out = _train(cbn, x, nd.array([0, 1, 1, 0]))
    assert out.shape == (4, 5)
    np.testing.assert_allclose(out.asnumpy().mean(axis=0), 0, atol=1e-5)


def test_hybridized_equals_imperative():
    cbn, _, x, y = _pair()
    cbn.gamma.set_data(nd.random.uniform(0.5, 2, shape=(K, C)))
    expected = cbn(x, y).asnumpy()
    cbn.hybridize()
    np.testing.assert_allclose(cbn(x, y).asnumpy(), expected, rtol=1e-6, atol=1e-6)


class _Stack(gluon.HybridBlock):
    def __init__(self, depth):
        super().__init__()
        with self.name_scope():
            self.norms = nn.HybridSequential()
            for _ in range(depth):
                self.norms.add(ConditionalBatchNorm(C, K))

    def hybrid_forward(self, F, x, y):
        for norm in self.norms:
            x = F.relu(norm(x, y)) + x
        return x


def test_many_layers_sharing_labels_train_hybridized():
    # Regression: more than 8 Embedding lookups of the same labels in one hybridized
    # graph made MXNet 1.9 ask Embedding for a label gradient on the second backward.
    net = _Stack(10)
    net.initialize()
    net.hybridize()
    _, _, x, y = _pair()
    for _ in range(2):
        with autograd.record():
            loss = net(x, y).sum()
        loss.backward()
    assert np.isfinite(net.norms[0].gamma.grad().asnumpy()).all()


@pytest.mark.parametrize("args", [(0, 3), (3, 0), (3, -1), (2.5, 3)])
def test_bad_sizes_are_rejected(args):
    with pytest.raises(ValueError, match="ConditionalBatchNorm"):
        ConditionalBatchNorm(*args)
