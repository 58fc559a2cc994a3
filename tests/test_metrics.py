"""Tests for sngan_gluon.metrics: IS, FID, feature statistics and the Inception wrapper."""
import os

import numpy as np
import pytest

import sngan_gluon  # noqa: F401  (makes mxnet importable)
import mxnet as mx
from sngan_gluon import metrics
from sngan_gluon.metrics import (FID_PROTOCOLS, FeatureStats, InceptionExtractor, MetricsError,
                                 compute_statistics, fid_from_stats, frechet_distance,
                                 generator_batches, inception_score, real_statistics)


class TableExtractor(object):
    """Stand-in for InceptionExtractor: image i carries its row index in pixel (0, 0, 0)."""

    def __init__(self, features, probs):
        self.features, self.probs, self.calls = features, probs, 0

    def extract(self, images):
        self.calls += 1
        images = images.asnumpy() if isinstance(images, mx.nd.NDArray) else images
        rows = images[:, 0, 0, 0].astype(np.int64)
        return self.features[rows].astype(np.float32), self.probs[rows].astype(np.float32)


def index_batches(num, batch_size=64):
    """Images (n, 1, 2, 2) whose first pixel is their index, via generator_batches."""
    state = {"next": 0}

    def sample(n):
        out = np.zeros((n, 1, 2, 2), np.float32)
        out[:, 0, 0, 0] = np.arange(state["next"], state["next"] + n)
        state["next"] += n
        return mx.nd.array(out)

    return generator_batches(sample, num, batch_size)


def is_through_pipeline(probs, splits=10):
    features = np.zeros((len(probs), 4))
    features[:, 0] = np.arange(len(probs))
    extractor = TableExtractor(features, probs)
    stats, collected = compute_statistics(index_batches(len(probs)), extractor)
    assert stats.n == len(probs)
    np.testing.assert_allclose(collected, probs, atol=1e-7)
    return inception_score(collected, splits=splits)


def gaussian_samples(mu, var, n, seed=0):
    """Samples whose empirical mean is exactly mu and unbiased covariance exactly diag(var)."""
    rng = np.random.RandomState(seed)
    z = rng.normal(size=(n, len(mu)))
    z -= z.mean(axis=0)
    # Whiten: unbiased covariance of z @ w is the identity.
    w = np.linalg.inv(np.linalg.cholesky(np.cov(z, rowvar=False))).T
    return (z @ w) * np.sqrt(var) + mu


def closed_form_fid(mu1, a, mu2, b):
    return np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)


# ---- Inception Score ------------------------------------------------------------------

def test_is_is_one_when_every_prediction_is_uniform():
    mean, std = is_through_pipeline(np.full((200, 10), 0.1))
    assert abs(mean - 1.0) < 1e-6 and std < 1e-6


def test_is_is_one_when_every_prediction_equals_a_nonuniform_prior():
    mean, std = is_through_pipeline(np.tile([0.7, 0.2, 0.05, 0.05, 0.0], (200, 1)))
    assert abs(mean - 1.0) < 1e-6 and std < 1e-6


def test_is_equals_k_for_confident_balanced_predictions():
    k = 7
    probs = np.eye(k)[np.arange(10 * 5 * k) % k]  # every split holds each class 5 times
    mean, std = is_through_pipeline(probs)
    assert np.isfinite(mean)
    assert abs(mean - k) < 1e-4 and std < 1e-4


def test_is_rejects_logits_and_too_many_splits():
    with pytest.raises(ValueError, match="not logits"):
        inception_score(np.random.RandomState(0).normal(size=(20, 5)))
    with pytest.raises(ValueError, match="splits"):
        inception_score(np.full((5, 2), 0.5), splits=10)


# ---- Frechet distance -----------------------------------------------------------------

def test_fid_of_identical_feature_sets_is_zero():
    x = np.random.RandomState(1).normal(size=(400, 32)) * np.linspace(0.1, 3, 32)
    a, b = FeatureStats().update(x), FeatureStats().update(x)
    assert abs(fid_from_stats(a, b)) < 1e-3


def test_fid_closed_form_for_diagonal_gaussians():
    rng = np.random.RandomState(2)
    mu1, mu2 = rng.normal(size=16), rng.normal(size=16)
    a, b = rng.uniform(0.1, 4, 16), rng.uniform(0.1, 4, 16)
    expected = closed_form_fid(mu1, a, mu2, b)
    got = frechet_distance(mu1, np.diag(a), mu2, np.diag(b))
    assert got == pytest.approx(expected, rel=1e-3)


def test_fid_from_streamed_samples_matches_closed_form():
    rng = np.random.RandomState(3)
    mu1, mu2 = rng.normal(size=16), rng.normal(size=16) + 1
    a, b = rng.uniform(0.1, 4, 16), rng.uniform(0.1, 4, 16)
    x, y = gaussian_samples(mu1, a, 300, seed=4), gaussian_samples(mu2, b, 500, seed=5)
    sx, sy = FeatureStats(), FeatureStats()
    for chunk in np.array_split(x, 4):
        sx.update(chunk)
    for chunk in np.array_split(y, 7):
        sy.update(chunk)
    assert fid_from_stats(sx, sy) == pytest.approx(closed_form_fid(mu1, a, mu2, b), rel=1e-3)


