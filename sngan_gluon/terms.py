"""Regularisers of the GAN losses as small pluggable terms: LeCam, mode seeking, DiffAugment.

The :class:`~sngan_gluon.updater.Updater` calls every term's hooks at fixed
places of an iteration, so a new regulariser is a new :class:`Term` subclass
returned by :func:`terms_from_config`, with no edit of the update itself:

* ``d_input(x, rng)``: D's input batch, real and fake concatenated in the D
  step, fake alone in the G step (DiffAugment: the same augmentation for both);
* ``g_labels(y)``: the G step's drawn labels, before they are split over the
  devices (mode seeking: pairs of samples share a label);
* ``observe_d(outputs)``: D's outputs of a D step on every device, before any
  loss is formed (LeCam: the anchors move first);
* ``d_penalty(d_real, d_fake, ctx)`` / ``g_penalty(fake, z)``: a value added
  to one device's D or G loss, already weighted;
* ``state()`` / ``load_state(state)``: what a checkpoint keeps, under
  ``state.json``'s key ``state_key``.
"""
from .augment import DiffAugment
from .losses import LeCamAnchors, lecam, mode_seeking


class Term:
    """A regulariser: every hook leaves the iteration as it is unless overridden."""

    #: ``state.json`` key of :meth:`state`; None: the term keeps no state.
    state_key = None

    def d_input(self, x, rng):
        return x

    def g_labels(self, y):
        return y

    def observe_d(self, outputs):
        """``outputs``: ``[(d_real, d_fake)]``, one pair of logits (n,) per device."""

    def d_penalty(self, d_real, d_fake, ctx):
        return None

    def g_penalty(self, fake, z):
        return None

    def state(self):
        return None

    def load_state(self, state):
        pass


class LeCam(Term):
    """LeCam regularisation (Tseng et al. 2021, Eq. 3) of D's loss, ``weight`` x penalty.

    The anchors are running means of D's outputs (:class:`~sngan_gluon.losses.LeCamAnchors`),
    updated from a D step's outputs before its loss is formed.
    """

    state_key = "lecam_anchors"

    def __init__(self, weight, ctx):
        self.weight = weight
        self.anchors = LeCamAnchors(ctx)

    def observe_d(self, outputs):
        self.anchors.update(*zip(*outputs))

    def d_penalty(self, d_real, d_fake, ctx):
        return self.weight * lecam(d_real, d_fake, *self.anchors.on(ctx))

    def state(self):
        return self.anchors.state()

    def load_state(self, state):
        self.anchors.load_state(state)


class ModeSeeking(Term):
    """The mode-seeking term (Mao et al. 2019) in G's loss over adjacent pairs of samples.

    The two samples of a pair share their label, so the term compares two
    images of one class; the batch on each device must be even.
    """

    def __init__(self, weight):
        self.weight = weight

    def g_labels(self, y):
        if y is not None:
            y[1::2] = y[0::2]
        return y

    def g_penalty(self, fake, z):
        return self.weight * mode_seeking(fake, z)


class Augment(Term):
    """DiffAugment (Zhao et al. 2020): every image D sees, real or fake, is augmented."""

    def __init__(self, policy):
        self.augment = DiffAugment(policy)

    def d_input(self, x, rng):
        return self.augment(x, rng)


def terms_from_config(config, ctx):
    """The terms ``config`` asks for, in the order their hooks run.

    ``ctx``: the device that keeps shared state (LeCam's anchors).
    """
    terms = []
    if DiffAugment(config.diffaugment):
        terms.append(Augment(config.diffaugment))
    if config.lecam > 0:
        terms.append(LeCam(config.lecam, ctx))
    if config.mode_seeking:
        terms.append(ModeSeeking(config.mode_seeking))
    return terms
