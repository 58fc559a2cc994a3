"""``python train.py`` / ``sngan-train``: train an SN-GAN.

Only parses flags, builds a :class:`~sngan_gluon.config.TrainConfig` and hands
it to :class:`~sngan_gluon.trainer.GANTrainer`. User errors end in one line on
stderr and a non-zero exit code, never a traceback.
"""
import argparse
import os
import sys
import traceback

from ..checkpoint_search import resolve_checkpoint
from ..config import KVSTORES, LR_DECAYS, SETTINGS, TrainConfig
from ..data import DATASETS, dataset_key
from ..errors import UserError
from ..feature_nets import FEATURE_NETS
from ..losses import LOSSES
from ..models import INITS, MODELS
from ..extensions import TrainingError
from ..run_folder import RunFolderError, RunFolderWriteError, folder_problem
from ..trainer import GANTrainer, config_from_checkpoint
from . import (EXIT_FAILED, EXIT_INTERRUPTED, EXIT_USER_ERROR, OneLineParser, finite_float,
               positive_int)


_D = TrainConfig()  # defaults


def _gpu_list(text):
    try:
        ids = [int(t) for t in text.split(",") if t.strip() != ""]
    except ValueError:
        raise argparse.ArgumentTypeError("expected GPU ids like 0,1 got %r" % text)
    if not ids or any(i < 0 for i in ids):
        raise argparse.ArgumentTypeError("expected GPU ids like 0,1 got %r" % text)
    return ids


def _size_defaults():
    return ", ".join("%s %d" % (arch, entry.default_size) for arch, entry in MODELS.items())


def _width_defaults(net):
    """'dcgan 512; resnet 256 at 32, 64 at 48 ...' for --g-ch ('g') or --d-ch ('d')."""
    parts = []
    for arch, entry in MODELS.items():
        widths = ", ".join("%d at %d" % (entry.default_ch(net, size), size) for size in entry.sizes)
        if len({entry.default_ch(net, size) for size in entry.sizes}) == 1:
            widths = str(entry.default_ch(net, entry.default_size))
        parts.append("%s %s%s" % (arch, widths, "" if entry.ch_multiple == 1 else
                                  ", a multiple of %d" % entry.ch_multiple))
    return "; ".join(parts)


