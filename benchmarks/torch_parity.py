"""Train SN GANs in lock step with PyTorch: per-step divergence, and a 2-D GAN over five seeds.

Part 1 (``divergence``) trains a Gluon G/D pair and its PyTorch twin
(``tests/torch_twins.py``) from identical weights and ``u`` on identical batches
and noise (hinge losses, Adam 1e-4, betas 0.5/0.9, one D and one G step per
iteration) and prints, at chosen steps, the largest relative difference
``|a - b| / |b|`` of any weight, of any ``u``, of the next ``sigma`` each layer
divides by, and of the two losses. Pairs: the MLP on 2-D data and the paper's
standard CNN at 32x32; MXNet hybridized (D called on real and on fake, or once on
both) and imperative; PyTorch's ``spectral_norm`` hook (``legacy``, the paper's
power step) and its ``parametrizations.spectral_norm`` (``parametrizations``,
the power step on ``W^T``). The float-noise line is PyTorch float32 against the
same PyTorch net in float64. PyTorch's side steps with an Adam that places
``eps`` as MXNet does (``tests/torch_twins.py``: ``MXNetAdam``), except on the
line marked ``torch``, which uses ``torch.optim.Adam``. Biases that a BatchNorm
cancels and BatchNorm running statistics are left out (``torch_twins.not_compared``).

Part 2 (``gan``) trains the MLP GAN on a ring of eight Gaussians for five seeds in
both frameworks from identical states and counts the modes each covers.

    python benchmarks/torch_parity.py [--part divergence|gan|all] [--steps 1000]
"""
import argparse
import copy
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "tests"))
import torch_twins as tw  # noqa: E402

REPORT_AT = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000)


def tolerance(step):
    """1e-4 at step 1, growing geometrically to 1e-2 at step 200, then 1e-2."""
    return 1e-4 * 100 ** (min(step - 1, 199) / 199.0)


def _summary(errors):
    groups = {"weights": [], "u": [], "sigma": [], "losses": []}
    for name, value in errors.items():
        key = ("losses" if name.startswith("loss/") else "u" if name.endswith(".u")
               else "sigma" if name.endswith(".sigma") else "weights")
        groups[key].append(value)
    return {k: max(v) if v else float("nan") for k, v in groups.items()}


def divergence(model, flavour, hybridize, d_call, steps, seed=0, adam="mxnet"):
    sizes = dict(z_dim=2, hidden=128) if model == "mlp" else dict(z_dim=16, ch=32)
    batch = 256 if model == "mlp" else 8
    gluon_side, torch_side = tw.build(model, seed, sn=flavour, hybridize=hybridize, adam=adam,
                                      **sizes)
    first = None
    label = "%-5s %-16s %-10s %-8s %-5s" % (model, flavour, "hybrid" if hybridize else
                                            "imperative", d_call, adam)
    start = time.time()
    batches = tw.batches_for(model, seed, steps, batch, sizes["z_dim"])
    for step, errors in enumerate(tw.lock_step(gluon_side, torch_side, batches, d_call), 1):
        errors.update(tw.sigma_errors(gluon_side.D, torch_side.D))
        errors = {k: v for k, v in errors.items() if not tw.not_compared(k)}
        if first is None:
            worst = max((k for k in errors if not k.endswith(".u")), key=errors.get)
            if errors[worst] > tolerance(step):
                first = (step, worst, errors[worst])
        if step in REPORT_AT:
            s = _summary(errors)
            print("%s step %5d  weights %.1e  u %.1e  sigma %.1e  losses %.1e"
                  % (label, step, s["weights"], s["u"], s["sigma"], s["losses"]), flush=True)
    print("%s first step over tolerance (u aside): %s  (%.0f s)"
          % (label, "none" if first is None else "%d, %s at %.1e" % first, time.time() - start),
          flush=True)


