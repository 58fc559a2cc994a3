"""Generators as ONNX models, and ONNX generators run with onnxruntime.

:func:`export_generator` writes a checkpoint's generator (its EMA weights by
default) as one ``.onnx`` file that runs without MXNet:

* inputs ``z`` float32 ``(N, z_dim)`` and, for a conditional generator,
  ``y`` int64 ``(N,)`` (class labels; int64 is what torch-fidelity and most
  callers pass); ``N`` is dynamic;
* output ``images``: float32 ``(N, C, S, S)`` in [-1, 1], or with ``uint8=True``
  uint8 ``(N, 3, S, S)`` in 0..255, quantized as
  :func:`sngan_gluon.data.to_uint8` (``round((x + 1) * 127.5)``, ties to even,
  clipped) with a grey channel repeated: the form torch-fidelity's
  ``--input1 g.onnx`` generator input feeds to its Inception network;
* ``metadata_props``: ``z_dim``, ``num_classes``, ``image_size``, ``channels``,
  ``output`` (``float`` or ``uint8``), ``arch``, ``dataset``, ``iteration``,
  ``ema`` and ``written_by`` (``sngan_gluon``, which marks the file as one this
  package may replace).

The graph is MXNet's own exporter's (``HybridBlock.export`` then
``mx.onnx.export_model``), tidied: inputs and the output are renamed, weights
are removed from the graph inputs (onnxruntime then folds them as constants),
the labels are cast to the int32 the exported one-hot expects, and the gamma of
a BatchNorm with ``scale=False`` is written as the 1 MXNet uses (the exporter
would use the stored value).

:class:`OnnxGenerator` loads such a file and draws images with the same
sequence of noise draws as :func:`sngan_gluon.sampling.generate_batches`.
``onnx`` and ``onnxruntime`` come in the ``export`` extra; without them both
raise :class:`OnnxUnavailable` naming it.
"""
import importlib
import json
import logging
import os
import tempfile

import numpy as np

import mxnet as mx
from mxnet import nd

from .data import to_uint8
from .errors import UserError
from .fileio import atomic_path, error_summary, user_output
from .sampling import LoadedGenerator, check_label, check_truncation, generate_batches

__all__ = ["OnnxUnavailable", "ExportError", "export_block", "export_generator",
           "OnnxGenerator", "read_metadata", "WRITTEN_BY"]

#: ``metadata_props['written_by']`` of every file this module writes.
WRITTEN_BY = "sngan_gluon"


class OnnxUnavailable(UserError, ImportError):
    """``onnx`` or ``onnxruntime`` is not installed (``pip install sngan_gluon[export]``)."""


class ExportError(UserError, ValueError):
    """A generator cannot be exported to, or loaded from, the path given; the message says why."""


def _require(name):
    try:
        return importlib.import_module(name)
    except ImportError as err:
        raise OnnxUnavailable("%s is not installed (%s); install the export extra: pip install "
                              "'sngan_gluon[export]'" % (name, error_summary(err)))


def read_metadata(path):
    """The ``metadata_props`` of the ONNX file at ``path`` as a dict of strings.

    Raises :class:`ExportError` when the file is missing or not an ONNX model.
    """
    onnx = _require("onnx")
    if not os.path.isfile(path):
        raise ExportError("%s: no such ONNX file" % path)
    try:
        model = onnx.load(path, load_external_data=False)
    except Exception as err:  # protobuf raises DecodeError, onnx its own: any means "not ONNX"
        raise ExportError("%s is not an ONNX model (%s)" % (path, error_summary(err)))
    return {p.key: p.value for p in model.metadata_props}


def _check_replaceable(path):
    """Refuse to write over a file this package did not write (ExportError)."""
    if os.path.lexists(path):
        if os.path.isdir(path) or not os.path.isfile(path):
            raise ExportError("--out %s exists and is not a file" % path)
        try:
            ours = read_metadata(path).get("written_by") == WRITTEN_BY
        except ExportError:
            ours = False
        if not ours:
            raise ExportError("--out %s exists and was not written by sngan_gluon; remove it "
                              "or choose another name" % path)


