"""A run never loses or mixes work: stop signals, one run per folder, moved runs, failed writes.

The signal tests that matter most run a real ``train.py`` process; the rest
deliver signals to this process while :meth:`GANTrainer.train` runs in it.
"""
import os
import random
import resource
import shutil
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

import sngan_gluon  # noqa: F401

from sngan_gluon import checkpoint as ckpt
from sngan_gluon.config import TrainConfig
from sngan_gluon.run_folder import RunFolder, RunFolderError, RunFolderWriteError
from sngan_gluon.signals import Interrupted
from sngan_gluon.trainer import GANTrainer

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _config(**kwargs):
    values = dict(dataset="synthetic", batch_size=8, iterations=6, log_every=100,
                  sample_every=100, checkpoint_every=100, quiet=True, seed=5, n_dis=2)
    values.update(kwargs)
    return TrainConfig(**values)


def _weights(trainer):
    nets = (trainer.G, trainer.D) + ((trainer.G_ema,) if trainer.G_ema is not None else ())
    return [p.data().asnumpy() for net in nets for p in net.collect_params().values()]


@pytest.fixture
def usr1_ignored_outside_training():
    """SIGUSR1 would end this process outside ``train()``, which handles it."""
    previous = signal.signal(signal.SIGUSR1, lambda signum, frame: None)
    yield
    signal.signal(signal.SIGUSR1, previous)


# ------------------------------------------------------------------ signals, in process

def test_interrupts_at_random_moments_resume_to_the_same_weights(
        dataset, tmp_path, usr1_ignored_outside_training):
    """A signal at any moment saves the state between two whole iterations.

    One run is stopped by SIGUSR1 (sent by a timer thread at a random moment)
    and resumed over and over until it ends; its final weights must equal those
    of an uninterrupted run, bit for bit, and every checkpoint written on the
    way must hold a data position that is the end of its iteration.
    """
    config = _config(iterations=10, ema=0.9, mode_seeking=1.0, conditional=True)
    straight = GANTrainer(config, dataset=dataset)
    straight.train(str(tmp_path / "straight"))
    per_iteration = straight.train_seconds / config.iterations
    rng = random.Random(0)
    out, resume, stops = str(tmp_path / "stopped"), None, 0
    for _ in range(40):
        trainer = GANTrainer(config, dataset=dataset)
        timer = threading.Timer(rng.uniform(0.2, 3.0) * per_iteration, os.kill,
                                (os.getpid(), signal.SIGUSR1))
        # armed once the first iteration of this attempt is done, so every attempt
        # makes progress whatever its start-up costs
        trainer.extend(lambda tr, t=timer: t.start() if t.ident is None else None, every=1)
        try:
            trainer.train(out, resume=resume)
            break
        except Interrupted as stopped:
            stops += 1
            assert stopped.signal_name == "SIGUSR1"
            if stopped.args[0] is not None:
                resume = stopped.args[0]
                state = ckpt.read_state(resume)
                batches = trainer.updater.stream.batches_per_epoch
                assert state["epoch"] * batches + state["batch"] == state["iteration"] * 2
        finally:
            timer.cancel()
            if timer.ident is not None:
                timer.join()
    assert stops >= 3
    assert trainer.iteration == config.iterations
    for a, b in zip(_weights(straight), _weights(trainer)):
        np.testing.assert_array_equal(a, b)


def test_a_second_signal_stops_at_once_without_a_checkpoint(dataset, tmp_path,
                                                            stop_signals_not_ignored):
    trainer = GANTrainer(_config(iterations=50), dataset=dataset)

    def twice(tr):
        if tr.iteration == 3:
            os.kill(os.getpid(), signal.SIGINT)
            os.kill(os.getpid(), signal.SIGINT)

    trainer.extend(twice, every=1)
    with pytest.raises(Interrupted) as info:
        trainer.train(str(tmp_path / "run"))
    assert info.value.at_once and info.value.args[0] is None
    assert ckpt.list_checkpoints(str(tmp_path / "run" / "checkpoints")) == []
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # handlers restored


