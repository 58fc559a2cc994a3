"""The TF Inception network and its weights: equal to torch-fidelity's, scores included.

torch-fidelity's ``FeatureExtractorInceptionV3`` is built with random weights,
saved with ``torch.save`` and loaded into ours through the converter that reads
PyTorch files without torch; both then see the same uint8 images.
"""
import os
import zipfile

import numpy as np
import pytest

import sngan_gluon  # noqa: F401  (makes mxnet importable)
import torch_reference
from sngan_gluon import inception_weights
from sngan_gluon.data import download
from sngan_gluon.evaluation import score_features
from sngan_gluon.feature_nets import TFInceptionExtractor
from sngan_gluon.inception_weights import (convert_state_dict, read_torch_state_dict,
                                           tf_inception_params)
from sngan_gluon.metrics import (MetricsError, frechet_distance, inception_score_of_logits,
                                 kernel_inception_distance)
from sngan_gluon.tf_inception import tf1_resize_matrix

ref = torch_reference.load()
torch = ref.torch

SIZES = (32, 48, 299)
PER_SIZE = 4  # images per size in each of the two sets


def relative_error(ours, theirs):
    """max |ours - theirs| / max |theirs|: relative to the output's scale."""
    return float(np.abs(ours - theirs).max() / np.abs(theirs).max())


def image_set(seed):
    """PER_SIZE uint8 images (n, H, W, 3) of each size: smooth gradients plus noise."""
    rng, out = np.random.RandomState(seed), []
    for size in SIZES:
        ramp = np.linspace(0, 1, size)[None, :, None, None]
        base = ramp * rng.uniform(0, 255, size=(PER_SIZE, 1, 1, 3))
        noise = rng.normal(0, 40, size=(PER_SIZE, size, size, 3))
        out.append(np.clip(base + noise + 60, 0, 255).astype(np.uint8))
    return out


@pytest.fixture(scope="module")
def nets(tmp_path_factory):
    folder = tmp_path_factory.mktemp("weights")
    pth = str(folder / "random-inception.pth")
    torch.set_num_threads(1)
    theirs = torch_reference.random_inception(ref, pth, seed=0)
    ours = TFInceptionExtractor(params_file=pth, batch_size=PER_SIZE,
                                root=str(folder / "models"))
    return theirs, ours, pth


@pytest.fixture(scope="module")
def outputs(nets):
    """Features and unbiased logits of two image sets, by torch-fidelity and by us."""
    theirs, ours, _ = nets
    result = {}
    for name, seed in (("a", 1), ("b", 2)):
        for side in ("theirs", "ours"):
            feats, logits = [], []
            for images in image_set(seed):
                if side == "theirs":
                    with torch.no_grad():
                        f, z = theirs(torch.from_numpy(images.transpose(0, 3, 1, 2).copy()))
                    f, z = f.numpy(), z.numpy()
                else:
                    f, z = ours.extract(images)
                feats.append(f)
                logits.append(z)
            result[side, name] = np.concatenate(feats), np.concatenate(logits)
    return result


def test_resize_matrix_equals_torch_fidelitys_tensorflow1_resize():
    rng = np.random.RandomState(0)
    for size in (32, 48, 299, 500):
        x = rng.uniform(0, 255, size=(1, 3, size, size)).astype(np.float32)
        theirs = ref.resize.interpolate_bilinear_2d_like_tensorflow1x(
            torch.from_numpy(x), size=(299, 299), align_corners=False).numpy()
        m = tf1_resize_matrix(size)
        ours = m @ x @ m.T
        assert relative_error(ours, theirs) < 1e-6, size


