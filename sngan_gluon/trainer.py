"""The GAN training loop: n_dis discriminator updates per generator update.

One generator iteration (Miyato et al. 2018, Algorithm 1 around the updates):

* ``n_dis`` times: a fresh real batch and a fresh fake batch, the discriminator
  run *once* on the two concatenated (it has no BatchNorm, so this is exact and
  advances each ``u`` once per update rather than twice), the discriminator loss
  (plus the LeCam penalty with ``--lecam``, at anchors updated from this batch's
  outputs first) backpropagated and Adam applied;
* a fresh fake batch through the discriminator, the generator loss (plus the
  mode-seeking term with ``--mode-seeking``, over adjacent pairs of samples,
  which then share their label) backpropagated and Adam applied to the
  generator; the EMA of the generator's weights updated.

Several devices: each batch is split over the contexts and the gradients are
summed by the ``gluon.Trainer``'s kvstore; each device's loss is weighted by its
share of the batch, so the summed gradient is that of the whole batch.

Several machines (a ``dist_*`` kvstore, see :mod:`sngan_gluon.launch`): each
worker reads its own shard of the data and ``batch_size / num_workers`` images
per step; the kvstore sums the gradients over devices and workers, and every
worker applies Adam itself to identical weights (:class:`_DistSync` says why),
so the workers stay in step. Only rank 0 writes anything.

The host waits for the devices only every ``log_every`` iterations (and when
sampling or saving), when the losses are read, checked for NaN/Inf and logged.
Everything a run writes goes to one folder: ``config.json``, ``log.csv``,
``loss.png``, ``samples/iter_XXXXXXX.png``, ``fixed_noise.npz`` and
``checkpoints/``.
"""
import csv
import math
import os
import random
import time

import numpy as np

import mxnet as mx
from mxnet import autograd, gluon, nd

from . import checkpoint as ckpt
from .augment import DiffAugment
from .config import ConfigError, TrainConfig
from .losses import LeCamAnchors, get_loss, lecam, mode_seeking
from .models import get_discriminator, get_generator
from .models._common import to_sync_batchnorm
from .visualize import plot_curves, save_image_grid

LOG_FIELDS = ["iteration", "epoch", "d_loss", "g_loss", "d_real", "d_fake", "lr", "images_per_s",
              "wall_time", "is_mean", "is_std", "fid"]
DEFAULT_IMAGE_SIZE = {"dcgan64": 64}


class TrainingError(RuntimeError):
    """Training cannot go on (a NaN loss, say); the message says why and what is kept."""


def get_contexts(config):
    """The devices to train on: ``config.gpus`` / ``use_gpu``, else ``config.cpus`` CPU contexts."""
    if config.gpus or config.use_gpu:
        try:
            available = mx.context.num_gpus()
        except mx.base.MXNetError:
            available = 0
        if available == 0:
            raise ConfigError("--use-gpu/--gpus: MXNet sees no GPU (this is a CPU-only build "
                              "or no CUDA device is visible); install a CUDA build such as "
                              "`pip install mxnet-cu112==1.9.1` or train without --use-gpu")
        gpus = config.gpus or [0]
        bad = [g for g in gpus if g >= available]
        if bad:
            raise ConfigError("--gpus %s: only %d GPU(s) visible (ids 0..%d)"
                              % (",".join(map(str, bad)), available, available - 1))
        return [mx.gpu(g) for g in gpus]
    return [mx.cpu(i) for i in range(config.cpus)]


def _split(batch, ctxs):
    return gluon.utils.split_and_load(batch, ctxs, even_split=True)