def build_parser(suppress_defaults=False):
    """The argument parser; ``suppress_defaults`` leaves unset flags out of the namespace."""
    settings = "; ".join("%s: %s" % (k, v[0]) for k, v in SETTINGS.items())
    parser = OneLineParser(
        prog="train.py",
        description="Train a spectrally normalized GAN (Miyato et al., ICLR 2018) with "
                    "MXNet Gluon. Defaults: the paper's setting B with the standard CNN "
                    "and the hinge loss, on CIFAR-10.",
        argument_default=argparse.SUPPRESS if suppress_defaults else None)
    d = (lambda v: argparse.SUPPRESS) if suppress_defaults else (lambda v: v)
    data = parser.add_argument_group("data")
    data.add_argument("--dataset", type=dataset_key, choices=DATASETS, default=d(_D.dataset),
                      metavar="NAME", help="one of " + ", ".join(DATASETS))
    data.add_argument("--data-path", default=d(_D.data_path),
                      help="dataset root (CIFAR-10 is downloaded here); for --dataset folder "
                           "the folder of images")
    data.add_argument("--image-size", type=positive_int, default=d(_D.image_size),
                      help="image side in pixels, one --arch has a layout for (default: the "
                           "dataset's own side when --arch has a layout for it, else the "
                           "arch's: %s)" % _size_defaults())
    data.add_argument("--channels", type=int, choices=(1, 3), default=d(_D.channels),
                      help="3: RGB (grayscale sets tiled to 3); 1: grayscale")
    data.add_argument("--num-workers", type=int, default=d(_D.num_workers),
                      help="data-loading worker threads (0: load in the training thread)")
    model = parser.add_argument_group("model")
    model.add_argument("--arch", choices=tuple(MODELS), default=d(_D.arch),
                       help="dcgan: the paper's standard CNN; resnet: its ResNet; dcgan64: "
                            "the 64x64 pair of MXNet's original SN-GAN example")
    for net, name in (("g", "generator"), ("d", "discriminator")):
        model.add_argument("--%s-ch" % net, type=positive_int, default=d(None), metavar="CH",
                           help="the %s's base width ch, which every layer's width is "
                                "a multiple or fraction of (default: the architecture's: %s)"
                                % (name, _width_defaults(net)))
    model.add_argument("--z-dim", type=positive_int, default=d(_D.z_dim),
                       help="dimension of the generator's noise input")
    model.add_argument("--conditional", action="store_true", default=d(False),
                       help="class-conditional GAN: conditional BatchNorm in G, projection D")
    model.add_argument("--no-sn", dest="sn", action="store_false", default=d(True),
                       help="build the discriminator without spectral normalization")
    model.add_argument("--init", choices=tuple(INITS), default=d(_D.init),
                       help="weight initialization: " + "; ".join(
                           "%s: %s" % item for item in INITS.items()))
    model.add_argument("--g-bn-momentum", type=finite_float, default=d(_D.g_bn_momentum),
                       help="momentum of G's BatchNorm running statistics, which samples are "
                            "drawn with (Gluon's meaning: the weight of the old value, in "
                            "[0, 1)); MXNet advances them once per generator step, so "
                            "0.9**(n_dis+1) follows G as fast as the authors' Chainer code "
                            "does with 0.9")
    model.add_argument("--power-iterations", type=positive_int,
                       default=d(_D.power_iterations),
                       help="power-iteration steps per discriminator update")
    opt = parser.add_argument_group("optimization")
    opt.add_argument("--setting", choices=tuple(SETTINGS), default=d(None),
                     help="the paper's named Adam/n_dis settings (explicit flags override "
                          "them): %s (default: none; the flags' own defaults are setting B)"
                          % settings)
    opt.add_argument("--loss", choices=tuple(LOSSES), default=d(_D.loss),
                     help="hinge (the paper's best) or bce (non-saturating logistic loss)")
    opt.add_argument("--batch-size", type=positive_int, default=d(_D.batch_size),
                     help="images per step in total, over all devices and machines")
    opt.add_argument("--epochs", type=positive_int, default=d(_D.epochs),
                     help="passes over the data (ignored when --iterations is given)")
    opt.add_argument("--iterations", type=positive_int, default=d(_D.iterations),
                     help="generator updates to train for; overrides --epochs")
    opt.add_argument("--n-dis", type=positive_int, default=d(_D.n_dis),
                     help="discriminator updates per generator update")
    opt.add_argument("--lr", type=finite_float, default=d(_D.lr),
                     help="Adam learning rate (both nets)")
    opt.add_argument("--beta1", "--lr-beta", dest="beta1", type=finite_float,
                     default=d(_D.beta1), help="Adam's beta1 (first-moment decay)")
    opt.add_argument("--beta2", type=finite_float, default=d(_D.beta2),
                     help="Adam's beta2 (second-moment decay)")
    opt.add_argument("--lr-decay", choices=LR_DECAYS, default=d(_D.lr_decay),
                     help="linear: both learning rates fall linearly to 0 at the last iteration")
    opt.add_argument("--clip-gr", "--clip_gr", dest="clip_gr", type=finite_float,
                     default=d(_D.clip_gr),
                     help="clip every gradient element to [-c, c]; 0 turns clipping off")
    opt.add_argument("--diffaugment", metavar="POLICY", default=d(_D.diffaugment),
                     help="DiffAugment (Zhao et al. 2020) of every image D sees, real and fake: "
                          "a comma list of color, translation, cutout, for small datasets "
                          "(default: off)")
    opt.add_argument("--lecam", type=finite_float, default=d(_D.lecam),
                     help="weight of the LeCam regulariser (Tseng et al. 2021) on D, for small "
                          "datasets, e.g. 0.3; a first-order alternative to gradient penalties, "
                          "which MXNet 1.x cannot differentiate; 0: off")
    opt.add_argument("--mode-seeking", type=finite_float, default=d(_D.mode_seeking),
                     help="weight of the mode-seeking term (Mao et al. 2019) added to G's loss, "
                          "which rewards different samples for different noise, against "
                          "samples that grow alike, e.g. 1; needs an even batch per device; "
                          "0: off")
    opt.add_argument("--ema", type=finite_float, default=d(_D.ema),
                     help="decay of an exponential moving average of G's weights used for "
                          "samples and evaluation (e.g. 0.999), warmed up as "
                          "min(ema, (1+t)/(10+t)) at iteration t; 0: off")
    opt.add_argument("--seed", type=int, default=d(_D.seed), help="random seed")
    dev = parser.add_argument_group("devices")
    dev.add_argument("--use-gpu", action="store_true", default=d(False),
                     help="train on GPU 0 (needs a CUDA build of MXNet)")
    dev.add_argument("--gpus", type=_gpu_list, default=d([]),
                     help="train on these GPUs, e.g. 0,1 (data parallel; default: none, "
                          "train on the CPU)")
    dev.add_argument("--cpus", type=positive_int, default=d(_D.cpus),
                     help="train data-parallel on this many CPU contexts (exercises the "
                          "multi-device path without GPUs)")
    dev.add_argument("--kvstore", choices=KVSTORES, default=d(_D.kvstore),
                     help="gradient aggregation: device/local on one machine; dist_* across "
                          "machines (start with python -m sngan_gluon.launch)")
    dev.add_argument("--sync-bn", action="store_true", default=d(False),
                     help="generator BatchNorm statistics over all devices (SyncBatchNorm)")
    out = parser.add_argument_group("output")
    out.add_argument("--out-dir", default=d(None),
                     help="run folder (default: runs/<dataset>-<arch>-<timestamp>)")
    out.add_argument("--sample-every", type=positive_int, default=d(_D.sample_every),
                     help="write a sample grid every N iterations")
    out.add_argument("--checkpoint-every", type=positive_int, default=d(_D.checkpoint_every),
                     help="write a checkpoint every N iterations")
    out.add_argument("--keep-checkpoints", type=positive_int, default=d(_D.keep_checkpoints),
                     help="how many recent checkpoints to keep")
    out.add_argument("--log-every", type=positive_int, default=d(_D.log_every),
                     help="read losses, log and plot every N iterations")
    out.add_argument("--eval-every", type=int, default=d(_D.eval_every),
                     help="compute IS, FID, KID and precision/recall every N iterations (0: never); "
                          "keeps the best-FID checkpoint as best/")
    out.add_argument("--eval-num", type=positive_int, default=d(_D.eval_num),
                     help="generated images per evaluation during training")
    out.add_argument("--feature-net", choices=tuple(FEATURE_NETS), default=d(_D.feature_net),
                     help="network of --eval-every's scores: tf-inception (TensorFlow's 2015 "
                          "Inception, as the papers) or gluoncv (gluoncv's Inception-v3)")
    out.add_argument("--feature-net-params", default=d(None),
                     help="local weights file of the feature network (offline)")
    out.add_argument("--resume", default=d(None),
                     help="continue a run: its folder or one of its checkpoint folders")
    out.add_argument("--accept-changed-data", action="store_true", default=d(False),
                     help="with --resume: go on although the dataset's images changed since "
                          "the checkpoint (refused otherwise; no longer bit for bit)")
    out.add_argument("--tensorboard", action="store_true", default=d(False),
                     help="also write the losses, learning rate, D's outputs, layer sigmas, "
                          "IS/FID and sample grids as TensorBoard events to "
                          "<out-dir>/tensorboard (needs tensorboardX: pip install "
                          "\".[tensorboard]\")")
    out.add_argument("--quiet", action="store_true", default=d(False),
                     help="no progress bar (for log files)")
    return parser


