"""ONNX export: onnxruntime's images equal the package's, for every generator and the layers
MXNet's exporter is known to get wrong.

Networks have random weights (BatchNorm statistics and per-class gains included,
so that a dropped or mistranslated term shows), are built small through
``get_generator`` and are never trained.
"""
import subprocess
import sys

import numpy as np
import pytest

import sngan_gluon  # noqa: F401  (makes mxnet importable)
import mxnet as mx
from mxnet import autograd, gluon, nd

from sngan_gluon.models import MODELS, get_generator
from sngan_gluon.nn import ConditionalBatchNorm

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
from sngan_gluon.onnx_export import ExportError, export_block, read_metadata  # noqa: E402

Z_DIM, CLASSES, TOLERANCE = 8, 4, 1e-5
#: (arch, image size, width) of every generator layout, each small. Narrower networks sum
#: fewer products a layer, so float32 rounding stays further below the tolerance (resnet 64
#: at width 16: up to 9e-6 between two correct runtimes).
WIDTH = {"dcgan": 16, "dcgan64": 16, "resnet": 8}
LAYOUTS = [(arch, size, WIDTH[arch]) for arch in sorted(MODELS) for size in MODELS[arch].sizes]
CONDITIONAL = ("dcgan", "resnet")  # dcgan64 has no conditional form


def randomize(net, seed):
    """Draw every BatchNorm gain, shift and statistic and every bias away from its initial value.

    Gains in [0.8, 1.2], shifts and biases N(0, 0.1): a term the exporter drops
    or takes from the wrong place moves pixels by about 0.1, four orders above
    the tolerance, while activations keep the scale of a trained network.
    """
    rng = np.random.RandomState(seed)
    for name, param in sorted(net.collect_params().items()):
        if name.endswith(("running_var", "gamma")):
            param.set_data(nd.array(rng.uniform(0.8, 1.2, size=param.shape)))
        elif name.endswith(("running_mean", "beta", "bias")):
            param.set_data(nd.array(rng.normal(0.0, 0.1, size=param.shape)))


def calibrate(net, num_classes, seed, rounds=10):
    """Bring the BatchNorm running statistics near the batch statistics, as training does.

    Random running statistics that do not match the activations inflate them
    layer after layer, and float32 rounding with them; trained statistics do not.
    """
    rng = np.random.RandomState(seed)
    for _ in range(rounds):
        with autograd.record():  # training mode: the running statistics move
            z = nd.array(rng.normal(size=(32, Z_DIM)))
            if num_classes:
                net(z, nd.array(rng.randint(0, num_classes, 32), dtype="int32"))
            else:
                net(z)


def session(path):
    options = ort.SessionOptions()
    options.log_severity_level = 3
    return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])


def built(arch, size, ch, num_classes, seed=0):
    net = get_generator(arch, image_size=size, z_dim=Z_DIM, num_classes=num_classes, ch=ch)
    net.initialize()
    z = nd.zeros((2, Z_DIM))
    net(z, nd.array([0, 1], dtype="int32")) if num_classes else net(z)  # shapes known
    randomize(net, seed)
    calibrate(net, num_classes, seed)
    return net


@pytest.mark.parametrize("num_classes", [0, CLASSES], ids=["plain", "conditional"])
@pytest.mark.parametrize("arch, size, ch", LAYOUTS, ids=["%s-%d" % l[:2] for l in LAYOUTS])
def test_onnxruntime_images_equal_the_packages_at_batch_1_and_37(arch, size, ch, num_classes,
                                                                 tmp_path):
    if num_classes and arch not in CONDITIONAL:
        pytest.skip("%s has no conditional form" % arch)
    net = built(arch, size, ch, num_classes)
    inputs = [((Z_DIM,), "float32")] + ([((), "int64")] if num_classes else [])
    path = export_block(net, inputs, str(tmp_path / "g.onnx"), input_names=["z", "y"][:len(inputs)])
    sess = session(path)
    rng = np.random.RandomState(1)
    for batch in (1, 37):
        z = rng.normal(size=(batch, Z_DIM)).astype(np.float32)
        feed = {"z": z}
        if num_classes:
            y = np.arange(batch) % num_classes  # every class, the last one included
            feed["y"] = y.astype(np.int64)
            ours = net(nd.array(z), nd.array(y, dtype="int32")).asnumpy()
        else:
            ours = net(nd.array(z)).asnumpy()
        theirs = sess.run(None, feed)[0]
        assert theirs.shape == ours.shape == (batch, 3, size, size)
        assert np.abs(theirs - ours).max() <= TOLERANCE, (batch, np.abs(theirs - ours).max())
        assert ours.std() > 1e-3  # not a saturated or constant picture


