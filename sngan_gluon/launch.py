"""``python -m sngan_gluon.launch``: see :mod:`sngan_gluon.cli.launch`.

The launcher itself (the ps-lite protocol, the supervision) is :mod:`sngan_gluon.launcher`.
"""
import sys

from .cli.launch import main

if __name__ == "__main__":
    sys.exit(main())
