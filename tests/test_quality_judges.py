"""The second digits judge, the stored judges, reference B, the data path and the EMA
shadow of quality_parity."""
import json
import os

import numpy as np
import pytest

from benchmark_scripts import import_benchmark
from sngan_gluon.data import get_dataset, to_tensor

# digits, mlp_judge and cnn_judge_net: session fixtures of tests/conftest.py


# ------------------------------------------------------------------ judge 2

def test_second_judge_recognises_held_out_digits(mlp_judge, digits):
    assert mlp_judge.accuracy > 0.95
    figures = mlp_judge(digits[1].images)  # the held-out digits against themselves
    assert figures["fid"] < 1e-6 and figures["classes_with_5pct"] == 10
    assert figures["score"] > 8.0


def test_second_judge_floor_is_small_against_noise_and_altered_digits(mlp_judge, digits):
    train = digits[0].images
    noise = np.random.RandomState(0).randint(0, 256, (500,) + train.shape[1:]).astype(np.uint8)
    shifted = np.zeros_like(train)
    shifted[:, :, 1:] = train[:, :, :-1]
    assert mlp_judge(noise)["fid_over_floor"] > 50
    assert mlp_judge(shifted)["fid_over_floor"] > 1.5
    # uint8 (N, H, W, C) and float (N, C, H, W) in [-1, 1] are judged alike
    assert mlp_judge(to_tensor(train[:300]))["fid"] == pytest.approx(
        mlp_judge(train[:300])["fid"], rel=1e-5)


def test_second_judge_sees_digits_differently_from_the_first(mlp_judge, cnn_judge_net,
                                                             digits):
    """Within each class, how far apart two held-out digits are in judge 2's features
    follows judge 1's only loosely, and the judges weigh a one-pixel shift against
    dimmed strokes in opposite ways."""
    from scipy.spatial.distance import pdist
    q = import_benchmark("quality_digits")
    train, test = digits
    net = cnn_judge_net  # q.train_classifier(train, test, epochs=4)[0]
    f1 = q.judge(net, to_tensor(test.images))[1]
    f2 = mlp_judge.features(test.images)
    within = [np.corrcoef(pdist(f1[test.labels == k]), pdist(f2[test.labels == k]))[0, 1]
              for k in range(10)]
    assert np.mean(within) < 0.95
    cnn = q.Judge(net, train, test)
    x = train.images
    shifted = np.zeros_like(x)
    shifted[:, :, 1:] = x[:, :, :-1]
    dimmed = (x.astype(np.float64) * 0.9).round().astype(np.uint8)
    ratio_cnn = (cnn(to_tensor(dimmed))["fid_over_floor"]
                 / cnn(to_tensor(shifted))["fid_over_floor"])
    ratio_mlp = mlp_judge(dimmed)["fid_over_floor"] / mlp_judge(shifted)["fid_over_floor"]
    assert ratio_cnn > 1.5 * ratio_mlp


def test_second_judge_is_deterministic(digits, mlp_judge):
    again = import_benchmark("judge_mlp").MLPJudge.fit(*digits)
    assert again.floor == mlp_judge.floor


def test_second_judge_computes_the_mlps_probabilities_and_survives_a_round_trip(
        mlp_judge, digits, tmp_path):
    """Its own layers give scikit-learn's ``predict_proba``; saved and loaded, it
    judges bit for bit as before."""
    m = import_benchmark("judge_mlp")
    train, test = digits
    net = m.train_mlp(train, max_iter=3)
    judge = m.MLPJudge(net.coefs_, net.intercepts_, train, test)
    x = m.grey_pixels(test.images)
    np.testing.assert_allclose(judge.probabilities(x), net.predict_proba(x), atol=1e-12)
    assert judge.accuracy == pytest.approx(net.score(x, test.labels))
    mlp_judge.save(str(tmp_path / "mlp.npz"))
    loaded = m.MLPJudge.load(str(tmp_path / "mlp.npz"), train, test)
    assert loaded.floor == mlp_judge.floor and loaded.accuracy == mlp_judge.accuracy
    samples = train.images[:200]
    assert loaded(samples) == mlp_judge(samples)


# ------------------------------------------------------------------ reference B

def test_reference_b_generator_is_table_3_as_written():
    """``bn0="none"``: dense, ReLU, three [deconvolution, BatchNorm, ReLU], convolution, tanh."""
    torch = pytest.importorskip("torch")
    nn = torch.nn
    ref = import_benchmark("reference_torch")
    G = ref.Generator(z_dim=100, ch=512, bn0="none")
    layers = [(type(m).__name__, tuple(p.shape for p in m.parameters(recurse=False)))
              for m in G.modules() if not isinstance(m, (ref.Generator, nn.Sequential))]
    assert layers == [
        ("Linear", ((8192, 100), (8192,))), ("Identity", ()),
        ("ConvTranspose2d", ((512, 256, 4, 4), (256,))), ("BatchNorm2d", ((256,), (256,))),
        ("ReLU", ()),
        ("ConvTranspose2d", ((256, 128, 4, 4), (128,))), ("BatchNorm2d", ((128,), (128,))),
        ("ReLU", ()),
        ("ConvTranspose2d", ((128, 64, 4, 4), (64,))), ("BatchNorm2d", ((64,), (64,))),
        ("ReLU", ()),
        ("Conv2d", ((3, 64, 3, 3), (3,)))]
    # the forward pass: relu(dense(z)) reshaped feeds the first deconvolution directly
    z = torch.randn(4, 100)
    G.eval()
    with torch.no_grad():
        h = torch.relu(G.dense(z)).view(4, 512, 4, 4)
        expected = torch.tanh(G.out(G.blocks(h)))
        assert torch.equal(G(z), expected)
        assert G(z).shape == (4, 3, 32, 32)
    with pytest.raises(ValueError, match="bn0 must be one of channel, unit, none, got 'layer'"):
        ref.Generator(bn0="layer")


