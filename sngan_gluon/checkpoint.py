"""A checkpoint folder: a trainer's whole state saved atomically, validated and restored, pruned.

A checkpoint is a folder ``<run>/checkpoints/iter_XXXXXXX/`` holding
``generator.params``, ``discriminator.params`` (every ``u`` included),
``generator_ema.params`` (when an EMA is kept), ``g_trainer.states``,
``d_trainer.states`` and ``state.json`` (iteration, data position, the noise
generator's state, the regularisers' state and the run's full config). It is
assembled in a temporary folder ``.tmp-iter_XXXXXXX-PID`` beside its final
place and renamed into it, so a crash while saving never leaves a half-written
checkpoint and never harms an earlier one.

A checkpoint is read only after it is validated whole: ``state.json``'s types
and ranges, its file set, the data position against the iteration, the weight
shapes and that each optimizer state fits its parameter.

Which checkpoint of a run folder a tool uses (the newest that loads, damaged
ones set aside), and the removal of stale temporary folders, is
:mod:`sngan_gluon.checkpoint_search`.
"""
import json
import math
import os
import pickle
import re
import shutil
import sys

import mxnet as mx
import numpy as np

from .config import ConfigError, TrainConfig
from .errors import UserError
from .fileio import error_summary

NAME_PATTERN = re.compile(r"^iter_(\d{7,})$")
STATE_FILE = "state.json"
NETWORK_FILES = {"generator.params": "G", "discriminator.params": "D",
                 "generator_ema.params": "G_ema"}
OPTIMIZER_FILES = {"g_trainer.states": ("g_trainer", "G"),
                   "d_trainer.states": ("d_trainer", "D")}


class CheckpointError(UserError, RuntimeError):
    """A checkpoint cannot be found, read or trusted; the message says which and why."""


class DamagedCheckpoint(CheckpointError):
    """A checkpoint's own files are broken (missing, truncated, from another network):
    an older checkpoint may still be sound, where one that does not fit this run's
    data would not be."""


def checkpoint_name(iteration):
    return "iter_%07d" % iteration


def list_checkpoints(ckpt_dir, complete=True):
    """Checkpoints under ``ckpt_dir`` as (iteration, path), oldest first.

    ``complete=False`` lists every ``iter_*`` folder, also those without ``state.json``.
    """
    if not os.path.isdir(ckpt_dir):
        return []
    found = []
    for name in os.listdir(ckpt_dir):
        match = NAME_PATTERN.match(name)
        path = os.path.join(ckpt_dir, name)
        if match and os.path.isdir(path) and (
                not complete or os.path.isfile(os.path.join(path, STATE_FILE))):
            found.append((int(match.group(1)), path))
    return sorted(found)


