"""One training iteration: ``n_dis`` discriminator updates, a generator update, the EMA.

One generator iteration (Miyato et al. 2018, Algorithm 1 around the updates):

* ``n_dis`` times: a fresh real batch and a fresh fake batch, the discriminator
  run *once* on the two concatenated (it has no BatchNorm, so this is exact and
  advances each ``u`` once per update rather than twice), the discriminator
  loss backpropagated and Adam applied;
* a fresh fake batch through the discriminator, the generator loss
  backpropagated and Adam applied to the generator; the EMA of the
  generator's weights updated.

The generator's step needs from the discriminator only the gradient with
respect to its input; D's weights are marked ``'null'`` for that one backward
pass (:class:`InputGradientOnly`), so it computes no weight gradients that the
next discriminator step would overwrite anyway.

The regularisers (LeCam, mode seeking, DiffAugment) are
:class:`~sngan_gluon.terms.Term` objects whose hooks the steps call.

Several devices: each batch is split over the contexts and the gradients are
summed by the ``gluon.Trainer``'s kvstore; each device's loss is weighted by its
share of the batch, so the summed gradient is that of the whole batch. Several
machines: :class:`~sngan_gluon.dist_sync.DistSync` sums the gradients instead.
"""
import numpy as np

from mxnet import autograd, gluon, nd

from .dist_sync import DistSync, any_worker, init_vote
from .losses import get_loss


def _split(batch, ctxs):
    return gluon.utils.split_and_load(batch, ctxs, even_split=True)


class InputGradientOnly:
    """While active, recorded passes take no gradient for ``params``' weights.

    The G step backpropagates through D only to reach G: D's weight gradients
    would be computed and then overwritten, unread, by the next D step
    (``grad_req='write'``). Inside this context D's weight arrays are marked as
    autograd variables with request ``'null'`` (the gradient arrays kept,
    nothing reallocated, ``grad_req`` unchanged for ``gluon.Trainer``), so D's
    cached backward graph leaves those outputs out. Autograd keeps the request
    a variable had when a pass was recorded: the forward pass must run inside
    the context as well as the backward. The gradient with respect to D's input
    comes from the same operators as before, so the weights stay bit-identical
    (tests/test_trainer.py). MXNet's CachedOp re-plans its backward graph's
    memory when the requests change, twice per iteration, at a cost far below
    the weight gradients it saves (benchmarks/train_step.py).

    Parameters
    ----------
    params : ParameterDict or list of Parameter; those with ``grad_req='null'``
        (SN's ``u``) are left alone.
    """

    def __init__(self, params):
        params = params.values() if hasattr(params, "values") else params
        self._marked = [p for p in params if p.grad_req != "null"]

    def _mark(self, null):
        for param in self._marked:
            autograd.mark_variables(param.list_data(), param.list_grad(),
                                    "null" if null else param.grad_req)

    def __enter__(self):
        self._mark(True)
        return self

    def __exit__(self, *exc):
        self._mark(False)


def noise_rng(seed, rank, iteration=None):
    """The generator of worker ``rank``'s noise, labels and augmentations in a run seeded ``seed``.

    From the start: ``RandomState(seed * 1000 + 17 + rank)``. ``iteration``: a
    rank other than 0 resuming at that iteration, whose generator state no file
    holds (a checkpoint keeps rank 0's): ``RandomState([seed * 1000 + 17 + rank,
    iteration])``, so the ranks keep drawing different noise.
    """
    key = seed * 1000 + 17 + rank
    return np.random.RandomState(key if iteration is None else [key, iteration])


class EMA:
    """An exponential moving average of a generator's weights, kept in a second generator.

    Parameters
    ----------
    G, G_ema : the trained generator and its average (the same architecture).
    ctx : the device whose copy of ``G`` is averaged (``G_ema`` lives there).
    decay : the final decay (``--ema``).
    """

    def __init__(self, G, G_ema, ctx, decay):
        self.net, self.ctx, self.decay = G_ema, ctx, decay
        # (generator parameter, EMA parameter) pairs; the two nets' prefixes differ
        self.pairs = list(zip(G.collect_params().values(), G_ema.collect_params().values()))

    def reset(self):
        """Start the average from the generator's current weights."""
        for param, ema in self.pairs:
            ema.set_data(param.data(self.ctx))

    def decay_at(self, iteration):
        """The decay of update ``iteration`` (0-based): ``min(ema, (1 + t) / (10 + t))``.

        The warm-up is TensorFlow's ``ExponentialMovingAverage(num_updates=t)``:
        a constant 0.999 would still give the random initial generator a weight
        of 0.999**2000 = 13.5% after 2,000 iterations; with the warm-up the
        average forgets it at once (its weight after t updates is
        9! t! / (t + 9)!, below 1e-9 after 40) and reaches the full decay by
        ``t = (10 ema - 1) / (1 - ema)``.
        """
        return min(self.decay, (1.0 + iteration) / (10.0 + iteration))

    def update(self, iteration):
        decay = self.decay_at(iteration)
        for param, ema in self.pairs:
            target = ema.data(self.ctx)
            target[:] = target * decay + param.data(self.ctx) * (1.0 - decay)


