"""Datasets: exact pixels from binary files the tests write, offline failures, folder caches.

Every file read here is made by the test in the dataset's real on-disk format;
nothing is downloaded. ``no_download`` makes any download attempt fail the test.
"""
import gzip
import hashlib
import os
import tarfile

import cv2
import mxnet as mx
import numpy as np
import pytest
from mxnet import nd

from sngan_gluon import data
from sngan_gluon.data import DatasetError, get_dataset, to_tensor, to_uint8
from sngan_gluon.data import download, folder, releases

pytestmark = pytest.mark.filterwarnings("ignore:.*differ from the official release")

CIFAR_TRAIN = ["data_batch_%d.bin" % i for i in range(1, 6)]
CIFAR_PER_FILE, CIFAR_TEST = 60, 40


# --------------------------------------------------------------------------- helpers

def _cifar_image(i):
    """The known image of record ``i``: (32, 32, 3) RGB, different in every channel,
    row and column, so a swapped channel or a transposition shows."""
    r, c = np.mgrid[0:32, 0:32]
    red = (i * 7 + r * 3 + c) % 256
    green = (i + 2 * r + 5 * c + 100) % 256
    blue = (255 - i - r * 8 + c) % 256
    return np.stack([red, green, blue], axis=-1).astype(np.uint8)


def _cifar_label(i):
    return (i * 3 + 1) % 10


def _write_cifar_file(path, indices):
    with open(path, "wb") as f:
        for i in indices:  # the documented record: label byte, then R, G, B planes row-major
            image = _cifar_image(i)
            f.write(bytes([_cifar_label(i)]))
            for channel in range(3):
                f.write(image[:, :, channel].tobytes(order="C"))


def _make_cifar(folder):
    os.makedirs(folder, exist_ok=True)
    for k, name in enumerate(CIFAR_TRAIN):
        _write_cifar_file(os.path.join(folder, name),
                          range(k * CIFAR_PER_FILE, (k + 1) * CIFAR_PER_FILE))
    _write_cifar_file(os.path.join(folder, "test_batch.bin"), range(1000, 1000 + CIFAR_TEST))
    return folder


def _expected_cifar(indices):
    return (np.stack([_cifar_image(i) for i in indices]),
            np.array([_cifar_label(i) for i in indices]))


def _md5(path):
    with open(path, "rb") as f:
        return hashlib.md5(f.read()).hexdigest()


@pytest.fixture
def no_download(monkeypatch):
    """Any download attempt raises and is recorded; the test fails if one happened."""
    attempts = []

    def refuse(*args, **kwargs):
        attempts.append(args)
        raise AssertionError("a download was attempted: %r" % (args,))

    monkeypatch.setattr(download.urllib.request, "urlopen", refuse)
    monkeypatch.setattr(mx.gluon.utils, "download", refuse)
    yield attempts
    assert not attempts


@pytest.fixture
def offline(monkeypatch):
    """Downloads fail as on a machine without network; the attempts are recorded."""
    attempts = []

    def unreachable(*args, **kwargs):
        attempts.append(args)
        raise OSError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(download.urllib.request, "urlopen", unreachable)
    return attempts


# --------------------------------------------------------------------------- download

def test_fetch_checks_the_digest_before_the_file_appears(tmp_path):
    source = tmp_path / "source.bin"
    source.write_bytes(b"release bytes" * 1000)
    url = "file://" + str(source)
    good = tmp_path / "good" / "copy.bin"
    download.fetch(url, str(good), hashlib.sha1(source.read_bytes()).hexdigest(), "sha1")
    assert good.read_bytes() == source.read_bytes()
    bad = tmp_path / "bad" / "copy.bin"
    with pytest.raises(OSError, match="has MD5 [0-9a-f]{32}, not 0123 .incomplete or changed"):
        download.fetch(url, str(bad), "0123", "md5")
    assert os.listdir(tmp_path / "bad") == []


def test_fetch_waits_at_most_the_network_timeout(tmp_path, monkeypatch):
    waits = []

    def urlopen(url, timeout=None):
        waits.append(timeout)
        raise OSError("timed out")

    monkeypatch.setattr(download.urllib.request, "urlopen", urlopen)
    with pytest.raises(OSError, match="timed out"):
        download.fetch("https://example.invalid/x", str(tmp_path / "x"))
    assert waits == [10.0] and not os.path.exists(tmp_path / "x")


# --------------------------------------------------------------------------- cifar10