def write_checkpoint(ckpt_dir, iteration, writers, state, keep=3):
    """Write one checkpoint atomically and keep only the newest ``keep`` up to it.

    Parameters
    ----------
    writers : dict file name -> callable(path) that writes that file.
    state : JSON-serializable dict, written last as ``state.json``.

    Checkpoints of later iterations than ``iteration`` are never pruned.
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
            old = os.path.join(ckpt_dir, ".%s.old-%d" % (checkpoint_name(iteration), os.getpid()))
            os.replace(final, old)
            os.replace(tmp, final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    older = [path for it, path in list_checkpoints(ckpt_dir) if it <= iteration]
    for path in older[:-keep]:
        shutil.rmtree(path, ignore_errors=True)
    return final


# ---------------------------------------------------------------------------- reading

def read_state(ckpt_path):
    """The ``state.json`` of a checkpoint folder, validated with the file set it names."""
    try:
        with open(os.path.join(ckpt_path, STATE_FILE)) as f:
            state = json.load(f)
    except FileNotFoundError:
        raise DamagedCheckpoint("checkpoint %s is damaged: %s is missing"
                                % (ckpt_path, STATE_FILE))
    except (OSError, ValueError) as err:
        raise DamagedCheckpoint("checkpoint %s is damaged: cannot read %s (%s)"
                                % (ckpt_path, STATE_FILE, err))
    problem = _state_problem(state, ckpt_path)
    if problem:
        # a config this version cannot use may come from another version, not damage
        kind = CheckpointError if problem.startswith("has an unusable config") \
            else DamagedCheckpoint
        raise kind("checkpoint %s is damaged: %s %s"
                                % (ckpt_path, STATE_FILE, problem))
    return state


def _is_int(value, low=0):
    return isinstance(value, int) and not isinstance(value, bool) and value >= low


def _is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _state_problem(state, ckpt_path):
    """What is wrong with ``state`` (a phrase), or None."""
    if not isinstance(state, dict):
        return "is not an object"
    for key in ("iteration", "epoch", "batch"):
        if not _is_int(state.get(key)):
            return "has %s=%r, not a whole number >= 0" % (key, state.get(key))
    for key in ("image_size", "channels"):
        if not _is_int(state.get(key), low=1):
            return "has %s=%r, not a positive whole number" % (key, state.get(key))
    if not _is_int(state.get("num_classes")):
        return "has num_classes=%r, not a whole number >= 0" % (state.get("num_classes"),)
    if not _rng_state_ok(state.get("noise_rng")):
        return "has no valid noise_rng (a MT19937 state)"
    best = state.get("best_fid")
    if best is not None and not _is_number(best):
        return "has best_fid=%r, not a finite number" % (best,)
    anchors = state.get("lecam_anchors")
    if anchors is not None and not (isinstance(anchors, list) and len(anchors) == 2
                                    and all(_is_number(a) for a in anchors)):
        return "has lecam_anchors=%r, not two finite numbers" % (anchors,)
    try:
        config = TrainConfig.from_dict(state.get("config")).validate()
    except (ConfigError, TypeError, ValueError, AttributeError) as err:
        return "has an unusable config (%s)" % err
    expected = set(NETWORK_FILES) | set(OPTIMIZER_FILES)
    if not config.ema > 0:
        expected.discard("generator_ema.params")
    files = state.get("files")
    if not isinstance(files, list) or set(files) != expected:
        return "lists files %r, expected %s" % (files, sorted(expected))
    for name in sorted(expected):
        file = os.path.join(ckpt_path, name)
        if not os.path.isfile(file) or os.path.getsize(file) == 0:
            return "names %s, which is missing or empty" % name
    return None


def _rng_state_ok(values):
    if not (isinstance(values, list) and len(values) == 5 and values[0] == "MT19937"):
        return False
    keys, pos, has_gauss, cached = values[1:]
    return (isinstance(keys, list) and len(keys) == 624
            and all(_is_int(k) and k < 2 ** 32 for k in keys)
            and _is_int(pos) and pos <= 624 and has_gauss in (0, 1) and _is_number(cached))


def rng_to_json(rng):
    name, keys, pos, has_gauss, cached = rng.get_state()
    return [name, keys.tolist(), int(pos), int(has_gauss), float(cached)]


def rng_from_json(values):
    rng = np.random.RandomState()
    name, keys, pos, has_gauss, cached = values
    rng.set_state((name, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
    return rng


# ---------------------------------------------------------------- a trainer's state

def trainer_state(trainer):
    """(file writers, ``state.json`` dict) of a :class:`~sngan_gluon.trainer.GANTrainer`."""
    updater = trainer.updater
    writers = {
        "generator.params": _verified(trainer.G.save_parameters),
        "discriminator.params": _verified(trainer.D.save_parameters),
        "g_trainer.states": updater.g_trainer.save_states,
        "d_trainer.states": updater.d_trainer.save_states,
    }
    if trainer.G_ema is not None:
        writers["generator_ema.params"] = _verified(trainer.G_ema.save_parameters)
    state = trainer.state()
    state.update(noise_rng=rng_to_json(state["noise_rng"]), files=sorted(writers),
                 best_fid=None if math.isinf(state["best_fid"]) else state["best_fid"])
    return writers, state


def _verified(save_parameters):
    """``save_parameters``, then a read-back: MXNet ignores a write that fails when the
    file is closed (a disk that fills up at its last block) and leaves it truncated."""
    def write(path):
        save_parameters(path)
        try:
            mx.nd.load(path)
        except mx.base.MXNetError:
            raise OSError("%s was left incomplete (is the disk full?)" % os.path.basename(path))
    return write


def save(trainer, ckpt_dir, keep):
    """Write ``trainer``'s state as a checkpoint in ``ckpt_dir``; returns its folder."""
    # Under static_alloc, MXNet does not order reads from outside a graph after the
    # graph's own writes (every ``u``, BatchNorm running statistics in the backward
    # pass): wait for the devices, or a checkpoint may hold values one step old.
    mx.nd.waitall()
    writers, state = trainer_state(trainer)
    return write_checkpoint(ckpt_dir, state["iteration"], writers, state, keep=keep)


