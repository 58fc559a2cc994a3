"""sigmas.csv and sigma.png: the layer norms of D that spectral normalization divides out.

Every ``--log-every`` iterations :class:`SigmaLog` appends a row to
``<run>/sigmas.csv`` (``iteration``, then one column per weight layer of D,
named by its path in the network: ``features.0``, ``head.linear``) and keeps
``<run>/sigma.png`` current (one line per layer on a log scale; redrawn as
:class:`~sngan_gluon.visualize.Redraw` says). The figures come from
:class:`~sngan_gluon.spectra.SigmaMonitor`:

* an SN layer: the sigma of its raw weight that its next forward divides by
  (its own ``u``, not advanced), so the plot shows how large the weights grow
  under the normalization;
* a plain layer (``--no-sn``): the largest singular value of its weight,
  estimated by the same power iteration on a ``u`` the monitor keeps, so
  nothing is written into the network and the run trains exactly as without
  the log. The two runs' files have the same columns and can be compared.

Reading the sigmas waits for the devices and copies one small array to the
host, once per logged iteration. A resumed run drops the rows after the
checkpoint's iteration, as log.csv does.
"""
import csv
import os

from .extensions import Extension
from .fileio import atomic_path
from .run_folder import writing
from .spectra import SigmaMonitor
from .visualize import Redraw, new_figure

__all__ = ["SigmaLog", "read_sigmas", "plot_sigmas", "SIGMAS_FILE", "SIGMA_PLOT"]

SIGMAS_FILE = "sigmas.csv"
SIGMA_PLOT = "sigma.png"


def read_sigmas(path, up_to=None):
    """The rows of a sigmas.csv: ``(layers, rows)``.

    ``layers``: the column names after ``iteration``; ``rows``: dicts layer ->
    float (``None`` where empty) plus ``iteration`` (int), oldest first, only
    those with ``iteration <= up_to`` when it is given. A missing file: no rows.
    """
    if not os.path.exists(path):
        return [], []
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        layers = [name for name in (reader.fieldnames or []) if name != "iteration"]
        rows = []
        for raw in reader:
            if not raw.get("iteration", "").isdigit():
                continue  # a line cut short by a crash
            row = {name: float(raw[name]) if raw.get(name) else None for name in layers}
            row["iteration"] = int(raw["iteration"])
            if up_to is None or row["iteration"] <= up_to:
                rows.append(row)
    return layers, rows


def plot_sigmas(layers, rows, path, title=None):
    """Plot each layer's sigma against the iteration, log scale, into the PNG ``path``.

    ``rows``: dicts with ``iteration`` and one float per name in ``layers``
    (as :func:`read_sigmas` returns); written whole or not at all.
    """
    fig = new_figure(figsize=(7.5, 4.5))
    ax = fig.subplots()
    for i, name in enumerate(layers):
        points = [(r["iteration"], r[name]) for r in rows if r.get(name)]
        if points:  # dashes once the 10 colours repeat (a ResNet has 12 layers)
            ax.plot(*zip(*points), "-" if i % 20 < 10 else "--", label=name,
                    marker="o" if len(points) == 1 else None)
    ax.set_yscale("log")
    ax.set_xlabel("generator iteration")
    ax.set_ylabel("largest singular value of the weight")
    ax.grid(alpha=0.3, which="both")
    if title:
        ax.set_title(title, fontsize=10)
    # outside the axes: a deep network has more layers than fit in a corner
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    # fixed margins: tight_layout would take 40% of the time of every redraw
    fig.subplots_adjust(left=0.1, right=0.76, bottom=0.12, top=0.92)
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=80)
    return path


class SigmaLog(Extension):
    """Write D's layer sigmas to sigmas.csv and sigma.png (see the module's docstring).

    ``latest``: ``(iteration, OrderedDict layer -> sigma)`` of the last call,
    None before the first, for other extensions (TensorBoard) to reuse.
    """

    def __init__(self):
        self.latest = None
        self.monitor = self.layers = self.rows = self._plot = None

    def initialize(self, trainer):
        self.monitor = SigmaMonitor(trainer.D)
        self.layers = list(self.monitor.layers)
        folder = trainer.run.path
        _, kept = read_sigmas(os.path.join(folder, SIGMAS_FILE), up_to=trainer.iteration)
        self.rows = kept
        with writing(folder, SIGMAS_FILE), \
                atomic_path(os.path.join(folder, SIGMAS_FILE)) as tmp:
            with open(tmp, "w", newline="") as f:  # rows after a resumed checkpoint go
                writer = csv.writer(f)
                writer.writerow(["iteration"] + self.layers)
                writer.writerows(self._cells(row) for row in kept)
        self._title = ("D's layer sigmas that spectral normalization divides by"
                       if trainer.config.sn else "D's largest singular values (no SN)")
        self._plot = Redraw(lambda: self._draw(folder))

    def __call__(self, trainer):
        sigmas = self.monitor()
        self.latest = (trainer.iteration, sigmas)
        row = dict(sigmas, iteration=trainer.iteration)
        folder = trainer.run.path
        with writing(folder, SIGMAS_FILE), \
                open(os.path.join(folder, SIGMAS_FILE), "a", newline="") as f:
            csv.writer(f).writerow(self._cells(row))
        self.rows.append(row)
        self._plot()
        return sigmas

    def finalize(self, trainer):
        self._plot.flush()

    def _draw(self, folder):
        with writing(folder, SIGMA_PLOT):
            plot_sigmas(self.layers, self.rows, os.path.join(folder, SIGMA_PLOT), self._title)

    def _cells(self, row):
        return [row["iteration"]] + ["" if row.get(name) is None else "%.7g" % row[name]
                                     for name in self.layers]
