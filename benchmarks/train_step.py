"""Speed and memory of a full training iteration, against its parts measured alone.

For ``dcgan`` at 32x32, batch 64, hybridized, n_dis = 1 and 5, prints:

* iterations/s and real images/s of ``GANTrainer``'s full iteration (data, both
  forward/backward passes, both Adam steps, learning-rate bookkeeping);
* the time of the same networks' forward+backward work alone (n_dis x [G
  forward on B, D forward+backward on 2B] + [G and D forward+backward on B]),
  on tensors already in memory, no optimizer, and the ratio of the two
  (target: the full iteration costs at most 10% more);
* the data pipeline's images/s alone, and its ratio to what training consumes
  (target: at least 5x);
* the cost of the training loop's one host wait per iteration (for the
  generator's loss, so that the progress bar counts finished iterations):
  ``--loop-iterations`` iterations queued back to back against the same with
  the wait after each, and their ratio;
* the cost of the sigma log (sigmas.csv and sigma.png, see
  :mod:`sngan_gluon.sigma_log`): blocks of ``--sigma-log-every`` iterations,
  each ending in the log row's read of the losses, with and without the
  :class:`~sngan_gluon.sigma_log.SigmaLog` call, interleaved, for an SN and a
  plain (``--no-sn``) discriminator, and their ratio;
* where one iteration's time goes (``parts``): train.py's defaults (n_dis 1,
  clipping at 10) split into data, G forward, D forward+backward, G backward,
  the Adam updates, the EMA and the log row's read of the losses, each in ms and
  as a share of the iteration, with ``nd.waitall()`` between the parts; beside
  them the same parts of the PyTorch loop (``torch_loop.py``), interleaved, and
  each side's whole iteration timed without the waits;
* what leaving D's weight gradients out of the G step saves (``g-step``): the
  G step with and without :class:`~sngan_gluon.updater.InputGradientOnly`,
  interleaved;
* the peak resident memory of the process.

Full iterations and the parts are timed interleaved in one run so that machine
noise hits both alike. ``python benchmarks/train_step.py [--repeats 8]
[--sections step data sigma-log parts g-step]``
"""
import argparse
import contextlib
import os
import resource
import tempfile
import time

import numpy as np

import sngan_gluon  # noqa: F401

from mxnet import autograd, nd
import torch

from torch_loop import PARTS as TORCH_PARTS, TorchLoop

from sngan_gluon.config import TrainConfig
from sngan_gluon.batches import BatchStream
from sngan_gluon.data import get_dataset
from sngan_gluon.run_folder import RunFolder
from sngan_gluon.sigma_log import SigmaLog
from sngan_gluon.trainer import GANTrainer
from sngan_gluon.updater import Observation


def parts_alone(trainer, n_dis, batch):
    """One iteration's forward+backward work of G and D alone (no data, no optimizer)."""
    G, D, ctx = trainer.G, trainer.D, trainer.ctxs[0]
    z = nd.random.normal(shape=(batch, trainer.config.z_dim), ctx=ctx)
    real = nd.random.uniform(-1, 1, shape=(batch, 3, 32, 32), ctx=ctx)
    for _ in range(n_dis):
        with autograd.train_mode():
            fake = G(z)
        with autograd.record():
            loss = D(nd.concat(real, fake, dim=0)).mean()
        loss.backward()
    with autograd.record():
        loss = D(G(z)).mean()
    loss.backward()
    nd.waitall()


def full_iteration(trainer):
    trainer.updater.update()
    nd.waitall()


def loop_of(trainer, iterations, wait):
    """``iterations`` updates as the training loop runs them; ``wait``: its per-iteration wait."""
    for _ in range(iterations):
        observation = trainer.updater.update()
        if wait:
            observation.wait()
    nd.waitall()


def logged_block(trainer, iterations, sigma_log):
    """``iterations`` iterations as the loop runs them, then the log row's read of the
    losses and, with ``sigma_log``, its call (the sigmas, a csv row, sigma.png)."""
    for _ in range(iterations):
        trainer.observation = trainer.updater.update()
        trainer.observation.wait()
    trainer.observation.read()
    if sigma_log is not None:
        sigma_log(trainer)


def sigma_log_cost(dataset, args):
    """Seconds per iteration with and without the sigma log, interleaved, SN and plain D."""
    k = args.sigma_log_every
    for sn in (True, False):
        config = TrainConfig(dataset="synthetic", arch="dcgan", batch_size=args.batch_size,
                             sn=sn, iterations=10 ** 6, quiet=True)
        trainer = GANTrainer(config, dataset=dataset)
        with tempfile.TemporaryDirectory() as folder:
            trainer.run = RunFolder(folder)  # SigmaLog writes under run.path only
            sigma_log = SigmaLog()
            sigma_log.initialize(trainer)
            logged_block(trainer, 2, sigma_log)  # warm-up: graphs, the plain layers' u
            plain, logged, alone = [], [], []
            for repeat in range(args.repeats):
                for with_log in ((False, True) if repeat % 2 else (True, False)):
                    times = logged if with_log else plain
                    times.append(median_time(lambda: logged_block(
                        trainer, k, sigma_log if with_log else None), 1) / k)
                alone.append(median_time(lambda: sigma_log(trainer), 1))
        t_plain, t_logged = float(np.median(plain)), float(np.median(logged))
        print("%s D, sigma log every %d iterations: %.4f s/it without, %.4f s/it with; "
              "with/without %.3f (the log's call alone: %.3f s)"
              % ("SN" if sn else "plain", k, t_plain, t_logged, t_logged / t_plain,
                 float(np.median(alone))))


