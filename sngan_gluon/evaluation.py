"""Scoring image sets: generated ones (a checkpoint's, a run's, any files) against real ones.

One path serves ``sngan-evaluate`` and training's ``--eval-every``: uint8 RGB
batches ``(n, H, W, 3)`` are streamed through a feature network
(:mod:`sngan_gluon.feature_nets`), and :func:`score_features` turns the
features into IS, FID, KID and precision/recall/density/coverage
(:mod:`sngan_gluon.metrics`). Only features are kept (2048 floats an image),
never all images. Real features of a dataset split are cached per feature
network under ``<data_path>/fid_stats/``. Settings that cannot be scored (no
real set, too few images, two sources) are an :class:`EvaluationError`.
"""
import logging
import os
import zipfile

import numpy as np

from .data import get_dataset, to_uint8
from .errors import UserError
from .feature_nets import get_feature_net
from .fileio import atomic_path, error_summary, user_output
from .image_files import ImageFiles
from .metrics import (FID_PROTOCOLS, REFERENCE_SEED, FeatureStats, fid_from_stats,
                      inception_score_of_logits, kernel_inception_distance,
                      precision_recall_density_coverage)
from .onnx_export import OnnxGenerator
from .sampling import LoadedGenerator, generate_batches

__all__ = ["EvaluationError", "extract_features", "quantized_rgb_batches", "dataset_batches",
           "cached_features", "real_features_cache_path", "protocol_sizes", "score_features",
           "evaluate_images", "dataset_features", "training_evaluator", "SCORE_SETTINGS"]

_LOG = logging.getLogger(__name__)

SCORE_SETTINGS = dict(is_splits=10, kid_subsets=100, kid_subset_size=1000, prdc_k=5,
                      prdc_max=10000)
"""The protocol's fixed choices: IS over 10 splits; KID over 100 subsets of 1000
(torch-fidelity's defaults, smaller sets use subsets of all their images);
precision/recall/density/coverage with k=5 on at most 10k images a set (as
Naeem et al.; their cost grows with the square of the set size)."""

DEFAULT_NUM_GENERATED = 50000
"""Images drawn from a checkpoint for the Inception Score (Salimans et al. used 50k)."""


class EvaluationError(UserError, ValueError):
    """Scores asked for that cannot be computed as asked; the message names the flags."""


def quantized_rgb_batches(float_batches):
    """Generator output, float ``(n, C, H, W)`` in [-1, 1], as uint8 RGB ``(n, H, W, 3)``.

    Quantized as ``sngan-generate`` writes images (``round((x + 1) * 127.5)``), so
    scoring a checkpoint equals scoring its ``.npz``; one channel is repeated.
    """
    for batch in float_batches:
        images = to_uint8(batch)
        if images.shape[3] == 1:
            images = np.repeat(images, 3, axis=3)
        yield images


def dataset_batches(dataset, num, batch_size=100):
    """The first ``num`` images of a :mod:`sngan_gluon.data` dataset, uint8 RGB batches."""
    images = dataset.images[:num]
    for start in range(0, len(images), batch_size):
        batch = images[start:start + batch_size]
        yield np.repeat(batch, 3, axis=3) if batch.shape[3] == 1 else batch


def extract_features(batches, extractor):
    """Features ``(N, 2048)`` and logits ``(N, K)`` (float32) of a stream of uint8 batches."""
    features, logits = [], []
    for batch in batches:
        f, z = extractor.extract(batch)
        features.append(np.asarray(f, np.float32))
        logits.append(np.asarray(z, np.float32))
    if not features:
        raise EvaluationError("no images to score")
    return np.concatenate(features), np.concatenate(logits)


def real_features_cache_path(data_path, dataset, split, image_size, channels, num,
                             extractor_name, part=(0, 1), digest=None):
    """Where the features of real images are cached, named after exactly what it holds.

    ``<data_path>/fid_stats/<dataset>-<split>-<size>px-<channels>ch-<which>-<net>.npz``,
    ``<which>`` being ``first<num>`` of the split, or ``part<i>of<n>-first<num>``
    for the first ``num`` images of shard ``part = (i, n)`` (a distributed rank's),
    followed by ``-<digest>`` (the first 12 hex digits of the shard's
    :attr:`~sngan_gluon.data.ImageDataset.identity` digest) where known, so that
    a changed image folder is another cache.
    """
    index, count = part
    which = ("part%dof%d-" % (index + 1, count) if count > 1 else "") + "first%d" % num
    return os.path.join(data_path, "fid_stats", "%s-%s-%dpx-%dch-%s%s-%s.npz"
                        % (dataset, split, image_size, channels, which,
                           "-" + digest[:12] if digest else "", extractor_name))


