"""The scores of generated images: IS, FID, KID, precision/recall/density/coverage.

Pure functions of features or logits (numpy); the networks that produce them
are in :mod:`sngan_gluon.feature_nets`, the streaming over images in
:mod:`sngan_gluon.evaluation`. Each follows torch-fidelity 0.4 (the reference
the equality tests compare against) where it defines a protocol choice.

* :func:`inception_score` -- Salimans et al., "Improved Techniques for Training
  GANs", NeurIPS 2016, Sec. 4: ``exp(E_x KL(p(y|x) || p(y)))`` over splits.
* :func:`frechet_distance` -- Heusel et al., "GANs Trained by a Two Time-Scale
  Update Rule Converge to a Local Nash Equilibrium", NeurIPS 2017, Sec. 4:
  ``||mu1 - mu2||^2 + Tr(S1 + S2 - 2 (S1 S2)^(1/2))``.
* :func:`kernel_inception_distance` -- Binkowski et al., "Demystifying MMD
  GANs", ICLR 2018, Sec. 4: unbiased MMD^2 with the kernel
  ``(x.y / d + 1)^3``, averaged over random subsets.
* :func:`precision_recall_density_coverage` -- Naeem et al., "Reliable Fidelity
  and Diversity Metrics for Generative Models", ICML 2020: k-nearest-neighbour
  balls in feature space.
* :class:`FeatureStats` -- running float64 sums of features, so the mean and
  covariance of 50k images never need all features at once.
"""
import zipfile

import numpy as np
from scipy.special import log_softmax, rel_entr

from .errors import UserError
from .fileio import atomic_path, error_summary

__all__ = ["MetricsError", "inception_score", "inception_score_of_logits", "frechet_distance",
           "kernel_inception_distance", "precision_recall_density_coverage", "FeatureStats",
           "fid_from_stats", "FID_PROTOCOLS"]

FID_PROTOCOLS = {
    "paper": dict(num_real=10000, num_fake=5000),
    "50k": dict(num_real=50000, num_fake=50000),
}
"""Image counts (real, generated) of the two common protocols.

FID is biased upwards for small samples, so published numbers differ mostly by
protocol, not by model. The SN-GAN paper (Miyato et al., ICLR 2018, Sec. 4)
compared 5k generated images with 10k images of the CIFAR-10 training set
(``'paper'``): FID 21.7 for its ResNet model; later work mostly uses 50k / 50k
(``'50k'``), which gives about 15 for the same model. Both with TensorFlow's
Inception graph (``--feature-net tf-inception``).
"""

# Per-split KL of a whole split must not be trusted if the rows are not
# distributions (e.g. logits passed by mistake); float32 softmax rows sum to 1
# within ~1e-6, so this leaves ample room.
_ROW_SUM_TOL = 1e-3

# An eigenvalue of S1 S2 below -this * the largest is not rounding noise: the
# covariances are not positive semi-definite.
_NEGATIVE_EIG_TOL = 1e-6

# torch-fidelity's seed for the Inception Score's shuffle and the KID subsets.
REFERENCE_SEED = 2020


class MetricsError(UserError, RuntimeError):
    """A metric cannot be computed for a reason the user can fix (weights, cache files)."""


