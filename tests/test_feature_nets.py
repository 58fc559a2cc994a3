"""Tests for sngan_gluon.feature_nets: the input check and gluoncv's Inception-v3 wrapper."""
import os

import numpy as np
import pytest

import sngan_gluon  # noqa: F401  (makes mxnet importable)
import mxnet as mx
from sngan_gluon import feature_nets
from sngan_gluon.data import download
from sngan_gluon.feature_nets import GluonCVInceptionExtractor, check_images, get_feature_net
from sngan_gluon.metrics import MetricsError


@pytest.mark.parametrize("images, words", [
    (np.zeros((2, 8, 8, 3), np.float32), "must be uint8 in 0..255, got float32 in [0, 0]"),
    (np.zeros((2, 8, 8), np.uint8), "grayscale"),
    (np.zeros((2, 8, 8, 1), np.uint8), "grayscale"),
    (np.zeros((2, 8, 8, 4), np.uint8), "RGBA"),
    (np.zeros((2, 3, 8, 8), np.uint8), "must have shape (N, H, W, 3)"),
])
def test_check_images_names_the_problem(images, words):
    with pytest.raises(ValueError) as info:
        check_images(images, source="x.npz")
    assert words in str(info.value) and str(info.value).startswith("x.npz")


def test_unknown_feature_net_lists_the_choices():
    with pytest.raises(ValueError, match="tf-inception, gluoncv"):
        get_feature_net("vgg")


@pytest.fixture(scope="module")
def random_inception():
    return GluonCVInceptionExtractor(pretrained=False, batch_size=3)


def test_gluoncv_features_and_logits_of_uint8_images(random_inception):
    rgb = np.random.RandomState(12).randint(0, 256, size=(4, 32, 32, 3)).astype(np.uint8)
    features, logits = random_inception.extract(mx.nd.array(rgb, dtype=np.uint8))  # 2 passes
    assert features.shape == (4, 2048) and features.dtype == np.float32
    assert logits.shape == (4, 1000) and np.isfinite(features).all()
    again, _ = random_inception(rgb)  # numpy input
    np.testing.assert_allclose(again, features, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="RGBA"):
        random_inception.extract(np.zeros((1, 8, 8, 4), np.uint8))


def test_gluoncv_params_file_loads_the_same_weights(random_inception, tmp_path):
    path = str(tmp_path / "inception.params")
    net = feature_nets.gluoncv_model_zoo().get_model("inceptionv3", pretrained=False)
    GluonCVInceptionExtractor._init_random(net, mx.cpu())
    net.save_parameters(path)
    loaded = GluonCVInceptionExtractor(params_file=path)
    assert loaded.name.startswith("inceptionv3-") and loaded.name != "inceptionv3-random"
    x = np.random.RandomState(13).randint(0, 256, size=(1, 16, 16, 3)).astype(np.uint8)
    np.testing.assert_allclose(loaded.extract(x)[0], random_inception.extract(x)[0],
                               rtol=1e-4, atol=1e-4)
    with pytest.raises(MetricsError, match="not found"):
        GluonCVInceptionExtractor(params_file=str(tmp_path / "missing.params"))
    garbage = tmp_path / "garbage.params"
    garbage.write_bytes(b"not mxnet parameters")
    with pytest.raises(MetricsError, match="Invalid NDArray file format") as info:
        GluonCVInceptionExtractor(params_file=str(garbage))
    assert "\n" not in str(info.value)


def test_gluoncv_weights_offline_raise_one_clear_line(tmp_path, monkeypatch):
    model_store = feature_nets.gluoncv_model_zoo().model_store

    tried = []

    def no_network(url, path):
        tried.append(url)
        raise OSError("<urlopen error [Errno -3] Temporary failure in name resolution>")

    monkeypatch.setenv("MXNET_HOME", str(tmp_path))
    monkeypatch.delenv("MXNET_GLUON_REPO", raising=False)
    monkeypatch.setattr(download, "fetch", no_network)
    with pytest.raises(MetricsError) as info:
        GluonCVInceptionExtractor(pretrained=True)
    message = str(info.value)
    assert "\n" not in message
    assert "inceptionv3-%s.params" % model_store.short_hash("inceptionv3") in message
    assert os.path.join(str(tmp_path), "models") in message
    assert "--feature-net-params" in message
    # gluoncv's own store address, as model_store.get_model_file builds it
    assert tried == ["https://apache-mxnet.s3-accelerate.dualstack.amazonaws.com/gluon/models/"
                     "inceptionv3-%s.zip" % model_store.short_hash("inceptionv3")]
    models = os.path.join(str(tmp_path), "models")
    assert not os.path.exists(models) or os.listdir(models) == []
