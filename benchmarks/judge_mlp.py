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
It trains in seconds. ``quality_parity.py`` judges with a stored copy of its
weights (``stored_judges.py``), so every machine judges with the same network.

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


def mlp_features(coefs, intercepts, x):
    """The activations of the ReLU layers ``coefs`` and ``intercepts`` for input ``x``."""
    h = x
    for w, b in zip(coefs, intercepts):
        h = np.maximum(h @ w + b, 0.0)
    return h


def fid(a, b):
    return frechet_distance(a.mean(0), np.cov(a, rowvar=False), b.mean(0), np.cov(b, rowvar=False))


def softmax(logits):
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


class MLPJudge:
    """The MLP's weights and the held-out statistics every generator is measured against.

    ``weights``: the (in, out) matrices and the biases of its three layers, as
    ``MLPClassifier`` holds them in ``coefs_`` and ``intercepts_``;
    :meth:`fit` trains them, :meth:`load` reads them from :meth:`save`'s file. The
    judge computes its layers itself: a loaded judge does not depend on scikit-learn.
    ``self(images)`` takes images as :func:`grey_pixels` does and returns the
    figures ``quality_digits.Judge`` returns (``fid``, ``fid_over_floor``,
    ``score``, ``classes_with_5pct``, ``class_shares``), in this judge's terms.
    """

    name = "MLP on grey pixels"

    def __init__(self, coefs, intercepts, train, test):
        self.coefs = [np.asarray(w, np.float64) for w in coefs]
        self.intercepts = [np.asarray(b, np.float64) for b in intercepts]
        x_test = grey_pixels(test.images)
        probs = self.probabilities(x_test)
        self.accuracy = float((probs.argmax(1) == test.labels).mean())
        self.f_test = self._features(x_test)
        self.f_train = self._features(grey_pixels(train.images))
        self.floor = fid(self.f_train, self.f_test)
        self.real_score = inception_score(probs, splits=1)[0]

    @classmethod
    def fit(cls, train, test, seed=0, max_iter=200):
        net = train_mlp(train, seed, max_iter)
        return cls(net.coefs_, net.intercepts_, train, test)

    @classmethod
    def load(cls, path, train, test):
        with np.load(path) as f:
            layers = len(f.files) // 2
            return cls([f["w%d" % i] for i in range(layers)],
                       [f["b%d" % i] for i in range(layers)], train, test)

    def save(self, path):
        """Write the weights to ``path`` (an ``.npz``) as :meth:`load` reads them."""
        arrays = {"w%d" % i: w for i, w in enumerate(self.coefs)}
        arrays.update({"b%d" % i: b for i, b in enumerate(self.intercepts)})
        np.savez(path, **arrays)

    def _features(self, x):
        """The last hidden layer's activations (N, 64) of pixels ``x`` (N, 1024)."""
        return mlp_features(self.coefs[:-1], self.intercepts[:-1], x)

    def probabilities(self, x):
        """(N, 10) class probabilities of pixels ``x`` (N, 1024), as ``predict_proba``."""
        return softmax(self._features(x) @ self.coefs[-1] + self.intercepts[-1])

    def features(self, images):
        return self._features(grey_pixels(images))

    def __call__(self, images):
        x = grey_pixels(images)
        probs = self.probabilities(x)
        value = fid(self._features(x), self.f_test)
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
    judge = MLPJudge.fit(train, test)
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
