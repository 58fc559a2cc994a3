"""Every command line tells a user's mistake from a bug in the package.

A mistake the user can fix (a bad flag value, a missing or unusable input, an
output that cannot be written) ends in one line on stderr and exit code 2. Any
other exception, a plain ValueError or OSError from inside the package, is a
bug: it leaves ``main`` with its traceback, not as a user's mistake.
"""
import hashlib
import importlib.util
import os

import numpy as np
import pytest

import sngan_gluon  # noqa: F401  (makes mxnet importable)
from sngan_gluon import evaluation, launcher, onnx_export, sampling, spectra
from sngan_gluon.cli import evaluate as evaluate_cli
from sngan_gluon.cli import export as export_cli
from sngan_gluon.cli import generate as generate_cli
from sngan_gluon.cli import launch as launch_cli
from sngan_gluon.cli import spectra_report as spectra_cli
from sngan_gluon.config import TrainConfig
from sngan_gluon.data import DatasetError, get_dataset
from sngan_gluon.errors import UserError
from sngan_gluon.evaluation import EvaluationError
from sngan_gluon.fileio import OutputError
from sngan_gluon.launcher import LaunchError
from sngan_gluon.onnx_export import ExportError, OnnxUnavailable
from sngan_gluon.sampling import SamplingError
from sngan_gluon.supervise import StartError
from sngan_gluon.trainer import GANTrainer
from test_generate_evaluate import StandInExtractor
import torch_reference
from tiny_runs import WIDTHS

NEEDS_ONNX = pytest.mark.skipif(not all(importlib.util.find_spec(name)
                                         for name in ("onnx", "onnxruntime")),
                                 reason="the export extra (onnx, onnxruntime) is not installed")

MAINS = {"generate": generate_cli.main, "export": export_cli.main, "spectra": spectra_cli.main,
         "launch": launch_cli.main,
         "evaluate": lambda argv: evaluate_cli.main(argv, extractor=StandInExtractor())}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A two-iteration run of the conditional DCGAN (10 classes) on synthetic data."""
    out = tmp_path_factory.mktemp("run")
    config = TrainConfig(dataset="synthetic", data_path=str(out / "data"), batch_size=4,
                         iterations=2, log_every=2, checkpoint_every=2, sample_every=2,
                         quiet=True, conditional=True, **WIDTHS)
    GANTrainer(config, dataset=get_dataset("synthetic", image_size=32)).train(str(out / "run"))
    return str(out / "run")


@pytest.fixture
def where(run, tmp_path):
    """Fills in ``{run}`` and ``{tmp}`` of an argv; ``{tmp}`` holds an empty folder
    ``empty``, folders ``taken.npz`` and ``taken.png`` (where an output file would go),
    a plain file ``file``, a hosts file ``hosts.txt`` whose second entry is bad, 40
    random 32x32 RGB images ``images.npz`` and ``foreign.onnx``, an ONNX model with a
    generator's metadata and an operator onnxruntime does not know."""
    for folder in ("empty", "taken.npz", "taken.png"):
        (tmp_path / folder).mkdir()
    (tmp_path / "file").write_text("a file, not a folder")
    (tmp_path / "hosts.txt").write_text("node-a  # the scheduler\nnode-b:ssh\n")
    images = np.random.RandomState(0).randint(0, 256, (40, 32, 32, 3)).astype(np.uint8)
    np.savez(str(tmp_path / "images.npz"), images=images)
    if importlib.util.find_spec("onnx"):
        _write_foreign_onnx(str(tmp_path / "foreign.onnx"))
    return lambda words: [w.format(run=run, tmp=str(tmp_path)) for w in words]


def _write_foreign_onnx(path):
    import onnx
    helper, value = onnx.helper, onnx.helper.make_tensor_value_info
    graph = helper.make_graph([helper.make_node("NoSuchOp", ["z"], ["images"])], "g",
                              [value("z", onnx.TensorProto.FLOAT, ["batch", 4])],
                              [value("images", onnx.TensorProto.FLOAT, ["batch", 3, 8, 8])])
    model = helper.make_model(graph)
    helper.set_model_props(model, dict(z_dim="4", num_classes="0", image_size="8",
                                       channels="3", output="float"))
    onnx.save(model, path)


