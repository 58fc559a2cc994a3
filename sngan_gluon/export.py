"""``python -m sngan_gluon.export``: see :mod:`sngan_gluon.cli.export`."""
import sys

from .cli.export import main

if __name__ == "__main__":
    sys.exit(main())
