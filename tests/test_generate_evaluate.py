"""Sampling and evaluating checkpoints end to end, and IS / FID during training."""
import csv
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import sngan_gluon  # noqa: F401
from sngan_gluon import checkpoint as ckpt
from sngan_gluon.checkpoint_search import resolve_checkpoint
from sngan_gluon.cli import evaluate as evaluate_cli
from sngan_gluon.cli import generate as generate_cli
from sngan_gluon.config import TrainConfig
from sngan_gluon.data import download, get_dataset
from sngan_gluon import inception_weights
from sngan_gluon.evaluation import training_evaluator
from sngan_gluon.feature_nets import check_images
from sngan_gluon.models import get_discriminator, get_generator
from sngan_gluon.sampling import LoadedGenerator
from sngan_gluon.spectra import load_discriminator
from sngan_gluon.trainer import GANTrainer
from tiny_runs import WIDTHS, Z_DIM

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class StandInExtractor:
    """The extractor interface (uint8 (N, H, W, 3) -> features, logits) with a fixed random
    projection instead of Inception, so that end-to-end tests take seconds."""

    name = "stand-in"

    def __init__(self, dim=16, classes=10):
        self.rng = np.random.RandomState(0)
        self.w = None
        self.dim, self.classes = dim, classes
        self.calls = 0

    def extract(self, images):
        check_images(images)
        flat = np.asarray(images).reshape(len(images), -1).astype(np.float64) / 127.5 - 1
        if self.w is None:
            self.w = self.rng.normal(size=(flat.shape[1], self.dim)) / np.sqrt(flat.shape[1])
        feats = flat @ self.w
        self.calls += 1
        return feats.astype(np.float32), (feats[:, :self.classes] * 3).astype(np.float32)

    __call__ = extract


@pytest.fixture(scope="module")
def runs(tiny_runs):
    """The session's tiny runs (tests/tiny_runs.py), unconditional and conditional, with an
    EMA generator; read only."""
    return tiny_runs


@pytest.mark.parametrize("name", ["uncond", "cond"])
def test_a_checkpoint_rebuilds_its_networks_at_the_widths_it_was_trained_at(runs, name):
    """The runs train at ``--g-ch 64 --d-ch 64``: what loads them builds those widths (the
    paper's networks would refuse their weights)."""
    classes = 10 if name == "cond" else 0
    loaded = {"g": LoadedGenerator(runs[name]).net, "d": load_discriminator(runs[name])[0]}
    for net, build in (("g", get_generator), ("d", get_discriminator)):
        kwargs = dict(z_dim=Z_DIM) if net == "g" else {}
        built = build("dcgan", 32, num_classes=classes, ch=WIDTHS[net + "_ch"], **kwargs)
        built.initialize()
        assert [p.shape for p in loaded[net].collect_params().values()] == \
            [p.shape for p in built.collect_params().values()]
        paper = build("dcgan", 32, num_classes=classes, **kwargs)
        with pytest.raises(AssertionError, match="shape"):
            paper.load_parameters(os.path.join(resolve_checkpoint(runs[name]),
                                               "generator.params" if net == "g"
                                               else "discriminator.params"))


def test_generate_npz_follows_the_contract(runs, tmp_path):
    path = str(tmp_path / "s.npz")
    assert generate_cli.main(["--checkpoint", runs["uncond"], "--num", "7", "--out", path,
                              "--seed", "3"]) == 0
    images = np.load(path)["images"]
    assert images.dtype == np.uint8 and images.shape == (7, 32, 32, 3)
    assert images.min() >= 0 and images.max() <= 255 and images.std() > 0
    again = str(tmp_path / "t.npz")
    generate_cli.main(["--checkpoint", runs["uncond"], "--num", "7", "--out", again,
                       "--seed", "3"])
    np.testing.assert_array_equal(np.load(again)["images"], images)  # seeded
    raw = str(tmp_path / "raw.npz")
    generate_cli.main(["--checkpoint", runs["uncond"], "--num", "7", "--out", raw,
                       "--seed", "3", "--no-ema"])
    assert not np.array_equal(np.load(raw)["images"], images)  # EMA weights differ
    trunc = str(tmp_path / "trunc.npz")
    assert generate_cli.main(["--checkpoint", runs["uncond"], "--num", "7", "--out", trunc,
                              "--truncation", "0.5"]) == 0


