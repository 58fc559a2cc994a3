"""Checkpoints: written atomically, found again by run folder or by path, pruned.

A checkpoint is a folder ``<run>/checkpoints/iter_XXXXXXX/`` holding
``generator.params``, ``discriminator.params`` (every ``u`` included),
``generator_ema.params`` (when an EMA is kept), ``g_trainer.states``,
``d_trainer.states`` and ``state.json`` (iteration, data position, the noise
generator's state and the run's full config). It is assembled in a temporary
folder beside its final place and renamed into it, so a crash or Ctrl-C while
saving never leaves a half-written checkpoint and never harms an earlier one.
"""
import json
import os
import re
import shutil

from .fileio import error_summary  # noqa: F401  (re-exported for callers)

_NAME = re.compile(r"^iter_(\d{7,})$")
STATE_FILE = "state.json"


class CheckpointError(RuntimeError):
    """A checkpoint cannot be found or read; the message says which and why."""


def checkpoint_name(iteration):
    return "iter_%07d" % iteration


def list_checkpoints(ckpt_dir):
    """Complete checkpoints under ``ckpt_dir`` as (iteration, path), oldest first."""
    if not os.path.isdir(ckpt_dir):
        return []
    found = []
    for name in os.listdir(ckpt_dir):
        match = _NAME.match(name)
        path = os.path.join(ckpt_dir, name)
        if match and os.path.isfile(os.path.join(path, STATE_FILE)):
            found.append((int(match.group(1)), path))
    return sorted(found)


def write_checkpoint(ckpt_dir, iteration, writers, state, keep=3):
    """Write one checkpoint atomically and keep only the newest ``keep``.

    Parameters
    ----------
    writers : dict file name -> callable(path) that writes that file.
    state : JSON-serializable dict, written last as ``state.json``.

    Returns the checkpoint's final path.
    """
    os.makedirs(ckpt_dir, exist_ok=True)
    final = os.path.join(ckpt_dir, checkpoint_name(iteration))
    tmp = os.path.join(ckpt_dir, ".tmp-%s-%d" % (checkpoint_name(iteration), os.getpid()))
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    try:
        for name, write in writers.items():
            write(os.path.join(tmp, name))
        with open(os.path.join(tmp, STATE_FILE), "w") as f:
            json.dump(state, f, indent=1, sort_keys=True)
            f.flush()
            os.fsync(f.fileno())
        if os.path.exists(final):  # the same iteration saved again (e.g. at the end)
            old = final + ".old-%d" % os.getpid()
            os.replace(final, old)
            os.replace(tmp, final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    for _, path in list_checkpoints(ckpt_dir)[:-keep]:
        shutil.rmtree(path, ignore_errors=True)
    return final


def resolve_checkpoint(path):
    """The checkpoint folder ``path`` names.

    ``path`` is a checkpoint folder; a folder of checkpoints (a run's
    ``checkpoints/`` or ``best/``), whose newest is taken; or a run folder,
    whose newest in ``checkpoints/`` is taken.
    """
    if not os.path.exists(path):
        raise CheckpointError("checkpoint or run folder %s does not exist" % path)
    if os.path.isfile(os.path.join(path, STATE_FILE)):
        return path
    found = list_checkpoints(os.path.join(path, "checkpoints")) or list_checkpoints(path)
    if not found:
        raise CheckpointError("no checkpoint in %s (expected %s/checkpoints/iter_*/%s or "
                              "%s/iter_*/%s)" % (path, path.rstrip("/"), STATE_FILE,
                                                  path.rstrip("/"), STATE_FILE))
    return found[-1][1]


def read_state(ckpt_path):
    """The ``state.json`` of a checkpoint folder, checked for the files it names."""
    try:
        with open(os.path.join(ckpt_path, STATE_FILE)) as f:
            state = json.load(f)
    except (OSError, ValueError) as err:
        raise CheckpointError("checkpoint %s is corrupt: cannot read %s (%s)"
                              % (ckpt_path, STATE_FILE, err))
    if not isinstance(state, dict) or "iteration" not in state or "config" not in state:
        raise CheckpointError("checkpoint %s is corrupt: %s lacks iteration/config"
                              % (ckpt_path, STATE_FILE))
    for name in state.get("files", []):
        if not os.path.isfile(os.path.join(ckpt_path, name)):
            raise CheckpointError("checkpoint %s is incomplete: %s is missing" % (ckpt_path, name))
    return state
