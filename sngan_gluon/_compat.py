"""Make ``import mxnet`` work on every supported Python; the one home of private MXNet APIs.

mxnet 1.9.1 still refers to the NumPy aliases ``np.bool``, ``np.int``, ... that
NumPy 1.24 removed. On Python <= 3.11 the package pins NumPy 1.23.5, which still
has them; Python 3.12 has no wheel that old, so this module puts the aliases
back (they were plain builtins) before mxnet is imported. Every module of the
package imports mxnet only after the package ``__init__`` imported this one.
"""
import builtins
import sys

import numpy as np

_REMOVED_ALIASES = ("bool", "int", "float", "complex", "object", "str")

for _name in _REMOVED_ALIASES:
    if _name not in np.__dict__:
        setattr(np, _name, getattr(builtins, _name))

import mxnet  # noqa: E402,F401  (imported here so the order above is guaranteed)


def repo_file_url(namespace, filename):
    """The URL of ``filename`` in Gluon's dataset mirror (``namespace``: 'gluon/dataset/mnist').

    Wraps ``mxnet.gluon.utils._get_repo_file_url`` (private in MXNet 1.9.1), so
    that a change of it touches this module only.
    """
    from mxnet.gluon.utils import _get_repo_file_url
    return _get_repo_file_url(namespace, filename)


def gluoncv_model_zoo():
    """``gluoncv.model_zoo``, importable even where torch >= 2 is installed.

    gluoncv 0.10's ``__init__`` probes for its optional PyTorch half and raises
    RuntimeError ("Legacy torch==2.x detected") when it finds torch 2, which the
    test extra installs for the equality tests. Its MXNet half does not use
    torch, so torch is hidden from that one probe while gluoncv is first imported.
    """
    if "gluoncv" not in sys.modules:
        saved = sys.modules.get("torch")
        sys.modules["torch"] = None  # makes `import torch` raise ImportError: "not found"
        try:
            import gluoncv  # noqa: F401
        finally:
            if saved is None:
                del sys.modules["torch"]
            else:
                sys.modules["torch"] = saved
    import gluoncv.model_zoo
    return gluoncv.model_zoo
