"""GAN losses as pure functions of discriminator logits.

Each function takes logits of any shape ((N,) from this package's
discriminators) and returns a scalar: an NDArray of shape (1,) when given
NDArrays (the trainer calls them imperatively), a Symbol when given Symbols (so
they can sit inside a ``hybrid_forward``). ``real`` are ``D(x)`` on data,
``fake`` are ``D(G(z))``.

* hinge (Lim & Ye 2017; Miyato et al. 2018, eq. 16-17, the SN-GAN ResNet runs)
* bce: the original logistic GAN loss with the non-saturating generator loss
  (Goodfellow et al. 2014; Miyato et al. 2018, eq. 1 and section 4), the
  "standard" loss of chainer-gan-lib's ``stdgan`` updater.

``softplus(x) = log(1 + exp(x))`` is computed by ``Activation(act_type='softrelu')``,
which returns ``x`` for large ``x`` and has the gradient ``sigmoid(x)``: finite
for logits of any size, where ``-log(sigmoid(x))`` would give ``inf``.

Regulariser: :func:`lecam` (Tseng et al. 2021), a first-order penalty that keeps
the discriminator's outputs on real data near its running mean output on fake
data and vice versa; :class:`LeCamAnchors` keeps those running means. It is the
regulariser offered for small datasets in place of a gradient penalty.

Generator term: :func:`mode_seeking` (Mao et al. 2019, MSGAN), which rewards
the generator for mapping two different noise vectors to different images; it
targets a generator whose samples grow alike (mode collapse within a class).

Not offered: gradient penalties (WGAN-GP, DRAGAN, R1). They differentiate a
function of ``dD/dx``, a second-order gradient through ``Convolution``, which
MXNet 1.x does not implement: ``autograd.grad(..., create_graph=True)`` fails on
convolutional discriminators.
"""
import mxnet as mx

__all__ = ["hinge_d", "hinge_g", "bce_d", "bce_g", "get_loss", "LOSSES", "lecam",
           "LeCamAnchors", "LECAM_DECAY", "mode_seeking", "MODE_SEEKING_EPS"]


def _F(x):
    return mx.sym if isinstance(x, mx.sym.Symbol) else mx.nd


def _mean(F, x):
    return F.mean(x).reshape((1,))


def _softplus(F, x):
    return F.Activation(x, act_type="softrelu")


def hinge_d(real, fake):
    """Discriminator hinge loss: ``mean(relu(1 - real)) + mean(relu(1 + fake))``."""
    F = _F(real)
    return _mean(F, F.relu(1 - real)) + _mean(F, F.relu(1 + fake))


def hinge_g(fake):
    """Generator hinge loss: ``-mean(fake)``."""
    return -_mean(_F(fake), fake)


def bce_d(real, fake):
    """Discriminator logistic loss:
    ``mean(softplus(-real)) + mean(softplus(fake))``
    ``= -mean(log sigmoid(real)) - mean(log(1 - sigmoid(fake)))``."""
    F = _F(real)
    return _mean(F, _softplus(F, -real)) + _mean(F, _softplus(F, fake))


def bce_g(fake):
    """Non-saturating generator loss: ``mean(softplus(-fake)) = -mean(log sigmoid(fake))``."""
    F = _F(fake)
    return _mean(F, _softplus(F, -fake))


#: name -> (discriminator loss, generator loss)
LOSSES = {"hinge": (hinge_d, hinge_g), "bce": (bce_d, bce_g)}


def get_loss(name):
    """``(d_loss(real, fake), g_loss(fake))`` for ``name`` in ``LOSSES`` ('hinge', 'bce')."""
    if name not in LOSSES:
        raise ValueError("unknown loss %r; valid names: %s" % (name, ", ".join(sorted(LOSSES))))
    return LOSSES[name]


# ------------------------------------------------------------------ LeCam

#: Decay of the running means of D's outputs (Tseng et al. 2021's code uses 0.99).
LECAM_DECAY = 0.99