MISTAKES = [
    ("generate", ["--checkpoint", "{run}", "--truncation", "0.001", "--out", "{tmp}/g.png"],
     "--truncation must be a finite number >= 0.01"),
    ("generate", ["--checkpoint", "{run}", "--class", "10", "--out", "{tmp}/g.png"],
     "--class 10: the generator knows classes 0..9"),
    ("generate", ["--checkpoint", "{run}", "--num", "2", "--out", "{tmp}/file/g.npz"],
     "cannot write {tmp}/file/g.npz: "),
    ("generate", ["--checkpoint", "{run}", "--num", "2", "--out", "{tmp}/taken.npz"],
     "cannot write {tmp}/taken.npz: Is a directory"),
    ("generate", ["--checkpoint", "{run}", "--num", "2", "--out", "{tmp}/taken.png"],
     "cannot write {tmp}/taken.png: Is a directory"),
    ("generate", ["--checkpoint", "{tmp}/none", "--out", "{tmp}/g.png"],
     "{tmp}/none does not exist"),
    ("evaluate", ["--images", "{tmp}/empty", "--real", "{tmp}/images.npz"],
     "{tmp}/empty holds no images"),
    ("evaluate", ["--images", "{tmp}/images.npz", "--dataset", "synthetic",
                  "--data-path", "{tmp}/file"], "cannot write {tmp}/file/fid_stats/synthetic-"),
    ("evaluate", ["--checkpoint", "{run}", "--num", "0"],
     "--num and --batch-size must be positive"),
    pytest.param("evaluate", ["--generator", "{tmp}/file", "--real", "{tmp}/images.npz"],
                 "{tmp}/file is not an ONNX model", marks=NEEDS_ONNX),
    pytest.param("evaluate", ["--generator", "{tmp}/foreign.onnx", "--real",
                              "{tmp}/images.npz"],
                 "onnxruntime cannot run {tmp}/foreign.onnx: ", marks=NEEDS_ONNX),
    pytest.param("export", ["--checkpoint", "{run}", "--out", "{tmp}/g.txt"],
                 "--out must end in .onnx", marks=NEEDS_ONNX),
    pytest.param("export", ["--checkpoint", "{run}", "--out", "{tmp}/file/g.onnx"],
                 "cannot write {tmp}/file/g.onnx: ", marks=NEEDS_ONNX),
    ("spectra", ["--checkpoint", "{run}", "--out", "{tmp}/s.jpg"], "--out must end in .png"),
    ("spectra", ["--checkpoint", "{run}", "--out", "{tmp}/file/s.png"],
     "cannot write {tmp}/file/s.png: "),
    ("launch", ["-n", "1", "--hosts", "{tmp}/hosts.txt", "--", "python", "t.py"],
     "bad host entry 'node-b:ssh'"),
    ("launch", ["-n", "1", "--hosts", "{tmp}/none.txt", "--", "python", "t.py"],
     "cannot read hosts file {tmp}/none.txt: No such file or directory"),
    ("launch", ["-n", "1", "--hosts", "{tmp}/empty", "--", "python", "t.py"],
     "cannot read hosts file {tmp}/empty: Is a directory"),
    ("launch", ["-n", "1", "--hosts", "{tmp}/images.npz", "--", "python", "t.py"],
     "cannot read hosts file {tmp}/images.npz: not a text file"),
    ("launch", ["-n", "1", "--"], "no worker command given"),
    ("launch", ["-n", "1", "-e", "1X=y", "--", "python", "t.py"], "--env expects KEY=VALUE"),
    ("launch", ["-n", "1", "--python", "{tmp}/file", "--", "python", "t.py"],
     "cannot start scheduler: {tmp}/file: "),
    ("launch", ["-n", "1", "--", "{tmp}/none/worker"],
     "cannot start worker 0: {tmp}/none/worker: No such file or directory"),
]


