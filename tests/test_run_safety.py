"""A run never loses or mixes work: stop signals, one run per folder, moved runs, failed writes.

The signal tests that matter most run a real ``train.py`` process; the rest
deliver signals to this process while :meth:`GANTrainer.train` runs in it.
"""
import json
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
from sngan_gluon.checkpoint_search import resolve_checkpoint
from sngan_gluon.cli import train as train_cli
from sngan_gluon.config import TrainConfig
from sngan_gluon.run_folder import MARKER_FILE, RunFolder, RunFolderError, RunFolderWriteError
from sngan_gluon.signals import Interrupted
from sngan_gluon.trainer import GANTrainer
from tiny_runs import WIDTHS

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _config(**kwargs):
    values = dict(dataset="synthetic", batch_size=8, iterations=6, log_every=100,
                  sample_every=100, checkpoint_every=100, quiet=True, seed=5, n_dis=2, **WIDTHS)
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

class _Interrupter:
    """Sends this process SIGUSR1 once per attempt, driven by the attempt's progress.

    Called after each iteration (an extension): after the attempt's second
    iteration it arms a timer for a random moment within about one iteration,
    sized by the pace of that second iteration, so the signal lands anywhere in
    the third (a D step, the G step, the EMA update, the extensions). If the
    third iteration ends first, the signal is sent then. Every attempt thus makes
    progress whatever its start-up costs, and stops within three iterations
    whatever the machine's speed.
    """

    def __init__(self, rng):
        self.rng, self.calls, self.timer, self.last = rng, 0, None, None
        self.lock, self.sent = threading.Lock(), False

    def send(self):
        with self.lock:
            if not self.sent:
                self.sent = True
                os.kill(os.getpid(), signal.SIGUSR1)

    def __call__(self, trainer):
        self.calls += 1
        now = time.monotonic()
        if self.calls == 2:
            self.timer = threading.Timer(self.rng.uniform(0.0, 1.0) * (now - self.last),
                                         self.send)
            self.timer.start()
        elif self.calls == 3:
            self.timer.cancel()
            self.send()
        self.last = now

    def close(self):
        if self.timer is not None:
            self.timer.cancel()
            if self.timer.ident is not None:
                self.timer.join()


def test_interrupts_at_random_moments_resume_to_the_same_weights(
        dataset, tmp_path, usr1_ignored_outside_training):
    """A signal at any moment saves the state between two whole iterations.

    One run is stopped by SIGUSR1 (sent at a random moment of the third
    iteration of each attempt, see :class:`_Interrupter`) and resumed over and
    over until it ends; its final weights must equal those of an uninterrupted
    run, bit for bit, and every checkpoint written on the way must hold a data
    position that is the end of its iteration.
    """
    config = _config(iterations=7, ema=0.9, mode_seeking=1.0, conditional=True)
    straight = GANTrainer(config, dataset=dataset)
    straight.train(str(tmp_path / "straight"))
    rng = random.Random(0)
    out, resume, stops = str(tmp_path / "stopped"), None, 0
    for _ in range(40):
        trainer = GANTrainer(config, dataset=dataset)
        interrupter = _Interrupter(rng)
        trainer.extend(interrupter, every=1)
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
            interrupter.close()
    assert stops >= 2  # at most three iterations an attempt: stops at 3 and 6 at the latest
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
        resolve_checkpoint(path)


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
    found = resolve_checkpoint(finished_run, warn=warnings.append)
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


