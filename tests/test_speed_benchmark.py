"""The PyTorch loop that benchmarks/speed_vs_torch.py times is reference_torch.py's training loop."""
import os
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "benchmarks"))
import reference_torch  # noqa: E402
from torch_loop import PARTS, TorchLoop  # noqa: E402


def test_timed_torch_loop_trains_as_the_reference_does():
    images = np.random.RandomState(0).randint(0, 256, size=(128, 32, 32, 3)).astype(np.uint8)
    G = reference_torch.train(images, 2, seed=5, log_every=0)
    loop, parts = TorchLoop(images, seed=5), []
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
