"""Tests for sngan_gluon.metrics: IS, FID, KID, precision/recall and feature statistics."""
import os

import numpy as np
import pytest

import sngan_gluon  # noqa: F401  (makes mxnet importable)
from sngan_gluon.metrics import (FID_PROTOCOLS, FeatureStats, fid_from_stats, frechet_distance,
                                 inception_score, inception_score_of_logits,
                                 kernel_inception_distance, precision_recall_density_coverage)


def is_through_pipeline(probs, splits=10):
    return inception_score(probs, splits=splits)


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


def test_fid_needs_no_regularization_when_the_product_is_singular():
    # diag(1, 4) and diag(9, 0): Tr sqrt(S1 S2) = sqrt(9) + sqrt(0), exactly
    got = frechet_distance(np.zeros(2), np.diag([1.0, 4.0]), np.zeros(2), np.diag([9.0, 0.0]))
    assert got == pytest.approx(1 + 4 + 9 - 2 * 3, rel=1e-12)


def test_fid_of_constant_features_is_squared_mean_distance():
    zero = np.zeros((4, 4))
    assert frechet_distance(np.ones(4), zero, np.zeros(4), zero) == pytest.approx(4.0, abs=1e-4)


def test_fid_rejects_non_psd_and_mismatched_inputs():
    with pytest.raises(ValueError, match="positive semi-definite"):
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


def test_fid_protocols_are_paper_and_50k():
    assert FID_PROTOCOLS["paper"] == dict(num_real=10000, num_fake=5000)
    assert FID_PROTOCOLS["50k"] == dict(num_real=50000, num_fake=50000)


# ---- Inception Score of logits -------------------------------------------------------

def test_is_of_logits_is_is_of_their_softmax_and_shuffles_with_a_seed():
    rng = np.random.RandomState(14)
    logits = rng.normal(size=(50, 6)) * 3
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    assert inception_score_of_logits(logits, 5, shuffle_seed=None) == pytest.approx(
        inception_score(probs, 5))
    shuffled = probs[np.random.RandomState(7).permutation(50)]
    assert inception_score_of_logits(logits, 5, shuffle_seed=7) == pytest.approx(
        inception_score(shuffled, 5))
    assert inception_score_of_logits(logits, 5, 7) != pytest.approx(
        inception_score_of_logits(logits, 5, None))  # the order matters to the splits


# ---- Kernel Inception Distance --------------------------------------------------------

def naive_kid(x, y, subsets, size, seed):
    """The unbiased MMD^2 written out pair by pair."""
    rng, values = np.random.RandomState(seed), []
    for _ in range(subsets):
        a = x[rng.choice(len(x), size, replace=False)]
        b = y[rng.choice(len(y), size, replace=False)]
        k = lambda u, v: (u.dot(v) / x.shape[1] + 1) ** 3  # noqa: E731
        xx = sum(k(a[i], a[j]) for i in range(size) for j in range(size) if i != j)
        yy = sum(k(b[i], b[j]) for i in range(size) for j in range(size) if i != j)
        xy = sum(k(a[i], b[j]) for i in range(size) for j in range(size))
        values.append((xx + yy) / (size * (size - 1)) - 2 * xy / size ** 2)
    return np.mean(values), np.std(values)


def test_kid_equals_the_pairwise_definition():
    rng = np.random.RandomState(15)
    x, y = rng.normal(size=(30, 8)), rng.normal(size=(25, 8)) + 0.3
    got = kernel_inception_distance(x, y, subsets=4, subset_size=6, seed=3)
    np.testing.assert_allclose(got, naive_kid(x, y, 4, 6, 3), rtol=1e-10)


def test_kid_is_near_zero_for_one_distribution_and_grows_with_a_shift():
    rng = np.random.RandomState(16)
    x, y = rng.normal(size=(400, 16)), rng.normal(size=(400, 16))
    same, _ = kernel_inception_distance(x, y, subsets=10, subset_size=100)
    shifted, _ = kernel_inception_distance(x, y + 1.0, subsets=10, subset_size=100)
    assert abs(same) < 0.05 < shifted


def test_kid_refuses_subsets_larger_than_a_set():
    with pytest.raises(ValueError, match="KID subsets of 50"):
        kernel_inception_distance(np.zeros((40, 3)), np.zeros((60, 3)), subset_size=50)


# ---- precision, recall, density, coverage ---------------------------------------------

def test_prdc_equals_the_authors_package():
    prdc = pytest.importorskip("prdc")
    rng = np.random.RandomState(17)
    real = rng.normal(size=(120, 10))
    fake = rng.normal(size=(90, 10)) * 1.3 + 0.4
    expected = prdc.compute_prdc(real, fake, nearest_k=5)
    got = precision_recall_density_coverage(real, fake, nearest_k=5, block=37)  # uneven blocks
    for key in ("precision", "recall", "density", "coverage"):
        assert got[key] == pytest.approx(float(expected[key]), abs=1e-12), key


def test_prdc_of_a_set_against_itself_is_perfect_and_of_a_far_set_is_zero():
    x = np.random.RandomState(18).normal(size=(60, 4))
    same = precision_recall_density_coverage(x, x.copy())
    assert same["precision"] == same["recall"] == same["coverage"] == 1.0
    far = precision_recall_density_coverage(x, x + 100.0)
    assert far == {"precision": 0.0, "recall": 0.0, "density": 0.0, "coverage": 0.0}
    with pytest.raises(ValueError, match="more than 5"):
        precision_recall_density_coverage(x[:5], x)
