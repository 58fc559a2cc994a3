"""``python -m sngan_gluon.generate``: see :mod:`sngan_gluon.cli.generate`."""
import sys

from .cli.generate import main

if __name__ == "__main__":
    sys.exit(main())
