"""How fast are the feature networks and the scores on this machine?

Prints

* images/s of feature extraction at ``--batch-size`` (default 100) for
  ``--image-size`` (default 32) uint8 images resized to 299x299, for the TF
  Inception (the default network of ``sngan-evaluate``) and gluoncv's
  Inception-v3, timed batch by batch in alternation so that both see the same
  machine load; their ratio; and what 50,000 images would take. The weights
  are random (downloads are not needed) but the arithmetic is the same;
* the time of each score on feature sets of the ``paper`` protocol (5k
  generated, 10k real, 2048-d): FID (covariances and eigenvalues), KID (100
  subsets of 1000) and precision/recall/density/coverage (k=5).

    python benchmarks/metrics_speed.py [--batch-size 100] [--batches 2]
"""
import argparse
import time

import numpy as np

import sngan_gluon  # noqa: F401
import mxnet as mx

from sngan_gluon.feature_nets import GluonCVInceptionExtractor, TFInceptionExtractor
from sngan_gluon.metrics import (FeatureStats, fid_from_stats, kernel_inception_distance,
                                 precision_recall_density_coverage)


def time_networks(args):
    nets = {"tf-inception": TFInceptionExtractor(pretrained=False, batch_size=args.batch_size),
            "gluoncv": GluonCVInceptionExtractor(pretrained=False, batch_size=args.batch_size)}
    rng = np.random.RandomState(0)
    images = rng.randint(0, 256, size=(args.batch_size, args.image_size, args.image_size, 3))
    images = images.astype(np.uint8)
    for net in nets.values():
        net.extract(images)  # warm-up: graph building and oneDNN primitive creation
    seconds = {name: 0.0 for name in nets}
    for i in range(args.batches):
        order = list(nets.items())[::1 if i % 2 == 0 else -1]
        for name, net in order:  # alternate, first one then the other first: same load
            start = time.time()
            features, _ = net.extract(images)
            seconds[name] += time.time() - start
            assert features.shape == (args.batch_size, 2048)
    rates = {name: args.batches * args.batch_size / s for name, s in seconds.items()}
    for name, rate in rates.items():
        print("%-12s batch %d of %dx%d uint8 images -> 299x299: %6.2f images/s "
              "(50,000 images: %.0f min)" % (name, args.batch_size, args.image_size,
                                             args.image_size, rate, 50000 / rate / 60))
    print("tf-inception / gluoncv speed: %.2f" % (rates["tf-inception"] / rates["gluoncv"]))


def time_scores(args):
    rng = np.random.RandomState(1)
    basis = rng.normal(size=(2048, 2048)) / np.sqrt(2048)
    fake = np.abs(rng.normal(size=(args.num_fake, 2048)).dot(basis)).astype(np.float32)
    real = (np.abs(rng.normal(size=(args.num_real, 2048)).dot(basis)) + 0.05).astype(np.float32)
    start = time.time()
    fid = fid_from_stats(FeatureStats().update(fake), FeatureStats().update(real))
    print("FID of %d vs %d features: %.1f s (FID %.3f)"
          % (len(fake), len(real), time.time() - start, fid))
    start = time.time()
    kid, _ = kernel_inception_distance(fake, real)
    print("KID, 100 subsets of 1000: %.1f s (KID %.5f)" % (time.time() - start, kid))
    start = time.time()
    prdc = precision_recall_density_coverage(real, fake)
    print("precision/recall/density/coverage, k=5: %.1f s (%s)"
          % (time.time() - start, ", ".join("%s %.3f" % kv for kv in sorted(prdc.items()))))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--batches", type=int, default=2,
                        help="timed batches per network (after one warm-up each)")
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--num-fake", type=int, default=5000)
    parser.add_argument("--num-real", type=int, default=10000)
    parser.add_argument("--skip-scores", action="store_true")
    args = parser.parse_args()
    print("MXNet %s, OMP_NUM_THREADS=%s" % (mx.__version__,
                                            __import__("os").environ.get("OMP_NUM_THREADS")))
    time_networks(args)
    if not args.skip_scores:
        time_scores(args)


if __name__ == "__main__":
    main()
