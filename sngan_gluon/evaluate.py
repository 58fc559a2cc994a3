"""``python -m sngan_gluon.evaluate``: see :mod:`sngan_gluon.cli.evaluate`."""
import sys

from .cli.evaluate import main

if __name__ == "__main__":
    sys.exit(main())
