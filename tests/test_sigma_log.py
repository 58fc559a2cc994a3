"""The trainer's warm-up of u and the sigma log (sigma_log.py): sigmas.csv and sigma.png."""
import os

import numpy as np
import pytest

import sngan_gluon  # noqa: F401

from sngan_gluon.config import TrainConfig
from sngan_gluon.nn import SpectralNormMixin
from sngan_gluon.sigma_log import read_sigmas
from sngan_gluon.trainer import GANTrainer
from tiny_runs import WIDTHS


def _config(**kwargs):
    values = dict(dataset="synthetic", batch_size=8, iterations=4, log_every=2, sample_every=100,
                  checkpoint_every=100, quiet=True, seed=5, **WIDTHS)
    values.update(kwargs)
    return TrainConfig(**values)


# The standard CNN's D (table 3) by path: seven convolutions and the dense head, and the
# class embedding of the projection discriminator.
PLAIN_D_LAYERS = ["features.%d" % i for i in range(0, 14, 2)] + ["head.linear"]
CONDITIONAL_D_LAYERS = PLAIN_D_LAYERS + ["head.embed"]


def _layer(net, path):
    for key in path.split("."):
        net = net[int(key)] if key.isdigit() else getattr(net, key)
    return net


def _svd_sigma(layer):
    """The largest singular value of the weight seen as (outputs, -1): convolutions and dense
    layers keep their outputs on axis 0, an embedding its classes."""
    w = layer.weight.data().asnumpy().astype(np.float64)
    return np.linalg.norm(w.reshape(w.shape[0], -1), 2)


def test_first_step_divides_every_d_layer_by_its_svd_sigma_within_one_percent(dataset):
    # conditional: the projection discriminator has an SNEmbedding besides conv and dense
    trainer = GANTrainer(_config(conditional=True), dataset=dataset)
    kinds = [type(_layer(trainer.D, path)).__name__ for path in CONDITIONAL_D_LAYERS]
    assert kinds == ["SNConv2D"] * 7 + ["SNDense", "SNEmbedding"]
    for path in CONDITIONAL_D_LAYERS:
        layer = _layer(trainer.D, path)
        assert layer.sigma() == pytest.approx(_svd_sigma(layer), rel=0.01), path


def _rows(folder):
    return read_sigmas(os.path.join(folder, "sigmas.csv"))


def test_run_writes_each_d_layers_sigma_every_log_interval_and_plots_it(dataset, tmp_path):
    out = str(tmp_path / "run")
    trainer = GANTrainer(_config(iterations=3), dataset=dataset)
    trainer.train(out)
    layers, rows = _rows(out)
    assert layers == PLAIN_D_LAYERS
    assert [r["iteration"] for r in rows] == [2, 3]
    for path in layers:
        # the sigma the next forward divides by, of the raw weight (not of W / sigma = 1)
        assert rows[-1][path] == pytest.approx(_layer(trainer.D, path).sigma(), rel=1e-6), path
    assert os.path.getsize(os.path.join(out, "sigma.png")) > 0
    assert not [n for n in os.listdir(out) if n.startswith(".tmp")]


def test_without_sn_logs_plain_largest_singular_values_and_trains_as_without_the_log(
        dataset, tmp_path):
    logged = GANTrainer(_config(sn=False, iterations=2, log_every=1), dataset=dataset)
    logged.train(str(tmp_path / "logged"))
    quiet = GANTrainer(_config(sn=False, iterations=2, log_every=100), dataset=dataset)
    quiet.train(str(tmp_path / "quiet"))
    layers, rows = _rows(str(tmp_path / "logged"))
    assert [r["iteration"] for r in rows] == [1, 2]
    assert layers == PLAIN_D_LAYERS
    for path in layers:
        layer = _layer(logged.D, path)
        assert not isinstance(layer, SpectralNormMixin)
        assert rows[-1][path] == pytest.approx(_svd_sigma(layer), rel=0.01), path
    # the monitor's own u: nothing is written into the network
    names = [[n[len(net.prefix):] for n in net.collect_params()] for net in (logged.D, quiet.D)]
    assert names[0] == names[1]
    for a, b in zip(logged.D.collect_params().values(), quiet.D.collect_params().values()):
        np.testing.assert_array_equal(a.data().asnumpy(), b.data().asnumpy())


