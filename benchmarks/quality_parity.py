"""Side by side on the digits: the package's SN-GAN and two independent PyTorch ones, two judges.

Every implementation trains ``train.py``'s defaults (the paper's setting B:
standard CNN, hinge, Adam(1e-4, 0.5, 0.999), n_dis 1, batch 64, z 100,
clipping 10) on the digits training split for ``--iterations`` generator
updates, once per seed:

* ``package``: ``sngan_gluon``'s ``GANTrainer``. It also keeps an EMA
  generator (decay 0.999) as a shadow: the EMA reads G's weights and writes
  only its own, so the trained generator is the one ``train.py``'s defaults
  train (``tests/test_benchmarks.py`` checks it weight for weight). Its run
  folder ``OUT/package/run-seed<S>`` keeps the checkpoints;
* ``torch``: reference A, ``benchmarks/reference_torch.py`` (a BatchNorm per
  channel after G's dense layer, as the package);
* ``torch-nobn0``: reference B, the same with no BatchNorm after the dense
  layer (the paper's table 3 as written).

Each writes ``--num`` samples of its generator in inference mode in the
package's ``.npz`` contract to ``OUT/<impl>/seed<S>.npz``. From each package
checkpoint the benchmark also draws the BatchNorm and EMA variants of the same
run (``VARIANTS``): ``package-batch`` (batch statistics over batches of 64),
``package-standing`` (standing statistics, :mod:`sngan_gluon.standing_stats`),
``package-ema`` (the EMA generator with its averaged running statistics) and
``package-ema-standing``. A finished run or sample file is skipped, an
unfinished run resumes from its newest checkpoint (every 100 iterations; a
reference's is ``seed<S>.state.pt`` beside its samples, until they are written):
the command can be stopped and started again.

Every ``seed<S>.npz`` under ``--out-dir`` is then judged by two independent
judges: ``quality_digits.py``'s CNN and ``judge_mlp.py``'s MLP, both stored in
``benchmarks/results/judges/`` (``stored_judges.py``: the same networks on every
machine): one table holds, per generator and judge, the FID against the held-out
digits per seed, the median and spread over seeds, and the classes holding >= 5%
of the samples. Under it, one line per judge says whether the package's median
is no worse than each reference's, once every row has five seeds (``verdict``).

    python benchmarks/quality_parity.py --out-dir runs/parity --seeds 0 1 2 3 4
    python benchmarks/quality_parity.py --out-dir runs/parity --impl torch-nobn0 --seeds 5
    python benchmarks/quality_parity.py --out-dir runs/parity --table-only

``--impl`` trains some implementations only; ``--table-only`` judges what the
folder holds (several processes can train into one folder at once).
``--merge REPORT`` adds the rows of a ``parity.json`` written elsewhere (another
machine, another day) to the table, on one condition: it was judged by the same
stored judges (the SHA-256 of their files) and its floors agree with this
machine's to 1e-4 (float32 inference differs between CPUs by parts in a million).
So the fifteen runs are trained in parts and judged as one table;
``benchmarks/results/parity.json`` holds the runs judged so far:

    OMP_NUM_THREADS=1 python benchmarks/quality_parity.py --seeds 2 3 4 \
        --merge benchmarks/results/parity.json

One-factor swaps get a ``--tag``: ``--set KEY=VALUE`` overrides a field of
the package's ``TrainConfig``, ``--torch KEY=VALUE`` an argument of
``reference_torch.train`` (``init=normal``, ``u_warmup=0``, ``bn0=unit``),
and each row's files go to ``OUT/<row>-<tag>/`` (``package-ema-m081``), which the
table shows after the untagged rows, labelled ``[<tag>]``. ``--compare TAG`` then
prints each tagged row against its untagged row, seed by seed (:func:`compare`):

    python benchmarks/quality_parity.py --out-dir EMPTY --table-only \
        --merge benchmarks/results/parity.json --compare m081
"""
import argparse
import glob
import json
import os
import re
import time

import numpy as np

from quality_digits import draw
import reference_torch
from stored_judges import JUDGES, digits_splits, load_judges

