"""Specification of the layer sigmas and spectra (sngan_gluon.spectra) and of
``python -m sngan_gluon.spectra_report``."""
import os
import subprocess
import sys

import numpy as np
import pytest

import sngan_gluon  # noqa: F401  (makes mxnet importable on every Python)
import mxnet as mx
from mxnet import autograd, nd

from sngan_gluon.cli import spectra_report as spectra_cli
from sngan_gluon.data import get_dataset
from sngan_gluon.fileio import file_digest
from sngan_gluon.models import get_discriminator
from sngan_gluon.nn import spectral_norm, warm_up
from sngan_gluon.spectra import (SigmaMonitor, layer_sigmas, layer_spectra, load_discriminator,
                                 weight_layers)
from tiny_runs import ITERATIONS, train_tiny_run

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PATHS = ["features.%d" % i for i in range(0, 14, 2)] + ["head.linear", "head.embed"]


@pytest.fixture(scope="module")
def runs(tiny_runs, tmp_path_factory):
    """Tiny runs of the conditional DCGAN on synthetic data (tests/tiny_runs.py), with SN
    (the session's conditional run) and without; read only."""
    base = tmp_path_factory.mktemp("runs")
    no_sn = train_tiny_run(base / "no_sn", get_dataset("synthetic", image_size=32),
                           base / "data", conditional=True, sn=False)
    return {"sn": tiny_runs["cond"], "no_sn": no_sn}


def _net(sn, seed=0):
    mx.random.seed(seed)
    net = get_discriminator("dcgan", sn=sn, num_classes=3, ch=64)
    net.initialize()
    net(nd.ones((2, 3, 32, 32)), nd.array([0, 1]))
    return net


def _svd_top(layer):
    w = layer.weight.data().asnumpy()
    w = w.swapaxes(0, 1) if type(layer).__name__.endswith("Transpose") else w
    return np.linalg.svd(w.reshape(w.shape[0], -1), compute_uv=False)[0]


def _values(net):
    return {k: p.data().asnumpy() for k, p in net.collect_params().items()}


def test_weight_layers_are_named_by_their_path():
    assert list(weight_layers(_net(True))) == PATHS
    assert list(weight_layers(_net(False))) == PATHS


def test_sn_layer_sigma_is_the_one_its_next_forward_divides_by():
    net = warm_up(_net(True))
    before = _values(net)
    sigmas = layer_sigmas(net)
    for path, layer in weight_layers(net).items():
        assert sigmas[path] == pytest.approx(layer.sigma(), rel=1e-6)
        assert sigmas[path] == pytest.approx(_svd_top(layer), rel=0.01)
    after = _values(net)
    assert all(np.array_equal(before[k], after[k]) for k in before)  # u not advanced


def test_plain_layer_sigma_is_estimated_without_touching_the_network_or_mxnet_seed():
    net = _net(False)
    before = _values(net)
    mx.random.seed(7)
    expected_draw = nd.random.uniform(shape=(3,)).asnumpy()
    mx.random.seed(7)
    sigmas = layer_sigmas(net)
    assert np.array_equal(nd.random.uniform(shape=(3,)).asnumpy(), expected_draw)
    for path, layer in weight_layers(net).items():
        assert sigmas[path] == pytest.approx(_svd_top(layer), rel=0.01), path
    after = _values(net)
    assert set(after) == set(before)
    assert all(np.array_equal(before[k], after[k]) for k in before)


def test_sigma_monitor_follows_a_plain_network_as_it_trains():
    net = _net(False)
    monitor = SigmaMonitor(net)
    first = monitor()
    layer = net.features[0]
    layer.weight.set_data(layer.weight.data() * 3)
    second = monitor()
    assert second["features.0"] == pytest.approx(3 * first["features.0"], rel=1e-3)
    assert second["head.linear"] == pytest.approx(first["head.linear"], rel=1e-6)


