"""Generators and discriminators: shapes, layouts, parameter counts, SN coverage,
the projection term, initialization and argument errors."""
import math

import mxnet as mx
import numpy as np
import pytest
from mxnet import autograd, gluon, nd
from mxnet.gluon import nn

from sngan_gluon.losses import hinge_d, hinge_g
from sngan_gluon.models import MODELS, get_discriminator, get_generator
from sngan_gluon.nn import SpectralNormMixin

K = 10  # classes of the conditional variants
Z = 128
CONFIGS = [(arch, size, classes)
           for arch, sizes, conditional in [("dcgan", (32, 48), True),
                                            ("resnet", (32, 48, 64), True),
                                            ("dcgan64", (64,), False)]
           for size in sizes
           for classes in ((0, K) if conditional else (0,))]


def _labels(classes, n=2):
    return (nd.array(np.arange(n) % classes, dtype="int32"),) if classes else ()


def _build(arch, size, classes, **kwargs):
    g = get_generator(arch, size, num_classes=classes, **kwargs.pop("g", {}))
    d = get_discriminator(arch, size, num_classes=classes, **kwargs)
    g.initialize()
    d.initialize()
    return g, d


def _trainable(block):
    """Trainable parameters only: not SN's ``u``, not BatchNorm's running statistics,
    not the fixed gamma/beta of the BatchNorm(center=False, scale=False) inside
    ConditionalBatchNorm (all have grad_req 'null')."""
    return sum(int(np.prod(p.shape)) for p in block.collect_params().values()
               if p.grad_req != "null")


def _walk(block):
    yield block
    for child in block._children.values():
        yield from _walk(child)


@pytest.mark.parametrize("hybridize", [False, True], ids=["imperative", "hybrid"])
@pytest.mark.parametrize("arch,size,classes", CONFIGS)
def test_shapes_range_and_backward(arch, size, classes, hybridize):
    g, d = _build(arch, size, classes)
    if hybridize:
        g.hybridize()
        d.hybridize()
    z, y = nd.random.normal(shape=(2, Z)), _labels(classes)
    with autograd.record():
        images = g(z, *y)
        logits = d(images, *y)
    logits.backward()
    assert images.shape == (2, 3, size, size)
    assert logits.shape == (2,)
    values = images.asnumpy()
    assert np.isfinite(values).all() and np.abs(values).max() <= 1.0
    assert np.isfinite(logits.asnumpy()).all()


@pytest.mark.parametrize("arch,size,classes", [("dcgan", 32, K), ("resnet", 32, K),
                                               ("dcgan64", 64, 0)])
def test_repeated_hybridized_training_steps(arch, size, classes):
    # Regression: MXNet 1.9 bugs that surface only from the second hybridized
    # backward on (a label gradient asked of Embedding) or with a BatchNorm output
    # reshaped into a convolution ("Check failed: !is_view").
    g, d = _build(arch, size, classes, g={"prefix": "g_"}, prefix="d_")
    for net in (g, d):
        net.hybridize(static_alloc=True, static_shape=True)
    g_opt = gluon.Trainer(g.collect_params(), "adam", {"learning_rate": 1e-4})
    d_opt = gluon.Trainer(d.collect_params(), "adam", {"learning_rate": 1e-4})
    real, y = nd.random.uniform(-1, 1, shape=(2, 3, size, size)), _labels(classes)
    for _ in range(3):
        with autograd.train_mode():
            fake = g(nd.random.normal(shape=(2, Z)), *y)
        with autograd.record():
            d_loss = hinge_d(d(real, *y), d(fake, *y))
        d_loss.backward()
        d_opt.step(2)
        with autograd.record():
            g_loss = hinge_g(d(g(nd.random.normal(shape=(2, Z)), *y), *y))
        g_loss.backward()
        g_opt.step(2)
    assert np.isfinite(d_loss.asnumpy()).all() and np.isfinite(g_loss.asnumpy()).all()


@pytest.mark.parametrize("arch,size", [("dcgan", 32), ("resnet", 32), ("dcgan64", 64)])
def test_grayscale_channels(arch, size):
    g, d = _build(arch, size, 0, g={"channels": 1}, channels=1)
    images = g(nd.random.normal(shape=(2, Z)))
    assert images.shape == (2, 1, size, size)
    assert d(images).shape == (2,)


@pytest.mark.parametrize("arch,size,classes", [("dcgan", 32, K), ("resnet", 48, K),
                                               ("dcgan64", 64, 0)])
