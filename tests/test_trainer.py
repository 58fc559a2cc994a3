"""The training loop: outputs, resume equivalence, failure handling, checkpoints."""
import contextlib
import csv
import os
import signal

import numpy as np
import pytest

import sngan_gluon  # noqa: F401
import mxnet as mx
from mxnet import nd

from sngan_gluon import checkpoint as ckpt
from sngan_gluon.batches import BatchStream
from sngan_gluon.config import ConfigError, TrainConfig
from sngan_gluon.extensions import TrainingError
from sngan_gluon.terms import LeCam, Term
from sngan_gluon.trainer import GANTrainer
from tiny_runs import WIDTHS


def _config(**kwargs):
    values = dict(dataset="synthetic", batch_size=8, iterations=6, log_every=2, sample_every=3,
                  checkpoint_every=3, quiet=True, seed=3, **WIDTHS)
    values.update(kwargs)
    return TrainConfig(**values)


def _weights(trainer):
    params = list(trainer.G.collect_params().values()) + list(trainer.D.collect_params().values())
    return [p.data().asnumpy() for p in params]


def test_run_writes_every_output(dataset, tmp_path):
    out = str(tmp_path / "run")
    trainer = GANTrainer(_config(ema=0.9), dataset=dataset)
    history = trainer.train(out)
    assert [row["iteration"] for row in history] == [2, 4, 6]
    for name in ("config.json", "log.csv", "loss.png", "fixed_noise.npz"):
        assert os.path.getsize(os.path.join(out, name)) > 0, name
    assert sorted(os.listdir(os.path.join(out, "samples"))) == ["iter_0000003.png",
                                                                "iter_0000006.png"]
    saved = ckpt.list_checkpoints(os.path.join(out, "checkpoints"))
    assert [it for it, _ in saved] == [3, 6]
    assert sorted(os.listdir(saved[-1][1])) == sorted(
        ["generator.params", "discriminator.params", "generator_ema.params",
         "g_trainer.states", "d_trainer.states", "state.json"])
    with open(os.path.join(out, "log.csv")) as f:
        rows = list(csv.DictReader(f))
    assert [r["iteration"] for r in rows] == ["2", "4", "6"]
    for key in ("d_loss", "g_loss", "d_real", "d_fake", "lr", "images_per_s", "wall_time"):
        assert np.isfinite(float(rows[-1][key])), key
    assert TrainConfig.load(os.path.join(out, "config.json")) == trainer.config


@pytest.mark.parametrize("conditional,n_dis,lecam,mode_seeking", [
    (False, 2, 0.0, 0.0), (True, 1, 0.0, 1.0), (False, 1, 0.3, 0.0)])
def test_resume_continues_exactly(dataset, tmp_path, conditional, n_dis, lecam, mode_seeking):
    config = _config(iterations=6, n_dis=n_dis, conditional=conditional, ema=0.5,
                     lr_decay="linear", lecam=lecam, mode_seeking=mode_seeking)
    straight = GANTrainer(config, dataset=dataset)
    straight.train(str(tmp_path / "a"))
    resumed = GANTrainer(config, dataset=dataset)
    first_half = str(tmp_path / "a" / "checkpoints" / "iter_0000003")
    resumed.train(str(tmp_path / "b"), resume=first_half)
    assert resumed.iteration == 6
    for a, b in zip(_weights(straight), _weights(resumed)):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(straight.G_ema.collect_params().values(),
                    resumed.G_ema.collect_params().values()):
        np.testing.assert_array_equal(a.data().asnumpy(), b.data().asnumpy())
    if lecam:
        assert _lecam(resumed).state() == _lecam(straight).state() is not None


def _lecam(trainer):
    found = [t for t in trainer.updater.terms if isinstance(t, LeCam)]
    return found[0] if found else None