def lecam(real, fake, anchor_real, anchor_fake):
    """LeCam penalty: ``mean(relu(real - anchor_fake)^2) + mean(relu(anchor_real - fake)^2)``.

    ``real``, ``fake``: D's logits, any shape; ``anchor_real``, ``anchor_fake``:
    shape (1,), running means of D's outputs on real and fake data (constants:
    no gradient flows into them). Only a real output above the fake anchor, or a
    fake output below the real anchor, is penalised, so the penalty bounds how
    far D pushes the two apart. Returns shape (1,).
    """
    F = _F(real)
    above = F.relu(F.broadcast_sub(real, anchor_fake))
    below = F.relu(F.broadcast_sub(anchor_real, fake))
    return _mean(F, F.square(above)) + _mean(F, F.square(below))


class LeCamAnchors:
    """Running means of D's outputs on real and on fake data, the anchors of :func:`lecam`.

    ``update(real_outputs, fake_outputs)`` takes lists of D's logits (one array
    per device, equal shares of the batch) and moves the anchors towards the
    batch means: ``a <- decay a + (1 - decay) mean`` (the first update sets them
    to the means). ``values`` holds them, ``[real, fake]``, as a (2,) NDArray on
    ``ctx`` (None before the first update); ``on(ctx)`` gives them as two (1,)
    NDArrays on any context. ``state()`` / ``load_state()`` carry them through
    a checkpoint as two floats.
    """

    def __init__(self, ctx, decay=LECAM_DECAY):
        if not 0 <= decay < 1:
            raise ValueError("LeCam decay must be in [0, 1), got %r" % (decay,))
        self.ctx, self.decay = ctx, decay
        self.values = None  # NDArray (2,): [real anchor, fake anchor]

    def update(self, real_outputs, fake_outputs):
        with mx.autograd.pause():
            means = [mx.nd.stack(r.mean(), f.mean()).reshape((2,)).as_in_context(self.ctx)
                     for r, f in zip(real_outputs, fake_outputs)]
            batch = mx.nd.add_n(*means) / len(means) if len(means) > 1 else means[0]
            if self.values is None:
                self.values = batch.copy()
            else:
                self.values = self.values * self.decay + batch * (1.0 - self.decay)

    def on(self, ctx):
        """``(real anchor, fake anchor)``, each an NDArray of shape (1,) on ``ctx``."""
        values = self.values.as_in_context(ctx)
        return values[0:1], values[1:2]

    def state(self):
        return None if self.values is None else [float(v) for v in self.values.asnumpy()]

    def load_state(self, state):
        self.values = (None if state is None
                       else mx.nd.array(state, ctx=self.ctx, dtype="float32"))


# ------------------------------------------------------------ mode seeking

#: Keeps the mode-seeking term finite when two samples coincide (MSGAN's code uses 1e-5).
MODE_SEEKING_EPS = 1e-5


def mode_seeking(fake, z, eps=MODE_SEEKING_EPS):
    """Mode-seeking term of MSGAN (Mao et al. 2019, eq. 3), to be *added* to G's loss.

    ``fake``: generated images, shape (N, ...) with N even; ``z``: the noise
    they came from, shape (N, z_dim). Rows ``2k`` and ``2k + 1`` form a pair (a
    class-conditional generator should be given the same label for both). For
    each pair, ``r = mean|fake_2k - fake_2k+1| / mean|z_2k - z_2k+1|`` (means
    over all elements of one sample), and the term is ``mean_k 1 / (r + eps)``:
    minimising it pushes the two images of a pair apart, in proportion to how
    far apart their noise vectors are. Computed per pair, so splitting a batch
    over devices (into even parts) and weighting each part by its share gives
    the whole batch's value. Returns shape (1,).
    """
    F = _F(fake)

    def pair_distance(x):
        pairs = F.reshape(x, shape=(-4, -1, 2, -2))  # (N/2, 2, ...)
        diff = F.abs(F.slice_axis(pairs, axis=1, begin=0, end=1)
                     - F.slice_axis(pairs, axis=1, begin=1, end=2))
        return F.mean(diff, axis=0, exclude=True)  # (N/2,)

    ratio = pair_distance(fake) / pair_distance(z)
    return _mean(F, 1.0 / (ratio + eps))