def float_noise(model, steps, seed=0):
    """PyTorch float32 against the same PyTorch run in float64: the noise floor."""
    sizes = dict(z_dim=2, hidden=128) if model == "mlp" else dict(z_dim=16, ch=32)
    batch = 256 if model == "mlp" else 8
    _, t32 = tw.build(model, seed, sn="legacy", **sizes)
    G64, D64 = copy.deepcopy(t32.G).double(), copy.deepcopy(t32.D).double()
    t64 = tw.TorchSide(G64, D64, 1e-4, (0.5, 0.9), 1e-8)
    for step, (real, z_d, z_g) in enumerate(tw.batches_for(model, seed, steps, batch,
                                                           sizes["z_dim"]), 1):
        t32.iteration(real, z_d, z_g, "separate")
        t64.iteration(*(a.astype(np.float64) for a in (real, z_d, z_g)), "separate")
        if step in REPORT_AT:
            errs = {}
            for tag in ("G", "D"):
                ref = tw.torch_tensors(getattr(t64, tag))
                for k, v in tw.torch_tensors(getattr(t32, tag)).items():
                    if tw.not_compared("%s/%s" % (tag, k)):
                        continue
                    r = ref[k].detach().numpy()
                    errs[k] = (np.linalg.norm(v.detach().numpy() - r)
                               / max(np.linalg.norm(r), 1e-30))
            w = max(v for k, v in errs.items() if not k.endswith(".u"))
            u = max(v for k, v in errs.items() if k.endswith(".u"))
            d32, d64 = tw.torch_tensors(t32.D), tw.torch_tensors(t64.D)
            sigma = max(abs(tw._next_sigma(d32[k[:-2] + ".weight"].detach().numpy(),
                                           d32[k].detach().numpy())
                            / tw._next_sigma(d64[k[:-2] + ".weight"].detach().numpy(),
                                             d64[k].detach().numpy()) - 1)
                        for k in d32 if k.endswith(".u"))
            print("%-5s torch float32 vs float64                      step %5d  weights %.1e  "
                  "u %.1e  sigma %.1e" % (model, step, w, u, sigma), flush=True)


def modes_covered(samples, modes=8, radius=2.0, within=0.1, share=0.01):
    """Modes with at least ``share`` of the samples within ``within`` of their centre;
    also the share of samples near any centre."""
    angles = 2 * np.pi * np.arange(modes) / modes
    centres = radius * np.stack([np.cos(angles), np.sin(angles)], axis=1)
    dist = np.linalg.norm(samples[:, None, :] - centres[None], axis=2)
    near = dist.min(axis=1) < within
    counts = np.bincount(dist.argmin(axis=1)[near], minlength=modes)
    return int((counts >= share * len(samples)).sum()), float(near.mean())


RUNS = {"separate": ("mxnet hybrid, D(real), D(fake)", True, "separate"),
        "concat": ("mxnet hybrid, D(real+fake)", True, "concat"),
        "torch": ("pytorch parametrizations", None, "separate")}


def gan(seeds, steps, runs, z_dim=16):
    from mxnet import nd
    import torch
    print("MLP GAN on 8 Gaussians (radius 2, std 0.02), z %d, batch 256, Adam 1e-4 (0.5, 0.9), "
          "%d iterations; modes with >= 1%% of 2000 samples within 0.1" % (z_dim, steps))
    for seed in range(seeds):
        row = []
        for name, hybridize, d_call in (RUNS[run] for run in runs):
            gluon_side, torch_side = tw.build("mlp", seed, z_dim=z_dim, hidden=128,
                                              hybridize=bool(hybridize))
            side = gluon_side if hybridize is not None else torch_side
            start = time.time()
            for real, z_d, z_g in tw.batches_for("mlp", seed, steps, 256, z_dim):
                d_loss, _ = side.iteration(real, z_d, z_g, d_call)
            z = np.random.RandomState(1000 + seed).normal(size=(2000, z_dim)).astype(np.float32)
            if hybridize is None:
                with torch.no_grad():
                    samples = side.G(torch.from_numpy(z)).numpy()
            else:
                samples = side.G(nd.array(z)).asnumpy()
            covered, near = modes_covered(samples)
            row.append("%s: %d/8 modes, %.0f%% near a mode, D loss %.2f (%.0f s)"
                       % (name, covered, 100 * near, d_loss, time.time() - start))
        print("seed %d: %s" % (seed, "; ".join(row)), flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=("divergence", "gan", "all"), default="all")
    parser.add_argument("--steps", type=int, default=1000, help="lock-step iterations")
    parser.add_argument("--cnn-steps", type=int, default=200,
                        help="lock-step iterations of the standard CNN")
    parser.add_argument("--gan-steps", type=int, default=5000)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--gan-runs", nargs="+", choices=sorted(RUNS),
                        default=["separate", "concat", "torch"])
    args = parser.parse_args()
    tw.torch.set_num_threads(1)
    if args.part in ("divergence", "all"):
        float_noise("mlp", args.steps)
        float_noise("dcgan", args.cnn_steps)
        for flavour in ("legacy", "parametrizations"):
            for hybridize, d_call in ((True, "separate"), (True, "concat"),
                                      (False, "separate")):
                divergence("mlp", flavour, hybridize, d_call, args.steps)
        divergence("mlp", "legacy", True, "separate", args.steps, adam="torch")
        for flavour in ("legacy", "parametrizations"):
            for hybridize in (True, False):
                divergence("dcgan", flavour, hybridize, "separate", args.cnn_steps)
    if args.part in ("gan", "all"):
        gan(args.seeds, args.gan_steps, args.gan_runs)


if __name__ == "__main__":
    main()
