"""``python -m sngan_gluon.evaluate`` / ``sngan-evaluate``: scores of a generator or of images.

Prints one JSON line: Inception Score, FID, KID, precision, recall, density and
coverage, with the feature network, the protocol, the image counts and the real
set. The work is :func:`sngan_gluon.evaluation.evaluate`; this module only
parses flags.
"""
import json
import sys

from ..errors import UserError
from . import CHECKPOINT_HELP, OneLineParser, user_error


def build_parser():
    from ..feature_nets import FEATURE_NETS
    from ..metrics import FID_PROTOCOLS
    parser = OneLineParser(prog="sngan-evaluate", description=(
        "IS, FID, KID and precision/recall/density/coverage of a trained generator or of any "
        "images. With the default TF Inception network the scores are comparable with the "
        "papers'."))
    fake = parser.add_mutually_exclusive_group(required=True)
    fake.add_argument("--checkpoint", help=CHECKPOINT_HELP)
    fake.add_argument("--generator", metavar="ONNX",
                      help="a generator written by sngan-export (run by onnxruntime; noise "
                           "drawn as from its checkpoint)")
    fake.add_argument("--images", metavar="DIR_OR_NPZ",
                      help="score these images instead: a folder of RGB image files of one "
                           "size, or an .npz with 'images' uint8 (N, H, W, 3)")
    parser.add_argument("--real", metavar="DIR_OR_NPZ",
                        help="the real set as files (same forms as --images), instead of "
                             "--dataset")
    parser.add_argument("--dataset", help="the real set by dataset name, e.g. cifar10; "
                                          "default: the checkpoint's dataset")
    parser.add_argument("--split", choices=("train", "test"), default="train",
                        help="split of --dataset (default: train, as the SN-GAN paper)")
    parser.add_argument("--data-path", help="dataset root, where real features are cached "
                                            "(default: the run's, or ./data)")
    parser.add_argument("--num", type=int, default=None,
                        help="generated images for the Inception Score (default: 50000 from a "
                             "generator, all of --images); FID, KID and precision/recall use "
                             "the protocol's count of them")
    parser.add_argument("--protocol", choices=tuple(FID_PROTOCOLS), default="paper",
                        help="paper: 5k generated against 10k real (Miyato et al. 2018); "
                             "50k: 50k against 50k (default: paper)")
    parser.add_argument("--feature-net", choices=tuple(FEATURE_NETS), default="tf-inception",
                        help="tf-inception: TensorFlow's 2015 Inception, the papers' network; "
                             "gluoncv: gluoncv's Inception-v3, comparable only among its own "
                             "scores (default: tf-inception)")
    parser.add_argument("--feature-net-params", metavar="FILE",
                        help="local weights: for tf-inception the published "
                             "weights-inception-2015-12-05-6726825d.pth or its converted "
                             ".params, for gluoncv its inceptionv3 .params (default: downloaded "
                             "once to ~/.mxnet/models)")
    parser.add_argument("--batch-size", type=int, default=100,
                        help="images per forward pass (default: 100)")
    parser.add_argument("--seed", type=int, default=0, help="noise seed (default: 0)")
    parser.add_argument("--no-ema", dest="ema", action="store_false",
                        help="score the raw generator, not the EMA weights a run kept")
    parser.add_argument("--use-gpu", action="store_true", help="run on GPU 0")
    return parser


def main(argv=None, extractor=None):
    """Parse ``argv``, evaluate, print the JSON line; ``extractor`` replaces the network (tests)."""
    args = build_parser().parse_args(argv)
    from ..devices import contexts
    from ..evaluation import evaluate
    try:
        ctx = contexts(use_gpu=args.use_gpu)[0]
        result = evaluate(checkpoint=args.checkpoint, images=args.images, real=args.real,
                          dataset=args.dataset, split=args.split, data_path=args.data_path,
                          num=args.num, protocol=args.protocol, feature_net=args.feature_net,
                          feature_net_params=args.feature_net_params,
                          batch_size=args.batch_size, seed=args.seed, ema=args.ema, ctx=ctx,
                          extractor=extractor, generator=args.generator)
    except UserError as err:
        return user_error(err)
    print(json.dumps(result, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
