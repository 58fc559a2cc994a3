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
from mxnet import autograd, gluon, nd

from sn_overhead import interleaved  # benchmarks/: the one interleaved timer
from sngan_gluon.devices import sn_hybridize_kwargs
from sngan_gluon.losses import hinge_d, hinge_g
from sngan_gluon.models import get_discriminator, get_generator


class Iteration:
    """One n_dis = 1 iteration; D hybridized with or without ``static_alloc``."""

    def __init__(self, engine_ordered, batch_size):
        mx.random.seed(0)
        self.G, self.D = get_generator("dcgan"), get_discriminator("dcgan")
        for net in (self.G, self.D):
            net.initialize()
        self.D(self.G(nd.zeros((2, 128))))
        self.G.hybridize(static_alloc=True, static_shape=True)
        self.D.hybridize(**sn_hybridize_kwargs([mx.cpu()], engine_ordered))
        opt = dict(learning_rate=2e-4, beta1=0.0, beta2=0.9)
        self.g_trainer = gluon.Trainer(self.G.collect_params(), "adam", dict(opt))
        self.d_trainer = gluon.Trainer(self.D.collect_params(), "adam", dict(opt))
        self.real = nd.random.uniform(-1, 1, shape=(batch_size, 3, 32, 32))
        self.z = nd.random.normal(shape=(batch_size, 128))

    def __call__(self):
        with autograd.train_mode():
            fake = self.G(self.z)
        with autograd.record():
            out = self.D(nd.concat(self.real, fake, dim=0))
            half = self.real.shape[0]
            loss = hinge_d(out[:half], out[half:])
        loss.backward()
        self.d_trainer.step(1)
        with autograd.record():
            loss = hinge_g(self.D(self.G(self.z)))
        loss.backward()
        self.g_trainer.step(1)
        nd.waitall()

    def weights(self):
        return [p.data().asnumpy() for p in self.D.collect_params().values()]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    runs = {ordered: Iteration(ordered, args.batch_size) for ordered in (False, True)}
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
