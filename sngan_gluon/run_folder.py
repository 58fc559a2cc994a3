"""The one folder a run writes: config.json, log.csv, loss.png, samples, fixed noise, checkpoints.

A run holds an exclusive ``fcntl`` lock on ``<run>/.lock`` while it trains: the
operating system releases it when the process ends, however it ends, so a
second run in the same folder is refused and no stale lock is ever left. A
new run refuses a folder that already holds checkpoints (continue it with
``--resume``); a resumed run moves the checkpoints newer than the one it
continues from, with a copy of ``log.csv``, into ``checkpoints/superseded-*``
rather than overwrite them. Writes that fail (a full disk, a read-only file
system) end in one :class:`RunFolderWriteError` naming the folder and the cause.
"""
import contextlib
import csv
import errno
import fcntl
import os
import shutil
import sys
import time

import mxnet as mx
import numpy as np

from . import checkpoint as ckpt
from .errors import UserError
from .fileio import atomic_path, error_summary
from .visualize import plot_curves, save_image_grid

LOG_FIELDS = ["iteration", "epoch", "d_loss", "g_loss", "d_real", "d_fake", "lr", "images_per_s",
              "wall_time", "is_mean", "is_std", "fid", "kid_mean", "kid_std", "precision",
              "recall", "density", "coverage"]
LOCK_FILE = ".lock"


class RunFolderError(UserError, RuntimeError):
    """The run folder cannot be used (in use, holds another run); the message says how to go on."""


class RunFolderWriteError(RuntimeError):
    """Writing to the run folder failed (disk full, read-only); names the folder and the cause."""


@contextlib.contextmanager
def writing(folder, what):
    """Turn a failed write under ``folder`` into one :class:`RunFolderWriteError`."""
    try:
        yield
    except (OSError, mx.base.MXNetError) as err:
        cause = " ".join((os.strerror(err.errno) if isinstance(err, OSError) and err.errno
                          else error_summary(err)).split())
        newest = ckpt.list_checkpoints(os.path.join(folder, "checkpoints"))
        kept = ("the checkpoints written before are intact (newest: %s)" % newest[-1][1]
                if newest else "no checkpoint was written")
        raise RunFolderWriteError("cannot write %s in %s: %s; %s" % (what, folder, cause, kept))