from mxnet import autograd

from sngan_gluon import checkpoint as ckpt
from sngan_gluon.checkpoint_search import resolve_checkpoint
from sngan_gluon.config import TrainConfig
from sngan_gluon.data import to_uint8
from sngan_gluon.sampling import LoadedGenerator
from sngan_gluon.standing_stats import standing_statistics

#: implementation -> the arguments of ``reference_torch.train`` (None: the package)
IMPLS = {"package": None, "torch": {}, "torch-nobn0": {"bn0": "none"}}
#: the references the package is compared with
REFERENCES = tuple(name for name, options in IMPLS.items() if options is not None)
#: the package's EMA shadow (see the module's docstring)
SHADOW_EMA = 0.999
#: variant of a package run -> (EMA generator?, BatchNorm statistics at sampling)
VARIANTS = {"package": (False, "running"), "package-batch": (False, "batch"),
            "package-standing": (False, "standing"), "package-ema": (True, "running"),
            "package-ema-standing": (True, "standing")}
STANDING_BATCHES = 16
#: iterations between two checkpoints of a run, the package's and the references'
CHECKPOINT_EVERY = 100
BATCH = 64  # the training batch: batch statistics are taken over batches of this size


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
    """``train.py``'s defaults on the digits for ``iterations``, with ``overrides`` set;
    an EMA shadow is kept unless an override sets ``ema``."""
    config = TrainConfig(dataset="digits", iterations=iterations, seed=seed, quiet=True,
                         log_every=50, sample_every=iterations, ema=SHADOW_EMA,
                         checkpoint_every=CHECKPOINT_EVERY, keep_checkpoints=1)
    for key, value in (overrides or {}).items():
        if not hasattr(config, key):
            raise SystemExit("error: TrainConfig has no field %r" % key)
        setattr(config, key, value)
    return config


def _newest_checkpoint(run_dir):
    """(path, iteration) of the run's newest valid checkpoint, or (None, 0)."""
    try:
        path = resolve_checkpoint(run_dir)
    except ckpt.CheckpointError:
        return None, 0
    return path, int(ckpt.read_state(path)["iteration"])


def train_package(train, iterations, seed, run_dir, overrides=None):
    """Train (or finish) the package's run in ``run_dir``; its final checkpoint's path."""
    from sngan_gluon.trainer import GANTrainer
    path, done = _newest_checkpoint(run_dir)
    if path is None or done < iterations:
        GANTrainer(package_config(iterations, seed, overrides), dataset=train).train(
            run_dir, resume=path)
        path, done = _newest_checkpoint(run_dir)
    assert done == iterations, (run_dir, done)
    return path


def sample_variant(path, variant, num, seed, standing_batches=STANDING_BATCHES):
    """uint8 samples (num, H, W, C) of a package checkpoint drawn as ``variant`` says
    (standing statistics over ``standing_batches`` batches of 64)."""
    use_ema, statistics = VARIANTS[variant]
    loaded = LoadedGenerator(path, use_ema=use_ema)
    if use_ema and not loaded.ema:
        return None  # a run without an EMA generator
    G, z_dim = loaded.net, loaded.z_dim
    if statistics == "standing":
        standing_statistics(G, z_dim, batches=standing_batches, batch_size=BATCH,
                            seed=seed + 1000, num_classes=loaded.num_classes)
    if statistics == "batch":
        with autograd.train_mode():  # outside record: the running statistics stay as they are
            images = draw(G, num, z_dim, seed + 1, loaded.num_classes, batch=BATCH)
    else:
        images = draw(G, num, z_dim, seed + 1, loaded.num_classes)
    return to_uint8(images)


def train_torch(train, iterations, seed, num, checkpoint, options=None):
    """Train (or finish, from ``checkpoint``) a PyTorch reference; uint8 samples
    (num, H, W, C) of its generator."""
    G = reference_torch.train(train.images, iterations, seed=seed, checkpoint=checkpoint,
                              checkpoint_every=CHECKPOINT_EVERY, **(options or {}))
    return reference_torch.sample(G, num, seed=seed + 1)


