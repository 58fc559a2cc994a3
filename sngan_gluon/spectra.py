"""What spectral normalization does to a network: each layer's sigma and singular values.

* :class:`SigmaMonitor` / :func:`layer_sigmas`: each weight layer's largest
  singular value as power iteration estimates it. For an SN layer it is the
  sigma its next forward divides by (its own ``u``, not advanced); for a plain
  layer (a ``--no-sn`` network) the same power iteration runs on a ``u`` the
  monitor keeps itself, so nothing is written into the network and runs with
  and without SN can be compared. Cheap enough for every logging interval.
* :func:`layer_spectra`: the singular values of the matrix each layer
  multiplies by (``W / sigma`` for SN layers, ``W`` for plain ones), as in the
  paper's figure of singular values (Miyato et al. 2018, section 4.1).
* :func:`load_discriminator` and :func:`plot_spectra` serve
  ``python -m sngan_gluon.spectra_report``.

Layers are named by their path in the network (``features.0``, ``head.linear``),
the names ``save_parameters`` uses, so they match across runs and processes.
"""
import os
from collections import OrderedDict

import numpy as np

import mxnet as mx
from mxnet import nd

from . import checkpoint as ckpt
from .checkpoint_search import load_newest
from .fileio import atomic_path, user_output
from .models import get_discriminator
from .nn.spectral_norm import SpectralNormMixin, weight_matrix
from .nn.walk import layer_matrix, out_axis, weight_layers
from .nn.warmup import iterate_to
from .visualize import new_figure

__all__ = ["weight_layers", "layer_matrix", "SigmaMonitor", "layer_sigmas", "layer_spectra",
           "describe_layers", "format_table", "plot_spectra", "load_discriminator"]


class SigmaMonitor:
    """Each weight layer's sigma estimate, read with one host transfer per call.

    Parameters
    ----------
    net : gluon.Block
        An initialized network, with or without SN layers; never modified.
    iterations, tol
        Power iterations for plain layers: the first call iterates to ``tol`` as
        :func:`~sngan_gluon.nn.warmup.iterate_to` does; later calls continue from
        the previous call's ``u`` by ``iterations`` steps, which follow weights
        that moved between calls at no host round trip.
    seed : int
        Seed of the plain layers' first ``u`` (numpy's: MXNet's stream is left alone).

    Calling the monitor returns an OrderedDict path -> float.
    """

    def __init__(self, net, iterations=15, tol=1e-4, seed=0):
        self.layers = weight_layers(net)
        self.iterations, self.tol = iterations, tol
        self._rng = np.random.RandomState(seed)
        self._u = {}  # path -> (1, rows) NDArray, plain layers only

    def _plain_sigma(self, path, layer):
        w_mat = layer_matrix(layer)
        u, tol = self._u.get(path), None
        if u is None:
            u = nd.array(self._rng.normal(size=(1, w_mat.shape[0])), ctx=w_mat.context)
            tol = self.tol
        sigma, self._u[path] = iterate_to(w_mat, u, self.iterations, tol)
        return sigma

    def __call__(self):
        # Under hybridize(static_alloc=True) an SN layer's in-graph write of u is
        # ordered only before the graph's outputs: wait for them before reading u.
        nd.waitall()
        sigmas = []
        for path, layer in self.layers.items():
            if isinstance(layer, SpectralNormMixin):
                ctx = layer.weight.list_ctx()[0]
                sigmas.append(layer._sigma(nd, layer.weight.data(ctx), layer.u.data(ctx), False)
                              .as_in_context(mx.cpu()))
            else:
                sigmas.append(self._plain_sigma(path, layer).as_in_context(mx.cpu()))
        if not sigmas:
            return OrderedDict()
        values = nd.concat(*[s.reshape((1,)) for s in sigmas], dim=0).asnumpy()
        return OrderedDict(zip(self.layers, values.astype(float).tolist()))


def layer_sigmas(net, **kwargs):
    """OrderedDict path -> sigma estimate of every weight layer of ``net`` (see
    :class:`SigmaMonitor`, which keeps the plain layers' ``u`` between calls)."""
    return SigmaMonitor(net, **kwargs)()


def layer_spectra(net):
    """OrderedDict path -> singular values (descending, float64) of the matrix each layer
    multiplies by: ``W / sigma`` (the SN layer's next forward) or the plain ``W``."""
    out = OrderedDict()
    for path, layer in weight_layers(net).items():
        if isinstance(layer, SpectralNormMixin):
            w_mat = weight_matrix(nd, layer.normalized_weight(), out_axis(layer))
        else:
            w_mat = layer_matrix(layer)
        out[path] = np.linalg.svd(w_mat.asnumpy().astype(np.float64), compute_uv=False)
    return out