def test_fid_is_finite_for_singular_covariances():
    rng = np.random.RandomState(6)
    few = FeatureStats().update(rng.normal(size=(10, 64)))       # rank 9 < 64
    other = FeatureStats().update(rng.normal(size=(12, 64)) + 0.5)
    assert np.isfinite(fid_from_stats(few, other))
    assert abs(fid_from_stats(few, few)) < 1e-2
    low_rank = rng.normal(size=(200, 3)) @ rng.normal(size=(3, 32))  # rank 3
    full = FeatureStats().update(rng.normal(size=(200, 32)))
    assert np.isfinite(fid_from_stats(FeatureStats().update(low_rank), full))


def test_fid_retries_with_eps_when_the_square_root_is_not_finite(monkeypatch):
    real_sqrtm, calls = metrics.linalg.sqrtm, []

    def sqrtm_failing_once(a, disp=True):
        calls.append(a.copy())
        if len(calls) == 1:  # what scipy returns for some singular products
            return np.full_like(a, np.nan), np.inf
        return real_sqrtm(a, disp=disp)

    monkeypatch.setattr(metrics.linalg, "sqrtm", sqrtm_failing_once)
    a, b, eps = np.array([1.0, 4.0]), np.array([9.0, 0.0]), 1e-2
    got = frechet_distance(np.zeros(2), np.diag(a), np.zeros(2), np.diag(b), eps=eps)
    assert len(calls) == 2
    np.testing.assert_allclose(calls[1], np.diag((a + eps) * (b + eps)))
    expected = np.sum(a + b - 2 * np.sqrt((a + eps) * (b + eps)))
    assert got == pytest.approx(expected, rel=1e-9)


def test_fid_of_constant_features_is_squared_mean_distance():
    zero = np.zeros((4, 4))
    assert frechet_distance(np.ones(4), zero, np.zeros(4), zero) == pytest.approx(4.0, abs=1e-4)


def test_fid_rejects_non_psd_and_mismatched_inputs():
    with pytest.raises(ValueError, match="imaginary"):
        frechet_distance(np.zeros(3), -np.eye(3), np.zeros(3), np.eye(3))
    with pytest.raises(ValueError, match="sigma1"):
        frechet_distance(np.zeros(3), np.eye(4), np.zeros(3), np.eye(3))


# ---- FeatureStats ---------------------------------------------------------------------

def test_feature_stats_streamed_equal_numpy_on_the_whole_set():
    x = np.random.RandomState(7).normal(size=(257, 20)) * 3 + 100  # large mean: no cancellation
    stats = FeatureStats()
    for chunk in np.array_split(x, [1, 50, 51, 200]):
        stats.update(chunk.astype(np.float32).astype(np.float64))
    assert stats.n == 257
    np.testing.assert_allclose(stats.mean, x.mean(axis=0), rtol=1e-6)
    np.testing.assert_allclose(stats.cov, np.cov(x, rowvar=False), rtol=1e-5, atol=1e-5)


def test_feature_stats_refuses_other_dimension_and_too_few_samples():
    stats = FeatureStats().update(np.zeros((1, 3)))
    with pytest.raises(ValueError, match="at least 2"):
        stats.cov
    with pytest.raises(ValueError, match="D=4"):
        stats.update(np.zeros((2, 4)))


def test_feature_stats_save_load_round_trip(tmp_path):
    x = np.random.RandomState(8).normal(size=(50, 6))
    stats = FeatureStats().update(x)
    path = str(tmp_path / "stats.npz")
    stats.save(path)
    with np.load(path) as data:
        assert sorted(data.files) == ["mu", "n", "sigma"]
    loaded = FeatureStats.load(path)
    assert loaded.n == 50
    np.testing.assert_allclose(loaded.mean, stats.mean)
    np.testing.assert_allclose(loaded.cov, stats.cov)
    y = np.random.RandomState(9).normal(size=(30, 6))  # a loaded one keeps streaming
    np.testing.assert_allclose(loaded.update(y).cov, np.cov(np.vstack([x, y]), rowvar=False))
    assert os.listdir(str(tmp_path)) == ["stats.npz"]  # no temporary file left


# ---- streaming helpers ----------------------------------------------------------------

def test_generator_batches_yields_num_images_in_batches():
    sizes = [b.shape[0] for b in generator_batches(lambda n: np.zeros((n, 3, 4, 4)), 250, 100)]
    assert sizes == [100, 100, 50]
    with pytest.raises(ValueError, match="returned"):
        list(generator_batches(lambda n: np.zeros((1, 3, 4, 4)), 5, 2))


