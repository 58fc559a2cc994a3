"""Standing statistics: a generator's BatchNorm running statistics re-estimated from noise.

A generator trained with BatchNorm samples, in inference mode, with running
statistics that an exponential average built during training: they lag the
weights by about ``1 / (1 - momentum)`` updates (MXNet advances them in the
backward pass, so only in G's own step), and an EMA generator's are an average
of the trained generator's, which need not match the activations of the
averaged weights. BigGAN (Brock et al. 2019, appendix C.1, "standing
statistics") replaces them after training by the plain average of the batch
statistics of ``K`` batches of fresh noise, the generator in training mode.

:func:`standing_statistics` does that and changes nothing else: the weights,
``gamma``, ``beta`` and the parameters' gradients are left as they were.
"""
import numpy as np

from mxnet import autograd, nd
from mxnet.gluon import nn

from ._compat import children, layer_kwargs
from .sampling import draw_noise

__all__ = ["batch_norms", "standing_statistics"]


def batch_norms(net):
    """Every ``nn.BatchNorm`` under ``net`` (those inside conditional BatchNorms included),
    each once, in definition order."""
    out, seen = [], set()

    def visit(block):
        for child in children(block).values():
            if id(child) in seen:
                continue
            seen.add(id(child))
            if isinstance(child, nn.BatchNorm):
                out.append(child)
            visit(child)

    visit(net)
    return out


def standing_statistics(net, z_dim, batches=16, batch_size=64, seed=0, num_classes=0,
                        ctx=None):
    """Set every BatchNorm's running statistics of generator ``net`` to their standing value.

    Runs ``batches`` batches of ``batch_size`` noise vectors (``draw_noise`` from
    ``RandomState(seed)``; with ``num_classes`` > 0, labels uniform over the
    classes from the same generator after each batch's noise) through ``net``
    in training mode, so that each BatchNorm normalizes with its batch's
    statistics as in training, and sets its ``running_mean`` and
    ``running_var`` (C,) to the mean over the batches of the batch mean and of
    the biased batch variance of its input (MXNet's convention for the
    running variance), layers downstream seeing the upstream ones in training
    mode. Returns the number of BatchNorms set.

    MXNet updates the running statistics in BatchNorm's backward pass, by
    ``running = momentum * running + (1 - momentum) * batch``; so each batch
    starts them at zero, takes a gradient with respect to the noise only
    (``autograd.grad``: no parameter's gradient is written), and reads the
    batch's statistics back as ``running / (1 - momentum)``.
    """
    if not (isinstance(batches, int) and batches >= 1):
        raise ValueError("standing_statistics: batches must be an integer >= 1, got %r"
                         % (batches,))
    layers = batch_norms(net)
    if not layers:
        return 0
    weights = [1.0 - float(layer_kwargs(layer)["momentum"]) for layer in layers]
    if min(weights) <= 0:  # momentum 1: the backward pass would not move the statistics
        raise ValueError("standing_statistics: a BatchNorm of momentum 1 keeps its running "
                         "statistics fixed; they cannot be read back")
    ctx = ctx or layers[0].running_mean.list_ctx()[0]
    rng = np.random.RandomState(seed)
    sums = [[0.0, 0.0] for _ in layers]
    for _ in range(batches):
        for layer in layers:
            layer.running_mean.set_data(nd.zeros(layer.running_mean.shape, ctx=ctx))
            layer.running_var.set_data(nd.zeros(layer.running_var.shape, ctx=ctx))
        z = nd.array(draw_noise(rng, batch_size, z_dim), ctx=ctx)
        inputs = [z]
        if num_classes:
            inputs.append(nd.array(rng.randint(0, num_classes, size=batch_size), ctx=ctx,
                                   dtype="int32"))
        z.attach_grad()
        with autograd.record(train_mode=True):
            out = net(*inputs)
        autograd.grad(out, [z], head_grads=nd.ones_like(out), retain_graph=False)
        for layer, weight, acc in zip(layers, weights, sums):
            acc[0] = acc[0] + layer.running_mean.data(ctx).asnumpy().astype(np.float64) / weight
            acc[1] = acc[1] + layer.running_var.data(ctx).asnumpy().astype(np.float64) / weight
    for layer, (mean_sum, var_sum) in zip(layers, sums):
        layer.running_mean.set_data(nd.array(mean_sum / batches, ctx=ctx))
        layer.running_var.set_data(nd.array(var_sum / batches, ctx=ctx))
    return len(layers)
