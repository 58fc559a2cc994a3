"""Inception Score, Frechet Inception Distance and the Inception-v3 feature network.

* :func:`inception_score` -- Salimans et al., "Improved Techniques for Training
  GANs", NeurIPS 2016, Sec. 4: ``exp(E_x KL(p(y|x) || p(y)))`` over splits.
* :func:`frechet_distance` -- Heusel et al., "GANs Trained by a Two Time-Scale
  Update Rule Converge to a Local Nash Equilibrium", NeurIPS 2017, Sec. 4:
  ``||mu1 - mu2||^2 + Tr(S1 + S2 - 2 (S1 S2)^(1/2))``.
* :class:`FeatureStats` -- running float64 sums of features, so the mean and
  covariance of 50k images never need all features in memory.
* :class:`InceptionExtractor` -- gluoncv's ``inceptionv3``: 2048-d pool
  features and 1000-way softmax probabilities of NCHW images in [-1, 1].

Images are streamed in batches (:func:`compute_statistics`). The softmax
probabilities are kept whole, ``(N, 1000)`` float32 (200 MB for 50k images),
because the Inception Score needs the per-split marginals and the split sizes
are only known once ``N`` is; the features are reduced on the fly.

Scores computed with gluoncv's Inception-v3 are comparable among themselves,
not digit for digit with papers that used the TensorFlow Inception graph
(1008 classes, different weights and resizing); see :data:`FID_PROTOCOLS`.
"""
import hashlib
import logging
import os
import socket
import tempfile
import zipfile

import mxnet as mx
import numpy as np
from mxnet import gluon, nd
from scipy import linalg
from scipy.special import rel_entr

__all__ = ["MetricsError", "inception_score", "frechet_distance", "FeatureStats",
           "fid_from_stats", "InceptionExtractor", "compute_statistics", "generator_batches",
           "real_statistics", "FID_PROTOCOLS"]

_LOG = logging.getLogger(__name__)

FID_PROTOCOLS = {
    "paper": dict(num_real=10000, num_fake=5000),
    "50k": dict(num_real=50000, num_fake=50000),
}
"""Image counts (real, generated) of the two common FID protocols.

FID is biased upwards for small samples, so published numbers differ mostly by
protocol, not by model. The SN-GAN paper (Miyato et al., ICLR 2018, Sec. 4)
used 10k real and 5k generated images (``'paper'``): 21.7 for its ResNet
CIFAR-10 model; later work mostly uses 50k / 50k (``'50k'``), which gives about
15 for the same model. Scores from gluoncv's Inception-v3 (used here) are
comparable among themselves but not digit for digit with papers that used the
TensorFlow Inception graph.
"""

# Per-split KL of a whole split must not be trusted if the rows are not
# distributions (e.g. logits passed by mistake); float32 softmax rows sum to 1
# within ~1e-6, so this leaves ample room.
_ROW_SUM_TOL = 1e-3

# Largest imaginary part on the diagonal of sqrtm(S1 S2) dropped as rounding noise
# (the value pytorch-fid and the TTUR reference code use).
_MAX_IMAG = 1e-3

_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)
_INPUT_SIZE = 299
# Per socket operation, not for the whole download: a real 95 MB download is
# unaffected, a machine without network fails in seconds instead of hanging.
_DOWNLOAD_SOCKET_TIMEOUT = 10.0


class MetricsError(RuntimeError):
    """A metric cannot be computed for a reason the user can fix (weights, cache files)."""


