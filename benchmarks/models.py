"""Time the model families on this machine: images per second of a training step.

For each architecture (unconditional, SN discriminator, hybridized with static
allocation, batch 64) it times

* G fwd+bwd   generator forward and backward of ``mean(G(z))``
* D fwd+bwd   discriminator forward and backward of ``mean(D(x))`` on a real batch
* D step      a full discriminator update: G forward in training mode without
              recording, D on the real and the fake batch, hinge loss, backward,
              Adam step (images/s counts the real batch: ``batch / time``)
* G step      a full generator update: G and D forward, hinge loss, backward
              through both, Adam step on G

after two warm-up runs, as the median of a few repetitions (fewer for slow
cases, so the whole script stays within a few minutes).

    python benchmarks/models.py [--batch-size 64] [--with-48]
"""
import argparse
import time

import numpy as np

import sngan_gluon  # noqa: F401
import mxnet as mx
from mxnet import autograd, gluon, nd

from sngan_gluon.losses import hinge_d, hinge_g
from sngan_gluon.models import get_discriminator, get_generator

Z_DIM = 128
#: seconds each measurement may spend on its timed repetitions (at least 3 of them)
BUDGET_S = 6.0


def _timed(fn, budget):
    for _ in range(2):
        fn()
    start = time.perf_counter()
    fn()
    first = time.perf_counter() - start
    times = [first]
    for _ in range(max(2, min(9, int(budget / first) - 1))):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times)), len(times)


def bench(arch, size, batch, budget):
    mx.random.seed(0)
    g, d = get_generator(arch, size), get_discriminator(arch, size)
    g.initialize()
    d.initialize()
    for net in (g, d):
        net.hybridize(static_alloc=True, static_shape=True)
    g_opt = gluon.Trainer(g.collect_params(), "adam",
                          {"learning_rate": 2e-4, "beta1": 0.0, "beta2": 0.9})
    d_opt = gluon.Trainer(d.collect_params(), "adam",
                          {"learning_rate": 2e-4, "beta1": 0.0, "beta2": 0.9})
    z = nd.random.normal(shape=(batch, Z_DIM))
    real = nd.random.uniform(-1, 1, shape=(batch, 3, size, size))

    def g_fwd_bwd():
        with autograd.record():
            loss = g(z).mean()
        loss.backward()
        nd.waitall()

    def d_fwd_bwd():
        with autograd.record():
            loss = d(real).mean()
        loss.backward()
        nd.waitall()

    def d_step():
        with autograd.train_mode():
            fake = g(z)
        with autograd.record():
            loss = hinge_d(d(real), d(fake))
        loss.backward()
        d_opt.step(batch)
        nd.waitall()

    def g_step():
        with autograd.record():
            loss = hinge_g(d(g(z)))
        loss.backward()
        g_opt.step(batch)
        nd.waitall()

    rows = []
    for name, fn in (("G fwd+bwd", g_fwd_bwd), ("D fwd+bwd", d_fwd_bwd), ("D step", d_step),
                     ("G step", g_step)):
        seconds, reps = _timed(fn, budget)
        rows.append((name, seconds, reps))
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--with-48", action="store_true", help="also time the 48x48 layouts")
    parser.add_argument("--budget", type=float, default=BUDGET_S,
                        help="seconds of timed repetitions per measurement (default %(default)s)")
    args = parser.parse_args()
    cases = [("dcgan", 32), ("resnet", 32), ("dcgan64", 64)]
    if args.with_48:
        cases += [("dcgan", 48), ("resnet", 48)]
    print("mxnet %s, batch %d, hybridized (static_alloc), unconditional, SN discriminator; "
          "median of the timed repetitions after 2 warm-ups"
          % (mx.__version__, args.batch_size))
    print("%-10s %-10s %10s %10s %5s" % ("arch", "step", "ms", "images/s", "reps"))
    for arch, size in cases:
        for name, seconds, reps in bench(arch, size, args.batch_size, args.budget):
            print("%-10s %-10s %10.1f %10.1f %5d" % ("%s-%d" % (arch, size), name, seconds * 1e3,
                                                     args.batch_size / seconds, reps), flush=True)


if __name__ == "__main__":
    main()
