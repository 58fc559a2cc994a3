"""Scale-out: several devices on one machine, several workers on a dist_sync kvstore.

The in-process tests compare 2 CPU contexts with 1 context. The distributed
tests run real jobs on 127.0.0.1 through :func:`sngan_gluon.launcher.launch_local`
(1 scheduler, 1 server, 2 workers), each worker running ``train.py``'s
``main()`` under a small wrapper (``WORKER`` below) that records, without
changing what is computed: every file-system write under the run folder (a
Python audit hook), the dataset indices its batches came from, and finally its
weights. Every process of a job carries a marker in its environment, and the
tests check through ``/proc`` that none is left behind.
"""
import hashlib
import json
import os
import signal
import sys
import time
import uuid

import numpy as np
import pytest

import sngan_gluon  # noqa: F401
from mxnet import gluon, nd
from mxnet.gluon import nn

from sngan_gluon import checkpoint as ckpt
from sngan_gluon import launcher
from sngan_gluon.cli import train as train_cli
from sngan_gluon.config import ConfigError, TrainConfig
from sngan_gluon.trainer import GANTrainer
from tiny_runs import WIDTH_FLAGS

MARKER_KEY = "SNGAN_SCALE_TEST_MARKER"
needs_proc = pytest.mark.skipif(not os.path.isdir("/proc/self"),
                                reason="process checks read /proc")

WORKER = r'''
"""A dist worker: train.py's main(), plus records for tests/test_scale.py in $SCALE_DUMP."""
import hashlib, json, os, signal, sys

RUN_DIR = os.path.abspath(os.environ["SCALE_RUN_DIR"])
writes = []


def audit(event, args):
    if event == "open":
        path, mode, flags = args
        writing = (any(c in mode for c in "wax+") if isinstance(mode, str) else
                   bool(flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND)))
        paths = [path] if writing else []
    elif event in ("os.mkdir", "os.remove", "os.rmdir", "shutil.rmtree", "os.truncate"):
        paths = [args[0]]
    elif event == "os.rename":
        paths = list(args[:2])
    else:
        return
    for path in paths:
        if isinstance(path, (str, bytes, os.PathLike)):
            path = os.path.abspath(os.fsdecode(path))
            if path == RUN_DIR or path.startswith(RUN_DIR + os.sep):
                writes.append([event, path])


sys.addaudithook(audit)

import numpy as np
import sngan_gluon.trainer as T
from sngan_gluon.cli.train import main
from sngan_gluon.config import ConfigError

seen = []
_batchify, _init, _train = T.BatchStream._batchify, T.GANTrainer.__init__, T.GANTrainer.train


def batchify(self, indices):
    seen.extend(int(i) for i in indices)
    return _batchify(self, indices)


def init(self, config, dataset=None, kvstore=None):
    if kvstore is not None and str(kvstore.rank) == os.environ.get("SCALE_FAIL_RANK"):
        raise ConfigError("injected failure on rank %d" % kvstore.rank)
    _init(self, config, dataset, kvstore)
    at = os.environ.get("SCALE_SIGNAL_AT")
    if at and str(self.rank) == os.environ.get("SCALE_SIGNAL_RANK"):
        def signal_self(trainer):  # as a cluster's SIGTERM reaching this worker first
            if trainer.iteration == int(at):
                os.kill(os.getpid(), signal.SIGTERM)
        signal_self.chief_only = False
        self.extend(signal_self, every=1)


def digest(image):
    return hashlib.sha1(image.tobytes()).hexdigest()


def train(self, *args, **kwargs):
    history = _train(self, *args, **kwargs)
    from mxnet import nd
    nd.waitall()
    out = os.path.join(os.environ["SCALE_DUMP"], "%s-rank%d" % (os.environ["SCALE_TAG"], self.rank))
    params = {name: p.data(self.ctxs[0]).asnumpy()
              for net in (self.G, self.D) for name, p in net.collect_params().items()}
    np.savez(out + ".npz", **params)
    images = self.dataset.images
    info = dict(rank=self.rank, num_workers=self.num_workers, iteration=self.iteration,
                d_updates=self.updater.d_trainer.optimizer.num_update,
                shard=[digest(im) for im in images], seen=[digest(images[i]) for i in seen],
                writes=writes)
    with open(out + ".json", "w") as f:
        json.dump(info, f)
    return history


T.BatchStream._batchify = batchify
T.GANTrainer.__init__ = init
T.GANTrainer.train = train
sys.exit(main(sys.argv[1:]))
'''


def _config(**kwargs):
    values = dict(dataset="synthetic", batch_size=8, iterations=1, n_dis=2, log_every=100,
                  sample_every=100, checkpoint_every=100, quiet=True, seed=3)
    values.update(kwargs)
    return TrainConfig(**values)


