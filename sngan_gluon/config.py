"""The one object that describes a training run.

A :class:`TrainConfig` is built by the command line (or by hand), handed to the
trainer, and saved as ``config.json`` in the run folder and beside every
checkpoint, so a run can be reproduced or resumed from its folder alone.
"""
import dataclasses
import json
import math
import os
import time
from dataclasses import dataclass, field
from typing import List, Optional

from .augment import parse_policy
from .data import DATASETS, DEFAULT_IMAGE_SIZES, dataset_key
from .errors import UserError
from .feature_nets import FEATURE_NETS
from .losses import LOSSES
from .models import INITS, MODELS, check_ch, image_size_for

#: Adam and n_dis settings of Miyato et al. (2018), table 1, plus the setting the
#: authors trained their ResNets with (sngan_projection configs): name ->
#: (description, overrides).
SETTINGS = {
    "A": ("Adam(1e-4, 0.5, 0.9), n_dis 5",
          dict(lr=1e-4, beta1=0.5, beta2=0.9, n_dis=5)),
    "B": ("Adam(1e-4, 0.5, 0.999), n_dis 1 (the defaults)",
          dict(lr=1e-4, beta1=0.5, beta2=0.999, n_dis=1)),
    "C": ("Adam(2e-4, 0.5, 0.999), n_dis 1",
          dict(lr=2e-4, beta1=0.5, beta2=0.999, n_dis=1)),
    "D": ("Adam(1e-3, 0.5, 0.9), n_dis 5",
          dict(lr=1e-3, beta1=0.5, beta2=0.9, n_dis=5)),
    "E": ("Adam(1e-3, 0.5, 0.999), n_dis 5",
          dict(lr=1e-3, beta1=0.5, beta2=0.999, n_dis=5)),
    "F": ("Adam(1e-3, 0.9, 0.999), n_dis 5",
          dict(lr=1e-3, beta1=0.9, beta2=0.999, n_dis=5)),
    "resnet": ("Adam(2e-4, 0.0, 0.9), n_dis 5, hinge loss, linear decay (the authors' ResNets)",
               dict(lr=2e-4, beta1=0.0, beta2=0.9, n_dis=5, loss="hinge", lr_decay="linear")),
}

#: Gradient aggregation (``mx.kv.create`` names): device/local on one machine,
#: dist_* across machines (started with ``python -m sngan_gluon.launch``).
KVSTORES = ("device", "local", "dist_sync", "dist_device_sync")

#: The largest --seed: rank r of a run seeds its data and noise generators with
#: seed * 1000 + r (+ 17), which numpy takes only below 2**32.
MAX_SEED = (2 ** 32 - 1 - 17 - 999) // 1000

#: Learning-rate schedules: constant, or falling linearly to 0 at the last iteration.
LR_DECAYS = ("none", "linear")

#: Float settings; each must be a finite number (``--lr inf`` is refused).
FLOAT_FIELDS = ("lr", "beta1", "beta2", "clip_gr", "lecam", "mode_seeking", "ema",
                "g_bn_momentum")

#: Settings that may differ between a run and its resumption: they change how the
#: run is watched or how long it lasts, not what it computes.
RESUMABLE_OVERRIDES = ("iterations", "epochs", "log_every", "sample_every", "checkpoint_every",
                       "eval_every", "keep_checkpoints", "quiet", "num_workers", "eval_num",
                       "feature_net", "feature_net_params", "tensorboard")


class ConfigError(UserError, ValueError):
    """A setting a user gave is invalid; the message says which and why."""


