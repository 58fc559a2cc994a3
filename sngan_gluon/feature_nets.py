"""Feature networks for the scores: TensorFlow's Inception (the papers') and gluoncv's.

Both take the same input, uint8 RGB images ``(N, H, W, 3)`` (the layout of the
training images, of ``sngan-generate``'s ``.npz`` and of image files), and
return the same pair: 2048-d pool features (FID, KID, precision/recall) and
class logits (the Inception Score applies the softmax).

* ``tf-inception`` (:class:`TFInceptionExtractor`, the default) -- the 2015
  TensorFlow graph every published IS / FID used, with torch-fidelity's input
  path; its scores are comparable with the papers.
* ``gluoncv`` (:class:`GluonCVInceptionExtractor`) -- gluoncv's ImageNet Inception-v3
  (1000 classes, other weights and resizing): comparable only among themselves.
"""
import os
import shutil
import zipfile

import mxnet as mx
import numpy as np
from mxnet import gluon, nd

from .data import DatasetError, download
from .fileio import atomic_path, error_summary, file_digest
from ._compat import gluoncv_model_zoo, repo_file_url
from .inception_weights import tf_inception_params
from .metrics import MetricsError
from .tf_inception import TFInceptionV3, tf1_resize_matrix

__all__ = ["FEATURE_NETS", "get_feature_net", "check_images", "TFInceptionExtractor",
           "GluonCVInceptionExtractor"]

_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)
_INPUT_SIZE = 299


def check_images(images, source="images"):
    """Raise DatasetError unless ``images`` is uint8 RGB ``(N, H, W, 3)`` (numpy or NDArray).

    The message names ``source``, what was found and how to convert it. Anything
    with ``shape`` and ``dtype`` is checked; its ``sample`` attribute (an array
    of some of the values, for a file read batch by batch) or the array itself
    tells the range of wrongly typed values.
    """
    shape, dtype = tuple(images.shape), np.dtype(images.dtype)
    if dtype != np.uint8:
        found, sample = "", getattr(images, "sample", images)
        if isinstance(sample, np.ndarray) and sample.size and dtype.kind in "fiu":
            found = " in [%.3g, %.3g]" % (sample.min(), sample.max())
        raise DatasetError("%s must be uint8 in 0..255, got %s%s; from [-1, 1] floats use "
                           "np.rint((x + 1) * 127.5).clip(0, 255).astype(np.uint8)"
                           % (source, dtype.name, found))
    if len(shape) == 3 or (len(shape) == 4 and shape[3] == 1):
        raise DatasetError("%s are grayscale %s; the Inception networks take RGB (N, H, W, 3): "
                           "repeat the channel 3 times" % (source, shape))
    if len(shape) == 4 and shape[3] == 4:
        raise DatasetError("%s are RGBA %s; drop the alpha channel (images[..., :3])"
                           % (source, shape))
    if len(shape) != 4 or shape[3] != 3:
        raise DatasetError("%s must have shape (N, H, W, 3), got %s" % (source, shape))


def _hybridize(block, ctx):
    """Hybridize for inference; on a CPU with oneDNN, fuse convolution, batch norm and ReLU
    into one kernel (about 10% faster; the same results within float32 rounding)."""
    fuse = ctx.device_type == "cpu" and mx.runtime.Features().is_enabled("MKLDNN")
    block.hybridize(static_alloc=True, **({"backend": "MKLDNN"} if fuse else {}))


class _Extractor(object):
    """Batching shared by the networks: ``extract(images) -> (features, logits)``."""

    name = None
    num_classes = None

    def __init__(self, ctx, batch_size):
        if int(batch_size) < 1:
            raise ValueError("batch_size must be positive, got %r" % (batch_size,))
        self.ctx, self.batch_size = ctx, int(batch_size)

    def extract(self, images):
        """Features and logits of uint8 images.

        Parameters
        ----------
        images : numpy.ndarray or NDArray, (N, H, W, 3) uint8
            Any H, W: resized to 299x299 inside.

        Returns
        -------
        features : numpy.ndarray, (N, 2048) float32
        logits : numpy.ndarray, (N, K) float32
            K = :attr:`num_classes`; softmax gives the class probabilities.
        """
        check_images(images)
        features, logits = [np.zeros((0, 2048), np.float32)], [
            np.zeros((0, self.num_classes), np.float32)]
        for start in range(0, images.shape[0], self.batch_size):
            chunk = images[start:start + self.batch_size]
            if not isinstance(chunk, nd.NDArray):
                chunk = nd.array(chunk, ctx=self.ctx, dtype=np.uint8)
            f, z = self._forward(chunk.as_in_context(self.ctx).transpose((0, 3, 1, 2)))
            features.append(f.asnumpy())
            logits.append(z.asnumpy())
        return np.concatenate(features), np.concatenate(logits)

    __call__ = extract