def test_resume_drops_rows_after_the_checkpoint_and_logs_the_same_sigmas(dataset, tmp_path):
    config = _config(iterations=6, checkpoint_every=3)
    run = str(tmp_path / "run")
    GANTrainer(config, dataset=dataset).train(run)
    with open(os.path.join(run, "sigmas.csv")) as f:
        straight = f.read()
    GANTrainer(config, dataset=dataset).train(
        run, resume=os.path.join(run, "checkpoints", "iter_0000003"))
    assert [r["iteration"] for r in _rows(run)[1]] == [2, 4, 6]
    with open(os.path.join(run, "sigmas.csv")) as f:
        assert f.read() == straight  # rows 4 and 6 once, with the straight run's values


def test_read_sigmas_skips_a_line_cut_short_and_keeps_rows_up_to_an_iteration(tmp_path):
    path = str(tmp_path / "sigmas.csv")
    with open(path, "w") as f:
        f.write("iteration,a,b\n2,1.5,2.5\n4,1.25,\n6,1.")
    layers, rows = read_sigmas(path, up_to=4)
    assert layers == ["a", "b"]
    assert rows == [dict(iteration=2, a=1.5, b=2.5), dict(iteration=4, a=1.25, b=None)]
    assert read_sigmas(str(tmp_path / "missing.csv")) == ([], [])


@pytest.mark.parametrize("stop_at", [None, 3])
def test_loss_and_sigma_plots_are_drawn_first_then_at_the_end_with_every_row(
        dataset, tmp_path, monkeypatch, stop_at):
    """Within REDRAW_SECONDS of the first drawing, a run logging every iteration draws each
    plot twice: at its first row and, however the run ends, with all its rows."""
    from sngan_gluon import run_folder, sigma_log
    drawn = {"loss": [], "sigma": []}
    monkeypatch.setattr(run_folder, "plot_curves", lambda rows, path: drawn["loss"].append(
        [r["iteration"] for r in rows]))
    monkeypatch.setattr(sigma_log, "plot_sigmas", lambda layers, rows, path, title: drawn[
        "sigma"].append([r["iteration"] for r in rows]))
    trainer = GANTrainer(_config(iterations=5, log_every=1), dataset=dataset)

    def fail(tr):
        if tr.iteration == stop_at:
            raise RuntimeError("stopped")
    trainer.extend(fail, every=1)
    if stop_at is None:
        trainer.train(str(tmp_path / "run"))
    else:
        with pytest.raises(RuntimeError, match="stopped"):
            trainer.train(str(tmp_path / "run"))
    last = stop_at or 5
    for name in ("loss", "sigma"):
        assert drawn[name] == [[1], list(range(1, last + 1))], name


def test_a_plot_that_cannot_be_drawn_at_the_end_does_not_hide_what_stopped_the_run(
        dataset, tmp_path, monkeypatch):
    """The second drawing of loss.png (the one at the end) fails: after an error, the error
    is what train() raises; after a run that went well, the failed drawing is."""
    from sngan_gluon import run_folder
    calls = []

    def plot(rows, path):
        calls.append(len(rows))
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
    monkeypatch.setattr(run_folder, "plot_curves", plot)

    def fail(tr):
        if tr.iteration == 3:
            raise RuntimeError("what stopped the run")
    trainer = GANTrainer(_config(iterations=5, log_every=1), dataset=dataset)
    trainer.extend(fail, every=1)
    with pytest.raises(RuntimeError, match="what stopped the run"):
        trainer.train(str(tmp_path / "run"))
    assert calls == [1, 3]  # the drawing at the end was tried, and failed
    calls.clear()
    with pytest.raises(run_folder.RunFolderWriteError, match="No space left"):
        GANTrainer(_config(iterations=3, log_every=1), dataset=dataset).train(
            str(tmp_path / "run2"))
    assert calls == [1, 3]
