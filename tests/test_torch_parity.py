"""Step-for-step equality of the SN layers with PyTorch's spectral norm in GAN training.

A Gluon G/D pair and its PyTorch twin (``torch_twins``) start from identical
weights and ``u``, see identical batches and noise, and take one hinge-loss D step
and one G step per iteration with Adam (1e-4, betas 0.5/0.9). After every
iteration each weight, each ``u``, the sigma each SN layer divides by next and
both losses must agree to float32 tolerance: 1e-4 relative at step 1, growing
geometrically to 1e-2 at step 200 (``|a - b| / |b|``, Frobenius norms).

The reference is PyTorch's ``torch.nn.utils.spectral_norm``, whose power step is
the paper's Algorithm 1 as the layers' is; ``parametrizations.spectral_norm``
runs the same step on ``W^T`` (docs/spectral_norm.md, "Equality with PyTorch"),
which the last test pins where the two meet. PyTorch's side steps with
``torch_twins.MXNetAdam``, Adam with ``eps`` placed as MXNet places it.
"""
import numpy as np
import pytest

torch = pytest.importorskip("torch")

import torch_twins as tw  # noqa: E402
from mxnet import autograd, nd  # noqa: E402

#: ``u`` is compared for this many steps; after that, through the sigma it gives: a
#: weight whose two largest singular values are close turns its top singular vector
#: far for a small change, so ``u`` amplifies float noise that sigma does not.
U_STEPS = 20


def tolerance(step):
    return 1e-4 * 100 ** ((step - 1) / 199.0)


def _assert_lock_step(model, steps, hybridize, d_call, **sizes):
    batch = 256 if model == "mlp" else 8
    gluon_side, torch_side = tw.build(model, seed=0, sn="legacy", hybridize=hybridize, **sizes)
    batches = tw.batches_for(model, 0, steps, batch, sizes["z_dim"])
    for step, errors in enumerate(tw.lock_step(gluon_side, torch_side, batches, d_call), 1):
        errors.update(tw.sigma_errors(gluon_side.D, torch_side.D))
        checked = {name: value for name, value in errors.items()
                   if not tw.not_compared(name) and (step <= U_STEPS or not name.endswith(".u"))}
        worst = max(checked, key=checked.get)
        assert checked[worst] <= tolerance(step), (
            "step %d: %s differs by %.2e (tolerance %.1e)"
            % (step, worst, checked[worst], tolerance(step)))


@pytest.mark.parametrize("hybridize,d_call", [(True, "separate"), (True, "concat"),
                                              (False, "separate")])
def test_mlp_gan_trains_step_for_step_as_pytorch(hybridize, d_call):
    """200 iterations of the 2-D MLP GAN (D: three SNDense, LeakyReLU 0.1)."""
    _assert_lock_step("mlp", 200, hybridize, d_call, z_dim=2, hidden=128)


@pytest.mark.parametrize("hybridize", [True, False])
def test_standard_cnn_gan_trains_step_for_step_as_pytorch(hybridize):
    """The paper's standard CNN pair at 32x32 (width 32, batch 8), a few iterations."""
    _assert_lock_step("dcgan", 4, hybridize, "separate", z_dim=16, ch=32)


@pytest.mark.parametrize("hybridize", [False, True])
def test_first_training_forward_gives_pytorch_parametrizations_u(hybridize):
    """From PyTorch's attached state (``v = W^T u / |W^T u|`` after its 15 warm-up
    steps), PyTorch's ``u = W v / |W v|`` is the paper's step from ``u``: the same ``u``."""
    gluon_side, torch_side = tw.build("mlp", seed=0, sn="parametrizations",
                                      hybridize=hybridize, z_dim=2, hidden=128)
    x = np.random.RandomState(0).normal(size=(16, 2)).astype(np.float32)
    with autograd.record():
        gluon_side.D(nd.array(x))
    torch_side.D(torch.from_numpy(x))
    nd.waitall()
    errors = tw.relative_errors(gluon_side.D, torch_side.D)
    u_errors = {name: value for name, value in errors.items() if name.endswith(".u")}
    assert len(u_errors) == 3 and max(u_errors.values()) < 1e-5, u_errors