def test_generate_png_and_class(runs, tmp_path):
    png = str(tmp_path / "g.png")
    assert generate_cli.main(["--checkpoint", runs["cond"], "--num", "16", "--out", png,
                              "--class", "4"]) == 0
    assert os.path.getsize(png) > 0


def test_class_is_rejected_for_an_unconditional_checkpoint(runs, tmp_path):
    result = subprocess.run([sys.executable, "-m", "sngan_gluon.generate", "--checkpoint",
                             runs["uncond"], "--num", "4", "--class", "2", "--out",
                             str(tmp_path / "x.png")], capture_output=True, text=True,
                            timeout=120, cwd=ROOT)
    assert result.returncode == 2
    assert "unconditional" in result.stderr and "Traceback" not in result.stderr


def _inception_score(logits, splits=10, seed=2020):
    """Salimans et al.'s score in numpy: rows permuted by ``RandomState(seed)`` as
    torch-fidelity does, then ``exp(mean KL(p(y|x) || p(y)))`` over equal parts."""
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    p = (p / p.sum(axis=1, keepdims=True))[np.random.RandomState(seed).permutation(len(p))]
    scores = [np.exp((part * (np.log(part) - np.log(part.mean(axis=0)))).sum(axis=1).mean())
              for part in np.split(p, splits)]
    return np.mean(scores), np.std(scores)


def _fid(a, b):
    """Frechet distance of two feature sets, with scipy's matrix square root."""
    from scipy import linalg
    a, b = a.astype(np.float64), b.astype(np.float64)
    ca, cb = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    return float(((a.mean(0) - b.mean(0)) ** 2).sum()
                 + np.trace(ca + cb - 2 * linalg.sqrtm(ca @ cb).real))


def test_evaluate_end_to_end_prints_one_json_line(runs, capsys, tmp_path):
    extractor = StandInExtractor()
    code = evaluate_cli.main(["--checkpoint", runs["uncond"], "--num", "30",
                              "--batch-size", "10"], extractor=extractor)
    assert code == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1
    result = json.loads(lines[0])
    assert result["is_num"] == 30 and result["num_fake"] == 30 and result["ema"] is True
    assert result["protocol"] == "paper" and result["num_real"] == 2048
    assert result["real_set"] == "synthetic/train" and result["feature_network"] == "stand-in"
    assert result["kid_subset_size"] == 30
    assert result["prdc_k"] == 5 and result["prdc_num"] == 30
    # the same scores from the images themselves: the 30 samples sngan-generate draws with
    # the same seed, the first 2048 training images, and numpy, scipy and prdc
    from prdc import compute_prdc
    npz = str(tmp_path / "fake.npz")
    assert generate_cli.main(["--checkpoint", runs["uncond"], "--num", "30", "--out", npz]) == 0
    capsys.readouterr()
    fake_features, fake_logits = StandInExtractor()(np.load(npz)["images"])
    real_features, _ = StandInExtractor()(get_dataset("synthetic", image_size=32).images[:2048])
    is_mean, is_std = _inception_score(fake_logits.astype(np.float64))
    assert (result["is_mean"], result["is_std"]) == pytest.approx((is_mean, is_std), rel=1e-5)
    assert result["fid"] == pytest.approx(_fid(fake_features, real_features), rel=1e-4)
    expected = compute_prdc(real_features[:30], fake_features, nearest_k=5)
    for key in ("precision", "recall", "density", "coverage"):
        assert result[key] == pytest.approx(expected[key], rel=1e-5, abs=1e-6), key
    # the real features were cached and are reused
    cache = os.path.join(json.load(open(os.path.join(runs["uncond"], "config.json")))
                         ["data_path"], "fid_stats")
    assert len(os.listdir(cache)) == 1
    calls = extractor.calls
    evaluate_cli.main(["--checkpoint", runs["uncond"], "--num", "30", "--batch-size", "10"],
                      extractor=extractor)
    assert extractor.calls - calls == 3  # only the 30 generated images this time


