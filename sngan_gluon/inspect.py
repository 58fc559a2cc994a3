"""``python -m sngan_gluon.inspect``: see :mod:`sngan_gluon.cli.inspect`."""
import sys

from .cli.inspect import main

if __name__ == "__main__":
    sys.exit(main())