def test_lecam_anchors_track_d_and_change_its_update(dataset):
    """With --lecam, D's loss gains the penalty at anchors that follow D's mean outputs."""
    # the paper's widths: at the tests' narrow ones D's first outputs for real and fake
    # images lie on the sides of the anchors where the penalty is 0
    paper = dict(g_ch=None, d_ch=None)
    plain = GANTrainer(_config(**paper), dataset=dataset)
    reg = GANTrainer(_config(lecam=0.3, **paper), dataset=dataset)
    assert _lecam(plain) is None
    real, labels = next(iter(reg.updater.stream))
    d_plain = plain.updater.d_step(real, labels)
    d_reg = reg.updater.d_step(real, labels)
    (d_real, d_fake), = d_reg[1]
    np.testing.assert_allclose(_lecam(reg).state(), [d_real.mean().asscalar(),
                                                   d_fake.mean().asscalar()], rtol=1e-5)
    # the same weights, data and noise: the losses differ by 0.3 x the penalty
    np.testing.assert_allclose(d_reg[1][0][0].asnumpy(), d_plain[1][0][0].asnumpy(), rtol=1e-5)
    anchor_real, anchor_fake = _lecam(reg).anchors.on(reg.ctxs[0])
    penalty = float(np.mean(np.maximum(0, d_real.asnumpy() - anchor_fake.asscalar()) ** 2) +
                    np.mean(np.maximum(0, anchor_real.asscalar() - d_fake.asnumpy()) ** 2))
    assert penalty > 0
    assert d_reg[0][0].asscalar() == pytest.approx(d_plain[0][0].asscalar() + 0.3 * penalty,
                                                   rel=1e-5)
    # and so D's weights move differently
    assert any(not np.allclose(a, b) for a, b in zip(_weights(plain)[-4:], _weights(reg)[-4:]))


@pytest.mark.parametrize("conditional", [False, True])
def test_mode_seeking_adds_its_term_to_g_loss_over_pairs_sharing_a_label(dataset, conditional):
    """With --mode-seeking W, G's loss gains W x the term over adjacent pairs (same label)."""
    plain = GANTrainer(_config(conditional=conditional), dataset=dataset)
    seeking = GANTrainer(_config(conditional=conditional, mode_seeking=2.0), dataset=dataset)
    seen = []

    class Spy(Term):
        """Records G's labels (after the other terms), noise and images of a G step."""

        def g_labels(self, y):
            self.y = None if y is None else y.copy()
            return y

        def g_penalty(self, fake, z):
            seen.append((z, self.y, fake))

    for trainer in (plain, seeking):
        trainer.updater.terms.append(Spy())
    d_outs, g_loss = [], seeking.updater.g_loss_fn
    seeking.updater.g_loss_fn = lambda out: d_outs.append(out) or g_loss(out)
    loss_plain, = plain.updater.g_step()
    loss_seeking, = seeking.updater.g_step()
    (z, y, fake), (z_s, y_s, fake_s) = seen
    fakes, fakes_s = [fake], [fake_s]
    # the same noise is drawn; with a label each, pairs share their first one's
    np.testing.assert_array_equal(z.asnumpy(), z_s.asnumpy())
    if conditional:
        labels, paired = y, y_s
        np.testing.assert_array_equal(paired[0::2], labels[0::2])
        np.testing.assert_array_equal(paired[1::2], labels[0::2])
        assert (labels[1::2] != labels[0::2]).any()
    else:
        np.testing.assert_array_equal(fakes[0].asnumpy(), fakes_s[0].asnumpy())
    f, zz = fakes_s[0].asnumpy(), z_s.asnumpy()
    term = np.mean([1 / (np.abs(f[k] - f[k + 1]).mean() / np.abs(zz[k] - zz[k + 1]).mean() +
                         1e-5) for k in range(0, len(f), 2)])
    expected = -d_outs[0].mean().asscalar() + 2.0 * term
    assert loss_seeking.asscalar() == pytest.approx(expected, rel=1e-4)
    if not conditional:
        assert loss_seeking.asscalar() == pytest.approx(loss_plain.asscalar() + 2.0 * term,
                                                        rel=1e-4)
    with pytest.raises(ConfigError, match="even parts"):
        GANTrainer(_config(batch_size=6, cpus=2, mode_seeking=1.0), dataset=dataset)


