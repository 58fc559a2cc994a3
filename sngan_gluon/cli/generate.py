"""``python -m sngan_gluon.generate`` / ``sngan-generate``: images from a checkpoint.

``--out grid.png`` writes a grid; ``--out samples.npz`` writes an array named
``images``: uint8, shape (N, H, W, C) channel-last, values 0..255, the same
orientation and colour order as the training images. The file is written
whole or not at all; an existing file of that name is replaced. One of
``--interpolate``, ``--per-class``, ``--truncation-sweep`` and ``--nearest``
draws that picture instead of plain samples. The work is
:func:`sngan_gluon.pictures.draw`; this module only parses flags.
"""
import sys

from ..errors import UserError
from . import checkpoint_parser, finite_float, positive_int, user_error

_PICTURE_HELP = {
    "interpolate": "a grid of --rows spherical latent walks of --steps images each",
    "per-class": "one row of --steps images per class, the same noise in each column "
                 "(conditional generators)",
    "truncation-sweep": "one row of --steps images per --truncations value, the same noise "
                        "draws in each row",
    "nearest": "--rows samples, each beside its --neighbours nearest training images (pixel "
               "distance): does the generator copy its data?",
}


def truncation_list(text):
    """argparse type: comma-separated truncation values, ``off`` for none."""
    values = []
    for item in text.split(","):
        item = item.strip()
        values.append(None if item.lower() == "off" else finite_float(item))
    return tuple(values)


def build_parser():
    """The argument parser of ``python -m sngan_gluon.generate``."""
    from ..pictures import DEFAULT_TRUNCATIONS, PICTURES
    from ..sampling import MIN_TRUNCATION
    parser = checkpoint_parser("python -m sngan_gluon.generate",
                               "Sample images from a trained generator, or draw pictures of "
                               "what it learned.")
    parser.add_argument("--num", type=positive_int, default=64, help="number of images")
    parser.add_argument("--out", required=True,
                        help="output file: .png (a grid) or .npz (an array of the images)")
    parser.add_argument("--seed", type=int, default=0, help="noise seed")
    parser.add_argument("--class", dest="label", type=int, default=None,
                        help="class of every image (conditional generators only; default: "
                             "uniform random classes)")
    parser.add_argument("--no-ema", dest="ema", action="store_false",
                        help="use the raw generator even if the run kept an EMA")
    parser.add_argument("--truncation", type=finite_float, default=None,
                        help="redraw noise entries with |z| above this, at least %g (the "
                             "truncation trick; default: off)" % MIN_TRUNCATION)
    parser.add_argument("--batch-size", type=positive_int, default=100,
                        help="images per forward pass")
    parser.add_argument("--use-gpu", action="store_true", help="run on GPU 0")
    pictures = parser.add_argument_group("pictures (at most one; --num is then unused)")
    modes = pictures.add_mutually_exclusive_group()
    for name in PICTURES:
        modes.add_argument("--" + name, dest="picture", action="store_const", const=name,
                           help=_PICTURE_HELP[name])
    pictures.add_argument("--rows", type=positive_int, default=8,
                          help="walks of --interpolate, samples of --nearest")
    pictures.add_argument("--steps", type=positive_int, default=8,
                          help="images a row: steps of a walk, columns of --per-class and "
                               "--truncation-sweep")
    pictures.add_argument("--truncations", type=truncation_list, default=DEFAULT_TRUNCATIONS,
                          metavar="T1,T2,...",
                          help="rows of --truncation-sweep, 'off' for none (default: %s)"
                               % ",".join("off" if t is None else "%g" % t
                                          for t in DEFAULT_TRUNCATIONS))
    pictures.add_argument("--neighbours", type=positive_int, default=3,
                          help="training images beside each sample of --nearest")
    pictures.add_argument("--data-path", default=None,
                          help="where --nearest finds the training set (default: the run's)")
    return parser


def main(argv=None):
    """Entry point; returns the exit code (0, or 2 with one line on stderr)."""
    args = build_parser().parse_args(argv)
    from ..devices import contexts
    from ..pictures import draw
    try:
        ctx = contexts(use_gpu=args.use_gpu)[0]
        message, _ = draw(args.checkpoint, args.out, picture=args.picture, num=args.num,
                          seed=args.seed, label=args.label, ema=args.ema,
                          truncation=args.truncation, batch_size=args.batch_size, ctx=ctx,
                          rows=args.rows, steps=args.steps, truncations=args.truncations,
                          neighbours=args.neighbours, data_path=args.data_path)
    except UserError as err:
        return user_error(err)
    print(message)
    return 0


if __name__ == "__main__":
    sys.exit(main())