def _save(folder, seed, samples):
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, "seed%d.npz" % seed)
    np.savez_compressed(path + ".tmp.npz", images=samples)
    os.replace(path + ".tmp.npz", path)


def run_one(impl, seed, args, train):
    """Train ``impl`` at ``seed`` unless its samples exist; write every sample file it owns."""
    suffix = "-" + args.tag if args.tag else ""
    start = time.time()
    if impl == "package":
        with_ema = package_config(args.iterations, seed, _pairs(args.overrides)).ema > 0
        names = [v for v in VARIANTS if with_ema or not VARIANTS[v][0]]
        missing = [v for v in names
                   if not os.path.isfile(os.path.join(args.out_dir, v + suffix,
                                                      "seed%d.npz" % seed))]
        if not missing:
            return
        path = train_package(train, args.iterations, seed,
                             os.path.join(args.out_dir, "package" + suffix, "run-seed%d" % seed),
                             _pairs(args.overrides))
        for variant in missing:
            samples = sample_variant(path, variant, args.num, seed, args.standing_batches)
            if samples is not None:
                _save(os.path.join(args.out_dir, variant + suffix), seed, samples)
    else:
        folder = os.path.join(args.out_dir, impl + suffix)
        if os.path.isfile(os.path.join(folder, "seed%d.npz" % seed)):
            return
        options = dict(IMPLS[impl], **_pairs(args.torch_options))
        os.makedirs(folder, exist_ok=True)
        checkpoint = os.path.join(folder, "seed%d.state.pt" % seed)
        _save(folder, seed, train_torch(train, args.iterations, seed, args.num, checkpoint,
                                        options))
        if os.path.isfile(checkpoint):
            os.remove(checkpoint)
    # the minutes are this process's: a resumed run's earlier iterations are not in them
    print("%s seed %d: trained to %d iterations and sampled, %.1f min in this process"
          % (impl + suffix, seed, args.iterations, (time.time() - start) / 60), flush=True)


def judge_folder(out_dir, judges):
    """{name: [(seed, {judge: figures})]} for every ``OUT/<name>/seed<S>.npz``."""
    table = {}
    for path in sorted(glob.glob(os.path.join(out_dir, "*", "seed*.npz"))):
        match = re.match(r"seed(\d+)\.npz$", os.path.basename(path))
        if not match:
            continue
        with np.load(path) as f:
            images = f["images"]
        figures = {name: judge(images) for name, judge in judges.items()}
        table.setdefault(os.path.basename(os.path.dirname(path)), []).append(
            (int(match.group(1)), figures))
    return table


#: how far a report's floors may lie from this machine's (relative): float32 inference
FLOOR_TOLERANCE = 1e-4


def _same_figures(a, b):
    """Whether two judges' figures of one sample file agree (to :data:`FLOOR_TOLERANCE`)."""
    return a.keys() == b.keys() and all(
        np.isclose(a[j]["fid"], b[j]["fid"], rtol=FLOOR_TOLERANCE, atol=0) for j in a)


def merge_report(table, report, about, iterations):
    """Add to ``table`` (:func:`judge_folder`'s) the rows of ``report`` (a ``parity.json``).

    ``about``: :func:`stored_judges.load_judges`' description of this process's judges.
    A report of other iterations or other judges (another file, or a floor more than
    :data:`FLOOR_TOLERANCE` away), or a row judged differently here, is an error."""
    if report.get("iterations") != iterations:
        raise SystemExit("error: the report holds runs of %s iterations, not %d"
                         % (report.get("iterations"), iterations))
    for name, mine in about.items():
        theirs = report.get("judges", {}).get(name, {})
        if theirs.get("sha256") != mine["sha256"] or not np.isclose(
                theirs.get("floor", np.nan), mine["floor"], rtol=FLOOR_TOLERANCE, atol=0):
            raise SystemExit(
                "error: the report's judge %r is not this one (sha256 %s, floor %s there; "
                "%s, %r here): judge with the same stored judges"
                % (name, theirs.get("sha256"), theirs.get("floor"), mine["sha256"],
                   mine["floor"]))
    for impl, rows in report.get("runs", {}).items():
        here = dict(table.get(impl, []))
        for seed, figures in rows.items():
            seed = int(seed)
            if seed in here and not _same_figures(here[seed], figures):
                raise SystemExit("error: %s seed %d is in the report and here, judged "
                                 "differently: two runs of one seed" % (impl, seed))
            if seed not in here:
                table.setdefault(impl, []).append((seed, figures))


