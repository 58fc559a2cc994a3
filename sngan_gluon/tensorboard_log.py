"""``--tensorboard``: the run's figures as TensorBoard events in ``<run>/tensorboard/``.

Written with tensorboardX (an optional extra: ``pip install ".[tensorboard]"``;
``mxboard`` pins an old protobuf and is unmaintained). View them with
``tensorboard --logdir RUN/tensorboard``. log.csv and the PNG plots are
written as without the flag; the events hold, at each step (the generator
iteration):

* every ``--log-every`` iterations and after the last: ``loss/d_loss``,
  ``loss/g_loss``, ``train/lr``, ``d_output/d_real``, ``d_output/d_fake`` (the
  mean of D's outputs on real and generated images) and ``sigma/<layer>`` for
  each layer of D (the figures of sigmas.csv, see :mod:`~sngan_gluon.sigma_log`);
* when the run evaluates: ``eval/is_mean``, ``eval/is_std``, ``eval/fid``;
* every ``--sample-every`` iterations and after the last: ``samples``, the grid
  of ``samples/iter_XXXXXXX.png`` (the generator's images of the run's fixed noise).

A resumed run's writer purges the events after the checkpoint's iteration
(TensorBoard's ``purge_step``), as log.csv drops its rows.
"""
import os

from .config import ConfigError
from .extensions import Extension
from .visualize import image_grid

__all__ = ["TensorBoard", "INSTALL_HINT"]

INSTALL_HINT = 'pip install ".[tensorboard]"'
SCALARS = (("d_loss", "loss/d_loss"), ("g_loss", "loss/g_loss"), ("lr", "train/lr"),
           ("d_real", "d_output/d_real"), ("d_fake", "d_output/d_fake"))
EVAL_SCALARS = (("is_mean", "eval/is_mean"), ("is_std", "eval/is_std"), ("fid", "eval/fid"))


def summary_writer_class():
    """tensorboardX's ``SummaryWriter``; a :class:`ConfigError` saying what to install
    when tensorboardX is missing."""
    try:
        from tensorboardX import SummaryWriter
    except ImportError:
        raise ConfigError("--tensorboard needs the tensorboardX package, which is not "
                          "installed: %s" % INSTALL_HINT) from None
    return SummaryWriter


class TensorBoard(Extension):
    """Write the run's figures to ``<run>/tensorboard/`` (see the module's docstring).

    Register it to run after every iteration, behind the built-in extensions:
    it writes what they computed on the iterations they ran (reading the
    losses it shares the log row's one host transfer).

    Parameters
    ----------
    sigma_log : optional :class:`~sngan_gluon.sigma_log.SigmaLog` whose
        ``latest`` sigmas are written on the iterations it ran.
    sample_grid : optional :class:`~sngan_gluon.extensions.SampleGrid` whose
        ``latest`` images are written on the iterations it ran.

    Raises
    ------
    ConfigError
        When tensorboardX is not installed, at construction (before training).
    """

    def __init__(self, sigma_log=None, sample_grid=None):
        self.writer_class = summary_writer_class()
        self.sigma_log, self.sample_grid = sigma_log, sample_grid
        self.writer = None

    def initialize(self, trainer):
        # events after the resumed checkpoint's iteration belong to a run that is redone
        purge = trainer.iteration + 1 if trainer.iteration else None
        self.writer = self.writer_class(logdir=os.path.join(trainer.run.path, "tensorboard"),
                                        purge_step=purge)

    def __call__(self, trainer):
        it, cfg = trainer.iteration, trainer.config
        last = it == trainer.total_iterations
        if it % cfg.log_every == 0 or last:
            values = trainer.observation.read()  # already read by the log row
            for key, tag in SCALARS:
                self.writer.add_scalar(tag, values[key], it)
        for key, tag in EVAL_SCALARS:
            if trainer.reported.get(key) is not None:
                self.writer.add_scalar(tag, trainer.reported[key], it)
        latest = self.sigma_log.latest if self.sigma_log is not None else None
        if latest is not None and latest[0] == it:
            for layer, sigma in latest[1].items():
                self.writer.add_scalar("sigma/" + layer, sigma, it)
        samples = self.sample_grid.latest if self.sample_grid is not None else None
        if samples is not None and samples[0] == it:
            self.writer.add_image("samples", image_grid(samples[1], nrow=8), it,
                                  dataformats="HWC")

    def finalize(self, trainer):
        if self.writer is not None:
            self.writer.close()
            self.writer = None