def median_time(fn, repeats):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


#: the rows of the breakdown: (part, MXNet has it, PyTorch has it)
BREAKDOWN = (("data", True, True), ("D step: G forward", True, True),
             ("D step: D forward+backward", True, True), ("D step: clipping", False, True),
             ("D step: Adam", True, True), ("G step: G forward", True, True),
             ("G step: D forward", True, True), ("G step: backward (D and G)", True, True),
             ("G step: clipping", False, True), ("G step: Adam", True, True),
             ("EMA", True, False), ("logging", True, False))
assert [p for p, _, has in BREAKDOWN if has] == list(TORCH_PARTS)


def package_parts(trainer, tick):
    """One iteration of :meth:`Updater.update` (one device, unconditional, no terms,
    n_dis 1) with ``nd.waitall()`` and ``tick(part)`` after each part."""
    up = trainer.updater
    if up._batches is None:
        up._batches = iter(up.stream)
    lr = up.learning_rate(up.iteration)
    up.g_trainer.set_learning_rate(lr)
    up.d_trainer.set_learning_rate(lr)
    real, _ = next(up._batches)
    nd.waitall()
    tick("data")
    batch = real.shape[0]
    z = nd.array(up.noise(batch)[0])
    with autograd.train_mode():
        fake = up.G(z)
    nd.waitall()
    tick("D step: G forward")
    with autograd.record():
        out = up.D(nd.concat(real, fake, dim=0))
        d_loss = up.d_loss_fn(out[:batch], out[batch:]) * 1.0
    d_loss.backward()
    nd.waitall()
    tick("D step: D forward+backward")
    up._apply_gradients(up.d_trainer, None)  # adam_update clips the gradients itself
    nd.waitall()
    tick("D step: Adam")
    z = nd.array(up.noise(batch)[0])
    with up._d_input_only, autograd.record():
        fake = up.G(z)
        nd.waitall()
        tick("G step: G forward")
        g_loss = up.g_loss_fn(up.D(fake)) * 1.0
        nd.waitall()
        tick("G step: D forward")
        autograd.backward([g_loss])
        nd.waitall()
    tick("G step: backward (D and G)")
    up._apply_gradients(up.g_trainer, None)
    nd.waitall()
    tick("G step: Adam")
    up.ema.update(up.iteration)
    nd.waitall()
    tick("EMA")
    up.iteration += 1
    Observation(up.iteration, [d_loss], [g_loss], [(out[:batch], out[batch:])], lr).read()
    # the losses are read for one log row per log_every iterations: its share of one
    tick("logging", 1.0 / trainer.config.log_every)


class Clock:
    """``tick(part, share=1)`` adds ``share`` times the time since the last tick to
    ``part``'s list of times."""

    def __init__(self):
        self.times, self._last = {}, None

    def start(self):
        self._last = time.perf_counter()

    def tick(self, part, share=1.0):
        now = time.perf_counter()
        self.times.setdefault(part, []).append((now - self._last) * share)
        self._last = now


def breakdown(dataset, args):
    """Where the time of one iteration goes, package and PyTorch loop side by side."""
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "2")))
    config = TrainConfig(dataset="synthetic", arch="dcgan", batch_size=args.batch_size,
                         iterations=10 ** 6, quiet=True, ema=0.999)
    trainer = GANTrainer(config, dataset=dataset)
    loop = TorchLoop(dataset.images, batch_size=args.batch_size)
    ours, theirs = Clock(), Clock()
    whole = {"package": [], "torch": []}
    for repeat in range(args.repeats + 2):
        ours.start()
        package_parts(trainer, ours.tick)
        theirs.start()
        loop.iteration(theirs.tick)
        whole["package"].append(median_time(lambda: full_iteration(trainer), 1))
        whole["torch"].append(median_time(loop.iteration, 1))
        if repeat < 2:  # warm-up: graphs, memory plans, optimizer states
            ours.times, theirs.times = {}, {}
            whole = {"package": [], "torch": []}
    ms = {name: {part: 1e3 * float(np.median(t)) for part, t in clock.times.items()}
          for name, clock in (("package", ours), ("torch", theirs))}
    totals = {name: sum(parts.values()) for name, parts in ms.items()}
    print("one iteration, parts with a wait after each (medians of %d interleaved repeats):"
          % args.repeats)
    print("%-28s %18s %18s" % ("part", "sngan_gluon", "PyTorch loop"))
    for part, mine, torch_has in BREAKDOWN:
        cells = []
        for name, has in (("package", mine), ("torch", torch_has)):
            cells.append("%9.1f ms %5.1f%%" % (ms[name][part], 100 * ms[name][part] / totals[name])
                         if has else "%18s" % ("in Adam's update" if "clipping" in part else "-"))
        print("%-28s %s %s" % (part, cells[0], cells[1]))
    print("%-28s %9.1f ms %6s %9.1f ms" % ("sum of the parts", totals["package"], "",
                                           totals["torch"]))
    t_ours, t_theirs = (1e3 * float(np.median(whole[k])) for k in ("package", "torch"))
    print("%-28s %9.1f ms %6s %9.1f ms; package/PyTorch %.3f (the package's with the EMA)"
          % ("whole iteration, no waits", t_ours, "", t_theirs, t_ours / t_theirs))