class BatchStream:
    """Shuffled batches of a dataset, resumable at any (epoch, batch) position.

    The order of epoch ``e`` is a permutation drawn from ``RandomState(seed + e)``,
    so a resumed run sees exactly the batches the uninterrupted run would have.
    Batches are sliced from the decoded uint8 array and converted in one
    vectorized step; ``num_workers > 0`` prepares them in a DataLoader's workers.

    Yields ``(images, labels)``: float32 NDArray (B, C, H, W) in [-1, 1] and int32 (B,).
    """

    def __init__(self, dataset, batch_size, seed, epoch=0, batch=0, num_workers=0,
                 shuffle=True):
        from .data import to_tensor
        self._to_tensor = to_tensor
        self.images, self.labels = dataset.images, dataset.labels
        self.batch_size, self.seed, self.shuffle = batch_size, seed, shuffle
        self.num_workers = num_workers
        self.batches_per_epoch = len(self.images) // batch_size
        if self.batches_per_epoch == 0:
            raise ConfigError("the dataset has %d images, fewer than one batch of %d"
                              % (len(self.images), batch_size))
        self.epoch, self.batch = epoch, batch

    def _order(self, epoch):
        n = len(self.images)
        if not self.shuffle:
            return np.arange(n)
        return np.random.RandomState(self.seed + epoch).permutation(n)

    def _batchify(self, indices):
        indices = np.asarray(indices)
        return (self._to_tensor(self.images[indices]),
                nd.array(self.labels[indices], dtype="int32"))

    def __iter__(self):
        while True:
            order = self._order(self.epoch)
            starts = range(self.batch * self.batch_size,
                           self.batches_per_epoch * self.batch_size, self.batch_size)
            index_batches = [order[s:s + self.batch_size] for s in starts]
            if self.num_workers > 0:
                # each loader item is one whole batch of indices, converted in a worker
                loader = gluon.data.DataLoader(
                    gluon.data.SimpleDataset(index_batches),
                    batch_sampler=[[i] for i in range(len(index_batches))],
                    batchify_fn=lambda items: self._batchify(items[0]),
                    num_workers=self.num_workers, thread_pool=True)
                source = iter(loader)
            else:
                source = (self._batchify(b) for b in index_batches)
            for item in source:
                self.batch += 1
                yield item
            self.epoch += 1
            self.batch = 0


