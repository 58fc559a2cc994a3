"""PyTorch twins of this package's SN networks, and a lock-step GAN trainer that runs both.

Used by ``tests/test_torch_parity.py`` and ``benchmarks/torch_parity.py`` to train a
Gluon pair and its PyTorch twin from identical states on identical batches and to
measure, after every iteration, how far each weight, each ``u`` and each loss
has drifted apart.

Every twin names its modules as the Gluon network names its children, so a
Gluon structural parameter name (``features.2.weight``, ``head.linear.u``,
``bn0.gamma``) finds its PyTorch tensor by name (:func:`torch_tensors`).

PyTorch flavours of spectral normalization (``SN``):

* ``"parametrizations"``: ``torch.nn.utils.parametrizations.spectral_norm``, the
  current API. Its power step is ``u = W v / |W v|, v = W^T u / |W^T u|`` with
  ``v`` carried from the last step; ``sigma = u^T W v``.
* ``"legacy"``: ``torch.nn.utils.spectral_norm``, the older hook. Its power step is
  the paper's Algorithm 1 (``v = W^T u / |.|, u = W v / |.|``, ``u`` carried), as
  the Gluon layers are.
"""
import numpy as np
import torch
from torch import nn as tnn
from torch.nn import functional as TF

import sngan_gluon  # noqa: F401  (makes mxnet importable on every Python)
import mxnet as mx
from mxnet import autograd, gluon, nd
from mxnet.gluon import nn

from sngan_gluon.losses import hinge_d, hinge_g
from sngan_gluon.models import get_discriminator, get_generator
from sngan_gluon.nn import SNDense

SN = {
    "parametrizations": torch.nn.utils.parametrizations.spectral_norm,
    "legacy": torch.nn.utils.spectral_norm,
}


# ------------------------------------------------------------------ networks
def gluon_mlp_pair(z_dim=2, hidden=128):
    """The 2-D MLP pair in Gluon: G z -> 2 (ReLU), D 2 -> 1 (three SNDense, LeakyReLU 0.1)."""
    G, D = nn.HybridSequential(), nn.HybridSequential()
    G.add(nn.Dense(hidden, in_units=z_dim), nn.Activation("relu"),
          nn.Dense(hidden, in_units=hidden), nn.Activation("relu"), nn.Dense(2, in_units=hidden))
    D.add(SNDense(hidden, in_units=2), nn.LeakyReLU(0.1), SNDense(hidden, in_units=hidden),
          nn.LeakyReLU(0.1), SNDense(1, in_units=hidden))
    return G, D


def torch_mlp_pair(z_dim=2, hidden=128, sn="parametrizations"):
    """The PyTorch twin of :func:`gluon_mlp_pair` (default PyTorch initialization)."""
    G = tnn.Sequential(tnn.Linear(z_dim, hidden), tnn.ReLU(), tnn.Linear(hidden, hidden),
                       tnn.ReLU(), tnn.Linear(hidden, 2))
    D = tnn.Sequential(tnn.Linear(2, hidden), tnn.LeakyReLU(0.1), tnn.Linear(hidden, hidden),
                       tnn.LeakyReLU(0.1), tnn.Linear(hidden, 1))
    return G, _spectral_norm_all(D, sn)


def gluon_dcgan_pair(z_dim=16, ch=32):
    """The paper's standard CNN at 32x32 from the package's registry."""
    return (get_generator("dcgan", image_size=32, z_dim=z_dim, ch=ch),
            get_discriminator("dcgan", image_size=32, ch=ch))


class _TorchUpBlock(tnn.Module):
    def __init__(self, in_channels, channels):
        super().__init__()
        self.deconv = tnn.ConvTranspose2d(in_channels, channels, 4, stride=2, padding=1)
        self.bn = tnn.BatchNorm2d(channels)

    def forward(self, x):
        return TF.relu(self.bn(self.deconv(x)))