#: row name (:data:`VARIANTS`, :data:`IMPLS`) -> what the table calls it; a tagged row
#: (``package-ema-m081``) is its row's label with the tag (:func:`label`)
LABELS = {"package": "package (what `generate` draws)",
          "package-batch": "package, batch statistics",
          "package-standing": "package, standing statistics",
          "package-ema": "package, EMA generator",
          "package-ema-standing": "package, EMA, standing statistics",
          "torch": "reference A (BatchNorm after the dense layer)",
          "torch-nobn0": "reference B (no BatchNorm after the dense layer)"}
#: the seeds a row needs before :func:`verdict` compares its median
SEEDS_NEEDED = 5


def _split(name):
    """``package-ema-m081`` -> (``package-ema``, ``m081``): the row of :data:`LABELS` and
    the ``--tag``; a row of :data:`LABELS` has the tag ``""``, any other (None, name)."""
    if name in LABELS:
        return name, ""
    bases = [base for base in LABELS if name.startswith(base + "-")]
    if not bases:
        return None, name
    base = max(bases, key=len)
    return base, name[len(base) + 1:]


def label(name):
    """What the table calls row ``name``: ``package, EMA generator [m081]``."""
    base, tag = _split(name)
    if base is None:
        return name
    return LABELS[base] + (" [%s]" % tag if tag else "")


def _ordered(table):
    """``table``'s rows: untagged ones first, then each tag's; in :data:`LABELS`' order."""
    def key(name):
        base, tag = _split(name)
        return tag, list(LABELS).index(base) if base else len(LABELS), name
    return sorted(table, key=key)


def format_table(table, judges):
    """One markdown row per generator: per judge (``judges``, names in order), the FID
    per seed, its median and spread (max - min); the classes >= 5% per seed."""
    head = "| generator | seeds | "
    for number, _ in enumerate(judges, 1):
        head += "judge %d: FID per seed | median | spread | " % number
    head += "classes >= 5%% (%s) |" % "; ".join("judge %d" % n for n in range(1, len(judges) + 1))
    lines = [head, "|" + " --- |" * (head.count("|") - 1)]
    for name in _ordered(table):
        rows = sorted(table[name], key=lambda row: row[0])
        line = "| %s | %s | " % (label(name), ", ".join(str(s) for s, _ in rows))
        for judge in judges:
            fids = [figures[judge]["fid"] for _, figures in rows]
            line += "%s | %.2f | %.2f | " % (", ".join("%.2f" % f for f in fids),
                                             np.median(fids), max(fids) - min(fids))
        line += "%s |" % "; ".join(
            ", ".join(str(figures[judge]["classes_with_5pct"]) for _, figures in rows)
            for judge in judges)
        lines.append(line)
    return "\n".join(lines)


def _short(name):
    """``package``, ``reference A``: a row's label without its explanation."""
    return label(name).split(" (")[0]


def verdict(table, judges, package="package", references=REFERENCES):
    """One line per judge: whether ``package``'s median FID is no worse than each
    reference's, decided only once every row has :data:`SEEDS_NEEDED` seeds."""
    lines = []
    for number, judge in enumerate(judges, 1):
        medians, short = {}, []
        for name in (package,) + tuple(references):
            fids = [figures[judge]["fid"] for _, figures in table.get(name, [])]
            if fids:
                medians[name] = np.median(fids)
            if len(fids) < SEEDS_NEEDED:
                short.append("%s %d of %d seeds" % (_short(name), len(fids), SEEDS_NEEDED))
        if short:
            lines.append("judge %d: undecided (%s)" % (number, ", ".join(short)))
            continue
        worse = [name for name in references if medians[package] > medians[name]]
        lines.append("judge %d: %s median %.2f %s %s" % (
            number, _short(package), medians[package],
            "is no worse than" if not worse else "is worse than",
            ", ".join("%s %.2f" % (_short(name), medians[name])
                      for name in (worse or references))))
    return lines


