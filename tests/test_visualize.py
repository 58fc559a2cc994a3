"""Image grids and curves."""
import os

import numpy as np
import pytest

import sngan_gluon  # noqa: F401
from sngan_gluon.visualize import Redraw, image_grid, plot_curves, save_image_grid


def test_image_grid_places_each_image_in_its_cell():
    images = np.stack([np.full((4, 5, 3), i * 20, np.uint8) for i in range(5)])
    grid = image_grid(images, nrow=3, padding=1, pad_value=255)
    assert grid.shape == (2 * 5 + 1, 3 * 6 + 1, 3)
    for i in range(5):
        r, c = divmod(i, 3)
        cell = grid[1 + r * 5:1 + r * 5 + 4, 1 + c * 6:1 + c * 6 + 5]
        assert (cell == i * 20).all()
    assert (grid[0] == 255).all()  # padding row
    assert (grid[6:10, 13:18] == 255).all()  # the empty sixth cell


def test_redraw_draws_at_once_then_at_most_once_per_interval_and_flushes_what_it_left():
    now, drawn = [0.0], []
    redraw = Redraw(lambda: drawn.append(now[0]), seconds=30, clock=lambda: now[0])
    redraw.flush()
    assert drawn == []  # nothing changed yet: nothing to draw
    for t in (0, 10, 29.5, 30, 31, 75):
        now[0] = t
        redraw()
    assert drawn == [0, 30, 75]
    redraw.flush()
    assert drawn == [0, 30, 75]  # the last change was drawn
    now[0] = 80
    redraw()
    redraw.flush()
    assert drawn == [0, 30, 75, 80]


def test_image_grid_rejects_bad_shapes():
    with pytest.raises(ValueError, match="N, H, W, C"):
        image_grid(np.zeros((2, 4, 4, 2), np.uint8))


def test_save_image_grid_and_curves_write_pngs(tmp_path):
    import matplotlib.image as mpimg
    images = np.random.RandomState(0).randint(0, 255, size=(6, 8, 8, 1)).astype(np.uint8)
    path = str(tmp_path / "g.png")
    save_image_grid(images, path, caption="six images")
    picture = mpimg.imread(path)
    assert picture.ndim == 3 and picture.shape[0] > 0
    rows = [dict(iteration=i, d_loss=1.0 / i, g_loss=i / 10.0, fid="" if i % 2 else 5.0)
            for i in range(1, 6)]
    plot_curves(rows, str(tmp_path / "loss.png"))
    assert mpimg.imread(str(tmp_path / "loss.png")).shape[1] > 400  # loss + FID panels
    assert sorted(os.listdir(tmp_path)) == ["g.png", "loss.png"]  # no temporary file left


def test_a_failed_write_keeps_the_previous_picture(tmp_path, monkeypatch):
    from matplotlib.figure import Figure
    images = np.zeros((4, 8, 8, 3), np.uint8)
    path = tmp_path / "g.png"
    save_image_grid(images, str(path))
    before = path.read_bytes()

    def disk_full(self, fname, *args, **kwargs):
        open(fname, "wb").write(b"half a pic")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Figure, "savefig", disk_full)
    with pytest.raises(OSError):
        save_image_grid(images + 255, str(path))
    with pytest.raises(OSError):
        plot_curves([dict(iteration=1, d_loss=1.0, g_loss=1.0)], str(tmp_path / "loss.png"))
    assert path.read_bytes() == before and sorted(os.listdir(tmp_path)) == ["g.png"]


def test_a_long_caption_under_a_narrow_grid_is_wrapped_inside_the_picture(tmp_path):
    from PIL import Image
    images = np.zeros((6, 32, 32, 3), np.uint8)
    caption = "dcgan generator (EMA) on digits (32x32), iteration 750, 6 samples beside their nearest"
    path = str(tmp_path / "narrow.png")
    save_image_grid(images, path, nrow=2, caption=caption)
    picture = np.asarray(Image.open(path).convert("L"))
    grid_rows = 2 * (3 * 34 + 2)  # image_grid's rows (2 px padding), drawn at scale 2
    band = picture[grid_rows + 2:]  # the caption below the grid
    assert (band < 128).any()  # the caption is drawn
    assert (band[:, :3] > 200).all() and (band[:, -3:] > 200).all()  # and not cut at the sides


def test_pictures_leave_the_callers_matplotlib_as_it_was(tmp_path):
    """A notebook that draws a grid or a curve keeps its backend (inline plots), and no
    figure is left open in pyplot's registry."""
    import sys
    import matplotlib
    from sngan_gluon.sigma_log import plot_sigmas
    from sngan_gluon.spectra import plot_spectra
    had_pyplot = "matplotlib.pyplot" in sys.modules
    before = dict.__getitem__(matplotlib.rcParams, "backend")  # unresolved: no pyplot import
    matplotlib.use("svg")  # as a notebook's own choice stands for
    try:
        save_image_grid(np.zeros((4, 8, 8, 3), np.uint8), str(tmp_path / "g.png"))
        plot_curves([dict(iteration=1, d_loss=1.0, g_loss=1.0)], str(tmp_path / "loss.png"))
        plot_sigmas(["a"], [dict(iteration=1, a=1.5)], str(tmp_path / "sigma.png"))
        plot_spectra({"run": {"a": np.array([2.0, 1.0])}}, str(tmp_path / "s.png"))
        assert had_pyplot or "matplotlib.pyplot" not in sys.modules
        assert matplotlib.get_backend() == "svg"
        if had_pyplot:
            assert sys.modules["matplotlib.pyplot"].get_fignums() == []
    finally:
        matplotlib.rcParams["backend"] = before
    for name in ("g.png", "loss.png", "sigma.png", "s.png"):
        with open(str(tmp_path / name), "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n"
