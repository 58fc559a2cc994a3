"""``python -m sngan_gluon.generate`` / ``sngan-generate``: images from a checkpoint.

``--out grid.png`` writes a grid; ``--out samples.npz`` writes an array named
``images``: uint8, shape (N, H, W, C) channel-last, values 0..255, the same
orientation and colour order as the training images. The file is written
whole or not at all; an existing file of that name is replaced.
"""
import os
import sys

import numpy as np

from . import EXIT_USER_ERROR, OneLineParser, finite_float, positive_int

OUTPUT_TYPES = (".png", ".npz")


def build_parser():
    """The argument parser of ``python -m sngan_gluon.generate``."""
    from ..sampling import MIN_TRUNCATION
    parser = OneLineParser(prog="python -m sngan_gluon.generate",
                           description="Sample images from a trained generator.")
    parser.add_argument("--checkpoint", required=True,
                        help="a run folder (its newest checkpoint) or a checkpoint folder")
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
    return parser


def main(argv=None):
    """Entry point; returns the exit code (0, or 2 with one line on stderr)."""
    args = build_parser().parse_args(argv)
    from ..checkpoint import CheckpointError
    from ..config import ConfigError
    from ..devices import contexts
    from ..fileio import atomic_path
    from ..sampling import LoadedGenerator, check_truncation
    from ..visualize import save_image_grid
    try:
        check_truncation(args.truncation)
        ext = os.path.splitext(args.out)[1].lower()
        if ext not in OUTPUT_TYPES:
            raise ConfigError("--out must end in %s, got %r" % (" or ".join(OUTPUT_TYPES),
                                                               args.out))
        ctx = contexts(use_gpu=args.use_gpu)[0]
        gen = LoadedGenerator(args.checkpoint, ctx=ctx, use_ema=args.ema)
        images = gen.sample(args.num, seed=args.seed, label=args.label,
                            batch_size=args.batch_size, truncation=args.truncation)
        if ext == ".npz":
            with atomic_path(args.out, suffix=".npz") as tmp:  # numpy appends .npz otherwise
                np.savez_compressed(tmp, images=images)
        else:
            caption = "%s generator%s on %s (%dx%d), iteration %d, seed %d" % (
                gen.config["arch"], " (EMA)" if gen.ema else "", gen.config["dataset"],
                gen.image_size, gen.image_size, gen.iteration, args.seed)
            save_image_grid(images, args.out, caption=caption)
    except (ConfigError, CheckpointError, ValueError, OSError) as err:
        print("error: %s" % err, file=sys.stderr)
        return EXIT_USER_ERROR
    print("wrote %d images (%s generator, iteration %d) to %s"
          % (args.num, "EMA" if gen.ema else "raw", gen.iteration, args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
