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

Not offered: gradient penalties (WGAN-GP, DRAGAN, R1). They differentiate a
function of ``dD/dx``, a second-order gradient through ``Convolution``, which
MXNet 1.x does not implement: ``autograd.grad(..., create_graph=True)`` fails on
convolutional discriminators.
"""
import mxnet as mx

__all__ = ["hinge_d", "hinge_g", "bce_d", "bce_g", "get_loss", "LOSSES"]


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