def test_resume_restores_u_and_optimizer_state(dataset, tmp_path):
    trainer = GANTrainer(_config(iterations=3), dataset=dataset)
    trainer.train(str(tmp_path / "a"))
    fresh = GANTrainer(_config(iterations=3), dataset=dataset)
    fresh.load_checkpoint(str(tmp_path / "a" / "checkpoints" / "iter_0000003"))
    us = [n for n in trainer.D.collect_params() if n.endswith("_u")]
    assert len(us) == 8
    for name_a, name_b in zip(trainer.D.collect_params(), fresh.D.collect_params()):
        np.testing.assert_array_equal(trainer.D.collect_params()[name_a].data().asnumpy(),
                                      fresh.D.collect_params()[name_b].data().asnumpy())
    assert fresh.updater.d_trainer.optimizer.num_update == \
        trainer.updater.d_trainer.optimizer.num_update > 0


def test_nan_loss_stops_with_iteration_and_keeps_last_checkpoint(dataset, tmp_path):
    trainer = GANTrainer(_config(iterations=10, log_every=1, checkpoint_every=2), dataset=dataset)

    class Poison(Term):
        def d_penalty(self, d_real, d_fake, ctx):
            return d_real.mean() * float("nan") if trainer.iteration >= 3 else None

    trainer.updater.terms.append(Poison())
    with pytest.raises(TrainingError, match="NaN by iteration 4.*iter_0000002"):
        trainer.train(str(tmp_path / "run"))
    saved = ckpt.list_checkpoints(str(tmp_path / "run" / "checkpoints"))
    assert [it for it, _ in saved] == [2]
    restored = GANTrainer(_config(), dataset=dataset)
    restored.load_checkpoint(saved[0][1])
    assert all(np.isfinite(w).all() for w in _weights(restored))


@pytest.mark.parametrize("name", ["SIGINT", "SIGHUP"])
def test_a_stop_signal_writes_a_checkpoint_of_the_finished_iteration(dataset, tmp_path, name,
                                                                     stop_signals_not_ignored):
    """Ctrl-C, or SIGHUP as a closed terminal or Slurm sends (SIGTERM: tests/test_run_safety.py)."""
    trainer = GANTrainer(_config(iterations=50, checkpoint_every=100), dataset=dataset)
    number = getattr(signal, name)
    trainer.extend(lambda tr: os.kill(os.getpid(), number) if tr.iteration == 4 else None,
                   every=1)
    with pytest.raises(KeyboardInterrupt) as info:
        trainer.train(str(tmp_path / "run"))
    assert info.value.signal_name == name
    assert info.value.args[0].endswith("iter_0000004")
    assert ckpt.read_state(info.value.args[0])["iteration"] == 4


def test_failed_checkpoint_write_keeps_the_previous_one(dataset, tmp_path):
    trainer = GANTrainer(_config(iterations=3), dataset=dataset)
    trainer.train(str(tmp_path / "run"))
    ckpt_dir = str(tmp_path / "run" / "checkpoints")
    before = ckpt.list_checkpoints(ckpt_dir)

    def broken(path):
        with open(path, "w") as f:
            f.write("partial")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        ckpt.write_checkpoint(ckpt_dir, 3, {"generator.params": broken}, {"iteration": 3})
    assert ckpt.list_checkpoints(ckpt_dir) == before
    assert sorted(os.listdir(ckpt_dir)) == ["iter_0000003"]  # no temporary left behind
    ckpt.read_state(before[-1][1])
    trainer.load_checkpoint(before[-1][1])


