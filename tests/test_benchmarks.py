"""The offline quality benchmark runs end to end and reports consistent figures."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from sngan_gluon.sampling import LoadedGenerator
from benchmark_scripts import import_benchmark

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
        tmp_path, "--iterations", "3", "--batch-size", "8", "--num", "60", "--judge-every", "50",
        "--diffaugment", "translation", "--lecam", "0.3", "--beta1", "0", "--conditional",
        "--loss", "bce", "--mode-seeking", "1", "--judge-epochs", "5")
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
    return import_benchmark("quality_digits")


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


def test_the_class_balanced_figure_removes_the_cost_of_wrong_proportions(digits,
                                                                         cnn_judge_net):
    q = import_quality_digits()
    from sngan_gluon.data import to_tensor
    train, test = digits
    judge = q.Judge(cnn_judge_net, train, test)  # q.train_classifier(train, test, epochs=4)
    # real training digits, but 3s and 8s make up 60% of them
    counts = np.where(np.isin(np.arange(10), (3, 8)), 300, 50)
    index = q.draw_by_class(train.labels, counts, np.random.RandomState(0))
    figures = judge(to_tensor(train.images[index]))
    assert figures["class_shares"][3] > 0.25 and figures["class_shares"][8] > 0.25
    assert figures["balanced_over_floor"] < 0.7 * figures["fid_over_floor"]


# ------------------------------------------------------------ quality parity with PyTorch

def _copy_generator(Gm, Gt):
    """Package generator ``Gm`` -> reference ``Gt`` (same layouts: a Dense weight is
    (out, in) in both, a transposed convolution's (in, out, kh, kw) in both)."""
    import torch
    pairs = [(Gt.dense, Gm.dense), (Gt.bn0, Gm.bn0)]
    t_layers = [m for m in Gt.blocks if not isinstance(m, torch.nn.ReLU)]
    for i, block in enumerate(Gm.blocks):
        pairs += [(t_layers[2 * i], block.deconv), (t_layers[2 * i + 1], block.bn)]
    pairs.append((Gt.out, Gm.out))
    with torch.no_grad():
        for t, m in pairs:
            if isinstance(t, torch.nn.BatchNorm2d):
                sources = {"weight": m.gamma, "bias": m.beta, "running_mean": m.running_mean,
                           "running_var": m.running_var}
            else:
                sources = {"weight": m.weight, "bias": m.bias}
            for name, param in sources.items():
                getattr(t, name).copy_(torch.from_numpy(param.data().asnumpy()))


def _copy_discriminator(Dm, Dt, ref):
    """Package discriminator ``Dm`` -> reference ``Dt`` (spectral norm added here), with
    ``u`` (and PyTorch's ``v``) set to each weight's exact top singular vectors in both."""
    import torch
    from mxnet import nd
    t_layers = [m for m in Dt.features if isinstance(m, torch.nn.Conv2d)] + [Dt.head]
    m_layers = list(Dm.features)[0::2] + [Dm.head.linear]
    with torch.no_grad():
        for t, m in zip(t_layers, m_layers):
            t.weight.copy_(torch.from_numpy(m.weight.data().asnumpy()))
            t.bias.copy_(torch.from_numpy(m.bias.data().asnumpy()))
    ref.add_spectral_norm(Dt)
    with torch.no_grad():
        for t, m in zip(t_layers, m_layers):
            w = m.weight.data().asnumpy().reshape(m.weight.shape[0], -1)
            u, _, vt = np.linalg.svd(w.astype(np.float64))
            t.parametrizations.weight[0]._u.copy_(torch.from_numpy(u[:, 0].astype(np.float32)))
            t.parametrizations.weight[0]._v.copy_(torch.from_numpy(vt[0].astype(np.float32)))
            m.u.set_data(nd.array(u[None, :, 0]))


def test_reference_generator_computes_the_package_generator():
    """Same weights, same noise: the same images, with batch and with running statistics."""
    torch = pytest.importorskip("torch")
    import mxnet as mx
    from mxnet import autograd, nd
    from sngan_gluon.models.dcgan import DCGANGenerator
    ref = import_benchmark("reference_torch")
    mx.random.seed(0)
    Gm = DCGANGenerator(z_dim=100, ch=64)
    Gm.initialize()
    rng = np.random.RandomState(0)
    for param in Gm.collect_params(".*running.*").values():  # not the trivial 0 / 1
        param.set_data(nd.array(rng.uniform(0.5, 1.5, param.shape)))
    Gm.hybridize()
    Gt = ref.Generator(z_dim=100, ch=64)
    _copy_generator(Gm, Gt)
    z = rng.normal(size=(8, 100)).astype(np.float32)
    Gt.eval()
    with torch.no_grad():
        np.testing.assert_allclose(Gt(torch.from_numpy(z)).numpy(), Gm(nd.array(z)).asnumpy(),
                                   atol=1e-5)
        Gt.train()
        expected = Gt(torch.from_numpy(z)).numpy()
    with autograd.train_mode():
        np.testing.assert_allclose(expected, Gm(nd.array(z)).asnumpy(), atol=1e-5)


def test_reference_discriminator_computes_the_package_discriminator_and_its_gradients():
    """Same weights and singular vectors: the same logits and the same weight gradients."""
    torch = pytest.importorskip("torch")
    import mxnet as mx
    from mxnet import autograd, nd
    from sngan_gluon.models.dcgan import DCGANDiscriminator
    ref = import_benchmark("reference_torch")
    mx.random.seed(0)
    Dm = DCGANDiscriminator(ch=64)
    Dm.initialize()
    x = np.random.RandomState(1).uniform(-1, 1, (6, 3, 32, 32)).astype(np.float32)
    Dm(nd.array(x))
    Dm.hybridize()
    Dt = ref.Discriminator(ch=64)
    _copy_discriminator(Dm, Dt, ref)
    Dt.eval()  # u and v stay the exact singular vectors; the package's step keeps them
    out_t = Dt(torch.from_numpy(x))
    (out_t[:3].sum() - 2 * out_t[3:].sum()).backward()
    with autograd.record():
        out_m = Dm(nd.array(x))
        loss = out_m[:3].sum() - 2 * out_m[3:].sum()
    loss.backward()
    np.testing.assert_allclose(out_t.detach().numpy(), out_m.asnumpy(), rtol=1e-4, atol=1e-6)
    t_layers = [m for m in Dt.features if isinstance(m, torch.nn.Conv2d)] + [Dt.head]
    m_layers = list(Dm.features)[0::2] + [Dm.head.linear]
    for t, m in zip(t_layers, m_layers):
        grad_t = t.parametrizations.weight.original.grad.numpy()
        grad_m = m.weight.grad().asnumpy()
        assert np.linalg.norm(grad_t - grad_m) < 1e-3 * np.linalg.norm(grad_t), m.name


def test_reference_torch_trains_and_writes_samples_in_the_npz_contract(tmp_path):
    pytest.importorskip("torch")
    pytest.importorskip("sklearn")
    ref = import_benchmark("reference_torch")
    out = tmp_path / "samples.npz"
    ref.main(["--iterations", "2", "--num", "10", "--out", str(out)])
    with np.load(str(out)) as f:
        images = f["images"]
    assert images.dtype == np.uint8 and images.shape == (10, 32, 32, 3)
    assert images.std() > 0


def test_reference_bn_stats_g_step_leaves_running_statistics_to_the_g_step():
    pytest.importorskip("torch")
    ref = import_benchmark("reference_torch")
    images = np.random.RandomState(0).randint(0, 256, (64, 32, 32, 3)).astype(np.uint8)
    var = {}
    for mode in ("both", "g_step"):
        G = ref.train(images, 1, batch_size=8, bn_stats=mode, log_every=0)
        var[mode] = G.bn0.running_var.detach().numpy()
    # running_var starts at 1 and each update takes 0.9 of it: two updates against one
    assert np.allclose(var["both"], 0.81 + 0.19 * (var["g_step"] - 0.9) / 0.1, atol=0.1)
    assert (var["g_step"] > var["both"]).all()


def test_reference_bn_momentum_moves_only_g_running_statistics():
    """The replica's counterpart of the package's momentum test: in training G normalizes
    each batch by its own statistics, so PyTorch momenta 0.1 and 0.19 (Gluon's 0.9 and
    0.81) train the same weights, for both networks, and differ in G's running ones."""
    torch = pytest.importorskip("torch")
    ref = import_benchmark("reference_torch")
    images = np.random.RandomState(0).randint(0, 256, (32, 16, 16, 3)).astype(np.uint8)
    runs = [ref.train(images, 4, batch_size=8, init="normal", bn_stats="g_step",
                      bn_momentum=m, log_every=0).state_dict() for m in (0.1, 0.19)]
    assert runs[0].keys() == runs[1].keys()
    running = [name for name in runs[0] if "running_" in name]
    assert running
    for name in runs[0]:
        if name in running:
            assert not torch.equal(runs[0][name], runs[1][name]), name
        else:
            assert torch.equal(runs[0][name], runs[1][name]), name


def test_reference_torch_stopped_and_resumed_ends_as_the_run_that_was_not_stopped(tmp_path):
    """A checkpoint carries networks, optimizers, noise and the data's epoch order: the
    resumed run (stopped within an epoch or at its end, 3 batches an epoch) is bit for bit
    the straight one."""
    torch = pytest.importorskip("torch")
    ref = import_benchmark("reference_torch")
    images = np.random.RandomState(0).randint(0, 256, (24, 16, 16, 3)).astype(np.uint8)
    straight = ref.train(images, 5, batch_size=8, log_every=0).state_dict()
    for every in (2, 3):
        path = str(tmp_path / ("state%d.pt" % every))
        stopped = ref.train(images, every + 1, batch_size=8, log_every=0, checkpoint=path,
                            checkpoint_every=every).state_dict()  # stopped after a checkpoint
        assert torch.load(path, weights_only=False)["iteration"] == every
        assert not all(torch.equal(stopped[name], straight[name]) for name in straight)
        resumed = ref.train(images, 5, batch_size=8, log_every=0, checkpoint=path,
                            checkpoint_every=every).state_dict()
        assert resumed.keys() == straight.keys()
        for name in straight:
            assert torch.equal(resumed[name], straight[name]), (every, name)


@pytest.mark.slow
def test_quality_parity_trains_and_judges_every_implementation_under_both_judges(tmp_path):
    pytest.importorskip("torch")
    pytest.importorskip("sklearn")
    out = str(tmp_path / "parity")
    command = [sys.executable, os.path.join(ROOT, "benchmarks", "quality_parity.py"),
               "--out-dir", out, "--iterations", "2", "--seeds", "0", "--num", "60",
               "--standing-batches", "2",
               "--set", "batch_size=8",
               "--torch", "batch_size=8"]
    result = subprocess.run(command, cwd=str(tmp_path), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-2000:]
    with open(os.path.join(out, "parity.json")) as f:
        figures = json.load(f)
    assert set(figures["runs"]) == {"package", "package-batch", "package-standing",
                                    "package-ema", "package-ema-standing", "torch",
                                    "torch-nobn0"}
    stored = import_benchmark("stored_judges")
    assert set(figures["judges"]) == {"cnn", "mlp"}
    for name, judge in figures["judges"].items():  # judged by the project's stored judges
        assert judge["sha256"] == stored.sha256(os.path.join(stored.JUDGES,
                                                             stored.FILES[name][0]))
    for runs in figures["runs"].values():
        assert set(runs) == {"0"} and set(runs["0"]) == {"cnn", "mlp"}
        assert runs["0"]["cnn"]["fid"] > 0 and runs["0"]["mlp"]["fid"] > 0
    # one table, every row under both judges, and no verdict from one seed a row
    assert result.stdout.count("| reference B (no BatchNorm after the dense layer) | 0 |") == 1
    assert "judge 2: undecided (package 1 of 5 seeds, " in result.stdout
    # the variants of one run differ: batch and standing statistics, EMA weights
    fids = {name: runs["0"]["mlp"]["fid"] for name, runs in figures["runs"].items()}
    assert len({round(fids[name], 6) for name in fids if name.startswith("package")}) == 5
    # a second start trains nothing: every run is finished
    again = subprocess.run(command, cwd=str(tmp_path), stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True, timeout=600)
    assert again.returncode == 0 and " min in this process" not in again.stdout
    assert result.stdout.count(" min in this process") == 3


@pytest.mark.slow
def test_the_package_runs_ema_shadow_leaves_the_trained_generator_as_train_py_trains_it():
    """quality_parity keeps an EMA generator beside the package's runs: G's weights and
    running statistics after a few iterations are bit for bit those of a run without one."""
    q = import_benchmark("quality_parity")
    from sngan_gluon.data import get_dataset
    from sngan_gluon.trainer import GANTrainer
    data = get_dataset("digits", image_size=32, channels=3, train=True)
    weights = []
    for overrides in ({"ema": 0.0}, {}):
        config = q.package_config(2, 0, dict(overrides, batch_size=8))
        trainer = GANTrainer(config, dataset=data)
        for _ in range(2):
            trainer.updater.update()
        weights.append({k[len(trainer.G.prefix):]: v.data().asnumpy()
                        for k, v in trainer.G.collect_params().items()})
    assert q.package_config(3, 0).ema == q.SHADOW_EMA > 0
    assert weights[0].keys() == weights[1].keys()
    for name in weights[0]:
        np.testing.assert_array_equal(weights[0][name], weights[1][name], err_msg=name)


def test_pytorch_init_draws_as_the_references_default_layers():
    """``--init pytorch`` gives each layer of the standard CNN the bound and spread that
    PyTorch's default initialization gives the same layer of the reference."""
    torch = pytest.importorskip("torch")
    import mxnet as mx
    from mxnet import nd
    from sngan_gluon.models import apply_init, get_discriminator, get_generator
    from sngan_gluon.spectra import weight_layers
    ref = import_benchmark("reference_torch")
    torch.manual_seed(0)
    mx.random.seed(0)
    triples = [(get_generator("dcgan", z_dim=100, ch=64), ref.Generator(z_dim=100, ch=64),
                nd.zeros((2, 100))),
               (get_discriminator("dcgan", ch=64), ref.Discriminator(ch=64),
                nd.zeros((2, 3, 32, 32)))]
    torch_kinds = (torch.nn.Linear, torch.nn.Conv2d, torch.nn.ConvTranspose2d)
    for package, reference, x in triples:
        package.initialize()
        package(x)  # shapes known
        apply_init(package, "pytorch")
        mine = list(weight_layers(package).values())  # no embedding in these two
        theirs = [m for m in reference.modules() if isinstance(m, torch_kinds)]
        assert len(mine) == len(theirs) >= 5
        for m, t in zip(mine, theirs):
            fan_in, _ = torch.nn.init._calculate_fan_in_and_fan_out(t.weight)
            for p, q in ((m.weight, t.weight), (m.bias, t.bias)):
                a, b = p.data().asnumpy(), q.detach().numpy()
                assert a.shape == b.shape, (p.name, a.shape, b.shape)
                assert np.abs(a).max() <= (1 + 1e-6) / np.sqrt(fan_in), p.name  # torch's bound
                if a.size >= 500:
                    np.testing.assert_allclose(a.std(), b.std(), rtol=0.1, err_msg=p.name)


def test_quality_parity_merges_a_report_only_when_judged_by_the_same_judges():
    q = import_benchmark("quality_parity")
    about = {"cnn": {"accuracy": 0.983, "floor": 10.05, "sha256": "c0"},
             "mlp": {"accuracy": 0.992, "floor": 2.85, "sha256": "e1"}}
    row = {"cnn": {"fid": 40.0, "classes_with_5pct": 10},
           "mlp": {"fid": 12.0, "classes_with_5pct": 10}}
    report = {"iterations": 1500, "runs": {"package": {"1": row}, "torch": {"0": row}},
              "judges": json.loads(json.dumps(about))}
    table = {"package": [(0, dict(row, cnn={"fid": 50.0, "classes_with_5pct": 9}))]}
    q.merge_report(table, json.loads(json.dumps(report)), about, 1500)
    assert sorted(seed for seed, _ in table["package"]) == [0, 1]
    assert table["torch"] == [(0, row)]
    text = q.format_table(table, ["cnn", "mlp"])
    assert ("| package (what `generate` draws) | 0, 1 | 50.00, 40.00 | 45.00 | 10.00 "
            "| 12.00, 12.00 | 12.00 | 0.00 | 9, 10; 10, 10 |") in text
    # merging the same report again changes nothing: its rows are the ones already here,
    # and the same samples judged on another CPU may differ by parts in a million
    q.merge_report(table, report, about, 1500)
    here = {"cnn": {"fid": 40.0 * (1 + 1e-6)}, "mlp": {"fid": 12.0}}
    jittered = {"torch": [(0, here)]}
    q.merge_report(jittered, report, about, 1500)
    assert len(table["package"]) == 2 and len(table["torch"]) == 1
    assert jittered["torch"] == [(0, here)]  # this machine's figures are kept
    near = dict(about, cnn=dict(about["cnn"], floor=10.05 * (1 + 1e-6)))
    q.merge_report({}, report, near, 1500)
    for judge in (dict(about["cnn"], sha256="c1"), dict(about["cnn"], floor=10.06)):
        with pytest.raises(SystemExit, match="judge 'cnn' is not this one"):
            q.merge_report({}, report, dict(about, cnn=judge), 1500)
    with pytest.raises(SystemExit, match="runs of 1500 iterations, not 750"):
        q.merge_report({}, report, about, 750)
    clash = {"package": [(1, dict(row, mlp={"fid": 13.0}))]}
    with pytest.raises(SystemExit, match="package seed 1 is in the report and here"):
        q.merge_report(clash, report, about, 1500)


def test_quality_parity_decides_only_on_five_seeds_a_row_under_each_judge():
    q = import_benchmark("quality_parity")
    assert set(q.LABELS) == set(q.VARIANTS) | set(q.IMPLS)  # every row has its name

    def rows(cnn, mlp):
        return [(seed, {"cnn": {"fid": a, "classes_with_5pct": 10},
                        "mlp": {"fid": b, "classes_with_5pct": 10}})
                for seed, (a, b) in enumerate(zip(cnn, mlp))]
    table = {"package": rows([50, 40, 45, 90, 41], [10, 11, 12, 30, 13]),
             "torch": rows([60, 44, 46, 70, 80], [20, 12, 9, 25, 18]),
             "torch-nobn0": rows([44, 46, 48, 41, 99], [16, 26, 23, 21, 31])}
    # medians: package 45 and 12; reference A 60 and 18; reference B 46 and 23
    assert q.verdict(table, ["cnn", "mlp"]) == [
        "judge 1: package median 45.00 is no worse than reference A 60.00, reference B 46.00",
        "judge 2: package median 12.00 is no worse than reference A 18.00, reference B 23.00"]
    table["torch-nobn0"] = rows([44, 46, 48, 41, 40], [16, 26, 23, 21, 31])  # median 44
    assert q.verdict(table, ["cnn", "mlp"])[0] == (
        "judge 1: package median 45.00 is worse than reference B 44.00")
    del table["torch"][4]
    assert q.verdict(table, ["cnn", "mlp"])[1] == "judge 2: undecided (reference A 4 of 5 seeds)"
    # a tagged row is its row with the tag, after the untagged ones and in their order;
    # a row of no known name keeps it
    for name in ("package-ema-m081", "package-m081", "torch-nobn0-x", "other"):
        table[name] = rows([1], [2])
    names = [line.split(" | ")[0] for line in q.format_table(table, ["cnn"]).splitlines()[2:]]
    assert names == ["| package (what `generate` draws)",
                     "| reference A (BatchNorm after the dense layer)",
                     "| reference B (no BatchNorm after the dense layer)",
                     "| package (what `generate` draws) [m081]",
                     "| package, EMA generator [m081]", "| other",
                     "| reference B (no BatchNorm after the dense layer) [x]"]


def _stored_parity(q):
    """``benchmarks/results/parity.json`` and its rows as ``quality_parity``'s table."""
    with open(os.path.join(ROOT, "benchmarks", "results", "parity.json")) as f:
        report = json.load(f)
    table = {}
    q.merge_report(table, report, report["judges"], report["iterations"])
    return report, table


def test_quality_parity_compares_a_tagged_row_with_its_untagged_row_seed_by_seed():
    q = import_benchmark("quality_parity")

    def rows(fids):
        return [(seed, {"cnn": {"fid": a}, "mlp": {"fid": b}}) for seed, (a, b) in fids.items()]
    table = {"package": rows({0: (50, 10), 1: (40, 20), 2: (45, 12)}),
             "package-m": rows({0: (45, 11), 1: (40, 19)}),  # seed 2 not trained yet
             "package-batch": rows({0: (48, 9), 1: (41, 21)}),
             "package-batch-m": rows({0: (48, 9), 1: (41, 21.000001)}),  # the same samples
             "package-ema": rows({0: (30, 8)}), "torch-m": rows({0: (1, 1)})}
    assert q.compare(table, "m", ["cnn", "mlp"]) == [
        "package (what `generate` draws) [m]: seeds 0, 1: judge 1 -10.0%, +0.0% "
        "(median 42.50 against 45.00); judge 2 +10.0%, -5.0% (median 15.00 against 15.00)",
        "package, batch statistics [m]: seeds 0, 1: the untagged row's figures, every seed "
        "and judge"]
    table["package-batch-m"][1][1]["mlp"]["fid"] = 21.01  # other samples: 0.05% apart
    assert q.compare(table, "m", ["mlp"])[1] == (
        "package, batch statistics [m]: seeds 0, 1: judge 1 +0.0%, +0.0% "
        "(median 15.01 against 15.00)")


def test_the_stored_momentum_row_judged_the_package_runs_samples_where_they_ignore_the_statistics():
    """``--g-bn-momentum`` trains the same weights (``test_trainer.py``'s
    ``test_g_bn_momentum_moves_only_g_running_statistics``), so in
    the stored report the ``[m081]`` runs' samples that do not read G's running
    statistics (batch, standing; the EMA generator's standing) score as the package's,
    and the two that read them do not."""
    q = import_benchmark("quality_parity")
    report, table = _stored_parity(q)
    lines = q.compare(table, "m081", list(report["judges"]))
    assert len(lines) == len(q.VARIANTS)
    for name, line in zip(q.VARIANTS, lines):
        same = q.VARIANTS[name][1] != "running"
        assert line.endswith("the untagged row's figures, every seed and judge") == same, line


def test_the_five_seed_table_in_the_docs_is_the_stored_reports():
    """docs/results.md shows what ``--table-only --merge benchmarks/results/parity.json``
    prints of the stored report, figure for figure."""
    q = import_benchmark("quality_parity")
    report, table = _stored_parity(q)
    with open(os.path.join(ROOT, "docs", "results.md"), encoding="utf-8") as f:
        assert q.format_table(table, list(report["judges"])) + "\n\n" in f.read()


def test_warm_up_speed_times_both_ways_and_finds_the_same_u(capsys):
    import_benchmark("warm_up_speed").main(["--rounds", "1", "--arch", "dcgan"])
    line = capsys.readouterr().out
    assert "dcgan discriminator (8 SN layers): warm_up" in line
    assert "every u equal bit for bit" in line
