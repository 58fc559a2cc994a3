"""The offline quality benchmark runs end to end and reports consistent figures."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from sngan_gluon.sampling import LoadedGenerator

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_quality_digits(tmp_path, *args):
    """Run the benchmark with ``args`` into ``tmp_path/run``: (run folder, output, quality.json)."""
    out = str(tmp_path / "run")
    result = subprocess.run(
        [sys.executable, os.path.join(ROOT, "benchmarks", "quality_digits.py")] + list(args)
        + ["--out-dir", out], cwd=str(tmp_path), stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-2000:]
    with open(os.path.join(out, "quality.json")) as f:
        return out, result.stdout, json.load(f)


@pytest.mark.slow
def test_quality_digits_trains_judges_and_writes_its_figures(tmp_path):
    """One short run with every training option the benchmark passes on (a run costs a minute)."""
    pytest.importorskip("sklearn")
    out, stdout, figures = run_quality_digits(
        tmp_path, "--iterations", "3", "--num", "60", "--judge-every", "50",
        "--diffaugment", "translation", "--lecam", "0.3", "--beta1", "0", "--conditional",
        "--loss", "bce", "--mode-seeking", "1")
    assert figures["classifier_accuracy"] > 0.9  # the judge recognises held-out digits
    assert 9.0 < figures["score_real_heldout"] <= 10.0
    assert figures["fid_floor_real_vs_real"] > 0
    # a one-pixel shift of real digits is visible to the judge: FID over the floor
    assert figures["calibration"]["shift_1px"] > 1.2
    assert figures["calibration"]["dim_10pct"] > 1.2
    # so are wrong class proportions, though every digit drawn is a real one
    assert figures["calibration"]["classes_3_8_at_18pct"] > 1.2
    assert figures["calibration"]["only_300_digits"] > 1.0
    assert figures["judged"] == "ema" and set(figures["results"]) == {"raw", "ema"}
    assert figures["conditional"] is True and figures["loss"] == "bce"
    assert LoadedGenerator(out).num_classes == 10  # the judged generator took labels
    assert stdout.count("conditional dcgan on digits") == 1
    assert figures["fid"] == pytest.approx(figures["fid_over_floor"]
                                           * figures["fid_floor_real_vs_real"])
    # three iterations of training cannot pass: the benchmark must be able to say so
    assert figures["fid_over_floor"] > 2
    assert figures["diffaugment"] == "translation" and figures["iterations"] == 3
    assert figures["mode_seeking"] == 1 and "mode seeking 1" in stdout
    assert figures["lecam"] == 0.3 and figures["beta1"] == 0.0 and figures["beta2"] == 0.999
    assert [row["iteration"] for row in figures["trajectory"]] == [3]
    # the one judged iteration is the selected one, and the run's best/ checkpoint holds it
    assert figures["selected"]["iteration"] == 3
    assert figures["selected"]["fid"] == pytest.approx(figures["trajectory"][0]["ema"]["fid"],
                                                       rel=1e-4)
    best = LoadedGenerator(os.path.join(out, "best"))
    assert best.ema and best.iteration == figures["selected"]["iteration"]
    assert 1 <= figures["classes_with_5pct"] <= 10
    assert abs(sum(figures["class_shares"]) - 1) < 0.01
    assert figures["balanced_over_floor"] > 0
    assert "target <= 2" in stdout


def import_quality_digits():
    sys.path.insert(0, os.path.join(ROOT, "benchmarks"))
    try:
        import quality_digits
    finally:
        sys.path.pop(0)
    return quality_digits


def test_the_benchmark_defaults_are_the_runs_the_readme_reports():
    """Plain ``quality_digits.py`` runs the README's table: constant Adam(4e-4), mode seeking 1."""
    q = import_quality_digits()
    config = q.train_config(q.build_parser().parse_args([]))
    assert (config.sn, config.conditional, config.arch, config.dataset) == (True, False, "dcgan",
                                                                          "digits")
    assert (config.iterations, config.batch_size, config.n_dis) == (1250, 32, 1)
    assert (config.lr, config.beta1, config.beta2) == (4e-4, 0.5, 0.999)
    assert config.lr_decay == "none" and config.mode_seeking == 1.0 and config.ema == 0.999
    config.validate()
    # the earlier rows' setting stays one flag away, and --no-sn only drops SN
    earlier = q.train_config(q.build_parser().parse_args(
        ["--lr-decay", "linear", "--mode-seeking", "0", "--no-sn"]))
    assert (earlier.lr_decay, earlier.mode_seeking, earlier.sn) == ("linear", 0.0, False)
    assert earlier.lr == config.lr and earlier.batch_size == config.batch_size


def test_the_class_balanced_figure_removes_the_cost_of_wrong_proportions():
    pytest.importorskip("sklearn")
    q = import_quality_digits()
    from sngan_gluon.data import get_dataset, to_tensor
    train = get_dataset("digits", image_size=32, channels=3, train=True)
    test = get_dataset("digits", image_size=32, channels=3, train=False)
    judge = q.Judge(q.train_classifier(train, test, epochs=4)[0], train, test)
    # real training digits, but 3s and 8s make up 60% of them
    counts = np.where(np.isin(np.arange(10), (3, 8)), 300, 50)
    index = q.draw_by_class(train.labels, counts, np.random.RandomState(0))
    figures = judge(to_tensor(train.images[index]))
    assert figures["class_shares"][3] > 0.25 and figures["class_shares"][8] > 0.25
    assert figures["balanced_over_floor"] < 0.7 * figures["fid_over_floor"]