def load(trainer, path, accept_changed_data=False):
    """Validate the checkpoint at ``path`` against ``trainer`` and restore it; returns its state.

    Restores the weights, every ``u``, the optimizer moments, the data position
    and the noise generator. Raises :class:`CheckpointError` naming what does
    not fit, :class:`DamagedCheckpoint` for broken files; nothing outside
    ``trainer`` is touched. A dataset that differs from the one the checkpoint
    records (its images, their count) is refused unless ``accept_changed_data``:
    then the run goes on, with a warning, from the data position its iteration
    implies (no longer bit for bit).
    """
    state = read_state(path)
    updater = trainer.updater
    for key in ("num_classes", "image_size", "channels"):
        if state[key] != getattr(trainer, key):
            raise CheckpointError("checkpoint %s was trained with %s=%s, this model has %s"
                                  % (path, key, state[key], getattr(trainer, key)))
    recorded, current = state.get("dataset"), getattr(trainer.dataset, "identity", None)
    changed = trainer.is_chief and None not in (recorded, current) and recorded != current
    if changed and not accept_changed_data:
        raise CheckpointError("the dataset changed since checkpoint %s: it was trained on %s, "
                              "this run reads %s; restore the data, or pass "
                              "--accept-changed-data to go on with it"
                              % (path, describe_data(recorded), describe_data(current)))
    if changed:
        print("warning: the dataset changed since checkpoint %s (%s then, %s now); going on "
              "with it, no longer bit for bit" % (path, describe_data(recorded),
                                                    describe_data(current)), file=sys.stderr)
    if trainer.is_chief and not changed and not updater.position_fits(state):
        where = ("checkpoint %s: its data position (epoch %d, batch %d) is not where iteration "
                 "%d ends with this dataset's %d batches an epoch"
                 % (path, state["epoch"], state["batch"], state["iteration"],
                    updater.stream.batches_per_epoch))
        if recorded is None:  # written before checkpoints recorded their data
            raise CheckpointError(where + ": the checkpoint is damaged, or the dataset changed "
                                  "since it was written")
        raise DamagedCheckpoint(where.replace(": its", " is damaged: its", 1))
    for name, (attr, net) in OPTIMIZER_FILES.items():
        _check_optimizer_states(os.path.join(path, name), getattr(trainer, net), path)
    try:
        for name, net in NETWORK_FILES.items():
            if name in state["files"] and getattr(trainer, net) is not None:
                ctx = trainer.ctxs[0] if net == "G_ema" else trainer.ctxs
                getattr(trainer, net).load_parameters(os.path.join(path, name), ctx=ctx)
        for name, (attr, _) in OPTIMIZER_FILES.items():
            getattr(updater, attr).load_states(os.path.join(path, name))
    except (mx.base.MXNetError, OSError, ValueError, AssertionError, KeyError,
            EOFError) as err:  # the networks are built from the checkpoint's own config
        raise DamagedCheckpoint("checkpoint %s is damaged or does not match this model: %s"
                                % (path, error_summary(err)))
    restored = dict(state, noise_rng=rng_from_json(state["noise_rng"]))
    if changed:  # another dataset: the position that the iteration implies
        restored["epoch"], restored["batch"] = divmod(state["iteration"] * trainer.config.n_dis,
                                                      updater.stream.batches_per_epoch)
    trainer.load_state(restored)
    return state


def describe_data(identity):
    """``'198 images of folder, pixels 0f3a9c2e1b7d'`` (``part 1 of 2`` on a shard)."""
    part = identity.get("part") or [0, 1]
    return "%s images of %s%s, pixels %s" % (
        identity.get("count"), identity.get("dataset"),
        " (part %d of %d)" % (part[0] + 1, part[1]) if part[1] > 1 else "",
        str(identity.get("digest"))[:12])


def _check_optimizer_states(file, net, path):
    """Each optimizer state in ``file`` has its parameter's shape (a swapped file does not)."""
    try:
        with open(file, "rb") as f:
            states = pickle.load(f)
    except Exception as err:  # unpickling a damaged file raises anything
        raise DamagedCheckpoint("checkpoint %s is damaged: %s cannot be read (%s: %s)"
                              % (path, os.path.basename(file), type(err).__name__, err))
    if isinstance(states, tuple):  # (states, optimizer) when the optimizer was saved too
        states = states[0]
    params = net.collect_params()
    params = [params[name] for name in sorted(params.keys())]  # gluon.Trainer's order
    if not isinstance(states, dict):
        raise DamagedCheckpoint("checkpoint %s is damaged: %s holds no optimizer states"
                              % (path, os.path.basename(file)))
    for index, value in states.items():
        shapes = {a.shape for a in _arrays(value)}
        if not (isinstance(index, int) and 0 <= index < len(params)) or \
                shapes - {params[index].shape}:
            raise DamagedCheckpoint("checkpoint %s: %s does not fit this network's parameters "
                                  "(state %r has shapes %s)" % (path, os.path.basename(file),
                                                                index, sorted(shapes)))


def _arrays(value):
    if isinstance(value, mx.nd.NDArray):
        return [value]
    if isinstance(value, (tuple, list)):
        return [a for v in value for a in _arrays(v)]
    return []
