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
    # loss (preset, optional per-term overrides)
    loss: str = "mse"
    pixel: float = None
    content: float = None
    adversarial: float = None
    feature_network: str = "effnet-lite0"
    feature_weights: str = "imagenet"  # "imagenet", a file, or "random" (tests only)
    # schedule: the first `pretrain_steps` of `steps` use pixel MSE only
    steps: int = 1000
    pretrain_steps: int = 0
    lr: float = 1e-4
    lr_boundaries: list = field(default_factory=list)
    lr_values: list = field(default_factory=list)
    beta1: float = 0.9
    init_weights: str = None  # start the generator from this .weights.h5 (e.g. weights/mse...)
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
        return cfg

    def to_dict(self):
        return dataclasses.asdict(self)

    def fingerprint(self):
        """What must not change between a checkpoint and a resume (everything that shapes pixels)."""
        d = self.to_dict()
        for k in ("steps", "start_step", "checkpoint_every", "validate_every", "keep_checkpoints", "recipe",
                  "data_note", "val_dir", "val_max_side"):
            d.pop(k)
        return json.dumps(d, sort_keys=True)
