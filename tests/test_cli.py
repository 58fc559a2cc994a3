"""The train.py command line: flags, settings, resume rules and user errors."""
import os
import subprocess
import sys

import pytest

import sngan_gluon  # noqa: F401
from sngan_gluon.cli import train as cli
from sngan_gluon.config import SETTINGS, TrainConfig

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FLAGS = ["--data-path", "--batch-size", "--epochs", "--lr", "--lr-beta", "--use-gpu",
         "--clip_gr", "--z-dim", "--arch", "--loss", "--n-dis", "--beta2", "--iterations",
         "--lr-decay", "--image-size", "--dataset", "--conditional", "--no-sn",
         "--power-iterations", "--ema", "--diffaugment", "--lecam", "--mode-seeking", "--gpus",
         "--cpus", "--kvstore", "--sync-bn",
         "--num-workers", "--seed", "--out-dir", "--sample-every", "--checkpoint-every",
         "--log-every", "--resume", "--setting", "--channels", "--quiet", "--eval-every",
         "--inception-params"]
SMALL = ["--dataset", "synthetic", "--batch-size", "8", "--iterations", "4", "--log-every", "2",
         "--sample-every", "2", "--checkpoint-every", "2", "--quiet"]


def _run(args, cwd=ROOT):
    return subprocess.run([sys.executable, os.path.join(ROOT, "train.py")] + args, cwd=cwd,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=300)


def test_help_lists_every_flag_with_its_meaning():
    result = _run(["--help"])
    assert result.returncode == 0
    for flag in FLAGS:
        assert flag in result.stdout, flag
    assert "Adam's beta1" in result.stdout and "margin" not in result.stdout
    for name in SETTINGS:
        assert "%s: %s" % (name, SETTINGS[name][0]) in " ".join(result.stdout.split())


def test_defaults_are_setting_b_and_the_original_example():
    config, resume, _ = cli.make_config([])
    assert resume is None
    assert (config.lr, config.beta1, config.beta2, config.n_dis) == (1e-4, 0.5, 0.999, 1)
    assert (config.batch_size, config.epochs, config.clip_gr, config.z_dim) == (64, 100, 10.0, 100)
    assert config.dataset == "cifar10" and config.data_path == "data"


def test_setting_applies_and_explicit_flags_override():
    config, _, _ = cli.make_config(["--setting", "resnet", "--n-dis", "3"])
    assert (config.lr, config.beta1, config.beta2, config.lr_decay, config.loss) == \
        (2e-4, 0.0, 0.9, "linear", "hinge")
    assert config.n_dis == 3
    config, _, _ = cli.make_config(["--setting", "D"])
    assert (config.lr, config.beta2, config.n_dis) == (1e-3, 0.9, 5)
    config, _, _ = cli.make_config(["--lecam", "0.3"])
    assert config.lecam == 0.3 and cli.make_config([])[0].lecam == 0
    config, _, _ = cli.make_config(["--mode-seeking", "1"])
    assert config.mode_seeking == 1 and cli.make_config([])[0].mode_seeking == 0


def test_train_then_resume_through_the_cli(tmp_path):
    out = str(tmp_path / "run")
    assert cli.main(SMALL + ["--out-dir", out]) == 0
    assert cli.main(["--resume", out, "--iterations", "6", "--quiet"]) == 0
    rows = open(os.path.join(out, "log.csv")).read().split()
    assert rows[-1].startswith("6,")
    assert sorted(os.listdir(os.path.join(out, "samples")))[-1] == "iter_0000006.png"


def test_resume_refuses_changed_settings(tmp_path, capsys):
    out = str(tmp_path / "run")
    assert cli.main(SMALL + ["--out-dir", out]) == 0
    assert cli.main(["--resume", out, "--lr", "0.5"]) == cli.EXIT_USER_ERROR
    assert "--lr 0.5 differs from the run being resumed" in capsys.readouterr().err


@pytest.mark.parametrize("args,message", [
    (["--dataset", "imagenet"], "imagenet"),
    (["--batch-size", "0"], "--batch-size"),
    (["--lr", "0"], "--lr must be positive"),
    (["--lr", "-1"], "--lr must be positive"),
    (["--image-size", "-3"], "--image-size"),
    (["--lecam", "-0.1"], "--lecam must be >= 0"),
    (["--mode-seeking", "1", "--batch-size", "6", "--cpus", "2"], "even parts over 2 devices"),
    (["--arch", "vgg"], "--arch"),
    (["--use-gpu"], "install a CUDA build"),
    (["--gpus", "0,1"], "install a CUDA build"),
    (["--resume", "/nonexistent/run"], "does not exist"),
])
def test_user_errors_end_in_one_line_and_nonzero_exit(args, message, tmp_path):
    result = _run(SMALL + ["--out-dir", str(tmp_path / "r")] + args)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert message in result.stderr
    assert len([line for line in result.stderr.splitlines() if line.strip()]) <= 2


def test_unwritable_out_dir(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    result = _run(SMALL + ["--out-dir", str(blocker / "run")])
    assert result.returncode == cli.EXIT_USER_ERROR
    assert "not writable" in result.stderr and "Traceback" not in result.stderr


def test_empty_image_folder(tmp_path):
    (tmp_path / "images").mkdir()
    result = _run(["--dataset", "folder", "--data-path", str(tmp_path / "images"),
                   "--out-dir", str(tmp_path / "r"), "--quiet"])
    assert result.returncode == cli.EXIT_USER_ERROR
    assert "Traceback" not in result.stderr and str(tmp_path / "images") in result.stderr


@pytest.mark.parametrize("damage", ["truncate_params", "garbage_state", "missing_file"])
def test_corrupt_checkpoint_on_resume(tmp_path, damage):
    out = str(tmp_path / "run")
    assert cli.main(SMALL + ["--out-dir", out]) == 0
    target = os.path.join(out, "checkpoints", "iter_0000004")
    if damage == "truncate_params":
        path = os.path.join(target, "discriminator.params")
        data = open(path, "rb").read()
        open(path, "wb").write(data[: len(data) // 2])
    elif damage == "garbage_state":
        open(os.path.join(target, "state.json"), "w").write("{not json")
    else:
        os.remove(os.path.join(target, "g_trainer.states"))
    result = _run(["--resume", target, "--quiet"])
    assert result.returncode == cli.EXIT_USER_ERROR
    assert "Traceback" not in result.stderr
    assert "corrupt" in result.stderr or "missing" in result.stderr
    assert target in result.stderr


def test_config_round_trips_through_json(tmp_path):
    config, _, _ = cli.make_config(["--setting", "A", "--conditional", "--gpus", "0,1"])
    path = str(tmp_path / "c.json")
    config.save(path)
    assert TrainConfig.load(path) == config