def cached_features(batches, cache_path, extractor):
    """Features of ``batches`` (consumed only on a cache miss), cached in ``cache_path``.

    A readable cache is returned as it is; a missing, old (no ``features``) or
    corrupt one is recomputed and written atomically.
    """
    if os.path.exists(cache_path):
        try:
            with np.load(cache_path, allow_pickle=False) as data:
                features = np.asarray(data["features"], np.float32)
            if features.ndim == 2 and len(features) > 1 and np.isfinite(features).all():
                return features
            _LOG.warning("%s holds no usable features; recomputing them", cache_path)
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as err:
            _LOG.warning("cannot read %s (%s); recomputing it", cache_path, error_summary(err))
    features, _ = extract_features(batches, extractor)
    stats = FeatureStats().update(features)
    with user_output(cache_path), atomic_path(cache_path) as tmp, open(tmp, "wb") as f:
        np.savez(f, features=features, mu=stats.mean, sigma=stats.cov, n=np.int64(stats.n))
    return features


def protocol_sizes(protocol):
    """(real, generated) image counts of a protocol of :data:`FID_PROTOCOLS`."""
    if protocol not in FID_PROTOCOLS:
        raise EvaluationError("unknown protocol %r; choose from %s"
                              % (protocol, ", ".join(FID_PROTOCOLS)))
    sizes = FID_PROTOCOLS[protocol]
    return sizes["num_real"], sizes["num_fake"]


def score_features(fake_features, fake_logits, real_features, num_fid=None):
    """All scores of generated features against real ones (:data:`SCORE_SETTINGS`).

    Parameters
    ----------
    fake_features : numpy.ndarray, (N, 2048)
    fake_logits : numpy.ndarray, (N, K)
        The Inception Score uses all N.
    real_features : numpy.ndarray, (R, 2048)
    num_fid : int or None
        FID, KID and precision/recall use the first ``num_fid`` generated images
        (the protocol's count); None: all.

    Returns
    -------
    dict
        ``is_mean``, ``is_std``, ``is_num``, ``fid``, ``kid_mean``, ``kid_std``,
        ``kid_subset_size``, ``precision``, ``recall``, ``density``, ``coverage``,
        ``prdc_k``, ``prdc_num``, ``num_fake``, ``num_real``.
    """
    s = SCORE_SETTINGS
    fake = fake_features[:num_fid] if num_fid else fake_features
    smallest = min(len(fake_logits), len(fake), len(real_features))
    if smallest < max(s["is_splits"], s["prdc_k"] + 1):
        raise EvaluationError("too few images to score: %d generated (%d for FID) and %d real; "
                              "the Inception Score's %d splits need at least %d in each set"
                              % (len(fake_logits), len(fake), len(real_features),
                                 s["is_splits"], s["is_splits"]))
    is_mean, is_std = inception_score_of_logits(fake_logits, s["is_splits"], REFERENCE_SEED)
    subset = min(s["kid_subset_size"], len(fake), len(real_features))
    kid_mean, kid_std = kernel_inception_distance(fake, real_features, s["kid_subsets"], subset)
    prdc_num = min(s["prdc_max"], len(fake), len(real_features))
    result = {"is_mean": is_mean, "is_std": is_std, "is_num": int(len(fake_logits)),
              "fid": fid_from_stats(FeatureStats().update(fake),
                                    FeatureStats().update(real_features)),
              "kid_mean": kid_mean, "kid_std": kid_std, "kid_subset_size": subset,
              "prdc_k": s["prdc_k"], "prdc_num": prdc_num,
              "num_fake": int(len(fake)), "num_real": int(len(real_features))}
    result.update(precision_recall_density_coverage(real_features[:prdc_num], fake[:prdc_num],
                                                    nearest_k=s["prdc_k"]))
    return result


def evaluate_images(fake_batches, real_features, extractor, num_fid=None):
    """:func:`score_features` of streamed uint8 batches, with the feature network's name."""
    features, logits = extract_features(fake_batches, extractor)
    result = score_features(features, logits, real_features, num_fid)
    result["feature_network"] = getattr(extractor, "name", "unknown")
    return result


def dataset_features(dataset, name, root, split, num, extractor, batch_size=100):
    """Features of the first ``num`` images of ``dataset`` (split ``split`` of dataset
    ``name`` under ``root``), cached there; returns ``(features, 'name/split')``."""
    num = min(num, len(dataset.images))
    identity = getattr(dataset, "identity", None) or {}
    cache = real_features_cache_path(root, name, split, dataset.image_size, dataset.channels,
                                     num, getattr(extractor, "name", "unknown"),
                                     getattr(dataset, "part", (0, 1)), identity.get("digest"))
    features = cached_features(dataset_batches(dataset, num, batch_size), cache, extractor)
    return features, "%s/%s" % (name, split)


