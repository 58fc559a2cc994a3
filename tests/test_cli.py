"""The train.py command line: flags, settings, resume rules and user errors."""
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

import sngan_gluon  # noqa: F401
from sngan_gluon.cli import DefaultsHelpFormatter
from sngan_gluon.cli import generate as generate_cli
from sngan_gluon.cli import launch as launch_cli
from sngan_gluon.cli import train as cli
from sngan_gluon.config import KVSTORES, LR_DECAYS, SETTINGS, ConfigError, TrainConfig
from sngan_gluon.data import DATASETS
from sngan_gluon.losses import LOSSES
from sngan_gluon.models import INITS, MODELS
from tiny_runs import WIDTH_FLAGS

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FLAGS = ["--data-path", "--batch-size", "--epochs", "--lr", "--lr-beta", "--beta1",
         "--use-gpu", "--clip_gr", "--clip-gr", "--z-dim", "--arch", "--loss", "--n-dis",
         "--beta2", "--iterations",
         "--lr-decay", "--image-size", "--dataset", "--conditional", "--no-sn",
         "--power-iterations", "--ema", "--diffaugment", "--lecam", "--mode-seeking", "--gpus",
         "--cpus", "--kvstore", "--sync-bn",
         "--num-workers", "--seed", "--out-dir", "--sample-every", "--checkpoint-every",
         "--log-every", "--resume", "--setting", "--channels", "--quiet", "--eval-every",
         "--feature-net", "--feature-net-params", "--tensorboard", "--g-ch", "--d-ch"]
SMALL = ["--dataset", "synthetic", "--batch-size", "8", "--iterations", "4", "--log-every", "2",
         "--sample-every", "2", "--checkpoint-every", "2", "--quiet"] + WIDTH_FLAGS


def _run(args, cwd=ROOT):
    """``python train.py ARGS`` in a process of its own: what a user's shell sees."""
    return subprocess.run([sys.executable, os.path.join(ROOT, "train.py")] + args, cwd=cwd,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=300)


def _main(args, capsys):
    """(exit code, stderr) of ``cli.main(ARGS)`` in this process; ``train.py`` passes the
    code to ``sys.exit`` (its own process is tested by ``_run``). argparse's refusals
    leave through ``SystemExit``; any other exception fails the test, as a traceback would."""
    capsys.readouterr()
    try:
        code = cli.main(args)
    except SystemExit as exit:
        code = exit.code
    return code, capsys.readouterr().err


def test_help_lists_every_flag_with_its_meaning():
    result = _run(["--help"])
    assert result.returncode == 0
    for flag in FLAGS:
        assert flag in result.stdout, flag
    assert "Adam's beta1" in result.stdout and "margin" not in result.stdout
    for name in SETTINGS:
        assert "%s: %s" % (name, SETTINGS[name][0]) in " ".join(result.stdout.split())
    # the width defaults come from the registry: the paper's, per architecture and size
    assert "resnet 256 at 32, 64 at 48, 64 at 64" in " ".join(result.stdout.split())
    assert "resnet 128 at 32, 64 at 48, 64 at 64" in " ".join(result.stdout.split())


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


@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    """A finished ``train.py SMALL`` run (4 iterations, checkpoints at 2 and 4); read only."""
    out = str(tmp_path_factory.mktemp("cli") / "run")
    assert cli.main(SMALL + ["--out-dir", out]) == 0
    return out


def _copy(run, tmp_path):
    """A copy of the run folder ``run`` in ``tmp_path``, for a test to resume or damage."""
    return shutil.copytree(run, str(tmp_path / "run"))


def test_train_then_resume_through_the_cli(small_run, tmp_path):
    out = _copy(small_run, tmp_path)
    assert cli.main(["--resume", out, "--iterations", "6", "--quiet"]) == 0
    rows = open(os.path.join(out, "log.csv")).read().split()
    assert rows[-1].startswith("6,")
    assert sorted(os.listdir(os.path.join(out, "samples")))[-1] == "iter_0000006.png"


def test_resume_refuses_changed_settings(small_run, tmp_path, capsys):
    out = _copy(small_run, tmp_path)
    assert cli.main(["--resume", out, "--lr", "0.5"]) == cli.EXIT_USER_ERROR
    assert "--lr 0.5 differs from the run being resumed" in capsys.readouterr().err


