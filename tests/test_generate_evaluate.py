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
from sngan_gluon.cli import evaluate as evaluate_cli
from sngan_gluon.cli import generate as generate_cli
from sngan_gluon.config import TrainConfig
from sngan_gluon.data import get_dataset
from sngan_gluon.evaluation import training_evaluator
from sngan_gluon.trainer import GANTrainer

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class StandInExtractor:
    """The extractor interface with a fixed random projection instead of Inception."""

    name = "stand-in"

    def __init__(self, dim=16, classes=10):
        rng = np.random.RandomState(0)
        self.w = None
        self.dim, self.classes = dim, classes
        self.rng = rng
        self.calls = 0

    def extract(self, images):
        x = images.asnumpy() if hasattr(images, "asnumpy") else np.asarray(images)
        flat = x.reshape(len(x), -1).astype(np.float64)
        if self.w is None:
            self.w = self.rng.normal(size=(flat.shape[1], self.dim)) / np.sqrt(flat.shape[1])
        feats = flat @ self.w
        logits = feats[:, :self.classes] * 3
        probs = np.exp(logits - logits.max(1, keepdims=True))
        self.calls += 1
        return feats.astype(np.float32), (probs / probs.sum(1, keepdims=True)).astype(np.float32)

    __call__ = extract


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    base = tmp_path_factory.mktemp("runs")
    dataset = get_dataset("synthetic", image_size=32)
    out = {}
    for name, conditional in (("uncond", False), ("cond", True)):
        config = TrainConfig(dataset="synthetic", data_path=str(base / "data"), batch_size=8,
                             iterations=2, log_every=1, checkpoint_every=2, sample_every=2,
                             quiet=True, conditional=conditional, ema=0.9)
        GANTrainer(config, dataset=dataset).train(str(base / name))
        out[name] = str(base / name)
    return out


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


def test_evaluate_end_to_end_prints_one_json_line(runs, capsys):
    extractor = StandInExtractor()
    code = evaluate_cli.main(["--checkpoint", runs["uncond"], "--num", "30",
                              "--batch-size", "10"], extractor=extractor)
    assert code == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1
    result = json.loads(lines[0])
    assert result["is_num"] == 30 and result["fid_num_fake"] == 30
    assert result["fid_protocol"] == "paper" and result["fid_num_real"] == 2048
    assert result["fid_real_set"] == "synthetic/train" and result["feature_network"] == "stand-in"
    assert 1.0 <= result["is_mean"] <= 10.0 and result["fid"] > 0
    # the real statistics were cached and are reused
    cache = os.path.join(json.load(open(os.path.join(runs["uncond"], "config.json")))
                         ["data_path"], "fid_stats")
    assert len(os.listdir(cache)) == 1
    calls = extractor.calls
    evaluate_cli.main(["--checkpoint", runs["uncond"], "--num", "30", "--batch-size", "10"],
                      extractor=extractor)
    assert extractor.calls - calls == 3  # only the 30 generated images this time


def test_evaluate_without_weights_says_what_to_download(runs, tmp_path):
    env = dict(os.environ, MXNET_HOME=str(tmp_path / "mxhome"))
    result = subprocess.run([sys.executable, "-m", "sngan_gluon.evaluate", "--checkpoint",
                             runs["uncond"], "--num", "10"], capture_output=True, text=True,
                            timeout=120, cwd=ROOT, env=env)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "inceptionv3-" in result.stderr and "--inception-params" in result.stderr


def test_training_logs_is_and_fid_and_keeps_the_best(tmp_path):
    dataset = get_dataset("synthetic", image_size=32)
    config = TrainConfig(dataset="synthetic", data_path=str(tmp_path / "data"), batch_size=8,
                         iterations=4, log_every=2, eval_every=2, eval_num=20,
                         checkpoint_every=4, sample_every=4, quiet=True)
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
    assert ckpt.resolve_checkpoint(str(tmp_path / "run" / "best")) == best[0][1]
    assert ckpt.resolve_checkpoint(str(tmp_path / "run" / "checkpoints")).endswith("iter_0000004")


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