@dataclass
class TrainConfig:
    """Every setting of a training run (see ``python train.py --help`` for meanings)."""

    dataset: str = "cifar10"
    data_path: str = "data"
    image_size: Optional[int] = None      # None: the dataset's / architecture's default
    channels: int = 3
    arch: str = "dcgan"
    g_ch: Optional[int] = None            # G's base width ``ch``; None: the architecture's
    d_ch: Optional[int] = None            # D's base width ``ch``; None: the architecture's
    loss: str = "hinge"
    conditional: bool = False
    sn: bool = True
    power_iterations: int = 1
    init: str = "arch"                    # weight initialization (models.initialization.INITS)
    g_bn_momentum: float = 0.9            # momentum of G's BatchNorm running statistics
    z_dim: int = 100
    batch_size: int = 64
    epochs: int = 100
    iterations: Optional[int] = None      # generator updates; overrides epochs
    n_dis: int = 1
    lr: float = 1e-4
    beta1: float = 0.5
    beta2: float = 0.999
    lr_decay: str = "none"
    clip_gr: float = 10.0
    diffaugment: str = ""                 # DiffAugment policy, e.g. "translation,cutout"; "": off
    lecam: float = 0.0                    # weight of the LeCam regulariser on D; 0: off
    mode_seeking: float = 0.0             # weight of the mode-seeking term in G's loss; 0: off
    ema: float = 0.0
    use_gpu: bool = False
    gpus: List[int] = field(default_factory=list)
    cpus: int = 1
    kvstore: str = "device"
    sync_bn: bool = False
    num_workers: int = 0
    seed: int = 0
    out_dir: Optional[str] = None
    sample_every: int = 1000
    checkpoint_every: int = 1000
    log_every: int = 100
    eval_every: int = 0
    eval_num: int = 5000
    feature_net: str = "tf-inception"     # network of --eval-every's IS/FID (feature_nets)
    feature_net_params: Optional[str] = None
    keep_checkpoints: int = 3
    quiet: bool = False
    tensorboard: bool = False             # also write TensorBoard events to <run>/tensorboard
    setting: Optional[str] = None

    @classmethod
    def for_new_run(cls, flags):
        """A new run's config from the settings a user gave (``{field: value}``, only those).

        The paper setting ``flags["setting"]`` is applied first, then the other
        flags over it. The result is validated and records the image side the
        run trains at (:meth:`resolved_image_size`) and its run folder
        (``out_dir``, default ``runs/<dataset>-<arch>-<date>-<time>``).
        """
        config = cls()
        if flags.get("setting"):
            config.apply_setting(flags["setting"])
        for key, value in flags.items():
            if key != "setting":
                setattr(config, key, value)
        config.validate()
        config.image_size = config.resolved_image_size()
        if config.out_dir is None:
            config.out_dir = os.path.join("runs", "%s-%s-%s" % (
                config.dataset, config.arch, time.strftime("%Y%m%d-%H%M%S")))
        return config

    def resumed(self, flags, checkpoint):
        """This config, saved in the folder ``checkpoint``, continued with the settings a
        user gave (``{field: value}``, only those); validated.

        Only :data:`RESUMABLE_OVERRIDES` and ``out_dir`` may change: any other
        setting given with a different value is a :class:`ConfigError`. Without
        ``out_dir`` the run continues in the run folder that holds ``checkpoint``
        now, even if it was moved since it was saved.
        """
        for key, value in flags.items():
            if key in RESUMABLE_OVERRIDES or key == "out_dir":
                setattr(self, key, value)
            elif getattr(self, key) != value:
                raise ConfigError(
                    "--%s %s differs from the run being resumed (%s); only %s may change "
                    "on --resume" % (key.replace("_", "-"), value, getattr(self, key),
                                     ", ".join(_flag(k) for k in RESUMABLE_OVERRIDES)))
        if "out_dir" not in flags:  # <run>/checkpoints/iter_X -> <run>
            self.out_dir = os.path.dirname(os.path.dirname(os.path.abspath(checkpoint)))
        return self.validate()

    @property
    def distributed(self):
        """Whether this process is one worker of a ``dist_*`` job."""
        return self.kvstore.startswith("dist")

    def validate(self):
        """Raise :class:`ConfigError` naming the first invalid setting; return self."""
        self._check_numbers()
        self._check_choices()
        self._check_devices()
        return self

    def _check_numbers(self):
        positive = ("batch_size", "epochs", "n_dis", "z_dim", "power_iterations", "cpus",
                    "sample_every", "checkpoint_every", "log_every", "keep_checkpoints",
                    "eval_num")
        for name in positive:
            value = getattr(self, name)
            if not isinstance(value, int) or value <= 0:
                raise ConfigError("%s must be a positive integer, got %r" % (_flag(name), value))
        if not isinstance(self.seed, int) or not 0 <= self.seed <= MAX_SEED:
            raise ConfigError("--seed must be an integer in 0..%d, got %r" % (MAX_SEED, self.seed))
        if self.iterations is not None and self.iterations <= 0:
            raise ConfigError("--iterations must be a positive integer, got %r" % self.iterations)
        for name in FLOAT_FIELDS:
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ConfigError("%s must be a finite number, got %r" % (_flag(name), value))
        if not self.lr > 0:
            raise ConfigError("--lr must be positive, got %r" % self.lr)
        for name in ("beta1", "beta2", "ema", "g_bn_momentum"):
            value = getattr(self, name)
            if not 0 <= value < 1:
                raise ConfigError("%s must be in [0, 1), got %r" % (_flag(name), value))
        if self.clip_gr < 0:
            raise ConfigError("--clip-gr must be >= 0 (0 turns clipping off), got %r"
                              % self.clip_gr)
        if not self.lecam >= 0:
            raise ConfigError("--lecam must be >= 0 (0 turns it off), got %r" % self.lecam)
        if not self.mode_seeking >= 0:
            raise ConfigError("--mode-seeking must be >= 0 (0 turns it off), got %r"
                              % self.mode_seeking)
        if self.eval_every < 0 or self.num_workers < 0:
            raise ConfigError("--eval-every and --num-workers must be >= 0")

    def _check_choices(self):
        """Names must be in the registries the command line builds its choices from."""
        _check_choice("dataset", dataset_key(self.dataset), DATASETS)
        _check_choice("arch", self.arch, MODELS)
        for name in ("g_ch", "d_ch"):
            if getattr(self, name) is not None:
                try:
                    check_ch(self.arch, getattr(self, name), MODELS[self.arch].ch_multiple)
                except ValueError as err:
                    raise ConfigError("%s: %s" % (_flag(name), err)) from None
        _check_choice("init", self.init, INITS)
        _check_choice("loss", self.loss, LOSSES)
        _check_choice("lr_decay", self.lr_decay, LR_DECAYS)
        _check_choice("kvstore", self.kvstore, KVSTORES)
        _check_choice("feature_net", self.feature_net, FEATURE_NETS)
        if self.setting is not None:
            _check_choice("setting", self.setting, SETTINGS)
        if self.image_size is not None:
            self.resolved_image_size()
        if self.channels not in (1, 3):
            raise ConfigError("--channels must be 1 or 3, got %r" % self.channels)
        try:
            parse_policy(self.diffaugment)
        except ValueError as err:
            raise ConfigError("--diffaugment: %s" % err)

    def _check_devices(self):
        if self.sync_bn and not (self.gpus or self.use_gpu):
            raise ConfigError("--sync-bn needs GPUs (--gpus): MXNet's SyncBatchNorm waits on a "
                              "barrier that CPU contexts never reach")
        if self.batch_size % self.num_devices:
            raise ConfigError("--batch-size %d does not split evenly over %d devices"
                              % (self.batch_size, self.num_devices))
        if self.mode_seeking and self.batch_size % (2 * self.num_devices):
            raise ConfigError("--mode-seeking pairs the samples of each device: --batch-size %d "
                              "must split into even parts over %d devices"
                              % (self.batch_size, self.num_devices))

    def resolved_image_size(self):
        """The image side of this run.

        ``image_size`` when set (it must be one the architecture supports), else
        the dataset's own side when the architecture has a layout for it, else
        the architecture's default side (see :data:`sngan_gluon.models.MODELS`).
        """
        try:
            return image_size_for(self.arch, self.image_size,
                                  DEFAULT_IMAGE_SIZES.get(dataset_key(self.dataset)))
        except ValueError as err:
            raise ConfigError("--image-size: %s" % err) from None

    @property
    def num_devices(self):
        return len(self.gpus) if self.gpus else self.cpus

    def apply_setting(self, name):
        """Overwrite Adam / n_dis fields with the paper's setting ``name`` (see SETTINGS)."""
        if name not in SETTINGS:
            raise ConfigError("unknown --setting %r; choose from %s" % (name, ", ".join(SETTINGS)))
        for key, value in SETTINGS[name][1].items():
            setattr(self, key, value)
        self.setting = name
        return self

    def to_dict(self):
        return dataclasses.asdict(self)

    def save(self, path):
        with open(path, "w") as f:
            json.dump(self.to_dict(), f, indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, values):
        values = dict(values)
        if "inception_params" in values:
            # runs saved before the TF Inception measured with gluoncv's network
            values.setdefault("feature_net_params", values.pop("inception_params"))
            values.setdefault("feature_net", "gluoncv")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError("unknown settings in config: %s" % ", ".join(unknown))
        return cls(**values)

    @classmethod
    def load(cls, path):
        try:
            with open(path) as f:
                values = json.load(f)
        except (OSError, ValueError) as err:
            raise ConfigError("cannot read config %s: %s" % (path, err))
        return cls.from_dict(values)


def _flag(name):
    return "--" + name.replace("_", "-")


def _check_choice(name, value, choices):
    if value not in choices:
        raise ConfigError("unknown %s %r; choose from %s"
                          % (_flag(name), value, ", ".join(choices)))