def test_sigmas_of_a_converted_network_under_static_alloc_follow_training():
    net = spectral_norm(_net(False))
    net.hybridize(static_alloc=True, static_shape=True)
    monitor = SigmaMonitor(net)
    x, y = nd.ones((2, 3, 32, 32)), nd.array([0, 1])
    for _ in range(3):
        with autograd.record():
            net(x, y)
    sigmas = monitor()
    for path, layer in weight_layers(net).items():
        assert sigmas[path] == pytest.approx(layer.sigma(), rel=1e-6)


def test_spectra_of_sn_layers_peak_at_one_and_plain_ones_at_their_sigma():
    sn = layer_spectra(warm_up(_net(True)))
    plain_net = _net(False)
    plain = layer_spectra(plain_net)
    assert list(sn) == list(plain) == PATHS
    for path in PATHS:
        assert sn[path][0] == pytest.approx(1.0, rel=0.01)
        assert np.all(np.diff(sn[path]) <= 1e-12)  # descending
    for path, layer in weight_layers(plain_net).items():
        assert plain[path][0] == pytest.approx(_svd_top(layer), rel=1e-5)


def test_load_discriminator_restores_the_saved_weights(runs):
    net, info = load_discriminator(runs["sn"])
    assert info["sn"] and info["iteration"] == ITERATIONS and info["arch"] == "dcgan"
    params = mx.nd.load(os.path.join(info["path"], "discriminator.params"))
    for key, param in net._collect_params_with_prefix().items():
        np.testing.assert_array_equal(param.data().asnumpy(), params[key].asnumpy())
    assert not load_discriminator(runs["no_sn"])[1]["sn"]


def test_inspect_prints_each_layer_and_plots_both_runs(runs, tmp_path, capsys):
    out = str(tmp_path / "spectra.png")
    assert spectra_cli.main(["--checkpoint", runs["sn"], "--compare", runs["no_sn"],
                             "--out", out]) == 0
    printed = capsys.readouterr().out
    names = [os.path.basename(runs[name]) for name in ("sn", "no_sn")]
    assert "%s (SN, iteration %d)" % (names[0], ITERATIONS) in printed
    assert "%s (no SN, iteration %d)" % (names[1], ITERATIONS) in printed
    for path in PATHS:
        assert printed.count("  %s " % path) == 2  # one row per run
    with open(out, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"


def test_inspect_of_a_missing_checkpoint_says_so_in_one_line(tmp_path, capsys):
    code = spectra_cli.main(["--checkpoint", str(tmp_path / "nowhere"),
                             "--out", str(tmp_path / "s.png")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "does not exist" in err
    assert not os.path.exists(str(tmp_path / "s.png"))


def test_inspect_of_a_corrupt_checkpoint_says_so_and_changes_nothing(runs, tmp_path, capsys):
    import shutil
    run = str(tmp_path / "broken")
    shutil.copytree(runs["sn"], run)
    ckpt = os.path.join(run, "checkpoints", "iter_%07d" % ITERATIONS)
    params = os.path.join(ckpt, "discriminator.params")
    with open(params, "wb") as f:
        f.write(b"not mxnet parameters")
    digests = {name: file_digest(os.path.join(ckpt, name)) for name in os.listdir(ckpt)}
    assert spectra_cli.main(["--checkpoint", run, "--out", str(tmp_path / "s.png")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: cannot load") and err.count("\n") == 1
    assert digests == {name: file_digest(os.path.join(ckpt, name)) for name in os.listdir(ckpt)}
    with open(os.path.join(ckpt, "state.json"), "w") as f:
        f.write("{truncated")
    assert spectra_cli.main(["--checkpoint", ckpt, "--out", str(tmp_path / "s.png")]) == 2
    assert "cannot read state.json" in capsys.readouterr().err


def test_spectra_report_runs_as_a_module(tmp_path):
    env = dict(os.environ, PYTHONPATH=ROOT, OMP_NUM_THREADS="1")
    result = subprocess.run([sys.executable, "-m", "sngan_gluon.spectra_report", "--checkpoint",
                             str(tmp_path / "nowhere")], cwd=str(tmp_path), env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and "does not exist" in result.stderr
    assert "Traceback" not in result.stderr
