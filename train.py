"""Train an SN-GAN: ``python train.py --help``. A thin wrapper over sngan_gluon.cli.train."""
import sys

from sngan_gluon.cli.train import main

if __name__ == "__main__":
    sys.exit(main())