def test_hybridized_equals_imperative(arch, size, classes):
    g, d = _build(arch, size, classes)
    z, y = nd.random.normal(shape=(2, Z)), _labels(classes)
    images = g(z, *y)
    expected_images, expected_logits = images.asnumpy(), d(images, *y).asnumpy()
    g.hybridize()
    d.hybridize()
    np.testing.assert_allclose(g(z, *y).asnumpy(), expected_images, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(d(images, *y).asnumpy(), expected_logits, rtol=1e-4, atol=1e-4)


# --- parameter counts from the layer lists (paper tables 3 and 4) ---------------------

def conv(c_in, c_out, k, bias=True):
    return c_in * c_out * k * k + (c_out if bias else 0)


def dense(n_in, n_out, bias=True):
    return n_in * n_out + (n_out if bias else 0)


def bn(c, classes=0):
    """gamma and beta: one pair per channel, or one per channel and class."""
    return 2 * c * max(classes, 1)


@pytest.mark.parametrize("ch", [None, 64], ids=["paper", "ch64"])
@pytest.mark.parametrize("classes", [0, K])
def test_dcgan32_parameter_counts(classes, ch):
    c = 512 if ch is None else ch  # the paper's width when none is given
    assert MODELS["dcgan"].default_ch("g", 32) == MODELS["dcgan"].default_ch("d", 32) == 512
    # G: dense 128 -> 4*4*c + BN(c) (per channel of the reshaped map), three
    # 4x4 deconvs c -> c/2 -> c/4 -> c/8 each with BN, 3x3 conv c/8 -> 3; biases everywhere.
    g_count = (dense(Z, 4 * 4 * c) + bn(c, classes)
               + conv(c, c // 2, 4) + bn(c // 2, classes)
               + conv(c // 2, c // 4, 4) + bn(c // 4, classes)
               + conv(c // 4, c // 8, 4) + bn(c // 8, classes)
               + conv(c // 8, 3, 3))
    # D: 3x3 c/8, 4x4 c/8, 3x3 c/4, 4x4 c/4, 3x3 c/2, 4x4 c/2, 3x3 c, dense 4*4*c -> 1,
    # plus the projection embedding (K, 4*4*c) when conditional.
    d_count = (conv(3, c // 8, 3) + conv(c // 8, c // 8, 4) + conv(c // 8, c // 4, 3)
               + conv(c // 4, c // 4, 4) + conv(c // 4, c // 2, 3) + conv(c // 2, c // 2, 4)
               + conv(c // 2, c, 3) + dense(4 * 4 * c, 1) + classes * 4 * 4 * c)
    g, d = _build("dcgan", 32, classes, g=dict(ch=ch), ch=ch)
    assert _trainable(g) == g_count
    assert _trainable(d) == d_count
    if classes == 0 and ch is None:
        assert (g_count, d_count) == (3813379, 2935873)


@pytest.mark.parametrize("widths", [(None, None), (32, 16)], ids=["paper", "narrow"])
@pytest.mark.parametrize("classes", [0, K])
def test_resnet32_parameter_counts(classes, widths):
    ch_g, ch_d = [default if ch is None else ch for ch, default in zip(widths, (256, 128))]
    assert (MODELS["resnet"].default_ch("g", 32), MODELS["resnet"].default_ch("d", 32)) == (
        256, 128)
    # G: dense 128 -> 4*4*ch_g; 3 up blocks [BN, conv3x3, BN, conv3x3, 1x1 shortcut];
    # final BN (unconditional, as the authors') and conv3x3 -> 3.
    up_block = bn(ch_g, classes) * 2 + conv(ch_g, ch_g, 3) * 2 + conv(ch_g, ch_g, 1)
    g_count = dense(Z, 4 * 4 * ch_g) + 3 * up_block + bn(ch_g) + conv(ch_g, 3, 3)
    # D: optimized block [conv3x3 3->ch, conv3x3, 1x1 shortcut 3->ch], one down block
    # [2 conv3x3, 1x1 shortcut], two plain blocks [2 conv3x3, identity shortcut],
    # dense ch -> 1 without bias (snresnet_32), embedding (K, ch) when conditional.
    d_count = (conv(3, ch_d, 3) + conv(ch_d, ch_d, 3) + conv(3, ch_d, 1)
               + 2 * conv(ch_d, ch_d, 3) + conv(ch_d, ch_d, 1)
               + 2 * 2 * conv(ch_d, ch_d, 3)
               + dense(ch_d, 1, bias=False) + classes * ch_d)
    g, d = _build("resnet", 32, classes, g=dict(ch=widths[0]), ch=widths[1])
    assert _trainable(g) == g_count
    assert _trainable(d) == d_count
    if classes == 0 and widths == (None, None):  # the commonly quoted 4.3M / 1.0M
        assert (g_count, d_count) == (4276739, 1053824)


# --- spectral normalization where the paper puts it ------------------------------------

WEIGHTED = (nn.Conv2D, nn.Conv2DTranspose, nn.Dense, nn.Embedding)


@pytest.mark.parametrize("arch,size,classes", [("dcgan", 32, K), ("resnet", 32, K),
                                               ("resnet", 48, K), ("dcgan64", 64, 0)])
def test_every_discriminator_layer_is_sn_exactly_when_asked(arch, size, classes):
    with_sn = [b for b in _walk(get_discriminator(arch, size, num_classes=classes))
               if isinstance(b, WEIGHTED)]
    without = [b for b in _walk(get_discriminator(arch, size, num_classes=classes, sn=False))
               if isinstance(b, WEIGHTED)]
    assert with_sn and all(isinstance(b, SpectralNormMixin) for b in with_sn)
    assert not any(isinstance(b, SpectralNormMixin) for b in without)
    # otherwise the same network: the same Gluon layer kinds (SN classes subclass
    # Gluon's), in the same order
    def kinds(layers):
        return [next(k.__name__ for k in WEIGHTED if isinstance(b, k)) for b in layers]
    assert kinds(with_sn) == kinds(without)
    if classes:
        assert sum(isinstance(b, nn.Embedding) for b in with_sn) == 1


@pytest.mark.parametrize("arch,size,classes", [("dcgan", 32, K), ("resnet", 32, K),
                                               ("dcgan64", 64, 0)])
def test_generator_has_no_spectral_normalization(arch, size, classes):
    g = get_generator(arch, size, num_classes=classes)
    assert not any(isinstance(b, SpectralNormMixin) for b in _walk(g))


def test_sn_and_plain_discriminators_have_the_same_trainable_parameters():
    sn = get_discriminator("resnet", 32, num_classes=K)
    plain = get_discriminator("resnet", 32, num_classes=K, sn=False)
    sn.initialize()
    plain.initialize()
    shapes = {k: v.shape for k, v in sn._collect_params_with_prefix().items()
              if not k.endswith(".u")}
    assert shapes == {k: v.shape for k, v in plain._collect_params_with_prefix().items()}


# --- the projection discriminator ------------------------------------------------------

def _copy_shared(src, dst):
    dst_params = dst._collect_params_with_prefix()
    for name, param in src._collect_params_with_prefix().items():
        dst_params[name].set_data(param.data())


@pytest.mark.parametrize("arch", ["dcgan", "resnet"])
def test_projection_with_zero_embedding_equals_unconditional(arch):
    uncond = get_discriminator(arch, 32)
    cond = get_discriminator(arch, 32, num_classes=K)
    uncond.initialize()
    cond.initialize()
    _copy_shared(uncond, cond)
    cond.head.embed.weight.set_data(nd.zeros((K, cond.head.embed.weight.shape[1])))
    uncond.hybridize()
    cond.hybridize()
    x, y = nd.random.uniform(-1, 1, shape=(3, 3, 32, 32)), nd.array([0, 4, 9])
    np.testing.assert_allclose(cond(x, y).asnumpy(), uncond(x).asnumpy(), rtol=1e-5, atol=1e-6)


def test_projection_term_is_inner_product_of_class_embedding_and_pooled_features():
    uncond = get_discriminator("resnet", 32, sn=False)
    cond = get_discriminator("resnet", 32, num_classes=K, sn=False)
    uncond.initialize()
    cond.initialize()
    _copy_shared(uncond, cond)
    x, y = nd.random.uniform(-1, 1, shape=(3, 3, 32, 32)), nd.array([1, 1, 7])
    h = nd.relu(cond.blocks(x)).sum(axis=(2, 3)).asnumpy()  # global sum pooling
    v = cond.head.embed.weight.data().asnumpy()[y.asnumpy().astype(int)]
    np.testing.assert_allclose(cond(x, y).asnumpy() - uncond(x).asnumpy(),
                               (v * h).sum(axis=1), rtol=1e-4, atol=1e-4)


# --- initialization as the authors' code -----------------------------------------------

def _glorot_bound(shape, gain):
    receptive = int(np.prod(shape[2:]))
    return gain * math.sqrt(6.0 / ((shape[0] + shape[1]) * receptive))


def test_resnet_initialization_matches_the_authors():
    mx.random.seed(0)
    g, d = _build("resnet", 32, K)
    checks = [(g.blocks[0].conv1.weight, math.sqrt(2)), (g.blocks[0].shortcut.weight, 1.0),
              (g.dense.weight, 1.0), (g.out.weight, 1.0),
              (d.blocks[1].conv2.weight, math.sqrt(2)), (d.blocks[1].shortcut.weight, 1.0),
              (d.head.linear.weight, 1.0), (d.head.embed.weight, 1.0)]
    for param, gain in checks:
        w = np.abs(param.data().asnumpy())
        bound = _glorot_bound(param.shape, gain)
        assert bound * 0.95 < w.max() <= bound, param.name  # uniform up to the bound
    assert (g.blocks[0].conv1.bias.data().asnumpy() == 0).all()
    assert (g.blocks[0].bn1.gamma.data().asnumpy() == 1).all()


def test_dcgan_initialization_is_normal_002():
    mx.random.seed(0)
    g, d = _build("dcgan", 32, 0)
    for param in (g.dense.weight, g.blocks[0].deconv.weight, d.features[2].weight):
        assert param.data().asnumpy().std() == pytest.approx(0.02, rel=0.05), param.name


# --- argument errors -------------------------------------------------------------------

def test_unknown_arch_lists_valid_names():
    for build in (get_generator, get_discriminator):
        with pytest.raises(ValueError, match="dcgan, dcgan64, resnet"):
            build("stylegan")
    assert sorted(MODELS) == ["dcgan", "dcgan64", "resnet"]


@pytest.mark.parametrize("arch,size,supported", [("dcgan", 64, "32, 48"),
                                                 ("resnet", 128, "32, 48, 64"),
                                                 ("dcgan64", 32, "64")])
def test_unsupported_image_size_lists_supported(arch, size, supported):
    for build in (get_generator, get_discriminator):
        with pytest.raises(ValueError, match="supported: %s" % supported):
            build(arch, size)


@pytest.mark.parametrize("arch,size", sorted({(arch, size) for arch, size, _ in CONFIGS}))
def test_no_width_builds_the_registrys_default_width(arch, size):
    entry = MODELS[arch]
    for net, build in (("g", get_generator), ("d", get_discriminator)):
        default, explicit = build(arch, size), build(arch, size, ch=entry.default_ch(net, size))
        for block in (default, explicit):
            block.initialize()
            block(nd.zeros((1, Z)) if net == "g" else nd.zeros((1, 3, size, size)))
        assert [p.shape for p in default.collect_params().values()] == \
            [p.shape for p in explicit.collect_params().values()]


@pytest.mark.parametrize("arch,ch,message", [("dcgan", 12, "a positive multiple of 8, got 12"),
                                             ("dcgan64", 0, "a positive multiple of 8, got 0"),
                                             ("resnet", 0, "an integer >= 1, got 0"),
                                             ("resnet", 2.0, "an integer >= 1, got 2.0")])
def test_a_width_the_layout_cannot_take_is_named(arch, ch, message):
    for build in (get_generator, get_discriminator):
        with pytest.raises(ValueError, match="%s: ch must be %s" % (arch, message)):
            build(arch, MODELS[arch].default_size, ch=ch)


def test_negative_classes_and_conditional_dcgan64_are_rejected():
    with pytest.raises(ValueError, match="num_classes must be an integer >= 0"):
        get_generator("resnet", num_classes=-1)
    with pytest.raises(ValueError, match="num_classes must be an integer >= 0"):
        get_discriminator("dcgan", num_classes=-3)
    with pytest.raises(ValueError, match="supported num_classes: 0"):
        get_discriminator("dcgan64", 64, num_classes=10)


def test_labels_required_exactly_when_conditional():
    g, d = _build("dcgan", 32, K)
    with pytest.raises(ValueError, match="call it with labels"):
        g(nd.zeros((2, Z)))
    with pytest.raises(ValueError, match=r"labels y must have shape \(2,\)"):
        d(nd.zeros((2, 3, 32, 32)), nd.zeros((3,)))
    g0, _ = _build("resnet", 32, 0)
    with pytest.raises(ValueError, match="without labels"):
        g0(nd.zeros((2, Z)), nd.zeros((2,)))


def test_wrong_input_shapes_are_named():
    g, d = _build("resnet", 32, 0)
    with pytest.raises(ValueError, match=r"z must have shape \(N, 128\)"):
        g(nd.zeros((2, 100)))
    with pytest.raises(ValueError, match=r"x must have shape \(N, 3, 32, 32\)"):
        d(nd.zeros((2, 3, 48, 48)))


def _running_stats_after_one_step(arch, size, classes, momentum):
    """Every running mean and variance of a freshly built G after one training step."""
    mx.random.seed(3)
    G = get_generator(arch, size, z_dim=16, num_classes=classes, ch=8, momentum=momentum)
    G.initialize()
    z = nd.array(np.random.RandomState(0).normal(size=(8, 16)))
    with autograd.record():
        out = G(z, *_labels(classes, 8))
    out.backward()  # MXNet updates running statistics in backward
    return [p.data().asnumpy() for name, p in G.collect_params(".*running_(mean|var)").items()]


@pytest.mark.parametrize("arch, size, classes", [("dcgan", 32, 0), ("dcgan", 32, K),
                                                 ("resnet", 32, 0), ("resnet", 32, K),
                                                 ("dcgan64", 64, 0)])
def test_generator_momentum_reaches_every_batchnorm(arch, size, classes):
    """After one step each running value is momentum * its start + (1 - momentum) * the
    batch's (what momentum 0 leaves), in every BatchNorm, conditional ones included."""
    batch = _running_stats_after_one_step(arch, size, classes, 0.0)
    moved = _running_stats_after_one_step(arch, size, classes, 0.7)
    assert len(moved) == len(batch) >= 4
    for name_index, (b, m) in enumerate(zip(batch, moved)):
        start = 0.0 if name_index % 2 == 0 else 1.0  # collect order: mean, then var
        np.testing.assert_allclose(m, 0.7 * start + 0.3 * b, rtol=1e-4, atol=1e-6)
    with pytest.raises(ValueError, match="momentum must be in"):
        get_generator(arch, size, momentum=1.0)


# Weight layers (convolution, dense, embedding) of each (G, D), counted from the models'
# definitions: dcgan: G a dense, three 4x4 up-convolutions and the 3x3 output, D seven
# convolutions, the dense head and the class embedding; resnet 32: G a dense, three blocks
# of two 3x3 convolutions and a 1x1 shortcut, the output, D an optimized and a downsampling
# block of two convolutions and a shortcut, two blocks of two, dense and embedding;
# dcgan64: five (transposed) convolutions in each.
WEIGHT_LAYERS = {"dcgan": (5, 9), "resnet": (11, 12), "dcgan64": (5, 5)}


@pytest.mark.parametrize("arch, size, classes", [("dcgan", 32, K), ("resnet", 32, K),
                                                 ("dcgan64", 64, 0)])
def test_pytorch_init_redraws_every_weight_within_its_fan_in_bound(arch, size, classes):
    from sngan_gluon.models import apply_init
    g, d = _build(arch, size, classes)
    arch_weights = {n: p.data().asnumpy() for n, p in d.collect_params().items()}
    mx.random.seed(0)
    for net in (g, d):
        apply_init(net, "pytorch")
    for net, count in zip((g, d), WEIGHT_LAYERS[arch]):
        params = net.collect_params()
        names = list(params.keys())
        weights = [n for n in names if n.endswith("_weight")]
        assert len(weights) == count
        for name in weights:
            if "embedding" in name:
                continue  # N(0, 1), checked below
            # PyTorch's fan-in: dimension 1 times the kernel (Conv2DTranspose's included)
            bound = 1 / math.sqrt(np.prod(params[name].shape[1:]))
            bias = name[:-len("weight")] + "bias"
            for key in [name] + ([bias] if bias in names else []):
                values = params[key].data().asnumpy()
                assert np.abs(values).max() <= bound * (1 + 1e-6), key
                if values.size >= 1000:  # U(-b, b): max near b, std b / sqrt(3)
                    assert np.abs(values).max() > 0.99 * bound, key
                    assert abs(values.std() * math.sqrt(3) / bound - 1) < 0.1, key
    changed = [n for n, p in d.collect_params().items()
               if n.endswith("weight") and not np.array_equal(p.data().asnumpy(),
                                                              arch_weights[n])]
    assert len(changed) == WEIGHT_LAYERS[arch][1]  # every layer, the embedding included
    if classes:
        embed = [p for n, p in d.collect_params().items() if "embedding" in n][0]
        assert abs(embed.data().asnumpy().std() - 1) < 0.1  # N(0, 1), as nn.Embedding
    with pytest.raises(ValueError, match="choose from"):
        apply_init(g, "lecun")
