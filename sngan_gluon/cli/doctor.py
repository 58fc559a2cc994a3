"""``python -m sngan_gluon.doctor`` / ``sngan-doctor``: one screen about MXNet, CUDA and the GPUs.

For a bug report or a first GPU run; :mod:`sngan_gluon.environment` gathers it.
Exit code 1 where a GPU is present that the installed CUDA build of MXNet has no
kernels for.
"""
import sys

from . import OneLineParser


def build_parser():
    return OneLineParser(prog="python -m sngan_gluon.doctor",
                         description="Print Python, numpy and MXNet (version, CPU or CUDA "
                                     "build), the CUDA libraries and where they were loaded "
                                     "from, the NVIDIA driver, each GPU and whether the "
                                     "installed MXNet has kernels for it, and what to do next.")


def main(argv=None):
    build_parser().parse_args(argv)
    from ..environment import report
    lines, status = report()
    print("\n".join(lines))
    return status


if __name__ == "__main__":
    sys.exit(main())