def _cli(case):
    """The command line of a case of MISTAKES or BUGS (a tuple, or a pytest.param)."""
    return (case.values if hasattr(case, "marks") else case)[0]


@pytest.mark.parametrize("cli, argv, message", MISTAKES,
                         ids=["%s-%d" % (_cli(m), i) for i, m in enumerate(MISTAKES)])
def test_a_users_mistake_is_one_line_and_exit_code_2(cli, argv, message, where, capsys):
    code = MAINS[cli](where(argv))
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert where([message])[0] in err


@pytest.mark.parametrize("name", ["taken.npz", "taken.png"])
def test_an_output_that_fails_while_written_leaves_no_temporary_file(name, where, capsys):
    """The write fails at its end (a folder holds the name): the temporary file is removed."""
    assert generate_cli.main(where(["--checkpoint", "{run}", "--num", "2",
                                    "--out", "{tmp}/" + name])) == 2
    assert "cannot write" in capsys.readouterr().err
    folder = where(["{tmp}"])[0]
    assert not [f for f in os.listdir(folder) if f.startswith(".tmp-")]
    assert os.listdir(os.path.join(folder, name)) == []


def test_an_unwritable_models_folder_for_converted_inception_weights_is_one_line(
        where, tmp_path, monkeypatch, capsys):
    """--feature-net-params of a .pth converts it into $MXNET_HOME/models, here under a file."""
    ref = torch_reference.load()  # skips without torch and torch-fidelity
    ref.torch.set_num_threads(1)
    pth = str(tmp_path / "random-inception.pth")
    torch_reference.random_inception(ref, pth, seed=0)
    with open(pth, "rb") as f:
        tag = hashlib.sha256(f.read()).hexdigest()[:8]
    monkeypatch.setenv("MXNET_HOME", str(tmp_path / "file"))
    code = evaluate_cli.main(where(["--images", "{tmp}/images.npz", "--real",
                                    "{tmp}/images.npz", "--feature-net-params", pth]))
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert "cannot write %s/file/models/tf_inception_v3-%s.params: Not a directory" % (
        tmp_path, tag) in err


BUGS = [
    ("generate", sampling, "generate_batches",
     ["--checkpoint", "{run}", "--num", "2", "--out", "{tmp}/g.png"]),
    ("evaluate", evaluation, "score_features",
     ["--images", "{tmp}/images.npz", "--real", "{tmp}/images.npz"]),
    pytest.param("export", onnx_export, "export_block",
                 ["--checkpoint", "{run}", "--out", "{tmp}/g.onnx"], marks=NEEDS_ONNX),
    ("spectra", spectra, "layer_spectra", ["--checkpoint", "{run}", "--out", "{tmp}/s.png"]),
    ("launch", launcher, "read_hosts",
     ["-n", "1", "--hosts", "{tmp}/hosts.txt", "--", "python", "t.py"]),
    ("launch", launcher, "launch_local", ["-n", "1", "--", "python", "t.py"]),
]


@pytest.mark.parametrize("error", [ValueError, OSError])
@pytest.mark.parametrize("cli, module, name, argv", BUGS, ids=[_cli(b) for b in BUGS])
def test_a_bug_inside_the_package_is_not_reported_as_a_users_mistake(cli, module, name, argv,
                                                                    error, where, monkeypatch):
    def broken(*args, **kwargs):
        raise error("%s is broken" % name)

    monkeypatch.setattr(module, name, broken)
    with pytest.raises(error, match="^%s is broken$" % name):
        MAINS[cli](where(argv))


@pytest.mark.parametrize("kind, base", [
    (SamplingError, ValueError), (EvaluationError, ValueError), (DatasetError, ValueError),
    (ExportError, ValueError), (OnnxUnavailable, ImportError), (OutputError, OSError),
    (LaunchError, ValueError), (StartError, OSError)])
def test_each_kind_of_user_error_keeps_the_base_its_callers_catch(kind, base):
    assert issubclass(kind, UserError) and issubclass(kind, base)