def test_keeps_only_the_newest_checkpoints(dataset, tmp_path):
    trainer = GANTrainer(_config(iterations=8, checkpoint_every=1, keep_checkpoints=2,
                                 sample_every=100, log_every=100), dataset=dataset)
    trainer.train(str(tmp_path / "run"))
    saved = ckpt.list_checkpoints(str(tmp_path / "run" / "checkpoints"))
    assert [it for it, _ in saved] == [7, 8]


def test_batch_stream_resumes_mid_epoch(dataset):
    straight = iter(BatchStream(dataset, 100, seed=4))
    seq = [next(straight)[1].asnumpy() for _ in range(30)]  # crosses an epoch boundary
    stream = BatchStream(dataset, 100, seed=4)
    it = iter(stream)
    for _ in range(13):
        next(it)
    resumed = iter(BatchStream(dataset, 100, seed=4, epoch=stream.epoch, batch=stream.batch))
    for expected in seq[13:]:
        np.testing.assert_array_equal(next(resumed)[1].asnumpy(), expected)
    images, labels = next(iter(BatchStream(dataset, 16, seed=0, num_workers=2)))
    assert images.shape == (16, 3, 32, 32) and labels.dtype == np.int32
    assert -1 <= float(images.min().asscalar()) and float(images.max().asscalar()) <= 1


def test_learning_rate_decays_linearly_to_zero(dataset):
    trainer = GANTrainer(_config(iterations=10, lr=2e-4, lr_decay="linear"), dataset=dataset)
    assert trainer.updater.learning_rate(0) == pytest.approx(2e-4)
    assert trainer.updater.learning_rate(5) == pytest.approx(1e-4)
    assert trainer.updater.learning_rate(10) == pytest.approx(0.0)


def test_gradient_clipping_reaches_the_optimizer(dataset):
    assert GANTrainer(_config(clip_gr=0.5), dataset=dataset).updater.d_trainer.optimizer \
        .clip_gradient == 0.5
    assert GANTrainer(_config(clip_gr=0), dataset=dataset).updater.d_trainer.optimizer \
        .clip_gradient is None


def _all_weights(trainer):
    """Every parameter of G, D and G's EMA copy if any (SN's u and BatchNorm statistics
    included), every device, in order: [(name, array)] (names differ between two trainers
    by their prefix)."""
    nets = [net for net in (trainer.G, trainer.D, trainer.G_ema) if net is not None]
    params = [p for net in nets for p in net.collect_params().values()]
    return [("%s@%d" % (p.name, i), d.asnumpy()) for p in params
            for i, d in enumerate(p.list_data())]


@pytest.mark.parametrize("options", [dict(), dict(conditional=True, mode_seeking=1.0, cpus=2)])
def test_g_step_without_d_weight_gradients_keeps_weights_bit_identical(dataset, options):
    """The G step leaves D's weight gradients out (InputGradientOnly); the weights after
    a few iterations equal, bit for bit, those of the same run computing them."""
    weights = []
    for skip in (True, False):
        trainer = GANTrainer(_config(**options), dataset=dataset)
        if not skip:  # the path before the change: D's weight gradients computed in the G step
            trainer.updater._d_input_only = contextlib.nullcontext()
        for _ in range(3):
            trainer.updater.update()
        nd.waitall()
        weights.append(_all_weights(trainer))
    assert len(weights[0]) == len(weights[1])
    for (name, new), (_, old) in zip(*weights):
        np.testing.assert_array_equal(new, old, err_msg=name)