def test_scoring_a_checkpoint_equals_scoring_its_generated_npz(runs, tmp_path, capsys):
    path = str(tmp_path / "s.npz")
    assert generate_cli.main(["--checkpoint", runs["uncond"], "--num", "40", "--out", path,
                              "--seed", "5"]) == 0
    capsys.readouterr()
    common = ["--dataset", "synthetic", "--batch-size", "16"]
    for argv in (["--checkpoint", runs["uncond"], "--num", "40", "--seed", "5"],
                 ["--images", path]):
        assert evaluate_cli.main(argv + common, extractor=StandInExtractor()) == 0
    first, second = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    for key in ("is_mean", "fid", "kid_mean", "precision", "recall", "density", "coverage"):
        assert first[key] == pytest.approx(second[key], rel=1e-6), key
    assert second["images"] == path and "checkpoint" not in second


def test_images_are_scored_against_real_files(tmp_path, capsys):
    from PIL import Image
    rng = np.random.RandomState(0)
    real = tmp_path / "real"
    real.mkdir()
    for i in range(12):
        Image.fromarray(rng.randint(0, 256, (8, 8, 3)).astype(np.uint8)).save(
            str(real / ("%03d.png" % i)))
    fake = str(tmp_path / "fake.npz")
    np.savez(fake, images=rng.randint(0, 256, (15, 8, 8, 3)).astype(np.uint8))
    assert evaluate_cli.main(["--images", fake, "--real", str(real)],
                             extractor=StandInExtractor()) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["num_fake"] == 15 and result["num_real"] == 12
    assert result["real_set"] == str(real) and result["kid_subset_size"] == 12


def bad_inputs(tmp_path):
    """(name, argv, expected words of the one-line error) for each kind of bad input."""
    rng = np.random.RandomState(1)
    good = rng.randint(0, 256, (20, 8, 8, 3)).astype(np.uint8)
    files = {"float": good / 255.0, "gray": good[..., 0], "rgba": np.concatenate(
        [good, good[..., :1]], axis=3), "few": good[:6]}
    cases = []
    for name, images in files.items():
        path = str(tmp_path / ("%s.npz" % name))
        np.savez(path, images=images)
        cases.append((name, ["--images", path], {
            "float": "must be uint8 in 0..255, got float64 in [0, 1]",
            "gray": "grayscale", "rgba": "RGBA", "few": "too few images"}[name]))
    other_key = str(tmp_path / "other.npz")
    np.savez(other_key, x=good)
    cases.append(("key", ["--images", other_key], "has no array 'images' (it has: x)"))
    (tmp_path / "empty").mkdir()
    cases.append(("empty", ["--images", str(tmp_path / "empty")], "holds no images"))
    cases.append(("missing", ["--images", str(tmp_path / "nothing.npz")], "not found"))
    return cases


def test_bad_image_input_gets_one_line_and_exit_code_2(tmp_path, capsys):
    real = str(tmp_path / "real.npz")
    np.savez(real, images=np.random.RandomState(2).randint(0, 256, (20, 8, 8, 3)).astype(
        np.uint8))
    for name, argv, expected in bad_inputs(tmp_path):
        code = evaluate_cli.main(argv + ["--real", real], extractor=StandInExtractor())
        err = capsys.readouterr().err
        assert code == 2, name
        assert err.count("\n") == 1 and err.startswith("error: ") and expected in err, (name, err)
    few = str(tmp_path / "few.npz")
    assert evaluate_cli.main(["--images", few], extractor=StandInExtractor()) == 2
    assert "--real DIR_OR_NPZ or --dataset NAME" in capsys.readouterr().err


def test_checkpoint_and_images_are_exclusive_and_one_is_required(capsys):
    for argv in ([], ["--checkpoint", "a", "--images", "b"]):
        with pytest.raises(SystemExit) as info:
            evaluate_cli.main(argv)
        assert info.value.code == 2
    assert "Traceback" not in capsys.readouterr().err


def test_help_states_each_default_once_and_truly():
    text = evaluate_cli.build_parser().format_help()
    assert "default: True" not in text and "default: None" not in text
    assert "(default: tf-inception)" in text and "(default: paper)" in text
    for flag in ("--images", "--real", "--feature-net", "--feature-net-params", "--protocol"):
        assert flag in text, flag