class TFInceptionExtractor(_Extractor):
    """TensorFlow's 2015 Inception (:class:`~sngan_gluon.tf_inception.TFInceptionV3`).

    Parameters
    ----------
    params_file : str or None
        ``--feature-net-params``: the published ``.pth`` or its converted
        ``.params``; None downloads the published weights once (see
        :func:`~sngan_gluon.inception_weights.tf_inception_params`).
    pretrained : bool
        ``False`` (without ``params_file``) gives random weights: for
        benchmarks, their scores mean nothing.
    ctx : mxnet.Context
    batch_size : int
        Images per forward pass.
    root : str or None
        Folder of converted weights (default ``~/.mxnet/models``).

    Attributes
    ----------
    name : str
        ``tf-inception-<sha256[:8] of the weights file>``; the published
        weights are ``tf-inception-6726825d``.
    """

    num_classes = 1008

    def __init__(self, params_file=None, pretrained=True, ctx=mx.cpu(), batch_size=100,
                 root=None):
        super(TFInceptionExtractor, self).__init__(ctx, batch_size)
        self.net = TFInceptionV3()
        self._resize = {}
        if params_file is None and not pretrained:
            # He-normal, as gluoncv's random weights: activations keep their scale (weights
            # that shrink them reach denormal floats, which would slow a benchmark down).
            self.net.initialize(mx.init.MSRAPrelu(factor_type="in", slope=0.0), ctx=ctx)
            _hybridize(self.net, ctx)
            self.name = "tf-inception-random"
            return
        path, self.name = tf_inception_params(params_file, root=root)
        try:
            self.net.load_parameters(path, ctx=ctx)
        except (mx.MXNetError, AssertionError, ValueError, OSError) as err:
            raise MetricsError("cannot load TF Inception weights from %s (expected the .pth or "
                               "its converted .params): %s"
                               % (path, error_summary(err))) from err
        _hybridize(self.net, ctx)

    def _forward(self, x):
        size = x.shape[2:]
        if size not in self._resize:
            self._resize[size] = tuple(nd.array(tf1_resize_matrix(s), ctx=self.ctx)
                                       for s in size)
        rows, cols = self._resize[size]
        return self.net(x, rows, cols)


class _GluonCVHead(gluon.HybridBlock):
    """Normalize, resize to 299 and run gluoncv's Inception-v3 as one graph.

    Inputs: ``x (N, 3, H, W)`` uint8. Outputs: ``features (N, 2048)``, ``logits (N, 1000)``.
    """

    def __init__(self, net, **kwargs):
        super(_GluonCVHead, self).__init__(**kwargs)
        self.features = net.features
        self.output = net.output
        # uint8 -> [0, 1] -> ImageNet normalization, folded into one scale and offset.
        std = np.array(_IMAGENET_STD, np.float32).reshape(1, 3, 1, 1)
        mean = np.array(_IMAGENET_MEAN, np.float32).reshape(1, 3, 1, 1)
        self.scale = self.params.get_constant("scale", 1.0 / 255.0 / std)
        self.offset = self.params.get_constant("offset", -mean / std)

    def hybrid_forward(self, F, x, scale, offset):
        x = F.broadcast_add(F.broadcast_mul(F.cast(x, "float32"), scale), offset)
        # align_corners=False samples pixel centres, as torch/pytorch-fid resizing does.
        x = F.contrib.BilinearResize2D(x, height=_INPUT_SIZE, width=_INPUT_SIZE,
                                       align_corners=False)
        features = F.flatten(self.features(x))  # AvgPool output (N, 2048, 1, 1)
        return features, self.output(features)