def test_g_step_leaves_d_weight_gradients_of_the_d_step(dataset):
    trainer = GANTrainer(_config(), dataset=dataset)
    updater, d_step = trainer.updater, trainer.updater.d_step
    d_params = [p for p in trainer.D.collect_params().values() if p.grad_req != "null"]
    after_d_step = {}

    def recording_d_step(*args):
        out = d_step(*args)
        after_d_step.update({p.name: p.grad().asnumpy() for p in d_params})
        return out

    updater.d_step = recording_d_step
    updater.update()
    for p in d_params:  # bit-identical: the G step wrote nothing into D's gradients
        np.testing.assert_array_equal(p.grad().asnumpy(), after_d_step[p.name], err_msg=p.name)
    # and the next D step still writes D's gradients (the requests are restored)
    first = dict(after_d_step)
    updater.update()
    for p in d_params:  # (a bias's hinge gradient can be 0 in both: weights only)
        if p.name.endswith("weight"):
            assert not np.array_equal(p.grad().asnumpy(), first[p.name]), p.name


def test_ema_decay_warms_up_to_the_configured_decay(dataset):
    ema = GANTrainer(_config(ema=0.999), dataset=dataset).updater.ema
    assert ema.decay_at(0) == pytest.approx(0.1)
    assert ema.decay_at(90) == pytest.approx(0.91)
    assert ema.decay_at(10 ** 6) == pytest.approx(0.999)
    assert ema.decay_at(8990) == pytest.approx(0.999)
    assert ema.decay_at(8000) < 0.999


def test_ema_update_averages_every_parameter_with_the_warmed_up_decay(dataset):
    trainer = GANTrainer(_config(ema=0.9), dataset=dataset)
    pairs = list(zip(trainer.G.collect_params().values(),
                     trainer.G_ema.collect_params().values()))
    rng = np.random.RandomState(0)
    before = []
    for param, ema in pairs:
        param.set_data(nd.array(rng.normal(size=param.shape)))
        ema.set_data(nd.array(rng.normal(size=param.shape)))
        before.append((param.data().asnumpy(), ema.data().asnumpy()))
    trainer.updater.ema.update(4)  # decay min(0.9, 5 / 14)
    decay = 5.0 / 14.0
    for (param, ema), (g, e) in zip(pairs, before):
        np.testing.assert_allclose(ema.data().asnumpy(), decay * e + (1 - decay) * g,
                                   rtol=1e-5, atol=1e-6, err_msg=ema.name)
        np.testing.assert_array_equal(param.data().asnumpy(), g)  # G itself is untouched


def test_images_per_second_counts_training_time_and_not_evaluation(dataset, tmp_path):
    """A fake clock: every reading advances it 5 s, so each iteration (one reading before
    it, one after the wait for it) takes 5 s of training, and evaluation 1000 s. Every
    window (2 iterations of 8 images) must report 16 / 10 images/s."""
    class Clock:
        now = 0.0

        def __call__(self):
            self.now += 5.0
            return self.now

    clock = Clock()

    def slow_evaluator(_):
        clock.now += 1000.0
        return {}

    trainer = GANTrainer(_config(eval_every=2, checkpoint_every=2, sample_every=2), dataset=dataset)
    trainer.clock = clock
    history = trainer.train(str(tmp_path / "run"), evaluator=slow_evaluator)
    assert [row["iteration"] for row in history] == [2, 4, 6]
    assert [row["images_per_s"] for row in history] == pytest.approx([1.6, 1.6, 1.6])
    assert history[1]["wall_time"] - history[0]["wall_time"] > 1000


class _Marker(mx.operator.CustomOp):
    """Adds 0 to G's loss and counts, as the devices run it, that G's loss was computed."""

    computed = []

    def forward(self, is_train, req, in_data, out_data, aux):
        _Marker.computed.append(1)
        self.assign(out_data[0], req[0], in_data[0] * 0)

    def backward(self, req, out_grad, in_data, out_data, in_grad, aux):
        self.assign(in_grad[0], req[0], out_grad[0] * 0)


@mx.operator.register("sngan_test_marker")
class _MarkerProp(mx.operator.CustomOpProp):
    def list_arguments(self):
        return ["data"]

    def infer_shape(self, in_shape):
        return in_shape, in_shape, []

    def create_operator(self, ctx, shapes, dtypes):
        return _Marker()


