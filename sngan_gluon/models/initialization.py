"""Weight initialization schemes a run can choose (``--init``).

``arch`` is every architecture's own, set by its layers' ``weight_initializer``
(the authors': Normal(0.02) for the standard CNN, GlorotUniform for the ResNets
and the 64x64 pair), biases zero. ``pytorch`` redraws the weights as PyTorch's
layers draw them by default (their ``reset_parameters``): a convolution,
transposed convolution or dense weight of fan-in ``n`` and its bias from
U(-1/sqrt(n), 1/sqrt(n)), i.e. Kaiming-uniform with ``a = sqrt(5)``, and an
embedding from N(0, 1). The fan-in is the product of the weight's shape after
its first axis, in both frameworks and for every layer kind (a transposed
convolution's weight is (in, out / groups, k...) in both). BatchNorm is
gamma 1, beta 0 in both. On the digits the ``arch`` initialization trains the
standard CNN to a markedly lower FID (docs/results.md, "Quality parity with
PyTorch"), so it is the default.
"""
import math

from mxnet import nd
from mxnet.gluon import nn

from ..nn.walk import weight_layers

#: name -> description; the command line's ``--init`` choices.
INITS = {
    "arch": "the architecture's own (the authors'): Normal(0.02) for dcgan, GlorotUniform for "
            "resnet and dcgan64, biases 0",
    "pytorch": "PyTorch's layer defaults: weights and biases U(+-1/sqrt(fan_in)), "
               "embeddings N(0, 1)",
}


def fan_in(shape):
    """The fan-in PyTorch's default initialization uses for a weight of ``shape``."""
    return int(math.prod(shape[1:]))


def pytorch_init(net):
    """Redraw the weights of ``net`` (initialized, shapes known) as PyTorch's layers do.

    Draws come from MXNet's random generator (``mx.random.seed`` makes them
    repeatable) and are set on every context the parameters live on. Returns ``net``.
    """
    for layer in weight_layers(net).values():  # every convolution, dense and embedding layer
        if isinstance(layer, nn.Embedding):
            layer.weight.set_data(nd.random.normal(0, 1, shape=layer.weight.shape))
            continue
        bound = 1.0 / math.sqrt(fan_in(layer.weight.shape))
        for param in (layer.weight, layer.bias):
            if param is not None:
                param.set_data(nd.random.uniform(-bound, bound, shape=param.shape))
    return net


def apply_init(net, scheme):
    """Give ``net`` (initialized) the initialization ``scheme``, one of :data:`INITS`."""
    if scheme not in INITS:
        raise ValueError("unknown initialization %r; choose from %s"
                         % (scheme, ", ".join(INITS)))
    if scheme == "pytorch":
        pytorch_init(net)
    return net
