"""A second digits judge, independent of ``quality_digits.py``'s CNN.

``quality_digits.Judge`` is a convolutional network trained in MXNet on the
three-channel 32x32 digits, measuring FID in its 128-unit feature layer. A
conclusion that holds under that judge alone may be owed to what a small CNN
happens to see, so this judge differs from it in everything but the data:

* **input**: the grey image (the mean of the three channels), 1,024 pixels,
  with no notion of neighbourhood;
* **architecture and framework**: scikit-learn's ``MLPClassifier``, two fully
  connected ReLU layers of 256 and 64 units, L2 penalty 1e-3, Adam, stopped
  early on a tenth of the training split held apart by scikit-learn (its own
  split, not the CNN's);
* **feature space**: the 64 units of the second hidden layer.

Like the CNN it is trained on the digits training split only, is deterministic
(fixed ``random_state``), and measures 2,000 samples against the 360 held-out
digits: FID, the FID of the real training digits against them (the floor),
an Inception-style score and the classes holding at least 5% of the samples.
It trains in seconds, so it is retrained wherever it is used.

    python benchmarks/judge_mlp.py          # accuracy, floor, and its strictness on altered digits
"""
import argparse
import time
import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier

from sngan_gluon.metrics import frechet_distance, inception_score

HIDDEN = (256, 64)


def grey_pixels(images):
    """(N, 1024) float64 in [-1, 1]: the channel mean of ``images``, either uint8
    (N, H, W, C) as the datasets hold them or float (N, C, H, W) in [-1, 1] (numpy or NDArray)."""
    x = images.asnumpy() if hasattr(images, "asnumpy") else np.asarray(images)
    if x.dtype == np.uint8:
        x = x.astype(np.float64).mean(axis=3) / 127.5 - 1.0
    else:
        x = x.astype(np.float64).mean(axis=1)
    return x.reshape(len(x), -1)


def train_mlp(train, seed=0, max_iter=200):
    """The fitted ``MLPClassifier`` on ``train`` (a dataset: ``images`` uint8, ``labels``)."""
    net = MLPClassifier(hidden_layer_sizes=HIDDEN, alpha=1e-3, batch_size=64,
                        learning_rate_init=1e-3, max_iter=max_iter, early_stopping=True,
                        validation_fraction=0.1, n_iter_no_change=20, random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        net.fit(grey_pixels(train.images), train.labels)
    return net


def mlp_features(net, x):
    """The last hidden layer's activations (N, 64) of pixels ``x`` (N, 1024)."""
    h = x
    for w, b in zip(net.coefs_[:-1], net.intercepts_[:-1]):
        h = np.maximum(h @ w + b, 0.0)
    return h


def fid(a, b):
    return frechet_distance(a.mean(0), np.cov(a, rowvar=False), b.mean(0), np.cov(b, rowvar=False))


class MLPJudge:
    """The MLP and the held-out statistics every generator is measured against.

    ``self(images)`` takes images as :func:`grey_pixels` does and returns the
    figures ``quality_digits.Judge`` returns (``fid``, ``fid_over_floor``,
    ``score``, ``classes_with_5pct``, ``class_shares``), in this judge's terms.
    """

    name = "MLP on grey pixels"

    def __init__(self, train, test, seed=0, max_iter=200):
        self.net = train_mlp(train, seed, max_iter)
        x_test = grey_pixels(test.images)
        self.accuracy = float((self.net.predict(x_test) == test.labels).mean())
        self.f_test = mlp_features(self.net, x_test)
        self.f_train = mlp_features(self.net, grey_pixels(train.images))
        self.floor = fid(self.f_train, self.f_test)
        self.real_score = inception_score(self.net.predict_proba(x_test), splits=1)[0]

    def features(self, images):
        return mlp_features(self.net, grey_pixels(images))

    def __call__(self, images):
        x = grey_pixels(images)
        probs = self.net.predict_proba(x)
        value = fid(mlp_features(self.net, x), self.f_test)
        shares = np.bincount(probs.argmax(1), minlength=10) / float(len(x))
        return {"score": inception_score(probs, splits=10)[0], "fid": value,
                "fid_over_floor": value / self.floor,
                "classes_with_5pct": int((shares >= 0.05).sum()),
                "class_shares": shares.round(3).tolist()}


def main(argv=None):
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args(argv)
    from sngan_gluon.data import get_dataset
    train = get_dataset("digits", image_size=32, channels=3, train=True)
    test = get_dataset("digits", image_size=32, channels=3, train=False)
    start = time.time()
    judge = MLPJudge(train, test)
    print("judge 2: %s %s, held-out accuracy %.3f, real-vs-real FID floor %.2f, held-out "
          "score %.2f (%.0f s)" % (judge.name, HIDDEN, judge.accuracy, judge.floor,
                                   judge.real_score, time.time() - start))
    x = train.images
    shifted = np.zeros_like(x)
    shifted[:, :, 1:] = x[:, :, :-1]
    dimmed = (x.astype(np.float64) * 0.9).round().astype(np.uint8)
    noise = np.random.RandomState(0).randint(0, 256, (2000,) + x.shape[1:]).astype(np.uint8)
    for name, images in (("shifted one pixel", shifted), ("strokes dimmed 10%", dimmed),
                         ("uniform noise", noise)):
        print("  training digits %s: FID / floor %.2f" % (name, judge(images)["fid_over_floor"]))


if __name__ == "__main__":
    main()
