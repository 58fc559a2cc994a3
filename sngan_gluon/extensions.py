"""Periodic jobs of the training loop: logging, samples, evaluation, checkpoints.

An extension is a callable ``extension(trainer)`` that the loop of
:meth:`~sngan_gluon.trainer.GANTrainer.train` runs after every ``every``-th
iteration (and after the last one), as the extensions of the authors' Chainer
code run on triggers. Register one with ``trainer.extend(extension, every=N)``;
extensions run in the order they were registered, after the built-in ones:
:class:`Evaluate`, :class:`LogReport`, :class:`~sngan_gluon.sigma_log.SigmaLog`,
:class:`SampleGrid`, :class:`Snapshot`, :class:`ProgressGif` (and
:class:`~sngan_gluon.tensorboard_log.TensorBoard` with ``--tensorboard``).

What an extension can use of the trainer: ``iteration``, ``total_iterations``,
``G``, ``D``, ``G_ema``, ``sample(z, y)``, ``config``, ``is_chief``; ``run``
(the :class:`~sngan_gluon.run_folder.RunFolder`, its ``path`` the run's folder,
None on workers other than rank 0); ``observation`` (the last iteration's
losses, ``observation.read()`` a dict; reading waits for the devices);
``reported``, a dict of figures that :class:`LogReport` adds to this
iteration's row of log.csv.

A subclass of :class:`Extension` may also define ``initialize(trainer)`` (run
once when the loop starts, after a resume) and ``finalize(trainer)`` (run once
when it ends, also on an error or a stop), and set ``chief_only = False`` to run
on every distributed worker, not only on rank 0. An extension that keeps a file
open (a TensorBoard writer) opens it in ``initialize`` and closes it in
``finalize``. For example, one writing the mean brightness of the sample grid's
images every 100 iterations::

    class Brightness(Extension):
        def __call__(self, trainer):
            images = trainer.sample(trainer.run.fixed_z, trainer.run.fixed_y)
            with open(os.path.join(trainer.run.path, "brightness.csv"), "a") as f:
                f.write("%d,%f\\n" % (trainer.iteration, images.mean()))

    trainer.extend(Brightness(), every=100)
"""
import math
import os

from . import checkpoint as ckpt
from .pictures import write_progress_gif
from .run_folder import writing
from .visualize import Redraw


class TrainingError(RuntimeError):
    """Training cannot go on (a NaN loss, say); the message says why and what is kept."""


class Extension:
    """A job run every ``every`` iterations; see the module's docstring."""

    #: Run on rank 0 only (the one that writes); False: on every worker.
    chief_only = True

    def initialize(self, trainer):
        pass

    def __call__(self, trainer):
        raise NotImplementedError

    def finalize(self, trainer):
        pass


def check_finite(trainer):
    """Raise :class:`TrainingError` when the last iteration's losses are NaN or Inf."""
    values = trainer.observation.read()
    losses = (values["d_loss"], values["g_loss"])
    if all(math.isfinite(v) for v in losses):
        return values
    kept = (" the last good checkpoint is %s" % trainer.last_checkpoint
            if trainer.last_checkpoint else " no checkpoint was written")
    kind = "NaN" if any(map(math.isnan, losses)) else "Inf"
    raise TrainingError("loss became %s by iteration %d (d_loss=%s, g_loss=%s);%s; try a lower "
                        "--lr or --clip_gr" % (kind, trainer.iteration, losses[0], losses[1], kept))


class LogReport(Extension):
    """Read the losses, stop on NaN/Inf, append a row to log.csv and keep loss.png
    current (rank 0; redrawn as :class:`~sngan_gluon.visualize.Redraw` says).

    ``images_per_s`` counts the real images the iterations since the last row
    consumed per second of training (the loop's ``train_seconds``: the
    extensions' own time is not in it); ``wall_time`` is the time since the
    loop started.
    """

    chief_only = False

    def initialize(self, trainer):
        self._last = (trainer.iteration, trainer.train_seconds)
        self._plot = Redraw(trainer.run.plot_losses) if trainer.run is not None else None

    def __call__(self, trainer):
        row = dict(check_finite(trainer))
        it, seconds = trainer.iteration, trainer.train_seconds
        images = (it - self._last[0]) * trainer.config.n_dis * trainer.config.batch_size
        row.update(iteration=it, epoch=trainer.updater.stream.epoch,
                   images_per_s=images / max(seconds - self._last[1], 1e-9),
                   wall_time=trainer.clock() - trainer.start_time, **trainer.reported)
        self._last = (it, seconds)
        if trainer.run is not None:
            trainer.run.log(row)
            self._plot()
        if trainer.progress_bar is not None:
            trainer.progress_bar.set_postfix(d_loss="%.3f" % row["d_loss"],
                                             g_loss="%.3f" % row["g_loss"],
                                             img_s="%.0f" % row["images_per_s"])

    def finalize(self, trainer):
        if self._plot is not None:
            self._plot.flush()


class Evaluate(Extension):
    """Call ``evaluator(trainer) -> dict`` (``is_mean``, ``is_std``, ``fid``, all optional).

    The figures go into this iteration's log row; a new lowest FID also saves
    the state as ``<run>/best/iter_XXXXXXX``.
    """

    def __init__(self, evaluator):
        self.evaluator = evaluator

    def __call__(self, trainer):
        result = self.evaluator(trainer) or {}
        trainer.reported.update(result)
        fid = result.get("fid")
        if fid is not None and fid < trainer.best_fid:
            trainer.best_fid = fid
            folder = os.path.join(trainer.run.path, "best")
            with writing(trainer.run.path, "the best checkpoint"):
                ckpt.save(trainer, folder, keep=1)


class SampleGrid(Extension):
    """Save an 8 x 8 grid of the (EMA) generator's images of the run's fixed noise.

    ``latest``: ``(iteration, images)`` of the last grid, uint8 (64, H, W, C), for
    extensions that show the same images elsewhere (TensorBoard); None before.
    """

    latest = None

    def __call__(self, trainer):
        run = trainer.run
        images = trainer.sample(run.fixed_z, run.fixed_y)
        self.latest = (trainer.iteration, images)
        return run.write_samples(images, trainer.iteration)


class Snapshot(Extension):
    """Save a checkpoint (after checking the losses), keeping the newest ``keep``."""

    def __init__(self, keep):
        self.keep = keep

    def __call__(self, trainer):
        check_finite(trainer)
        with writing(trainer.run.path, "a checkpoint"):
            path = ckpt.save(trainer, trainer.run.checkpoints, keep=self.keep)
        trainer.last_checkpoint = path
        return path


class ProgressGif(Extension):
    """After the last iteration, ``progress.gif``: the run's sample grids, oldest first.

    Registered to run at the end only (after :class:`SampleGrid` drew the last
    grid); a run stopped early writes none.
    """

    def __call__(self, trainer):
        with writing(trainer.run.path, "progress.gif"):
            return write_progress_gif(trainer.run.path)
