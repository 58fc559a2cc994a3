"""``python -m sngan_gluon.generate`` / ``sngan-generate``: images from a checkpoint.

``--out grid.png`` writes a grid; ``--out samples.npz`` writes an array named
``images``: uint8, shape (N, H, W, C) channel-last, values 0..255, the same
orientation and colour order as the training images.
"""
import argparse
import os
import sys

from . import OneLineParser

import numpy as np


def build_parser():
    parser = OneLineParser(prog="python -m sngan_gluon.generate",
                     description="Sample images from a trained generator.",
                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--checkpoint", required=True,
                        help="a run folder (its newest checkpoint) or a checkpoint folder")
    parser.add_argument("--num", type=int, default=64, help="number of images")
    parser.add_argument("--out", required=True, help="output: .png (grid) or .npz (array)")
    parser.add_argument("--seed", type=int, default=0, help="noise seed")
    parser.add_argument("--class", dest="label", type=int, default=None,
                        help="class of every image (conditional generators only)")
    parser.add_argument("--no-ema", dest="ema", action="store_false",
                        help="use the raw generator even if the run kept an EMA")
    parser.add_argument("--truncation", type=float, default=None,
                        help="redraw noise entries with |z| above this (the truncation trick)")
    parser.add_argument("--batch-size", type=int, default=100, help="images per forward pass")
    parser.add_argument("--use-gpu", action="store_true", help="run on GPU 0")
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    from ..checkpoint import CheckpointError
    from ..config import ConfigError
    from ..sampling import LoadedGenerator
    from ..visualize import save_image_grid
    try:
        if args.num <= 0 or args.batch_size <= 0:
            raise ConfigError("--num and --batch-size must be positive")
        if args.truncation is not None and args.truncation <= 0:
            raise ConfigError("--truncation must be positive")
        ext = os.path.splitext(args.out)[1].lower()
        if ext not in (".png", ".npz"):
            raise ConfigError("--out must end in .png or .npz, got %r" % args.out)
        ctx = None
        if args.use_gpu:
            from ..config import TrainConfig
            from ..trainer import get_contexts
            ctx = get_contexts(TrainConfig(use_gpu=True))[0]
        gen = LoadedGenerator(args.checkpoint, ctx=ctx, use_ema=args.ema)
        images = gen.sample(args.num, seed=args.seed, label=args.label,
                            batch_size=args.batch_size, truncation=args.truncation)
        folder = os.path.dirname(os.path.abspath(args.out))
        os.makedirs(folder, exist_ok=True)
        if ext == ".npz":
            tmp = args.out + ".tmp.npz"
            np.savez_compressed(tmp, images=images)
            os.replace(tmp, args.out)
        else:
            caption = "%s generator%s on %s (%dx%d), iteration %d, seed %d" % (
                gen.config["arch"], " (EMA)" if gen.ema else "", gen.config["dataset"],
                gen.image_size, gen.image_size, gen.iteration, args.seed)
            save_image_grid(images, args.out, caption=caption)
    except (ConfigError, CheckpointError, ValueError, OSError) as err:
        print("error: %s" % err, file=sys.stderr)
        return 2
    print("wrote %d images (%s generator, iteration %d) to %s"
          % (args.num, "EMA" if gen.ema else "raw", gen.iteration, args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
