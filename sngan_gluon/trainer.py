"""The GAN trainer: builds the networks and runs the training loop with its extensions.

:class:`GANTrainer` puts the parts together: the devices and the data, the
generator and discriminator (and the EMA generator), an
:class:`~sngan_gluon.updater.Updater` that does one whole iteration, and a loop
that runs the periodic :mod:`~sngan_gluon.extensions` (evaluation, log.csv,
sample grids, checkpoints) after the iterations their ``every`` names.

The host waits once per iteration, for the generator's loss (the iteration's
last forward pass), so the progress bar, its rate and its ETA count finished
iterations; the losses are read and checked for NaN/Inf only when a log row
or a checkpoint is due. A stop signal (Ctrl-C, SIGTERM, SIGHUP, SIGUSR1, see
:mod:`~sngan_gluon.signals`) is honoured between two iterations: the state
between them is saved, so a resume continues exactly.

Several machines (a ``dist_*`` kvstore, see :mod:`sngan_gluon.launcher`): each
worker reads its own shard of the data and ``batch_size / num_workers`` images
per step; the workers stay in step, stop after the same iteration, and only
rank 0 writes anything. Everything a run writes goes to one folder
(:mod:`~sngan_gluon.run_folder`).
"""
import os
import random
import sys
import time

import numpy as np

import mxnet as mx
from mxnet import nd
from tqdm import tqdm

from . import checkpoint as ckpt
from . import devices
from .batches import BatchStream
from .checkpoint_search import load_newest
from .config import ConfigError, TrainConfig
from .data import get_dataset, to_uint8
from .evaluation import training_evaluator
from .extensions import (Evaluate, LogReport, ProgressGif, SampleGrid, Snapshot,
                         TrainingError)
from .fileio import error_summary, out_of_memory
from .models import apply_init, get_discriminator, get_generator
from .models._common import to_sync_batchnorm
from .nn import warm_up as warm_up_sigma
from .run_folder import RunFolder
from .sigma_log import SigmaLog
from .signals import Interrupted, StopRequest
from .tensorboard_log import TensorBoard, summary_writer_class
from .terms import terms_from_config
from .updater import EMA, Updater, noise_rng


def get_contexts(config):
    """The devices to train on: ``config.gpus`` / ``use_gpu``, else ``config.cpus`` CPU contexts."""
    return devices.contexts(use_gpu=config.use_gpu, gpus=config.gpus, cpus=config.cpus)


def build_networks(config, ctxs, image_size, channels, num_classes, engine_ordered=None):
    """(G, D, G_ema or None), seeded from ``config.seed``, initialized (``config.init``),
    every SN layer's ``u`` warmed up (:func:`~sngan_gluon.nn.warm_up`), and hybridized:
    D without ``static_alloc`` on GPUs, or with ``engine_ordered`` (see
    :func:`~sngan_gluon.devices.sn_hybridize_kwargs`)."""
    mx.random.seed(config.seed)
    np.random.seed(config.seed)
    random.seed(config.seed)
    kwargs = dict(image_size=image_size, num_classes=num_classes, channels=channels)
    G = get_generator(config.arch, z_dim=config.z_dim, momentum=config.g_bn_momentum,
                      ch=config.g_ch, **kwargs)
    if config.sync_bn and len(ctxs) > 1:
        to_sync_batchnorm(G, len(ctxs))
    D = get_discriminator(config.arch, sn=config.sn, power_iterations=config.power_iterations,
                          ch=config.d_ch, **kwargs)
    G.initialize(ctx=ctxs)
    D.initialize(ctx=ctxs)
    _initialize_shapes(G, D, ctxs, config.z_dim, num_classes)
    for net in (G, D):
        apply_init(net, config.init)
        warm_up_sigma(net)  # u converged: the first step divides by the true sigma
    G.hybridize(static_alloc=True, static_shape=True)
    D.hybridize(**devices.sn_hybridize_kwargs(ctxs, engine_ordered))
    G_ema = None
    if config.ema > 0:
        G_ema = get_generator(config.arch, z_dim=config.z_dim, momentum=config.g_bn_momentum,
                              ch=config.g_ch, **kwargs)
        G_ema.initialize(ctx=ctxs[0])
        _initialize_shapes(G_ema, None, ctxs[:1], config.z_dim, num_classes)
    return G, D, G_ema