def test_evaluate_without_weights_says_what_to_download(runs, tmp_path, monkeypatch, capsys):
    def offline(url, path):
        raise OSError("<urlopen error offline test>")

    monkeypatch.setattr(download, "fetch", offline)
    monkeypatch.setenv("MXNET_HOME", str(tmp_path / "mxhome"))
    code = evaluate_cli.main(["--checkpoint", runs["uncond"], "--num", "10"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert inception_weights.WEIGHTS_URL in err and "--feature-net-params" in err


def test_training_logs_is_and_fid_and_keeps_the_best(tmp_path):
    dataset = get_dataset("synthetic", image_size=32)
    config = TrainConfig(dataset="synthetic", data_path=str(tmp_path / "data"), batch_size=8,
                         iterations=4, log_every=2, eval_every=2, eval_num=20,
                         checkpoint_every=4, sample_every=4, quiet=True, **WIDTHS)
    trainer = GANTrainer(config, dataset=dataset)
    trainer.train(str(tmp_path / "run"),
                  evaluator=training_evaluator(config, extractor=StandInExtractor()))
    with open(str(tmp_path / "run" / "log.csv")) as f:
        rows = list(csv.DictReader(f))
    assert [r["iteration"] for r in rows] == ["2", "4"]
    fids = [float(r["fid"]) for r in rows]
    assert all(np.isfinite(fids)) and all(float(r["is_mean"]) >= 1 for r in rows)
    best = ckpt.list_checkpoints(str(tmp_path / "run" / "best"))
    assert len(best) == 1
    assert ckpt.read_state(best[0][1])["best_fid"] == pytest.approx(min(fids))
    # `--checkpoint runs/x/best` (the README's wording) names that checkpoint, and a
    # run's checkpoints/ folder names its newest
    assert resolve_checkpoint(str(tmp_path / "run" / "best")) == best[0][1]
    assert resolve_checkpoint(str(tmp_path / "run" / "checkpoints")).endswith("iter_0000004")
    scores = training_evaluator(config, extractor=StandInExtractor())(trainer)
    for key in ("is_mean", "is_std", "fid", "kid_mean", "precision", "recall", "density",
                "coverage"):
        assert np.isfinite(scores[key]), key
    assert scores["num_fake"] == 20 and scores["feature_network"] == "stand-in"


@pytest.mark.parametrize("script, module", [("sngan-generate", generate_cli),
                                            ("sngan-evaluate", evaluate_cli)])
def test_console_scripts_are_installed_and_run(script, module):
    from importlib.metadata import entry_points
    found = [ep for ep in entry_points(group="console_scripts") if ep.name == script]
    assert len(found) == 1 and found[0].load() is module.main
    path = os.path.join(os.path.dirname(sys.executable), script)
    result = subprocess.run([path, "--help"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, timeout=120)
    assert result.returncode == 0 and "--checkpoint" in result.stdout, result.stdout[-500:]


@pytest.mark.parametrize("save", [np.savez, np.savez_compressed])
def test_image_files_stream_an_npz_in_batches(tmp_path, save):
    from sngan_gluon.image_files import ImageFiles
    images = np.random.RandomState(3).randint(0, 256, (23, 5, 6, 3)).astype(np.uint8)
    path = str(tmp_path / "x.npz")
    save(path, images=images, labels=np.arange(23))
    files = ImageFiles(path)
    assert len(files) == 23
    batches = list(files.batches(num=20, batch_size=8))
    assert [len(b) for b in batches] == [8, 8, 4]
    np.testing.assert_array_equal(np.concatenate(batches), images[:20])


def test_a_truncated_npz_gets_one_line(tmp_path):
    from sngan_gluon.image_files import ImageFiles
    path = str(tmp_path / "x.npz")
    np.savez(path, images=np.zeros((50, 8, 8, 3), np.uint8))
    with open(path, "rb") as f:
        data = f.read()
    with open(path, "wb") as f:
        f.write(data[:len(data) // 2])
    with pytest.raises(ValueError, match="cannot read") as info:
        list(ImageFiles(path).batches(batch_size=10))
    assert "\n" not in str(info.value)


def test_training_evaluator_without_weights_fails_before_training(tmp_path, monkeypatch):
    from sngan_gluon.metrics import MetricsError

    def offline(url, path):
        raise OSError("<urlopen error offline test>")

    monkeypatch.setattr(download, "fetch", offline)
    monkeypatch.setenv("MXNET_HOME", str(tmp_path))
    config = TrainConfig(dataset="synthetic", data_path=str(tmp_path / "data"), eval_every=2)
    with pytest.raises(MetricsError, match="--feature-net-params"):
        training_evaluator(config)