def describe_layers(net, spectra=None):
    """One row per weight layer: dict(layer, kind, shape, sigma, svd_sigma, top) with
    ``sigma`` the power-iteration estimate, ``svd_sigma`` the raw weight's largest
    singular value and ``top`` that of the matrix the layer multiplies by.

    ``spectra``: :func:`layer_spectra` of ``net`` where the caller has it already (an
    SVD of every layer is the expensive part)."""
    sigmas = layer_sigmas(net)
    spectra = layer_spectra(net) if spectra is None else spectra
    rows = []
    for path, layer in weight_layers(net).items():
        w_mat = layer_matrix(layer)
        top = float(spectra[path][0])
        # a plain layer multiplies by its raw weight: its spectrum's top is svd_sigma
        svd_sigma = (np.linalg.norm(w_mat.asnumpy().astype(np.float64), 2)
                     if isinstance(layer, SpectralNormMixin) else top)
        rows.append(dict(layer=path, kind=type(layer).__name__, shape=w_mat.shape,
                         sigma=sigmas[path], svd_sigma=svd_sigma, top=top))
    return rows


def format_table(rows):
    """The rows of :func:`describe_layers` as aligned text lines."""
    header = ("layer", "type", "matrix", "sigma (estimate)", "sigma (SVD)",
              "max s.v. applied")
    cells = [header] + [(r["layer"], r["kind"], "%dx%d" % r["shape"], "%.4g" % r["sigma"],
                         "%.4g" % r["svd_sigma"], "%.4g" % r["top"]) for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    return ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in cells]


def plot_spectra(spectra, path, title=None):
    """Plot each layer's squared singular values scaled to a largest of 1 (as the paper's
    figure) into the PNG ``path``, one panel per layer and one line per run.

    ``spectra``: OrderedDict run label -> (OrderedDict layer -> singular values);
    layers are matched by name across runs. A ``path`` that cannot be written is
    an :class:`~sngan_gluon.fileio.OutputError`.
    """
    layers = []
    for run in spectra.values():
        layers.extend(name for name in run if name not in layers)
    if not layers:
        raise ValueError("no layer with a weight to plot")
    cols = min(4, len(layers))
    rows = (len(layers) + cols - 1) // cols
    fig = new_figure(figsize=(3.2 * cols, 2.6 * rows))
    axes = fig.subplots(rows, cols, squeeze=False)
    for ax, name in zip(axes.flat, layers):
        for (label, run), style in zip(spectra.items(), ("-", "--", ":", "-.") * 4):
            if name in run and run[name].size and run[name][0] > 0:
                s = run[name]
                # dashes tell overlapping runs apart; a marker shows a 1-row matrix
                ax.plot(np.arange(len(s)), (s / s[0]) ** 2, style, label=label,
                        marker="o" if len(s) < 3 else None)
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("index of singular value", fontsize=8)
        ax.set_ylim(0, 1.05)
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[len(layers):]:
        ax.axis("off")
    axes.flat[0].set_ylabel("squared singular value (largest = 1)", fontsize=8)
    axes.flat[0].legend(fontsize=7)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    with user_output(path), atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100)
    return path


def load_discriminator(checkpoint, ctx=None):
    """The discriminator of a checkpoint (a run folder: its newest one that loads).

    Returns ``(net, info)``: the network with its saved weights and ``u``, and a
    dict with ``path``, ``iteration``, ``arch`` and ``sn``. Raises
    :class:`~sngan_gluon.checkpoint.CheckpointError` (one line) when the
    checkpoint is missing, incomplete or unreadable.
    """
    return load_newest(checkpoint, lambda path: _load_discriminator(path, ctx))[1]


def _load_discriminator(path, ctx):
    state = ckpt.read_state(path)
    config = state["config"]
    params = os.path.join(path, "discriminator.params")
    try:
        net = get_discriminator(config["arch"], image_size=int(state["image_size"]),
                                num_classes=int(state.get("num_classes", 0)),
                                channels=int(state["channels"]), ch=config.get("d_ch"),
                                sn=bool(config.get("sn", True)),
                                power_iterations=int(config.get("power_iterations", 1)))
    except (KeyError, TypeError, ValueError) as err:
        raise ckpt.CheckpointError("checkpoint %s is corrupt: cannot rebuild its discriminator "
                                   "(%s)" % (path, ckpt.error_summary(err)))
    try:
        net.load_parameters(params, ctx=ctx or mx.cpu())
    except (mx.base.MXNetError, OSError, ValueError, AssertionError) as err:
        raise ckpt.DamagedCheckpoint("cannot load %s: %s" % (params, ckpt.error_summary(err)))
    info = dict(path=path, iteration=int(state["iteration"]), arch=config["arch"],
                sn=bool(config.get("sn", True)))
    return net, info
