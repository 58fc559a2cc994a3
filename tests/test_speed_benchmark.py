"""The speed benchmarks: the PyTorch loop that benchmarks/speed_vs_torch.py times is
reference_torch.py's training loop; benchmarks/suite_time.py times each commit's own suite."""
import os
import re
import subprocess
import sys
import tempfile

import numpy as np
import pytest

torch = pytest.importorskip("torch")

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "benchmarks"))
import reference_torch  # noqa: E402
from torch_loop import PARTS, TorchLoop  # noqa: E402
from benchmark_scripts import import_benchmark  # noqa: E402


def test_timed_torch_loop_trains_as_the_reference_does():
    images = np.random.RandomState(0).randint(0, 256, size=(32, 32, 32, 3)).astype(np.uint8)
    G = reference_torch.train(images, 2, seed=5, batch_size=16, log_every=0)
    loop, parts = TorchLoop(images, seed=5, batch_size=16), []
    for _ in range(2):
        loop.iteration(parts.append)
    assert parts == list(PARTS) * 2  # every part reported, in order
    for (name, theirs), ours in zip(G.state_dict().items(), loop.G.state_dict().values()):
        np.testing.assert_array_equal(ours.numpy(), theirs.numpy(), err_msg=name)


def test_the_png_folder_reaches_training_with_the_datasets_own_pixels(tmp_path):
    """--pngs: train.py (through its own flags) and the PyTorch worker both get the dataset's
    exact uint8 pixels from the folder of PNG files."""
    import speed_vs_torch
    from sngan_gluon.cli.train import make_config
    from sngan_gluon.data import get_dataset
    from sngan_gluon.trainer import GANTrainer

    images = get_dataset("digits", image_size=32, channels=3).images[:70]  # one batch of 64
    folder = str(tmp_path / "pngs")
    os.mkdir(folder)
    speed_vs_torch.write_pngs(images, folder)
    assert sorted(os.listdir(folder))[:2] == ["000000.png", "000001.png"]
    args = speed_vs_torch.build_parser().parse_args(["--png-folder", folder])
    np.testing.assert_array_equal(speed_vs_torch.worker_images(args), images)
    config, _, _ = make_config(speed_vs_torch.data_arguments(args)
                               + ["--out-dir", str(tmp_path / "run")])
    trained_on = GANTrainer(config)._load_dataset()
    np.testing.assert_array_equal(trained_on.images, images)
    assert trained_on.images.dtype == np.uint8


def _commit(repo, files, message):
    for name, text in files.items():
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / name).write_text(text)
    subprocess.run(["git", "-C", str(repo), "add", "-A"], check=True)
    subprocess.run(["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t",
                    "commit", "-qm", message], check=True)
    return subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], check=True,
                          stdout=subprocess.PIPE, text=True).stdout.strip()


def test_suite_time_runs_each_commits_own_tests_and_reports_the_ratio(tmp_path, capsys):
    """Each commit's suite runs from its own export (a test added in the second commit runs
    only there), its package first on the path; nothing is left behind."""
    suite_time = import_benchmark("suite_time")
    repo = tmp_path / "repo"
    repo.mkdir()
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    which = "import mod\n\ndef test_which():\n    assert mod.VERSION == %d\n"
    base = _commit(repo, {"mod.py": "VERSION = 1\n", "tests/test_a.py": which % 1}, "one")
    head = _commit(repo, {"mod.py": "VERSION = 2\n", "tests/test_a.py": which % 2,
                          "tests/test_b.py": "def test_more():\n    pass\n"}, "two")
    before = set(os.listdir(tempfile.gettempdir()))
    assert suite_time.main(["--repo", str(repo), "--base", base[:7], "--head", head,
                            "--rounds", "2", "--", "-p", "no:xdist"]) == 0
    out = capsys.readouterr().out
    assert out.count("1 passed") == 2 and out.count("2 passed") == 2, out
    assert "failed" not in out and out.count("exit 0") == 4
    ratios = [float(r) for r in re.findall(r"head / base wall time ([\d.]+)x", out)]
    assert len(ratios) == 2 and all(r > 0 for r in ratios)
    median = float(re.search(r"over 2 round\(s\): ([\d.]+)x", out).group(1))
    assert median == pytest.approx(sum(ratios) / 2, abs=1e-3)
    assert not [name for name in set(os.listdir(tempfile.gettempdir())) - before
                if name.startswith("suite-time-")]
