"""GAN losses: exact values on hand-picked logits, stability at extreme logits."""
import numpy as np
import pytest
from mxnet import autograd, gluon, nd

from sngan_gluon import losses
from sngan_gluon.losses import bce_d, bce_g, get_loss, hinge_d, hinge_g

REAL = np.array([2.0, 0.5, -1.0, 0.0], dtype=np.float32)
FAKE = np.array([-2.0, 0.0, 1.5, -0.25], dtype=np.float32)


def _softplus(x):
    return np.logaddexp(0.0, x.astype(np.float64))


def _value(loss):
    assert loss.shape == (1,)
    return float(loss.asscalar())


def test_hinge_d_value():
    expected = np.maximum(0, 1 - REAL).mean() + np.maximum(0, 1 + FAKE).mean()
    # by hand: mean(0, .5, 2, 1) + mean(0, 1, 2.5, .75) = 0.875 + 1.0625
    assert expected == pytest.approx(1.9375)
    assert _value(hinge_d(nd.array(REAL), nd.array(FAKE))) == pytest.approx(expected, rel=1e-6)


def test_hinge_g_value():
    assert _value(hinge_g(nd.array(FAKE))) == pytest.approx(-FAKE.mean(), rel=1e-6)


def test_bce_d_value():
    expected = _softplus(-REAL).mean() + _softplus(FAKE).mean()
    assert _value(bce_d(nd.array(REAL), nd.array(FAKE))) == pytest.approx(expected, rel=1e-6)


def test_bce_g_is_non_saturating():
    expected = _softplus(-FAKE).mean()  # -mean(log sigmoid(fake))
    assert _value(bce_g(nd.array(FAKE))) == pytest.approx(expected, rel=1e-6)
    # Non-saturating: a confidently rejected fake still gets a gradient of -1/N.
    fake = nd.array([-20.0, -20.0])
    fake.attach_grad()
    with autograd.record():
        loss = bce_g(fake)
    loss.backward()
    np.testing.assert_allclose(fake.grad.asnumpy(), [-0.5, -0.5], rtol=1e-6)


def test_any_logit_shape_gives_a_scalar():
    real, fake = nd.array(REAL.reshape(2, 2)), nd.array(FAKE.reshape(4, 1))
    assert _value(hinge_d(real, fake)) == pytest.approx(1.9375, rel=1e-6)


EXTREME = np.array([1e4, -1e4, 0.0, 50.0, -50.0], dtype=np.float32)


@pytest.mark.parametrize("name", ["hinge", "bce"])
def test_extreme_logits_give_finite_values_and_gradients(name):
    d_loss, g_loss = get_loss(name)
    real, fake = nd.array(EXTREME), nd.array(EXTREME[::-1].copy())
    real.attach_grad()
    fake.attach_grad()
    with autograd.record():
        total = d_loss(real, fake) + g_loss(fake)
    total.backward()
    for array in (total, real.grad, fake.grad):
        assert np.isfinite(array.asnumpy()).all()


def test_bce_extreme_values_and_gradients_are_exact():
    real, fake = nd.array(EXTREME), nd.array(EXTREME)
    real.attach_grad()
    fake.attach_grad()
    with autograd.record():
        loss = bce_d(real, fake)
    loss.backward()
    n = len(EXTREME)
    expected = _softplus(-EXTREME).mean() + _softplus(EXTREME).mean()
    assert _value(loss) == pytest.approx(expected, rel=1e-6)
    sigmoid = 0.5 * (1 + np.tanh(EXTREME.astype(np.float64) / 2))
    # d/dr softplus(-r) = -sigmoid(-r); d/df softplus(f) = sigmoid(f)
    np.testing.assert_allclose(real.grad.asnumpy(), -(1 - sigmoid) / n, atol=1e-7)
    np.testing.assert_allclose(fake.grad.asnumpy(), sigmoid / n, atol=1e-7)


class _HingeInGraph(gluon.HybridBlock):
    def hybrid_forward(self, F, real, fake):
        return hinge_d(real, fake) + bce_d(real, fake) + hinge_g(fake) + bce_g(fake)


def test_losses_work_inside_a_hybridized_graph():
    real, fake = nd.array(REAL), nd.array(FAKE)
    expected = _value(hinge_d(real, fake) + bce_d(real, fake) + hinge_g(fake) + bce_g(fake))
    block = _HingeInGraph()
    block.hybridize()
    assert _value(block(real, fake)) == pytest.approx(expected, rel=1e-6)


def test_get_loss_returns_the_pairs():
    assert get_loss("hinge") == (hinge_d, hinge_g)
    assert get_loss("bce") == (bce_d, bce_g)


def test_unknown_loss_lists_valid_names():
    with pytest.raises(ValueError, match="bce, hinge"):
        get_loss("wgan-gp")


# ------------------------------------------------------------------ LeCam

def test_lecam_value_penalises_only_outputs_past_the_other_anchor():
    anchor_real, anchor_fake = 0.5, -0.25
    expected = (np.maximum(0, REAL - anchor_fake) ** 2).mean() + \
        (np.maximum(0, anchor_real - FAKE) ** 2).mean()
    # by hand: real - (-.25) = 2.25, .75, -, .25 -> (5.0625 + .5625 + .0625) / 4;
    # .5 - fake = 2.5, .5, -, .75 -> (6.25 + .25 + .5625) / 4
    assert expected == pytest.approx(1.421875 + 1.765625)
    value = losses.lecam(nd.array(REAL), nd.array(FAKE), nd.array([anchor_real]),
                         nd.array([anchor_fake]))
    assert _value(value) == pytest.approx(expected, rel=1e-6)