def _first_line(err):
    """One line of an exception's message: the first, or the last after an MXNet C++ traceback."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    if not lines:
        return type(err).__name__
    if lines[0].startswith("Traceback"):
        return lines[-1].replace("MXNetError: ", "", 1)
    return lines[0]


def inception_score(probs, splits=10):
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
    scores = []
    for i in range(splits):
        part = probs[i * n // splits:(i + 1) * n // splits]
        marginal = part.mean(axis=0, keepdims=True)
        kl = rel_entr(part, marginal).sum(axis=1)
        scores.append(np.exp(kl.mean()))
    return float(np.mean(scores)), float(np.std(scores))


def frechet_distance(mu1, sigma1, mu2, sigma2, eps=1e-6):
    """Frechet distance between N(mu1, sigma1) and N(mu2, sigma2) (Heusel et al. 2017).

    ``||mu1 - mu2||^2 + Tr(sigma1 + sigma2 - 2 sqrtm(sigma1 sigma2))``. When the
    product's square root is not finite or has an imaginary diagonal part above
    1e-3 (a near-singular product, e.g. fewer samples than dimensions), ``eps * I``
    is added to both covariances and the root taken again; the small imaginary
    part that rounding leaves is dropped.

    Parameters
    ----------
    mu1, mu2 : array-like, (D,)
        Means.
    sigma1, sigma2 : array-like, (D, D)
        Covariances (symmetric positive semi-definite).
    eps : float
        Diagonal offset used for the retry.

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
    diff = mu1 - mu2
    covmean, imag = _sqrtm_product(sigma1, sigma2)
    if covmean is None or imag > _MAX_IMAG:
        # Near-singular product (e.g. fewer samples than dimensions): regularize, retry.
        offset = np.eye(d) * eps
        covmean, imag = _sqrtm_product(sigma1 + offset, sigma2 + offset)
        if covmean is None:
            raise ValueError("frechet_distance: the covariance product has no finite square "
                             "root even with eps=%g on the diagonal" % eps)
        if imag > _MAX_IMAG:
            raise ValueError("frechet_distance: sqrtm(sigma1 sigma2) has an imaginary component "
                             "of %.3g; are both covariances positive semi-definite?" % imag)
    return float(diff.dot(diff) + np.trace(sigma1) + np.trace(sigma2) - 2.0 * np.trace(covmean))


def _sqrtm_product(sigma1, sigma2):
    """Real part of sqrtm(sigma1 sigma2) (None if not finite) and its largest diagonal |imag|."""
    with np.errstate(invalid="ignore", divide="ignore"):  # scipy's error estimate of a 0 matrix
        covmean, _ = linalg.sqrtm(sigma1.dot(sigma2), disp=False)
    if not np.isfinite(covmean).all():
        return None, np.inf
    if np.iscomplexobj(covmean):
        # Rounding leaves tiny imaginary parts; a large one means a near-singular or non-PSD input.
        return covmean.real, float(np.abs(np.diagonal(covmean).imag).max())
    return covmean, 0.0


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
        """Add a batch of features, ``(N, D)`` (numpy or NDArray, any float dtype)."""
        if isinstance(features, nd.NDArray):
            features = features.asnumpy()
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
        folder = os.path.dirname(os.path.abspath(path))
        os.makedirs(folder, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".npz", dir=folder)
        try:
            with os.fdopen(fd, "wb") as f:  # a file object: np.savez adds no suffix
                np.savez(f, mu=self.mean, sigma=self.cov, n=np.int64(self.n))
            os.replace(tmp, path)
        except BaseException:
            if os.path.exists(tmp):
                os.remove(tmp)
            raise

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
                               % (path, _first_line(err))) from err
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


class _InceptionHead(gluon.HybridBlock):
    """Normalize, resize to 299 and run Inception-v3 as one hybridized graph.

    Inputs: ``x (N, 3, H, W)`` in [-1, 1]. Outputs: ``features (N, 2048)``
    (the input of the final dense layer) and ``probs (N, 1000)`` (its softmax).
    """

    def __init__(self, net, **kwargs):
        super(_InceptionHead, self).__init__(**kwargs)
        self.features = net.features
        self.output = net.output
        # [-1, 1] -> [0, 1] -> ImageNet normalization, folded into one scale and offset.
        std = np.array(_IMAGENET_STD, np.float32).reshape(1, 3, 1, 1)
        mean = np.array(_IMAGENET_MEAN, np.float32).reshape(1, 3, 1, 1)
        self.scale = self.params.get_constant("scale", 0.5 / std)
        self.offset = self.params.get_constant("offset", (0.5 - mean) / std)

    def hybrid_forward(self, F, x, scale, offset):
        x = F.broadcast_add(F.broadcast_mul(F.clip(x, -1.0, 1.0), scale), offset)
        # align_corners=False samples pixel centres, as torch/pytorch-fid resizing does.
        x = F.contrib.BilinearResize2D(x, height=_INPUT_SIZE, width=_INPUT_SIZE,
                                       align_corners=False)
        features = F.flatten(self.features(x))  # AvgPool output (N, 2048, 1, 1)
        return features, F.softmax(self.output(features), axis=-1)