def _global_stats_batchnorm(trainer):
    """Make the generator's BatchNorms use their running statistics, also in training.

    With batch statistics each device normalizes by the mean and variance of its
    own part of the batch, so 2 devices compute a different function from 1 (the
    point of ``--sync-bn``); with the running statistics (never updated then)
    both compute the same one, and what is left to compare is the data split,
    the loss weighting and the gradient aggregation.
    """
    def visit(block):
        if isinstance(block, nn.BatchNorm):
            block._kwargs["use_global_stats"] = True
        block._clear_cached_op()  # the graph is built on the first training call; be sure
    trainer.G.apply(visit)
    return trainer


def _params(trainer):
    return [(name, p) for net in (trainer.G, trainer.D) for name, p in net.collect_params().items()]


def _is_running_stat(name):
    return name.endswith(("_running_mean", "_running_var"))


@pytest.mark.parametrize("lecam,mode_seeking", [(0.0, 0.0), (0.3, 0.0), (0.0, 1.0)])
def test_two_contexts_give_the_one_context_gradients(dataset, lecam, mode_seeking):
    """The summed per-device gradients are the whole batch's, to rounding.

    The discriminator's, on the first step; the generator's, with the optimizer
    steps left out so both runs differentiate the same networks. With LeCam the
    anchors are the whole batch's means on every device, so the same holds; the
    mode-seeking term is a mean over pairs that each sit on one device.
    """
    extra = dict(lecam=lecam, mode_seeking=mode_seeking)
    one = _global_stats_batchnorm(GANTrainer(_config(cpus=1, **extra), dataset=dataset))
    two = _global_stats_batchnorm(GANTrainer(_config(cpus=2, **extra), dataset=dataset))
    assert [c.device_id for c in two.ctxs] == [0, 1]
    for trainer in (one, two):
        trainer.updater._apply_gradients = lambda optimizer, sync: None
        real, labels = next(iter(trainer.updater.stream))
        trainer.updater.d_step(real, labels)
        trainer.updater.g_step()
    nd.waitall()
    # G's output bias moves both samples of a pair alike, so the mode-seeking
    # term's part of its gradient is a sum that nearly cancels: more rounding
    output_bias = [n for n in one.G.collect_params() if n.endswith("bias")][-1]

    def rtol(name):
        return 5e-4 if mode_seeking and name == output_bias else 1e-5

    checked = 0
    for (name, p1), (_, p2) in zip(_params(one), _params(two)):
        if p1.grad_req == "null":
            continue
        whole = p1.grad().asnumpy()
        summed = sum(g.asnumpy() for g in p2.list_grad())
        assert np.linalg.norm(summed - whole) <= rtol(name) * np.linalg.norm(whole) + 1e-12, name
        checked += 1
    assert checked == 34  # 18 in G, 16 in D
    if lecam:
        (lecam_two,), (lecam_one,) = ([t for t in tr.updater.terms if t.state_key]
                                      for tr in (two, one))
        np.testing.assert_allclose(lecam_two.state(), lecam_one.state(), rtol=1e-5)


def test_two_contexts_train_like_one_context(dataset, tmp_path):
    """Two D updates and one G update on 2 CPU contexts give the 1-context weights.

    Through the trainer's own loop and the ``device`` kvstore, with the total
    batch the same. Adam is swapped for plain SGD in both runs: Adam's first
    steps are about ``lr * sign(g)``, so a gradient element within rounding of
    zero moves either way by ``lr``, and the networks then drift apart by more
    than rounding (the summed gradients themselves agree to rounding, see the
    test above). With SGD the difference of the runs stays at rounding level,
    which is what the tolerance allows (weights are about 0.1; an SGD step here
    moves them by about 1e-4).
    """
    runs = []
    for cpus in (1, 2):
        config = _config(cpus=cpus, lr=0.01)
        trainer = _global_stats_batchnorm(GANTrainer(config, dataset=dataset))
        for net, attr in ((trainer.G, "g_trainer"), (trainer.D, "d_trainer")):
            setattr(trainer.updater, attr, gluon.Trainer(net.collect_params(), "sgd",
                                                         {"learning_rate": config.lr},
                                                         kvstore=config.kvstore))
        runs.append(trainer)
    nd.waitall()
    start = [p.data().asnumpy() for _, p in _params(runs[0])]
    for i, trainer in enumerate(runs):
        trainer.train(str(tmp_path / str(i)))
    assert runs[0].iteration == runs[1].iteration == 1
    us = moved = 0
    for (name, p1), (_, p2), w0 in zip(_params(runs[0]), _params(runs[1]), start):
        w1 = p1.data().asnumpy()
        replicas = [d.asnumpy() for d in p2.list_data()]
        np.testing.assert_array_equal(replicas[0], replicas[1], err_msg=name)
        np.testing.assert_allclose(replicas[0], w1, rtol=1e-4, atol=1e-5, err_msg=name)
        us += name.endswith("_u")
        # u is left out: warmed up to its fixed point, a power step may not move it
        moved += not name.endswith("_u") and not np.array_equal(w1, w0)
    assert us == 8
    assert moved >= 30  # the comparison is not of untouched weights


