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

With ``--pngs`` the dataset is first written as numbered 32x32 RGB PNG files
into a temporary folder: ``train.py`` then reads that folder as a user's own
images (``--dataset folder --data-path``), and the PyTorch loop reads the same
folder through the package's folder reader, so both train on the same pixels.

Both run on ``--threads`` threads (``OMP_NUM_THREADS``, and
``torch.set_num_threads``). The first ``--warmup`` iterations of each run are
not timed. Prints the processor, each round's seconds per iteration and ratio,
then the medians and the spread (smallest and largest ratio) over the rounds.
Only the ratios of interleaved runs compare: on a shared machine the absolute
times move with the load.

    python benchmarks/speed_vs_torch.py [--pngs] [--rounds 3] [--iterations 60] [--warmup 20]
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


def data_arguments(args):
    """train.py's flags that name the images: the dataset, or the folder of PNGs."""
    if args.png_folder:
        return ["--dataset", "folder", "--data-path", args.png_folder]
    return ["--dataset", args.dataset]


def write_pngs(images, folder):
    """Write uint8 images (N, H, W, 3) as ``folder/000000.png, ...`` (RGB)."""
    from PIL import Image
    for i, image in enumerate(images):
        Image.fromarray(image).save(os.path.join(folder, "%06d.png" % i))


def time_package(args, folder):
    """train.py's seconds per iteration after the warm-up: (loop clock, wall_time)."""
    out = os.path.join(folder, "run")
    total = args.warmup + args.iterations
    subprocess.run([sys.executable, os.path.join(ROOT, "train.py")] + data_arguments(args) + [
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
                             "--dataset", args.dataset, "--png-folder", args.png_folder,
                             "--threads", str(args.threads),
                             "--iterations", str(args.iterations),
                             "--warmup", str(args.warmup)],
                            env=_env(args.threads), check=True, stdout=subprocess.PIPE,
                            text=True)
    return json.loads(result.stdout.strip().splitlines()[-1])["seconds_per_iteration"]


def worker_images(args):
    """uint8 (N, 32, 32, 3): the PNG folder read by the package's folder reader, or the dataset."""
    if args.png_folder:
        from sngan_gluon.data import get_dataset
        images = get_dataset("folder", root=args.png_folder, image_size=32, channels=3).images
        return np.array(images)  # a writable copy of the cached, memory-mapped array
    import reference_torch  # torch: imported by the worker process only
    return reference_torch.load_images(args.dataset)


def torch_worker(args):
    import torch
    from torch_loop import TorchLoop
    torch.set_num_threads(args.threads)
    loop = TorchLoop(worker_images(args))
    for _ in range(args.warmup):
        loop.iteration()
    start = time.perf_counter()
    for _ in range(args.iterations):
        loop.iteration()
    print(json.dumps(dict(seconds_per_iteration=(time.perf_counter() - start) / args.iterations)))


def compare(args):
    """Run the interleaved rounds; print each round, then the medians and the spread."""
    print("processor: %s; %d threads; %s; %d rounds of %d + %d iterations (warm-up not timed)"
          % (processor_name(), args.threads,
             "32x32 PNGs of %s in a folder" % args.dataset if args.png_folder else args.dataset,
             args.rounds, args.warmup, args.iterations), flush=True)
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


def build_parser():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--iterations", type=int, default=60,
                        help="timed iterations per run (a multiple of --warmup)")
    parser.add_argument("--warmup", type=int, default=20, help="untimed iterations per run")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--dataset", default="digits")
    parser.add_argument("--pngs", action="store_true",
                        help="train both on the dataset written as a folder of PNG files")
    parser.add_argument("--torch-worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--png-folder", default="", help=argparse.SUPPRESS)
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.iterations % args.warmup:
        parser.error("--iterations must be a multiple of --warmup (the log rows' spacing)")
    if args.torch_worker:
        return torch_worker(args)
    if not args.pngs:
        return compare(args)
    from sngan_gluon.data import get_dataset
    with tempfile.TemporaryDirectory() as args.png_folder:
        write_pngs(get_dataset(args.dataset, image_size=32, channels=3).images, args.png_folder)
        compare(args)


if __name__ == "__main__":
    main()