class InceptionExtractor(object):
    """Inception-v3 pool features and class probabilities of generated or real images.

    Wraps ``gluoncv.model_zoo.get_model('inceptionv3')`` (ImageNet, 1000 classes).

    Parameters
    ----------
    params_file : str or None
        Local gluoncv ``inceptionv3`` weights (``--inception-params``); used
        instead of the model store when given.
    pretrained : bool
        Fetch gluoncv's ImageNet weights from its model store (downloading them
        if absent). ``False`` gives deterministic random weights: for tests only,
        their scores mean nothing.
    ctx : mxnet.Context
        Where the network runs.
    batch_size : int
        Images per forward pass; larger inputs are split.
    root : str or None
        gluoncv model store folder (default ``~/.mxnet/models``; gluoncv itself
        replaces it with ``$MXNET_HOME/models`` when ``MXNET_HOME`` is set).

    Attributes
    ----------
    name : str
        Identifies the weights, for cache file names: ``inceptionv3`` for
        gluoncv's, ``inceptionv3-<sha1[:8]>`` for another file, ``inceptionv3-random``.
    """

    def __init__(self, params_file=None, pretrained=True, ctx=mx.cpu(), batch_size=100,
                 root=None):
        from gluoncv.model_zoo import get_model, model_store
        if int(batch_size) < 1:
            raise ValueError("batch_size must be positive, got %r" % (batch_size,))
        self.ctx = ctx
        self.batch_size = int(batch_size)
        net = get_model("inceptionv3", pretrained=False)
        if params_file is not None:
            self.name = self._load(net, params_file, ctx)
        elif pretrained:
            self.name = self._load(net, self._store_file(model_store, root), ctx)
        else:
            self._init_random(net, ctx)
            self.name = "inceptionv3-random"
        self._head = _InceptionHead(net)
        self._head.params.initialize(ctx=ctx)  # its own two constants; the net is loaded
        self._head.hybridize(static_alloc=True)

    @staticmethod
    def _store_file(model_store, root):
        """Path of gluoncv's weights in its store, or MetricsError saying where to put them."""
        file_name = "inceptionv3-%s.params" % model_store.short_hash("inceptionv3")
        root = root or os.path.join("~", ".mxnet", "models")
        if "MXNET_HOME" in os.environ:  # gluoncv's rule (model_store.get_model_file)
            root = os.path.join(os.environ["MXNET_HOME"], "models")
        folder = os.path.expanduser(root)
        previous = socket.getdefaulttimeout()
        socket.setdefaulttimeout(_DOWNLOAD_SOCKET_TIMEOUT)
        try:
            return model_store.get_model_file("inceptionv3", root=root)
        except (OSError, RuntimeError, ValueError, zipfile.BadZipFile) as err:
            raise MetricsError(
                "Inception-v3 weights are missing: put gluoncv's %s in %s (gluoncv's model store; "
                "$MXNET_HOME/models when MXNET_HOME is set) or pass --inception-params FILE to "
                "load a local copy (download failed: %s)"
                % (file_name, folder, _first_line(err)[:160])) from err
        finally:
            socket.setdefaulttimeout(previous)

    @staticmethod
    def _load(net, path, ctx):
        """Load ``path`` into ``net``; returns the extractor name for these weights."""
        from gluoncv.model_zoo.model_store import short_hash
        if not os.path.isfile(path):
            raise MetricsError("Inception-v3 weights file not found: %s" % path)
        try:
            net.load_parameters(path, ctx=ctx)
        except (mx.MXNetError, AssertionError, ValueError, OSError) as err:
            raise MetricsError("cannot load Inception-v3 weights from %s (expected gluoncv's "
                               "inceptionv3 .params): %s" % (path, _first_line(err))) from err
        sha1 = hashlib.sha1()
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                sha1.update(chunk)
        tag = sha1.hexdigest()[:8]  # gluoncv names its files by this prefix too
        return "inceptionv3" if tag == short_hash("inceptionv3") else "inceptionv3-%s" % tag

    @staticmethod
    def _init_random(net, ctx, seed=0):
        # mx.random would change the caller's global RNG; fill from a local one instead.
        net.initialize(ctx=ctx)
        net(nd.zeros((1, 3, _INPUT_SIZE, _INPUT_SIZE), ctx=ctx))  # finish deferred shapes
        rng = np.random.RandomState(seed)
        for name, param in sorted(net.collect_params().items()):
            shape = param.shape
            if name.endswith("weight") and len(shape) >= 2:  # conv/dense: He-normal
                fan_in = int(np.prod(shape[1:]))
                value = rng.normal(0.0, np.sqrt(2.0 / fan_in), size=shape)
                param.set_data(nd.array(value.astype(np.float32), ctx=ctx))

    def extract(self, images):
        """Features and class probabilities of a batch of images.

        Parameters
        ----------
        images : NDArray or numpy.ndarray, (N, C, H, W)
            Float images in [-1, 1]; C is 1 (tiled to RGB) or 3; any H, W
            (bilinearly resized to 299x299).

        Returns
        -------
        features : numpy.ndarray, (N, 2048) float32
            Pool features (input of the final dense layer).
        probs : numpy.ndarray, (N, 1000) float32
            Softmax class probabilities.
        """
        if len(images.shape) != 4 or images.shape[1] not in (1, 3):
            raise ValueError("images must be (N, C, H, W) with C = 1 or 3, got %s"
                             % (tuple(images.shape),))
        features, probs = [], []
        for start in range(0, images.shape[0], self.batch_size):
            chunk = images[start:start + self.batch_size]
            if isinstance(chunk, nd.NDArray):
                x = chunk.astype(np.float32, copy=False).as_in_context(self.ctx)
            else:
                x = nd.array(np.asarray(chunk, np.float32), ctx=self.ctx)
            if x.shape[1] == 1:
                x = nd.tile(x, reps=(1, 3, 1, 1))
            f, p = self._head(x)
            features.append(f.asnumpy())
            probs.append(p.asnumpy())
        if not features:
            return np.zeros((0, 2048), np.float32), np.zeros((0, 1000), np.float32)
        return np.concatenate(features), np.concatenate(probs)

    __call__ = extract


