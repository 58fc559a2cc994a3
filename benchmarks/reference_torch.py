"""An independent PyTorch SN-GAN, the yardstick for the package's sample quality.

The paper's standard CNN (Miyato et al. 2018, appendix B, table 3) in the
layout of ``sngan_gluon/models/dcgan.py`` (a BatchNorm per channel after G's
dense layer, D widths 64, 64, 128, 128, 256, 256, 512, LeakyReLU 0.1),
``torch.nn.utils.parametrizations.spectral_norm`` on every layer of D, and
the recipe of ``train.py``'s defaults (the paper's setting B): hinge loss,
Adam(1e-4, 0.5, 0.999) for both networks, n_dis 1, batch 64, z ~ N(0, I) of
dimension 100, gradients clipped elementwise at 10 (MXNet's
``clip_gradient``, here ``clip_grad_value_``), real batches drawn without
replacement from a fresh permutation each epoch, images scaled by
``x / 127.5 - 1``. Every layer keeps PyTorch's default initialization.

It writes ``--num`` samples of the generator in inference mode (BatchNorm
running statistics) to ``--out`` in the package's ``.npz`` contract (see
``sngan_gluon/cli/generate.py``): ``images``, uint8 (N, H, W, C).

    python benchmarks/reference_torch.py --iterations 1500 --seed 0 --out runs/torch-0.npz

One-factor swaps (``benchmarks/quality_parity.py --torch KEY=VALUE`` passes
them to :func:`train`): ``--init normal`` (every weight Normal(0.02), biases
zero, as the package), ``--u-warmup 0`` (SN's ``u`` left as a raw normal draw
instead of PyTorch's 15 power iterations at wrapping), ``--bn0 unit`` (a
BatchNorm per unit before the reshape, as the authors' Chainer code),
``--bn0 none`` (no BatchNorm after the dense layer: the paper's table 3 as
written, dense then deconvolutions with BatchNorm; ``quality_parity.py``'s
reference B), ``--bn-stats g_step`` (G's BatchNorm running statistics updated in the G step
only, as in the package: MXNet's BatchNorm updates them in backward) and
``--bn-momentum`` (PyTorch's convention: the weight of the new batch). The
first two with ``g_step`` replicate the package's recipe.
"""
import argparse
import os
import time

import numpy as np
import torch
from torch import nn
from torch.nn.functional import relu
from torch.nn.utils import clip_grad_value_
from torch.nn.utils.parametrizations import spectral_norm


#: What follows G's dense layer: a BatchNorm per channel after the reshape (the
#: package's layout), one per unit before it (the authors' Chainer code), or none
#: (the paper's table 3 as written).
BN0_CHOICES = ("channel", "unit", "none")