def compare(table, tag, judges):
    """One line per row of :data:`LABELS` that has a ``-<tag>`` twin in ``table``: per
    judge (``judges``, names in order), the tagged run's FID against the untagged one's,
    seed by seed, as a relative change; or, where every figure of every shared seed is
    the same (to :data:`FLOOR_TOLERANCE`), that the two rows judged the same samples."""
    lines = []
    for base in LABELS:
        tagged, plain = dict(table.get(base + "-" + tag, [])), dict(table.get(base, []))
        seeds = sorted(set(tagged) & set(plain))
        if not seeds:
            continue
        head = "%s: seeds %s" % (label(base + "-" + tag), ", ".join(map(str, seeds)))
        if all(_same_figures(tagged[s], plain[s]) for s in seeds):
            lines.append(head + ": the untagged row's figures, every seed and judge")
            continue
        parts = []
        for number, judge in enumerate(judges, 1):
            new, old = ([rows[s][judge]["fid"] for s in seeds] for rows in (tagged, plain))
            parts.append("judge %d %s (median %.2f against %.2f)" % (
                number, ", ".join("%+.1f%%" % (100 * (a / b - 1)) for a, b in zip(new, old)),
                np.median(new), np.median(old)))
        lines.append(head + ": " + "; ".join(parts))
    return lines


def build_parser():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out-dir", default="runs/parity")
    parser.add_argument("--iterations", type=int, default=1500)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--impl", nargs="+", choices=sorted(IMPLS), default=sorted(IMPLS),
                        help="implementations to train (default: all)")
    parser.add_argument("--num", type=int, default=2000, help="samples judged per run")
    parser.add_argument("--tag", default="", help="suffix of the implementation's folder")
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        metavar="KEY=VALUE", help="a TrainConfig field of the package's runs")
    parser.add_argument("--torch", dest="torch_options", action="append", default=[],
                        metavar="KEY=VALUE", help="an argument of reference_torch.train")
    parser.add_argument("--table-only", action="store_true", help="judge, do not train")
    parser.add_argument("--merge", action="append", default=[], metavar="REPORT",
                        help="a parity.json judged by the same judges: its rows join the table")
    parser.add_argument("--standing-batches", type=int, default=STANDING_BATCHES,
                        help="batches of 64 noise vectors that standing statistics average "
                             "(fewer only for smoke tests)")
    parser.add_argument("--compare", metavar="TAG",
                        help="after the table, each row tagged TAG against its untagged row")
    parser.add_argument("--judges", default=JUDGES,
                        help="the folder of the stored judges (default: the project's)")
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    train, test = digits_splits()
    judges, about = load_judges(args.judges, train, test)  # a missing judge stops it here
    impls = [] if args.table_only else args.impl
    for seed in args.seeds if impls else []:
        for impl in impls:
            run_one(impl, seed, args, train)
    table = judge_folder(args.out_dir, judges)
    for path in args.merge:
        with open(path) as f:
            merge_report(table, json.load(f), about, args.iterations)
    for name in judges:
        print("%(about)s: held-out accuracy %(accuracy).3f; real-vs-real FID floor "
              "%(floor).2f" % about[name])
    print("\n" + format_table(table, list(judges)) + "\n")
    print("\n".join(verdict(table, list(judges))))
    if args.compare:
        print("\n[%s] against the untagged rows (FID, tagged against untagged):" % args.compare)
        print("\n".join(compare(table, args.compare, list(judges))))
    report = {"iterations": args.iterations, "judges": about,
              "runs": {impl: {str(seed): figures for seed, figures in rows}
                       for impl, rows in table.items()}}
    os.makedirs(args.out_dir, exist_ok=True)
    with open(os.path.join(args.out_dir, "parity.json"), "w") as f:
        json.dump(report, f, indent=1)


if __name__ == "__main__":
    main()
