"""``python -m sngan_gluon.evaluate`` / ``sngan-evaluate``: IS and FID of a checkpoint.

Prints one JSON line: ``is_mean``, ``is_std`` (over 10 splits of ``--num``
images), ``fid`` with its protocol (generated and real image counts, the real
set), and the feature network. Real-set statistics are computed once per
dataset, split, size and count and cached under ``<data-path>/fid_stats/``.
"""
import argparse
import json
import sys

import numpy as np

from . import OneLineParser


def build_parser():
    parser = OneLineParser(prog="python -m sngan_gluon.evaluate",
                     description="Inception Score and FID of a trained generator.",
                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--checkpoint", required=True,
                        help="a run folder (its newest checkpoint) or a checkpoint folder")
    parser.add_argument("--num", type=int, default=50000,
                        help="generated images for the Inception Score (FID uses the "
                             "protocol's count of them)")
    parser.add_argument("--fid-protocol", choices=("paper", "50k"), default="paper",
                        help="paper: 10k real / 5k generated (as Miyato et al.); 50k: 50k / 50k")
    parser.add_argument("--dataset", default=None,
                        help="real set for FID (default: the run's dataset)")
    parser.add_argument("--data-path", default=None,
                        help="dataset root and statistics cache (default: the run's)")
    parser.add_argument("--split", choices=("train", "test"), default="train",
                        help="which split of the real set FID compares with")
    parser.add_argument("--inception-params", default=None,
                        help="local Inception-v3 weights (gluoncv inceptionv3 .params)")
    parser.add_argument("--batch-size", type=int, default=100, help="images per forward pass")
    parser.add_argument("--seed", type=int, default=0, help="noise seed")
    parser.add_argument("--no-ema", dest="ema", action="store_false",
                        help="evaluate the raw generator even if the run kept an EMA")
    parser.add_argument("--use-gpu", action="store_true", help="run on GPU 0")
    return parser


def run(args, extractor=None):
    """Evaluate; returns the result dict. ``extractor`` replaces Inception (tests)."""
    from ..data import get_dataset
    from ..evaluation import protocol_sizes, real_batches, real_stats_cache_path
    from ..metrics import FeatureStats, InceptionExtractor, fid_from_stats, inception_score
    from ..metrics import real_statistics
    from ..sampling import LoadedGenerator
    ctx = None
    if args.use_gpu:
        from ..config import TrainConfig
        from ..trainer import get_contexts
        ctx = get_contexts(TrainConfig(use_gpu=True))[0]
    if args.num <= 0 or args.batch_size <= 0:
        raise ValueError("--num and --batch-size must be positive")
    gen = LoadedGenerator(args.checkpoint, ctx=ctx, use_ema=args.ema)
    if extractor is None:
        kwargs = {"ctx": ctx} if ctx is not None else {}
        extractor = InceptionExtractor(params_file=args.inception_params,
                                       batch_size=args.batch_size, **kwargs)
    name = args.dataset or gen.config["dataset"]
    root = args.data_path or gen.config["data_path"]
    num_real, num_fid = protocol_sizes(args.fid_protocol)
    num_fid = min(num_fid, args.num)
    dataset = get_dataset(name, root=root, image_size=gen.image_size, channels=gen.channels,
                          train=args.split == "train")
    num_real = min(num_real, len(dataset.images))
    net_name = getattr(extractor, "name", "inceptionv3")
    cache = real_stats_cache_path(root, name, args.split, gen.image_size, num_real, net_name)
    real = real_statistics(real_batches(dataset, num_real, args.batch_size), cache, extractor)
    fake_stats, probs, seen = FeatureStats(), [], 0
    for batch in gen.generate(args.num, seed=args.seed, batch_size=args.batch_size):
        features, p = extractor.extract(batch)
        take = max(0, min(len(features), num_fid - seen))
        if take:
            fake_stats.update(features[:take])
        seen += len(features)
        probs.append(p)
    is_mean, is_std = inception_score(np.concatenate(probs), splits=10)
    return {
        "checkpoint": gen.path, "iteration": gen.iteration, "ema": gen.ema,
        "is_mean": float(is_mean), "is_std": float(is_std), "is_num": args.num,
        "fid": float(fid_from_stats(fake_stats, real)),
        "fid_protocol": args.fid_protocol, "fid_num_fake": num_fid, "fid_num_real": num_real,
        "fid_real_set": "%s/%s" % (name, args.split), "feature_network": net_name,
        "note": "gluoncv Inception-v3: comparable across runs of this package, not digit for "
                "digit with papers that used the TensorFlow Inception graph",
    }


def main(argv=None, extractor=None):
    args = build_parser().parse_args(argv)
    from ..checkpoint import CheckpointError
    from ..config import ConfigError
    from ..data import DatasetError
    from ..metrics import MetricsError
    try:
        result = run(args, extractor=extractor)
    except (ConfigError, CheckpointError, DatasetError, MetricsError, ValueError,
            OSError) as err:
        print("error: %s" % err, file=sys.stderr)
        return 2
    print(json.dumps(result, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
