"""sngan-export, scoring an exported generator, and sngan-generate's pictures, on tiny runs.

The session's pair of tiny runs (unconditional and conditional, a few iterations
on ``synthetic``, tests/tiny_runs.py) serves every test; each command of
docs/export_and_pictures.md is run on copies of them (the commands write into the run).
"""
import ast
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

import sngan_gluon  # noqa: F401  (makes mxnet importable)
from sngan_gluon.cli import evaluate as evaluate_cli
from sngan_gluon.cli import export as export_cli
from sngan_gluon.cli import generate as generate_cli
from sngan_gluon.data import get_dataset
from sngan_gluon.pictures import nearest_training_images, slerp
from sngan_gluon.sampling import LoadedGenerator
from test_generate_evaluate import StandInExtractor
from tiny_runs import ITERATIONS, SAMPLE_EVERY

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
from sngan_gluon.onnx_export import OnnxGenerator, read_metadata  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def runs(tiny_runs):
    """The session's tiny runs (tests/tiny_runs.py): ITERATIONS iterations, a sample grid
    every SAMPLE_EVERY (four frames of progress.gif), z_dim 16, EMA; read only."""
    return tiny_runs


@pytest.fixture(scope="module")
def exported(runs, tmp_path_factory):
    """``sngan-export`` of each run: float and uint8 outputs."""
    folder = tmp_path_factory.mktemp("onnx")
    out = {}
    for name, run in runs.items():
        for kind, flags in (("float", []), ("uint8", ["--uint8"])):
            path = str(folder / ("%s-%s.onnx" % (name, kind)))
            assert export_cli.main(["--checkpoint", run, "--out", path] + flags) == 0
            out[name, kind] = path
    return out


def error_line(capsys):
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err, err
    return err


# ---------------------------------------------------------------- export

def test_export_writes_metadata_and_the_ema_generator(runs, exported, tmp_path):
    for name, classes in (("uncond", 0), ("cond", 10)):
        meta = read_metadata(exported[name, "float"])
        assert {k: meta[k] for k in ("z_dim", "num_classes", "image_size", "channels",
                                     "output", "ema", "dataset", "iteration")} == {
            "z_dim": "16", "num_classes": str(classes), "image_size": "32", "channels": "3",
            "output": "float", "ema": "1", "dataset": "synthetic", "iteration": str(ITERATIONS)}
        names = [v.name for v in onnx.load(exported[name, "float"]).graph.input]
        assert names == (["z", "y"] if classes else ["z"])
    onnx_gen, ema = OnnxGenerator(exported["cond", "float"]), LoadedGenerator(runs["cond"])
    theirs = np.concatenate(list(onnx_gen.generate(37, seed=4, batch_size=16)))
    ours = np.concatenate([b.asnumpy() for b in ema.generate(37, seed=4, batch_size=16)])
    assert np.abs(theirs - ours).max() < 1e-5
    raw = str(tmp_path / "raw.onnx")
    assert export_cli.main(["--checkpoint", runs["cond"], "--out", raw, "--no-ema"]) == 0
    assert read_metadata(raw)["ema"] == "0"
    raw_images = np.concatenate(list(OnnxGenerator(raw).generate(37, seed=4, batch_size=16)))
    # the EMA weights differ from the raw ones: by far more than the export's 1e-5 above
    assert np.abs(raw_images - theirs).max() > 1e-4


def test_export_refuses_bad_input_in_one_line_and_keeps_foreign_files(runs, tmp_path, capsys,
                                                                      monkeypatch):
    out = str(tmp_path / "g.onnx")
    assert export_cli.main(["--checkpoint", str(tmp_path / "nothing"), "--out", out]) == 2
    error_line(capsys)
    foreign = tmp_path / "notes.onnx"
    foreign.write_text("mine")
    assert export_cli.main(["--checkpoint", runs["uncond"], "--out", str(foreign)]) == 2
    assert "was not written by sngan_gluon" in error_line(capsys)
    assert foreign.read_text() == "mine"
    assert export_cli.main(["--checkpoint", runs["uncond"], "--out", out]) == 0
    assert export_cli.main(["--checkpoint", runs["uncond"], "--out", out, "--uint8"]) == 0
    assert read_metadata(out)["output"] == "uint8"  # its own file: replaced
    capsys.readouterr()
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert export_cli.main(["--checkpoint", runs["uncond"], "--out",
                            str(blocker / "g.onnx")]) == 2  # its folder cannot exist
    error_line(capsys)
    assert export_cli.main(["--checkpoint", runs["uncond"], "--out", str(tmp_path)]) == 2
    assert "must end in .onnx" in error_line(capsys)
    monkeypatch.setitem(sys.modules, "onnx", None)  # as if not installed
    assert export_cli.main(["--checkpoint", runs["uncond"], "--out", out]) == 2
    assert "pip install 'sngan_gluon[export]'" in error_line(capsys)