class GluonCVInceptionExtractor(_Extractor):
    """gluoncv's ImageNet Inception-v3 (1000 classes): scores comparable among themselves.

    Parameters
    ----------
    params_file : str or None
        Local gluoncv ``inceptionv3`` weights; used instead of the model store.
    pretrained : bool
        Fetch gluoncv's weights from its model store (downloading them if absent).
        ``False`` gives deterministic random weights: for tests and benchmarks.
    ctx : mxnet.Context
    batch_size : int
    root : str or None
        gluoncv model store folder (default ``~/.mxnet/models``; gluoncv itself
        uses ``$MXNET_HOME/models`` when ``MXNET_HOME`` is set).

    Attributes
    ----------
    name : str
        ``inceptionv3`` for gluoncv's weights, ``inceptionv3-<sha1[:8]>`` for
        another file, ``inceptionv3-random``.
    """

    num_classes = 1000

    def __init__(self, params_file=None, pretrained=True, ctx=mx.cpu(), batch_size=100,
                 root=None):
        zoo = gluoncv_model_zoo()
        model_store = zoo.model_store
        super(GluonCVInceptionExtractor, self).__init__(ctx, batch_size)
        net = zoo.get_model("inceptionv3", pretrained=False)
        if params_file is not None:
            self.name = self._load(net, params_file, ctx)
        elif pretrained:
            self.name = self._load(net, self._store_file(model_store, root), ctx)
        else:
            self._init_random(net, ctx)
            self.name = "inceptionv3-random"
        self._head = _GluonCVHead(net)
        self._head.params.initialize(ctx=ctx)  # its own two constants; the net is loaded
        _hybridize(self._head, ctx)

    def _forward(self, x):
        return self._head(x)

    @staticmethod
    def _store_file(model_store, root):
        """Path of gluoncv's weights in its store, fetched there if need be (as gluoncv's
        ``model_store.get_model_file`` does, through the package's downloader), or
        MetricsError saying where to put them."""
        short_hash = model_store.short_hash("inceptionv3")
        file_name = "inceptionv3-%s.params" % short_hash
        root = root or os.path.join("~", ".mxnet", "models")
        if "MXNET_HOME" in os.environ:  # gluoncv's rule (model_store.get_model_file)
            root = os.path.join(os.environ["MXNET_HOME"], "models")
        root = os.path.expanduser(root)
        path = os.path.join(root, file_name)
        if os.path.isfile(path) and file_digest(path, "sha1")[:8] == short_hash:
            return path
        archive = path[:-len(".params")] + ".zip"
        try:
            # gluoncv's store: <repo>/gluon/models/<name>.zip, one .params file inside.
            download.fetch(repo_file_url("gluon/models", os.path.basename(archive)), archive)
            with zipfile.ZipFile(archive) as zipped, zipped.open(file_name) as src, \
                    atomic_path(path) as part, open(part, "wb") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
        except download.DOWNLOAD_ERRORS + (KeyError, zipfile.BadZipFile) as err:
            raise MetricsError(
                "gluoncv Inception-v3 weights are missing: put gluoncv's %s in %s "
                "($MXNET_HOME/models when MXNET_HOME is set) or pass --feature-net-params FILE "
                "(download failed: %s)" % (file_name, root, error_summary(err)[:160])) from err
        finally:
            if os.path.isfile(archive):
                os.remove(archive)
        digest = file_digest(path, "sha1")
        if digest[:8] != short_hash:
            os.remove(path)
            raise MetricsError("the download of %s has SHA-1 %s..., expected %s...: try again, or "
                               "pass --feature-net-params FILE" % (file_name, digest[:8],
                                                                   short_hash))
        return path

    @staticmethod
    def _load(net, path, ctx):
        """Load ``path`` into ``net``; returns the extractor name for these weights."""
        short_hash = gluoncv_model_zoo().model_store.short_hash
        if not os.path.isfile(path):
            raise MetricsError("Inception-v3 weights file not found: %s" % path)
        try:
            net.load_parameters(path, ctx=ctx)
        except (mx.MXNetError, AssertionError, ValueError, OSError) as err:
            raise MetricsError("cannot load Inception-v3 weights from %s (expected gluoncv's "
                               "inceptionv3 .params): %s" % (path, error_summary(err))) from err
        tag = file_digest(path, "sha1")[:8]  # gluoncv names its files by this prefix too
        return "inceptionv3" if tag == short_hash("inceptionv3") else "inceptionv3-%s" % tag

    @staticmethod
    def _init_random(net, ctx, seed=0):
        # mx.random would change the caller's global RNG; fill from a local one instead.
        net.initialize(ctx=ctx)
        net(nd.zeros((1, 3, _INPUT_SIZE, _INPUT_SIZE), ctx=ctx))  # finish deferred shapes
        rng = np.random.RandomState(seed)
        for name, param in sorted(net.collect_params().items()):
            shape = param.shape
            if name.endswith("weight") and len(shape) >= 2:  # conv/dense: He-normal
                fan_in = int(np.prod(shape[1:]))
                value = rng.normal(0.0, np.sqrt(2.0 / fan_in), size=shape)
                param.set_data(nd.array(value.astype(np.float32), ctx=ctx))


FEATURE_NETS = {"tf-inception": TFInceptionExtractor, "gluoncv": GluonCVInceptionExtractor}
"""Feature networks by their ``--feature-net`` name; the first is the default."""


def get_feature_net(name="tf-inception", params_file=None, ctx=None, batch_size=100):
    """The extractor ``name`` (a key of :data:`FEATURE_NETS`) with its weights loaded."""
    if name not in FEATURE_NETS:
        raise ValueError("unknown feature network %r; choose from %s"
                         % (name, ", ".join(FEATURE_NETS)))
    return FEATURE_NETS[name](params_file=params_file, ctx=ctx or mx.cpu(),
                              batch_size=batch_size)