def _rename(graph, old, new):
    for node in graph.node:
        node.input[:] = [new if n == old else n for n in node.input]
        node.output[:] = [new if n == old else n for n in node.output]
    for value in list(graph.input) + list(graph.output):
        if value.name == old:
            value.name = new


def _append_uint8(graph, helper, onnx, channels):
    """Append ``round((x + 1) * 127.5)`` clipped to 0..255, as uint8, 3 channels, to the output.

    Clip takes its bounds as inputs (opset 11 and later; MXNet's exporter writes opset 12+).
    """
    out = graph.output[0]
    x = out.name
    consts = {"_u8_one": 1.0, "_u8_half_range": 127.5, "_u8_lo": 0.0, "_u8_hi": 255.0}
    for name, value in consts.items():
        graph.initializer.append(helper.make_tensor(name, onnx.TensorProto.FLOAT, [], [value]))
    nodes = [helper.make_node("Add", [x, "_u8_one"], ["_u8_shift"]),
             helper.make_node("Mul", ["_u8_shift", "_u8_half_range"], ["_u8_scaled"]),
             helper.make_node("Round", ["_u8_scaled"], ["_u8_round"]),
             helper.make_node("Clip", ["_u8_round", "_u8_lo", "_u8_hi"], ["_u8_clip"]),
             helper.make_node("Cast", ["_u8_clip"], ["_u8_cast"], to=onnx.TensorProto.UINT8)]
    last = "_u8_cast"
    if channels == 1:  # torch-fidelity's Inception takes RGB: repeat the grey channel
        graph.initializer.append(helper.make_tensor("_u8_repeats", onnx.TensorProto.INT64, [4],
                                                    [1, 3, 1, 1]))
        nodes.append(helper.make_node("Tile", ["_u8_cast", "_u8_repeats"], ["_u8_rgb"]))
        last = "_u8_rgb"
    graph.node.extend(nodes)
    graph.output.remove(out)
    graph.output.append(helper.make_tensor_value_info(last, onnx.TensorProto.UINT8,
                                                      [None] * 4))


def _fixed_gammas(symbol_file):
    """Names of the gammas of BatchNorms with ``fix_gamma`` (Gluon's ``scale=False``)."""
    with open(symbol_file) as f:
        nodes = json.load(f)["nodes"]
    fixed = []
    for node in nodes:
        if node["op"] == "BatchNorm":
            # the operator's default is fix_gamma=True; Gluon writes the attribute
            flag = node.get("attrs", {}).get("fix_gamma", "True")
            if flag.lower() in ("true", "1"):
                fixed.append(nodes[node["inputs"][1][0]]["name"])
    return fixed


def _unfix_gammas(prefix):
    """Write 1 into the gammas of BatchNorms with ``fix_gamma`` in ``<prefix>-0000.params``.

    MXNet's BatchNorm with ``fix_gamma`` multiplies by 1 whatever gamma holds;
    the exporter's BatchNormalization (MXNet 1.9.1) multiplies by the stored
    gamma. Gluon keeps such a gamma at 1, but a loaded or edited one need not
    be, so the value the network actually uses is written.
    """
    path = prefix + "-0000.params"
    params = nd.load(path)  # keys 'arg:NAME' / 'aux:NAME'
    for name in _fixed_gammas(prefix + "-symbol.json"):
        params["arg:" + name] = nd.ones_like(params["arg:" + name])
    nd.save(path, params)