def make_config(argv=None):
    """Flags -> (TrainConfig, --resume's checkpoint or run folder or None, out_dir or None).

    A new run: :meth:`TrainConfig.for_new_run`; ``--resume``: the config saved in
    the checkpoint, :meth:`TrainConfig.resumed` with the flags given.
    """
    build_parser().parse_args(argv)  # --help, and one line for a bad flag
    flags = vars(build_parser(suppress_defaults=True).parse_args(argv))  # the flags given
    flags.pop("accept_changed_data", None)  # how to resume, not a setting of the run
    resume = flags.pop("resume", None)
    if not resume:
        config = TrainConfig.for_new_run(flags)
        return config, None, config.out_dir
    ckpt_path = resolve_checkpoint(resume)
    config = config_from_checkpoint(ckpt_path).resumed(flags, ckpt_path)
    # the trainer loads it: from a run folder, the newest checkpoint that loads
    return config, resume, config.out_dir


def main(argv=None):
    """Entry point; returns the process exit code.

    A distributed worker (``--kvstore dist_*``) that fails ends its process with
    ``os._exit`` once it has said why: returning would leave it waiting at
    interpreter exit in ps-lite's finalize for workers that never come, and the
    whole job would hang.
    """
    job = {}
    try:
        try:
            code = _train(argv, job)
        except KeyboardInterrupt as err:  # Ctrl-C before the loop handles signals
            code = _fail(_interrupted_message(err), EXIT_INTERRUPTED)
    except BaseException:
        if not job.get("distributed"):
            raise
        traceback.print_exc()
        code = EXIT_FAILED
    if job.get("distributed") and code != 0:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code


def _train(argv, job):
    """Build the trainer and train; returns the exit code (``job["distributed"]``: a
    worker of a ``dist_*`` job)."""
    try:
        config, resume, out_dir = make_config(argv)
        job["distributed"] = config.distributed
        problem = folder_problem(out_dir, resume)
        if problem:  # before any work; RunFolder.open checks again
            raise RunFolderError(problem)
        trainer = GANTrainer.for_run(config)
        accept = build_parser().parse_args(argv).accept_changed_data
        trainer.train(out_dir, resume=resume, accept_changed_data=accept)
    except UserError as err:
        return _fail("error: %s" % err, EXIT_USER_ERROR)
    except (TrainingError, RunFolderWriteError) as err:
        return _fail("error: %s" % err, EXIT_FAILED)
    except MemoryError:  # before the loop (the dataset, the networks): nothing was saved
        return _fail("error: ran out of memory before the first iteration; try a smaller "
                     "--batch-size or --image-size", EXIT_FAILED)
    except KeyboardInterrupt as err:
        return _fail(_interrupted_message(err), EXIT_INTERRUPTED)
    if trainer.is_chief:
        print("done: %d iterations; samples, log and checkpoints in %s"
              % (trainer.iteration, out_dir))
    return 0


def _interrupted_message(err):
    name = getattr(err, "signal_name", "SIGINT")
    where = err.args[0] if err.args else None
    if getattr(err, "at_once", False):
        return "stopped at once by a second %s; no checkpoint written on the way out" % name
    if where:
        return "interrupted by %s: checkpoint written to %s (continue with --resume %s)" % (
            name, where, where)
    return "interrupted by %s" % name


def _fail(message, code):
    print(message, file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