def test_progress_bar_counts_finished_iterations(dataset, tmp_path):
    """When the bar shows n, iteration n's generator loss has been computed on the device.

    MXNet runs the queued work asynchronously; a bar advanced as iterations are
    queued runs ahead of the work (and so do its rate and ETA).
    """
    class Counted(Term):
        def g_penalty(self, fake, z):
            return nd.Custom(fake.mean(), op_type="sngan_test_marker")

    class Bar:
        def __init__(self, total, initial):
            self.n, self.total, self.seen = initial, total, []

        def update(self, n):
            self.n += n
            self.seen.append((self.n, len(_Marker.computed)))

        def set_postfix(self, **values):
            pass

        def close(self):
            pass

    bars = []
    trainer = GANTrainer(_config(iterations=8, log_every=100, sample_every=100,
                                 checkpoint_every=100), dataset=dataset)
    trainer.updater.terms.append(Counted())
    del _Marker.computed[:]
    trainer.train(str(tmp_path / "run"), progress=lambda **kw: bars.append(Bar(**kw)) or bars[-1])
    assert bars[0].total == 8
    assert [n for n, _ in bars[0].seen] == list(range(1, 9))
    assert all(computed >= n for n, computed in bars[0].seen), bars[0].seen


def test_init_and_g_bn_momentum_reach_the_networks(dataset):
    """--init pytorch redraws D's weights (repeatably per seed); --g-bn-momentum sets
    every BatchNorm of G and of its EMA copy."""
    arch = GANTrainer(_config(), dataset=dataset)
    torch_like = GANTrainer(_config(init="pytorch", g_bn_momentum=0.81, ema=0.9), dataset=dataset)
    again = GANTrainer(_config(init="pytorch", g_bn_momentum=0.81, ema=0.9), dataset=dataset)

    def first(trainer):  # D's first convolution's weight, (64, 3, 3, 3)
        return list(trainer.D.collect_params(".*conv.*weight").values())[0]
    w_arch, w_torch = first(arch).data().asnumpy(), first(torch_like).data().asnumpy()
    assert abs(w_arch.std() - 0.02) < 0.002                     # Normal(0.02)
    assert abs(w_torch.std() * np.sqrt(3 * 27) - 1) < 0.1         # U(+-1/sqrt(3*3*3))
    np.testing.assert_array_equal(w_torch, first(again).data().asnumpy())
    for net in (torch_like.G, torch_like.G_ema):
        momenta = []
        net.apply(lambda b: momenta.append(b._kwargs["momentum"])
                  if isinstance(b, mx.gluon.nn.BatchNorm) else None)
        assert momenta and set(momenta) == {0.81}
    with pytest.raises(ConfigError, match="--g-bn-momentum must be in"):
        _config(g_bn_momentum=1.0).validate()
    with pytest.raises(ConfigError, match="choose from arch, pytorch"):
        _config(init="kaiming").validate()


def test_g_bn_momentum_moves_only_g_running_statistics(dataset, tmp_path):
    """Training normalizes G's batches by their own statistics, so --g-bn-momentum
    changes what sampling uses (G's running statistics, and the EMA copy's) and
    not one bit of any trained weight of G or D."""
    weights = []
    for momentum in (0.9, 0.81):
        # two D steps an iteration, a sample grid and a checkpoint on the way
        trainer = GANTrainer(_config(g_bn_momentum=momentum, n_dis=2, ema=0.9, iterations=4),
                             dataset=dataset)
        trainer.train(str(tmp_path / str(momentum)), progress=False)
        d_names = {p.name for p in trainer.D.collect_params().values()}
        weights.append(_all_weights(trainer))
    assert len(weights[0]) == len(weights[1])
    running = 0
    for (name, slow), (_, fast) in zip(*weights):
        if "_running_" in name:
            running += 1
            assert name.split("@")[0] not in d_names, name
            assert not np.array_equal(fast, slow), name
        else:
            np.testing.assert_array_equal(fast, slow, err_msg=name)
    assert running
