"""Speed and memory of a full training iteration, against its parts measured alone.

For ``dcgan`` at 32x32, batch 64, hybridized, n_dis = 1 and 5, prints:

* iterations/s and real images/s of ``GANTrainer``'s full iteration (data, both
  forward/backward passes, both Adam steps, learning-rate bookkeeping);
* the time of the same networks' forward+backward work alone (n_dis x [G
  forward on B, D forward+backward on 2B] + [G and D forward+backward on B]),
  on tensors already in memory, no optimizer, and the ratio of the two
  (target: the full iteration costs at most 10% more);
* the data pipeline's images/s alone, and its ratio to what training consumes
  (target: at least 5x);
* the cost of the training loop's one host wait per iteration (for the
  generator's loss, so that the progress bar counts finished iterations):
  ``--loop-iterations`` iterations queued back to back against the same with
  the wait after each, and their ratio;
* the peak resident memory of the process.

Full iterations and the parts are timed interleaved in one run so that machine
noise hits both alike. ``python benchmarks/train_step.py [--repeats 8]``
"""
import argparse
import resource
import time

import numpy as np

import sngan_gluon  # noqa: F401

from mxnet import autograd, nd

from sngan_gluon.config import TrainConfig
from sngan_gluon.data import get_dataset
from sngan_gluon.trainer import BatchStream, GANTrainer


def parts_alone(trainer, n_dis, batch):
    """One iteration's forward+backward work of G and D alone (no data, no optimizer)."""
    G, D, ctx = trainer.G, trainer.D, trainer.ctxs[0]
    z = nd.random.normal(shape=(batch, trainer.config.z_dim), ctx=ctx)
    real = nd.random.uniform(-1, 1, shape=(batch, 3, 32, 32), ctx=ctx)
    for _ in range(n_dis):
        with autograd.train_mode():
            fake = G(z)
        with autograd.record():
            loss = D(nd.concat(real, fake, dim=0)).mean()
        loss.backward()
    with autograd.record():
        loss = D(G(z)).mean()
    loss.backward()
    nd.waitall()


def full_iteration(trainer):
    trainer.updater.update()
    nd.waitall()


def loop_of(trainer, iterations, wait):
    """``iterations`` updates as the training loop runs them; ``wait``: its per-iteration wait."""
    for _ in range(iterations):
        observation = trainer.updater.update()
        if wait:
            observation.wait()
    nd.waitall()


def median_time(fn, repeats):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--loop-iterations", type=int, default=5)
    args = parser.parse_args()
    dataset = get_dataset("synthetic", image_size=32)
    print("dcgan 32x32, batch %d, hybridized; medians of %d interleaved repeats"
          % (args.batch_size, args.repeats))
    for n_dis in (1, 5):
        config = TrainConfig(dataset="synthetic", arch="dcgan", batch_size=args.batch_size,
                             n_dis=n_dis, iterations=10 ** 6, quiet=True)
        trainer = GANTrainer(config, dataset=dataset)
        for _ in range(2):
            full_iteration(trainer)
            parts_alone(trainer, n_dis, args.batch_size)
        full, parts, queued, waited = [], [], [], []
        k = args.loop_iterations
        for _ in range(args.repeats):
            full.append(median_time(lambda: full_iteration(trainer), 1))
            parts.append(median_time(lambda: parts_alone(trainer, n_dis, args.batch_size), 1))
            queued.append(median_time(lambda: loop_of(trainer, k, wait=False), 1) / k)
            waited.append(median_time(lambda: loop_of(trainer, k, wait=True), 1) / k)
        t_full, t_parts = float(np.median(full)), float(np.median(parts))
        consumed = n_dis * args.batch_size / t_full
        print("n_dis=%d: full iteration %.3f s (%.2f it/s, %.0f real images/s); "
              "forward+backward alone %.3f s; full/alone %.3f"
              % (n_dis, t_full, 1 / t_full, consumed, t_parts, t_full / t_parts))
        t_queued, t_waited = float(np.median(queued)), float(np.median(waited))
        print("n_dis=%d: loop of %d iterations, queued %.4f s/it, waiting for each %.4f s/it; "
              "waiting/queued %.3f" % (n_dis, k, t_queued, t_waited, t_waited / t_queued))
    stream = iter(BatchStream(dataset, args.batch_size, seed=0))
    next(stream)
    count = 200
    start = time.perf_counter()
    for _ in range(count):
        images, _ = next(stream)
    images.wait_to_read()
    data_rate = count * args.batch_size / (time.perf_counter() - start)
    print("data pipeline alone: %.0f images/s = %.1fx what n_dis=5 training consumes"
          % (data_rate, data_rate / consumed))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print("peak resident memory of this process: %.0f MiB" % peak)


if __name__ == "__main__":
    main()
