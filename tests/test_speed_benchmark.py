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
