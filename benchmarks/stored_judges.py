"""The parity benchmark's two digits judges, trained once and stored with the project.

Judge 1 (``quality_digits.py``'s CNN) is trained in MXNet from a fixed seed, yet
its weights differ from one CPU to another: oneDNN picks its kernels by
instruction set, and they sum floats in different orders. Retrained on a
second machine with the same seed and one OpenMP thread, it reached held-out
accuracy 0.981 and floor 10.27 where the first machine's had 0.986 and 10.44,
and every FID it gave moved with it. Judge 2 (``judge_mlp.py``'s MLP) repeats to
11 digits across those machines, but rests on scikit-learn's version.

So ``quality_parity.py`` and ``bn_variants.py`` judge with networks stored in
``benchmarks/results/judges/`` (:data:`JUDGES`): ``cnn.params`` (Gluon
parameters, 2.2 MB) and ``mlp.npz`` (the MLP's weights, 2.2 MB). Every machine
then judges with the same two networks. A report names its judges by the SHA-256
of these files; what is left to vary between machines is float32 inference, a
few parts in a million of an FID.

    python benchmarks/stored_judges.py --out DIR   # train both judges and store them in DIR

``DIR`` must not exist yet. Train on one OpenMP thread, as the stored ones were.
"""
import argparse
import hashlib
import os
import sys

from judge_mlp import MLPJudge
from quality_digits import DigitsClassifier, Judge, train_classifier

from mxnet.base import MXNetError

from sngan_gluon.data import get_dataset, to_tensor

#: the judges the parity table is judged by
JUDGES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "judges")
#: judge -> (file in the judges' folder, description)
FILES = {"cnn": ("cnn.params", "judge 1, quality_digits.py's CNN (128-d features)"),
         "mlp": ("mlp.npz", "judge 2, judge_mlp.py's MLP on grey pixels (64-d features)")}


def digits_splits():
    """(train, held-out) digits as the judges see them: 32x32, three channels."""
    return (get_dataset("digits", image_size=32, channels=3, train=True),
            get_dataset("digits", image_size=32, channels=3, train=False))


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def save_judges(folder, classifier, mlp):
    """Write judge 1's ``classifier`` and judge 2 (an ``MLPJudge``) into ``folder``,
    which this makes."""
    os.makedirs(folder)
    classifier.save_parameters(os.path.join(folder, FILES["cnn"][0]))
    mlp.save(os.path.join(folder, FILES["mlp"][0]))


def load_judges(folder, train, test):
    """The judges stored in ``folder``: ({name: judge}, {name: about}).

    Each judge is a callable on uint8 images (N, H, W, C) returning its figures
    (``fid``, ``fid_over_floor``, ``classes_with_5pct``, ...); each ``about`` is a
    dict of ``about`` (description), ``accuracy`` (held-out), ``floor`` (the
    real-vs-real FID) and ``sha256`` (of its file). A missing or unreadable file
    stops the process with one line."""
    paths = {name: os.path.join(folder, file) for name, (file, _) in FILES.items()}
    for path in paths.values():
        if not os.path.isfile(path):
            raise SystemExit("error: no stored judge %s: train the judges with "
                             "benchmarks/stored_judges.py --out DIR" % path)
    classifier = DigitsClassifier()
    try:
        classifier.load_parameters(paths["cnn"])
        mlp = MLPJudge.load(paths["mlp"], train, test)
    except (MXNetError, OSError, ValueError, KeyError) as error:
        raise SystemExit("error: a stored judge in %s cannot be read (%s)"
                         % (folder, str(error).splitlines()[0]))
    classifier.hybridize()
    cnn = Judge(classifier, train, test)
    judges = {"cnn": lambda images: cnn(to_tensor(images)), "mlp": mlp}
    about = {name: {"about": FILES[name][1], "accuracy": judge.accuracy,
                    "floor": judge.floor, "sha256": sha256(paths[name])}
             for name, judge in (("cnn", cnn), ("mlp", mlp))}
    return judges, about


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="a folder to make for the two judges")
    args = parser.parse_args(argv)
    if os.path.exists(args.out):
        sys.exit("error: %s exists: the judges go into a new folder" % args.out)
    train, test = digits_splits()
    classifier, _ = train_classifier(train, test)  # 15 epochs; the MLP 200 at most
    save_judges(args.out, classifier, MLPJudge.fit(train, test))
    for name, about in load_judges(args.out, train, test)[1].items():
        print("%s: %s, held-out accuracy %.4f, floor %.4f, sha256 %s"
              % (name, about["about"], about["accuracy"], about["floor"], about["sha256"]))


if __name__ == "__main__":
    main()
