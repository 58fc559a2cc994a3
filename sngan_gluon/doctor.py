"""``python -m sngan_gluon.doctor``: see :mod:`sngan_gluon.cli.doctor`."""
import sys

from .cli.doctor import main

if __name__ == "__main__":
    sys.exit(main())