class GANTrainer:
    """Trains a generator / discriminator pair as ``config`` says.

    Parameters
    ----------
    config : TrainConfig
    dataset : optional, a dataset object with ``images`` uint8 (N, H, W, C),
        ``labels`` int (N,) and ``num_classes`` (default: ``data.get_dataset``).
    kvstore : optional ``dist_*`` kvstore (``mx.kv.create('dist_sync')``) for a
        distributed run (see :mod:`sngan_gluon.launch`): the trainer reads shard
        ``kvstore.rank`` of ``kvstore.num_workers`` and sums gradients through it.
    """

    def __init__(self, config, dataset=None, kvstore=None):
        self.config = config.validate()
        self.ctxs = get_contexts(config)
        self.kv = kvstore
        self.rank = kvstore.rank if kvstore is not None else 0
        self.num_workers = kvstore.num_workers if kvstore is not None else 1
        self.is_chief = self.rank == 0
        if dataset is None:
            from .data import get_dataset
            dataset = get_dataset(config.dataset, root=config.data_path,
                                  image_size=config.image_size or
                                  DEFAULT_IMAGE_SIZE.get(config.arch),
                                  channels=config.channels, train=True,
                                  num_parts=self.num_workers, part_index=self.rank)
        self.dataset = dataset
        self.image_size = dataset.images.shape[1]
        self.channels = dataset.images.shape[3]
        self.num_classes = int(dataset.num_classes) if config.conditional else 0
        if config.conditional and self.num_classes <= 0:
            raise ConfigError("--conditional needs class labels, and dataset %r has none"
                              % config.dataset)
        parts = self.num_workers * len(self.ctxs) * (2 if config.mode_seeking else 1)
        if config.batch_size % parts:
            raise ConfigError("--batch-size %d does not split %sover %d workers x %d devices"
                              % (config.batch_size, "into even parts " if config.mode_seeking
                                 else "", self.num_workers, len(self.ctxs)))
        self.local_batch = config.batch_size // self.num_workers
        self._build()
        self.iteration = 0
        self.stream = BatchStream(dataset, self.local_batch, seed=config.seed * 1000 + self.rank,
                                  num_workers=config.num_workers)
        if config.iterations is not None:
            self.total_iterations = config.iterations
        else:
            per_epoch = self.stream.batches_per_epoch // config.n_dis
            self.total_iterations = max(1, config.epochs * per_epoch)
        self.noise_rng = np.random.RandomState(config.seed * 1000 + 17 + self.rank)
        self.out_dir = None
        self.history = []
        self.best_fid = float("inf")
        self._evaluator = None

    # ------------------------------------------------------------------ set-up
    def _build(self):
        cfg = self.config
        mx.random.seed(cfg.seed)
        np.random.seed(cfg.seed)
        random.seed(cfg.seed)
        kwargs = dict(image_size=self.image_size, num_classes=self.num_classes,
                      channels=self.channels)
        self.G = get_generator(cfg.arch, z_dim=cfg.z_dim, **kwargs)
        if cfg.sync_bn and len(self.ctxs) > 1:
            to_sync_batchnorm(self.G, len(self.ctxs))
        self.D = get_discriminator(cfg.arch, sn=cfg.sn, power_iterations=cfg.power_iterations,
                                   **kwargs)
        self.G.initialize(ctx=self.ctxs)
        self.D.initialize(ctx=self.ctxs)
        self._warm_up()
        for net in (self.G, self.D):
            net.hybridize(static_alloc=True, static_shape=True)
        self.G_ema = None
        if cfg.ema > 0:
            self.G_ema = get_generator(cfg.arch, z_dim=cfg.z_dim, **kwargs)
            self.G_ema.initialize(ctx=self.ctxs[0])
            self._warm_up(self.G_ema, self.ctxs[:1])
            # (generator parameter, EMA parameter) pairs; the two nets' prefixes differ
            self._ema_pairs = list(zip(self.G.collect_params().values(),
                                       self.G_ema.collect_params().values()))
            self._copy_to_ema()
            self.G_ema.hybridize()
        self.d_loss_fn, self.g_loss_fn = get_loss(cfg.loss)
        self.augment = DiffAugment(cfg.diffaugment)
        self.lecam = LeCamAnchors(self.ctxs[0]) if cfg.lecam > 0 else None
        optimizer = dict(learning_rate=cfg.lr, beta1=cfg.beta1, beta2=cfg.beta2)
        if cfg.clip_gr > 0:
            optimizer["clip_gradient"] = cfg.clip_gr
        # One machine: each gluon.Trainer makes its own local kvstore from the name.
        # Distributed: the trainers get none and _DistSync sums the gradients.
        kvstore = cfg.kvstore if self.kv is None else None
        self.g_trainer = gluon.Trainer(self.G.collect_params(), "adam", dict(optimizer),
                                       kvstore=kvstore)
        self.d_trainer = gluon.Trainer(self.D.collect_params(), "adam", dict(optimizer),
                                       kvstore=kvstore)
        self._g_sync = self._d_sync = None
        self._stepped = set()
        if self.kv is not None:
            self._g_sync = _DistSync(self.kv, self.G.collect_params(), first_key=0)
            self._d_sync = _DistSync(self.kv, self.D.collect_params(),
                                     first_key=len(self._g_sync.keys))
            for sync in (self._g_sync, self._d_sync):
                sync.broadcast()
            if self.G_ema is not None:
                self._copy_to_ema()

    def _copy_to_ema(self):
        """Start the EMA generator from the generator's current weights."""
        for param, ema in self._ema_pairs:
            ema.set_data(param.data(self.ctxs[0]))

    def _warm_up(self, G=None, ctxs=None):
        """One inference pass to finish deferred initialization on every context."""
        for ctx in ctxs or self.ctxs:
            z = nd.zeros((2, self.config.z_dim), ctx=ctx)
            y = nd.zeros((2,), ctx=ctx, dtype="int32") if self.num_classes else None
            x = (G or self.G)(z) if y is None else (G or self.G)(z, y)
            if G is None:
                self.D(x) if y is None else self.D(x, y)

    # ------------------------------------------------------------ one iteration
    def _noise(self, n):
        z = self.noise_rng.normal(size=(n, self.config.z_dim)).astype(np.float32)
        y = (self.noise_rng.randint(0, self.num_classes, size=n).astype(np.int32)
             if self.num_classes else None)
        return z, y

    def _generate(self, z_parts, y_parts):
        if y_parts is None:
            return [self.G(z) for z in z_parts]
        return [self.G(z, y) for z, y in zip(z_parts, y_parts)]

    def _d_step(self, real, labels):
        n = self.local_batch
        share = 1.0 / (self.num_workers * len(self.ctxs))
        z, y_fake = self._noise(n)
        z_parts = _split(nd.array(z), self.ctxs)
        y_parts = _split(nd.array(y_fake, dtype="int32"), self.ctxs) if self.num_classes else None
        real_parts = _split(real, self.ctxs)
        real_y = _split(labels, self.ctxs) if self.num_classes else None
        with autograd.train_mode():  # BatchNorm batch statistics, no graph for G
            fakes = self._generate(z_parts, y_parts)
        losses, outs = [], []
        with autograd.record():
            for i, (r, f) in enumerate(zip(real_parts, fakes)):
                x = nd.concat(r, f, dim=0)
                if self.augment:
                    x = self.augment(x, self.noise_rng)
                out = (self.D(x) if real_y is None
                       else self.D(x, nd.concat(real_y[i], y_parts[i], dim=0)))
                half = r.shape[0]
                outs.append((out[:half], out[half:]))
            if self.lecam is not None:
                self.lecam.update(*zip(*outs))
            for (d_real, d_fake), ctx in zip(outs, self.ctxs):
                loss = self.d_loss_fn(d_real, d_fake)
                if self.lecam is not None:
                    loss = loss + self.config.lecam * lecam(d_real, d_fake, *self.lecam.on(ctx))
                losses.append(loss * share)
        autograd.backward(losses)
        self._apply_gradients(self.d_trainer, self._d_sync)
        return losses, outs

    def _g_step(self):
        share = 1.0 / (self.num_workers * len(self.ctxs))
        weight = self.config.mode_seeking
        z, y = self._noise(self.local_batch)
        if weight and y is not None:
            y[1::2] = y[0::2]  # the two samples of a mode-seeking pair share their class
        z_parts = _split(nd.array(z), self.ctxs)
        y_parts = _split(nd.array(y, dtype="int32"), self.ctxs) if self.num_classes else None
        losses = []
        with autograd.record():
            fakes = self._generate(z_parts, y_parts)
            for i, f in enumerate(fakes):
                if self.augment:
                    f = self.augment(f, self.noise_rng)
                out = self.D(f) if y_parts is None else self.D(f, y_parts[i])
                loss = self.g_loss_fn(out)
                if weight:
                    loss = loss + weight * mode_seeking(fakes[i], z_parts[i])
                losses.append(loss * share)
        autograd.backward(losses)
        self._apply_gradients(self.g_trainer, self._g_sync)
        return losses

    def _apply_gradients(self, trainer, sync):
        """One Adam step of ``trainer``; the devices' gradients already sum to the batch's."""
        if sync is not None:
            sync.allreduce()
            trainer.update(1)
            return
        if len(self.ctxs) > 1 and trainer not in self._stepped:
            # gluon.Trainer's first step copies every parameter, each ``u`` included,
            # from the first device to the others. The in-graph write of ``u`` by a
            # static_alloc graph is not ordered before that copy (it can read, and
            # then restore, the old ``u``), so the devices must finish first.
            nd.waitall()
            self._stepped.add(trainer)
        trainer.step(1)

    def ema_decay(self, iteration):
        """The EMA decay of update ``iteration`` (0-based): ``min(ema, (1 + t) / (10 + t))``.

        The warm-up is TensorFlow's ``ExponentialMovingAverage(num_updates=t)``:
        a constant 0.999 would still give the random initial generator a weight
        of 0.999**2000 = 13.5% after 2,000 iterations; with the warm-up the
        average forgets it at once (its weight after t updates is
        9! t! / (t + 9)!, below 1e-9 after 40) and reaches the full decay by
        ``t = (10 ema - 1) / (1 - ema)``.
        """
        return min(self.config.ema, (1.0 + iteration) / (10.0 + iteration))

    def _update_ema(self):
        decay = self.ema_decay(self.iteration)
        ctx = self.ctxs[0]
        for param, ema in self._ema_pairs:
            target = ema.data(ctx)
            target[:] = target * decay + param.data(ctx) * (1.0 - decay)

    def learning_rate(self, iteration):
        if self.config.lr_decay == "linear":
            return self.config.lr * (1.0 - iteration / float(self.total_iterations))
        return self.config.lr

    # ---------------------------------------------------------------- outputs
    def _prepare_out_dir(self, out_dir):
        self.out_dir = out_dir
        if not self.is_chief:
            return
        try:
            os.makedirs(os.path.join(out_dir, "samples"), exist_ok=True)
            os.makedirs(os.path.join(out_dir, "checkpoints"), exist_ok=True)
            probe = os.path.join(out_dir, ".write-test")
            with open(probe, "w") as f:
                f.write("ok")
            os.remove(probe)
        except OSError as err:
            raise ConfigError("--out-dir %s is not writable: %s" % (out_dir, err.strerror or err))
        self.config.save(os.path.join(out_dir, "config.json"))
        noise_path = os.path.join(out_dir, "fixed_noise.npz")
        if os.path.exists(noise_path):
            with np.load(noise_path) as saved:
                self.fixed_z, self.fixed_y = saved["z"], saved["y"]
        else:
            rng = np.random.RandomState(self.config.seed + 12345)
            self.fixed_z = rng.normal(size=(64, self.config.z_dim)).astype(np.float32)
            self.fixed_y = (np.arange(64) % max(self.num_classes, 1)).astype(np.int32)
            np.savez(noise_path, z=self.fixed_z, y=self.fixed_y)

    def sample(self, z, y=None, use_ema=True, ctx=None):
        """Images from the (EMA) generator in inference mode: uint8 (N, H, W, C)."""
        from .data import to_uint8
        ctx = ctx or self.ctxs[0]
        G = self.G_ema if (use_ema and self.G_ema is not None) else self.G
        z = nd.array(z, ctx=ctx)
        out = G(z) if not self.num_classes else G(z, nd.array(y, ctx=ctx, dtype="int32"))
        return to_uint8(out)

    def _write_samples(self):
        path = os.path.join(self.out_dir, "samples", "iter_%07d.png" % self.iteration)
        images = self.sample(self.fixed_z, self.fixed_y)
        save_image_grid(images, path, nrow=8)
        return path

    def _log(self, row):
        path = os.path.join(self.out_dir, "log.csv")
        new = not os.path.exists(path)
        with open(path, "a", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=LOG_FIELDS)
            if new:
                writer.writeheader()
            writer.writerow({k: row.get(k, "") for k in LOG_FIELDS})
        self.history.append(row)
        plot_curves(self.history, os.path.join(self.out_dir, "loss.png"))

    def save_checkpoint(self, extra_name=None):
        """Write a checkpoint of the current state atomically; returns its folder."""
        files = {
            "generator.params": self.G.save_parameters,
            "discriminator.params": self.D.save_parameters,
            "g_trainer.states": self.g_trainer.save_states,
            "d_trainer.states": self.d_trainer.save_states,
        }
        if self.G_ema is not None:
            files["generator_ema.params"] = self.G_ema.save_parameters
        state = {
            "iteration": self.iteration,
            "epoch": self.stream.epoch,
            "batch": self.stream.batch,
            "noise_rng": _rng_to_json(self.noise_rng),
            "best_fid": None if math.isinf(self.best_fid) else self.best_fid,
            "lecam_anchors": self.lecam.state() if self.lecam is not None else None,
            "config": self.config.to_dict(),
            "files": sorted(files),
            "num_classes": self.num_classes,
            "image_size": self.image_size,
            "channels": self.channels,
        }
        ckpt_dir = os.path.join(self.out_dir, "checkpoints")
        if extra_name:
            return ckpt.write_checkpoint(os.path.join(self.out_dir, extra_name),
                                         self.iteration, files, state, keep=1)
        return ckpt.write_checkpoint(ckpt_dir, self.iteration, files, state,
                                     keep=self.config.keep_checkpoints)

    def load_checkpoint(self, path):
        """Restore weights, every ``u``, optimizer moments, data position and RNG state."""
        state = ckpt.read_state(path)
        try:
            self.G.load_parameters(os.path.join(path, "generator.params"), ctx=self.ctxs)
            self.D.load_parameters(os.path.join(path, "discriminator.params"), ctx=self.ctxs)
            if self.G_ema is not None:
                self.G_ema.load_parameters(os.path.join(path, "generator_ema.params"),
                                           ctx=self.ctxs[0])
            self.g_trainer.load_states(os.path.join(path, "g_trainer.states"))
            self.d_trainer.load_states(os.path.join(path, "d_trainer.states"))
        except (mx.base.MXNetError, OSError, ValueError, AssertionError, KeyError,
                EOFError) as err:
            raise ckpt.CheckpointError("checkpoint %s is corrupt or does not match this model: %s"
                                       % (path, ckpt.error_summary(err)))
        except Exception as err:  # unpickling a damaged states file raises anything
            raise ckpt.CheckpointError("checkpoint %s is corrupt: %s: %s"
                                       % (path, type(err).__name__, err))
        self.iteration = int(state["iteration"])
        self.stream.epoch, self.stream.batch = int(state["epoch"]), int(state["batch"])
        self.noise_rng = _rng_from_json(state["noise_rng"])
        if not self.is_chief:
            # The checkpoint holds rank 0's data position and noise generator. Another
            # rank's position follows from the iteration (every iteration reads n_dis
            # batches), but its generator state is known to no file: it restarts from
            # (seed, rank, iteration), so the ranks keep drawing different noise.
            self.stream.epoch, self.stream.batch = divmod(
                self.iteration * self.config.n_dis, self.stream.batches_per_epoch)
            self.noise_rng = np.random.RandomState(
                [self.config.seed * 1000 + 17 + self.rank, self.iteration])
        if state.get("best_fid") is not None:
            self.best_fid = float(state["best_fid"])
        if self.lecam is not None:
            self.lecam.load_state(state.get("lecam_anchors"))
        self._reload_history()
        return state

    def _reload_history(self):
        path = os.path.join(self.out_dir or "", "log.csv")
        if self.is_chief and self.out_dir and os.path.exists(path):
            with open(path, newline="") as f:
                rows = [r for r in csv.DictReader(f) if int(r["iteration"]) <= self.iteration]
            self.history = rows
            with open(path, "w", newline="") as f:  # drop rows logged after the checkpoint
                writer = csv.DictWriter(f, fieldnames=LOG_FIELDS)
                writer.writeheader()
                writer.writerows({k: r.get(k, "") for k in LOG_FIELDS} for r in rows)

    # ------------------------------------------------------------------- loop
    def train(self, out_dir, resume=None, progress=True, evaluator=None):
        """Run until ``total_iterations``; returns the list of logged rows.

        ``resume``: a checkpoint folder to continue from. Ctrl-C writes a
        checkpoint and re-raises ``KeyboardInterrupt``; a NaN/Inf loss raises
        :class:`TrainingError` and leaves the last good checkpoint in place.
        """
        cfg = self.config
        self._prepare_out_dir(out_dir)
        if resume is not None:
            self.load_checkpoint(resume)
        self._evaluator = evaluator
        bar = None
        if progress and self.is_chief and not cfg.quiet:
            from tqdm import tqdm
            bar = tqdm(total=self.total_iterations, initial=self.iteration, unit="it",
                       dynamic_ncols=True, desc="sngan")
        batches = iter(self.stream)
        last_time, last_iter = time.time(), self.iteration
        start_wall = time.time()
        last_good = None
        try:
            while self.iteration < self.total_iterations:
                lr = self.learning_rate(self.iteration)
                self.g_trainer.set_learning_rate(lr)
                self.d_trainer.set_learning_rate(lr)
                for _ in range(cfg.n_dis):
                    real, labels = next(batches)
                    d_losses, d_outs = self._d_step(real, labels)
                g_losses = self._g_step()
                if self.G_ema is not None:
                    self._update_ema()
                self.iteration += 1
                if bar is not None:
                    bar.update(1)
                it = self.iteration
                due_log = it % cfg.log_every == 0 or it == self.total_iterations
                due_ckpt = it % cfg.checkpoint_every == 0 or it == self.total_iterations
                if due_log or due_ckpt:
                    # MXNet runs the queued steps asynchronously: read the clock only after
                    # _read_losses has waited for them, or a window misses its own work.
                    row = self._read_losses(d_losses, g_losses, d_outs)
                    now = time.time()
                    row.update(iteration=it, epoch=self.stream.epoch, lr=lr,
                               images_per_s=(it - last_iter) * cfg.n_dis * cfg.batch_size
                               / max(now - last_time, 1e-9),
                               wall_time=now - start_wall)
                    last_iter = it
                    if not all(math.isfinite(row[k]) for k in ("d_loss", "g_loss")):
                        kept = (" the last good checkpoint is %s" % last_good) if last_good \
                            else " no checkpoint was written"
                        raise TrainingError("loss became %s by iteration %d (d_loss=%s, "
                                            "g_loss=%s);%s; try a lower --lr or --clip_gr"
                                            % ("NaN" if any(math.isnan(row[k]) for k in
                                                            ("d_loss", "g_loss")) else "Inf",
                                               it, row["d_loss"], row["g_loss"], kept))
                    if self.is_chief:
                        if cfg.eval_every and (it % cfg.eval_every == 0
                                               or it == self.total_iterations) and evaluator:
                            row.update(self._evaluate(evaluator))
                        if due_log:
                            self._log(row)
                        if bar is not None:
                            bar.set_postfix(d_loss="%.3f" % row["d_loss"],
                                            g_loss="%.3f" % row["g_loss"],
                                            img_s="%.0f" % row["images_per_s"])
                if self.is_chief and (it % cfg.sample_every == 0 or it == self.total_iterations):
                    self._write_samples()
                if self.is_chief and due_ckpt:
                    last_good = self.save_checkpoint()
                if due_log or due_ckpt:
                    last_time = time.time()  # evaluation, samples, checkpoints: not training
        except KeyboardInterrupt:
            if self.is_chief:
                nd.waitall()
                path = self.save_checkpoint()
                if bar is not None:
                    bar.close()
                raise KeyboardInterrupt(path)
            raise
        finally:
            if bar is not None:
                bar.close()
        return self.history

    def _read_losses(self, d_losses, g_losses, d_outs):
        """The one host synchronization of a logging step."""
        d_loss = sum(float(l.asscalar()) for l in d_losses)
        g_loss = sum(float(l.asscalar()) for l in g_losses)
        d_real = float(np.mean(np.concatenate([r.asnumpy() for r, _ in d_outs])))
        d_fake = float(np.mean(np.concatenate([f.asnumpy() for _, f in d_outs])))
        return dict(d_loss=d_loss, g_loss=g_loss, d_real=d_real, d_fake=d_fake)

    def _evaluate(self, evaluator):
        result = evaluator(self)
        if result.get("fid") is not None and result["fid"] < self.best_fid:
            self.best_fid = result["fid"]
            self.save_checkpoint(extra_name="best")
        return result


