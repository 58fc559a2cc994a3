"""``python -m sngan_gluon.spectra_report``: see :mod:`sngan_gluon.cli.spectra_report`."""
import sys

from .cli.spectra_report import main

if __name__ == "__main__":
    sys.exit(main())
