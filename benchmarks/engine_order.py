"""Time, on the CPU, the discriminator hybridized as on GPUs (without ``static_alloc``).

On GPUs the trainer hybridizes D without ``static_alloc``, the path on which the
engine itself orders the in-graph write of each SN layer's ``u`` before the next
read (``devices.sn_hybridize_kwargs``; docs/gpu.md). This script measures what that
path costs where it can run here, on the CPU: one n_dis = 1 iteration of the
standard-CNN GAN as the trainer runs it (D on real and fake concatenated, D's Adam
step, then G and D forward and backward and G's Adam step), once with D hybridized
``static_alloc=True, static_shape=True`` (the CPU default) and once without,
interleaved (ABAB...) in one process. It prints the medians of wall-clock and of
process CPU time and their ratios; the CPU time counts only this process's threads,
so it is the steadier figure on a shared machine.

    python benchmarks/engine_order.py [--batch-size 64] [--repeats 20]
"""
import argparse

import numpy as np

import sngan_gluon  # noqa: F401
import mxnet as mx

from sn_overhead import FullStep, interleaved  # benchmarks/: the one GAN step and timer
from sngan_gluon.devices import sn_hybridize_kwargs


def iteration(engine_ordered, batch_size):
    """One n_dis = 1 iteration of the SN GAN (Adam beta1 0, beta2 0.9); D hybridized
    with ``static_alloc`` or, ``engine_ordered``, without."""
    return FullStep(True, batch_size, beta1=0.0, beta2=0.9,
                    d_hybridize=sn_hybridize_kwargs([mx.cpu()], engine_ordered))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    runs = {ordered: iteration(ordered, args.batch_size) for ordered in (False, True)}
    for _ in range(2):  # warm-up: graphs built, memory planned
        for run in runs.values():
            run()
    wall, cpu = interleaved(runs, args.repeats)
    same = all(np.array_equal(a, b) for a, b in zip(runs[False].weights(),
                                                    runs[True].weights()))
    print("standard-CNN GAN iteration, batch %d, %d interleaved repeats"
          % (args.batch_size, args.repeats))
    print("  D static_alloc (CPU default) %8.1f ms   CPU time %8.1f ms"
          % (wall[False] * 1e3, cpu[False] * 1e3))
    print("  D without static_alloc       %8.1f ms   CPU time %8.1f ms"
          % (wall[True] * 1e3, cpu[True] * 1e3))
    print("  without / with: wall %.3f, CPU time %.3f" % (wall[True] / wall[False],
                                                          cpu[True] / cpu[False]))
    print("  D's weights after %d identical iterations: %s"
          % (args.repeats + 2, "equal bit for bit" if same else "DIFFERENT"))


if __name__ == "__main__":
    main()
