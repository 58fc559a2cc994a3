"""Time the cost of spectral normalization in the paper's standard-CNN discriminator.

Forward + backward of the discriminator of Miyato et al. (2018), appendix table 3
(seven 3x3/4x4 convolutions, LeakyReLU(0.1), a dense layer; 32x32 input), batch
64, hybridized, built once from SN layers and once from plain ``nn.Conv2D`` /
``nn.Dense``. The two are timed interleaved in one run (ABAB...), so machine
noise hits both alike, and the ratios of medians of wall-clock and of process
CPU time are printed (on a shared machine the CPU time is the steadier figure). A small MLP is timed
the same way to show the fixed per-layer cost where there is little else.

The full GAN step is the trainer's iteration on the package's standard CNN pair
(``get_generator``/``get_discriminator('dcgan')``, n_dis 1): G forward, D forward
and backward on real and fake concatenated, D's Adam step, then G and D forward
and backward and G's Adam step; once with SN discriminator layers, once with
plain ones, interleaved.

    python benchmarks/sn_overhead.py [--batch-size 64] [--repeats 30] [--full-repeats 20]
"""
import argparse
import time

import numpy as np

import sngan_gluon  # noqa: F401
import mxnet as mx
from mxnet import autograd, gluon, nd
from mxnet.gluon import nn

from sngan_gluon.losses import hinge_d, hinge_g
from sngan_gluon.models import get_discriminator, get_generator
from sngan_gluon.nn import SNConv2D, SNDense


def standard_cnn_discriminator(sn):
    conv, dense = (SNConv2D, SNDense) if sn else (nn.Conv2D, nn.Dense)
    net = nn.HybridSequential()
    for channels, kernel, stride, c_in in ((64, 3, 1, 3), (64, 4, 2, 64), (128, 3, 1, 64),
                                           (128, 4, 2, 128), (256, 3, 1, 128), (256, 4, 2, 256),
                                           (512, 3, 1, 256)):
        net.add(conv(channels, kernel, strides=stride, padding=1, in_channels=c_in),
                nn.LeakyReLU(0.1))
    net.add(dense(1, in_units=512 * 4 * 4))
    return net


def mlp(sn):
    dense = SNDense if sn else nn.Dense
    net = nn.HybridSequential()
    for _ in range(3):
        net.add(dense(64, activation="relu"))
    net.add(dense(1))
    return net


def step(net, x):
    with autograd.record():
        loss = net(x).mean()
    loss.backward()
    nd.waitall()


def interleaved(calls, repeats):
    """Time ``calls`` ({key: fn}) in turn, ``repeats`` rounds: medians of wall-clock and of
    process CPU time per key. CPU time counts only this process's threads, so it
    moves much less than wall time when other processes share the cores."""
    wall, cpu = {k: [] for k in calls}, {k: [] for k in calls}
    for _ in range(repeats):
        for key, fn in calls.items():
            w, c = time.perf_counter(), time.process_time()
            fn()
            cpu[key].append(time.process_time() - c)
            wall[key].append(time.perf_counter() - w)
    return ({k: float(np.median(v)) for k, v in wall.items()},
            {k: float(np.median(v)) for k, v in cpu.items()})


def compare(make, x, repeats):
    nets = {}
    for sn in (False, True):
        mx.random.seed(0)
        net = make(sn)
        net.initialize(mx.init.Normal(0.02))
        net.hybridize(static_alloc=True, static_shape=True)
        for _ in range(3):
            step(net, x)
        nets[sn] = net
    return interleaved({sn: (lambda net=net: step(net, x)) for sn, net in nets.items()},
                       repeats)


def report(name, wall, cpu):
    print("%-24s plain %8.2f ms   SN %8.2f ms   SN/plain %.3f   CPU time: %8.2f / %8.2f ms, "
          "SN/plain %.3f" % (name, wall[False] * 1e3, wall[True] * 1e3, wall[True] / wall[False],
                             cpu[False] * 1e3, cpu[True] * 1e3, cpu[True] / cpu[False]),
          flush=True)


#: How the trainer hybridizes on the CPU (``devices.sn_hybridize_kwargs``'s default there).
STATIC = dict(static_alloc=True, static_shape=True)


class FullStep:
    """One n_dis = 1 iteration of the standard-CNN GAN, as the trainer runs it.

    ``sn``: SN discriminator layers or plain ones; ``beta1``, ``beta2``: both
    Adams' (learning rate 2e-4); ``d_hybridize``: the discriminator's
    ``hybridize`` keywords (the generator's are always :data:`STATIC`). Inputs:
    real images (batch_size, 3, 32, 32) and noise (batch_size, 128), fixed.
    """

    def __init__(self, sn, batch_size, beta1=0.5, beta2=0.999, d_hybridize=STATIC):
        mx.random.seed(0)
        self.G, self.D = get_generator("dcgan"), get_discriminator("dcgan", sn=sn)
        for net in (self.G, self.D):
            net.initialize()
        self.D(self.G(nd.zeros((2, 128))))
        self.G.hybridize(**STATIC)
        self.D.hybridize(**d_hybridize)
        opt = dict(learning_rate=2e-4, beta1=beta1, beta2=beta2)
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
        """The discriminator's parameters, numpy arrays in its parameters' order."""
        return [p.data().asnumpy() for p in self.D.collect_params().values()]


def compare_full_step(batch_size, repeats):
    steps = {sn: FullStep(sn, batch_size) for sn in (False, True)}
    for _ in range(2):
        for sn in (False, True):
            steps[sn]()
    return interleaved(steps, repeats)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--full-repeats", type=int, default=20,
                        help="interleaved pairs of full GAN steps (0: skip)")
    args = parser.parse_args()
    cases = (
        ("standard-CNN D, 32x32", standard_cnn_discriminator,
         nd.random.normal(shape=(args.batch_size, 3, 32, 32)), args.repeats),
        ("MLP 3x64 + 1", mlp, nd.random.normal(shape=(args.batch_size, 32)), args.repeats * 10),
    )
    print("forward+backward, batch %d, hybridized, median of interleaved runs" % args.batch_size)
    for name, make, x, repeats in cases:
        report(name, *compare(make, x, repeats))
    if args.full_repeats:
        report("full GAN step, dcgan", *compare_full_step(args.batch_size, args.full_repeats))


if __name__ == "__main__":
    main()