def test_features_and_logits_equal_torch_fidelitys_for_each_size(outputs):
    for name in ("a", "b"):
        (f_ours, z_ours), (f_theirs, z_theirs) = outputs["ours", name], outputs["theirs", name]
        assert f_ours.shape == (len(SIZES) * PER_SIZE, 2048)
        assert z_ours.shape == (len(SIZES) * PER_SIZE, 1008)
        for i, size in enumerate(SIZES):
            rows = slice(i * PER_SIZE, (i + 1) * PER_SIZE)
            assert relative_error(f_ours[rows], f_theirs[rows]) < 1e-4, size
            assert relative_error(z_ours[rows], z_theirs[rows]) < 1e-4, size
    assert relative_error(outputs["ours", "a"][0], outputs["ours", "b"][0]) > 1e-2  # not constant


def test_is_fid_and_kid_equal_torch_fidelitys(outputs):
    (fa, za), (fb, _) = outputs["ours", "a"], outputs["ours", "b"]
    (ta, tza), (tb, _) = outputs["theirs", "a"], outputs["theirs", "b"]
    splits, subsets, size = 3, 10, 8
    expected_is = ref.isc.isc_features_to_metric(torch.from_numpy(tza), splits=splits,
                                                 shuffle=True, rng_seed=2020)
    got_is = inception_score_of_logits(za, splits)
    assert got_is[0] == pytest.approx(expected_is["inception_score_mean"], rel=1e-3)
    assert got_is[1] == pytest.approx(expected_is["inception_score_std"], rel=1e-3)
    stats = [ref.fid.fid_features_to_statistics(torch.from_numpy(t)) for t in (ta, tb)]
    expected_fid = ref.fid.fid_statistics_to_metric(stats[0], stats[1], verbose=False)
    got_fid = frechet_distance(fa.mean(0), np.cov(fa, rowvar=False),
                               fb.mean(0), np.cov(fb, rowvar=False))
    assert got_fid == pytest.approx(expected_fid["frechet_inception_distance"], rel=1e-3)
    expected_kid = ref.kid.kid_features_to_metric(
        torch.from_numpy(ta), torch.from_numpy(tb), kid_subsets=subsets,
        kid_subset_size=size, verbose=False)
    got_kid = kernel_inception_distance(fa, fb, subsets=subsets, subset_size=size)
    assert got_kid[0] == pytest.approx(expected_kid["kernel_inception_distance_mean"], rel=1e-3)
    assert got_kid[1] == pytest.approx(expected_kid["kernel_inception_distance_std"], rel=1e-3)


def test_score_features_reports_every_score(outputs):
    (fa, za), (fb, _) = outputs["ours", "a"], outputs["ours", "b"]
    result = score_features(fa[:, :64], za, fb[:, :64])  # 64 dims: the same code, faster
    assert result["num_fake"] == result["num_real"] == result["kid_subset_size"] == 12
    assert result["is_num"] == 12 and result["prdc_k"] == 5 and result["fid"] > 0
    assert 0 <= result["precision"] <= 1 and 0 <= result["coverage"] <= 1


def test_legacy_and_zip_files_read_to_the_same_arrays(nets, tmp_path):
    _, _, pth = nets
    state = torch.load(pth)
    legacy = str(tmp_path / "legacy.pth")
    torch.save(state, legacy, _use_new_zipfile_serialization=False)
    assert not zipfile.is_zipfile(legacy)
    a, b = read_torch_state_dict(pth), read_torch_state_dict(legacy)
    assert list(a) == list(b) == list(state)
    for key, value in state.items():
        np.testing.assert_array_equal(a[key], value.numpy())
        np.testing.assert_array_equal(b[key], value.numpy())
    # a non-contiguous tensor is rebuilt from its strides
    odd = str(tmp_path / "odd.pth")
    torch.save({"t": torch.arange(6.0).reshape(2, 3).t()}, odd)
    np.testing.assert_array_equal(read_torch_state_dict(odd)["t"],
                                  np.arange(6.0).reshape(2, 3).T)


