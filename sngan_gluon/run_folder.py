"""The one folder a run writes: config.json, log.csv, loss.png, samples, fixed noise, checkpoints.

A run writes only into a folder that is new, empty, or marked as a run folder
by the file ``.sngan_gluon-run`` that a run writes first; any other folder
(``/``, a folder of the user's own files) is refused before anything is
written, so a run never appends to or overwrites a file it did not write. A
run folder of ours that holds no checkpoint (its run was killed before the
first one) is started afresh: its log, sigmas, plots, samples and noise go.

A run holds an exclusive ``fcntl`` lock on ``<run>/.lock`` while it trains: the
operating system releases it when the process ends, however it ends, so a
second run in the same folder is refused and no stale lock is ever left. A
new run refuses a folder that already holds checkpoints (continue it with
``--resume``); a resumed run moves the checkpoints newer than the one it
continues from, with a copy of ``log.csv``, into ``checkpoints/superseded-*``
rather than overwrite them. ``checkpoints/`` is tried for writing before the
first iteration. Writes that fail (a full disk, a read-only file system, no
memory left) end in one :class:`RunFolderWriteError` naming the folder and the
cause.
"""
import contextlib
import csv
import errno
import fcntl
import json
import os
import shutil
import sys
import tempfile
import time

import mxnet as mx
import numpy as np

from . import checkpoint as ckpt
from .checkpoint_search import remove_stale_temporaries
from .errors import UserError
from .fileio import atomic_path, error_summary, out_of_memory
from .visualize import plot_curves, save_image_grid

LOG_FIELDS = ["iteration", "epoch", "d_loss", "g_loss", "d_real", "d_fake", "lr", "images_per_s",
              "wall_time", "is_mean", "is_std", "fid", "kid_mean", "kid_std", "precision",
              "recall", "density", "coverage"]
LOCK_FILE = ".lock"
MARKER_FILE = ".sngan_gluon-run"
#: What a run writes at the top of its folder, besides checkpoints/ and best/:
#: removed when a run of ours that never saved a checkpoint is started afresh.
OUTPUTS = ("config.json", "dataset.json", "log.csv", "loss.png", "sigmas.csv", "sigma.png",
           "fixed_noise.npz", "samples", "progress.gif", "tensorboard")


class RunFolderError(UserError, RuntimeError):
    """The run folder cannot be used (in use, holds another run); the message says how to go on."""


class RunFolderWriteError(RuntimeError):
    """Writing to the run folder failed (disk full, read-only); names the folder and the cause."""


@contextlib.contextmanager
def writing(folder, what):
    """Turn a failed write under ``folder`` into one :class:`RunFolderWriteError`."""
    try:
        yield
    except (OSError, MemoryError, mx.base.MXNetError) as err:
        if out_of_memory(err):
            cause = "out of memory (%s)" % (error_summary(err) if str(err) else "MemoryError")
        else:
            cause = " ".join((os.strerror(err.errno) if isinstance(err, OSError) and err.errno
                              else error_summary(err)).split())
        raise RunFolderWriteError("cannot write %s in %s: %s; %s"
                                  % (what, folder, cause, kept_checkpoints(folder)))


def kept_checkpoints(folder):
    """What a failure leaves of the run in ``folder``: a clause naming its newest checkpoint."""
    newest = ckpt.list_checkpoints(os.path.join(folder, "checkpoints"))
    return ("the checkpoints written before are intact (newest: %s)" % newest[-1][1]
            if newest else "no checkpoint was written")