def inception_score(probs, splits=10, shuffle_seed=None):
    """Inception Score of class probabilities (Salimans et al. 2016, Sec. 4).

    For each of ``splits`` consecutive, equal parts of the rows,
    ``IS = exp(mean_x KL(p(y|x) || p(y)))`` with ``p(y)`` the part's mean row;
    ``0 * log 0`` counts as 0, so one-hot rows are fine.

    Parameters
    ----------
    probs : array-like, (N, K)
        Softmax outputs; every row sums to 1. ``N >= splits``.
    splits : int
        Number of parts (10 in the paper and in the SN-GAN evaluation).
    shuffle_seed : int or None
        Permute the rows with ``numpy.random.RandomState(seed).permutation``
        before splitting, as torch-fidelity does (seed 2020); None keeps the order.

    Returns
    -------
    (float, float)
        Mean and standard deviation (ddof=0) of the score over the splits.
        1 means every prediction equals the marginal; K is the maximum.
    """
    probs = np.asarray(probs, dtype=np.float64)
    if probs.ndim != 2:
        raise ValueError("probs must have shape (N, K), got %s" % (probs.shape,))
    splits = int(splits)
    if splits < 1 or len(probs) < splits:
        raise ValueError("need 1 <= splits <= N, got splits=%d for N=%d" % (splits, len(probs)))
    if (probs < 0).any() or not np.allclose(probs.sum(axis=1), 1.0, atol=_ROW_SUM_TOL):
        raise ValueError("probs rows must be probability distributions (softmax outputs, "
                         "non-negative and summing to 1), not logits")
    n = len(probs)
    if shuffle_seed is not None:
        probs = probs[np.random.RandomState(shuffle_seed).permutation(n)]
    scores = []
    for i in range(splits):
        part = probs[i * n // splits:(i + 1) * n // splits]
        marginal = part.mean(axis=0, keepdims=True)
        kl = rel_entr(part, marginal).sum(axis=1)
        scores.append(np.exp(kl.mean()))
    return float(np.mean(scores)), float(np.std(scores))


def inception_score_of_logits(logits, splits=10, shuffle_seed=REFERENCE_SEED):
    """:func:`inception_score` of the softmax of ``logits (N, K)``, in float64.

    With the TF Inception's unbiased logits and the default seed this is
    torch-fidelity's Inception Score.
    """
    logits = np.asarray(logits, dtype=np.float64)
    if logits.ndim != 2:
        raise ValueError("logits must have shape (N, K), got %s" % (logits.shape,))
    return inception_score(np.exp(log_softmax(logits, axis=1)), splits, shuffle_seed)


def frechet_distance(mu1, sigma1, mu2, sigma2):
    """Frechet distance between N(mu1, sigma1) and N(mu2, sigma2) (Heusel et al. 2017).

    ``||mu1 - mu2||^2 + Tr(sigma1) + Tr(sigma2) - 2 Tr(sqrtm(sigma1 sigma2))``. The
    last trace is the sum of the square roots of the eigenvalues of
    ``sigma1 sigma2`` (real and non-negative for PSD covariances), as
    torch-fidelity computes it: unlike ``scipy.linalg.sqrtm`` it needs no
    regularization when the product is singular (fewer samples than
    dimensions); rounding noise below zero counts as zero.

    Parameters
    ----------
    mu1, mu2 : array-like, (D,)
        Means.
    sigma1, sigma2 : array-like, (D, D)
        Covariances (symmetric positive semi-definite).

    Returns
    -------
    float
        The distance; finite, or a ValueError is raised.
    """
    mu1, mu2 = (np.atleast_1d(np.asarray(m, np.float64)) for m in (mu1, mu2))
    sigma1, sigma2 = (np.atleast_2d(np.asarray(s, np.float64)) for s in (sigma1, sigma2))
    d = mu1.shape[0]
    if mu1.shape != (d,) or mu2.shape != (d,) or sigma1.shape != (d, d) or sigma2.shape != (d, d):
        raise ValueError("frechet_distance needs means (D,) and covariances (D, D) of one D; got "
                         "mu1 %s, sigma1 %s, mu2 %s, sigma2 %s"
                         % (mu1.shape, sigma1.shape, mu2.shape, sigma2.shape))
    for name, value in (("mu1", mu1), ("sigma1", sigma1), ("mu2", mu2), ("sigma2", sigma2)):
        if not np.isfinite(value).all():
            raise ValueError("frechet_distance: %s contains NaN or inf" % name)
    eigenvalues = np.linalg.eigvals(sigma1.dot(sigma2))
    largest = max(1.0, float(np.abs(eigenvalues).max()))
    if eigenvalues.real.min() < -_NEGATIVE_EIG_TOL * largest:
        raise ValueError("frechet_distance: sigma1 sigma2 has the eigenvalue %.3g; are both "
                         "covariances positive semi-definite?" % eigenvalues.real.min())
    tr_covmean = np.sqrt(eigenvalues.astype(np.complex128)).real.sum()
    diff = mu1 - mu2
    return float(diff.dot(diff) + np.trace(sigma1) + np.trace(sigma2) - 2.0 * tr_covmean)


def _polynomial_mmd2(x, y):
    """Unbiased MMD^2 of two equal-size samples under ``k(a, b) = (a.b / d + 1)^3``."""
    m, d = x.shape
    k_xx = (x.dot(x.T) / d + 1.0) ** 3
    k_yy = (y.dot(y.T) / d + 1.0) ** 3
    k_xy = (x.dot(y.T) / d + 1.0) ** 3
    within = (k_xx.sum() - np.trace(k_xx) + k_yy.sum() - np.trace(k_yy)) / (m * (m - 1))
    return within - 2.0 * k_xy.sum() / (m * m)


def kernel_inception_distance(features1, features2, subsets=100, subset_size=1000,
                              seed=REFERENCE_SEED):
    """Kernel Inception Distance (Binkowski et al. 2018), as torch-fidelity computes it.

    The unbiased MMD^2 between ``subsets`` pairs of random subsets (drawn
    without replacement, ``features1``'s first in each pair, from one
    ``RandomState(seed)``) under the cubic polynomial kernel
    ``(x.y / d + 1)^3``; mean and standard deviation over the pairs. Unbiased:
    slightly negative values mean the two sets are alike.

    Parameters
    ----------
    features1, features2 : array-like, (N1, D), (N2, D)
        Generated and real features (torch-fidelity's input1 and input2).
    subsets : int
    subset_size : int
        At most ``min(N1, N2)``; at least 2.
    seed : int

    Returns
    -------
    (float, float)
        Mean and standard deviation (ddof=0) over the subsets.
    """
    x = np.asarray(features1, dtype=np.float64)
    y = np.asarray(features2, dtype=np.float64)
    if x.ndim != 2 or y.ndim != 2 or x.shape[1] != y.shape[1]:
        raise ValueError("KID needs features (N1, D) and (N2, D), got %s and %s"
                         % (x.shape, y.shape))
    subset_size = int(subset_size)
    if subset_size < 2 or subset_size > min(len(x), len(y)):
        raise ValueError("KID subsets of %d images need 2 <= size <= the smaller set, which has "
                         "%d images" % (subset_size, min(len(x), len(y))))
    rng = np.random.RandomState(seed)
    mmds = np.zeros(int(subsets))
    for i in range(len(mmds)):
        a = x[rng.choice(len(x), subset_size, replace=False)]
        b = y[rng.choice(len(y), subset_size, replace=False)]
        mmds[i] = _polynomial_mmd2(a, b)
    return float(mmds.mean()), float(mmds.std())


def _pairwise_distances(a, b):
    """Euclidean distances ``(len(a), len(b))`` via ``|a|^2 + |b|^2 - 2 a.b``, in float64."""
    squared = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * a.dot(b.T)
    return np.sqrt(np.maximum(squared, 0.0))


def _kth_neighbour_distances(x, k, block):
    """Distance of each row of ``x`` to its k-th nearest other row (itself excluded)."""
    radii = np.empty(len(x))
    for start in range(0, len(x), block):
        dist = _pairwise_distances(x[start:start + block], x)
        radii[start:start + block] = np.partition(dist, k, axis=1)[:, k]  # k=0 is the row itself
    return radii


def precision_recall_density_coverage(real, fake, nearest_k=5, block=1000):
    """Precision, recall, density and coverage (Naeem et al. 2020) of ``fake`` against ``real``.

    Each real sample owns a ball reaching its ``nearest_k``-th nearest real
    neighbour. Precision: the share of fake samples inside some real ball;
    density: the mean number of real balls holding a fake sample over
    ``nearest_k``; coverage: the share of real balls holding some fake sample;
    recall: the share of real samples inside some fake ball (the same
    construction on the fake set). Same definitions and strict comparisons as
    the authors' ``prdc`` package; distances are computed ``block`` rows at a
    time, so memory grows with ``block * N``, not ``N^2``.

    Parameters
    ----------
    real, fake : array-like, (N1, D), (N2, D)
        Each with more than ``nearest_k`` rows.
    nearest_k : int
        5 in the paper.

    Returns
    -------
    dict
        ``precision``, ``recall``, ``density``, ``coverage`` (floats).
    """
    real = np.asarray(real, dtype=np.float64)
    fake = np.asarray(fake, dtype=np.float64)
    if min(len(real), len(fake)) <= nearest_k:
        raise ValueError("precision/recall with k=%d need more than %d images in each set, got "
                         "%d real and %d generated" % (nearest_k, nearest_k, len(real), len(fake)))
    real_radii = _kth_neighbour_distances(real, nearest_k, block)
    fake_radii = _kth_neighbour_distances(fake, nearest_k, block)
    in_real_balls = np.zeros(len(fake))          # per fake sample: how many real balls hold it
    recalled, covered = np.zeros(len(real), bool), np.zeros(len(real), bool)
    for start in range(0, len(real), block):
        dist = _pairwise_distances(real[start:start + block], fake)   # (b, N2)
        inside = dist < real_radii[start:start + block, None]
        in_real_balls += inside.sum(axis=0)
        covered[start:start + block] = inside.any(axis=1)
        recalled[start:start + block] = (dist < fake_radii[None, :]).any(axis=1)
    return {"precision": float((in_real_balls > 0).mean()), "recall": float(recalled.mean()),
            "density": float(in_real_balls.mean() / nearest_k),
            "coverage": float(covered.mean())}


class FeatureStats(object):
    """Mean and covariance of features streamed in batches (float64 running sums).

    Keeps the count, the sum ``(D,)`` and the sum of outer products ``(D, D)``
    of the features minus a fixed shift (the first batch's mean), which avoids
    the cancellation of ``E[xx^T] - mu mu^T`` when the mean is large.

    Attributes
    ----------
    n : int
        Number of feature vectors seen.
    mean : numpy.ndarray, (D,)
    cov : numpy.ndarray, (D, D)
        Unbiased (divides by ``n - 1``).
    """

    def __init__(self):
        self.n = 0
        self._shift = None
        self._sum = None
        self._outer = None

    @property
    def dim(self):
        """Feature dimension D, or None before the first update."""
        return None if self._shift is None else self._shift.shape[0]

    def update(self, features):
        """Add a batch of features, ``(N, D)`` (numpy, any float dtype)."""
        x = np.asarray(features, dtype=np.float64)
        if x.ndim != 2:
            raise ValueError("features must have shape (N, D), got %s" % (x.shape,))
        if len(x) == 0:
            return self
        if self._shift is None:
            d = x.shape[1]
            self._shift = x.mean(axis=0)
            self._sum = np.zeros(d)
            self._outer = np.zeros((d, d))
        elif x.shape[1] != self.dim:
            raise ValueError("features have D=%d but this FeatureStats holds D=%d"
                             % (x.shape[1], self.dim))
        x = x - self._shift
        self.n += len(x)
        self._sum += x.sum(axis=0)
        self._outer += x.T.dot(x)
        return self

    @property
    def mean(self):
        """Mean of the features, ``(D,)``."""
        if self.n < 1:
            raise ValueError("FeatureStats is empty: call update() first")
        return self._shift + self._sum / self.n

    @property
    def cov(self):
        """Unbiased covariance of the features, ``(D, D)``; needs at least 2 samples."""
        if self.n < 2:
            raise ValueError("a covariance needs at least 2 feature vectors, got %d" % self.n)
        centered_sum = self._sum / self.n
        return (self._outer - self.n * np.outer(centered_sum, centered_sum)) / (self.n - 1)

    def save(self, path):
        """Write ``mu (D,)``, ``sigma (D, D)``, ``n`` to the ``.npz`` file ``path``, atomically."""
        with atomic_path(path) as tmp, open(tmp, "wb") as f:  # a file object: no suffix added
            np.savez(f, mu=self.mean, sigma=self.cov, n=np.int64(self.n))

    @classmethod
    def load(cls, path):
        """Read a file written by :meth:`save`; the result can be updated further.

        Raises
        ------
        MetricsError
            The file is missing, unreadable or lacks consistent ``mu``/``sigma``.
        """
        try:
            with np.load(path, allow_pickle=False) as data:
                mu = np.asarray(data["mu"], np.float64)
                sigma = np.asarray(data["sigma"], np.float64)
                n = int(data["n"]) if "n" in data.files else 2
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as err:
            raise MetricsError("cannot read feature statistics %s: %s"
                               % (path, error_summary(err))) from err
        d = mu.shape[0] if mu.ndim == 1 else -1
        if d < 1 or sigma.shape != (d, d) or n < 2 or not (np.isfinite(mu).all()
                                                           and np.isfinite(sigma).all()):
            raise MetricsError("feature statistics %s are inconsistent: mu %s, sigma %s, n=%d"
                               % (path, mu.shape, sigma.shape, n))
        stats = cls()
        # With the mean as shift the centred sum is 0 and the outer sum (n-1) sigma.
        stats.n, stats._shift = n, mu
        stats._sum, stats._outer = np.zeros(d), sigma * (n - 1)
        return stats


def fid_from_stats(stats_a, stats_b):
    """FID between two :class:`FeatureStats` (anything with ``mean`` and ``cov``)."""
    return frechet_distance(stats_a.mean, stats_a.cov, stats_b.mean, stats_b.cov)