class RunFolder:
    """Writes one run's outputs under ``path``; :meth:`open` before, :meth:`close` after.

    Attributes: ``history`` (the logged rows, oldest first), ``fixed_z`` float32
    (64, z_dim) and ``fixed_y`` int32 (64,), the noise of every sample grid.
    """

    def __init__(self, path):
        self.path = path
        self.checkpoints = os.path.join(path, "checkpoints")
        self.history = []
        self._lock = None

    def open(self, config, num_classes, resume_state=None, resume_path=None):
        """Lock the folder and prepare it for a new run or for one resumed at ``resume_state``."""
        try:
            os.makedirs(os.path.join(self.path, "samples"), exist_ok=True)
            os.makedirs(self.checkpoints, exist_ok=True)
            self._acquire_lock()
        except OSError as err:
            raise RunFolderError("--out-dir %s is not writable: %s"
                                 % (self.path, os.strerror(err.errno) if err.errno else err))
        try:
            self._prepare(config, num_classes, resume_state, resume_path)
        except BaseException:
            self.close()
            raise

    def _prepare(self, config, num_classes, resume_state, resume_path):
        ckpt.remove_stale_temporaries(self.checkpoints)
        ckpt.remove_stale_temporaries(os.path.join(self.path, "best"))
        existing = ckpt.list_checkpoints(self.checkpoints, complete=False)
        inside = resume_path is not None and _inside(resume_path, self.path)
        if existing and not inside:
            raise RunFolderError(
                "%s already holds a run's checkpoints (newest %s): continue it with --resume %s, "
                "or train into another --out-dir" % (self.path, os.path.basename(existing[-1][1]),
                                                     self.path))
        with writing(self.path, "the run's config, log and noise"):
            if resume_state is not None:
                self._set_aside_newer(resume_state["iteration"])
                self._reload_history(resume_state["iteration"])
            config.save(os.path.join(self.path, "config.json"))
            self._fixed_noise(config, num_classes)

    def close(self):
        if self._lock is not None:
            os.close(self._lock)
            self._lock = None

    def _acquire_lock(self):
        fd = os.open(os.path.join(self.path, LOCK_FILE), os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as err:
            holder = os.read(fd, 32).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            if err.errno not in (errno.EWOULDBLOCK, errno.EACCES):
                raise
            raise RunFolderError("%s is in use by another training run (pid %s); wait for it "
                                 "to end or train into another --out-dir" % (self.path, holder))
        os.ftruncate(fd, 0)
        os.write(fd, b"%d\n" % os.getpid())
        self._lock = fd

    def _set_aside_newer(self, iteration):
        """Move checkpoints after ``iteration`` (and a copy of log.csv) out of the run's way."""
        newer = [path for it, path in ckpt.list_checkpoints(self.checkpoints, complete=False)
                 if it > iteration]
        if not newer:
            return
        dest = os.path.join(self.checkpoints, "superseded-%s" % time.strftime("%Y%m%d-%H%M%S"))
        os.makedirs(dest, exist_ok=True)
        for path in newer:
            os.replace(path, os.path.join(dest, os.path.basename(path)))
        log = os.path.join(self.path, "log.csv")
        if os.path.exists(log):
            shutil.copy2(log, os.path.join(dest, "log.csv"))
        print("warning: %d checkpoint(s) after iteration %d (%s) moved to %s, where this run "
              "cannot overwrite them" % (len(newer), iteration,
                                         ", ".join(os.path.basename(p) for p in newer), dest),
              file=sys.stderr)

    def _reload_history(self, iteration):
        path = os.path.join(self.path, "log.csv")
        if not os.path.exists(path):
            return
        with open(path, newline="") as f:
            rows = [r for r in csv.DictReader(f)
                    if r.get("iteration", "").isdigit() and int(r["iteration"]) <= iteration]
        self.history = rows
        with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=LOG_FIELDS)  # rows after the checkpoint go
            writer.writeheader()
            writer.writerows({k: r.get(k, "") for k in LOG_FIELDS} for r in rows)

    def _fixed_noise(self, config, num_classes):
        path = os.path.join(self.path, "fixed_noise.npz")
        if os.path.exists(path):
            with np.load(path) as saved:
                self.fixed_z, self.fixed_y = saved["z"], saved["y"]
            return
        rng = np.random.RandomState(config.seed + 12345)
        self.fixed_z = rng.normal(size=(64, config.z_dim)).astype(np.float32)
        self.fixed_y = (np.arange(64) % max(num_classes, 1)).astype(np.int32)
        np.savez(path, z=self.fixed_z, y=self.fixed_y)

    def log(self, row):
        """Append ``row`` to log.csv and redraw loss.png."""
        path = os.path.join(self.path, "log.csv")
        with writing(self.path, "log.csv"):
            new = not os.path.exists(path)
            with open(path, "a", newline="") as f:
                writer = csv.DictWriter(f, fieldnames=LOG_FIELDS)
                if new:
                    writer.writeheader()
                writer.writerow({k: row.get(k, "") for k in LOG_FIELDS})
        self.history.append(row)
        with writing(self.path, "loss.png"):
            plot_curves(self.history, os.path.join(self.path, "loss.png"))

    def write_samples(self, images, iteration):
        """Save uint8 images (N, H, W, C) as ``samples/iter_XXXXXXX.png``; returns the path."""
        path = os.path.join(self.path, "samples", "iter_%07d.png" % iteration)
        with writing(self.path, "samples"):
            save_image_grid(images, path, nrow=8)
        return path


def _inside(path, folder):
    path, folder = os.path.realpath(path), os.path.realpath(folder)
    return path == folder or path.startswith(folder + os.sep)
