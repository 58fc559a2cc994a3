"""Time a training step of gluoncv's cifar_resnet20_v1, plain and after ``spectral_norm(net)``.

One SGD step (forward, backward, update) on a batch of 32x32 images, both
networks hybridized with ``static_alloc``, built from the same seed; the SN one
is converted with :func:`sngan_gluon.nn.spectral_norm` (its 22 convolutions and
the dense layer) and warmed up. The two are timed interleaved (ABAB...), so
machine noise hits both alike, and the ratio of medians is printed, with the
one-off cost of the conversion and of the warm-up.

    python benchmarks/convert_speed.py [--batch-size 64] [--repeats 20]
"""
import argparse
import sys
import time

import numpy as np

import sngan_gluon  # noqa: F401
import mxnet as mx
from mxnet import autograd, gluon, nd

from sngan_gluon.nn import spectral_norm, warm_up


def model_zoo():
    """gluoncv's model zoo; torch is hidden while it loads, as gluoncv refuses torch >= 2
    (a check for its PyTorch half, unused here)."""
    saved = sys.modules.get("torch")
    sys.modules["torch"] = None
    try:
        from gluoncv import model_zoo as zoo
    finally:
        if saved is None:
            del sys.modules["torch"]
        else:
            sys.modules["torch"] = saved
    return zoo


def build(sn, x):
    mx.random.seed(0)
    net = model_zoo().get_model("cifar_resnet20_v1", pretrained=False)
    net.initialize(mx.init.Xavier())
    net(x)
    cost = {}
    if sn:
        start = time.perf_counter()
        spectral_norm(net)
        cost["convert"] = time.perf_counter() - start
        start = time.perf_counter()
        warm_up(net)
        nd.waitall()
        cost["warm_up"] = time.perf_counter() - start
    net.hybridize(static_alloc=True, static_shape=True)
    trainer = gluon.Trainer(net.collect_params(), "sgd", {"learning_rate": 0.01,
                                                          "momentum": 0.9})
    return net, trainer, cost


def step(net, trainer, x, y, loss_fn):
    with autograd.record():
        loss = loss_fn(net(x), y)
    loss.backward()
    trainer.step(x.shape[0])
    nd.waitall()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    rng = np.random.RandomState(0)
    x = nd.array(rng.normal(size=(args.batch_size, 3, 32, 32)))
    y = nd.array(rng.randint(0, 10, size=args.batch_size))
    loss_fn = gluon.loss.SoftmaxCrossEntropyLoss()
    nets = {sn: build(sn, x) for sn in (False, True)}
    for sn in (False, True):  # graph building and first-call allocation, untimed
        for _ in range(3):
            step(nets[sn][0], nets[sn][1], x, y, loss_fn)
    times = {False: [], True: []}
    for _ in range(args.repeats):
        for sn in (False, True):
            start = time.perf_counter()
            step(nets[sn][0], nets[sn][1], x, y, loss_fn)
            times[sn].append(time.perf_counter() - start)
    plain, sn = (float(np.median(times[k])) for k in (False, True))
    cost = nets[True][2]
    print("cifar_resnet20_v1 training step (SGD), batch %d, 32x32, hybridized, median of %d "
          "interleaved runs" % (args.batch_size, args.repeats))
    print("plain %8.2f ms   spectral_norm(net) %8.2f ms   SN/plain %.3f  (+%.2f ms)"
          % (plain * 1e3, sn * 1e3, sn / plain, (sn - plain) * 1e3))
    print("one-off: spectral_norm(net) %.2f s, warm_up(net) %.2f s"
          % (cost["convert"], cost["warm_up"]))


if __name__ == "__main__":
    main()
