"""Inception Score and FID of a generator, with the real statistics cached per dataset.

Glue between :mod:`sngan_gluon.metrics` (the measures and the Inception network),
:mod:`sngan_gluon.data` (the real images) and generators (a training run's or one
restored by :class:`~sngan_gluon.sampling.LoadedGenerator`). Images are streamed
in batches; nothing holds all of them at once.
"""
import os

import numpy as np

from .metrics import (FID_PROTOCOLS, InceptionExtractor, compute_statistics, fid_from_stats,
                      inception_score, real_statistics)
from .sampling import generate_batches


def real_batches(dataset, num, batch_size=100):
    """Up to ``num`` real images of ``dataset`` in batches: float32 NCHW in [-1, 1]."""
    from .data import to_tensor
    num = min(num, len(dataset.images))
    for start in range(0, num, batch_size):
        yield to_tensor(dataset.images[start:min(start + batch_size, num)])


def real_stats_cache_path(data_path, dataset, split, image_size, num, extractor_name):
    """``<data_path>/fid_stats/<dataset>-<split>-<size>px-<num>-<net>.npz``."""
    folder = os.path.join(data_path, "fid_stats")
    return os.path.join(folder, "%s-%s-%dpx-%d-%s.npz"
                        % (dataset, split, image_size, num, extractor_name))


def evaluate_generator(batches, extractor, real_stats, num_fake, splits=10):
    """IS and FID of generated ``batches`` (an iterable of NCHW [-1, 1] image batches).

    Returns a dict: ``is_mean``, ``is_std``, ``fid``, ``num_fake``.
    """
    stats, probs = compute_statistics(batches, extractor)
    is_mean, is_std = inception_score(probs, splits=splits)
    return {"is_mean": float(is_mean), "is_std": float(is_std),
            "fid": float(fid_from_stats(stats, real_stats)), "num_fake": int(len(probs))}


def protocol_sizes(protocol, num=None):
    """(real, fake) image counts of an FID protocol; ``num`` overrides the fake count."""
    if protocol not in FID_PROTOCOLS:
        raise ValueError("unknown FID protocol %r; choose from %s"
                         % (protocol, ", ".join(FID_PROTOCOLS)))
    sizes = FID_PROTOCOLS[protocol]
    return sizes["num_real"], (num if num is not None else sizes["num_fake"])


def training_evaluator(config, extractor=None, protocol="paper"):
    """A callable ``evaluator(trainer) -> dict`` for ``GANTrainer.train(evaluator=...)``.

    It draws ``config.eval_num`` images from the trainer's (EMA) generator and
    returns IS and FID against the training set's cached statistics.
    """
    from .data import get_dataset
    extractor = extractor or InceptionExtractor(params_file=config.inception_params)
    state = {}

    def evaluator(trainer):
        if "real" not in state:
            num_real, _ = protocol_sizes(protocol)
            dataset = trainer.dataset if trainer.dataset is not None else get_dataset(
                config.dataset, root=config.data_path, image_size=config.image_size,
                channels=config.channels, train=True)
            cache = real_stats_cache_path(config.data_path, config.dataset, "train",
                                          trainer.image_size, min(num_real, len(dataset.images)),
                                          getattr(extractor, "name", "inceptionv3"))
            state["real"] = real_statistics(real_batches(dataset, num_real), cache, extractor)
        num = config.eval_num
        fake_batches = generate_batches(trainer.G_ema or trainer.G, num, config.z_dim,
                                        np.random.RandomState(config.seed + 999),
                                        num_classes=trainer.num_classes, ctx=trainer.ctxs[0])
        return evaluate_generator(fake_batches, extractor, state["real"], num)

    return evaluator