def export_block(net, input_shapes, path, metadata=None, input_names=None, uint8=False,
                 output_name="images"):
    """Write a hybridizable Gluon block as an ONNX model with a dynamic batch dimension.

    Parameters
    ----------
    net : mxnet.gluon.HybridBlock
        Initialized; it is hybridized and run once on zeros of batch 1.
    input_shapes : list of (shape, dtype)
        One per input, each ``shape`` without the batch axis: ``[((z_dim,), 'float32'),
        ((), 'int64')]`` for a conditional generator. An int64 input is fed to the
        graph as int32 (MXNet's exporter writes int32 one-hot indices).
    path : str
        The ``.onnx`` file, written whole or not at all.
    metadata : dict, optional
        Written into ``metadata_props`` (values as strings).
    input_names : list of str, optional
        Names of the graph inputs (default: ``x0``, ``x1``, ...).
    output_name : str
        Name of the graph output.
    uint8 : bool
        Append the quantization to uint8 RGB (see the module's docstring).
    """
    onnx = _require("onnx")
    helper = onnx.helper
    input_names = input_names or ["x%d" % i for i in range(len(input_shapes))]
    mx_types = [np.int32 if np.dtype(t) == np.int64 else np.dtype(t).type
                for _, t in input_shapes]
    net.hybridize()
    out_shape = net(*[nd.zeros((1,) + tuple(s), dtype=t)
                      for (s, _), t in zip(input_shapes, mx_types)]).shape[1:]
    with tempfile.TemporaryDirectory(prefix="sngan-onnx-") as folder:
        prefix = os.path.join(folder, "net")
        net.export(prefix)
        _unfix_gammas(prefix)
        raw = os.path.join(folder, "net.onnx")
        logging.disable(logging.WARNING)  # the exporter warns about every `dot` it converts
        try:
            mx.onnx.export_model(prefix + "-symbol.json", prefix + "-0000.params",
                                 in_shapes=[(1,) + tuple(s) for s, _ in input_shapes],
                                 in_types=mx_types, onnx_file_path=raw, dynamic=True,
                                 dynamic_input_shapes=[(None,) + tuple(s)
                                                       for s, _ in input_shapes])
        except (mx.base.MXNetError, AttributeError, KeyError, NotImplementedError) as err:
            raise ExportError("MXNet's ONNX exporter failed: %s" % error_summary(err))
        finally:
            logging.disable(logging.NOTSET)
        model = onnx.load(raw)
    graph = model.graph
    weights = {w.name for w in graph.initializer}
    data_inputs = [v for v in graph.input if v.name not in weights]
    for value in [v for v in graph.input if v.name in weights]:
        graph.input.remove(value)  # weights are constants, not inputs a caller may override
    for value, name, (_, dtype) in zip(data_inputs, input_names, input_shapes):
        if np.dtype(dtype) == np.int64:
            cast = name + "_int32"
            _rename(graph, value.name, cast)
            value.name = name
            value.type.tensor_type.elem_type = onnx.TensorProto.INT64
            graph.node.insert(0, helper.make_node("Cast", [name], [cast],
                                                  to=onnx.TensorProto.INT32))
        else:
            _rename(graph, value.name, name)
        value.type.tensor_type.shape.dim[0].dim_param = "batch"
    if uint8:
        _rename(graph, graph.output[0].name, "float_images")
        _append_uint8(graph, helper, onnx, out_shape[0])
        out_shape = (3,) + tuple(out_shape[1:])
    _rename(graph, graph.output[0].name, output_name)
    dims = graph.output[0].type.tensor_type.shape.dim
    for dim, size in zip(dims, ("batch",) + tuple(out_shape)):
        if isinstance(size, str):
            dim.dim_param = size
        else:
            dim.dim_value = size
    for key, value in sorted((metadata or {}).items()):
        entry = model.metadata_props.add()
        entry.key, entry.value = key, str(value)
    model.producer_name = WRITTEN_BY
    try:
        onnx.checker.check_model(model)
    except onnx.checker.ValidationError as err:
        raise ExportError("the exported model does not pass onnx.checker: %s"
                          % error_summary(err))
    with user_output(path), atomic_path(path, suffix=".onnx") as tmp:
        onnx.save(model, tmp)
    return path