def test_a_signal_ignored_at_the_start_stays_ignored(dataset, tmp_path):
    """``nohup`` ignores SIGHUP: a closed terminal must not stop such a run."""
    previous = signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        trainer = GANTrainer(_config(iterations=4), dataset=dataset)
        trainer.extend(lambda tr: os.kill(os.getpid(), signal.SIGHUP) if tr.iteration == 2
                       else None, every=1)
        trainer.train(str(tmp_path / "run"))
        assert trainer.iteration == 4
        assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGHUP, previous)


# ------------------------------------------------------------------ one run per folder

def test_a_second_run_in_a_folder_in_use_is_refused(dataset, tmp_path):
    holder = RunFolder(str(tmp_path / "run"))
    holder.open(_config(), num_classes=0)
    try:
        with pytest.raises(RunFolderError, match="in use by another training run .pid %d"
                           % os.getpid()):
            GANTrainer(_config(), dataset=dataset).train(str(tmp_path / "run"))
    finally:
        holder.close()
    GANTrainer(_config(iterations=1), dataset=dataset).train(str(tmp_path / "run"))  # released


def test_a_new_run_refuses_a_folder_with_checkpoints(dataset, tmp_path):
    out = str(tmp_path / "run")
    GANTrainer(_config(iterations=2), dataset=dataset).train(out)
    before = sorted(os.listdir(os.path.join(out, "checkpoints")))
    log = open(os.path.join(out, "log.csv")).read()
    with pytest.raises(RunFolderError, match="already holds a run's checkpoints .*--resume"):
        GANTrainer(_config(iterations=4), dataset=dataset).train(out)
    assert sorted(os.listdir(os.path.join(out, "checkpoints"))) == before
    assert open(os.path.join(out, "log.csv")).read() == log


def test_stale_temporary_checkpoints_are_removed_and_live_ones_kept(dataset, tmp_path):
    out = tmp_path / "run"
    GANTrainer(_config(iterations=2), dataset=dataset).train(str(out))
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    stale = out / "checkpoints" / (".tmp-iter_0000004-%d" % gone.pid)
    stale_old = out / "checkpoints" / (".iter_0000002.old-%d" % gone.pid)
    live = out / "checkpoints" / (".tmp-iter_0000004-%d" % os.getppid())
    for folder in (stale, stale_old, live):
        folder.mkdir()
        (folder / "generator.params").write_bytes(b"x" * 100)
    GANTrainer(_config(iterations=3), dataset=dataset).train(
        str(out), resume=str(out / "checkpoints" / "iter_0000002"))
    assert not stale.exists() and not stale_old.exists() and live.exists()


# ------------------------------------------------------------------ damaged checkpoints

@pytest.fixture(scope="module")
def _finished_run_template(dataset, tmp_path_factory):
    out = str(tmp_path_factory.mktemp("template") / "run")
    GANTrainer(_config(iterations=4, checkpoint_every=2, log_every=1), dataset=dataset).train(out)
    return out


@pytest.fixture
def finished_run(_finished_run_template, tmp_path):
    """A run folder with checkpoints at iterations 2 and 4 (a copy for each test)."""
    out = str(tmp_path / "run")
    shutil.copytree(_finished_run_template, out)
    return out


def _edit_state(path, **changes):
    import json
    file = os.path.join(path, "state.json")
    with open(file) as f:
        state = json.load(f)
    state.update(changes)
    with open(file, "w") as f:
        json.dump(state, f)


@pytest.mark.parametrize("changes,problem", [
    (dict(iteration=-5), "iteration=-5"),
    (dict(epoch="3"), "epoch='3'"),
    (dict(noise_rng=[1, 2]), "noise_rng"),
    (dict(files=["generator.params"]), "lists files"),
    (dict(config={"batch_size": "eight"}), "config"),
    (dict(lecam_anchors=[float("nan"), 0.0]), "lecam_anchors"),
])
def test_a_damaged_state_is_refused_with_what_is_wrong(finished_run, changes, problem):
    path = os.path.join(finished_run, "checkpoints", "iter_0000004")
    _edit_state(path, **changes)
    with pytest.raises(ckpt.CheckpointError, match="iter_0000004 is damaged: state.json .*%s"
                       % problem.replace("[", r"\[").replace("(", r"\(")):
        ckpt.resolve_checkpoint(path)


