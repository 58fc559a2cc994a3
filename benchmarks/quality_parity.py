"""Side by side on the digits: the package's SN-GAN and an independent PyTorch one.

Both train ``train.py``'s defaults (the paper's setting B: standard CNN, hinge,
Adam(1e-4, 0.5, 0.999), n_dis 1, batch 64, z 100, clipping 10; no EMA) on the
digits training split for ``--iterations`` generator updates, once per seed;
``benchmarks/reference_torch.py`` is the PyTorch side. Each writes ``--num``
samples of its generator in inference mode in the package's ``.npz`` contract
to ``OUT/<impl>/seed<S>.npz``, and every such file under ``--out-dir`` is then
judged alike by ``benchmarks/quality_digits.py``'s digits classifier (imported,
not copied): FID against the held-out digits, FID / the real-vs-real floor, the
classifier's Inception-style score and the classes holding >= 5% of the samples,
per seed and the median over seeds.

    python benchmarks/quality_parity.py --out-dir runs/parity --seeds 0 1 2
    python benchmarks/quality_parity.py --out-dir runs/parity --impl torch --seeds 3
    python benchmarks/quality_parity.py --out-dir runs/parity --table-only

``--impl`` trains one side only; ``--table-only`` judges what the folder holds
(several processes can train into one folder at once). One-factor swaps get a
``--tag``: ``--set KEY=VALUE`` overrides a field of the package's
``TrainConfig``, ``--torch KEY=VALUE`` an argument of ``reference_torch.train``
(``init=normal``, ``u_warmup=0``, ``bn0=unit``), and the files go to
``OUT/<impl>-<tag>/``.
"""
import argparse
import glob
import json
import os
import re
import time

import numpy as np

from quality_digits import Judge, draw, train_classifier
import reference_torch

from sngan_gluon.config import TrainConfig
from sngan_gluon.data import get_dataset, to_tensor, to_uint8


def _value(text):
    try:
        return json.loads(text)
    except ValueError:
        return text


def _pairs(items):
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise SystemExit("error: expected KEY=VALUE, got %r" % item)
        out[key.replace("-", "_")] = _value(value)
    return out


def package_config(iterations, seed, overrides=None):
    """``train.py``'s defaults on the digits for ``iterations``, with ``overrides`` set."""
    config = TrainConfig(dataset="digits", iterations=iterations, seed=seed, quiet=True,
                         log_every=50, sample_every=iterations, checkpoint_every=iterations)
    for key, value in (overrides or {}).items():
        if not hasattr(config, key):
            raise SystemExit("error: TrainConfig has no field %r" % key)
        setattr(config, key, value)
    return config


def train_package(train, iterations, seed, num, run_dir, overrides=None):
    """Train the package; uint8 samples (num, H, W, C) of its (EMA) generator."""
    from sngan_gluon.trainer import GANTrainer
    config = package_config(iterations, seed, overrides)
    trainer = GANTrainer(config, dataset=train)
    trainer.train(run_dir)
    G = trainer.G_ema if trainer.G_ema is not None else trainer.G
    return to_uint8(draw(G, num, config.z_dim, seed + 1))


def train_torch(train, iterations, seed, num, options=None):
    """Train the PyTorch reference; uint8 samples (num, H, W, C) of its generator."""
    G = reference_torch.train(train.images, iterations, seed=seed, **(options or {}))
    return reference_torch.sample(G, num, seed=seed + 1)


def judge_folder(out_dir, judge_of):
    """{name: [(seed, figures)]} for every ``OUT/<name>/seed<S>.npz``."""
    table = {}
    for path in sorted(glob.glob(os.path.join(out_dir, "*", "seed*.npz"))):
        match = re.match(r"seed(\d+)\.npz$", os.path.basename(path))
        if not match:
            continue
        with np.load(path) as f:
            images = f["images"]
        figures = judge_of(to_tensor(images))
        table.setdefault(os.path.basename(os.path.dirname(path)), []).append(
            (int(match.group(1)), figures))
    return table


def format_table(table, floor):
    """The per-seed and median rows, as markdown."""
    lines = ["| implementation | seed | FID | FID / floor | score | classes >= 5% |",
             "| --- | --- | --- | --- | --- | --- |"]
    for name, rows in sorted(table.items()):
        for seed, r in sorted(rows, key=lambda row: row[0]):
            lines.append("| %s | %d | %.2f | %.2f | %.2f | %d / 10 |"
                         % (name, seed, r["fid"], r["fid_over_floor"], r["score"],
                            r["classes_with_5pct"]))
        fids = [r["fid"] for _, r in rows]
        lines.append("| **%s** | median of %d | **%.2f** | **%.2f** | %.2f | min %d / 10 |"
                     % (name, len(rows), np.median(fids), np.median(fids) / floor,
                        np.median([r["score"] for _, r in rows]),
                        min(r["classes_with_5pct"] for _, r in rows)))
    return "\n".join(lines)


def build_parser():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out-dir", default="runs/parity")
    parser.add_argument("--iterations", type=int, default=1500)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--impl", choices=("both", "package", "torch"), default="both")
    parser.add_argument("--num", type=int, default=2000, help="samples judged per run")
    parser.add_argument("--tag", default="", help="suffix of the implementation's folder")
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        metavar="KEY=VALUE", help="a TrainConfig field of the package's runs")
    parser.add_argument("--torch", dest="torch_options", action="append", default=[],
                        metavar="KEY=VALUE", help="an argument of reference_torch.train")
    parser.add_argument("--table-only", action="store_true", help="judge, do not train")
    parser.add_argument("--judge-epochs", type=int, default=15,
                        help="training epochs of the judge (fewer only for smoke tests)")
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    train = get_dataset("digits", image_size=32, channels=3, train=True)
    test = get_dataset("digits", image_size=32, channels=3, train=False)
    suffix = "-" + args.tag if args.tag else ""
    impls = [] if args.table_only else (["package", "torch"] if args.impl == "both"
                                        else [args.impl])
    for seed in args.seeds if impls else []:
        for impl in impls:
            folder = os.path.join(args.out_dir, impl + suffix)
            os.makedirs(folder, exist_ok=True)
            start = time.time()
            if impl == "package":
                samples = train_package(train, args.iterations, seed, args.num,
                                        os.path.join(folder, "run-seed%d" % seed),
                                        _pairs(args.overrides))
            else:
                samples = train_torch(train, args.iterations, seed, args.num,
                                      _pairs(args.torch_options))
            np.savez_compressed(os.path.join(folder, "seed%d.npz" % seed), images=samples)
            print("%s seed %d: %d iterations in %.1f min"
                  % (impl + suffix, seed, args.iterations, (time.time() - start) / 60),
                  flush=True)
    classifier, accuracy = train_classifier(train, test, epochs=args.judge_epochs)
    judge_of = Judge(classifier, train, test)
    table = judge_folder(args.out_dir, judge_of)
    print("judge: digits CNN, held-out accuracy %.3f; real-vs-real FID floor %.2f"
          % (accuracy, judge_of.floor))
    print(format_table(table, judge_of.floor))
    with open(os.path.join(args.out_dir, "parity.json"), "w") as f:
        json.dump({"floor": judge_of.floor, "accuracy": accuracy,
                   "runs": {name: {str(seed): figures for seed, figures in rows}
                            for name, rows in table.items()}}, f, indent=1)


if __name__ == "__main__":
    main()