def export_generator(checkpoint, out, ema=True, uint8=False, ctx=None):
    """Write a checkpoint's generator to ``out`` as ONNX (``sngan-export``).

    Parameters
    ----------
    checkpoint : str
        A run folder (its newest checkpoint) or a checkpoint folder.
    out : str
        The ``.onnx`` file. An existing file is replaced only when this package
        wrote it (its ``written_by`` metadata); otherwise :class:`ExportError`.
    ema : bool
        The EMA generator when the run kept one (default), else the raw one.
    uint8 : bool
        uint8 RGB output for torch-fidelity instead of float in [-1, 1].

    Returns
    -------
    dict
        The metadata written, with ``path``.
    """
    _require("onnx")
    if not out.lower().endswith(".onnx"):
        raise ExportError("--out must end in .onnx, got %r" % out)
    _check_replaceable(out)
    gen = LoadedGenerator(checkpoint, ctx=ctx, use_ema=ema)
    metadata = {"z_dim": gen.z_dim, "num_classes": gen.num_classes,
                "image_size": gen.image_size, "channels": gen.channels,
                "output": "uint8" if uint8 else "float", "arch": gen.config["arch"],
                "dataset": gen.config["dataset"], "iteration": gen.iteration,
                "ema": int(gen.ema), "written_by": WRITTEN_BY}
    inputs = [((gen.z_dim,), "float32")]
    names = ["z"]
    if gen.num_classes:
        inputs.append(((), "int64"))
        names.append("y")
    export_block(gen.net, inputs, out, metadata=metadata, input_names=names, uint8=uint8)
    return dict(metadata, path=out)


class OnnxGenerator:
    """An exported generator run by onnxruntime, sampled as a checkpoint's generator is.

    Attributes: ``z_dim``, ``num_classes``, ``image_size``, ``channels``,
    ``output`` (``float`` or ``uint8``), ``iteration``, ``ema``, ``config``
    (``arch`` and ``dataset``), ``path``, ``metadata`` (all of it, strings).
    """

    def __init__(self, path):
        ort = _require("onnxruntime")
        meta = read_metadata(path)
        missing = [k for k in ("z_dim", "num_classes", "image_size", "channels", "output")
                   if k not in meta]
        if missing:
            raise ExportError("%s lacks the metadata %s: it was not written by sngan-export"
                              % (path, ", ".join(missing)))
        self.path, self.metadata = path, meta
        self.z_dim, self.num_classes = int(meta["z_dim"]), int(meta["num_classes"])
        self.image_size, self.channels = int(meta["image_size"]), int(meta["channels"])
        self.output = meta["output"]
        self.iteration = int(meta.get("iteration", -1))
        self.ema = bool(int(meta.get("ema", 0)))
        self.config = {"arch": meta.get("arch", "unknown"), "dataset": meta.get("dataset")}
        options = ort.SessionOptions()
        options.log_severity_level = 3  # no per-initializer warnings on stderr
        try:
            self.session = ort.InferenceSession(path, options,
                                                providers=["CPUExecutionProvider"])
        except Exception as err:  # onnxruntime's own kinds (Fail, InvalidGraph, ...): any
            raise ExportError("onnxruntime cannot run %s: %s" % (path, error_summary(err)))

    def __call__(self, z, y=None):
        """Run the model: ``z`` (N, z_dim) and ``y`` (N,), numpy or NDArray; returns numpy."""
        feed = {"z": np.asarray(z.asnumpy() if isinstance(z, nd.NDArray) else z, np.float32)}
        if self.num_classes:
            y = y.asnumpy() if isinstance(y, nd.NDArray) else y
            feed["y"] = np.asarray(y, np.int64)
        return self.session.run(None, feed)[0]

    def generate(self, num, seed=0, label=None, batch_size=100, truncation=None):
        """Yield ``num`` images in batches, drawn as :meth:`LoadedGenerator.generate` draws them.

        Batches are what the model outputs: float32 (B, C, S, S) in [-1, 1], or
        uint8 (B, 3, S, S) for a model exported with ``uint8=True``.
        """
        check_label(label, self.num_classes)
        check_truncation(truncation)
        return generate_batches(self, num, self.z_dim, np.random.RandomState(seed),
                                num_classes=self.num_classes, label=label,
                                batch_size=batch_size, truncation=truncation)

    def rgb_batches(self, num, seed=0, batch_size=100):
        """Yield ``num`` images as uint8 RGB (B, S, S, 3), quantized as sngan-generate writes."""
        for batch in self.generate(num, seed=seed, batch_size=batch_size):
            if self.output == "uint8":
                yield np.ascontiguousarray(batch.transpose(0, 2, 3, 1))
            else:
                images = to_uint8(batch)
                yield np.repeat(images, 3, axis=3) if images.shape[3] == 1 else images