def folder_problem(path, resume_path=None):
    """Why a run may not write into ``path`` (one line), or None when it may.

    A run may use a folder that does not exist, an empty one, or one marked as a
    run folder; resuming a checkpoint inside ``path`` also claims it (a run
    folder written before the mark existed). Reads only, writes nothing.
    """
    if not os.path.lexists(path):
        return None
    if not os.path.isdir(path):
        return "--out-dir %s is not a folder" % path
    try:
        names = sorted(os.listdir(path))
    except OSError as err:
        return "--out-dir %s cannot be read: %s" % (path, os.strerror(err.errno))
    if not names or MARKER_FILE in names or (
            resume_path is not None and _inside(resume_path, path)):
        return None
    shown = ", ".join(names[:3]) + (", ..." if len(names) > 3 else "")
    return ("--out-dir %s holds %d file(s) that no sngan_gluon run wrote (%s): train into a new "
            "or empty folder" % (path, len(names), shown))


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

    def open(self, config, num_classes, resume_state=None, resume_path=None, dataset=None):
        """Lock the folder and prepare it for a new run or for one resumed at ``resume_state``.

        ``dataset``: the identity of the data trained on (``ImageDataset.identity``),
        written to ``dataset.json``.
        """
        inside = resume_path is not None and _inside(resume_path, self.path)
        existing = self._existing_checkpoints()
        if existing and not inside:
            raise RunFolderError(
                "%s already holds a run's checkpoints (newest %s): continue it with --resume %s, "
                "or train into another --out-dir" % (self.path, os.path.basename(existing[-1]),
                                                     self.path))
        problem = folder_problem(self.path, resume_path)
        if problem:
            raise RunFolderError(problem)
        try:
            os.makedirs(self.path, exist_ok=True)
            with open(os.path.join(self.path, MARKER_FILE), "a"):
                pass
            self._acquire_lock()
        except OSError as err:
            raise RunFolderError("--out-dir %s is not writable: %s"
                                 % (self.path, os.strerror(err.errno) if err.errno else err))
        try:
            self._prepare(config, num_classes, resume_state, inside, dataset)
        except BaseException:
            self.close()
            raise

    def _existing_checkpoints(self):
        """Paths of every checkpoint folder in ``checkpoints/`` and ``best/``."""
        return [path for folder in (self.checkpoints, os.path.join(self.path, "best"))
                for _, path in ckpt.list_checkpoints(folder, complete=False)]

    def _prepare(self, config, num_classes, resume_state, inside, dataset):
        remove_stale_temporaries(self.checkpoints)
        remove_stale_temporaries(os.path.join(self.path, "best"))
        if not inside and self._existing_checkpoints():  # one saved before the lock was ours
            raise RunFolderError("%s already holds a run's checkpoints: continue it with "
                                 "--resume %s" % (self.path, self.path))
        if not inside:  # what is here is not the resumed run's
            self._start_afresh()
        try:
            os.makedirs(os.path.join(self.path, "samples"), exist_ok=True)
            os.makedirs(self.checkpoints, exist_ok=True)
            os.rmdir(tempfile.mkdtemp(prefix=".probe-", dir=self.checkpoints))
        except OSError as err:  # found now, not after --checkpoint-every iterations
            raise RunFolderError("cannot write checkpoints into %s: %s; make it writable or "
                                 "train into another --out-dir"
                                 % (self.checkpoints, os.strerror(err.errno) if err.errno
                                    else err))
        with writing(self.path, "the run's config, log and noise"):
            if resume_state is not None:
                self._set_aside_newer(resume_state["iteration"])
                self._reload_history(resume_state["iteration"])
            config.save(os.path.join(self.path, "config.json"))
            if dataset is not None:
                with atomic_path(os.path.join(self.path, "dataset.json")) as tmp, \
                        open(tmp, "w") as f:
                    json.dump(dataset, f, indent=1, sort_keys=True)
            self._fixed_noise(config, num_classes)

    def _start_afresh(self):
        """Remove what an earlier run of ours left here before its first checkpoint."""
        left = [name for name in OUTPUTS if os.path.lexists(os.path.join(self.path, name))]
        if not left:
            return
        print("warning: %s holds a run that stopped before its first checkpoint; starting "
              "afresh (removing its %s)" % (self.path, ", ".join(left)), file=sys.stderr)
        with writing(self.path, "a fresh run's folder"):
            for name in left:
                path = os.path.join(self.path, name)
                if os.path.isdir(path) and not os.path.islink(path):
                    shutil.rmtree(path)
                else:
                    os.remove(path)

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
        """Append ``row`` to log.csv and to ``history`` (:meth:`plot_losses` draws it)."""
        path = os.path.join(self.path, "log.csv")
        with writing(self.path, "log.csv"):
            new = not os.path.exists(path)
            with open(path, "a", newline="") as f:
                writer = csv.DictWriter(f, fieldnames=LOG_FIELDS)
                if new:
                    writer.writeheader()
                writer.writerow({k: row.get(k, "") for k in LOG_FIELDS})
        self.history.append(row)

    def plot_losses(self):
        """Draw loss.png from every row logged (this run's and, resumed, the earlier ones)."""
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
