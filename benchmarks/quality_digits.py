"""Does the package train *good* generators? An offline check on scikit-learn's digits.

CIFAR-10 and the Inception weights cannot be had offline, so this benchmark
brings its own judge: a small CNN classifier trained here on the digits
*training* split only. It then

1. trains the default ``dcgan`` (hinge loss, the standard CNN at 32x32; by
   default batch 32, a constant Adam(4e-4, 0.5, 0.999) with n_dis 1 (setting C
   at twice its learning rate; ``--lr-decay linear`` decays it to 0), the
   mode-seeking term in G's loss at weight 1 (``--mode-seeking W``; 0: off)
   and an EMA generator, ``--ema 0.999``) on the digits training split for
   ``--iterations`` (1,250) generator updates, with spectral normalization
   or, with ``--no-sn``, without it; ``--conditional`` trains the
   class-conditional dcgan instead (conditional BatchNorm in G, a projection
   D), ``--loss bce`` the BCE loss, ``--diffaugment`` adds DiffAugment,
   ``--lecam W`` the LeCam regulariser;
   ``--beta1``, ``--beta2`` and ``--n-dis`` override the setting's;
2. draws ``--num`` samples from the trained generator, raw and EMA;
3. prints, in the classifier's terms: an Inception-style score (exp E KL(p(y|x)
   || p(y)); 10 is the maximum for 10 balanced, confidently recognised classes),
   the FID between generated and *held-out* real digits in the classifier's
   128-d feature space, with the real-vs-real floor beside it (training split vs
   held-out split: the FID that perfect samples would get at these sample
   sizes), and how many of the 10 classes hold at least 5% of the samples.
   Beside the FID it prints a class-balanced one (the samples redrawn in
   equal shares of the classes the judge sees in them), which tells wrong
   class proportions from poorly drawn digits; the target is on the FID itself.
   ``--judge-every N`` prints the same figures every N iterations (N a multiple
   of 50, the logging interval) and keeps them in ``quality.json``; it also
   keeps, as the run's ``best`` checkpoint, the judged iteration whose samples
   have the lowest FID against the *training* digits, and reports that
   "selected" generator's held-out figures beside the final ones.

Targets: all 10 classes, FID within 2x of the real-data floor. The figures of
the EMA generator (the raw one's without ``--ema``) are the ones judged. The
judge is retrained each run; its floor moves by a few percent with the number
of OpenMP threads (10.4 with one, 10.1 with two on our machine), since float
sums are ordered differently.

    python benchmarks/quality_digits.py --out-dir runs/quality-sn --judge-every 250
    python benchmarks/quality_digits.py --out-dir runs/quality-nosn --judge-every 250 --no-sn

The run folder is an ordinary training run (samples, log, checkpoints); the
figures are also written to ``quality.json`` in it.
"""
import argparse
import csv
import json
import os
import time

import numpy as np

import sngan_gluon  # noqa: F401
import mxnet as mx
from mxnet import autograd, gluon, nd
from mxnet.gluon import nn

from sngan_gluon.config import TrainConfig
from sngan_gluon.data import get_dataset, to_tensor
from sngan_gluon.metrics import frechet_distance, inception_score
from sngan_gluon.sampling import LoadedGenerator, generate_batches
from sngan_gluon.trainer import GANTrainer