def test_cifar10_binary_files_load_exact_pixels_and_labels(tmp_path, no_download):
    _make_cifar(str(tmp_path))
    with pytest.warns(UserWarning, match="SHA-1"):
        train = get_dataset("cifar10", root=str(tmp_path))
    images, labels = _expected_cifar(range(5 * CIFAR_PER_FILE))
    assert train.images.shape == (300, 32, 32, 3) and train.images.dtype == np.uint8
    assert train.labels.dtype == np.int32
    np.testing.assert_array_equal(train.images, images)
    np.testing.assert_array_equal(train.labels, labels)
    assert (train.num_classes, train.name, train.image_size, train.channels) == (
        10, "cifar10", 32, 3)
    image, label = train[7]
    np.testing.assert_array_equal(image, _cifar_image(7))
    assert label == _cifar_label(7) and len(train) == 300

    test = get_dataset("cifar10", root=str(tmp_path), train=False)
    images, labels = _expected_cifar(range(1000, 1000 + CIFAR_TEST))
    np.testing.assert_array_equal(test.images, images)
    np.testing.assert_array_equal(test.labels, labels)


def test_cifar10_found_in_extracted_archive_folder(tmp_path, no_download):
    _make_cifar(str(tmp_path / "cifar-10-batches-bin"))
    test = get_dataset("cifar10", root=str(tmp_path), train=False, image_size=16)
    assert test.images.shape == (CIFAR_TEST, 16, 16, 3)
    # area downscaling by 2 averages 2x2 blocks
    expected = _expected_cifar(range(1000, 1000 + CIFAR_TEST))[0].astype(np.float64)
    blocks = expected.reshape(CIFAR_TEST, 16, 2, 16, 2, 3).mean(axis=(2, 4))
    assert np.abs(test.images - blocks).max() <= 1


def test_cifar10_truncated_file_names_the_file(tmp_path, no_download):
    _make_cifar(str(tmp_path))
    path = tmp_path / "data_batch_3.bin"
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(DatasetError, match="data_batch_3.bin is truncated or corrupt"):
        get_dataset("cifar10", root=str(tmp_path))


def test_cifar10_label_out_of_range_raises(tmp_path, no_download):
    _make_cifar(str(tmp_path))
    path = tmp_path / "test_batch.bin"
    raw = bytearray(path.read_bytes())
    raw[5 * 3073] = 10  # label byte of record 5
    path.write_bytes(bytes(raw))
    with pytest.raises(DatasetError, match=r"test_batch.bin is corrupt: record 5 has label 10"):
        get_dataset("cifar10", root=str(tmp_path), train=False)


def test_cifar10_missing_offline_names_archive_url_and_folder(tmp_path, offline):
    root = str(tmp_path / "cifar")
    with pytest.raises(DatasetError) as err:
        get_dataset("cifar10", root=root)
    message = str(err.value)
    assert "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz" in message
    assert root in message and "data_batch_1.bin" in message and "offline" in message
    assert "\n" not in message
    # both the Gluon mirror and the original home were tried
    assert len(offline) == 2


def test_cifar10_download_false_does_not_try(tmp_path, no_download):
    with pytest.raises(DatasetError, match="download=False"):
        get_dataset("cifar10", root=str(tmp_path), download=False)


def test_cifar10_original_archive_is_extracted_where_gluon_expects(tmp_path, monkeypatch):
    source = _make_cifar(str(tmp_path / "source"))
    archive = str(tmp_path / "cifar-10-binary.tar.gz")
    with tarfile.open(archive, "w:gz") as tar:  # the original layout: one folder inside
        for name in CIFAR_TRAIN + ["test_batch.bin"]:
            tar.add(os.path.join(source, name), arcname="cifar-10-batches-bin/" + name)
    root = tmp_path / "root"

    tried = []

    def fetch(url, path, digest, algorithm):
        tried.append(url)
        if "gluon/dataset/cifar10/cifar-10-binary.tar.gz" in url:
            raise OSError("mirror unreachable")
        assert (url, digest, algorithm) == (data.CIFAR10_URL, data.CIFAR10_MD5, "md5")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(archive, "rb") as src, open(path, "wb") as dst:
            dst.write(src.read())

    monkeypatch.setattr(download, "fetch", fetch)
    test = get_dataset("cifar10", root=str(root), train=False)
    assert sorted(os.listdir(root)) == sorted(CIFAR_TRAIN + ["test_batch.bin",
                                                             "cifar-10-binary.tar.gz"])
    np.testing.assert_array_equal(test.images, _expected_cifar(range(1000, 1040))[0])
    assert len(tried) == 2  # the mirror first, then the original home


