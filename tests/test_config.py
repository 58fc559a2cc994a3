"""TrainConfig's run policy: a new run's defaults, the resume rules, the user-error base."""
import os

import pytest

import sngan_gluon  # noqa: F401  (makes mxnet importable)
from sngan_gluon.checkpoint import CheckpointError
from sngan_gluon.cli import train as cli
from sngan_gluon.config import RESUMABLE_OVERRIDES, ConfigError, TrainConfig
from sngan_gluon.data import DatasetError
from sngan_gluon.errors import UserError
from sngan_gluon.metrics import MetricsError
from sngan_gluon.run_folder import RunFolderError, RunFolderWriteError
from sngan_gluon.trainer import GANTrainer, TrainingError


def test_a_new_run_applies_the_setting_first_then_the_flags():
    config = TrainConfig.for_new_run({"setting": "D", "lr": 3e-4, "arch": "resnet"})
    assert (config.setting, config.lr, config.beta2, config.n_dis) == ("D", 3e-4, 0.9, 5)
    assert config.image_size == 32  # cifar10's side, which resnet has a layout for
    assert config.out_dir.startswith(os.path.join("runs", "cifar10-resnet-"))


def test_a_new_run_records_the_arch_default_side_and_keeps_a_given_out_dir():
    config = TrainConfig.for_new_run({"arch": "dcgan64", "out_dir": "mine"})
    assert (config.image_size, config.out_dir) == (64, "mine")


def test_resume_takes_the_run_folder_holding_the_checkpoint(tmp_path):
    saved = TrainConfig.for_new_run({"dataset": "synthetic", "out_dir": "/where/it/was"})
    checkpoint = str(tmp_path / "moved" / "checkpoints" / "iter_0000004")
    resumed = saved.resumed({"iterations": 9, "quiet": True}, checkpoint)
    assert resumed.out_dir == str(tmp_path / "moved")
    assert (resumed.iterations, resumed.quiet) == (9, True)
    assert saved.resumed({"out_dir": "elsewhere"}, checkpoint).out_dir == "elsewhere"


@pytest.mark.parametrize("key,value", [("lr", 0.5), ("arch", "resnet"), ("seed", 3),
                                       ("g_ch", 64), ("d_ch", 64)])
def test_resume_refuses_a_setting_that_changes_what_is_computed(key, value):
    assert key not in RESUMABLE_OVERRIDES
    saved = TrainConfig.for_new_run({"dataset": "synthetic"})
    with pytest.raises(ConfigError, match="--%s %s differs from the run being resumed"
                       % (key.replace("_", "-"), value)):
        saved.resumed({key: value}, "run/checkpoints/iter_0000001")


def test_user_errors_share_one_base_and_failures_do_not():
    for kind in (ConfigError, DatasetError, CheckpointError, MetricsError, RunFolderError):
        assert issubclass(kind, UserError), kind
    for kind in (TrainingError, RunFolderWriteError):
        assert not issubclass(kind, UserError), kind


def test_a_bug_in_the_package_keeps_its_traceback(monkeypatch, tmp_path):
    def broken(config):
        raise ValueError("a bug, not the user's")

    monkeypatch.setattr(GANTrainer, "for_run", broken)
    with pytest.raises(ValueError, match="a bug, not the user's"):
        cli.main(["--dataset", "synthetic", "--out-dir", str(tmp_path / "run")])