def training_evaluator(config, extractor=None, protocol="paper", feature_net=None):
    """A callable ``evaluator(trainer) -> dict`` for ``GANTrainer.train(evaluator=...)``.

    It draws ``config.eval_num`` images from the trainer's (EMA) generator and
    scores them with :func:`evaluate_images` against the protocol's count of
    training images, whose features are cached. ``feature_net`` (default:
    ``config.feature_net``) and
    ``config.feature_net_params`` choose the network unless ``extractor`` is given;
    it is loaded at once (a MetricsError if its weights are missing).
    """
    # Built now, not at the first evaluation: missing weights stop the run before training.
    net = feature_net or config.feature_net
    state = {"extractor": extractor or get_feature_net(net, config.feature_net_params)}

    def evaluator(trainer):
        if "real" not in state:
            state["real"], _ = dataset_features(
                trainer.dataset, config.dataset, config.data_path, "train",
                protocol_sizes(protocol)[0], state["extractor"])
        fake = generate_batches(trainer.G_ema or trainer.G, config.eval_num, config.z_dim,
                                np.random.RandomState(config.seed + 999),
                                num_classes=trainer.num_classes, ctx=trainer.ctxs[0])
        return evaluate_images(quantized_rgb_batches(fake), state["real"], state["extractor"])

    return evaluator


def _generated_source(checkpoint, images, num, seed, ema, ctx, batch_size, generator=None):
    """(uint8 batches, count, description dict, the generator or None) of the scored images."""
    if generator is not None:  # an exported generator: the same draws as its checkpoint's
        gen = OnnxGenerator(generator)
        return gen.rgb_batches(num, seed=seed, batch_size=batch_size), num, {
            "generator": generator, "iteration": gen.iteration, "ema": gen.ema}, gen
    if images is not None:
        files = ImageFiles(images)
        count = len(files) if num is None else min(num, len(files))
        return files.batches(count, batch_size), count, {"images": images}, None
    gen = LoadedGenerator(checkpoint, ctx=ctx, use_ema=ema)
    batches = quantized_rgb_batches(gen.generate(num, seed=seed, batch_size=batch_size))
    return batches, num, {"checkpoint": gen.path, "iteration": gen.iteration,
                          "ema": gen.ema}, gen


def _real_features(real, dataset, split, data_path, num_real, gen, extractor, batch_size):
    """Features of the real set (a file source, or a dataset split, cached) and its label."""
    if real is not None:
        features, _ = extract_features(ImageFiles(real).batches(num_real, batch_size), extractor)
        return features, real
    if dataset is None and gen is None:
        raise EvaluationError("--images needs a real set to compare with: --real DIR_OR_NPZ "
                              "or --dataset NAME")
    name = dataset or gen.config["dataset"]
    root = data_path or (gen.config.get("data_path", "data") if gen is not None else "data")
    size = gen.image_size if gen is not None else None
    data = get_dataset(name, root=root, image_size=size, channels=3, train=split == "train")
    return dataset_features(data, name, root, split, num_real, extractor, batch_size)


def evaluate(checkpoint=None, images=None, real=None, dataset=None, split="train",
             data_path=None, num=None, protocol="paper", feature_net="tf-inception",
             feature_net_params=None, batch_size=100, seed=0, ema=True, ctx=None,
             extractor=None, generator=None):
    """Score a checkpoint's samples or image files against a real set (``sngan-evaluate``).

    Parameters
    ----------
    checkpoint, images, generator : str
        Exactly one: a run or checkpoint folder (``num`` samples, default 50000,
        drawn with ``seed``, EMA weights if ``ema`` and kept), a folder /
        ``.npz`` of images (all of them, or the first ``num``), or an ONNX file
        of ``sngan-export`` (run by onnxruntime, noise drawn as from the
        checkpoint it came from).
    real, dataset : str or None
        The real set: a folder / ``.npz``, or a dataset name (default: the
        checkpoint's) whose ``split`` under ``data_path`` is cached.
    protocol : str
        ``paper`` (5k generated for FID/KID/precision-recall, 10k real) or ``50k``.
    feature_net, feature_net_params :
        See :func:`sngan_gluon.feature_nets.get_feature_net`; ``extractor``
        replaces the network (tests).

    Returns
    -------
    dict
        :func:`score_features`' scores plus ``protocol``, ``real_set``,
        ``feature_network`` and where the images came from.
    """
    if sum(x is not None for x in (checkpoint, images, generator)) != 1:
        raise EvaluationError("give exactly one of --checkpoint, --images and --generator")
    if (num is not None and num <= 0) or batch_size <= 0:
        raise EvaluationError("--num and --batch-size must be positive")
    num_real, num_fid = protocol_sizes(protocol)
    if num is None and images is None:
        num = DEFAULT_NUM_GENERATED
    fake, count, source, gen = _generated_source(checkpoint, images, num, seed, ema, ctx,
                                                 batch_size, generator)
    extractor = extractor or get_feature_net(feature_net, feature_net_params, ctx, batch_size)
    real_features, real_set = _real_features(real, dataset, split, data_path, num_real, gen,
                                             extractor, batch_size)
    result = evaluate_images(fake, real_features, extractor, min(num_fid, count))
    result.update(source)
    result.update(protocol=protocol, real_set=real_set)
    return result