def test_cifar10_archive_placed_by_hand_is_extracted_offline(tmp_path, monkeypatch, no_download):
    source = _make_cifar(str(tmp_path / "source"))
    root = tmp_path / "root"
    root.mkdir()
    archive = str(root / "cifar-10-binary.tar.gz")
    with tarfile.open(archive, "w:gz") as tar:
        for name in CIFAR_TRAIN + ["test_batch.bin"]:
            tar.add(os.path.join(source, name), arcname="cifar-10-batches-bin/" + name)
    monkeypatch.setattr(releases, "CIFAR10_MD5", _md5(archive))
    train = get_dataset("cifar10", root=str(root), download=False)
    np.testing.assert_array_equal(train.labels, _expected_cifar(range(300))[1])


# --------------------------------------------------------------------------- stl10

def _stl_images(n, seed):
    """(n, 96, 96, 3) images constant on 2x2 blocks, so an area downscale by 2 is exact."""
    rng = np.random.RandomState(seed)
    small = rng.randint(0, 256, size=(n, 48, 48, 3)).astype(np.uint8)
    small[:, 0, :, 0] = 255  # top row red, left column blue: orientation marks
    small[:, :, 0, 2] = 255
    return small.repeat(2, axis=1).repeat(2, axis=2), small


def _write_stl_x(path, images):
    with open(path, "wb") as f:
        for image in images:  # each channel column-major, as the STL-10 readme says
            for channel in range(3):
                f.write(image[:, :, channel].tobytes(order="F"))


def test_stl10_binary_files_orientation_and_downscale(tmp_path, no_download):
    folder = tmp_path / "stl10_binary"
    folder.mkdir()
    unlabeled, unlabeled_small = _stl_images(4, 0)
    train, train_small = _stl_images(3, 1)
    test, test_small = _stl_images(2, 2)
    _write_stl_x(str(folder / "unlabeled_X.bin"), unlabeled)
    _write_stl_x(str(folder / "train_X.bin"), train)
    (folder / "train_y.bin").write_bytes(bytes([1, 5, 10]))
    _write_stl_x(str(folder / "test_X.bin"), test)
    (folder / "test_y.bin").write_bytes(bytes([10, 3]))

    dataset = get_dataset("stl10", root=str(tmp_path))
    assert dataset.images.shape == (7, 48, 48, 3) and dataset.num_classes == 0
    np.testing.assert_array_equal(dataset.images,
                                  np.concatenate([unlabeled_small, train_small]))
    np.testing.assert_array_equal(dataset.labels, np.zeros(7))

    full = get_dataset("stl10", root=str(tmp_path), train=False, image_size=96)
    np.testing.assert_array_equal(full.images, test)
    np.testing.assert_array_equal(full.labels, [9, 2])
    assert full.num_classes == 10

    shard = get_dataset("stl10", root=str(tmp_path), num_parts=2, part_index=1)
    np.testing.assert_array_equal(shard.images, dataset.images[1::2])


def test_stl10_truncated_file_raises(tmp_path, no_download):
    folder = tmp_path / "stl10_binary"
    folder.mkdir()
    _write_stl_x(str(folder / "unlabeled_X.bin"), _stl_images(2, 0)[0])
    (folder / "train_X.bin").write_bytes(b"\0" * 1000)
    with pytest.raises(DatasetError, match="train_X.bin is truncated or corrupt"):
        get_dataset("stl10", root=str(tmp_path))


def test_stl10_missing_offline_names_url_and_folder(tmp_path, offline):
    with pytest.raises(DatasetError) as err:
        get_dataset("stl10", root=str(tmp_path))
    assert data.STL10_URL in str(err.value) and str(tmp_path / "stl10_binary") in str(err.value)


# --------------------------------------------------------------------------- mnist

def _write_idx(path, array, magic):
    header = np.array([magic] + list(array.shape), dtype=">u4").tobytes()
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


def test_mnist_files_grayscale_tiling_and_single_channel(tmp_path, no_download):
    folder = tmp_path / "mnist"
    folder.mkdir()
    images = np.random.RandomState(0).randint(0, 256, size=(5, 28, 28)).astype(np.uint8)
    _write_idx(str(folder / "t10k-images-idx3-ubyte.gz"), images, 2051)
    _write_idx(str(folder / "t10k-labels-idx1-ubyte.gz"), np.arange(5), 2049)

    gray = get_dataset("mnist", root=str(tmp_path), train=False, image_size=28, channels=1)
    assert gray.images.shape == (5, 28, 28, 1)
    np.testing.assert_array_equal(gray.images[..., 0], images)
    rgb = get_dataset("mnist", root=str(tmp_path), train=False, image_size=28, channels=3)
    np.testing.assert_array_equal(rgb.images, np.repeat(images[..., None], 3, axis=3))
    np.testing.assert_array_equal(rgb.labels, np.arange(5))
    assert get_dataset("mnist", root=str(tmp_path), train=False).images.shape == (5, 32, 32, 3)