# ------------------------------------------------------------------ the data path

def test_folder_of_pngs_digits_and_array_reach_d_as_the_same_pixels(tmp_path, digits):
    """``--dataset folder`` on PNGs of the digits, ``--dataset digits`` and the reference's
    array path give D the same float32 pixels: same range, channel order and size."""
    pytest.importorskip("torch")
    from PIL import Image
    from sngan_gluon.config import TrainConfig
    from sngan_gluon.trainer import GANTrainer
    ref = import_benchmark("reference_torch")
    images = digits[0].images
    folder = tmp_path / "pngs"
    folder.mkdir()
    for i, image in enumerate(images):
        Image.fromarray(image, "RGB").save(str(folder / ("%05d.png" % i)))
    batches = {}
    for name in ("folder", "digits"):
        trainer = GANTrainer(TrainConfig(dataset=name, data_path=str(folder), iterations=1,
                                         quiet=True))
        assert trainer.image_size == 32 and trainer.dataset.images.dtype == np.uint8
        np.testing.assert_array_equal(trainer.dataset.images, images)
        batches[name] = next(iter(trainer.updater.stream))[0].asnumpy()
    a = batches["folder"]
    assert a.dtype == np.float32 and a.shape == (64, 3, 32, 32)
    assert a.min() == -1.0 and a.max() == 1.0
    np.testing.assert_array_equal(a, batches["digits"])
    # the reference's array path: each image as the same float32 pixels
    first = next(ref.Batches(images, len(images), seed=0))
    order = np.random.RandomState(0).permutation(len(images))
    np.testing.assert_array_equal(first.numpy(), to_tensor(images[order]).asnumpy())


def test_folder_keeps_rgb_channel_order(tmp_path):
    from PIL import Image
    colours = np.zeros((2, 32, 32, 3), np.uint8)
    colours[0, ..., 0] = 200  # red
    colours[1, ..., 2] = 90   # blue
    colours[1, :8, :8] = (10, 20, 30)
    for i, image in enumerate(colours):
        Image.fromarray(image, "RGB").save(str(tmp_path / ("%d.png" % i)))
    loaded = get_dataset("folder", root=str(tmp_path), image_size=32, channels=3)
    np.testing.assert_array_equal(loaded.images, colours)


# ------------------------------------------------------------------ the stored judges

def test_the_stored_judges_are_those_that_judged_the_stored_report(digits):
    """``benchmarks/results/judges`` holds the networks that judged ``parity.json``: the
    same files, and here the floors and accuracies the report holds."""
    s = import_benchmark("stored_judges")
    q = import_benchmark("quality_parity")
    with open(os.path.join(os.path.dirname(s.JUDGES), "parity.json")) as f:
        report = json.load(f)
    _, about = s.load_judges(s.JUDGES, *digits)
    assert set(about) == set(report["judges"]) == {"cnn", "mlp"}
    for name, mine in about.items():
        theirs = report["judges"][name]
        assert mine["sha256"] == theirs["sha256"]
        assert mine["floor"] == pytest.approx(theirs["floor"], rel=q.FLOOR_TOLERANCE)
        assert mine["accuracy"] == theirs["accuracy"] > 0.95


def test_judges_stored_and_loaded_judge_as_they_did_before(digits, cnn_judge_net,
                                                         mlp_judge, tmp_path):
    s = import_benchmark("stored_judges")
    q = import_benchmark("quality_digits")
    train, test = digits
    folder = str(tmp_path / "judges")
    s.save_judges(folder, cnn_judge_net, mlp_judge)
    judges, about = s.load_judges(folder, train, test)
    cnn = q.Judge(cnn_judge_net, train, test)
    predicted = cnn_judge_net(to_tensor(test.images)).argmax(axis=1).asnumpy()
    assert about["cnn"]["floor"] == cnn.floor
    assert about["cnn"]["accuracy"] == float((predicted == test.labels).mean()) > 0.9
    assert about["mlp"]["floor"] == mlp_judge.floor
    assert about["mlp"]["accuracy"] == mlp_judge.accuracy
    samples = train.images[:300]
    assert judges["cnn"](samples) == cnn(to_tensor(samples))
    assert judges["mlp"](samples) == mlp_judge(samples)
    assert about["cnn"]["sha256"] == s.sha256(os.path.join(folder, "cnn.params"))
    assert about["mlp"]["sha256"] != about["cnn"]["sha256"]


def test_stored_judges_are_never_written_over_and_a_missing_one_stops_the_benchmark(
        digits, tmp_path, capsys):
    s = import_benchmark("stored_judges")
    folder = tmp_path / "judges"
    folder.mkdir()
    (folder / "cnn.params").write_bytes(b"mine")
    with pytest.raises(SystemExit) as stop:
        s.main(["--out", str(folder)])
    assert "exists" in str(stop.value.code)
    assert (folder / "cnn.params").read_bytes() == b"mine"
    with pytest.raises(SystemExit, match="no stored judge .*mlp.npz"):
        s.load_judges(str(folder), *digits)
    (folder / "mlp.npz").write_bytes(b"mine too")
    with pytest.raises(SystemExit, match="a stored judge in .* cannot be read"):
        s.load_judges(str(folder), *digits)
