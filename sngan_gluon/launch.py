"""``python -m sngan_gluon.launch``: see :mod:`sngan_gluon.cli.launch`.

The launcher itself is :mod:`sngan_gluon.launcher` (the ps-lite protocol) and
:mod:`sngan_gluon.supervise` (the processes' supervision).
"""
import sys

from .cli.launch import main

if __name__ == "__main__":
    sys.exit(main())