def test_mnist_is_fetched_from_gluons_copy_and_checked_by_sha1(tmp_path, monkeypatch):
    images = np.random.RandomState(1).randint(0, 256, size=(3, 28, 28)).astype(np.uint8)
    fetched = []

    def fetch(url, path, digest, algorithm):
        fetched.append((url.rsplit("/", 3)[-3:], digest, algorithm))
        os.makedirs(os.path.dirname(path), exist_ok=True)
        if "images" in path:
            _write_idx(path, images, 2051)
        else:
            _write_idx(path, np.array([4, 0, 9]), 2049)

    monkeypatch.setattr(download, "fetch", fetch)
    with pytest.warns(UserWarning, match="SHA-1"):  # the test's files are not the release
        test = get_dataset("mnist", root=str(tmp_path), train=False, image_size=28, channels=1)
    assert fetched == [
        (["dataset", "mnist", "t10k-images-idx3-ubyte.gz"],
         "c3a25af1f52dad7f726cce8cacb138654b760d48", "sha1"),
        (["dataset", "mnist", "t10k-labels-idx1-ubyte.gz"],
         "763e7fa3757d93b0cdec073cef058b2004252c17", "sha1")]
    np.testing.assert_array_equal(test.images[..., 0], images)
    np.testing.assert_array_equal(test.labels, [4, 0, 9])


def test_mnist_missing_names_url_and_folder(tmp_path, no_download):
    with pytest.raises(DatasetError) as err:
        get_dataset("mnist", root=str(tmp_path), download=False)
    assert "gluon/dataset/mnist/train-images-idx3-ubyte.gz" in str(err.value)
    assert str(tmp_path / "mnist") in str(err.value)


def test_colour_to_one_channel_is_luminance():
    rgb = get_dataset("synthetic", num_parts=64).images.astype(np.float64)
    gray = get_dataset("synthetic", channels=1, num_parts=64).images
    expected = np.rint(rgb @ [0.299, 0.587, 0.114])
    assert gray.shape == rgb.shape[:3] + (1,)
    assert np.abs(gray[..., 0] - expected).max() <= 1


# --------------------------------------------------------------------------- digits

def test_digits_shapes_range_classes():
    train = get_dataset("digits")
    assert train.images.shape == (1437, 32, 32, 3) and train.images.dtype == np.uint8
    assert train.images.min() == 0 and train.images.max() == 255
    assert train.num_classes == 10 and set(train.labels.tolist()) == set(range(10))
    np.testing.assert_array_equal(train.images[..., 0], train.images[..., 2])


def test_digits_split_is_disjoint_covering_and_deterministic():
    from sklearn.datasets import load_digits
    source = load_digits()
    expected = np.rint(source.images * 255.0 / 16.0).astype(np.uint8)
    train = get_dataset("digits", image_size=8, channels=1)
    test = get_dataset("digits", image_size=8, channels=1, train=False)
    assert (len(train), len(test)) == (1437, 360)

    def keys(images, labels):
        return sorted(image.tobytes() + bytes([label]) for image, label in zip(images, labels))

    assert keys(np.concatenate([train.images[..., 0], test.images[..., 0]]),
                np.concatenate([train.labels, test.labels])) == keys(expected, source.target)
    again = get_dataset("digits", image_size=8, channels=1, train=False)
    np.testing.assert_array_equal(again.images, test.images)


# --------------------------------------------------------------------------- folder

def _write_image(path, rgb):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    assert cv2.imwrite(path, np.ascontiguousarray(rgb[..., ::-1]))


