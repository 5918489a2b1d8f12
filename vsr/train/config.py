"""Training recipes: YAML files in training/recipes/ mapped onto ``TrainConfig``."""

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path

from vsr.errors import DataError


@dataclass
class TrainConfig:
    """Everything that defines a training run. Paths are relative to the working directory."""

    name: str = "model"
    # generator / discriminator
    blocks: int = 16
    channels: int = 64
    scale: int = 4
    discriminator_channels: int = 64
    # data
    train_dirs: list = field(default_factory=list)
    val_dir: str = None
    degradation: str = "BI"
    hr_crop: int = 96
    batch: int = 16
    # HR crops with less fine detail than this (vsr.quality.detail_energy: Y high-pass RMS, 0-255)
    # are drawn again, up to 8 draws, keeping the most detailed (0: every crop as drawn). Of the
    # wallpaper photos' random 96x96 crops 69% score below 2 (median 1.1: sky, bokeh), of Set5's
    # none below 2 (median 5.2): a loss meant to teach texture needs crops that have some.
    min_detail: float = 0.0
    # loss (preset, optional per-term overrides)
    loss: str = "mse"
    pixel: float = None
    content: float = None
    adversarial: float = None
    # "standard" (SRGAN's -log D(G(x))) or "relativistic" (ESRGAN's relativistic average D)
    gan: str = "standard"
    feature_network: str = "effnet-lite0"
    feature_weights: str = "imagenet"  # "imagenet", a file, or "random" (tests only)
    # schedule: the first `pretrain_steps` of `steps` use pixel MSE only
    steps: int = 1000
    pretrain_steps: int = 0
    lr: float = 1e-4
    # the discriminator's learning rate (None: `lr`), under the same schedule scaled by d_lr / lr
    d_lr: float = None
    # Steps that train only a fresh discriminator, against the fixed generator, before the generator
    # sees the adversarial term (a run that restores its own checkpoint skips them; they do not count
    # in `steps`).
    d_warmup_steps: int = 0
    # The discriminator sees each real and fake crop shifted by its own random offset of up to
    # `d_shift` pixels each way (reflect-padded), so that the period-2..16 pattern in the gradient
    # of its strided convolutions falls on a different phase of the generator's 4-pixel lattice in
    # every sample instead of always the same one (0: no shift).
    d_shift: int = 0
    # Weight of the lattice term (losses.lattice_mse): the error's pattern that repeats every
    # `scale` pixels, which the generator's pixel shuffles make cheap and a discriminator asks for
    # (0: off). It is the pixel MSE of 16 dimensions per 32x32 tile and channel: weights of 100 or more.
    grid: float = 0.0
    lr_boundaries: list = field(default_factory=list)
    lr_values: list = field(default_factory=list)
    # "piecewise" (lr, or lr_values at lr_boundaries) or "cosine": linear warm-up from 0 to `lr`
    # over `warmup_steps`, then cosine decay to `lr_min` at `steps`, counted from the run's start step.
    lr_schedule: str = "piecewise"
    warmup_steps: int = 0
    lr_min: float = 0.0
    beta1: float = 0.9
    adam_epsilon: float = 1e-7
    pixel_loss: str = "mse"  # "mse" or "l1" (EDSR's choice) for the pixel term
    # Exponential moving average of the generator's weights (0 = off); validation and export use it.
    ema: float = 0.0
    # BatchNorm layers frozen (inference statistics and fixed affine; the convs still learn): no
    # train/test mismatch between the statistics of small crops and those of whole frames.
    bn_frozen: bool = False
    # Each residual block's last BatchNorm scale starts at 0, so a fresh generator starts as the
    # identity of its head features (no effect when starting from weights).
    zero_init_residual: bool = False
    # Start the generator from this .weights.h5 (e.g. weights/mse...), or from a checkpoint folder
    # (generator, Adam's moments and the EMA when present; it may come from another recipe).
    init_weights: str = None
    # Continue a run on a new machine from its committed generator weights (init_weights): the
    # step count, lr schedule and batch sequence go on from here; Adam's moments start afresh.
    start_step: int = 0
    seed: int = 0
    # bookkeeping
    checkpoint_every: int = 500
    validate_every: int = 500
    keep_checkpoints: int = 2
    val_max_side: int = 512
    recipe: str = ""
    data_note: str = ""

    @classmethod
    def from_yaml(cls, path, **overrides):
        import yaml

        path = Path(path)
        if not path.is_file():
            raise DataError(f"recipe {path} not found: see training/recipes/ for the shipped ones")
        raw = yaml.safe_load(path.read_text()) or {}
        raw.setdefault("recipe", str(path))
        raw.update({k: v for k, v in overrides.items() if v is not None})
        return cls.from_dict(raw)

    @classmethod
    def from_dict(cls, raw):
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(raw) - known
        if unknown:
            raise DataError(f"unknown recipe keys {sorted(unknown)}: valid keys are {sorted(known)}")
        cfg = cls(**raw)
        if isinstance(cfg.train_dirs, str):
            cfg.train_dirs = [cfg.train_dirs]
        if cfg.hr_crop % cfg.scale:
            raise DataError(f"hr_crop {cfg.hr_crop} must be a multiple of scale {cfg.scale}")
        if len(cfg.lr_boundaries) + 1 != len(cfg.lr_values) and cfg.lr_values:
            raise DataError("lr_values needs one more entry than lr_boundaries")
        if cfg.lr_schedule not in ("piecewise", "cosine"):
            raise DataError(f"lr_schedule must be piecewise or cosine, got {cfg.lr_schedule!r}")
        if cfg.gan not in ("standard", "relativistic"):
            raise DataError(f"gan must be standard or relativistic, got {cfg.gan!r}")
        if cfg.pixel_loss not in ("mse", "l1"):
            raise DataError(f"pixel_loss must be mse or l1, got {cfg.pixel_loss!r}")
        if cfg.d_warmup_steps < 0:
            raise DataError(f"d_warmup_steps must be 0 or more, got {cfg.d_warmup_steps}")
        if not 0 <= cfg.d_shift < cfg.hr_crop // 2:
            raise DataError(f"d_shift must be 0 to {cfg.hr_crop // 2 - 1}, got {cfg.d_shift}")
        if cfg.grid < 0:
            raise DataError(f"grid must be 0 or more, got {cfg.grid}")
        if cfg.grid and cfg.hr_crop % 32:
            raise DataError(f"grid needs hr_crop a multiple of 32 (the lattice term's tiles), got {cfg.hr_crop}")
        if cfg.min_detail < 0:
            raise DataError(f"min_detail must be 0 or more, got {cfg.min_detail}")
        if not 0.0 <= cfg.ema < 1.0:
            raise DataError(f"ema must be in [0, 1), got {cfg.ema}")
        return cfg

    def to_dict(self):
        return dataclasses.asdict(self)

    def fingerprint(self):
        """What must not change between a checkpoint and a resume (everything that shapes pixels)."""
        d = self.to_dict()
        ignored = ["checkpoint_every", "validate_every", "keep_checkpoints", "recipe", "data_note",
                   "val_dir", "val_max_side"]
        if self.lr_schedule != "cosine":  # a cosine schedule is shaped by where it starts and ends
            ignored += ["steps", "start_step"]
        for k in ignored:
            d.pop(k)
        # Keys added after the first runs are left out at their defaults, so those runs still resume.
        for k in LATER_KEYS:
            if d[k] == getattr(TrainConfig, k):
                d.pop(k)
        return json.dumps(d, sort_keys=True)


LATER_KEYS = ("gan", "d_lr", "d_warmup_steps", "lr_schedule", "warmup_steps", "lr_min", "adam_epsilon",
              "pixel_loss", "ema", "bn_frozen",
              "zero_init_residual", "min_detail", "d_shift", "grid")