def test_a_data_position_that_is_not_an_iteration_end_is_refused(dataset, finished_run):
    path = os.path.join(finished_run, "checkpoints", "iter_0000004")
    _edit_state(path, batch=ckpt.read_state(path)["batch"] + 1)
    with pytest.raises(ckpt.CheckpointError, match="data position"):
        GANTrainer(_config(iterations=4), dataset=dataset).load_checkpoint(path)


def test_swapped_optimizer_states_are_refused_before_training(dataset, finished_run):
    path = os.path.join(finished_run, "checkpoints", "iter_0000004")
    g, d = (os.path.join(path, name) for name in ("g_trainer.states", "d_trainer.states"))
    os.rename(g, g + ".x")
    os.rename(d, g)
    os.rename(g + ".x", d)
    with pytest.raises(ckpt.CheckpointError, match="does not fit this network's parameters"):
        GANTrainer(_config(iterations=6), dataset=dataset).load_checkpoint(path)


def test_a_run_folder_falls_back_to_an_older_checkpoint_with_a_warning(finished_run):
    os.remove(os.path.join(finished_run, "checkpoints", "iter_0000004", "state.json"))
    warnings = []
    found = ckpt.resolve_checkpoint(finished_run, warn=warnings.append)
    assert found.endswith("iter_0000002")
    assert len(warnings) == 1 and "iter_0000004 is damaged: state.json is missing" in warnings[0]


def test_a_failed_resume_touches_nothing_in_the_run_folder(dataset, finished_run):
    path = os.path.join(finished_run, "checkpoints", "iter_0000004")
    _edit_state(path, iteration=3)  # valid JSON, but not where its data position is
    before = {name: os.stat(os.path.join(finished_run, name)).st_mtime_ns
              for name in ("config.json", "log.csv", "fixed_noise.npz")}
    with pytest.raises(ckpt.CheckpointError):
        GANTrainer(_config(iterations=6), dataset=dataset).train(finished_run, resume=path)
    assert before == {name: os.stat(os.path.join(finished_run, name)).st_mtime_ns
                      for name in before}


def test_resuming_an_older_checkpoint_keeps_the_newer_ones(dataset, finished_run, capsys):
    ckpt_dir = os.path.join(finished_run, "checkpoints")
    newest = open(os.path.join(ckpt_dir, "iter_0000004", "state.json")).read()
    log = open(os.path.join(finished_run, "log.csv")).read()
    GANTrainer(_config(iterations=6, checkpoint_every=1, keep_checkpoints=1), dataset=dataset) \
        .train(finished_run, resume=os.path.join(ckpt_dir, "iter_0000002"))
    assert "moved to" in capsys.readouterr().err
    set_aside = [n for n in os.listdir(ckpt_dir) if n.startswith("superseded-")]
    assert len(set_aside) == 1
    kept = os.path.join(ckpt_dir, set_aside[0])
    assert open(os.path.join(kept, "iter_0000004", "state.json")).read() == newest
    assert open(os.path.join(kept, "log.csv")).read() == log
    assert [it for it, _ in ckpt.list_checkpoints(ckpt_dir)] == [6]


# ------------------------------------------------------------------ failed writes

def test_a_full_disk_ends_in_one_error_naming_the_folder_and_keeps_checkpoints(dataset, tmp_path):
    """Files may not grow past 64 KiB from iteration 3 on, as on a full disk (EFBIG)."""
    out = str(tmp_path / "run")
    trainer = GANTrainer(_config(iterations=6, checkpoint_every=2), dataset=dataset)
    limits = resource.getrlimit(resource.RLIMIT_FSIZE)
    previous = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # an error, not a killed process

    def fill_disk(tr):
        if tr.iteration == 3:
            resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 16, limits[1]))

    trainer.extend(fill_disk, every=1)
    try:
        with pytest.raises(RunFolderWriteError) as info:
            trainer.train(out)
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, limits)
        signal.signal(signal.SIGXFSZ, previous)
    message = str(info.value)
    assert "\n" not in message and out in message
    # Python's writes name the cause; MXNet's parameter files say only that a write failed
    assert "File too large" in message or "FileStream.Write incomplete" in message
    assert "iter_0000002" in message
    saved = ckpt.list_checkpoints(os.path.join(out, "checkpoints"))
    assert [it for it, _ in saved] == [2]
    ckpt.read_state(saved[0][1])
    assert [n for n in os.listdir(os.path.join(out, "checkpoints")) if n.startswith(".")] == []