def test_adam_replicas_and_every_u_stay_identical_across_contexts(dataset, tmp_path):
    """With the real optimizer, every device holds the same weights and the same ``u``.

    The kvstore hands each device the same updated weights, and each device
    advances its own ``u`` from them. The generator's BatchNorm running
    statistics are left out: each device keeps those of its own part of the
    batch (``save_parameters`` averages them).
    """
    trainer = GANTrainer(_config(cpus=2, iterations=3, n_dis=1), dataset=dataset)
    trainer.train(str(tmp_path / "run"))
    compared = 0
    for name, param in _params(trainer):
        if _is_running_stat(name):
            continue
        first, second = (d.asnumpy() for d in param.list_data())
        np.testing.assert_array_equal(first, second, err_msg=name)
        compared += name.endswith("_u")
    assert compared == 8
    u = next(p for n, p in _params(trainer) if n.endswith("_u"))
    assert abs(float(nd.norm(u.data()).asscalar()) - 1) < 1e-4  # advanced, not the initial draw


def test_sync_bn_without_gpus_is_refused_clearly(tmp_path, capsys):
    with pytest.raises(ConfigError, match="--sync-bn needs GPUs"):
        TrainConfig(sync_bn=True, cpus=2).validate()
    code = train_cli.main(["--dataset", "synthetic", "--cpus", "2", "--sync-bn",
                           "--out-dir", str(tmp_path / "run")])
    assert code == train_cli.EXIT_USER_ERROR
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--sync-bn needs GPUs" in err[0] and "SyncBatchNorm" in err[0]
    assert not (tmp_path / "run").exists()


# ------------------------------------------------------------------ distributed

def _left_running(marker):
    """Pids of live processes whose environment carries ``marker``."""
    wanted = ("%s=%s" % (MARKER_KEY, marker)).encode()
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open("/proc/%s/environ" % entry, "rb") as handle:
                if wanted in handle.read().split(b"\0"):
                    pids.append(int(entry))
        except OSError:
            continue
    return pids


def _run_job(tmp_path, tag, args, timeout=120, **env):
    """Run WORKER with ``args`` as 2 dist workers; returns (exit code, seconds)."""
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    dump = tmp_path / "dump"
    dump.mkdir(exist_ok=True)
    marker = uuid.uuid4().hex
    env = dict({MARKER_KEY: marker, "SCALE_DUMP": str(dump), "SCALE_TAG": tag,
                "SCALE_RUN_DIR": str(tmp_path / "run"), "OMP_NUM_THREADS": "1"}, **env)
    start = time.monotonic()
    try:
        code = launcher.launch_local([sys.executable, str(script)] + args, num_workers=2,
                                     num_servers=1, timeout=timeout, env=env, cwd=str(tmp_path))
    finally:
        left = _left_running(marker)
        for pid in left:  # ours: they carry this job's marker
            os.kill(pid, signal.SIGKILL)
    assert left == []
    return code, time.monotonic() - start


def _dumps(tmp_path, tag):
    out = []
    for rank in (0, 1):
        base = str(tmp_path / "dump" / ("%s-rank%d" % (tag, rank)))
        with open(base + ".json") as f:
            info = json.load(f)
        with np.load(base + ".npz") as weights:
            info["weights"] = dict(weights)
        out.append(info)
    return out


def _assert_same_weights(first, second):
    """Identical weights and ``u``; BatchNorm running statistics stay each worker's own."""
    assert sorted(first) == sorted(second)
    assert sum(n.endswith("_u") for n in first) == 8
    differing = [n for n in first if not np.array_equal(first[n], second[n])]
    assert all(_is_running_stat(n) for n in differing), differing


def _digests(images):
    return [hashlib.sha1(image.tobytes()).hexdigest() for image in images]


TRAIN_ARGS = ["--dataset", "synthetic", "--kvstore", "dist_sync", "--batch-size", "8",
              "--iterations", "3", "--checkpoint-every", "2", "--sample-every", "2",
              "--log-every", "1", "--seed", "1", "--quiet", "--out-dir", "run"] + WIDTH_FLAGS