class TorchDCGANGenerator(tnn.Module):
    """Twin of :class:`sngan_gluon.models.DCGANGenerator` at 32x32 (same child names)."""

    def __init__(self, z_dim, ch):
        super().__init__()
        self.ch = ch
        self.dense = tnn.Linear(z_dim, 4 * 4 * ch)
        self.bn0 = tnn.BatchNorm2d(ch)
        self.blocks = tnn.ModuleList(_TorchUpBlock(w, w // 2) for w in (ch, ch // 2, ch // 4))
        self.out = tnn.Conv2d(ch // 8, 3, 3, padding=1)

    def forward(self, z):
        h = TF.relu(self.bn0(self.dense(z).reshape(-1, self.ch, 4, 4)))
        for block in self.blocks:
            h = block(h)
        return torch.tanh(self.out(h))


class _TorchHead(tnn.Module):
    def __init__(self, in_units):
        super().__init__()
        self.linear = tnn.Linear(in_units, 1)

    def forward(self, h):
        return self.linear(h).reshape(-1)


class TorchDCGANDiscriminator(tnn.Module):
    """Twin of :class:`sngan_gluon.models.DCGANDiscriminator` at 32x32 (same child names)."""

    def __init__(self, ch, slope=0.1):
        super().__init__()
        layers, c_in = [], 3
        for width, kernel, stride in [(ch // 8, 3, 1), (ch // 8, 4, 2), (ch // 4, 3, 1),
                                      (ch // 4, 4, 2), (ch // 2, 3, 1), (ch // 2, 4, 2),
                                      (ch, 3, 1)]:
            layers += [tnn.Conv2d(c_in, width, kernel, stride=stride, padding=1),
                       tnn.LeakyReLU(slope)]
            c_in = width
        self.features = tnn.Sequential(*layers)
        self.head = _TorchHead(4 * 4 * ch)

    def forward(self, x):
        return self.head(self.features(x).flatten(1))


def torch_dcgan_pair(z_dim=16, ch=32, sn="parametrizations"):
    """The PyTorch twin of :func:`gluon_dcgan_pair`; weights Normal(0.02) as the package's."""
    G, D = TorchDCGANGenerator(z_dim, ch), TorchDCGANDiscriminator(ch)
    for module in list(G.modules()) + list(D.modules()):
        if isinstance(module, (tnn.Linear, tnn.Conv2d, tnn.ConvTranspose2d)):
            tnn.init.normal_(module.weight, 0.0, 0.02)
            tnn.init.zeros_(module.bias)
    return G, _spectral_norm_all(D, sn)


def _spectral_norm_all(net, sn):
    for module in net.modules():
        if isinstance(module, (tnn.Linear, tnn.Conv2d)):
            SN[sn](module)
    return net


def not_compared(name):
    """Arrays that training does not use or cannot fix, left out of the comparison:

    * biases a BatchNorm cancels (G's dense and deconvolution biases): their gradient
      is zero in exact arithmetic, the computed one float noise of either sign, which
      Adam turns into steps of +-lr; they drift apart with no effect on any output;
    * BatchNorm running statistics, read only at inference: they average those
      biases, and MXNet and PyTorch update them on different calls and with
      different variance estimators.
    """
    return (name.endswith(("running_mean", "running_var"))
            or name in ("G/dense.bias", "G/blocks.0.deconv.bias", "G/blocks.1.deconv.bias",
                        "G/blocks.2.deconv.bias"))


# ------------------------------------------------------------- name mapping
def torch_tensors(net):
    """``{Gluon structural name: live PyTorch tensor}`` for every parameter, BatchNorm
    statistic and SN vector ``u`` of ``net`` (``v`` has no Gluon counterpart)."""
    out = {}
    for prefix, module in net.named_modules():
        if isinstance(module, tnn.BatchNorm2d):
            for gluon_name, torch_name in (("gamma", "weight"), ("beta", "bias"),
                                           ("running_mean", "running_mean"),
                                           ("running_var", "running_var")):
                out["%s.%s" % (prefix, gluon_name)] = getattr(module, torch_name)
        elif isinstance(module, (tnn.Linear, tnn.Conv2d, tnn.ConvTranspose2d)):
            out[prefix + ".bias"] = module.bias
            if hasattr(module, "parametrizations"):
                out[prefix + ".weight"] = module.parametrizations.weight.original
                out[prefix + ".u"] = module.parametrizations.weight[0]._u
            elif hasattr(module, "weight_orig"):
                out[prefix + ".weight"] = module.weight_orig
                out[prefix + ".u"] = module.weight_u
            else:
                out[prefix + ".weight"] = module.weight
    return out


def copy_torch_to_gluon(torch_net, gluon_net):
    """Initialize ``gluon_net`` and give every one of its arrays the twin's value."""
    gluon_net.initialize(force_reinit=True)
    params = gluon_net._collect_params_with_prefix()
    tensors = torch_tensors(torch_net)
    assert set(params) == set(tensors), set(params) ^ set(tensors)
    for name, param in params.items():
        param.set_data(tensors[name].detach().numpy().reshape(param.shape))


def relative_errors(gluon_net, torch_net):
    """``{name: |gluon - torch| / |torch|}`` (Frobenius norms) over every array of the pair.

    Normwise, not elementwise: Adam's first steps move every weight by about
    ``lr * sign(g)``, so an element whose true gradient is zero and whose computed
    gradient is float noise of either sign moves by ``+-lr`` in one framework and
    not the other; such elements are float noise too, and a norm weighs them so."""
    tensors = torch_tensors(torch_net)
    errors = {}
    for name, param in gluon_net._collect_params_with_prefix().items():
        ref = tensors[name].detach().numpy().reshape(param.shape).astype(np.float64)
        diff = np.linalg.norm(param.data().asnumpy() - ref)
        errors[name] = float(diff / max(np.linalg.norm(ref), 1e-30))
    return errors


# ------------------------------------------------------------ one iteration
def _d_outputs(D, real, fake, d_call, concat):
    """D's logits on real and on fake: two calls (``"separate"``) or one on the batch."""
    if d_call == "separate":
        return D(real), D(fake)
    out = D(concat([real, fake]))
    return out[:real.shape[0]], out[real.shape[0]:]


class GluonSide:
    """A Gluon G/D pair trained with hinge losses and two Adams, one D and one G step."""

    def __init__(self, G, D, lr, betas, eps, hybridize):
        if hybridize:
            for net in (G, D):
                net.hybridize(static_alloc=True, static_shape=True)
        self.G, self.D = G, D
        opt = dict(learning_rate=lr, beta1=betas[0], beta2=betas[1], epsilon=eps)
        self.g_trainer = gluon.Trainer(G.collect_params(), "adam", dict(opt))
        self.d_trainer = gluon.Trainer(D.collect_params(), "adam", dict(opt))

    def iteration(self, real, z_d, z_g, d_call):
        real, z_d, z_g = nd.array(real), nd.array(z_d), nd.array(z_g)
        with autograd.train_mode():  # BatchNorm batch statistics, no graph for G
            fake = self.G(z_d)
        with autograd.record():
            d_loss = hinge_d(*_d_outputs(self.D, real, fake, d_call,
                                         lambda xs: nd.concat(*xs, dim=0)))
        d_loss.backward()
        self.d_trainer.step(1)
        with autograd.record():
            g_loss = hinge_g(self.D(self.G(z_g)))
        g_loss.backward()
        self.g_trainer.step(1)
        nd.waitall()  # u is written in-graph: finish before reading it from outside
        return float(d_loss.asscalar()), float(g_loss.asscalar())


class MXNetAdam(torch.optim.Optimizer):
    """Adam as MXNet 1.9.1 applies it: ``w -= lr_t m / (sqrt(v) + eps)`` with
    ``lr_t = lr sqrt(1 - b2^t) / (1 - b1^t)``.

    ``torch.optim.Adam`` divides by ``sqrt(v) / sqrt(1 - b2^t) + eps`` instead: the
    same step but for where ``eps`` sits, so MXNet's ``eps`` weighs
    ``1 / sqrt(1 - b2^t)`` times more (3.2x at step 1 with b2 = 0.9, fading to 1x).
    It matters only for gradient elements near ``eps``, yet it moves those by up to
    ``lr`` a step; the lock step uses this twin so that it measures the layers.
    """

    def __init__(self, params, lr, betas, eps):
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps))

    @torch.no_grad()
    def step(self):
        for group in self.param_groups:
            (b1, b2), eps = group["betas"], group["eps"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if not state:
                    state.update(t=0, m=torch.zeros_like(p), v=torch.zeros_like(p))
                state["t"] += 1
                t, m, v = state["t"], state["m"], state["v"]
                m.mul_(b1).add_(p.grad, alpha=1 - b1)
                v.mul_(b2).addcmul_(p.grad, p.grad, value=1 - b2)
                lr_t = group["lr"] * (1 - b2 ** t) ** 0.5 / (1 - b1 ** t)
                p.sub_(lr_t * (m / (v.sqrt() + eps)))


class TorchSide:
    """The PyTorch twin of :class:`GluonSide`; ``adam``: ``"mxnet"`` (:class:`MXNetAdam`)
    or ``"torch"`` (``torch.optim.Adam``)."""

    def __init__(self, G, D, lr, betas, eps, adam="mxnet"):
        self.G, self.D = G.train(), D.train()
        make = MXNetAdam if adam == "mxnet" else torch.optim.Adam
        self.g_opt = make(G.parameters(), lr=lr, betas=betas, eps=eps)
        self.d_opt = make(D.parameters(), lr=lr, betas=betas, eps=eps)

    def iteration(self, real, z_d, z_g, d_call):
        real, z_d, z_g = (torch.from_numpy(a) for a in (real, z_d, z_g))
        with torch.no_grad():
            fake = self.G(z_d)
        self.d_opt.zero_grad()
        d_real, d_fake = _d_outputs(self.D, real, fake, d_call, lambda xs: torch.cat(xs))
        d_loss = TF.relu(1 - d_real).mean() + TF.relu(1 + d_fake).mean()
        d_loss.backward()
        self.d_opt.step()
        self.g_opt.zero_grad()
        g_loss = -self.D(self.G(z_g)).mean()
        g_loss.backward()
        self.g_opt.step()
        return d_loss.item(), g_loss.item()


# ------------------------------------------------------------------ lock step
def ring_of_gaussians(rng, n, modes=8, radius=2.0, std=0.02):
    """``n`` points (float32) of a mixture of ``modes`` Gaussians on a circle."""
    angles = 2 * np.pi * rng.randint(0, modes, size=n) / modes
    centres = radius * np.stack([np.cos(angles), np.sin(angles)], axis=1)
    return (centres + std * rng.normal(size=(n, 2))).astype(np.float32)


def cifar_like(rng, n):
    """``n`` smooth random 32x32 RGB images in [-1, 1] (float32): stand-ins for data."""
    low = rng.uniform(-1, 1, size=(n, 3, 4, 4))
    return np.tanh(2 * np.kron(low, np.ones((1, 1, 8, 8)))).astype(np.float32)


def build(model, seed, sn="parametrizations", hybridize=True, lr=1e-4, betas=(0.5, 0.9),
          eps=1e-8, adam="mxnet", **sizes):
    """A (GluonSide, TorchSide) pair in identical states. ``model``: ``"mlp"`` or ``"dcgan"``."""
    torch.manual_seed(seed)
    mx.random.seed(seed)
    make_torch, make_gluon = ((torch_mlp_pair, gluon_mlp_pair) if model == "mlp"
                              else (torch_dcgan_pair, gluon_dcgan_pair))
    tG, tD = make_torch(sn=sn, **sizes)
    gG, gD = make_gluon(**sizes)
    copy_torch_to_gluon(tG, gG)
    copy_torch_to_gluon(tD, gD)
    return GluonSide(gG, gD, lr, betas, eps, hybridize), TorchSide(tG, tD, lr, betas, eps, adam)


def lock_step(gluon_side, torch_side, batches, d_call="separate"):
    """Run both sides on ``batches`` ((real, z_d, z_g) numpy triples); yield per iteration
    ``{name: relative error}`` over both nets' arrays (``G/...``, ``D/...``) and the
    losses (``loss/d``, ``loss/g``: ``|a - b| / max(|b|, 1)``)."""
    for real, z_d, z_g in batches:
        mx_losses = gluon_side.iteration(real, z_d, z_g, d_call)
        th_losses = torch_side.iteration(real, z_d, z_g, d_call)
        errors = {}
        for tag in ("G", "D"):
            errors.update(("%s/%s" % (tag, k), v) for k, v in relative_errors(
                getattr(gluon_side, tag), getattr(torch_side, tag)).items())
        for tag, a, b in zip(("d", "g"), mx_losses, th_losses):
            errors["loss/" + tag] = abs(a - b) / max(abs(b), 1.0)
        yield errors


def batches_for(model, seed, steps, batch_size, z_dim):
    """``steps`` (real, z_d, z_g) triples drawn from one numpy generator."""
    rng = np.random.RandomState(seed)
    data = ring_of_gaussians if model == "mlp" else cifar_like
    for _ in range(steps):
        yield (data(rng, batch_size),
               rng.normal(size=(batch_size, z_dim)).astype(np.float32),
               rng.normal(size=(batch_size, z_dim)).astype(np.float32))


def _next_sigma(weight, u):
    """The sigma Algorithm 1 gives from ``weight`` and ``u`` (float64): ``|W v|``,
    ``v = W^T u / |W^T u|``."""
    w = weight.reshape(weight.shape[0], -1).astype(np.float64)
    v = u.reshape(-1).astype(np.float64) @ w
    return float(np.linalg.norm(w @ (v / np.linalg.norm(v))))


def sigma_errors(gluon_net, torch_net):
    """``{"D/<layer>.sigma": relative difference}`` of the sigma each SN layer's next power
    step gives from its own weight and ``u``, per side.

    ``u`` itself is ill-conditioned where a weight's two largest singular values are
    close (a small change of ``W`` turns the top singular vector a lot); sigma, what
    the layer divides by, is not, so it is the fair measure of drift that ``u`` causes.
    """
    tensors = torch_tensors(torch_net)
    params = gluon_net._collect_params_with_prefix()
    errors = {}
    for name in (n for n in params if n.endswith(".u")):
        layer = name[:-len(".u")]
        ours = _next_sigma(params[layer + ".weight"].data().asnumpy(),
                           params[name].data().asnumpy())
        theirs = _next_sigma(tensors[layer + ".weight"].detach().numpy(),
                             tensors[name].detach().numpy())
        errors["D/%s.sigma" % layer] = abs(ours - theirs) / theirs
    return errors
