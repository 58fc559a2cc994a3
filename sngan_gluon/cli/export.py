"""``python -m sngan_gluon.export`` / ``sngan-export``: a checkpoint's generator as ONNX.

The work is :func:`sngan_gluon.onnx_export.export_generator`; this module only
parses flags. The file's inputs, output and metadata are described there and
in ``docs/export_and_pictures.md``.
"""
import sys

from ..errors import UserError
from . import checkpoint_parser, user_error


def build_parser():
    """The argument parser of ``sngan-export``."""
    parser = checkpoint_parser("sngan-export", (
        "Write a trained generator as an ONNX model (dynamic batch; latent size, classes and "
        "image size in its metadata) that runs without MXNet, e.g. in onnxruntime."))
    parser.add_argument("--out", required=True,
                        help="the .onnx file to write; an existing file is replaced only if "
                             "sngan-export wrote it")
    parser.add_argument("--no-ema", dest="ema", action="store_false",
                        help="export the raw generator even if the run kept an EMA")
    parser.add_argument("--uint8", action="store_true",
                        help="output uint8 RGB images (N, 3, S, S) in 0..255, the form "
                             "torch-fidelity's ONNX generator input expects, instead of float "
                             "(N, C, S, S) in [-1, 1]")
    return parser


def main(argv=None):
    """Entry point; returns the exit code (0, or 2 with one line on stderr)."""
    args = build_parser().parse_args(argv)
    from ..onnx_export import export_generator
    try:
        meta = export_generator(args.checkpoint, args.out, ema=args.ema, uint8=args.uint8)
    except UserError as err:
        return user_error(err)
    print("wrote %s generator (%s, iteration %s, z_dim %s, %s classes, %spx, %s output) to %s"
          % ("EMA" if meta["ema"] else "raw", meta["arch"], meta["iteration"], meta["z_dim"],
             meta["num_classes"], meta["image_size"], meta["output"], meta["path"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