class Observation:
    """What one iteration leaves to read: the losses and D's outputs, still on the devices.

    ``wait()`` blocks until the generator's loss of the iteration is computed
    (the iteration's last forward pass); ``read()`` copies the figures to the
    host once and returns ``{d_loss, g_loss, d_real, d_fake, lr}``.
    """

    def __init__(self, iteration, d_losses, g_losses, d_outs, lr):
        self.iteration, self.lr = iteration, lr
        self._d_losses, self._g_losses, self._d_outs = d_losses, g_losses, d_outs
        self._values = None

    def wait(self):
        for loss in self._g_losses:
            loss.wait_to_read()

    def read(self):
        if self._values is None:
            outs = self._d_outs
            self._values = dict(
                d_loss=sum(float(l.asscalar()) for l in self._d_losses),
                g_loss=sum(float(l.asscalar()) for l in self._g_losses),
                d_real=float(np.mean(np.concatenate([r.asnumpy() for r, _ in outs]))),
                d_fake=float(np.mean(np.concatenate([f.asnumpy() for _, f in outs]))),
                lr=self.lr)
        return self._values


class Updater:
    """Updates G and D (and the EMA) for one iteration per :meth:`update` call.

    Parameters
    ----------
    G, D : initialized, hybridized networks on every context of ``ctxs``.
    config : TrainConfig (``loss``, ``lr``, ``beta1``, ``beta2``, ``clip_gr``,
        ``kvstore``, ``n_dis``, ``z_dim``, ``lr_decay``).
    ctxs : list of Context; each batch is split evenly over them.
    stream : iterable of ``(images, labels)`` batches of ``local_batch`` images.
    noise_rng : numpy ``RandomState`` of the noise, labels and augmentations
        (:func:`noise_rng`).
    total_iterations : int, the end of the learning-rate schedule.
    terms : list of :class:`~sngan_gluon.terms.Term`.
    ema : :class:`EMA` or None.
    kv : a ``dist_*`` kvstore or None; ``num_workers`` its worker count.

    :meth:`state` / :meth:`load_state` are what a checkpoint keeps of it.
    """

    def __init__(self, G, D, config, ctxs, stream, noise_rng, num_classes, total_iterations,
                 terms=(), ema=None, kv=None, num_workers=1):
        self.G, self.D, self.config, self.ctxs = G, D, config, ctxs
        self.stream, self.noise_rng, self.num_classes = stream, noise_rng, num_classes
        self.total_iterations, self.terms, self.ema = total_iterations, list(terms), ema
        self.kv, self.num_workers = kv, num_workers
        self.rank = kv.rank if kv is not None else 0
        self.local_batch = config.batch_size // num_workers
        self.iteration = 0
        self.d_loss_fn, self.g_loss_fn = get_loss(config.loss)
        optimizer = dict(learning_rate=config.lr, beta1=config.beta1, beta2=config.beta2)
        if config.clip_gr > 0:
            optimizer["clip_gradient"] = config.clip_gr
        # One machine: each gluon.Trainer makes its own local kvstore from the name.
        # Distributed: the trainers get none and DistSync sums the gradients.
        kvstore = config.kvstore if kv is None else None
        self.g_trainer = gluon.Trainer(G.collect_params(), "adam", dict(optimizer),
                                       kvstore=kvstore)
        self.d_trainer = gluon.Trainer(D.collect_params(), "adam", dict(optimizer),
                                       kvstore=kvstore)
        self._g_sync = self._d_sync = None
        self._stepped = set()
        if kv is not None:
            self._g_sync = DistSync(kv, G.collect_params(), first_key=0)
            self._d_sync = DistSync(kv, D.collect_params(), first_key=len(self._g_sync.keys))
            self._vote_key = len(self._g_sync.keys) + len(self._d_sync.keys)
            for sync in (self._g_sync, self._d_sync):
                sync.broadcast()
            init_vote(kv, self._vote_key)
            if ema is not None:
                ema.reset()
        self._batches = None
        self._d_input_only = InputGradientOnly(D.collect_params())

    def seek(self, epoch, batch):
        """Continue the data from batch ``batch`` of epoch ``epoch`` (after a checkpoint)."""
        self.stream.epoch, self.stream.batch = epoch, batch
        self._batches = None

    def state(self):
        """What a checkpoint keeps of the updater: ``iteration``, the data position
        (``epoch``, ``batch``), ``noise_rng`` (the RandomState itself) and each
        term's state under its ``state_key``."""
        state = dict(iteration=self.iteration, epoch=self.stream.epoch, batch=self.stream.batch,
                     noise_rng=self.noise_rng)
        for term in self.terms:
            if term.state_key:
                state[term.state_key] = term.state()
        return state

    def position_fits(self, state):
        """Whether ``state``'s data position is where its iteration ends (every
        iteration reads ``n_dis`` batches); only rank 0's position is saved."""
        read = state["epoch"] * self.stream.batches_per_epoch + state["batch"]
        return read == state["iteration"] * self.config.n_dis

    def load_state(self, state):
        """Continue from ``state`` (as :meth:`state` gives it). Rank 0 takes the saved
        data position and noise generator; another rank derives its position from the
        iteration and its generator from :func:`noise_rng`."""
        self.iteration = state["iteration"]
        epoch, batch = state["epoch"], state["batch"]
        self.noise_rng = state["noise_rng"]
        if self.rank != 0:
            epoch, batch = divmod(self.iteration * self.config.n_dis,
                                  self.stream.batches_per_epoch)
            self.noise_rng = noise_rng(self.config.seed, self.rank, self.iteration)
        self.seek(epoch, batch)
        for term in self.terms:
            if term.state_key:
                term.load_state(state.get(term.state_key))

    def learning_rate(self, iteration):
        if self.config.lr_decay == "linear":
            return self.config.lr * (1.0 - iteration / float(self.total_iterations))
        return self.config.lr

    def update(self):
        """One whole iteration; returns its :class:`Observation` (nothing read yet)."""
        if self._batches is None:
            self._batches = iter(self.stream)
        lr = self.learning_rate(self.iteration)
        self.g_trainer.set_learning_rate(lr)
        self.d_trainer.set_learning_rate(lr)
        for _ in range(self.config.n_dis):
            real, labels = next(self._batches)
            d_losses, d_outs = self.d_step(real, labels)
        g_losses = self.g_step()
        if self.ema is not None:
            self.ema.update(self.iteration)
        self.iteration += 1
        return Observation(self.iteration, d_losses, g_losses, d_outs, lr)

    def any_worker_stops(self, flag):
        """Whether any worker wants to stop now (a sync round on a dist kvstore)."""
        if self.kv is None:
            return flag
        return any_worker(self.kv, self._vote_key, flag)

    def barrier(self):
        """Wait until every worker is here (on a dist kvstore; else return at once)."""
        if self.kv is not None:
            any_worker(self.kv, self._vote_key, True)

    def noise(self, n):
        z = self.noise_rng.normal(size=(n, self.config.z_dim)).astype(np.float32)
        y = (self.noise_rng.randint(0, self.num_classes, size=n).astype(np.int32)
             if self.num_classes else None)
        return z, y

    def generate(self, z_parts, y_parts):
        if y_parts is None:
            return [self.G(z) for z in z_parts]
        return [self.G(z, y) for z, y in zip(z_parts, y_parts)]

    def _d_input(self, x):
        for term in self.terms:
            x = term.d_input(x, self.noise_rng)
        return x

    def d_step(self, real, labels):
        """One D update; returns (weighted losses, [(d_real, d_fake)]), per device."""
        share = 1.0 / (self.num_workers * len(self.ctxs))
        z, y_fake = self.noise(self.local_batch)
        z_parts = _split(nd.array(z), self.ctxs)
        y_parts = _split(nd.array(y_fake, dtype="int32"), self.ctxs) if self.num_classes else None
        real_parts = _split(real, self.ctxs)
        real_y = _split(labels, self.ctxs) if self.num_classes else None
        with autograd.train_mode():  # BatchNorm batch statistics, no graph for G
            fakes = self.generate(z_parts, y_parts)
        losses, outs = [], []
        with autograd.record():
            for i, (r, f) in enumerate(zip(real_parts, fakes)):
                x = self._d_input(nd.concat(r, f, dim=0))
                out = (self.D(x) if real_y is None
                       else self.D(x, nd.concat(real_y[i], y_parts[i], dim=0)))
                half = r.shape[0]
                outs.append((out[:half], out[half:]))
            for term in self.terms:
                term.observe_d(outs)
            for (d_real, d_fake), ctx in zip(outs, self.ctxs):
                loss = self.d_loss_fn(d_real, d_fake)
                for term in self.terms:
                    penalty = term.d_penalty(d_real, d_fake, ctx)
                    if penalty is not None:
                        loss = loss + penalty
                losses.append(loss * share)
        autograd.backward(losses)
        self._apply_gradients(self.d_trainer, self._d_sync)
        return losses, outs

    def g_step(self):
        """One G update on fresh noise; returns the weighted losses, one per device."""
        share = 1.0 / (self.num_workers * len(self.ctxs))
        z, y = self.noise(self.local_batch)
        for term in self.terms:
            y = term.g_labels(y)
        z_parts = _split(nd.array(z), self.ctxs)
        y_parts = _split(nd.array(y, dtype="int32"), self.ctxs) if self.num_classes else None
        losses = []
        # D's weight gradients: unused, not computed; the marks must precede the recording
        with self._d_input_only, autograd.record():
            fakes = self.generate(z_parts, y_parts)
            for i, fake in enumerate(fakes):
                x = self._d_input(fake)
                out = self.D(x) if y_parts is None else self.D(x, y_parts[i])
                loss = self.g_loss_fn(out)
                for term in self.terms:
                    penalty = term.g_penalty(fake, z_parts[i])
                    if penalty is not None:
                        loss = loss + penalty
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