def test_folder_class_subfolders_become_labels(tmp_path):
    # 20 x 40 (h x w): blue | green | red columns; the centre square is all green
    wide = np.zeros((20, 40, 3), np.uint8)
    wide[:, :10] = (0, 0, 255)
    wide[:, 10:30] = (0, 255, 0)
    wide[:, 30:] = (255, 0, 0)
    red = np.full((30, 30, 3), (255, 0, 0), np.uint8)
    _write_image(str(tmp_path / "dogs" / "a.png"), wide)
    _write_image(str(tmp_path / "cats" / "x.bmp"), red)
    _write_image(str(tmp_path / "cats" / "deeper" / "y.jpg"), red)
    (tmp_path / "cats" / "notes.txt").write_text("not an image")

    dataset = get_dataset("folder", root=str(tmp_path), image_size=16)
    assert dataset.images.shape == (3, 16, 16, 3) and dataset.num_classes == 2
    np.testing.assert_array_equal(dataset.labels, [0, 0, 1])  # cats/deeper/y, cats/x, dogs/a
    np.testing.assert_array_equal(dataset.images[1], np.broadcast_to([255, 0, 0], (16, 16, 3)))
    assert np.abs(dataset.images[0].astype(int) - [255, 0, 0]).max() <= 3  # JPEG is lossy
    np.testing.assert_array_equal(dataset.images[2], np.broadcast_to([0, 255, 0], (16, 16, 3)))


def test_folder_without_subfolders_is_unlabelled(tmp_path):
    for i in range(3):
        _write_image(str(tmp_path / ("%d.png" % i)), np.full((8, 8, 3), i * 50, np.uint8))
    dataset = get_dataset("folder", root=str(tmp_path), image_size=4, channels=1)
    assert dataset.num_classes == 0 and dataset.images.shape == (3, 4, 4, 1)
    np.testing.assert_array_equal(dataset.images[:, 0, 0, 0], [0, 50, 100])


def test_folder_empty_raises(tmp_path):
    (tmp_path / "empty_class").mkdir()
    with pytest.raises(DatasetError, match="no images"):
        get_dataset("folder", root=str(tmp_path))
    with pytest.raises(DatasetError, match="does not exist"):
        get_dataset("folder", root=str(tmp_path / "nowhere"))


def test_folder_unreadable_image_names_the_file(tmp_path):
    _write_image(str(tmp_path / "good.png"), np.zeros((8, 8, 3), np.uint8))
    (tmp_path / "broken.jpg").write_bytes(b"this is not a jpeg")
    with pytest.raises(DatasetError, match="broken.jpg"):
        get_dataset("folder", root=str(tmp_path))


def _write_folder(root, names, side=12):
    for i, name in enumerate(names):
        _write_image(str(root / name), np.full((side, side, 3), 10 * i, np.uint8))


def test_folder_images_in_root_beside_class_subfolders_are_used_unlabelled(tmp_path):
    _write_folder(tmp_path, ["loose.png", "cats/a.png", "dogs/b.png"])
    with pytest.warns(UserWarning, match="1 image.* lie directly in .* without labels"):
        dataset = get_dataset("folder", root=str(tmp_path), image_size=4)
    assert dataset.num_classes == 0 and len(dataset) == 3
    np.testing.assert_array_equal(dataset.labels, [0, 0, 0])


def test_folder_symlink_loop_is_followed_once(tmp_path):
    _write_folder(tmp_path, ["cats/%d.png" % i for i in range(5)]
                  + ["dogs/%d.png" % i for i in range(5)])
    os.symlink(str(tmp_path), str(tmp_path / "cats" / "loop"))
    os.symlink(str(tmp_path / "dogs"), str(tmp_path / "dogs" / "self"))
    dataset = get_dataset("folder", root=str(tmp_path), image_size=4)
    assert len(dataset) == 10 and dataset.num_classes == 2
    np.testing.assert_array_equal(np.bincount(dataset.labels), [5, 5])


def test_folder_symlinked_class_folder_is_read(tmp_path):
    _write_folder(tmp_path / "elsewhere", ["%d.png" % i for i in range(3)])
    _write_folder(tmp_path / "root", ["cats/a.png"])
    os.symlink(str(tmp_path / "elsewhere"), str(tmp_path / "root" / "dogs"))
    dataset = get_dataset("folder", root=str(tmp_path / "root"), image_size=4)
    np.testing.assert_array_equal(dataset.labels, [0, 1, 1, 1])