def test_lecam_gradient_reaches_the_outputs_and_not_the_anchors():
    real, fake = nd.array(REAL), nd.array(FAKE)
    a_real, a_fake = nd.array([0.5]), nd.array([-0.25])
    for x in (real, fake, a_real, a_fake):
        x.attach_grad()
    with autograd.record():
        value = losses.lecam(real, fake, a_real.detach(), a_fake.detach())
    value.backward()
    n = len(REAL)
    np.testing.assert_allclose(real.grad.asnumpy(), 2 * np.maximum(0, REAL + 0.25) / n, rtol=1e-6)
    np.testing.assert_allclose(fake.grad.asnumpy(), -2 * np.maximum(0, 0.5 - FAKE) / n,
                               rtol=1e-6)
    assert not a_real.grad.asnumpy().any() and not a_fake.grad.asnumpy().any()


def test_lecam_is_the_same_as_a_symbol():
    import mxnet as mx
    sym = losses.lecam(mx.sym.var("r"), mx.sym.var("f"), mx.sym.var("ar"), mx.sym.var("af"))
    out = sym.eval(r=nd.array(REAL), f=nd.array(FAKE), ar=nd.array([0.5]), af=nd.array([-0.25]))
    direct = losses.lecam(nd.array(REAL), nd.array(FAKE), nd.array([0.5]), nd.array([-0.25]))
    assert _value(out[0]) == pytest.approx(_value(direct), rel=1e-6)


def test_lecam_anchors_start_at_the_batch_means_then_move_by_the_decay():
    import mxnet as mx
    anchors = losses.LeCamAnchors(mx.cpu(), decay=0.9)
    assert anchors.state() is None
    # two devices with equal shares: the anchors follow the whole batch's means
    anchors.update([nd.array(REAL[:2]), nd.array(REAL[2:])], [nd.array(FAKE[:2]),
                                                               nd.array(FAKE[2:])])
    np.testing.assert_allclose(anchors.state(), [REAL.mean(), FAKE.mean()], rtol=1e-6)
    anchors.update([nd.array(REAL + 1)], [nd.array(FAKE - 2)])
    np.testing.assert_allclose(anchors.state(), [REAL.mean() + 0.1, FAKE.mean() - 0.2],
                               rtol=1e-6)
    real, fake = anchors.on(mx.cpu())
    assert real.shape == fake.shape == (1,)
    restored = losses.LeCamAnchors(mx.cpu(), decay=0.9)
    restored.load_state(anchors.state())
    assert restored.state() == anchors.state()
    with pytest.raises(ValueError, match=r"LeCam decay must be in \[0, 1\), got 1.0"):
        losses.LeCamAnchors(mx.cpu(), decay=1.0)


# ------------------------------------------------------------ mode seeking

def _pairs(seed=0):
    rng = np.random.RandomState(seed)
    return (rng.uniform(-1, 1, size=(6, 3, 4, 4)).astype(np.float32),
            rng.normal(size=(6, 5)).astype(np.float32))


def test_mode_seeking_value_pairs_adjacent_rows():
    fake, z = _pairs()
    ratios = [np.abs(fake[k] - fake[k + 1]).mean() / np.abs(z[k] - z[k + 1]).mean()
              for k in (0, 2, 4)]
    expected = np.mean([1.0 / (r + losses.MODE_SEEKING_EPS) for r in ratios])
    assert _value(losses.mode_seeking(nd.array(fake), nd.array(z))) == pytest.approx(
        expected, rel=1e-5)
    # by hand: images 6 apart everywhere, noise 1 apart -> 1 / 6
    step = np.arange(4, dtype=np.float32)[:, None] * np.ones((4, 3), np.float32)
    assert _value(losses.mode_seeking(nd.array(6 * step), nd.array(step[:, :2]))) == \
        pytest.approx(1 / 6, rel=1e-4)


def test_mode_seeking_is_the_same_as_a_symbol_and_over_split_batches():
    import mxnet as mx
    fake, z = _pairs(1)
    whole = _value(losses.mode_seeking(nd.array(fake), nd.array(z)))
    out = losses.mode_seeking(mx.sym.var("f"), mx.sym.var("z")).eval(f=nd.array(fake),
                                                                     z=nd.array(z))
    assert _value(out[0]) == pytest.approx(whole, rel=1e-6)
    # two devices' even parts, each weighted by its share, give the whole batch's value
    parts = [_value(losses.mode_seeking(nd.array(fake[s]), nd.array(z[s])))
             for s in (slice(0, 4), slice(4, 6))]
    assert parts[0] * 4 / 6 + parts[1] * 2 / 6 == pytest.approx(whole, rel=1e-5)


def test_mode_seeking_gradient_pushes_the_two_samples_of_a_pair_apart():
    fake, z = _pairs(2)
    x = nd.array(fake)
    x.attach_grad()
    with autograd.record():
        value = losses.mode_seeking(x, nd.array(z))
    value.backward()
    before = np.abs(fake[0::2] - fake[1::2]).sum()
    stepped = fake - 0.01 * x.grad.asnumpy()
    assert np.abs(stepped[0::2] - stepped[1::2]).sum() > before
    assert _value(losses.mode_seeking(nd.array(stepped), nd.array(z))) < _value(value)
    # identical samples: large, but finite
    same = np.repeat(fake[0::2], 2, axis=0)
    assert np.isfinite(_value(losses.mode_seeking(nd.array(same), nd.array(z))))
