"""How long do Inception Score and FID take on this machine?

Prints

* the images/s of Inception-v3 feature extraction (resize to 299x299, pool
  features and softmax) at ``--batch-size`` (default 100) for 32x32 images, the
  path ``sngan_gluon.evaluate`` runs; the weights are random (the pretrained
  ones cannot be downloaded offline) but the arithmetic is the same, and the
  time a 50,000-image evaluation would take at that rate;
* the time of the statistics: streaming ``--num-features`` 2048-d features into
  :class:`~sngan_gluon.metrics.FeatureStats` (running sums) and then the FID
  itself (2048x2048 covariances, the matrix square root), each timed alone.

    python benchmarks/metrics_speed.py [--batch-size 100] [--batches 5]
"""
import argparse
import time

import numpy as np

import sngan_gluon  # noqa: F401
import mxnet as mx
from mxnet import nd

from sngan_gluon.metrics import FeatureStats, InceptionExtractor, fid_from_stats


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--batches", type=int, default=5, help="timed batches (after one warm-up)")
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--num-features", type=int, default=10000,
                        help="feature vectors per set for the statistics timing")
    args = parser.parse_args()

    extractor = InceptionExtractor(pretrained=False, ctx=mx.cpu(), batch_size=args.batch_size)
    images = nd.random.uniform(-1, 1, shape=(args.batch_size, 3, args.image_size,
                                             args.image_size))
    extractor.extract(images)  # warm-up: graph building and oneDNN primitive creation
    start = time.time()
    for _ in range(args.batches):
        features, _ = extractor.extract(images)
    elapsed = time.time() - start
    rate = args.batches * args.batch_size / elapsed
    print("Inception-v3 features, batch %d of %dx%d images resized to 299x299: %.1f images/s "
          "(%.2f s a batch; 50,000 images would take %.0f min)"
          % (args.batch_size, args.image_size, args.image_size, rate,
             elapsed / args.batches, 50000 / rate / 60))
    assert features.shape == (args.batch_size, 2048)

    rng = np.random.RandomState(0)
    basis = rng.normal(size=(2048, 2048)) / np.sqrt(2048)
    sets = []
    start = time.time()
    for shift in (0.0, 0.1):
        stats = FeatureStats()
        for s in range(0, args.num_features, 500):
            n = min(500, args.num_features - s)
            stats.update(np.abs(rng.normal(size=(n, 2048)).dot(basis)) + shift)
        sets.append(stats)
    accumulate = time.time() - start
    start = time.time()
    value = fid_from_stats(*sets)
    distance = time.time() - start
    print("statistics of 2 x %d 2048-d features (running sums): %.2f s; FID from them "
          "(covariances, sqrtm of the 2048x2048 product): %.2f s; FID = %.3f"
          % (args.num_features, accumulate, distance, value))


if __name__ == "__main__":
    main()