def g_step_cost(dataset, args):
    """The G step with D's weight gradients left out, against the same step computing them."""
    config = TrainConfig(dataset="synthetic", arch="dcgan", batch_size=args.batch_size,
                         iterations=10 ** 6, quiet=True)
    trainer = GANTrainer(config, dataset=dataset)
    up = trainer.updater
    skip = up._d_input_only
    times = {True: [], False: []}

    def iteration(skipping):
        up._d_input_only = skip if skipping else contextlib.nullcontext()
        up.update()
        nd.waitall()

    for repeat in range(args.repeats + 1):
        for skipping in ((True, False) if repeat % 2 else (False, True)):
            elapsed = median_time(lambda: iteration(skipping), 1)
            if repeat:
                times[skipping].append(elapsed)
    t_skip, t_full = (float(np.median(times[k])) for k in (True, False))
    print("whole iteration (n_dis 1) with D's weight gradients left out of the G step: "
          "%.3f s; computing them: %.3f s; ratio %.3f" % (t_skip, t_full, t_skip / t_full))


SECTIONS = ("step", "data", "sigma-log", "parts", "g-step")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--loop-iterations", type=int, default=5)
    parser.add_argument("--sigma-log-every", type=int, default=20,
                        help="iterations per block of the sigma log's section")
    parser.add_argument("--sections", nargs="+", choices=SECTIONS, default=list(SECTIONS),
                        help="what to measure (step: full iteration, parts and loop; data: "
                             "the data pipeline, against n_dis=5 when step runs too)")
    args = parser.parse_args()
    dataset = get_dataset("synthetic", image_size=32)
    print("dcgan 32x32, batch %d, hybridized; medians of %d interleaved repeats"
          % (args.batch_size, args.repeats))
    if "step" in args.sections:
        consumed = step_and_loop(dataset, args)
    if "data" in args.sections:
        data_pipeline(dataset, args, consumed if "step" in args.sections else None)
    if "sigma-log" in args.sections:
        sigma_log_cost(dataset, args)
    if "parts" in args.sections:
        breakdown(dataset, args)
    if "g-step" in args.sections:
        g_step_cost(dataset, args)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print("peak resident memory of this process: %.0f MiB" % peak)


def step_and_loop(dataset, args):
    """Full iteration against its parts, and the loop's wait; returns n_dis=5's images/s."""
    for n_dis in (1, 5):
        config = TrainConfig(dataset="synthetic", arch="dcgan", batch_size=args.batch_size,
                             n_dis=n_dis, iterations=10 ** 6, quiet=True)
        trainer = GANTrainer(config, dataset=dataset)
        for _ in range(2):
            full_iteration(trainer)
            parts_alone(trainer, n_dis, args.batch_size)
        full, parts, queued, waited = [], [], [], []
        k = args.loop_iterations
        for _ in range(args.repeats):
            full.append(median_time(lambda: full_iteration(trainer), 1))
            parts.append(median_time(lambda: parts_alone(trainer, n_dis, args.batch_size), 1))
            queued.append(median_time(lambda: loop_of(trainer, k, wait=False), 1) / k)
            waited.append(median_time(lambda: loop_of(trainer, k, wait=True), 1) / k)
        t_full, t_parts = float(np.median(full)), float(np.median(parts))
        consumed = n_dis * args.batch_size / t_full
        print("n_dis=%d: full iteration %.3f s (%.2f it/s, %.0f real images/s); "
              "forward+backward alone %.3f s; full/alone %.3f"
              % (n_dis, t_full, 1 / t_full, consumed, t_parts, t_full / t_parts))
        t_queued, t_waited = float(np.median(queued)), float(np.median(waited))
        print("n_dis=%d: loop of %d iterations, queued %.4f s/it, waiting for each %.4f s/it; "
              "waiting/queued %.3f" % (n_dis, k, t_queued, t_waited, t_waited / t_queued))
    return consumed


def data_pipeline(dataset, args, consumed):
    stream = iter(BatchStream(dataset, args.batch_size, seed=0))
    next(stream)
    count = 200
    start = time.perf_counter()
    for _ in range(count):
        images, _ = next(stream)
    images.wait_to_read()
    data_rate = count * args.batch_size / (time.perf_counter() - start)
    print("data pipeline alone: %.0f images/s%s" % (data_rate, "" if consumed is None else
          " = %.1fx what n_dis=5 training consumes" % (data_rate / consumed)))


if __name__ == "__main__":
    main()