def test_real_statistics_computes_caches_and_reuses(tmp_path):
    rng = np.random.RandomState(10)
    extractor = TableExtractor(rng.normal(size=(100, 5)), np.full((100, 4), 0.25))
    cache = str(tmp_path / "fid_stats" / "real.npz")
    first = real_statistics(index_batches(100, 30), cache, extractor)
    assert os.path.isfile(cache) and extractor.calls == 4
    second = real_statistics(index_batches(100, 30), cache, extractor)
    assert extractor.calls == 4  # served from the cache
    np.testing.assert_allclose(second.cov, first.cov)
    np.testing.assert_allclose(first.cov, np.cov(extractor.features.astype(np.float32),
                                                 rowvar=False), rtol=1e-5)


@pytest.mark.parametrize("content", [b"not a zip file", "missing_sigma"])
def test_real_statistics_recomputes_a_corrupt_cache(tmp_path, content):
    cache = str(tmp_path / "real.npz")
    if content == "missing_sigma":
        np.savez(cache, mu=np.zeros(5))
    else:
        with open(cache, "wb") as f:
            f.write(content)
    extractor = TableExtractor(np.random.RandomState(11).normal(size=(40, 5)),
                               np.full((40, 4), 0.25))
    stats = real_statistics(index_batches(40, 40), cache, extractor)
    assert extractor.calls == 1 and stats.n == 40
    np.testing.assert_allclose(FeatureStats.load(cache).mean, stats.mean)


def test_fid_protocols_are_paper_and_50k():
    assert FID_PROTOCOLS["paper"] == dict(num_real=10000, num_fake=5000)
    assert FID_PROTOCOLS["50k"] == dict(num_real=50000, num_fake=50000)


# ---- Inception-v3 wrapper -------------------------------------------------------------

@pytest.fixture(scope="module")
def random_inception():
    return InceptionExtractor(pretrained=False, batch_size=3)


def test_inception_features_and_probs_for_small_rgb_and_gray_images(random_inception):
    rng = np.random.RandomState(12)
    rgb = rng.uniform(-1, 1, size=(4, 3, 32, 32)).astype(np.float32)
    features, probs = random_inception.extract(mx.nd.array(rgb))  # 2 forward passes of <= 3
    assert features.shape == (4, 2048) and features.dtype == np.float32
    assert probs.shape == (4, 1000)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    assert np.isfinite(features).all()
    gray = rgb[:2, :1]
    f_gray, p_gray = random_inception(gray)  # numpy input, tiled to RGB
    f_tiled, _ = random_inception.extract(np.tile(gray, (1, 3, 1, 1)))
    assert f_gray.shape == (2, 2048) and p_gray.shape == (2, 1000)
    np.testing.assert_allclose(f_gray, f_tiled, rtol=1e-5, atol=1e-5)


def test_inception_rejects_four_channel_images(random_inception):
    with pytest.raises(ValueError, match="C = 1 or 3"):
        random_inception.extract(np.zeros((1, 4, 8, 8), np.float32))


def test_inception_params_file_loads_the_same_weights(random_inception, tmp_path):
    path = str(tmp_path / "inception.params")
    net = __import__("gluoncv").model_zoo.get_model("inceptionv3", pretrained=False)
    InceptionExtractor._init_random(net, mx.cpu())
    net.save_parameters(path)
    loaded = InceptionExtractor(params_file=path)
    assert loaded.name.startswith("inceptionv3-") and loaded.name != "inceptionv3-random"
    x = np.random.RandomState(13).uniform(-1, 1, size=(1, 3, 16, 16)).astype(np.float32)
    np.testing.assert_allclose(loaded.extract(x)[0], random_inception.extract(x)[0],
                               rtol=1e-4, atol=1e-4)
    with pytest.raises(MetricsError, match="not found"):
        InceptionExtractor(params_file=str(tmp_path / "missing.params"))
    garbage = tmp_path / "garbage.params"
    garbage.write_bytes(b"not mxnet parameters")
    with pytest.raises(MetricsError, match="Invalid NDArray file format") as info:
        InceptionExtractor(params_file=str(garbage))
    assert "\n" not in str(info.value)


def test_pretrained_inception_offline_raises_one_clear_line(tmp_path, monkeypatch):
    from gluoncv.model_zoo import model_store

    def no_network(*args, **kwargs):
        raise RuntimeError("Failed downloading url (offline test)")

    monkeypatch.setenv("MXNET_HOME", str(tmp_path))
    monkeypatch.setattr(model_store, "download", no_network)
    with pytest.raises(MetricsError) as info:
        InceptionExtractor(pretrained=True)
    message = str(info.value)
    assert "\n" not in message
    assert "inceptionv3-%s.params" % model_store.short_hash("inceptionv3") in message
    assert "inceptionv3-a5050dbc.params" in message
    assert os.path.join(str(tmp_path), "models") in message
    assert "--inception-params" in message
    assert metrics.socket.getdefaulttimeout() is None  # the short timeout was restored
