"""torch-fidelity's reference code for the equality tests, imported without its package init.

``import torch_fidelity`` runs ``torch_fidelity/__init__.py``, which imports
torchvision; the CPU torch the tests pin cannot load the CUDA torchvision that
pip resolves beside it. The modules the tests compare against (the Inception
network, the TensorFlow-1 resize and the IS / FID / KID formulas) need no
torchvision, so this helper registers a bare ``torch_fidelity`` package whose
``__path__`` is the installed folder and imports those modules from it.

Call :func:`load` at a test module's top: it skips the module when torch or
torch-fidelity is not installed (they are in the ``test`` extra).
"""
import importlib
import importlib.util
import sys
import types

import numpy as np
import pytest


def _bare_package(name):
    """Register package ``name`` without running its ``__init__.py``; None if not installed."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.find_spec(name)  # locates the package, does not execute it
    if spec is None or not spec.submodule_search_locations:
        return None
    package = types.ModuleType(name)
    package.__path__ = list(spec.submodule_search_locations)
    package.__spec__ = spec
    sys.modules[name] = package
    return package


def _utils_stub():
    """Stand-in for ``torch_fidelity.utils`` (imports torchvision at its top).

    The metric modules import its input-pipeline helpers by name but their
    formula functions, the only ones the tests call, never use them. Each name
    resolves to a function that fails loudly if something does call it.
    """
    stub = types.ModuleType("torch_fidelity.utils")

    def __getattr__(name):
        if name.startswith("__"):  # __file__, __path__ ...: inspect and importlib ask
            raise AttributeError(name)

        def unavailable(*args, **kwargs):
            raise RuntimeError("torch_fidelity.utils.%s is stubbed in tests (needs torchvision)"
                               % name)
        return unavailable

    stub.__getattr__ = __getattr__
    return stub


def load():
    """The reference modules as a namespace: ``torch``, ``inception`` (the network module),
    ``resize`` (TF-1 bilinear resize), ``isc``, ``fid``, ``kid`` (metric modules)."""
    torch = pytest.importorskip("torch")
    if _bare_package("torch_fidelity") is None:
        pytest.skip("torch-fidelity is not installed (pip install -e .[test])")
    sys.modules.setdefault("torch_fidelity.utils", _utils_stub())
    name = "torch_fidelity.%s"
    return types.SimpleNamespace(
        torch=torch,
        inception=importlib.import_module(name % "feature_extractor_inceptionv3"),
        resize=importlib.import_module(name % "interpolate_compat_tensorflow"),
        isc=importlib.import_module(name % "metric_isc"),
        fid=importlib.import_module(name % "metric_fid"),
        kid=importlib.import_module(name % "metric_kid"))


def random_inception(ref, path, seed=0):
    """torch-fidelity's ``FeatureExtractorInceptionV3`` with random weights, saved to ``path``.

    Its constructor loads weights from a file or the internet; it is given a
    file holding an empty dict, which the subclass below takes as "keep the
    fresh modules". The weights are then drawn so that activations keep their
    scale through the 94 layers (He-normal convolutions, batch-norm statistics
    near 1) and the classifier is confident enough for an Inception Score well
    above 1, and the state dict is written with ``torch.save``: a zip of pickled
    tensors, the format of the published weights.

    Returns the network (eval mode) computing ``('2048', 'logits_unbiased')``.
    """
    torch = ref.torch

    class Fresh(ref.inception.FeatureExtractorInceptionV3):
        def load_state_dict(self, state_dict, *args, **kwargs):
            if not state_dict:
                return None
            return super(Fresh, self).load_state_dict(state_dict, *args, **kwargs)

    torch.save({}, path)
    net = Fresh("inception-v3-compat", ["2048", "logits_unbiased"],
                feature_extractor_weights_path=path)
    rng = np.random.RandomState(seed)
    with torch.no_grad():
        for key, value in net.state_dict().items():
            if key.endswith("num_batches_tracked"):
                continue
            shape = tuple(value.shape)
            if key.endswith("conv.weight"):
                fan_in = int(np.prod(shape[1:]))
                new = rng.normal(0.0, np.sqrt(2.0 / fan_in), size=shape)
            elif key == "fc.weight":  # large: confident, varied predictions, IS well above 1
                new = rng.normal(0.0, 0.3, size=shape)
            elif key.endswith(("running_var", "bn.weight")):
                new = rng.uniform(0.5, 1.5, size=shape)
            else:  # bn.bias, running_mean, fc.bias
                new = rng.normal(0.0, 0.1, size=shape)
            value.copy_(torch.from_numpy(new.astype(np.float32)))
    torch.save(net.state_dict(), path)
    return net.eval()
