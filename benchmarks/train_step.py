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
* the cost of the sigma log (sigmas.csv and sigma.png, see
  :mod:`sngan_gluon.sigma_log`): blocks of ``--sigma-log-every`` iterations,
  each ending in the log row's read of the losses, with and without the
  :class:`~sngan_gluon.sigma_log.SigmaLog` call, interleaved, for an SN and a
  plain (``--no-sn``) discriminator, and their ratio;
* the peak resident memory of the process.

Full iterations and the parts are timed interleaved in one run so that machine
noise hits both alike. ``python benchmarks/train_step.py [--repeats 8]
[--sections step data sigma-log]``
"""
import argparse
import resource
import tempfile
import time

import numpy as np

import sngan_gluon  # noqa: F401

from mxnet import autograd, nd

from sngan_gluon.config import TrainConfig
from sngan_gluon.batches import BatchStream
from sngan_gluon.data import get_dataset
from sngan_gluon.run_folder import RunFolder
from sngan_gluon.sigma_log import SigmaLog
from sngan_gluon.trainer import GANTrainer


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


def logged_block(trainer, iterations, sigma_log):
    """``iterations`` iterations as the loop runs them, then the log row's read of the
    losses and, with ``sigma_log``, its call (the sigmas, a csv row, sigma.png)."""
    for _ in range(iterations):
        trainer.observation = trainer.updater.update()
        trainer.observation.wait()
    trainer.observation.read()
    if sigma_log is not None:
        sigma_log(trainer)


def sigma_log_cost(dataset, args):
    """Seconds per iteration with and without the sigma log, interleaved, SN and plain D."""
    k = args.sigma_log_every
    for sn in (True, False):
        config = TrainConfig(dataset="synthetic", arch="dcgan", batch_size=args.batch_size,
                             sn=sn, iterations=10 ** 6, quiet=True)
        trainer = GANTrainer(config, dataset=dataset)
        with tempfile.TemporaryDirectory() as folder:
            trainer.run = RunFolder(folder)  # SigmaLog writes under run.path only
            sigma_log = SigmaLog()
            sigma_log.initialize(trainer)
            logged_block(trainer, 2, sigma_log)  # warm-up: graphs, the plain layers' u
            plain, logged, alone = [], [], []
            for repeat in range(args.repeats):
                for with_log in ((False, True) if repeat % 2 else (True, False)):
                    times = logged if with_log else plain
                    times.append(median_time(lambda: logged_block(
                        trainer, k, sigma_log if with_log else None), 1) / k)
                alone.append(median_time(lambda: sigma_log(trainer), 1))
        t_plain, t_logged = float(np.median(plain)), float(np.median(logged))
        print("%s D, sigma log every %d iterations: %.4f s/it without, %.4f s/it with; "
              "with/without %.3f (the log's call alone: %.3f s)"
              % ("SN" if sn else "plain", k, t_plain, t_logged, t_logged / t_plain,
                 float(np.median(alone))))


def median_time(fn, repeats):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


SECTIONS = ("step", "data", "sigma-log")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--loop-iterations", type=int, default=5)
    parser.add_argument("--sigma-log-every", type=int, default=20,
                        help="iterations per block of the sigma log's section")
    parser.add_argument("--sections", nargs="+", choices=SECTIONS, default=list(SECTIONS),
                        help="what to measure (step: full iteration, parts and loop; data: "
                             "the data pipeline, against n_dis=5 when step runs too)")
    args = parser.parse_args()
    dataset = get_dataset("synthetic", image_size=32)
    print("dcgan 32x32, batch %d, hybridized; medians of %d interleaved repeats"
          % (args.batch_size, args.repeats))
    if "step" in args.sections:
        consumed = step_and_loop(dataset, args)
    if "data" in args.sections:
        data_pipeline(dataset, args, consumed if "step" in args.sections else None)
    if "sigma-log" in args.sections:
        sigma_log_cost(dataset, args)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print("peak resident memory of this process: %.0f MiB" % peak)


def step_and_loop(dataset, args):
    """Full iteration against its parts, and the loop's wait; returns n_dis=5's images/s."""
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
    return consumed


def data_pipeline(dataset, args, consumed):
    stream = iter(BatchStream(dataset, args.batch_size, seed=0))
    next(stream)
    count = 200
    start = time.perf_counter()
    for _ in range(count):
        images, _ = next(stream)
    images.wait_to_read()
    data_rate = count * args.batch_size / (time.perf_counter() - start)
    print("data pipeline alone: %.0f images/s%s" % (data_rate, "" if consumed is None else
          " = %.1fx what n_dis=5 training consumes" % (data_rate / consumed)))


if __name__ == "__main__":
    main()
