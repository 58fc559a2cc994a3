"""Does the OpenMP thread count change what training computes?

oneDNN splits a convolution's sums over threads, so one and two threads add
the same numbers in different orders: the weights can drift apart by rounding,
and a GAN can amplify a rounding difference into a different trajectory. This
trains ``train.py``'s defaults on the digits (seed 0) for ``--iterations``
iterations in separate processes, one after another, with ``OMP_NUM_THREADS``
1, 1 again and 2, and prints how far apart the generators and discriminators
end: the relative L2 distance of all weights, the largest of one tensor, and
of G's images on fixed noise (inference mode). One against one again says
whether a run repeats bit for bit; one against two is the thread effect.

    python benchmarks/thread_drift.py --iterations 20
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np

from quality_parity import package_config

from mxnet import nd

from sngan_gluon.data import get_dataset
from sngan_gluon.sampling import draw_noise
from sngan_gluon.trainer import GANTrainer


def worker(iterations, out):
    """Train ``iterations`` iterations in this process; save G's, D's weights and images."""
    config = package_config(iterations, 0, {"ema": 0.0})
    trainer = GANTrainer(config, dataset=get_dataset("digits", image_size=32, channels=3))
    for _ in range(iterations):
        trainer.updater.update()
    arrays = {}
    for tag, net in (("G", trainer.G), ("D", trainer.D)):
        for name, param in net.collect_params().items():
            arrays[tag + ":" + name[len(net.prefix):]] = param.data().asnumpy()
    z = draw_noise(np.random.RandomState(1), 64, config.z_dim)
    arrays["images"] = trainer.G(nd.array(z)).asnumpy()
    np.savez(out, **arrays)


def distance(a, b, prefix):
    """(relative L2 distance over every array named ``prefix``*, "largest of one array (its
    name)")."""
    names = [n for n in a if n.startswith(prefix)]
    num = sum(float(((a[n] - b[n]) ** 2).sum()) for n in names)
    den = sum(float((a[n] ** 2).sum()) for n in names)
    worst = max((float(np.linalg.norm(a[n] - b[n]) / max(np.linalg.norm(a[n]), 1e-30)), n)
                for n in names)
    return np.sqrt(num / den), "%.2e (%s)" % (worst[0], worst[1].split(":")[-1])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=20)
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        return worker(args.iterations, args.worker)
    folder = tempfile.mkdtemp(prefix="thread_drift_")
    runs = {}
    for label, threads in (("1 thread", 1), ("1 thread again", 1), ("2 threads", 2)):
        out = os.path.join(folder, "%s.npz" % label.replace(" ", "_"))
        env = dict(os.environ, OMP_NUM_THREADS=str(threads))
        subprocess.run([sys.executable, os.path.abspath(__file__), "--iterations",
                        str(args.iterations), "--worker", out], env=env, check=True)
        with np.load(out) as f:
            runs[label] = {name: f[name] for name in f.files}
    shutil.rmtree(folder)
    print("after %d iterations of train.py's defaults (digits, seed 0):" % args.iterations)
    print("| pair | G weights (all / worst tensor) | D weights (all / worst tensor) "
          "| G's images on fixed noise |")
    print("| --- | --- | --- | --- |")
    base = runs["1 thread"]
    for label in ("1 thread again", "2 threads"):
        g, d, im = (distance(base, runs[label], p) for p in ("G:", "D:", "images"))
        print("| 1 thread vs %s | %.2e / %s | %.2e / %s | %.2e |"
              % (label, g[0], g[1], d[0], d[1], im[0]))


if __name__ == "__main__":
    main()
