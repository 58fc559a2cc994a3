"""One checkpoint, sampled five ways: which BatchNorm statistics and which generator.

The inference-BatchNorm and EMA hypotheses of the parity study, one factor at
a time on the same weights. For every checkpoint of the run folders given (or
each checkpoint folder given), ``quality_parity.VARIANTS`` draws ``--num``
samples (the same noise for every variant) of

* ``package``: the trained generator with its running statistics (what
  ``generate`` and the sample grids draw);
* ``package-batch``: the same weights, BatchNorm in training mode over
  batches of 64 (the statistics of each batch);
* ``package-standing``: the running statistics replaced by standing
  statistics (:mod:`sngan_gluon.standing_stats`, 16 batches of 64);
* ``package-ema``: the EMA generator, its running statistics averaged by the
  EMA like every other parameter;
* ``package-ema-standing``: the EMA weights with standing statistics,

and judges them under both stored judges (``stored_judges.py``: ``quality_digits.py``'s
CNN, ``judge_mlp.py``'s MLP): FID against the held-out digits, FID / floor and the
classes holding >= 5% of the samples.

    python benchmarks/bn_variants.py runs/parity/package/run-seed0 --all-checkpoints
"""
import argparse
import json
import os

import numpy as np

from quality_parity import VARIANTS, sample_variant
from stored_judges import JUDGES, digits_splits, load_judges

from sngan_gluon import checkpoint as ckpt
from sngan_gluon.checkpoint_search import resolve_checkpoint


def checkpoints_of(paths, every):
    """Checkpoint folders: each path's newest one, or with ``every`` all of its own."""
    out = []
    for path in paths:
        if every and os.path.isdir(os.path.join(path, "checkpoints")):
            out += [p for _, p in ckpt.list_checkpoints(os.path.join(path, "checkpoints"))]
        else:
            out.append(resolve_checkpoint(path))
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", help="run folders or checkpoint folders")
    parser.add_argument("--all-checkpoints", action="store_true",
                        help="every checkpoint of each run folder, not only the newest")
    parser.add_argument("--num", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0, help="noise seed of the samples")
    parser.add_argument("--judges", default=JUDGES, help="the folder of the stored judges")
    parser.add_argument("--json", default=None, help="also write the figures here")
    args = parser.parse_args(argv)
    judges, about = load_judges(args.judges, *digits_splits())
    for name, info in about.items():
        print("%s: %s, held-out accuracy %.3f, floor %.2f" % (
            name, info["about"], info["accuracy"], info["floor"]))
    print("| checkpoint | variant | FID judge 1 (CNN) | / floor | FID judge 2 (MLP) | / floor "
          "| classes >= 5% (1, 2) |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    rows = []
    for path in checkpoints_of(args.runs, args.all_checkpoints):
        for variant in VARIANTS:
            samples = sample_variant(path, variant, args.num, args.seed)
            if samples is None:
                continue
            figures = {name: judge(samples) for name, judge in judges.items()}
            rows.append({"checkpoint": path, "variant": variant, "figures": figures})
            print("| %s | %s | %.2f | %.2f | %.2f | %.2f | %d, %d |" % (
                path, variant, figures["cnn"]["fid"], figures["cnn"]["fid"] / about["cnn"]["floor"],
                figures["mlp"]["fid"], figures["mlp"]["fid"] / about["mlp"]["floor"],
                figures["cnn"]["classes_with_5pct"], figures["mlp"]["classes_with_5pct"]),
                flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"judges": about, "rows": rows}, f, indent=1,
                      default=lambda x: np.asarray(x).tolist())


if __name__ == "__main__":
    main()