@needs_proc
@pytest.mark.slow
def test_dist_sync_workers_agree_read_disjoint_shards_and_only_rank_0_writes(
        dataset, tmp_path, capfd):
    """The whole dist_sync path of ``train.py``, then a resume of it by both workers.

    Rank 0's data position and noise generator come back exactly on resume;
    rank 1 recomputes its position and restarts its noise from (seed, rank,
    iteration), so the resumed job is not compared with the straight one.
    """
    code, _ = _run_job(tmp_path, "train", TRAIN_ARGS)
    assert code == 0, capfd.readouterr()
    workers = _dumps(tmp_path, "train")
    assert [w["rank"] for w in workers] == [0, 1]
    assert all(w["num_workers"] == 2 and w["iteration"] == 3 for w in workers)
    _assert_same_weights(workers[0]["weights"], workers[1]["weights"])

    # each worker read its own shard: images r, r + 2, ... of the dataset
    full = _digests(dataset.images)
    for rank, worker in enumerate(workers):
        assert worker["shard"] == full[rank::2]
        assert set(worker["seen"]) <= set(worker["shard"])
        assert len(worker["seen"]) == 3 * 1 * 4  # iterations x n_dis x (8 / 2 workers)
    assert not set(workers[0]["seen"]) & set(workers[1]["seen"])

    # only rank 0 wrote, and it wrote the whole run folder
    assert workers[1]["writes"] == []
    assert workers[0]["writes"]
    run = tmp_path / "run"
    assert sorted(os.listdir(run)) == [".lock", ".sngan_gluon-run", "checkpoints", "config.json",
                                       "dataset.json", "fixed_noise.npz", "log.csv", "loss.png",
                                       "progress.gif", "samples", "sigma.png", "sigmas.csv"]
    assert sorted(os.listdir(run / "checkpoints")) == ["iter_0000002", "iter_0000003"]
    assert len((run / "log.csv").read_text().splitlines()) == 1 + 3
    out = capfd.readouterr().out
    assert out.count("done: 3 iterations") == 1  # rank 0 reports

    code, _ = _run_job(tmp_path, "resume", ["--resume", "run/checkpoints/iter_0000002",
                                            "--quiet"])
    assert code == 0, capfd.readouterr()
    resumed = _dumps(tmp_path, "resume")
    assert all(w["iteration"] == 3 and w["d_updates"] == 3 for w in resumed)
    assert all(len(w["seen"]) == 4 for w in resumed)  # one more iteration each
    _assert_same_weights(resumed[0]["weights"], resumed[1]["weights"])
    assert resumed[1]["writes"] == []  # rank 1 leaves even log.csv to rank 0
    assert len((run / "log.csv").read_text().splitlines()) == 1 + 3


@needs_proc
@pytest.mark.slow
def test_sigterm_to_one_dist_worker_stops_every_worker_and_rank_0_saves(tmp_path, capfd):
    """Rank 1 alone gets SIGTERM after iteration 2: both stop after it; rank 0 saves it."""
    args = ["--dataset", "synthetic", "--kvstore", "dist_sync", "--batch-size", "8",
            "--iterations", "50", "--checkpoint-every", "100", "--log-every", "100",
            "--sample-every", "100", "--seed", "1", "--quiet", "--out-dir", "run"] + WIDTH_FLAGS
    code, seconds = _run_job(tmp_path, "stop", args, timeout=90, SCALE_SIGNAL_RANK="1",
                             SCALE_SIGNAL_AT="2")
    captured = capfd.readouterr()
    assert code == train_cli.EXIT_INTERRUPTED, captured
    assert "interrupted by SIGTERM" in captured.out + captured.err  # rank 1 says why
    saved = sorted(os.listdir(tmp_path / "run" / "checkpoints"))
    assert saved == ["iter_0000002"], captured
    state = ckpt.read_state(str(tmp_path / "run" / "checkpoints" / "iter_0000002"))
    assert state["iteration"] == 2 and seconds < 80


@needs_proc
@pytest.mark.slow
def test_a_failing_dist_worker_exits_at_once_with_its_message(tmp_path, capfd):
    """Rank 1 fails after joining the job: it must exit (not wait in ps-lite) with code 2."""
    code, seconds = _run_job(tmp_path, "fail", TRAIN_ARGS, timeout=90, SCALE_FAIL_RANK="1")
    assert code == train_cli.EXIT_USER_ERROR
    assert seconds < 60
    captured = capfd.readouterr()
    assert "error: injected failure on rank 1" in captured.out  # relayed worker output
    assert "exited with code 2" in captured.err
    assert not (tmp_path / "dump" / "fail-rank1.json").exists()