def test_conversion_is_cached_once_and_named_by_the_source_hash(nets, tmp_path):
    _, _, pth = nets
    root = str(tmp_path / "models")
    params, name = tf_inception_params(pth, root=root)
    digest = inception_weights.file_digest(pth, "sha256")[:8]
    assert name == "tf-inception-%s" % digest and os.listdir(root) == [os.path.basename(params)]
    mtime = os.path.getmtime(params)
    assert tf_inception_params(pth, root=root) == (params, name)
    assert os.path.getmtime(params) == mtime  # not converted again
    assert tf_inception_params(params, root=root)[0] == params  # a .params is used as it is


@pytest.mark.parametrize("damage", ["truncated", "garbage", "other-network", "wrong-shape",
                                    "code"])
def test_bad_weights_files_get_one_line_and_cache_nothing(nets, tmp_path, damage):
    _, _, pth = nets
    bad = str(tmp_path / ("%s.pth" % damage))
    if damage == "truncated":
        with open(pth, "rb") as f:
            data = f.read()
        with open(bad, "wb") as f:
            f.write(data[:len(data) // 2])
    elif damage == "garbage":
        with open(bad, "wb") as f:
            f.write(b"\x80 this is not a pickle")
    elif damage == "other-network":
        torch.save(torch.nn.Linear(3, 2).state_dict(), bad)
    elif damage == "wrong-shape":
        state = torch.load(pth)
        state["Mixed_6b.branch1x1.conv.weight"] = torch.zeros(7, 768, 1, 1)
        torch.save(state, bad)
    else:  # a pickle that would call a function when loaded
        torch.save({"x": os.getcwd}, bad)
    root = str(tmp_path / "models")
    with pytest.raises(MetricsError) as info:
        tf_inception_params(bad, root=root)
    message = str(info.value)
    assert "\n" not in message and bad in message
    expected = {"other-network": "not the TF Inception network: 471 weights missing",
                "wrong-shape": "Mixed_6b.branch1x1.conv.weight has shape (7, 768, 1, 1)",
                "code": "unexpected global"}.get(damage, "cannot read")
    assert expected in message
    assert not os.path.exists(root) or os.listdir(root) == []


def test_missing_weights_offline_name_the_url_and_the_folder(tmp_path, monkeypatch):
    def offline(url, path):
        raise OSError("<urlopen error [Errno -3] Temporary failure in name resolution>")

    monkeypatch.setattr(download, "fetch", offline)
    monkeypatch.setenv("MXNET_HOME", str(tmp_path))
    with pytest.raises(MetricsError) as info:
        tf_inception_params()
    message = str(info.value)
    assert "\n" not in message and inception_weights.WEIGHTS_URL in message
    assert os.path.join(str(tmp_path), "models") in message and "--feature-net-params" in message
    with pytest.raises(MetricsError, match="not found"):
        tf_inception_params(str(tmp_path / "missing.pth"))


def test_a_download_with_the_wrong_hash_is_refused(tmp_path, monkeypatch):
    def fake_download(url, path):
        with open(path, "wb") as f:
            f.write(b"an html error page")

    monkeypatch.setattr(download, "fetch", fake_download)
    with pytest.raises(MetricsError, match="expected 6726825d"):
        tf_inception_params(root=str(tmp_path))
    assert [n for n in os.listdir(str(tmp_path)) if n.endswith(".params")] == []


def test_convert_state_dict_maps_batch_norm_names_and_drops_the_classifier_bias(nets):
    _, _, pth = nets
    arrays = convert_state_dict(read_torch_state_dict(pth))
    assert "Mixed_7c.branch_pool.bn.gamma" in arrays and "fc.bias" not in arrays
    assert arrays["fc.weight"].shape == (1008, 2048) and arrays["fc.weight"].dtype == np.float32


def test_a_params_file_of_another_network_gets_one_line(tmp_path):
    import mxnet as mx
    path = str(tmp_path / "other.params")
    mx.nd.save(path, {"features.0.weight": mx.nd.zeros((2, 3))})
    with pytest.raises(MetricsError, match="cannot load TF Inception weights") as info:
        TFInceptionExtractor(params_file=path, root=str(tmp_path))
    assert "\n" not in str(info.value)
