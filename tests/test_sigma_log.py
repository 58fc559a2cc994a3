"""The trainer's warm-up of u and the sigma log (sigma_log.py): sigmas.csv and sigma.png."""
import numpy as np
import pytest

import sngan_gluon  # noqa: F401

from sngan_gluon.config import TrainConfig
from sngan_gluon.data import get_dataset
from sngan_gluon.nn import SpectralNormMixin
from sngan_gluon.spectra import layer_matrix, weight_layers
from sngan_gluon.trainer import GANTrainer


@pytest.fixture(scope="module")
def dataset():
    return get_dataset("synthetic", image_size=32)


def _config(**kwargs):
    values = dict(dataset="synthetic", batch_size=8, iterations=4, log_every=2, sample_every=100,
                  checkpoint_every=100, quiet=True, seed=5)
    values.update(kwargs)
    return TrainConfig(**values)


def _svd_sigma(layer):
    return np.linalg.norm(layer_matrix(layer).asnumpy().astype(np.float64), 2)


def test_first_step_divides_every_d_layer_by_its_svd_sigma_within_one_percent(dataset):
    # conditional: the projection discriminator has an SNEmbedding besides conv and dense
    trainer = GANTrainer(_config(conditional=True), dataset=dataset)
    layers = weight_layers(trainer.D)
    kinds = {type(layer).__name__ for layer in layers.values()}
    assert {"SNConv2D", "SNDense", "SNEmbedding"} <= kinds
    for path, layer in layers.items():
        assert isinstance(layer, SpectralNormMixin), path
        assert layer.sigma() == pytest.approx(_svd_sigma(layer), rel=0.01), path
