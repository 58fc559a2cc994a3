"""DiffAugment: each policy does what the paper says, exactly, and lets gradients through."""
import numpy as np
import pytest

import sngan_gluon  # noqa: F401
from mxnet import autograd, nd

from sngan_gluon.augment import DiffAugment, parse_policy
from sngan_gluon.config import ConfigError, TrainConfig
from sngan_gluon.data import get_dataset
from sngan_gluon.trainer import GANTrainer
from tiny_runs import WIDTHS


def _images(n=6, c=3, size=16, seed=0):
    return nd.array(np.random.RandomState(seed).uniform(-1, 1, (n, c, size, size)))


def test_parse_policy_accepts_the_three_policies_and_names_an_unknown_one():
    assert parse_policy("color, translation,cutout") == ("color", "translation", "cutout")
    assert parse_policy("") == () and parse_policy(None) == ()
    with pytest.raises(ValueError, match="'flip'"):
        parse_policy("translation,flip")
    with pytest.raises(ConfigError, match="--diffaugment"):
        TrainConfig(diffaugment="rotate").validate()


def test_translation_shifts_each_image_by_whole_pixels_and_fills_zeros():
    x = _images()
    y = DiffAugment("translation")(x, np.random.RandomState(5)).asnumpy()
    rng = np.random.RandomState(5)
    dy, dx = rng.randint(-2, 3, size=6), rng.randint(-2, 3, size=6)  # 1/8 of 16 pixels
    assert (dy != 0).any() and (dx != 0).any()
    for n in range(6):
        expected = np.zeros((3, 16 + 8, 16 + 8), np.float32)  # shift inside a zero frame
        expected[:, 4 + dy[n]:20 + dy[n], 4 + dx[n]:20 + dx[n]] = x[n].asnumpy()
        np.testing.assert_array_equal(y[n], expected[:, 4:20, 4:20])


def test_cutout_zeroes_one_square_of_half_the_size_per_image():
    x = nd.ones((8, 3, 16, 16))
    y = DiffAugment("cutout")(x, np.random.RandomState(2)).asnumpy()
    for image in y:
        zero = image[0] == 0
        assert (image == image[:1]).all()  # the same pixels in every channel
        rows, cols = np.where(zero)
        # a centred 8x8 square, clipped where its centre lies near the border
        assert 0 < zero.sum() <= 64
        assert zero[rows.min():rows.max() + 1, cols.min():cols.max() + 1].all()
        assert rows.max() - rows.min() < 8 and cols.max() - cols.min() < 8
    assert (y == 0).mean() > 0.15  # most squares lie mostly inside


def test_color_matches_the_paper_formulas():
    x = _images(n=4)
    y = DiffAugment("color")(x, np.random.RandomState(7)).asnumpy()
    rng = np.random.RandomState(7)
    b, s, c = rng.uniform(size=4) - 0.5, rng.uniform(size=4) * 2, rng.uniform(size=4) + 0.5
    e = x.asnumpy() + b[:, None, None, None]
    m = e.mean(axis=1, keepdims=True)
    e = (e - m) * s[:, None, None, None] + m
    m = e.mean(axis=(1, 2, 3), keepdims=True)
    e = (e - m) * c[:, None, None, None] + m
    np.testing.assert_allclose(y, e, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("policy", ["color", "translation", "cutout", "color,translation,cutout"])
def test_gradient_flows_through_every_policy(policy):
    x = _images(n=3)
    x.attach_grad()
    weights = _images(n=3, seed=1)
    with autograd.record():
        loss = (DiffAugment(policy)(x, np.random.RandomState(3)) * weights).sum()
    loss.backward()
    # the augmentation is linear in x for fixed random draws: a finite difference is exact
    eps = 1e-2
    direction = _images(n=3, seed=2)
    plus = (DiffAugment(policy)(x + eps * direction, np.random.RandomState(3)) * weights).sum()
    numeric = (plus - loss).asscalar() / eps
    analytic = (x.grad * direction).sum().asscalar()
    assert abs(numeric - analytic) <= 1e-2 * max(1.0, abs(analytic))
    assert x.grad.abs().sum().asscalar() > 0


def test_trainer_with_diffaugment_resumes_exactly(tmp_path):
    data = get_dataset("synthetic", image_size=32)
    config = TrainConfig(dataset="synthetic", batch_size=8, iterations=4, log_every=2,
                         sample_every=4, checkpoint_every=2, quiet=True, seed=1,
                         diffaugment="color,translation,cutout", **WIDTHS)
    straight = GANTrainer(config, dataset=data)
    straight.train(str(tmp_path / "a"))
    resumed = GANTrainer(config, dataset=data)
    resumed.train(str(tmp_path / "b"),
                  resume=str(tmp_path / "a" / "checkpoints" / "iter_0000002"))
    plain = GANTrainer(TrainConfig(**dict(config.to_dict(), diffaugment="")), dataset=data)
    plain.train(str(tmp_path / "c"))
    for a, b, c in zip(straight.D.collect_params().values(), resumed.D.collect_params().values(),
                       plain.D.collect_params().values()):
        np.testing.assert_array_equal(a.data().asnumpy(), b.data().asnumpy(), err_msg=a.name)
    assert any(not np.array_equal(a.data().asnumpy(), c.data().asnumpy())
               for a, c in zip(straight.D.collect_params().values(),
                               plain.D.collect_params().values()))
