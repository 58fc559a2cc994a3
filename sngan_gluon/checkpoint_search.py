"""Find the checkpoint a tool uses in a run folder: the newest one that loads.

Given a run folder, :func:`load_newest` is the one place that picks a
checkpoint for every tool (train --resume, generate, evaluate,
spectra_report): it loads the newest checkpoint with the tool's own loader, and
one that is damaged (:class:`~sngan_gluon.checkpoint.DamagedCheckpoint`: a
file missing, truncated or from another network) is moved into ``damaged-*/``
beside it, with a warning, and the next older one is tried. A checkpoint that
is sound but does not fit (another dataset) stops the search: every older one
would not fit either. A start also removes the temporary folders that saves of
processes now gone left behind (:func:`remove_stale_temporaries`).

The format of one checkpoint folder, its validation and its loading into a
trainer are :mod:`sngan_gluon.checkpoint`.
"""
import os
import re
import shutil
import sys
import time

from .checkpoint import (NAME_PATTERN, STATE_FILE, CheckpointError, DamagedCheckpoint,
                         list_checkpoints, read_state)

# the temporary folders write_checkpoint makes, ending in the saving process's id
_TEMPORARY = re.compile(r"^(?:\.tmp-iter_\d{7,}|\.?iter_\d{7,}\.old)-(\d+)$")


def remove_stale_temporaries(ckpt_dir):
    """Remove the temporary folders of saves whose process is gone; returns their paths."""
    removed = []
    if not os.path.isdir(ckpt_dir):
        return removed
    for name in os.listdir(ckpt_dir):
        match = _TEMPORARY.match(name)
        if match and not _alive(int(match.group(1))):
            shutil.rmtree(os.path.join(ckpt_dir, name), ignore_errors=True)
            removed.append(os.path.join(ckpt_dir, name))
    return removed


def _alive(pid):
    if pid == os.getpid():
        return False  # a leftover of this process is never in use
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def resolve_checkpoint(path, warn=None):
    """The checkpoint folder ``path`` names, its ``state.json`` validated.

    ``path`` is a checkpoint folder; a folder of checkpoints (a run's
    ``checkpoints/`` or ``best/``), or a run folder (its ``checkpoints/``),
    whose newest valid checkpoint is taken, as :func:`load_newest` does.
    """
    return load_newest(path, None, warn)[0]


def load_newest(path, load=None, warn=None, set_aside=True):
    """``(checkpoint folder, load(folder))`` of the newest checkpoint ``path`` names that loads.

    Parameters
    ----------
    path : str
        A checkpoint folder (used as it is: its damage is an error), a folder of
        checkpoints or a run folder (the newest checkpoint that loads is used).
    load : callable(folder) -> object, optional
        The tool's loader; it raises :class:`DamagedCheckpoint` for a broken
        checkpoint, :class:`CheckpointError` for one that does not fit. Default:
        :func:`read_state` only.
    warn : callable(message), optional
        Told of every damaged checkpoint skipped (default: a ``warning:`` line on
        stderr).
    set_aside : bool
        Once an older checkpoint has loaded, move each damaged one skipped into
        ``damaged-<time>/`` beside it, as a resumed run moves newer ones into
        ``superseded-*/`` (False on the workers of a distributed run other than
        rank 0, which share rank 0's folder). When none loads, nothing is moved.
    """
    warn = warn or (lambda message: print("warning: " + message, file=sys.stderr))
    load = load or read_state
    if not os.path.exists(path):
        raise CheckpointError("checkpoint or run folder %s does not exist" % path)
    if NAME_PATTERN.match(os.path.basename(os.path.normpath(path))) or \
            os.path.isfile(os.path.join(path, STATE_FILE)):
        read_state(path)
        return path, load(path)
    found = (list_checkpoints(os.path.join(path, "checkpoints"), complete=False)
             or list_checkpoints(path, complete=False))
    if not found:
        raise CheckpointError("no checkpoint in %s (expected %s/checkpoints/iter_*/%s or "
                              "%s/iter_*/%s)" % (path, path.rstrip("/"), STATE_FILE,
                                                  path.rstrip("/"), STATE_FILE))
    damaged = []  # (folder, error), newest first
    for _, candidate in reversed(found):
        try:
            read_state(candidate)
            loaded = load(candidate)
        except DamagedCheckpoint as err:
            damaged.append((candidate, err))
            continue
        # set aside only now that an older one serves: a run is never left without any
        for folder, err in damaged:
            moved = _set_aside(folder) if set_aside else None
            warn("%s; %s; using %s instead" % (err, "moved to %s" % moved if moved
                                                else "left in place", candidate))
        return candidate, loaded
    if len(damaged) == 1:
        raise damaged[0][1]
    raise CheckpointError("no usable checkpoint in %s: %s"
                          % (path, "; ".join(str(err) for _, err in damaged)))


def _set_aside(candidate):
    """Move a damaged checkpoint into ``damaged-<time>/`` beside it; its new path, or None."""
    dest = os.path.join(os.path.dirname(candidate), "damaged-%s" % time.strftime("%Y%m%d-%H%M%S"))
    try:
        os.makedirs(dest, exist_ok=True)
        moved = os.path.join(dest, os.path.basename(candidate))
        os.replace(candidate, moved)
    except OSError:  # a read-only run: skipped all the same, only not moved
        return None
    return moved
