"""The tiny training runs that several test files read, made once per test session.

:func:`train_tiny_run` trains the paper's DCGAN for :data:`ITERATIONS`
iterations on the synthetic 32x32 data: a sample grid after every
:data:`SAMPLE_EVERY`-th iteration (four frames of ``progress.gif``), a log row
every second one, one checkpoint at the end, an EMA generator (decay 0.9) and a
16-dimensional noise. ``tests/conftest.py`` serves these runs as session
fixtures, read only: a test that changes a run works on a copy
(``shutil.copytree``).
"""
from sngan_gluon.config import TrainConfig
from sngan_gluon.trainer import GANTrainer

ITERATIONS, SAMPLE_EVERY, Z_DIM = 4, 1, 16

#: The base widths of the tests' training runs (``--g-ch``/``--d-ch``; dcgan's narrowest
#: layers get 8 channels): what the tests check does not depend on width, and at the
#: paper's 512 a run trains about 3.5 times slower and writes 75 MB checkpoints.
#: tests/test_models.py checks the widths themselves.
WIDTHS = dict(g_ch=64, d_ch=64)
#: The same widths as ``train.py`` flags.
WIDTH_FLAGS = [word for name, ch in WIDTHS.items()
               for word in ("--" + name.replace("_", "-"), str(ch))]


def train_tiny_run(folder, dataset, data_path, conditional, sn=True):
    """Train one tiny run into ``folder`` (a new path); returns ``folder`` as a string."""
    config = TrainConfig(dataset="synthetic", data_path=str(data_path), batch_size=8,
                         iterations=ITERATIONS, log_every=2, checkpoint_every=ITERATIONS,
                         sample_every=SAMPLE_EVERY, quiet=True, conditional=conditional,
                         sn=sn, ema=0.9, z_dim=Z_DIM, **WIDTHS)
    GANTrainer(config, dataset=dataset).train(str(folder))
    return str(folder)