@pytest.mark.parametrize("ext", [".jpg", ".png"])
def test_folder_truncated_image_names_the_file(tmp_path, ext):
    _write_image(str(tmp_path / "good.png"), np.zeros((8, 8, 3), np.uint8))
    picture = np.random.RandomState(0).randint(0, 255, (64, 64, 3)).astype(np.uint8)
    ok, encoded = cv2.imencode(ext, picture)
    whole = encoded.tobytes()
    (tmp_path / ("cut" + ext)).write_bytes(whole[: len(whole) * 2 // 3])
    with pytest.raises(DatasetError, match="cut%s .*truncated" % ext):
        get_dataset("folder", root=str(tmp_path), image_size=8)
    (tmp_path / ("cut" + ext)).write_bytes(whole)  # the whole file decodes
    assert len(get_dataset("folder", root=str(tmp_path), image_size=8)) == 2


def test_folder_jpeg_with_bytes_after_its_end_is_accepted(tmp_path):
    ok, encoded = cv2.imencode(".jpg", np.full((16, 16, 3), 200, np.uint8))
    (tmp_path / "a.jpg").write_bytes(encoded.tobytes() + b"\x00" * 16)
    assert get_dataset("folder", root=str(tmp_path), image_size=8).images.mean() > 150


def _refuse_decoding(monkeypatch):
    def decode(path, size):
        raise AssertionError("decoded %s although the cache is valid" % path)
    monkeypatch.setattr(folder, "_decode", decode)


def test_folder_is_decoded_once_then_memory_mapped(tmp_path, monkeypatch, capsys):
    _write_folder(tmp_path, ["cats/a.png", "cats/b.png", "dogs/c.png"])
    first = get_dataset("folder", root=str(tmp_path), image_size=8)
    said = capsys.readouterr().err
    assert "decoding 3 images" in said and "8x8x3 (576 B)" in said
    assert sorted(os.listdir(tmp_path / ".sngan_gluon_cache")) == ["8px-3ch.json", "8px-3ch.npy"]
    with monkeypatch.context() as patch:
        _refuse_decoding(patch)
        again = get_dataset("folder", root=str(tmp_path), image_size=8)
        assert isinstance(again.images.base, np.memmap) or isinstance(again.images, np.memmap)
        np.testing.assert_array_equal(again.images, first.images)
        np.testing.assert_array_equal(again.labels, first.labels)
        assert capsys.readouterr().err == ""
        with pytest.raises(AssertionError, match="decoded"):  # another size: its own cache
            get_dataset("folder", root=str(tmp_path), image_size=4)
        with pytest.raises(AssertionError, match="decoded"):  # other channels: likewise
            get_dataset("folder", root=str(tmp_path), image_size=8, channels=1)


@pytest.mark.parametrize("change", ["add", "remove", "rewrite"])
def test_folder_cache_is_rebuilt_when_a_file_changes(tmp_path, monkeypatch, change):
    _write_folder(tmp_path, ["a.png", "b.png"])
    get_dataset("folder", root=str(tmp_path), image_size=4)
    if change == "add":
        _write_image(str(tmp_path / "c.png"), np.full((12, 12, 3), 99, np.uint8))
    elif change == "remove":
        os.remove(str(tmp_path / "b.png"))
    else:
        _write_image(str(tmp_path / "b.png"), np.full((12, 12, 3), 99, np.uint8))
        os.utime(str(tmp_path / "b.png"), ns=(1, 1))
    dataset = get_dataset("folder", root=str(tmp_path), image_size=4)
    expected = {"add": [0, 10, 99], "remove": [0], "rewrite": [0, 99]}[change]
    np.testing.assert_array_equal(dataset.images[:, 0, 0, 0], expected)


def test_folder_shard_of_a_cached_folder(tmp_path):
    _write_folder(tmp_path, ["%d.png" % i for i in range(5)])
    get_dataset("folder", root=str(tmp_path), image_size=4)
    shard = get_dataset("folder", root=str(tmp_path), image_size=4, num_parts=2, part_index=1)
    np.testing.assert_array_equal(shard.images[:, 0, 0, 0], [10, 30])


def test_folder_cache_falls_back_to_the_user_cache(tmp_path, monkeypatch):
    _write_folder(tmp_path / "imgs", ["a.png"])
    (tmp_path / "imgs" / ".sngan_gluon_cache").write_text("a file where the folder would go")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    get_dataset("folder", root=str(tmp_path / "imgs"), image_size=4)
    [folder] = os.listdir(tmp_path / "xdg" / "sngan_gluon" / "folders")
    assert sorted(os.listdir(tmp_path / "xdg" / "sngan_gluon" / "folders" / folder)) == \
        ["4px-3ch.json", "4px-3ch.npy"]


def test_folder_cache_write_failure_only_warns(tmp_path, monkeypatch):
    _write_folder(tmp_path, ["a.png"])

    def disk_full(path, array):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(np, "save", disk_full)
    with pytest.warns(UserWarning, match="cannot cache .*No space left"):
        dataset = get_dataset("folder", root=str(tmp_path), image_size=4)
    assert len(dataset) == 1 and os.listdir(tmp_path / ".sngan_gluon_cache") == []


def test_folder_too_large_for_memory_is_refused_before_decoding(tmp_path, monkeypatch):
    _write_folder(tmp_path, ["a.png", "b.png"])
    monkeypatch.setattr(folder, "available_memory", lambda: 1000)
    _refuse_decoding(monkeypatch)
    with pytest.raises(DatasetError, match=r"2 images at 16x16x3 need 1\.5 KiB of memory, more "
                                           r"than the 1000 B available"):
        get_dataset("folder", root=str(tmp_path), image_size=16)


def test_available_memory_is_a_positive_number():
    assert data.available_memory() > 0
    assert data.format_bytes(3 * 2 ** 30) == "3.0 GiB" and data.format_bytes(512) == "512 B"


# --------------------------------------------------------------------------- common

def test_unknown_name_lists_valid_names():
    with pytest.raises(DatasetError) as err:
        get_dataset("imagenet")
    for name in data.DATASETS:
        assert name in str(err.value)


@pytest.mark.parametrize("kwargs", [dict(image_size=0), dict(image_size=2.5), dict(channels=2),
                                    dict(num_parts=0), dict(num_parts=2, part_index=2),
                                    dict(part_index=-1)])
def test_bad_arguments_raise(kwargs):
    with pytest.raises(DatasetError):
        get_dataset("synthetic", **kwargs)


def test_shards_are_disjoint_and_cover_the_split():
    full = get_dataset("synthetic", image_size=8)
    shards = [get_dataset("synthetic", image_size=8, num_parts=3, part_index=k) for k in range(3)]
    assert sum(len(s) for s in shards) == len(full)
    for k, shard in enumerate(shards):
        np.testing.assert_array_equal(shard.images, full.images[k::3])
        np.testing.assert_array_equal(shard.labels, full.labels[k::3])


def test_synthetic_is_deterministic_and_balanced():
    a, b = get_dataset("synthetic"), get_dataset("synthetic")
    np.testing.assert_array_equal(a.images, b.images)
    assert a.images.shape == (2048, 32, 32, 3) and np.bincount(a.labels).tolist() == [205] * 8 + [
        204] * 2
    test = get_dataset("synthetic", train=False)
    assert len(test) == 512 and not np.array_equal(test.images[:10], a.images[:10])


# --------------------------------------------------------------------------- tensors

def test_to_tensor_layout_and_range():
    batch = np.arange(256, dtype=np.uint8).reshape(4, 4, 4, 4)
    out = to_tensor(batch)
    assert isinstance(out, nd.NDArray) and out.dtype == np.float32 and out.shape == (4, 4, 4, 4)
    values = out.asnumpy()
    np.testing.assert_allclose(values, batch.transpose(0, 3, 1, 2) / 127.5 - 1, rtol=0, atol=1e-7)
    assert values.min() == -1 and values.max() == 1
    np.testing.assert_array_equal(to_tensor(nd.array(batch, dtype=np.uint8)).asnumpy(), values)
    with pytest.raises(DatasetError, match="uint8"):
        to_tensor(batch.astype(np.float32))


def test_to_uint8_inverts_to_tensor_and_clips():
    batch = np.random.RandomState(0).randint(0, 256, size=(3, 5, 6, 3)).astype(np.uint8)
    np.testing.assert_array_equal(to_uint8(to_tensor(batch)), batch)
    out = to_uint8(np.array([-3.0, -1.0, 0.0, 1.0, 7.0], np.float32).reshape(1, 1, 1, 5))
    assert out.dtype == np.uint8 and out.shape == (1, 1, 5, 1)
    np.testing.assert_array_equal(out.ravel(), [0, 0, 128, 255, 255])


# --------------------------------------------------------------------------- loader


# --------------------------------------------------------------------------- identity and readers
# (the folder cache's digest, the dataset's identity, one folder reader, the FID cache key, modes)

def test_folder_cache_garbled_on_disk_is_noticed_and_decoded_again(tmp_path):
    _write_folder(tmp_path, ["a.png", "b.png", "c.png"])
    first = get_dataset("folder", root=str(tmp_path), image_size=8).images.copy()
    array = str(tmp_path / ".sngan_gluon_cache" / "8px-3ch.npy")
    header = os.path.getsize(array) - first.nbytes
    with open(array, "r+b") as f:  # the header (shape, dtype) stays, the pixels are noise
        f.seek(header)
        noise = np.random.RandomState(0).randint(0, 256, first.nbytes).astype(np.uint8)
        f.write(noise.tobytes())
    with pytest.warns(UserWarning, match="8px-3ch.npy do not match their manifest"):
        again = get_dataset("folder", root=str(tmp_path), image_size=8)
    np.testing.assert_array_equal(again.images, first)
    np.testing.assert_array_equal(np.load(array), first)  # and the cache is rewritten


def test_a_dataset_knows_its_identity_and_a_changed_image_changes_it(tmp_path):
    _write_folder(tmp_path, ["a.png", "b.png", "c.png"])
    identity = get_dataset("folder", root=str(tmp_path), image_size=8).identity
    assert identity["dataset"] == "folder" and identity["count"] == 3
    assert identity["part"] == [0, 1] and len(identity["digest"]) == 32
    _write_image(str(tmp_path / "b.png"), np.full((12, 12, 3), 99, np.uint8))
    changed = get_dataset("folder", root=str(tmp_path), image_size=8).identity
    assert changed["count"] == 3 and changed["digest"] != identity["digest"]
    shard = get_dataset("folder", root=str(tmp_path), image_size=8, num_parts=2, part_index=1)
    assert shard.part == (1, 2) and shard.identity["part"] == [1, 2]
    assert shard.identity["count"] == 1


def test_the_folder_cache_follows_the_umask(tmp_path):
    _write_folder(tmp_path / "imgs", ["a.png", "b.png"])
    previous = os.umask(0o027)
    try:
        get_dataset("folder", root=str(tmp_path / "imgs"), image_size=8)
    finally:
        os.umask(previous)
    cache = tmp_path / "imgs" / ".sngan_gluon_cache"
    assert {name: oct(os.stat(str(cache / name)).st_mode & 0o777)
            for name in os.listdir(str(cache))} == {"8px-3ch.npy": "0o640",
                                                    "8px-3ch.json": "0o640"}


def test_evaluation_reads_a_folder_as_training_does(tmp_path):
    """Sub-folders included, sorted, greyscale as RGB (PIL's convert('RGB'), torch-fidelity's
    way): ``--images DIR`` and ``--dataset folder`` are the same pixels at the same size."""
    from PIL import Image
    from sngan_gluon.image_files import ImageFiles
    rng = np.random.RandomState(4)
    names = ["b.png", "cats/a.png", "cats/c.png", "grey.png"]  # sorted paths, by hand
    for name in names[:3]:
        _write_image(str(tmp_path / name), rng.randint(0, 256, (32, 32, 3)).astype(np.uint8))
    grey = rng.randint(0, 256, (32, 32)).astype(np.uint8)
    assert cv2.imwrite(str(tmp_path / "grey.png"), grey)
    expected = np.stack([np.asarray(Image.open(str(tmp_path / name)).convert("RGB"))
                         for name in names])
    files = ImageFiles(str(tmp_path))
    assert len(files) == 4
    np.testing.assert_array_equal(np.concatenate(list(files.batches(batch_size=3))), expected)
    trained_on = get_dataset("folder", root=str(tmp_path), image_size=32).images
    np.testing.assert_array_equal(trained_on, expected)


def test_the_fid_cache_key_names_channels_shard_and_contents():
    from sngan_gluon.evaluation import real_features_cache_path
    whole = real_features_cache_path("d", "cifar10", "train", 32, 3, 100, "tf-inception")
    assert whole == os.path.join("d", "fid_stats",
                                 "cifar10-train-32px-3ch-first100-tf-inception.npz")
    shard = real_features_cache_path("d", "folder", "train", 32, 1, 100, "tf-inception",
                                     part=(1, 2), digest="0123456789abcdef")
    assert shard == os.path.join("d", "fid_stats", "folder-train-32px-1ch-part2of2-first100-"
                                                   "0123456789ab-tf-inception.npz")


def test_a_ranks_shard_is_cached_under_its_own_name(tmp_path):
    from sngan_gluon.evaluation import dataset_features

    class Means:
        name = "means"

        def extract(self, batch):
            features = batch.reshape(len(batch), -1, 3).mean(axis=1)
            return features, features

    shard = get_dataset("synthetic", image_size=32, num_parts=2, part_index=1)
    whole = get_dataset("synthetic", image_size=32)
    a, _ = dataset_features(shard, "synthetic", str(tmp_path), "train", 50, Means())
    b, _ = dataset_features(whole, "synthetic", str(tmp_path), "train", 50, Means())
    assert not np.array_equal(a, b)  # the whole split's first 50 are not the shard's
    names = sorted(os.listdir(str(tmp_path / "fid_stats")))
    assert len(names) == 2 and "part2of2-first50" in names[0] + names[1]