def test_python_m_export_is_the_cli(runs, tmp_path):
    result = subprocess.run([sys.executable, "-m", "sngan_gluon.export", "--checkpoint",
                             str(tmp_path / "missing"), "--out", str(tmp_path / "g.onnx")],
                            capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert "Traceback" not in result.stderr and not os.path.exists(str(tmp_path / "g.onnx"))


def test_sngan_export_console_script_is_declared():
    import configparser
    cfg = configparser.ConfigParser()
    cfg.read(os.path.join(ROOT, "setup.cfg"))
    scripts = dict(line.split(" = ") for line in
                   cfg["options.entry_points"]["console_scripts"].strip().splitlines())
    assert scripts["sngan-export"] == "sngan_gluon.cli.export:main"
    extras = cfg["options.extras_require"]
    for extra in ("export", "test"):
        assert "onnx==" in extras[extra] and "onnxruntime==" in extras[extra], extra
    assert "--no-ema" in export_cli.build_parser().format_help()


# ---------------------------------------------------------------- scoring

def test_scoring_the_exported_generator_equals_scoring_its_checkpoint(runs, exported, capsys):
    common = ["--dataset", "synthetic", "--num", "40", "--batch-size", "16", "--seed", "5"]
    for argv in (["--checkpoint", runs["cond"]], ["--generator", exported["cond", "float"]],
                 ["--generator", exported["cond", "uint8"]]):
        assert evaluate_cli.main(argv + common, extractor=StandInExtractor()) == 0
    first, *others = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    for other in others:
        for key in ("is_mean", "fid", "kid_mean", "precision", "recall", "density", "coverage"):
            assert other[key] == pytest.approx(first[key], rel=1e-4, abs=1e-6), key
        assert other["iteration"] == ITERATIONS and other["ema"] is True
    assert others[0]["generator"] == exported["cond", "float"]


def _torch_fidelity_sampler(ref):
    """torch-fidelity's ``get_featuresdict_from_generative_model``, from its own source.

    ``torch_fidelity/utils.py`` imports torchvision at its top (see
    tests/torch_reference.py), so the function is compiled from that file's text
    with the names it uses bound to torch-fidelity's own modules.
    """
    import torch_fidelity  # the bare package torch_reference registered
    from tqdm import tqdm
    from torch_fidelity import feature_extractor_base, generative_model_base, helpers, noise
    path = os.path.join(torch_fidelity.__path__[0], "utils.py")
    tree = ast.parse(open(path).read())
    func = [n for n in tree.body if isinstance(n, ast.FunctionDef)
            and n.name == "get_featuresdict_from_generative_model"][0]
    namespace = {"np": np, "torch": ref.torch, "tqdm": tqdm, "vassert": helpers.vassert,
                 "vprint": helpers.vprint,
                 "GenerativeModelBase": generative_model_base.GenerativeModelBase,
                 "FeatureExtractorBase": feature_extractor_base.FeatureExtractorBase,
                 "NOISE_SOURCE_REGISTRY": {"normal": noise.random_normal}}
    exec(compile(ast.Module([func], type_ignores=[]), path, "exec"), namespace)
    return namespace["get_featuresdict_from_generative_model"]


@pytest.mark.slow
def test_torch_fidelitys_onnx_generator_input_gives_the_same_is_fid_kid(exported, tmp_path,
                                                                         capsys):
    import torch_reference
    ref = torch_reference.load()
    ref.torch.set_num_threads(1)
    from torch_fidelity.generative_model_onnx import GenerativeModelONNX
    pth = str(tmp_path / "random-inception.pth")
    theirs_net = torch_reference.random_inception(ref, pth, seed=0)
    # torch-fidelity seeds its noise, its IS splits and its KID subsets with one rng_seed
    # (default 2020); sngan-evaluate seeds its noise with --seed and the other two with 2020
    num, batch, seed = 20, 8, 2020
    real = get_dataset("synthetic", image_size=32).images[:num]
    np.savez(str(tmp_path / "real.npz"), images=real)
    path = exported["cond", "uint8"]
    meta = read_metadata(path)
    assert evaluate_cli.main(["--generator", path, "--real", str(tmp_path / "real.npz"),
                              "--num", str(num), "--batch-size", str(batch), "--seed",
                              str(seed), "--feature-net-params", pth]) == 0
    ours = json.loads(capsys.readouterr().out)
    # torch-fidelity: its ONNX wrapper, its noise and label draws (rng_seed = our --seed),
    # its Inception with the same weights file, its IS / FID / KID
    model = GenerativeModelONNX(path, int(meta["z_dim"]), "normal", int(meta["num_classes"]))
    sample = _torch_fidelity_sampler(ref)
    fake = sample(model, theirs_net, num, batch, False, seed, False)
    with ref.torch.no_grad():
        real_out = theirs_net(ref.torch.from_numpy(real.transpose(0, 3, 1, 2).copy()))
    real_dict = theirs_net.convert_features_tuple_to_dict(real_out)
    isc = ref.isc.isc_features_to_metric(fake["logits_unbiased"], splits=10, shuffle=True,
                                         rng_seed=seed)
    stats = [ref.fid.fid_features_to_statistics(d["2048"]) for d in (fake, real_dict)]
    fid = ref.fid.fid_statistics_to_metric(stats[0], stats[1], verbose=False)
    kid = ref.kid.kid_features_to_metric(fake["2048"], real_dict["2048"], kid_subsets=100,
                                         kid_subset_size=num, rng_seed=seed, verbose=False)
    assert ours["is_num"] == ours["num_fake"] == ours["num_real"] == num
    assert ours["is_mean"] == pytest.approx(isc["inception_score_mean"], rel=1e-3)
    assert ours["is_std"] == pytest.approx(isc["inception_score_std"], rel=1e-2)
    assert ours["fid"] == pytest.approx(fid["frechet_inception_distance"], rel=1e-3)
    assert ours["kid_mean"] == pytest.approx(kid["kernel_inception_distance_mean"], rel=1e-3)


def test_onnx_noise_and_labels_are_drawn_as_torch_fidelity_draws_them(exported):
    """Both draw, per batch, z = RandomState(seed).randn(B, z_dim) then labels randint(0, K, B)."""
    gen = OnnxGenerator(exported["cond", "float"])
    seen = []
    gen_call = gen.__call__

    class Spy:
        def __call__(self, z, y=None):
            seen.append((z.asnumpy(), y.asnumpy()))
            return gen_call(z, y)

    from sngan_gluon.sampling import generate_batches
    list(generate_batches(Spy(), 10, gen.z_dim, np.random.RandomState(7),
                          num_classes=gen.num_classes, batch_size=4))
    rng = np.random.RandomState(7)  # torch-fidelity's order, written out
    for z, y in seen:
        np.testing.assert_array_equal(z, rng.randn(len(z), gen.z_dim).astype(np.float32))
        np.testing.assert_array_equal(y, rng.randint(low=0, high=10, size=(len(z),)))


# ---------------------------------------------------------------- pictures

def generate(argv, tmp_path, name="p.npz"):
    out = str(tmp_path / name)
    code = generate_cli.main(argv + ["--out", out])
    return code, (np.load(out)["images"] if code == 0 and out.endswith(".npz") else out)


def test_slerp_equals_torch_fidelitys_and_keeps_its_ends():
    import torch_reference
    ref = torch_reference.load()
    from torch_fidelity import noise
    rng = np.random.RandomState(0)
    a, b = rng.normal(size=(2, 16))
    t = np.linspace(0, 1, 7)
    ours = slerp(a, b, t)
    theirs = noise.batch_slerp_any(ref.torch.tensor(np.tile(a, (7, 1))),
                                   ref.torch.tensor(np.tile(b, (7, 1))),
                                   ref.torch.tensor(t[:, None])).numpy()
    np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(ours[0], a, atol=1e-6)
    np.testing.assert_allclose(ours[-1], b, atol=1e-6)
    np.testing.assert_allclose(slerp(a, 2 * a, [0.5])[0], 1.5 * a, rtol=1e-6)  # parallel: a line


def test_interpolate_draws_walks_from_sample_to_sample(runs, tmp_path):
    code, images = generate(["--checkpoint", runs["uncond"], "--interpolate", "--rows", "3",
                             "--steps", "5", "--seed", "2"], tmp_path)
    assert code == 0 and images.shape == (15, 32, 32, 3)
    gen = LoadedGenerator(runs["uncond"])
    ends = np.random.RandomState(2).normal(size=(6, 16)).astype(np.float32)
    np.testing.assert_array_equal(images[0::5], gen.images(ends[0::2]))  # walk starts
    np.testing.assert_array_equal(images[4::5], gen.images(ends[1::2]))  # walk ends
    middle = np.abs(images[2].astype(int) - images[0]).mean()
    assert middle > 0  # the walk moves
    code, png = generate(["--checkpoint", runs["cond"], "--interpolate"], tmp_path, "w.png")
    assert code == 0 and Image.open(png).size[0] > 8 * 32


def test_per_class_rows_are_the_class_samples_of_one_noise(runs, tmp_path, capsys):
    code, images = generate(["--checkpoint", runs["cond"], "--per-class", "--steps", "4",
                             "--seed", "6"], tmp_path)
    assert code == 0 and images.shape == (40, 32, 32, 3)
    for c in (0, 9):  # row c is `--class c` with the same seed
        _, row = generate(["--checkpoint", runs["cond"], "--num", "4", "--class", str(c),
                           "--seed", "6"], tmp_path, "c%d.npz" % c)
        np.testing.assert_array_equal(images[4 * c:4 * c + 4], row)
    assert not np.array_equal(images[:4], images[36:])
    capsys.readouterr()
    code, _ = generate(["--checkpoint", runs["uncond"], "--per-class"], tmp_path, "u.png")
    assert code == 2 and "needs a conditional generator" in error_line(capsys)
    assert not os.path.exists(str(tmp_path / "u.png"))


def test_truncation_sweep_has_one_row_per_value(runs, tmp_path, capsys):
    code, images = generate(["--checkpoint", runs["uncond"], "--truncation-sweep",
                             "--truncations", "off,1,0.25", "--steps", "6", "--seed", "1"],
                            tmp_path)
    assert code == 0 and images.shape == (18, 32, 32, 3)
    for row, flags in ((0, []), (2, ["--truncation", "0.25"])):
        _, plain = generate(["--checkpoint", runs["uncond"], "--num", "6", "--seed", "1"]
                            + flags, tmp_path, "r%d.npz" % row)
        np.testing.assert_array_equal(images[6 * row:6 * row + 6], plain)
    capsys.readouterr()
    code, _ = generate(["--checkpoint", runs["uncond"], "--truncation-sweep",
                        "--truncations", "1,0.001"], tmp_path, "bad.png")
    assert code == 2 and "--truncation must be" in error_line(capsys)


def test_nearest_puts_each_sample_beside_its_nearest_training_images(runs, tmp_path):
    code, images = generate(["--checkpoint", runs["uncond"], "--nearest", "--rows", "4",
                             "--neighbours", "3"], tmp_path)
    assert code == 0 and images.shape == (16, 32, 32, 3)
    training = get_dataset("synthetic", image_size=32).images
    flat = training.reshape(len(training), -1).astype(np.float64)
    for r in range(4):
        sample = images[4 * r].reshape(-1).astype(np.float64)
        order = np.argsort(np.linalg.norm(flat - sample, axis=1), kind="stable")[:3]
        np.testing.assert_array_equal(images[4 * r + 1:4 * r + 4], training[order])
    code, png = generate(["--checkpoint", runs["cond"], "--nearest"], tmp_path, "n.png")
    assert code == 0 and os.path.getsize(png) > 0


def test_nearest_training_images_match_a_brute_force_search_across_chunks():
    rng = np.random.RandomState(0)
    training = rng.randint(0, 256, (50, 4, 4, 3)).astype(np.uint8)
    samples = np.concatenate([training[[7, 31]], rng.randint(0, 256, (3, 4, 4, 3))]).astype(
        np.uint8)
    got = nearest_training_images(samples, training, k=4, chunk=8)
    for i, s in enumerate(samples):
        d = ((training.reshape(50, -1).astype(float) - s.reshape(-1)) ** 2).sum(1)
        np.testing.assert_array_equal(got[i], np.argsort(d, kind="stable")[:4])
    assert got[0, 0] == 7 and got[1, 0] == 31  # a copy finds itself first


def test_picture_flags_are_exclusive(runs, tmp_path):
    with pytest.raises(SystemExit) as info:
        generate_cli.main(["--checkpoint", runs["cond"], "--out", str(tmp_path / "x.png"),
                           "--interpolate", "--nearest"])
    assert info.value.code == 2


def test_training_ends_with_progress_gif_of_its_sample_grids(runs):
    for run in runs.values():
        grids = sorted(os.listdir(os.path.join(run, "samples")))
        assert len(grids) == ITERATIONS // SAMPLE_EVERY
        with Image.open(os.path.join(run, "progress.gif")) as gif:
            assert gif.n_frames == len(grids)
            with Image.open(os.path.join(run, "samples", grids[-1])) as last:
                assert gif.size == last.size


# ---------------------------------------------------------------- the documented commands

DOCS = os.path.join(ROOT, "docs", "export_and_pictures.md")
README = os.path.join(ROOT, "README.md")
PICTURE_FLAGS = ("--interpolate", "--per-class", "--truncation-sweep", "--nearest")
# Need Inception weights or torchvision, not installed offline; their claims are tested above.
NOT_RUN = ("pip", "sngan-evaluate", "fidelity")


def documented_commands():
    """(source, tokens) of every export and picture command of the docs and the README."""
    import re
    import shlex
    found = []
    for path in (DOCS, README):
        with open(path, encoding="utf-8") as f:
            blocks = re.findall(r"```bash\n(.*?)```", f.read(), flags=re.S)
        for line in "\n".join(blocks).splitlines():
            words, parts = shlex.split(line, comments=True), [[]]
            for word in words:  # the parts of an &&-joined line
                parts.append([]) if word == "&&" else parts[-1].append(word)
            for tokens in parts:
                if not tokens or tokens[0] in NOT_RUN:
                    continue
                export = tokens[0] == "sngan-export" or tokens[:3] == [
                    "python", "-m", "sngan_gluon.export"]
                picture = tokens[:3] == ["python", "-m", "sngan_gluon.generate"] and any(
                    f in tokens for f in PICTURE_FLAGS)
                if path == DOCS or export or picture:
                    found.append((os.path.basename(path), tokens))
    return found


def test_every_documented_export_and_picture_command_runs(runs, tmp_path):
    runs = {name: shutil.copytree(run, str(tmp_path / name)) for name, run in runs.items()}
    mains = {"sngan-export": export_cli.main, "sngan_gluon.export": export_cli.main,
             "sngan_gluon.generate": generate_cli.main}
    commands = documented_commands()
    shown = {f for _, tokens in commands for f in tokens if f in PICTURE_FLAGS}
    assert shown == set(PICTURE_FLAGS)
    assert sum(1 for source, _ in commands if source == "README.md") >= 3
    for source, tokens in commands:
        name = tokens[0] if tokens[0] == "sngan-export" else tokens[2]
        argv = [t.replace("runs/digits-cond", runs["cond"]).replace("runs/digits", runs["uncond"])
                for t in tokens[1 if name == "sngan-export" else 3:]]
        assert mains[name](argv) == 0, (source, tokens)
        out = argv[argv.index("--out") + 1]
        assert os.path.getsize(out) > 0, (source, tokens)
    with open(DOCS, encoding="utf-8") as f:
        import re
        for block in re.findall(r"```python\n(.*?)```", f.read(), flags=re.S):
            exec(compile(block.replace("runs/digits", runs["uncond"]), DOCS, "exec"), {})