class DigitsClassifier(nn.HybridBlock):
    """Two conv blocks, a 128-unit feature layer; ``features(x)`` (N, 128), ``self(x)`` logits."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        with self.name_scope():
            self.body = nn.HybridSequential()
            self.body.add(nn.Conv2D(32, 3, padding=1, activation="relu"), nn.MaxPool2D(2),
                          nn.Conv2D(64, 3, padding=1, activation="relu"), nn.MaxPool2D(2),
                          nn.Flatten(), nn.Dense(128, activation="relu"))
            self.head = nn.Dense(10)

    def features(self, x):
        return self.body(x)

    def hybrid_forward(self, F, x):
        return self.head(self.body(x))


def train_classifier(train, test, epochs=15, seed=0):
    mx.random.seed(seed)
    net = DigitsClassifier()
    net.initialize(mx.init.Xavier())
    net.hybridize()
    trainer = gluon.Trainer(net.collect_params(), "adam", {"learning_rate": 1e-3})
    loss_fn = gluon.loss.SoftmaxCrossEntropyLoss()
    x_all, y_all = to_tensor(train.images), nd.array(train.labels)
    rng = np.random.RandomState(seed)
    for _ in range(epochs):
        order = rng.permutation(len(train.images))
        for start in range(0, len(order), 64):
            idx = nd.array(order[start:start + 64], dtype="int32")
            with autograd.record():
                loss = loss_fn(net(x_all.take(idx)), y_all.take(idx))
            loss.backward()
            trainer.step(len(idx))
    pred = net(to_tensor(test.images)).argmax(axis=1).asnumpy()
    return net, float((pred == test.labels).mean())


def judge(net, images_nchw, batch=200):
    """(probabilities (N, 10), features (N, 128)) of float NCHW images in [-1, 1]."""
    probs, feats = [], []
    for start in range(0, images_nchw.shape[0], batch):
        x = images_nchw[start:start + batch]
        feats.append(net.features(x).asnumpy())
        probs.append(nd.softmax(net(x)).asnumpy())
    return np.concatenate(probs), np.concatenate(feats).astype(np.float64)


def draw_by_class(labels, counts, rng):
    """Indices (sum(counts),) into ``labels``: ``counts[k]`` drawn with replacement from
    those of class k, for each class k in order (classes with count 0 skipped)."""
    return np.concatenate([rng.choice(np.flatnonzero(labels == k), count)
                           for k, count in enumerate(counts) if count > 0])


def fid(a, b):
    return frechet_distance(a.mean(0), np.cov(a, rowvar=False), b.mean(0), np.cov(b, rowvar=False))


class Judge:
    """The classifier and the held-out statistics every generator is measured against."""

    def __init__(self, classifier, train, test):
        self.net = classifier
        p_test, self.f_test = judge(classifier, to_tensor(test.images))
        self.accuracy = float((p_test.argmax(1) == test.labels).mean())
        _, self.f_train = judge(classifier, to_tensor(train.images))
        self.real_score = inception_score(p_test, splits=1)[0]
        self.floor = fid(self.f_train, self.f_test)

    def calibration(self, train, num=2000, seed=0):
        """FID / floor of the training digits altered in ways a generator might alter them.

        How strict the judge is: ``shift_1px`` moves every image one pixel right (a
        quarter of a source pixel: the 8x8 digits are upsampled 4x), ``dim_10pct``
        scales stroke brightness by 0.9 over the black background. Two more draw
        ``num`` unaltered training digits with replacement, in the wrong proportions:
        ``classes_3_8_at_18pct`` gives 3s and 8s 18% of the draw each (the other
        classes 8% each; generators here over-produce those two), and
        ``only_300_digits`` draws from 300 of them only (a generator of little
        variety). The unaltered training split gives 1.0 by definition.
        """
        x = to_tensor(train.images).asnumpy()
        shifted = np.full_like(x, -1.0)
        shifted[..., 1:] = x[..., :-1]
        rng = np.random.RandomState(seed)
        shares = np.where(np.isin(np.arange(10), (3, 8)), 0.18, 0.08)
        skewed = draw_by_class(train.labels, np.rint(num * shares).astype(int), rng)
        few = rng.choice(rng.permutation(len(x))[:300], num)
        altered = {"shift_1px": shifted, "dim_10pct": (x + 1.0) * 0.9 - 1.0,
                   "classes_3_8_at_18pct": x[skewed], "only_300_digits": x[few]}
        return {name: fid(judge(self.net, nd.array(images))[1], self.f_test) / self.floor
                for name, images in altered.items()}

    def __call__(self, fake):
        """Figures of ``fake`` (N, C, H, W) in [-1, 1]: score, FID, FID / floor, class shares.

        ``fid_vs_train``, the FID against the training digits, is what a run may be
        steered by (choosing its best checkpoint); the held-out figures are not.
        ``balanced_over_floor`` is a diagnostic, not the judged figure: FID / floor of
        the samples redrawn (with replacement) in equal shares of the classes the
        judge sees in them. Its gap to ``fid_over_floor`` is the part of the FID
        owed to wrong class proportions; what remains is owed to the digits
        themselves.
        """
        p_fake, f_fake = judge(self.net, fake)
        score, score_std = inception_score(p_fake, splits=10)
        predicted = p_fake.argmax(1)
        shares = np.bincount(predicted, minlength=10) / float(len(p_fake))
        value = fid(f_fake, self.f_test)
        per_class = -(-len(p_fake) // 10)
        balanced = draw_by_class(predicted, np.where(shares > 0, per_class, 0),
                                 np.random.RandomState(0))
        return {"score": score, "score_std": score_std, "fid": value,
                "fid_vs_train": fid(f_fake, self.f_train),
                "fid_over_floor": value / self.floor,
                "balanced_over_floor": fid(f_fake[balanced], self.f_test) / self.floor,
                "classes_with_5pct": int((shares >= 0.05).sum()),
                "class_shares": shares.round(3).tolist()}


def draw(G, num, z_dim, seed, num_classes=0, batch=200):
    """``num`` images (N, C, H, W) from ``G`` in inference mode, from noise seeded by ``seed``.

    A conditional ``G`` (``num_classes`` > 0) gets labels drawn uniformly from the same
    generator of random numbers, as the trainer draws them.
    """
    return nd.concat(*generate_batches(G, num, z_dim, np.random.RandomState(seed),
                                       num_classes=num_classes, batch_size=batch), dim=0)


def describe(name, r):
    return ("%-8s score %.2f +- %.2f  FID %.2f (%.2fx floor; class-balanced %.2fx)  "
            "classes >= 5%%: %d / 10" % (name, r["score"], r["score_std"], r["fid"],
                                        r["fid_over_floor"], r["balanced_over_floor"],
                                        r["classes_with_5pct"]))


def build_parser():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=1250)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--setting", default="C", help="the paper's Adam / n_dis setting")
    parser.add_argument("--lr", type=float, default=4e-4,
                        help="overrides the setting's (0: keep it)")
    parser.add_argument("--beta1", type=float, default=None, help="overrides the setting's")
    parser.add_argument("--beta2", type=float, default=None, help="overrides the setting's")
    parser.add_argument("--n-dis", type=int, default=None, help="overrides the setting's")
    parser.add_argument("--loss", default="hinge", choices=("hinge", "bce"),
                        help="the GAN loss (default: hinge)")
    parser.add_argument("--ema", type=float, default=0.999,
                        help="EMA decay of the generator that is judged (0: the raw generator)")
    parser.add_argument("--lr-decay", default="none", choices=("none", "linear"),
                        help="learning-rate schedule (default: constant)")
    parser.add_argument("--diffaugment", default="", help="DiffAugment policy, e.g. "
                        "translation,cutout (default: none)")
    parser.add_argument("--lecam", type=float, default=0.0,
                        help="weight of the LeCam regulariser on D (default: off)")
    parser.add_argument("--mode-seeking", type=float, default=1.0,
                        help="weight of the mode-seeking term in G's loss (default: 1; 0: off)")
    parser.add_argument("--num", type=int, default=2000, help="generated samples to judge")
    parser.add_argument("--judge-every", type=int, default=0,
                        help="also judge the generators every N iterations (a trajectory)")
    parser.add_argument("--no-sn", dest="sn", action="store_false")
    parser.add_argument("--conditional", action="store_true",
                        help="the class-conditional dcgan (conditional BatchNorm in G, a "
                             "projection D), fed uniformly drawn labels when judged")
    parser.add_argument("--judge-epochs", type=int, default=15,
                        help="training epochs of the judge (fewer only for smoke tests)")
    parser.add_argument("--out-dir", default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--from-run", default=None,
                        help="judge an existing digits run (e.g. the README's first command) "
                             "instead of training one")
    return parser


def train_config(args):
    """The :class:`TrainConfig` of the digits run that ``args`` (parsed options) describe."""
    config = TrainConfig(dataset="digits", arch="dcgan", iterations=args.iterations,
                         batch_size=args.batch_size, sn=args.sn, seed=args.seed,
                         ema=args.ema, sample_every=max(args.iterations // 4, 1),
                         checkpoint_every=args.iterations, log_every=50, quiet=True,
                         eval_every=args.judge_every, lecam=args.lecam,
                         conditional=args.conditional, loss=args.loss,
                         mode_seeking=args.mode_seeking)
    config.apply_setting(args.setting)
    config.lr_decay, config.diffaugment = args.lr_decay, args.diffaugment
    if args.lr:
        config.lr = args.lr
    for name in ("beta1", "beta2", "n_dis"):
        if getattr(args, name) is not None:
            setattr(config, name, getattr(args, name))
    return config


def main():
    args = build_parser().parse_args()
    out_dir = args.out_dir or "runs/quality-%s" % ("sn" if args.sn else "nosn")
    train = get_dataset("digits", image_size=32, channels=3, train=True)
    test = get_dataset("digits", image_size=32, channels=3, train=False)
    start = time.time()
    classifier, accuracy = train_classifier(train, test, epochs=args.judge_epochs)
    judge_of = Judge(classifier, train, test)
    print("judge: digits CNN, held-out accuracy %.3f (%d train / %d held-out images, %.0f s); "
          "real-vs-real FID floor %.2f, held-out score %.2f"
          % (accuracy, len(train.images), len(test.images), time.time() - start,
             judge_of.floor, judge_of.real_score))
    calibration = judge_of.calibration(train)
    print("judge's strictness: training digits shifted one pixel %.2fx floor, strokes dimmed "
          "10%% %.2fx; drawn with 3s and 8s at 18%% each %.2fx, drawn from 300 of them %.2fx"
          % (calibration["shift_1px"], calibration["dim_10pct"],
             calibration["classes_3_8_at_18pct"], calibration["only_300_digits"]))
    trajectory, selected = [], None

    if args.from_run:
        loaded = LoadedGenerator(args.from_run, use_ema=args.ema > 0)
        out_dir, cfg = args.from_run, loaded.config
        with open(os.path.join(out_dir, "log.csv")) as f:
            train_time = float(list(csv.DictReader(f))[-1]["wall_time"])
        iteration = loaded.iteration
        fake = nd.concat(*loaded.generate(args.num, seed=args.seed + 1, batch_size=200), dim=0)
        results = {"ema" if loaded.ema else "raw": judge_of(fake)}
    else:
        config = train_config(args)
        trainer = GANTrainer(config, dataset=train)

        def judge_generators(tr):
            """{"raw": figures, "ema": figures (with --ema)} of the trainer's generators now."""
            return {name: judge_of(draw(G, args.num, config.z_dim, args.seed + 1,
                                                 tr.num_classes))
                    for name, G in (("raw", tr.G), ("ema", tr.G_ema)) if G is not None}

        def judge_now(tr):
            trajectory.append(dict(judge_generators(tr), iteration=tr.iteration))
            print("iteration %d: %s" % (tr.iteration, "; ".join(
                describe(k, v) for k, v in trajectory[-1].items() if k != "iteration")),
                flush=True)
            # log.csv's FID, and the "best" checkpoint, go by the training digits only
            return {"fid": trajectory[-1]["ema" if tr.G_ema is not None else "raw"]
                    ["fid_vs_train"]}

        start = time.time()
        trainer.train(out_dir, evaluator=judge_now if args.judge_every else None)
        train_time = time.time() - start
        cfg, iteration = config.to_dict(), trainer.iteration
        # The trainer judges its last iteration too when --judge-every is on.
        results = ({k: v for k, v in trajectory[-1].items() if k != "iteration"}
                   if trajectory and trajectory[-1]["iteration"] == iteration
                   else judge_generators(trainer))
        if trajectory:  # the trainer's best/ holds the first judged minimum, as min() finds
            name = "ema" if trainer.G_ema is not None else "raw"
            row = min(trajectory, key=lambda r: r[name]["fid_vs_train"])
            selected = dict(row[name], iteration=row["iteration"])
    judged = "ema" if "ema" in results else "raw"
    result = {
        "sn": cfg["sn"], "conditional": bool(cfg.get("conditional")), "iterations": iteration,
        "batch_size": cfg["batch_size"],
        "lr": cfg["lr"], "beta1": cfg["beta1"], "beta2": cfg["beta2"], "n_dis": cfg["n_dis"],
        "lr_decay": cfg["lr_decay"], "ema": cfg["ema"], "loss": cfg["loss"],
        "diffaugment": cfg.get("diffaugment", ""), "lecam": cfg.get("lecam", 0.0),
        "mode_seeking": cfg.get("mode_seeking", 0.0),
        "train_minutes": round(train_time / 60, 1), "classifier_accuracy": accuracy,
        "score_real_heldout": judge_of.real_score, "fid_floor_real_vs_real": judge_of.floor,
        "num_generated": args.num, "num_heldout": len(test.images), "calibration": calibration,
        "judged": judged, "results": results, "trajectory": trajectory, "selected": selected,
    }
    result.update(results[judged])
    with open(os.path.join(out_dir, "quality.json"), "w") as f:
        json.dump(result, f, indent=1)
    print("%sdcgan on digits, %s, %s loss, %d iterations, batch %d, Adam(%g, %g, %g) "
          "(%s decay), n_dis %d, EMA %g, DiffAugment %s, LeCam %s, mode seeking %s: "
          "%.1f min of training"
          % ("conditional " if result["conditional"] else "", "SN" if cfg["sn"] else "no SN",
             cfg["loss"], iteration, cfg["batch_size"], cfg["lr"],
             cfg["beta1"], cfg["beta2"], cfg["lr_decay"], cfg["n_dis"], cfg["ema"],
             result["diffaugment"] or "off", ("%g" % result["lecam"]) if result["lecam"] else "off",
             ("%g" % result["mode_seeking"]) if result["mode_seeking"] else "off",
             result["train_minutes"]))
    for name, r in results.items():
        print(describe(name, r))
    print("judged (%s): score %.2f (held-out real digits: %.2f; max 10); FID vs held-out %.2f, "
          "real-vs-real floor %.2f, ratio %.2f (target <= 2); classes with >= 5%% of %d "
          "samples: %d / 10 (target 10)"
          % (judged, result["score"], judge_of.real_score, result["fid"], judge_of.floor,
             result["fid_over_floor"], args.num, result["classes_with_5pct"]))
    if selected:
        print("selected (%s generator of the judged iteration with the lowest FID against the "
              "training digits): iteration %d, FID vs held-out %.2f, ratio %.2f, classes %d / 10"
              % (judged, selected["iteration"], selected["fid"], selected["fid_over_floor"],
                 selected["classes_with_5pct"]))


if __name__ == "__main__":
    main()