def test_graph_has_a_dynamic_batch_and_named_inputs(tmp_path):
    net = built("dcgan", 32, 16, CLASSES)
    path = export_block(net, [((Z_DIM,), "float32"), ((), "int64")], str(tmp_path / "g.onnx"),
                        metadata={"z_dim": Z_DIM}, input_names=["z", "y"])
    model = onnx.load(path)
    inputs = {v.name: v for v in model.graph.input}
    assert sorted(inputs) == ["y", "z"]  # weights are not graph inputs
    assert inputs["z"].type.tensor_type.shape.dim[0].dim_param == "batch"
    assert inputs["y"].type.tensor_type.elem_type == onnx.TensorProto.INT64
    out = model.graph.output[0]
    assert out.name == "images"
    assert [d.dim_param or d.dim_value for d in out.type.tensor_type.shape.dim] == [
        "batch", 3, 32, 32]
    assert read_metadata(path) == {"z_dim": str(Z_DIM)}


def test_uint8_output_is_to_uint8_of_the_float_images(tmp_path):
    net = get_generator("dcgan", image_size=32, z_dim=Z_DIM, channels=1, ch=16)
    net.initialize()
    net(nd.zeros((1, Z_DIM)))
    randomize(net, 3)
    path = export_block(net, [((Z_DIM,), "float32")], str(tmp_path / "g.onnx"),
                        input_names=["z"], uint8=True)
    z = np.random.RandomState(4).normal(size=(37, Z_DIM)).astype(np.float32)
    theirs = session(path).run(None, {"z": z})[0]
    float_images = net(nd.array(z)).asnumpy()[:, 0]
    expected = np.clip(np.rint((float_images + 1) * 127.5), 0, 255)  # numpy, written out
    assert theirs.dtype == np.uint8 and theirs.shape == (37, 3, 32, 32)
    for c in range(3):  # the grey channel, repeated
        diff = np.abs(theirs[:, c].astype(int) - expected)
        assert diff.max() <= 1 and (diff == 0).mean() > 0.999  # a 1e-7 float difference
        # may cross a rounding boundary, nothing more


class _Block(gluon.HybridBlock):
    def __init__(self, layer, **kwargs):
        super().__init__(**kwargs)
        with self.name_scope():
            self.layer = layer

    def hybrid_forward(self, F, x, *args):
        return self.layer(x, *args)


def _compare(block, shapes, feeds, tmp_path):
    path = export_block(block, shapes, str(tmp_path / "b.onnx"),
                        input_names=["x%d" % i for i in range(len(shapes))], output_name="out")
    mx_inputs = [nd.array(f, dtype="int32" if f.dtype == np.int64 else "float32")
                 for f in feeds]
    ours = block(*mx_inputs).asnumpy()
    theirs = session(path).run(None, {"x%d" % i: f for i, f in enumerate(feeds)})[0]
    assert theirs.shape == ours.shape
    np.testing.assert_allclose(theirs, ours, atol=TOLERANCE, rtol=0)
    return ours


def test_deconvolution_output_padding_adj_is_exported(tmp_path):
    deconv = gluon.nn.Conv2DTranspose(4, 3, strides=2, padding=1, output_padding=1,
                                      in_channels=3)
    block = _Block(deconv)
    block.initialize(mx.init.Normal(0.5))
    x = np.random.RandomState(5).normal(size=(2, 3, 5, 5)).astype(np.float32)
    out = _compare(block, [((3, 5, 5), "float32")], [x], tmp_path)
    assert out.shape == (2, 4, 10, 10)  # (5 - 1) * 2 - 2 + 3 + adj 1: the adj row is there