# ------------------------------------------------------------------ train.py, signalled

def _start(args, **kwargs):
    env = dict(os.environ, PYTHONPATH=ROOT, OMP_NUM_THREADS="1")
    return subprocess.Popen([sys.executable, os.path.join(ROOT, "train.py")] + args, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs)


def _wait_for(path, process, timeout=120):
    deadline = time.monotonic() + timeout
    while not os.path.exists(path):
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.1)


def test_sigterm_saves_and_the_run_goes_on_from_its_moved_folder(tmp_path):
    """SIGTERM to train.py: a checkpoint of a whole iteration, a message, exit 130.

    While it runs, a second train.py in its folder is refused; after it, a new
    run there is refused (it holds checkpoints), and the run, moved to another
    folder, resumes there and writes nothing to the old path.
    """
    out = str(tmp_path / "a")
    args = ["--dataset", "synthetic", "--batch-size", "8", "--iterations", "100000",
            "--checkpoint-every", "100000", "--log-every", "1", "--sample-every", "100000",
            "--quiet", "--seed", "2"]
    first = _start(args + ["--out-dir", out])
    _wait_for(os.path.join(out, "log.csv"), first)  # an iteration is done
    second = subprocess.run([sys.executable, os.path.join(ROOT, "train.py")] + args +
                            ["--out-dir", out], env=dict(os.environ, PYTHONPATH=ROOT,
                                                         OMP_NUM_THREADS="1"),
                            capture_output=True, text=True, timeout=120)
    assert second.returncode == 2
    assert second.stderr.strip().splitlines() == [
        "error: %s is in use by another training run (pid %d); wait for it to end or train "
        "into another --out-dir" % (out, first.pid)]
    time.sleep(1.0)
    first.send_signal(signal.SIGTERM)
    sent = time.monotonic()
    _, err = first.communicate(timeout=60)
    assert time.monotonic() - sent < 10
    assert first.returncode == 130, err
    saved = ckpt.list_checkpoints(os.path.join(out, "checkpoints"))
    assert len(saved) == 1 and saved[0][0] >= 1
    assert "SIGTERM" in err and "checkpoint written to %s" % saved[0][1] in err
    assert "Traceback" not in err

    again = subprocess.run([sys.executable, os.path.join(ROOT, "train.py")] + args +
                           ["--out-dir", out], env=dict(os.environ, PYTHONPATH=ROOT,
                                                        OMP_NUM_THREADS="1"),
                           capture_output=True, text=True, timeout=120)
    assert again.returncode == 2 and "--resume" in again.stderr
    assert len(again.stderr.strip().splitlines()) == 1

    moved = str(tmp_path / "b")
    shutil.move(out, moved)
    stop = saved[0][0] + 2
    resumed = subprocess.run([sys.executable, os.path.join(ROOT, "train.py"), "--resume", moved,
                              "--iterations", str(stop), "--quiet"],
                             env=dict(os.environ, PYTHONPATH=ROOT, OMP_NUM_THREADS="1"),
                             capture_output=True, text=True, timeout=120)
    assert resumed.returncode == 0, resumed.stderr
    assert not os.path.exists(out)
    assert ckpt.list_checkpoints(os.path.join(moved, "checkpoints"))[-1][0] == stop


def test_a_parameter_file_cut_short_when_closed_fails_the_save(dataset, tmp_path):
    """MXNet ignores a write that fails only when the file is closed; the save must not."""
    trainer = GANTrainer(_config(iterations=1), dataset=dataset)
    trainer.G.save_parameters(str(tmp_path / "probe.params"))
    size = os.path.getsize(str(tmp_path / "probe.params"))
    limits = resource.getrlimit(resource.RLIMIT_FSIZE)
    previous = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (size - 100, limits[1]))  # the last block fails
    try:
        with pytest.raises(OSError, match="generator.params was left incomplete"):
            ckpt.save(trainer, str(tmp_path / "checkpoints"), keep=3)
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, limits)
        signal.signal(signal.SIGXFSZ, previous)
    assert os.listdir(str(tmp_path / "checkpoints")) == []