def test_sigterm_saves_and_the_run_goes_on_from_its_moved_folder(tmp_path, capsys):
    """SIGTERM to train.py: a checkpoint of a whole iteration, a message, exit 130.

    While it runs, a second run in its folder (started here, in the test's process) is
    refused; after it, a new run there is refused (it holds checkpoints), and the run,
    moved to another folder, resumes there and writes nothing to the old path.
    """
    out = str(tmp_path / "a")
    args = ["--dataset", "synthetic", "--batch-size", "8", "--iterations", "100000",
            "--checkpoint-every", "100000", "--log-every", "1", "--sample-every", "100000",
            "--quiet", "--seed", "2"]
    first = _start(args + ["--out-dir", out])
    _wait_for(os.path.join(out, "log.csv"), first)  # an iteration is done
    capsys.readouterr()
    assert train_cli.main(args + ["--out-dir", out]) == 2  # here, beside the running one
    assert capsys.readouterr().err.strip().splitlines() == [
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

    assert train_cli.main(args + ["--out-dir", out]) == 2
    again = capsys.readouterr().err
    assert "--resume" in again and len(again.strip().splitlines()) == 1

    moved = str(tmp_path / "b")
    shutil.move(out, moved)
    stop = saved[0][0] + 2
    assert train_cli.main(["--resume", moved, "--iterations", str(stop), "--quiet"]) == 0, \
        capsys.readouterr().err
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


# ------------------------------------------------------------------ whose folder it is

def _tree(folder):
    """{relative path: bytes} of every file under ``folder``."""
    found = {}
    for parent, _, files in os.walk(folder):
        for name in files:
            path = os.path.join(parent, name)
            with open(path, "rb") as f:
                found[os.path.relpath(path, folder)] = f.read()
    return found


def test_a_folder_of_the_users_files_is_refused_and_left_as_it_was(dataset, tmp_path):
    out = tmp_path / "mine"
    (out / "samples").mkdir(parents=True)
    (out / "config.json").write_text('{"mine": true}')
    (out / "log.csv").write_text("a,b\n1,2\n")
    (out / "samples" / "iter_0000002.png").write_bytes(b"my picture")
    before = _tree(str(out))
    with pytest.raises(RunFolderError, match="holds 3 file.s. that no sngan_gluon run wrote "
                                             r"\(config.json, log.csv, samples\)"):
        GANTrainer(_config(iterations=2), dataset=dataset).train(str(out))
    assert _tree(str(out)) == before  # not even a lock file


def test_out_dir_root_and_foreign_folders_are_refused_in_one_line(tmp_path, capsys):
    from sngan_gluon.run_folder import folder_problem
    assert "no sngan_gluon run wrote" in folder_problem("/")
    assert folder_problem(str(tmp_path / "new")) is None
    assert folder_problem(str(tmp_path)) is None  # empty
    (tmp_path / "notes.txt").write_text("mine")
    code = train_cli.main(["--dataset", "synthetic", "--out-dir", str(tmp_path), "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and err == [
        "error: --out-dir %s holds 1 file(s) that no sngan_gluon run wrote (notes.txt): train "
        "into a new or empty folder" % tmp_path]
    assert os.listdir(str(tmp_path)) == ["notes.txt"]


def _iterations(csv_path):
    with open(csv_path) as f:
        lines = f.read().splitlines()
    return lines[0].split(",")[0], [int(line.split(",")[0]) for line in lines[1:]]


def test_a_run_killed_before_its_first_checkpoint_is_started_afresh(dataset, tmp_path, capsys):
    """Its rows, sigmas and samples are gone: nothing of the old run mixes with the new."""
    out = str(tmp_path / "run")
    first = GANTrainer(_config(iterations=6, log_every=2, sample_every=2), dataset=dataset)

    def crash(tr):
        if tr.iteration == 4:
            raise RuntimeError("killed")

    first.extend(crash, every=1)
    with pytest.raises(RuntimeError, match="killed"):
        first.train(out)
    assert _iterations(os.path.join(out, "log.csv"))[1] == [2, 4]
    assert ckpt.list_checkpoints(os.path.join(out, "checkpoints")) == []
    GANTrainer(_config(iterations=6, log_every=2), dataset=dataset).train(out)
    assert "stopped before its first checkpoint; starting afresh" in capsys.readouterr().err
    assert _iterations(os.path.join(out, "log.csv")) == ("iteration", [2, 4, 6])
    assert _iterations(os.path.join(out, "sigmas.csv")) == ("iteration", [2, 4, 6])
    assert os.listdir(os.path.join(out, "samples")) == ["iter_0000006.png"]


# ------------------------------------------------------------------ damaged checkpoints fall back

def _truncate(path):
    with open(path, "rb") as f:
        data = f.read()
    with open(path, "wb") as f:
        f.write(data[:len(data) // 2])


def _other_architecture_discriminator(path):
    import mxnet as mx
    from sngan_gluon.models import get_discriminator
    net = get_discriminator("resnet", image_size=32, num_classes=0, channels=3)
    net.initialize()
    net(mx.nd.zeros((1, 3, 32, 32)))
    net.save_parameters(path)


def _damaged_aside(run):
    aside = [n for n in os.listdir(os.path.join(run, "checkpoints")) if n.startswith("damaged-")]
    assert len(aside) == 1
    return os.listdir(os.path.join(run, "checkpoints", aside[0]))


@pytest.mark.parametrize("tool", ["train", "generate", "spectra_report"])
def test_a_damaged_newest_checkpoint_is_set_aside_and_the_older_one_used(
        dataset, finished_run, capsys, tool):
    """A truncated generator.params (generate) or a discriminator.params of another
    architecture (train, spectra_report): the tool warns, moves the newest checkpoint to
    damaged-* and uses iter_0000002."""
    from sngan_gluon.sampling import LoadedGenerator
    from sngan_gluon.spectra import load_discriminator
    newest = os.path.join(finished_run, "checkpoints", "iter_0000004")
    if tool == "spectra_report":
        _other_architecture_discriminator(os.path.join(newest, "discriminator.params"))
        used = load_discriminator(finished_run)[1]["path"]
    elif tool == "generate":
        _truncate(os.path.join(newest, "generator.params"))
        gen = LoadedGenerator(finished_run)
        used = gen.path
        assert gen.iteration == 2 and gen.sample(2).shape == (2, 32, 32, 3)
    else:
        _other_architecture_discriminator(os.path.join(newest, "discriminator.params"))
        trainer = GANTrainer(_config(iterations=5), dataset=dataset)
        ran = []
        trainer.extend(lambda tr: ran.append(tr.iteration), every=1)
        trainer.train(finished_run, resume=finished_run)
        assert ran == [3, 4, 5]
        used = os.path.join(os.path.dirname(newest), "iter_%07d" % (ran[0] - 1))
        assert [it for it, _ in ckpt.list_checkpoints(os.path.dirname(newest))] == [2, 5]
    assert used.endswith("iter_0000002")
    err = capsys.readouterr().err
    assert "iter_0000004" in err and "moved to" in err and "using %s instead" % used in err
    assert _damaged_aside(finished_run) == ["iter_0000004"]


def test_an_explicit_damaged_checkpoint_is_refused_not_replaced(finished_run):
    from sngan_gluon.sampling import LoadedGenerator
    newest = os.path.join(finished_run, "checkpoints", "iter_0000004")
    _truncate(os.path.join(newest, "generator.params"))
    with pytest.raises(ckpt.DamagedCheckpoint, match="cannot load .*generator.params"):
        LoadedGenerator(newest)
    assert os.path.isdir(newest)


# ------------------------------------------------------------------ one line, not a traceback

def test_a_negative_seed_is_one_line(capsys):
    assert train_cli.main(["--dataset", "synthetic", "--seed", "-1", "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["error: --seed must be an integer in 0..4294966, got -1"]


@pytest.mark.parametrize("error", [MemoryError(), "mxnet"])
def test_memory_running_out_at_a_step_is_one_line_and_keeps_checkpoints(
        dataset, tmp_path, monkeypatch, capsys, error):
    import mxnet as mx
    from sngan_gluon.updater import Updater
    if error == "mxnet":  # what oneDNN says under ulimit -v
        error = mx.base.MXNetError("Traceback (most recent call last):\n  File \"x\"\n"
                                   "MXNetError: could not execute a primitive")
    update = Updater.update

    def short_of_memory(self):
        if self.iteration == 3:
            raise error
        return update(self)

    monkeypatch.setattr(Updater, "update", short_of_memory)
    out = str(tmp_path / "run")
    code = train_cli.main(["--dataset", "synthetic", "--batch-size", "8", "--iterations", "6",
                           "--checkpoint-every", "2", "--quiet", "--out-dir", out])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and len(err) == 1, err
    assert err[0].startswith("error: ran out of memory at iteration 4 (")
    assert "the checkpoints written before are intact (newest: %s)" % os.path.join(
        out, "checkpoints", "iter_0000002") in err[0]
    assert [it for it, _ in ckpt.list_checkpoints(os.path.join(out, "checkpoints"))] == [2]


def test_memory_running_out_at_a_checkpoint_write_is_one_line(dataset, tmp_path, monkeypatch):
    saves = []
    state = ckpt.trainer_state

    def short_of_memory(trainer):
        saves.append(trainer.iteration)
        if len(saves) == 2:
            raise MemoryError()
        return state(trainer)

    monkeypatch.setattr(ckpt, "trainer_state", short_of_memory)
    out = str(tmp_path / "run")
    with pytest.raises(RunFolderWriteError, match="cannot write a checkpoint in %s: out of "
                       "memory .*intact .newest: .*iter_0000002" % out):
        GANTrainer(_config(iterations=6, checkpoint_every=2), dataset=dataset).train(out)
    assert [it for it, _ in ckpt.list_checkpoints(os.path.join(out, "checkpoints"))] == [2]


def test_an_unwritable_checkpoints_folder_is_found_before_the_first_iteration(
        dataset, tmp_path, monkeypatch):
    """``chattr +i`` where the file system has it; else every mkdir in it fails alike."""
    out = tmp_path / "run"
    folder = out / "checkpoints"
    folder.mkdir(parents=True)
    (out / MARKER_FILE).touch()  # a run folder of ours
    immutable = subprocess.run(["chattr", "+i", str(folder)], capture_output=True).returncode == 0 \
        if shutil.which("chattr") else False
    if not immutable:
        mkdir = os.mkdir

        def refuse(path, *args, **kwargs):
            if os.path.dirname(os.path.abspath(path)) == str(folder):
                raise PermissionError(1, "Operation not permitted", path)
            return mkdir(path, *args, **kwargs)

        monkeypatch.setattr(os, "mkdir", refuse)
    trainer = GANTrainer(_config(iterations=4, checkpoint_every=2), dataset=dataset)
    try:
        with pytest.raises(RunFolderError, match="cannot write checkpoints into %s: Operation "
                                                 "not permitted" % folder):
            trainer.train(str(out))
    finally:
        if immutable:
            subprocess.run(["chattr", "-i", str(folder)], check=True)
    assert trainer.iteration == 0


# ------------------------------------------------------------------ file modes

def test_files_follow_the_umask(dataset, tmp_path):
    previous = os.umask(0o027)
    try:
        out = str(tmp_path / "run")
        GANTrainer(_config(iterations=2, log_every=1), dataset=dataset).train(out)
    finally:
        os.umask(previous)
    for name in ("config.json", "log.csv", "loss.png", "sigmas.csv", "sigma.png",
                 os.path.join("samples", "iter_0000002.png")):
        assert oct(os.stat(os.path.join(out, name)).st_mode & 0o777) == oct(0o640), name


# ------------------------------------------------------------------ a changed dataset

def _image_folder(root, count):
    import cv2
    rng = np.random.RandomState(7)
    os.makedirs(root, exist_ok=True)
    for i in range(count):
        assert cv2.imwrite(os.path.join(root, "%03d.png" % i),
                           rng.randint(0, 256, (32, 32, 3)).astype(np.uint8))


def test_a_resume_on_a_changed_dataset_says_so_and_goes_on_only_when_asked(tmp_path, capsys):
    from sngan_gluon.data import get_dataset
    images, out = str(tmp_path / "images"), str(tmp_path / "run")
    _image_folder(images, 40)
    config = _config(dataset="folder", data_path=images, iterations=2, checkpoint_every=2)
    before = get_dataset("folder", root=images, image_size=32)
    GANTrainer(config, dataset=before).train(out)
    recorded = ckpt.read_state(os.path.join(out, "checkpoints", "iter_0000002"))["dataset"]
    assert recorded["count"] == 40 and recorded == before.identity
    with open(os.path.join(out, "dataset.json")) as f:
        assert json.load(f) == before.identity
    for i in (3, 17):  # 2 of 40 images deleted: the data position still looks right
        os.remove(os.path.join(images, "%03d.png" % i))
    after = get_dataset("folder", root=images, image_size=32)
    config.iterations = 4
    with pytest.raises(ckpt.CheckpointError) as info:
        GANTrainer(config, dataset=after).train(out, resume=out)
    message = str(info.value)
    assert "the dataset changed since checkpoint" in message and "damaged" not in message
    assert "40 images of folder" in message and "38 images of folder" in message
    assert "--accept-changed-data" in message and "\n" not in message
    assert [it for it, _ in ckpt.list_checkpoints(os.path.join(out, "checkpoints"))] == [2]
    capsys.readouterr()
    trainer = GANTrainer(config, dataset=after)
    trainer.train(out, resume=out, accept_changed_data=True)
    assert trainer.iteration == 4 and "the dataset changed since" in capsys.readouterr().err
    assert ckpt.read_state(trainer.last_checkpoint)["dataset"] == after.identity
