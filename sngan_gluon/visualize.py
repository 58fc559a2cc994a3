"""Image grids and training curves as PNG files (matplotlib, no display needed).

Each file is written whole or not at all (:func:`sngan_gluon.fileio.atomic_path`),
so a reader never sees half a picture.
"""
import textwrap
import time

import numpy as np

from .fileio import atomic_path

#: While training, loss.png and sigma.png are redrawn at most once in this many seconds
#: (and once more at the end): a drawing takes a quarter of a second on a CPU core.
REDRAW_SECONDS = 30.0


def new_figure(**kwargs):
    """A matplotlib ``Figure`` of its own, for a file: no pyplot, so no window, no global
    figure registry and no change to the backend of the process that imports us (a
    notebook keeps its inline plots); ``savefig`` draws it with Agg."""
    from matplotlib.figure import Figure
    return Figure(**kwargs)


class Redraw:
    """A picture kept current without drawing it at every change.

    Each call says the picture's data changed: ``draw()`` runs at once when it is the
    first call or ``seconds`` have passed since the last drawing, and is otherwise left
    for later. :meth:`flush` draws what was left (at the end of training, however it ends).
    """

    def __init__(self, draw, seconds=REDRAW_SECONDS, clock=time.monotonic):
        self.draw, self.seconds, self.clock = draw, seconds, clock
        self.last, self.pending = None, False

    def __call__(self):
        if self.last is not None and self.clock() - self.last < self.seconds:
            self.pending = True
            return
        self.draw()
        self.last, self.pending = self.clock(), False

    def flush(self):
        """Draw now if a change since the last drawing was left for later."""
        if self.pending:
            self.draw()
            self.last, self.pending = self.clock(), False


def image_grid(images, nrow=None, padding=2, pad_value=255):
    """Tile images into one picture.

    Parameters
    ----------
    images : uint8 array (N, H, W, C), C in {1, 3}.
    nrow : images per row (default: ceil(sqrt(N))).

    Returns
    -------
    uint8 array (rows * (H + padding) + padding, nrow * (W + padding) + padding, C).
    """
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[-1] not in (1, 3):
        raise ValueError("image_grid expects (N, H, W, C) with C in {1, 3}, got %s"
                         % (images.shape,))
    n, h, w, c = images.shape
    nrow = nrow or int(np.ceil(np.sqrt(n)))
    rows = int(np.ceil(n / nrow))
    grid = np.full((rows * (h + padding) + padding, nrow * (w + padding) + padding, c),
                   pad_value, dtype=np.uint8)
    for i in range(n):
        r, col = divmod(i, nrow)
        top, left = padding + r * (h + padding), padding + col * (w + padding)
        grid[top:top + h, left:left + w] = images[i]
    return grid


def save_image_grid(images, path, nrow=None, caption=None):
    """Write :func:`image_grid` of uint8 (N, H, W, C) ``images`` to ``path`` (PNG)."""
    grid = image_grid(images, nrow=nrow)
    height, width = grid.shape[:2]
    dpi, scale = 100, 2.0
    fig_w = width * scale / dpi
    # A caption wider than a narrow grid is wrapped (a 9 pt character is about 5 pt wide).
    lines = textwrap.wrap(caption, max(10, int(fig_w * 72 / 5.5))) if caption else []
    extra = 0.12 + 0.16 * len(lines) if lines else 0.0  # inches of caption below the grid
    fig_h = height * scale / dpi + extra
    fig = new_figure(figsize=(fig_w, fig_h), dpi=dpi)
    ax = fig.add_axes([0, extra / fig_h, 1, 1 - extra / fig_h])
    ax.imshow(grid[..., 0] if grid.shape[-1] == 1 else grid, cmap="gray", vmin=0, vmax=255,
              interpolation="nearest")
    ax.axis("off")
    if caption:
        fig.text(0.5, extra / fig_h / 2, "\n".join(lines), ha="center", va="center",
                 fontsize=9)
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=dpi)


def plot_curves(rows, path, metrics=("is_mean", "fid")):
    """Plot d_loss and g_loss against iteration (and IS / FID when logged) to ``path``.

    Parameters
    ----------
    rows : list of dicts as written to ``log.csv`` (keys ``iteration``, ``d_loss``,
        ``g_loss`` and optionally the names in ``metrics``; empty strings are skipped).
    """
    present = [m for m in metrics if any(r.get(m) not in (None, "") for r in rows)]
    width = 6 + 4 * len(present)  # inches: 6 for the losses, 4 per metric
    fig = new_figure(figsize=(width, 4))
    axes = fig.subplots(1, 1 + len(present), squeeze=False)
    # fixed margins in inches (tight_layout would take 40% of every redraw)
    fig.subplots_adjust(left=0.75 / width, right=1 - 0.3 / width, bottom=0.13, top=0.96,
                        wspace=0.3)
    it = [int(r["iteration"]) for r in rows]
    ax = axes[0, 0]
    for key, label in (("d_loss", "discriminator"), ("g_loss", "generator")):
        ax.plot(it, [float(r[key]) for r in rows], label=label)
    ax.set_xlabel("generator iteration")
    ax.set_ylabel("loss")
    ax.legend()
    ax.grid(alpha=0.3)
    for ax, key in zip(axes[0, 1:], present):
        pts = [(int(r["iteration"]), float(r[key])) for r in rows if r.get(key) not in (None, "")]
        ax.plot(*zip(*pts), marker="o")
        ax.set_xlabel("generator iteration")
        ax.set_ylabel({"is_mean": "Inception Score", "fid": "FID"}.get(key, key))
        ax.grid(alpha=0.3)
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=80)