class _DistSync:
    """Sums one network's gradients over devices and workers on a ``dist_*`` kvstore.

    Why not ``gluon.Trainer(..., kvstore=kv)``: a ``gluon.Trainer`` uses its
    parameters' positions 0..n-1 as kvstore keys, so the generator's and the
    discriminator's trainers on one shared dist kvstore claim the same keys on
    the servers (MXNet stops with "The value size cannot be changed ... Key is
    0"), and a process cannot make a second one (``mx.kv.create('dist_sync')``
    a second time waits forever in ps-lite). Gluon would also run Adam on the
    servers (``update_on_kvstore``), where ``set_learning_rate`` never reaches
    it and ``save_states`` refuses. So the servers only sum gradients, under
    keys ``first_key ..`` that keep the two networks apart, and each worker's
    ``gluon.Trainer`` (without a kvstore) applies Adam to the summed gradient;
    the weights start equal (``broadcast``) and stay equal, and the optimizer
    state is local, so checkpoints and learning-rate decay work as on one machine.

    Parameters
    ----------
    kv : KVStore
        The worker's dist kvstore (sync mode: a pull returns the sum of every
        worker's push of that round).
    params : ParameterDict
        The network's parameters, initialized on every context.
    first_key : int
        The first key; the network takes ``len(params)`` keys from there.
    """

    def __init__(self, kv, params, first_key):
        self.kv = kv
        self.params = [params[name] for name in sorted(params.keys())]
        self.keys = list(range(first_key, first_key + len(self.params)))

    def broadcast(self):
        """Give every device of every worker rank 0's values (``u`` and BN statistics too)."""
        self.kv.init(self.keys, [_dense(p.list_data()[0]) for p in self.params])
        self.kv.pull(self.keys, out=[p.list_data() for p in self.params])

    def allreduce(self):
        """Replace each device's gradient by the sum over all devices and workers."""
        for key, param in zip(self.keys, self.params):
            if param.grad_req != "null":
                grads = param.list_grad()
                self.kv.pushpull(key, [_dense(g) for g in grads], out=grads, priority=-key)


def _dense(array):
    """``array`` in MXNet's default layout. A CPU array may be in an MKL-DNN layout
    (convolution weights and their gradients often are), which a dist kvstore
    cannot send ("We can't generate TBlob for MKLDNN data"); a copy is plain."""
    return array.copy() if array.context.device_type == "cpu" else array


def _rng_to_json(rng):
    name, keys, pos, has_gauss, cached = rng.get_state()
    return [name, keys.tolist(), int(pos), int(has_gauss), float(cached)]


def _rng_from_json(values):
    rng = np.random.RandomState()
    name, keys, pos, has_gauss, cached = values
    rng.set_state((name, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
    return rng


def default_out_dir(config):
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return os.path.join("runs", "%s-%s-%s" % (config.dataset, config.arch, stamp))


def config_from_checkpoint(path):
    """The TrainConfig saved in a checkpoint folder."""
    state = ckpt.read_state(path)
    try:
        return TrainConfig.from_dict(state["config"])
    except (TypeError, ValueError) as err:
        raise ckpt.CheckpointError("checkpoint %s has an unreadable config: %s" % (path, err))


__all__ = ["GANTrainer", "TrainingError", "BatchStream", "get_contexts", "default_out_dir",
           "config_from_checkpoint"]