def test_batchnorm_without_scale_ignores_its_gamma_fix_gamma(tmp_path):
    bn = gluon.nn.BatchNorm(scale=False, in_channels=3)
    block = _Block(bn)
    block.initialize()
    block(nd.zeros((1, 3, 4, 4)))
    randomize(block, 6)
    bn.gamma.set_data(nd.array([3.0, -2.0, 5.0]))  # fix_gamma: must have no effect
    x = np.random.RandomState(7).normal(size=(2, 3, 4, 4)).astype(np.float32)
    out = _compare(block, [((3, 4, 4), "float32")], [x], tmp_path)
    mean, var = bn.running_mean.data().asnumpy(), bn.running_var.data().asnumpy()
    beta = bn.beta.data().asnumpy()
    expected = ((x - mean[:, None, None]) / np.sqrt(var[:, None, None] + 1e-5)
                + beta[:, None, None])  # gamma taken as 1
    np.testing.assert_allclose(out, expected, atol=1e-5)


def test_conditional_batchnorm_class_gains_are_exported(tmp_path):
    block = _Block(ConditionalBatchNorm(3, CLASSES))
    block.initialize()
    block(nd.zeros((1, 3, 2, 2)), nd.zeros((1,), dtype="int32"))
    randomize(block, 8)  # the inner BatchNorm's gamma too, which scale=False ignores
    block.layer.bn.beta.set_data(nd.zeros(3))  # center=False: never trained, stays 0
    x = np.random.RandomState(9).normal(size=(CLASSES, 3, 2, 2)).astype(np.float32)
    y = np.arange(CLASSES)[::-1].astype(np.int64)
    out = _compare(block, [((3, 2, 2), "float32"), ((), "int64")], [x, y], tmp_path)
    cbn = block.layer
    gamma, beta = cbn.gamma.data().asnumpy(), cbn.beta.data().asnumpy()  # (classes, C)
    mean, var = cbn.bn.running_mean.data().asnumpy(), cbn.bn.running_var.data().asnumpy()
    norm = (x - mean[:, None, None]) / np.sqrt(var[:, None, None] + 1e-5)
    expected = norm * gamma[y][:, :, None, None] + beta[y][:, :, None, None]
    np.testing.assert_allclose(out, expected, atol=1e-5)


def test_model_runs_in_a_process_without_mxnet(tmp_path):
    net = built("resnet", 32, 16, CLASSES, seed=2)
    path = export_block(net, [((Z_DIM,), "float32"), ((), "int64")], str(tmp_path / "g.onnx"),
                        input_names=["z", "y"])
    z = np.random.RandomState(3).normal(size=(5, Z_DIM)).astype(np.float32)
    y = np.array([0, 1, 2, 3, 0])
    np.savez(str(tmp_path / "in.npz"), z=z, y=y)
    script = ("import sys, numpy as np, onnxruntime as ort\n"
              "d = np.load(sys.argv[2])\n"
              "out = ort.InferenceSession(sys.argv[1]).run(None, {'z': d['z'], 'y': d['y']})[0]\n"
              "np.save(sys.argv[3], out)\n"
              "assert 'mxnet' not in sys.modules and 'sngan_gluon' not in sys.modules\n")
    result = subprocess.run([sys.executable, "-c", script, path, str(tmp_path / "in.npz"),
                             str(tmp_path / "out.npy")], capture_output=True, text=True,
                            timeout=120, cwd=str(tmp_path))
    assert result.returncode == 0, result.stderr[-2000:]
    ours = net(nd.array(z), nd.array(y, dtype="int32")).asnumpy()
    np.testing.assert_allclose(np.load(str(tmp_path / "out.npy")), ours, atol=TOLERANCE, rtol=0)


def test_read_metadata_refuses_a_file_that_is_not_onnx(tmp_path):
    path = tmp_path / "notes.onnx"
    path.write_text("not a model")
    with pytest.raises(ExportError, match="is not an ONNX model"):
        read_metadata(str(path))
    with pytest.raises(ExportError, match="no such ONNX file"):
        read_metadata(str(tmp_path / "missing.onnx"))