def compute_statistics(batches, extractor):
    """Feature statistics and class probabilities of a stream of image batches.

    Parameters
    ----------
    batches : iterable of NDArray or numpy.ndarray, each (n, C, H, W) in [-1, 1]
    extractor : object
        Has ``extract(images) -> (features (n, D), probs (n, K))``, e.g.
        :class:`InceptionExtractor`.

    Returns
    -------
    stats : FeatureStats
        Of all features.
    probs : numpy.ndarray, (N, K) float32
        All probabilities, in order (for :func:`inception_score`).
    """
    stats, probs = FeatureStats(), []
    for batch in batches:
        features, p = extractor.extract(batch)
        stats.update(features)
        probs.append(np.asarray(p, np.float32))
    if not probs:
        raise ValueError("compute_statistics got no images")
    return stats, np.concatenate(probs)


def generator_batches(sample_fn, num, batch_size):
    """Yield ``num`` images from ``sample_fn`` in batches of at most ``batch_size``.

    Parameters
    ----------
    sample_fn : callable
        ``sample_fn(n) -> (n, C, H, W)`` images in [-1, 1] (NDArray or numpy).
    num : int
        Total number of images.
    batch_size : int

    Yields
    ------
    (n, C, H, W) batches, ``n = batch_size`` except perhaps the last.
    """
    if int(batch_size) < 1 or int(num) < 0:
        raise ValueError("need num >= 0 and batch_size >= 1, got num=%r, batch_size=%r"
                         % (num, batch_size))
    done = 0
    while done < num:
        n = min(int(batch_size), num - done)
        batch = sample_fn(n)
        if batch.shape[0] != n:
            raise ValueError("sample_fn(%d) returned %d images" % (n, batch.shape[0]))
        yield batch
        done += n


def real_statistics(dataset_batches, cache_path, extractor):
    """Feature statistics of real images, cached in ``cache_path`` (``.npz``).

    A readable cache (with ``mu`` and ``sigma``) is returned without touching
    ``dataset_batches``; a missing or corrupt one is (re)computed from them and
    written atomically (temporary file + ``os.replace``).

    Parameters
    ----------
    dataset_batches : iterable of (n, C, H, W) image batches in [-1, 1]
        Consumed only when the cache must be computed.
    cache_path : str
    extractor : object with ``extract`` (see :func:`compute_statistics`)

    Returns
    -------
    FeatureStats
    """
    if os.path.exists(cache_path):
        try:
            return FeatureStats.load(cache_path)
        except MetricsError as err:
            _LOG.warning("%s; recomputing it", err)
    stats, _ = compute_statistics(dataset_batches, extractor)
    stats.save(cache_path)
    return stats
