"""Seconds per iteration of ``train.py``'s defaults against the PyTorch SN-GAN loop, interleaved.

Each round runs, one after the other in a fresh process each (the order
alternating from round to round):

* ``train.py`` with its defaults (standard CNN, batch 64, hinge loss, n_dis 1,
  gradients clipped at 10) on ``--dataset`` for ``warmup + iterations``
  iterations. Its time per iteration is read from its own ``log.csv``: the
  training loop's clock (``images_per_s``: each iteration from its data to its
  last result, the periodic log and checkpoint jobs left out) over the
  iterations after the warm-up, and ``wall_time`` over the same iterations
  (the log rows' work included, here a row every ``warmup`` iterations);
* the PyTorch loop of ``torch_loop.py`` (the networks of ``reference_torch.py``)
  on the same images for as many iterations, timed around each iteration.

Both run on ``--threads`` threads (``OMP_NUM_THREADS``, and
``torch.set_num_threads``). The first ``--warmup`` iterations of each run are
not timed. Prints the processor, each round's seconds per iteration and ratio,
then the medians and the spread (smallest and largest ratio) over the rounds.
Only the ratios of interleaved runs compare: on a shared machine the absolute
times move with the load.

    python benchmarks/speed_vs_torch.py [--rounds 3] [--iterations 60] [--warmup 20]
"""
import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def processor_name():
    """The ``model name`` of /proc/cpuinfo ('unknown' where there is none)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


def _env(threads):
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [ROOT, env.get("PYTHONPATH")]))
    return env


def time_package(args, folder):
    """train.py's seconds per iteration after the warm-up: (loop clock, wall_time)."""
    out = os.path.join(folder, "run")
    total = args.warmup + args.iterations
    subprocess.run([sys.executable, os.path.join(ROOT, "train.py"), "--dataset", args.dataset,
                    "--iterations", str(total), "--log-every", str(args.warmup),
                    "--out-dir", out, "--quiet"],
                   env=_env(args.threads), check=True, stdout=subprocess.DEVNULL)
    with open(os.path.join(out, "log.csv")) as f:
        rows = {int(r["iteration"]): r for r in csv.DictReader(f)}
    timed = [rows[it] for it in sorted(rows) if it > args.warmup]
    batch = 64  # train.py's default batch size; n_dis 1
    seconds = sum(args.warmup * batch / float(r["images_per_s"]) for r in timed)
    wall = float(rows[total]["wall_time"]) - float(rows[args.warmup]["wall_time"])
    return seconds / args.iterations, wall / args.iterations


def time_torch(args):
    """The PyTorch loop's seconds per iteration after the warm-up (in a fresh process)."""
    result = subprocess.run([sys.executable, os.path.abspath(__file__), "--torch-worker",
                             "--dataset", args.dataset, "--threads", str(args.threads),
                             "--iterations", str(args.iterations),
                             "--warmup", str(args.warmup)],
                            env=_env(args.threads), check=True, stdout=subprocess.PIPE,
                            text=True)
    return json.loads(result.stdout.strip().splitlines()[-1])["seconds_per_iteration"]


def torch_worker(args):
    import torch
    import reference_torch
    from torch_loop import TorchLoop
    torch.set_num_threads(args.threads)
    loop = TorchLoop(reference_torch.load_images(args.dataset))
    for _ in range(args.warmup):
        loop.iteration()
    start = time.perf_counter()
    for _ in range(args.iterations):
        loop.iteration()
    print(json.dumps(dict(seconds_per_iteration=(time.perf_counter() - start) / args.iterations)))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--iterations", type=int, default=60,
                        help="timed iterations per run (a multiple of --warmup)")
    parser.add_argument("--warmup", type=int, default=20, help="untimed iterations per run")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--dataset", default="digits")
    parser.add_argument("--torch-worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.iterations % args.warmup:
        parser.error("--iterations must be a multiple of --warmup (the log rows' spacing)")
    if args.torch_worker:
        return torch_worker(args)
    print("processor: %s; %d threads; %d rounds of %d + %d iterations (warm-up not timed)"
          % (processor_name(), args.threads, args.rounds, args.warmup, args.iterations),
          flush=True)
    loop, wall, ref = [], [], []
    for round_ in range(args.rounds):
        order = ("package", "torch") if round_ % 2 == 0 else ("torch", "package")
        for which in order:
            if which == "torch":
                ref.append(time_torch(args))
            else:
                with tempfile.TemporaryDirectory() as folder:
                    l, w = time_package(args, folder)
                loop.append(l)
                wall.append(w)
        print("round %d: train.py %.3f s/it (loop clock), %.3f s/it (wall_time); PyTorch "
              "%.3f s/it; ratio %.3f (loop), %.3f (wall)"
              % (round_ + 1, loop[-1], wall[-1], ref[-1], loop[-1] / ref[-1],
                 wall[-1] / ref[-1]), flush=True)
    loop, wall, ref = map(np.array, (loop, wall, ref))
    for name, ours in (("loop clock", loop), ("wall_time", wall)):
        ratios = ours / ref
        print("train.py / PyTorch (%s): median ratio %.3f, spread %.3f to %.3f; medians "
              "%.3f s/it against %.3f s/it" % (name, np.median(ratios), ratios.min(),
                                               ratios.max(), np.median(ours), np.median(ref)))


if __name__ == "__main__":
    main()