def _initialize_shapes(G, D, ctxs, z_dim, num_classes):
    """One inference pass to finish deferred initialization on every context."""
    for ctx in ctxs:
        z = nd.zeros((2, z_dim), ctx=ctx)
        y = nd.zeros((2,), ctx=ctx, dtype="int32") if num_classes else None
        x = G(z) if y is None else G(z, y)
        if D is not None:
            D(x) if y is None else D(x, y)


# A dist kvstore lives until the process ends: freeing it (say, as an error unwinds
# for_run) runs ps-lite's finalize, which waits for every other worker, so a failing
# worker would hang instead of reporting and exiting.
_DIST_KVSTORES = []


class _Entry:
    """A registered extension and when it runs."""

    def __init__(self, extension, every, at_end):
        self.extension, self.every, self.at_end = extension, every, at_end
        self.chief_only = getattr(extension, "chief_only", True)

    def due(self, iteration, total):
        return bool(self.every and iteration % self.every == 0) or (
            self.at_end and iteration == total)


class GANTrainer:
    """Trains a generator / discriminator pair as ``config`` says.

    Parameters
    ----------
    config : TrainConfig
    dataset : optional, a dataset object with ``images`` uint8 (N, H, W, C),
        ``labels`` int (N,) and ``num_classes`` (default: ``data.get_dataset``).
    kvstore : optional ``dist_*`` kvstore (``mx.kv.create('dist_sync')``) for a
        distributed run (see :mod:`sngan_gluon.launcher`): the trainer reads shard
        ``kvstore.rank`` of ``kvstore.num_workers`` and sums gradients through it.

    :meth:`for_run` builds the trainer from ``config`` alone, as ``sngan-train`` does.
    """

    @classmethod
    def for_run(cls, config):
        """The trainer of the run ``config`` describes, kvstore and evaluator included.

        ``--kvstore dist_*``: the kvstore is created here (this process is then one
        worker of a job that :mod:`sngan_gluon.launch` started). Only rank 0
        evaluates: it builds the evaluator ``--eval-every`` asks for first, so missing
        feature-network weights stop the run before any data is read.
        """
        kvstore = None
        if config.distributed:
            kvstore = mx.kv.create(config.kvstore)
            _DIST_KVSTORES.append(kvstore)
        chief = kvstore is None or kvstore.rank == 0
        evaluator = training_evaluator(config) if config.eval_every and chief else None
        trainer = cls(config, kvstore=kvstore)
        trainer.evaluator = evaluator
        return trainer

    def __init__(self, config, dataset=None, kvstore=None):
        self.config = config.validate()
        if config.tensorboard:  # a missing tensorboardX is named before any work starts
            summary_writer_class()
        self.ctxs = get_contexts(config)
        self.rank = kvstore.rank if kvstore is not None else 0
        self.num_workers = kvstore.num_workers if kvstore is not None else 1
        self.is_chief = self.rank == 0
        self.evaluator = None  # train()'s default; for_run sets it on rank 0
        self.dataset = dataset if dataset is not None else self._load_dataset()
        self.image_size, self.channels = self.dataset.images.shape[1], self.dataset.images.shape[3]
        self.num_classes = int(self.dataset.num_classes) if config.conditional else 0
        if config.conditional and self.num_classes <= 0:
            raise ConfigError("--conditional needs class labels, and dataset %r has none"
                              % config.dataset)
        parts = self.num_workers * len(self.ctxs) * (2 if config.mode_seeking else 1)
        if config.batch_size % parts:
            raise ConfigError("--batch-size %d does not split %sover %d workers x %d devices"
                              % (config.batch_size, "into even parts " if config.mode_seeking
                                 else "", self.num_workers, len(self.ctxs)))
        self.G, self.D, self.G_ema = build_networks(config, self.ctxs, self.image_size,
                                                    self.channels, self.num_classes)
        ema = None
        if self.G_ema is not None:
            ema = EMA(self.G, self.G_ema, self.ctxs[0], config.ema)
            ema.reset()
            self.G_ema.hybridize()
        stream = BatchStream(self.dataset, config.batch_size // self.num_workers,
                             seed=config.seed * 1000 + self.rank, num_workers=config.num_workers)
        self.total_iterations = config.iterations if config.iterations is not None else \
            max(1, config.epochs * (stream.batches_per_epoch // config.n_dis))
        self.updater = Updater(self.G, self.D, config, self.ctxs, stream,
                               noise_rng(config.seed, self.rank),
                               self.num_classes, self.total_iterations,
                               terms=terms_from_config(config, self.ctxs[0]), ema=ema,
                               kv=kvstore, num_workers=self.num_workers)
        self.best_fid = float("inf")
        self.run = self.observation = self.progress_bar = self.last_checkpoint = None
        self.reported = {}
        self.train_seconds, self.start_time, self.clock = 0.0, 0.0, time.time
        self._extensions = []

    def _load_dataset(self):
        cfg = self.config
        return get_dataset(cfg.dataset, root=cfg.data_path,
                           image_size=cfg.resolved_image_size(),
                           channels=cfg.channels, train=True,
                           num_parts=self.num_workers, part_index=self.rank)

    @property
    def iteration(self):
        """Iterations finished (the next one to run, 0-based)."""
        return self.updater.iteration

    def extend(self, extension, every=None, at_end=True):
        """Run ``extension(trainer)`` after every ``every``-th iteration (and the last one).

        ``extension``: an :class:`~sngan_gluon.extensions.Extension` or any
        callable; ``every=None``: only after the last iteration (``at_end``).
        Runs after the built-in extensions, in the order registered.
        """
        self._extensions.append(_Entry(extension, every, at_end))

    def sample(self, z, y=None, use_ema=True, ctx=None):
        """Images from the (EMA) generator in inference mode: uint8 (N, H, W, C)."""
        ctx = ctx or self.ctxs[0]
        G = self.G_ema if (use_ema and self.G_ema is not None) else self.G
        z = nd.array(z, ctx=ctx)
        out = G(z) if not self.num_classes else G(z, nd.array(y, ctx=ctx, dtype="int32"))
        return to_uint8(out)

    def state(self):
        """What a checkpoint keeps besides the files: the updater's state
        (:meth:`Updater.state`), ``best_fid``, the config as a dict and the data's
        shape (``num_classes``, ``image_size``, ``channels``) and identity (``dataset``)."""
        state = dict(self.updater.state(), best_fid=self.best_fid,
                     config=self.config.to_dict(), num_classes=self.num_classes,
                     image_size=self.image_size, channels=self.channels)
        identity = getattr(self.dataset, "identity", None)
        if identity is not None:  # the data it trains on: a resume on other data is noticed
            state["dataset"] = identity
        return state

    def load_state(self, state):
        """Continue from ``state`` (as :meth:`state` gives it; ``best_fid`` None: none yet)."""
        self.updater.load_state(state)
        if state.get("best_fid") is not None:
            self.best_fid = float(state["best_fid"])

    def load_checkpoint(self, path, accept_changed_data=False):
        """Validate and restore a checkpoint folder (see :func:`sngan_gluon.checkpoint.load`)."""
        return ckpt.load(self, path, accept_changed_data)

    def _built_in_extensions(self, evaluator):
        cfg = self.config
        entries = []
        if evaluator is not None and cfg.eval_every:
            entries.append(_Entry(Evaluate(evaluator), cfg.eval_every, True))
        entries.append(_Entry(LogReport(), cfg.log_every, True))
        self.sigma_log = SigmaLog()
        entries.append(_Entry(self.sigma_log, cfg.log_every, True))
        sample_grid = SampleGrid()
        entries.append(_Entry(sample_grid, cfg.sample_every, True))
        self._snapshot = Snapshot(cfg.keep_checkpoints)
        entries.append(_Entry(self._snapshot, cfg.checkpoint_every, True))
        entries.append(_Entry(ProgressGif(), None, True))  # at the end only
        if cfg.tensorboard:  # after every iteration: it writes what the others computed
            entries.append(_Entry(TensorBoard(self.sigma_log, sample_grid), 1, True))
        return entries

    def train(self, out_dir, resume=None, progress=True, evaluator=None,
              accept_changed_data=False):
        """Run until ``total_iterations``; returns the list of logged rows.

        ``resume``: a checkpoint folder to continue from, or a run folder (its
        newest checkpoint that loads, see :func:`~sngan_gluon.checkpoint_search.load_newest`);
        it is validated whole before ``out_dir`` is touched; a dataset that
        changed since is refused unless ``accept_changed_data``. ``progress``:
        True for a tqdm bar (not with ``config.quiet``), False for none, or a
        callable ``(total, initial)`` making a tqdm-like bar.
        ``evaluator(trainer) -> dict`` runs every ``config.eval_every`` iterations
        (default: the trainer's own).
        A stop signal saves a checkpoint and raises :class:`~sngan_gluon.signals.Interrupted` (a
        ``KeyboardInterrupt`` whose ``args[0]`` is the checkpoint's folder); a
        NaN/Inf loss raises :class:`~sngan_gluon.extensions.TrainingError`, the last
        good checkpoint kept.
        """
        evaluator = evaluator if evaluator is not None else self.evaluator
        entries = self._built_in_extensions(evaluator) + self._extensions
        entries = [e for e in entries if self.is_chief or not e.chief_only]
        self._initialized = []
        self.run = RunFolder(out_dir) if self.is_chief else None
        # A signal from here on stops between two iterations (before the first: at once).
        with StopRequest(saver=self.is_chief) as stop:
            try:
                if resume is not None:  # validated before out_dir is touched
                    resume, state = load_newest(
                        resume, lambda path: self.load_checkpoint(path, accept_changed_data),
                        set_aside=self.is_chief)
                    self.last_checkpoint = resume
                if self.run is not None:
                    self.run.open(self.config, self.num_classes,
                                  resume_state=state if resume is not None else None,
                                  resume_path=resume,
                                  dataset=getattr(self.dataset, "identity", None))
                self.progress_bar = self._make_bar(progress)
                try:
                    self._loop(entries, stop)
                except (MemoryError, mx.base.MXNetError) as err:
                    if not out_of_memory(err):
                        raise
                    raise TrainingError(
                        "ran out of memory at iteration %d (%s); %s; try a smaller --batch-size"
                        % (self.iteration + 1, error_summary(err) if str(err) else "MemoryError",
                           "the checkpoints written before are intact (newest: %s)"
                           % self.last_checkpoint if self.last_checkpoint
                           else "no checkpoint was written"))
            finally:
                self._finalize(sys.exc_info()[1])
                if self.progress_bar is not None:
                    self.progress_bar.close()
                if self.run is not None:
                    self.run.close()
        return self.run.history if self.run is not None else []

    def _finalize(self, failure):
        """Run every started extension's ``finalize``. While ``failure`` (the exception
        that ends training, or None) propagates, a finalizer's own error does not replace
        it: the user is told what stopped the run."""
        for entry in self._initialized:
            try:
                getattr(entry.extension, "finalize", lambda trainer: None)(self)
            except Exception:
                if failure is None:
                    raise

    def _make_bar(self, progress):
        if not progress or not self.is_chief:
            return None
        if progress is True:
            if self.config.quiet:
                return None
            return tqdm(total=self.total_iterations, initial=self.iteration, unit="it",
                        dynamic_ncols=True, desc="sngan")
        return progress(total=self.total_iterations, initial=self.iteration)

    def _loop(self, entries, stop):
        self.start_time = self.clock()
        for entry in entries:
            getattr(entry.extension, "initialize", lambda trainer: None)(self)
            self._initialized.append(entry)
        if self.updater.any_worker_stops(stop.requested):
            raise Interrupted(self.last_checkpoint, stop.signal_name or "a stop on another worker")
        while self.iteration < self.total_iterations:
            started = self.clock()
            self.observation = self.updater.update()
            self.observation.wait()  # count finished iterations, not queued ones
            self.train_seconds += self.clock() - started
            if self.progress_bar is not None:
                self.progress_bar.update(1)
            self.reported = {}
            for entry in entries:
                if entry.due(self.iteration, self.total_iterations):
                    entry.extension(self)
            if self.updater.any_worker_stops(stop.requested):
                self._stop(stop.signal_name or "a stop on another worker")

    def _stop(self, signal_name):
        """Save the state between two whole iterations (rank 0) and raise Interrupted."""
        path = None
        if self.is_chief:
            saved = self.last_checkpoint is not None and os.path.basename(
                os.path.normpath(self.last_checkpoint)) == ckpt.checkpoint_name(self.iteration)
            path = self.last_checkpoint if saved else self._snapshot(self)
        # The other workers leave only once rank 0 has saved: a job launcher stops
        # the whole job when its first worker exits.
        self.updater.barrier()
        raise Interrupted(path, signal_name)


def config_from_checkpoint(path):
    """The TrainConfig saved in a checkpoint folder."""
    state = ckpt.read_state(path)
    try:
        return TrainConfig.from_dict(state["config"])
    except (TypeError, ValueError) as err:
        raise ckpt.CheckpointError("checkpoint %s has an unreadable config: %s" % (path, err))


__all__ = ["GANTrainer", "build_networks", "get_contexts", "config_from_checkpoint"]
