"""The PyTorch SN-GAN loop that the package's speed is measured against, one iteration at a time.

The networks, spectral normalization and data of ``reference_torch.py`` (the
paper's standard CNN, ``torch.nn.utils.parametrizations.spectral_norm`` on
every layer of D, PyTorch's default initialization) trained as ``train.py``'s
defaults train (hinge loss, Adam(1e-4, 0.5, 0.999), n_dis 1, batch 64,
gradients clipped elementwise at 10): D runs once on real and fake batches
concatenated, D's fakes are drawn under ``no_grad``. It is
``reference_torch.train``'s loop with a clock between the parts, so
``speed_vs_torch.py`` can time single iterations and ``train_step.py`` the
parts of one.
"""
import torch
from torch.nn.functional import relu
from torch.nn.utils import clip_grad_value_

from reference_torch import Batches, Discriminator, Generator, add_spectral_norm

#: the parts :meth:`TorchLoop.iteration` reports, in the order they run
PARTS = ("data", "D step: G forward", "D step: D forward+backward", "D step: clipping",
         "D step: Adam", "G step: G forward", "G step: D forward",
         "G step: backward (D and G)", "G step: clipping", "G step: Adam")


class TorchLoop:
    """G and D of ``reference_torch.py`` on uint8 ``images`` (N, H, W, C), ready to train.

    ``iteration(tick)`` runs one iteration; ``tick(part)`` (optional) is called
    after each part of :data:`PARTS` with its name, so a caller can read a
    clock there (PyTorch on the CPU runs each operator before returning: no
    synchronisation is needed).
    """

    def __init__(self, images, seed=0, batch_size=64, z_dim=100, lr=1e-4, betas=(0.5, 0.999),
                 clip=10.0):
        torch.manual_seed(seed)
        channels, bottom = images.shape[3], images.shape[1] // 8
        self.G = Generator(z_dim, channels, bottom=bottom)
        self.D = add_spectral_norm(Discriminator(channels, bottom=bottom))
        self.opt_g = torch.optim.Adam(self.G.parameters(), lr=lr, betas=betas)
        self.opt_d = torch.optim.Adam(self.D.parameters(), lr=lr, betas=betas)
        self.data = Batches(images, batch_size, seed)
        self.batch_size, self.z_dim, self.clip = batch_size, z_dim, clip

    def iteration(self, tick=None):
        tick = tick or (lambda part: None)
        G, D, B = self.G, self.D, self.batch_size
        real = next(self.data)
        tick("data")
        with torch.no_grad():  # G in train mode: batch statistics
            fake = G(torch.randn(B, self.z_dim))
        tick("D step: G forward")
        out = D(torch.cat([real, fake]))
        loss_d = relu(1 - out[:B]).mean() + relu(1 + out[B:]).mean()
        self.opt_d.zero_grad()
        loss_d.backward()
        tick("D step: D forward+backward")
        clip_grad_value_(D.parameters(), self.clip)
        tick("D step: clipping")
        self.opt_d.step()
        tick("D step: Adam")
        fake = G(torch.randn(B, self.z_dim))
        tick("G step: G forward")
        loss_g = -D(fake).mean()
        tick("G step: D forward")
        self.opt_g.zero_grad()
        loss_g.backward()
        tick("G step: backward (D and G)")
        clip_grad_value_(G.parameters(), self.clip)
        tick("G step: clipping")
        self.opt_g.step()
        tick("G step: Adam")
        return loss_d, loss_g
