"""Throughput of data-parallel training on this machine, and what a dist worker sends.

``dcgan`` at 32x32 on synthetic data, total batch 64, n_dis 1, hybridized. After
``--warmup`` iterations, ``--iterations`` full iterations (the D step and the G
step of ``GANTrainer``, both optimizer steps) are timed, and the real images
consumed per second are printed for:

* 1 and 2 CPU contexts in one process (``--cpus``, the ``device`` kvstore), and
* 1 and 2 ``dist_sync`` workers on 127.0.0.1 (``sngan_gluon.launcher.launch_local``,
  one server), one CPU context and ``64 / workers`` images per step each; rank
  0's time is the job's, since every step waits for all workers. The job's
  start-up (processes, kvstore, networks) is not in the figure.

Then the communication volume of a dist worker per iteration, from the
parameter counts: every D step pushes D's gradients and pulls their sum
(``n_dis`` times), the G step the same for G, 4 bytes a value (the ``u``
vectors and BatchNorm statistics are not sent after the start).

Several CPU contexts share the same cores, so on a CPU they show the cost of
splitting, not a speed-up. No asserts: the figures depend on the machine and
on what else runs on it.

    python benchmarks/scale.py [--iterations 5] [--warmup 2]
"""
import argparse
import json
import os
import sys
import tempfile
import time

import sngan_gluon  # noqa: F401
from mxnet import nd

from sngan_gluon.config import TrainConfig
from sngan_gluon.launcher import launch_local
from sngan_gluon.trainer import GANTrainer

BATCH = 64


def make_config(**kwargs):
    return TrainConfig(dataset="synthetic", arch="dcgan", batch_size=BATCH, n_dis=1,
                       iterations=10 ** 6, quiet=True, **kwargs)


def images_per_second(trainer, warmup, iterations):
    """Real images per second over ``iterations`` full iterations after ``warmup``."""
    def iteration():
        trainer.updater.update()

    for _ in range(warmup):
        iteration()
    nd.waitall()
    start = time.perf_counter()
    for _ in range(iterations):
        iteration()
    nd.waitall()
    elapsed = time.perf_counter() - start
    return iterations * trainer.config.n_dis * trainer.config.batch_size / elapsed


def trainable_values(net):
    return sum(p.data().size for p in net.collect_params().values() if p.grad_req != "null")


def worker(result_path, warmup, iterations):
    """One dist_sync worker of the job; rank 0 writes the result."""
    import mxnet as mx
    try:
        kv = mx.kv.create("dist_sync")
        trainer = GANTrainer(make_config(kvstore="dist_sync"), kvstore=kv)
        rate = images_per_second(trainer, warmup, iterations)
        if kv.rank == 0:
            with open(result_path, "w") as f:
                json.dump({"images_per_s": rate, "workers": kv.num_workers}, f)
    except BaseException:  # a failed worker must not wait for the others at exit
        import traceback
        traceback.print_exc()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(1)


def dist_images_per_second(workers, warmup, iterations):
    with tempfile.TemporaryDirectory() as tmp:
        result = os.path.join(tmp, "result.json")
        code = launch_local([sys.executable, os.path.abspath(__file__), "--worker", result,
                             "--warmup", str(warmup), "--iterations", str(iterations)],
                            num_workers=workers, num_servers=1, timeout=180,
                            env={"PYTHONUNBUFFERED": "1"})
        if code != 0:
            return None
        with open(result) as f:
            return json.load(f)["images_per_s"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--worker", metavar="RESULT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, args.warmup, args.iterations)
        return
    print("dcgan 32x32, total batch %d, n_dis 1; %d timed iterations after %d warm-up; "
          "%d CPU cores" % (BATCH, args.iterations, args.warmup, os.cpu_count()))
    trainer = None
    for cpus in (1, 2):
        trainer = GANTrainer(make_config(cpus=cpus))
        rate = images_per_second(trainer, args.warmup, args.iterations)
        print("%d CPU context%s, one process:  %6.1f images/s"
              % (cpus, "s" if cpus > 1 else " ", rate))
    for workers in (1, 2):
        rate = dist_images_per_second(workers, args.warmup, args.iterations)
        print("%d dist_sync worker%s (1 server): %s"
              % (workers, "s" if workers > 1 else " ",
                 "%6.1f images/s" % rate if rate is not None else "failed (see above)"))

    g_values, d_values = trainable_values(trainer.G), trainable_values(trainer.D)
    n_dis = trainer.config.n_dis
    per_worker = 4 * (n_dis * d_values + g_values)
    print("trainable values: G %d, D %d; per iteration a worker pushes %.1f MB of "
          "gradients and pulls %.1f MB of sums (n_dis=%d); the server takes in %.1f MB "
          "per iteration from 2 workers"
          % (g_values, d_values, per_worker / 1e6, per_worker / 1e6, n_dis,
             2 * per_worker / 1e6))
    print("with n_dis=5 a worker would push %.1f MB per iteration"
          % (4 * (5 * d_values + g_values) / 1e6))


if __name__ == "__main__":
    main()
