"""Run exported networks as a user without sngan_gluon does: in a fresh Python process.

:func:`run_elsewhere` saves the inputs, starts an interpreter in which
``import sngan_gluon`` fails (its ``sys.modules`` entry is ``None``, and neither the
repository nor ``PYTHONPATH`` is on its path), loads each ``prefix-symbol.json`` /
``prefix-0000.params`` pair with ``gluon.SymbolBlock.imports``, calls it twice on its
input and sends back both outputs and every parameter named ``*_u`` before and after
the second call.
"""
import os
import subprocess
import sys

import numpy as np

_SCRIPT = r"""
import builtins
import sys
import warnings

sys.modules["sngan_gluon"] = None  # `import sngan_gluon` raises ImportError here
import numpy as np
for name in ("bool", "int", "float", "complex", "object", "str"):
    if name not in np.__dict__:  # mxnet 1.9.1 needs these aliases; numpy >= 1.24 lacks them
        setattr(np, name, getattr(builtins, name))
from mxnet import gluon, nd

folder, count = sys.argv[1], int(sys.argv[2])
out = {}
for i in range(count):
    x = nd.array(np.load("%s/input_%d.npy" % (folder, i)))
    prefix = "%s/net_%d" % (folder, i)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        net = gluon.SymbolBlock.imports(prefix + "-symbol.json", ["data"],
                                        prefix + "-0000.params")
    params = net.collect_params()
    us = sorted(n for n in params if n.endswith("_u"))
    out["first_%d" % i] = net(x).asnumpy()
    for j, n in enumerate(us):
        out["u_before_%d_%d" % (i, j)] = params[n].data().asnumpy()
    out["second_%d" % i] = net(x).asnumpy()
    for j, n in enumerate(us):
        out["u_after_%d_%d" % (i, j)] = params[n].data().asnumpy()
    out["u_count_%d" % i] = np.array(len(us))
loaded = [m for m in sys.modules if m.split(".")[0] == "sngan_gluon" and sys.modules[m]]
assert not loaded, loaded
np.savez("%s/outputs.npz" % folder, **out)
"""


def export(net, folder, index):
    """``net.export`` as the ``index``-th network :func:`run_elsewhere` loads from ``folder``."""
    net.export(os.path.join(str(folder), "net_%d" % index), epoch=0)


def run_elsewhere(folder, inputs):
    """Load and run networks ``0 .. len(inputs) - 1`` exported into ``folder`` by
    :func:`export`, network ``i`` on the numpy array ``inputs[i]``, in another process.

    Returns a list of dicts, one per network: ``first`` and ``second`` (the outputs of
    two calls in inference), ``u_before`` and ``u_after`` (lists of every ``*_u``
    parameter, sorted by name, before and after the second call).
    """
    folder = str(folder)
    for i, x in enumerate(inputs):
        np.save(os.path.join(folder, "input_%d.npy" % i), np.asarray(x))
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["OMP_NUM_THREADS"] = "1"
    result = subprocess.run([sys.executable, "-c", _SCRIPT, folder, str(len(inputs))],
                            cwd=folder, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:]
    with np.load(os.path.join(folder, "outputs.npz")) as saved:
        out = []
        for i in range(len(inputs)):
            count = int(saved["u_count_%d" % i])
            out.append({"first": saved["first_%d" % i], "second": saved["second_%d" % i],
                        "u_before": [saved["u_before_%d_%d" % (i, j)] for j in range(count)],
                        "u_after": [saved["u_after_%d_%d" % (i, j)] for j in range(count)]})
    return out