@pytest.mark.parametrize("args,message", [
    (["--dataset", "imagenet"], "imagenet"),
    (["--batch-size", "0"], "--batch-size"),
    (["--lr", "0"], "--lr must be positive"),
    (["--lr", "-1"], "--lr must be positive"),
    (["--image-size", "-3"], "--image-size"),
    (["--image-size", "13"], "dcgan has no layout for image size 13; it supports 32, 48"),
    (["--g-ch", "12"], "--g-ch: dcgan: ch must be a positive multiple of 8, got 12"),
    (["--arch", "dcgan64", "--d-ch", "4"], "--d-ch: dcgan64: ch must be a positive multiple of 8"),
    (["--d-ch", "0"], "--d-ch"),
    (["--lr", "inf"], "--lr: must be a finite number"),
    (["--clip_gr", "nan"], "--clip_gr: must be a finite number"),
    (["--lecam", "-0.1"], "--lecam must be >= 0"),
    (["--mode-seeking", "1", "--batch-size", "6", "--cpus", "2"], "even parts over 2 devices"),
    (["--arch", "vgg"], "--arch"),
    (["--use-gpu"], "install a CUDA build"),
    (["--gpus", "0,1"], "install a CUDA build"),
    (["--resume", "/nonexistent/run"], "does not exist"),
])
def test_user_errors_end_in_one_line_and_nonzero_exit(args, message, tmp_path, capsys):
    code, err = _main(SMALL + ["--out-dir", str(tmp_path / "r")] + args, capsys)
    assert code not in (0, None)
    assert "Traceback" not in err
    assert message in err
    assert len([line for line in err.splitlines() if line.strip()]) <= 2


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
def test_corrupt_checkpoint_on_resume(small_run, tmp_path, damage, capsys):
    out = _copy(small_run, tmp_path)
    target = os.path.join(out, "checkpoints", "iter_0000004")
    if damage == "truncate_params":
        path = os.path.join(target, "discriminator.params")
        data = open(path, "rb").read()
        open(path, "wb").write(data[: len(data) // 2])
    elif damage == "garbage_state":
        open(os.path.join(target, "state.json"), "w").write("{not json")
    else:
        os.remove(os.path.join(target, "g_trainer.states"))
    code, err = _main(["--resume", target, "--quiet"], capsys)
    assert code == cli.EXIT_USER_ERROR
    assert "Traceback" not in err
    assert "corrupt" in err or "missing" in err
    assert target in err


def test_config_round_trips_through_json(tmp_path):
    config, _, _ = cli.make_config(["--setting", "A", "--conditional", "--gpus", "0,1"])
    path = str(tmp_path / "c.json")
    config.save(path)
    assert TrainConfig.load(path) == config


PARSERS = {"train": cli.build_parser, "generate": generate_cli.build_parser,
           "launch": launch_cli.build_parser}


def _shown_help(parser):
    """flag -> its help text as --help prints it."""
    formatter = parser._get_formatter()
    return {action.option_strings[-1]: formatter._get_help_string(action) % vars(action)
            for action in parser._actions if action.option_strings and action.help}


@pytest.mark.parametrize("name", sorted(PARSERS))
def test_help_states_each_default_once_and_truly(name):
    parser = PARSERS[name]()
    assert parser.formatter_class is DefaultsHelpFormatter
    for flag, text in _shown_help(parser).items():
        assert text.count("default:") <= 1, (flag, text)
        for empty in ("None", "True", "False", "[]", ")"):
            assert "(default: %s" % empty not in text, (flag, text)
    actions = {a.option_strings[-1]: a for a in parser._actions if a.option_strings}
    for flag, text in _shown_help(parser).items():
        action = actions[flag]
        if action.required or action.nargs == 0:
            assert "default" not in text, (flag, text)
        elif "(default: %s)" % (action.default,) in text:
            assert isinstance(action.default, (int, float, str)) and action.default != ""


def test_help_of_switches_required_and_unset_flags_shows_no_bogus_default():
    train = _shown_help(cli.build_parser())
    assert "default" not in train["--no-sn"] and "default" not in train["--conditional"]
    assert train["--diffaugment"].endswith("(default: off)")
    assert "default: none, train on the CPU" in train["--gpus"]
    assert "the flags' own defaults are setting B" in train["--setting"]
    assert train["--image-size"].count("default") == 1 and "dcgan64 64" in train["--image-size"]
    assert train["--lr"].endswith("(default: 0.0001)")
    generate = _shown_help(generate_cli.build_parser())
    assert "default" not in generate["--checkpoint"] and "default" not in generate["--out"]
    assert "default" not in generate["--no-ema"]
    assert generate["--num"].endswith("(default: 64)")


def test_choices_come_from_the_registries():
    actions = {a.dest: a for a in cli.build_parser()._actions}
    assert tuple(actions["arch"].choices) == tuple(MODELS)
    assert tuple(actions["loss"].choices) == tuple(LOSSES)
    assert tuple(actions["dataset"].choices) == DATASETS
    assert tuple(actions["kvstore"].choices) == KVSTORES
    assert tuple(actions["lr_decay"].choices) == LR_DECAYS
    assert tuple(actions["init"].choices) == tuple(INITS)
    assert tuple(actions["setting"].choices) == tuple(SETTINGS)
    for field, bad in (("arch", "vgg"), ("loss", "wgan"), ("dataset", "imagenet"),
                       ("kvstore", "nccl"), ("lr_decay", "cosine"), ("init", "lecun")):
        with pytest.raises(ConfigError, match="choose from"):
            TrainConfig(**{field: bad}).validate()


def test_dataset_names_accept_underscores_as_get_dataset_does():
    assert cli.make_config(["--dataset", "Fashion_MNIST"])[0].dataset == "fashion-mnist"
    assert TrainConfig(dataset="fashion_mnist").validate().resolved_image_size() == 32


@pytest.mark.parametrize("flags", [["--beta1", "0.3"], ["--lr-beta", "0.3"]])
def test_beta1_has_both_spellings(flags):
    assert cli.make_config(flags)[0].beta1 == 0.3


@pytest.mark.parametrize("flags", [["--clip-gr", "5"], ["--clip_gr", "5"]])
def test_clip_gr_has_both_spellings(flags):
    assert cli.make_config(flags)[0].clip_gr == 5.0


@pytest.mark.parametrize("flag", ["--lr", "--beta1", "--beta2", "--clip-gr", "--clip_gr",
                                  "--lecam", "--mode-seeking", "--ema", "--g-bn-momentum"])
@pytest.mark.parametrize("value", ["inf", "-inf", "nan"])
def test_non_finite_numbers_are_refused_in_one_line(flag, value, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.make_config(["%s=%s" % (flag, value)])
    assert exit_info.value.code == cli.EXIT_USER_ERROR
    err = capsys.readouterr().err
    assert "must be a finite number" in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("value", ["1", "-0.1"])
def test_g_bn_momentum_outside_0_1_is_one_line(value, capsys):
    assert cli.main(["--g-bn-momentum", value]) == cli.EXIT_USER_ERROR
    err = capsys.readouterr().err.strip()
    assert "--g-bn-momentum must be in [0, 1)" in err and len(err.splitlines()) == 1
    assert cli.make_config(["--g-bn-momentum", "0.81"])[0].g_bn_momentum == 0.81


@pytest.mark.parametrize("field", ["lr", "clip_gr", "beta1", "ema", "lecam", "mode_seeking"])
def test_config_validation_refuses_non_finite_numbers(field):
    for value in (float("inf"), float("nan")):
        with pytest.raises(ConfigError, match="finite"):
            TrainConfig(**{field: value}).validate()


@pytest.mark.parametrize("flags,size", [
    (["--dataset", "folder"], 32),                          # dcgan has no 64 layout
    (["--dataset", "folder", "--arch", "resnet"], 64),     # the folder's own side
    (["--dataset", "stl10"], 48),
    (["--arch", "dcgan64"], 64),                            # CIFAR-10 enlarged to 64
    (["--dataset", "folder", "--image-size", "48"], 48),
])
def test_image_size_defaults_to_one_the_arch_supports(flags, size):
    assert cli.make_config(flags)[0].image_size == size


def test_unsupported_image_size_is_one_line_from_make_config():
    with pytest.raises(ConfigError, match="--image-size: resnet has no layout for image size "
                                          "13; it supports 32, 48, 64"):
        cli.make_config(["--arch", "resnet", "--image-size", "13"])


def test_folder_dataset_trains_with_the_default_flags(tmp_path):
    images = tmp_path / "imgs"
    images.mkdir()
    import cv2
    rng = np.random.RandomState(0)
    for i in range(8):
        cv2.imwrite(str(images / ("%d.png" % i)), rng.randint(0, 255, (70, 90, 3), np.uint8))
    out = str(tmp_path / "run")
    assert cli.main(["--dataset", "folder", "--data-path", str(images), "--out-dir", out,
                     "--batch-size", "4", "--iterations", "1", "--quiet"]) == 0
    assert TrainConfig.load(os.path.join(out, "config.json")).image_size == 32


def test_feature_net_flags():
    from sngan_gluon.cli.train import make_config
    config, _, _ = make_config(SMALL + ["--feature-net-params", "w.params"])
    assert (config.feature_net, config.feature_net_params) == ("tf-inception", "w.params")
    config, _, _ = make_config(SMALL + ["--feature-net", "gluoncv"])
    assert config.feature_net == "gluoncv"


def test_a_config_saved_before_the_tf_inception_keeps_measuring_with_gluoncv(tmp_path):
    from sngan_gluon.config import TrainConfig
    # config.json of a run saved when the flag was --inception-params (gluoncv's network)
    path = tmp_path / "config.json"
    path.write_text('{"dataset": "synthetic", "inception_params": "old.params"}')
    config = TrainConfig.load(str(path))
    assert (config.feature_net, config.feature_net_params) == ("gluoncv", "old.params")
    assert config.dataset == "synthetic"
