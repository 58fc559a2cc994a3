"""Time ``warm_up`` of the package's discriminators: cached blocks against operator by operator.

:func:`sngan_gluon.nn.warm_up` runs each block of power iterations as one cached
graph. This script times it against the same blocks called operator by
operator (``power_iteration(nd, ...)``, as a layer's imperative forward runs
them), interleaved over ``--rounds`` on freshly initialized networks of one
seed, prints the median seconds and the ratio per round, and checks that both
leave every ``u`` equal bit for bit.

    OMP_NUM_THREADS=1 python benchmarks/warm_up_speed.py [--rounds 5]
"""
import argparse
import time

import numpy as np

import sngan_gluon  # noqa: F401
import mxnet as mx
from mxnet import nd

from sngan_gluon.models import get_discriminator
from sngan_gluon.nn import warm_up, warmup
from sngan_gluon.nn.spectral_norm import power_iteration
from sngan_gluon.nn.walk import sn_layers

CACHED = warmup._iteration_op


def operator_by_operator(rows, iterations, epsilon):
    """A block as ``warmup._iteration_op`` returns it, but run operator by operator."""
    return lambda w_mat, u: power_iteration(nd, w_mat, u, rows, iterations, epsilon)


def timed_warm_up(arch, block):
    """(seconds, [u of every SN layer]) of ``warm_up`` on a fresh ``arch`` discriminator."""
    mx.random.seed(0)
    net = get_discriminator(arch, sn=True)
    net.initialize()
    net(nd.ones((2, 3, 32, 32)))
    nd.waitall()
    warmup._iteration_op = block
    try:
        start = time.perf_counter()
        warm_up(net)
        nd.waitall()
        seconds = time.perf_counter() - start
    finally:
        warmup._iteration_op = CACHED
    return seconds, [layer.u.data().asnumpy() for layer in sn_layers(net)]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--arch", nargs="+", default=["dcgan", "resnet"])
    args = parser.parse_args(argv)
    for arch in args.arch:
        times = {"cached": [], "operators": []}
        for _ in range(args.rounds):
            fast, u_fast = timed_warm_up(arch, CACHED)
            slow, u_slow = timed_warm_up(arch, operator_by_operator)
            assert all(np.array_equal(a, b) for a, b in zip(u_fast, u_slow)), arch
            times["cached"].append(fast)
            times["operators"].append(slow)
        ratios = np.array(times["cached"]) / np.array(times["operators"])
        print("%s discriminator (%d SN layers): warm_up %.2f s cached, %.2f s operator by "
              "operator (medians of %d); ratio %.2f (rounds %s); every u equal bit for bit"
              % (arch, len(u_fast), np.median(times["cached"]), np.median(times["operators"]),
                 args.rounds, np.median(ratios), ", ".join("%.2f" % r for r in ratios)))


if __name__ == "__main__":
    main()