class Generator(nn.Module):
    """z (N, z_dim) -> images (N, channels, 8 * bottom, 8 * bottom) in [-1, 1]."""

    def __init__(self, z_dim=100, channels=3, ch=512, bottom=4, bn0="channel"):
        super().__init__()
        if bn0 not in BN0_CHOICES:
            raise ValueError("bn0 must be one of %s, got %r" % (", ".join(BN0_CHOICES), bn0))
        self.ch, self.bottom = ch, bottom
        self.dense = nn.Linear(z_dim, bottom * bottom * ch)
        self.bn0 = {"channel": lambda: nn.BatchNorm2d(ch),
                    "unit": lambda: nn.BatchNorm1d(bottom * bottom * ch),
                    "none": nn.Identity}[bn0]()
        layers = []
        for width in (ch, ch // 2, ch // 4):
            layers += [nn.ConvTranspose2d(width, width // 2, 4, 2, 1),
                       nn.BatchNorm2d(width // 2), nn.ReLU()]
        self.blocks = nn.Sequential(*layers)
        self.out = nn.Conv2d(ch // 8, channels, 3, 1, 1)

    def forward(self, z):
        h = self.dense(z)
        if isinstance(self.bn0, nn.BatchNorm1d):
            h = self.bn0(h)
        h = h.view(-1, self.ch, self.bottom, self.bottom)
        if isinstance(self.bn0, nn.BatchNorm2d):
            h = self.bn0(h)
        return torch.tanh(self.out(self.blocks(relu(h))))


class Discriminator(nn.Module):
    """images (N, channels, 8 * bottom, 8 * bottom) -> logits (N,); every layer SN."""

    def __init__(self, channels=3, ch=512, bottom=4, slope=0.1):
        super().__init__()
        plan = [(ch // 8, 3, 1), (ch // 8, 4, 2), (ch // 4, 3, 1), (ch // 4, 4, 2),
                (ch // 2, 3, 1), (ch // 2, 4, 2), (ch, 3, 1)]
        layers, in_channels = [], channels
        for width, kernel, stride in plan:
            layers += [nn.Conv2d(in_channels, width, kernel, stride, 1), nn.LeakyReLU(slope)]
            in_channels = width
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(bottom * bottom * ch, 1)

    def forward(self, x):
        return self.head(torch.flatten(self.features(x), 1)).view(-1)


def normal_init(net):
    """The package's initialization: every weight Normal(0, 0.02), biases zero."""
    for m in net.modules():
        if isinstance(m, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            nn.init.zeros_(m.bias)


def add_spectral_norm(D, u_warmup=True):
    """Wrap every weight layer of ``D``; ``u_warmup=False`` redraws each ``u`` ~ N(0, I)."""
    for m in D.modules():
        if isinstance(m, (nn.Linear, nn.Conv2d)):
            spectral_norm(m)
            if not u_warmup:
                with torch.no_grad():
                    m.parametrizations.weight[0]._u.normal_()
    return D


class Batches:
    """Endless (B, C, H, W) float batches in [-1, 1], without replacement within an epoch.

    ``state()`` and ``set_state(state)`` carry the stream over a restart: the next
    batch after ``set_state`` is the one that would have come next. The state is
    the random state that drew the epoch under way and the position in it: the
    permutations are the only draws, so redrawing the epoch's restores the rest."""

    def __init__(self, images, batch_size, seed):
        self.data = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 127.5 - 1
        self.batch_size, self.rng = batch_size, np.random.RandomState(seed)
        self.per_epoch = len(self.data) // batch_size
        self.position = self.per_epoch  # the next call starts an epoch
        self.epoch_rng = self.order = None

    def __iter__(self):
        return self

    def __next__(self):
        if self.position == self.per_epoch:
            self.epoch_rng = self.rng.get_state()  # what drew this epoch's order
            self.order = torch.from_numpy(self.rng.permutation(len(self.data)))
            self.position = 0
        b, self.position = self.position, self.position + 1
        return self.data[self.order[b * self.batch_size:(b + 1) * self.batch_size]]

    def state(self):
        return {"epoch_rng": self.epoch_rng, "position": self.position}

    def set_state(self, state):
        if state["epoch_rng"] is not None:  # redraw the epoch under way
            self.rng.set_state(state["epoch_rng"])
            self.order = torch.from_numpy(self.rng.permutation(len(self.data)))
            self.epoch_rng = state["epoch_rng"]
        self.position = state["position"]


def set_bn_momentum(net, momentum):
    for m in net.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.momentum = momentum


def train(images, iterations, seed=0, batch_size=64, z_dim=100, lr=1e-4, betas=(0.5, 0.999),
          n_dis=1, clip=10.0, init="torch", u_warmup=True, bn0="channel", bn_stats="both",
          bn_momentum=0.1, device="cpu", log_every=100, checkpoint=None, checkpoint_every=100):
    """Train G and D on uint8 ``images`` (N, H, W, C); returns the generator (train mode).

    ``checkpoint``: a file that every ``checkpoint_every`` iterations holds all the
    run's state (networks, optimizers, random streams, iteration); a run started
    with an existing one goes on from it and ends as the run that was not stopped.

    ``bn_stats="g_step"`` leaves G's BatchNorm running statistics alone while G
    draws D's fake batch (MXNet updates them in backward, so the package's G
    step alone updates them); ``"both"`` is PyTorch's way. ``bn_momentum`` is
    PyTorch's (the weight of the new batch: Gluon's ``momentum`` is 1 minus it).
    """
    torch.manual_seed(seed)
    channels, bottom = images.shape[3], images.shape[1] // 8
    G = Generator(z_dim, channels, bottom=bottom, bn0=bn0)
    D = Discriminator(channels, bottom=bottom)
    if init == "normal":
        normal_init(G)
        normal_init(D)
    add_spectral_norm(D, u_warmup)
    set_bn_momentum(G, bn_momentum)
    G, D = G.to(device), D.to(device)
    opt_g = torch.optim.Adam(G.parameters(), lr=lr, betas=betas)
    opt_d = torch.optim.Adam(D.parameters(), lr=lr, betas=betas)
    data = Batches(images, batch_size, seed)
    parts = {"G": G, "D": D, "opt_g": opt_g, "opt_d": opt_d}
    done = 0
    if checkpoint and os.path.isfile(checkpoint):
        state = torch.load(checkpoint, weights_only=False)
        for name, part in parts.items():
            part.load_state_dict(state[name])
        torch.set_rng_state(state["torch_rng"])
        data.set_state(state["data"])
        done = state["iteration"]
    start = time.time()
    for it in range(done + 1, iterations + 1):
        for _ in range(n_dis):
            real = next(data).to(device)
            if bn_stats == "g_step":
                set_bn_momentum(G, 0.0)
            with torch.no_grad():  # G in train mode: batch statistics, as in the package
                fake = G(torch.randn(batch_size, z_dim, device=device))
            set_bn_momentum(G, bn_momentum)
            out = D(torch.cat([real, fake]))
            loss_d = relu(1 - out[:batch_size]).mean() + relu(1 + out[batch_size:]).mean()
            opt_d.zero_grad()
            loss_d.backward()
            clip_grad_value_(D.parameters(), clip)
            opt_d.step()
        loss_g = -D(G(torch.randn(batch_size, z_dim, device=device))).mean()
        opt_g.zero_grad()
        loss_g.backward()
        clip_grad_value_(G.parameters(), clip)
        opt_g.step()
        if log_every and (it % log_every == 0 or it == iterations):
            print("iteration %d: d_loss %.4f g_loss %.4f (%.2f s/it)" % (
                it, loss_d.item(), loss_g.item(), (time.time() - start) / (it - done)),
                flush=True)
        if checkpoint and it % checkpoint_every == 0 and it < iterations:
            state = {name: part.state_dict() for name, part in parts.items()}
            state.update(torch_rng=torch.get_rng_state(), data=data.state(), iteration=it)
            torch.save(state, checkpoint + ".tmp")
            os.replace(checkpoint + ".tmp", checkpoint)
    return G


def sample(G, num, z_dim=100, seed=1, batch=200):
    """``num`` uint8 images (N, H, W, C) from ``G`` in inference mode, noise N(0, I) from
    ``RandomState(seed)`` as the package's ``sampling.draw_noise`` draws it."""
    G.eval()
    device = next(G.parameters()).device
    rng, out = np.random.RandomState(seed), []
    with torch.no_grad():
        for start in range(0, num, batch):
            z = rng.normal(size=(min(batch, num - start), z_dim)).astype(np.float32)
            x = G(torch.from_numpy(z).to(device)).cpu().numpy()
            out.append(np.clip(np.rint((x + 1) * 127.5), 0, 255).astype(np.uint8))
    return np.concatenate(out).transpose(0, 2, 3, 1)


def load_images(data):
    """uint8 (N, H, W, C): ``digits`` through the package's loader, or an ``.npz``'s ``images``."""
    if data.endswith(".npz"):
        with np.load(data) as f:
            return f["images"]
    from sngan_gluon.data import get_dataset
    return get_dataset(data, image_size=32, channels=3, train=True).images


def build_parser():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="digits",
                        help="a dataset name of the package, or an .npz with uint8 'images'")
    parser.add_argument("--iterations", type=int, default=1500)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--num", type=int, default=2000, help="samples to write")
    parser.add_argument("--out", required=True, help="samples .npz")
    parser.add_argument("--init", choices=("torch", "normal"), default="torch")
    parser.add_argument("--u-warmup", type=int, choices=(0, 1), default=1)
    parser.add_argument("--bn0", choices=BN0_CHOICES, default="channel",
                        help="G's normalization after the dense layer (none: the paper's "
                             "table 3 as written)")
    parser.add_argument("--bn-stats", choices=("both", "g_step"), default="both")
    parser.add_argument("--bn-momentum", type=float, default=0.1,
                        help="G's BatchNorm momentum, PyTorch's convention")
    parser.add_argument("--device", default="cpu")
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    images = load_images(args.data)
    G = train(images, args.iterations, seed=args.seed, init=args.init,
              u_warmup=bool(args.u_warmup), bn0=args.bn0, bn_stats=args.bn_stats,
              bn_momentum=args.bn_momentum, device=args.device)
    samples = sample(G, args.num, seed=args.seed + 1)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    np.savez_compressed(args.out, images=samples)
    print("wrote %d samples %s to %s" % (len(samples), samples.shape[1:], args.out))


if __name__ == "__main__":
    main()
