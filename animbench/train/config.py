"""Training configuration: bundled YAMLs (animbench/configs/train/) + the variant's switches + CLI overrides.

Variants (the PriorityCut paper's Table 5 ladder and Table 1):
  fomm        perceptual + equivariance (no discriminator; FOMM's published model)
  fomm-adv    + FOMM's global discriminator, LSGAN + feature matching (FOMM+)
  unet        the U-Net discriminator instead, no mixing
  cutmix      U-Net + rectangular CutMix + consistency loss
  prioritycut U-Net + PriorityCut (occlusion-guided CutMix) + consistency loss
"""
from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Dict, Optional

import yaml

from animbench.errors import UserError

CONFIG_DIR = Path(__file__).resolve().parent.parent / "configs" / "train"
VARIANTS = ("fomm", "fomm-adv", "unet", "cutmix", "prioritycut")

DEFAULTS: Dict[str, Any] = {
    "model": "vox-256",
    "dataset": {"name": "vox", "root": None, "frame_size": [256, 256], "id_sampling": True, "num_repeats": 75,
                "hflip": True, "time_flip": True},
    "train": {"epochs": 100, "milestones": [60, 90], "batch_size": 20, "lr_generator": 2e-4,
              "lr_kp_detector": 2e-4, "lr_discriminator": 2e-4, "betas": [0.5, 0.999],
              "scales": [1, 0.5, 0.25, 0.125], "align_corners": True,
              "transform": {"sigma_affine": 0.05, "sigma_tps": 0.005, "points_tps": 5},
              "loss_weights": {"perceptual": [10, 10, 10, 10, 10], "equivariance_value": 10,
                               "equivariance_jacobian": 10, "generator_gan": 1, "discriminator_gan": 1,
                               "feature_matching": [10, 10, 10, 10]},
              "checkpoint_every_epochs": 50, "checkpoint_every_steps": None, "sample_every_steps": 1000},
    "discriminator": {"kind": "unet", "ch": 64, "use_kp": False, "sn": False, "gan_loss": "lsgan"},
    "augmentation": {"kind": "prioritycut", "p_max": 0.5, "warmup_epochs": 10, "k_min": 10, "k_max": 50,
                     "threshold": 0.5, "direction": "prose", "base": "foreground", "consistency_weight": 1.0,
                     "per_sample": True},
    "vgg_weights": "torchvision",
}

VARIANT_SWITCHES = {
    "fomm": {"discriminator": {"kind": None}, "augmentation": {"kind": None},
             "train": {"loss_weights": {"generator_gan": 0}}},
    "fomm-adv": {"discriminator": {"kind": "fomm", "use_kp": True}, "augmentation": {"kind": None}},
    "unet": {"discriminator": {"kind": "unet"}, "augmentation": {"kind": None}},
    "cutmix": {"discriminator": {"kind": "unet"}, "augmentation": {"kind": "cutmix"}},
    "prioritycut": {"discriminator": {"kind": "unet"}, "augmentation": {"kind": "prioritycut"}},
}


def merge(base: dict, update: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in (update or {}).items():
        out[key] = merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def bundled_train_configs():
    return sorted(p.stem for p in CONFIG_DIR.glob("*.yaml"))


def load_train_config(variant: str, config: Optional[str] = None, overrides: Optional[dict] = None) -> dict:
    if variant not in VARIANTS:
        raise UserError(f"unknown variant {variant!r}; use one of {', '.join(VARIANTS)}")
    cfg = copy.deepcopy(DEFAULTS)
    if config is not None:
        path = CONFIG_DIR / f"{config}.yaml" if (CONFIG_DIR / f"{config}.yaml").exists() else Path(config)
        if not path.is_file():
            bundled = ", ".join(sorted(p.stem for p in CONFIG_DIR.glob("*.yaml")))
            raise UserError(f"--config {config}: neither a bundled training config ({bundled}) nor a YAML file")
        try:
            cfg = merge(cfg, yaml.safe_load(path.read_text()) or {})
        except yaml.YAMLError as e:
            raise UserError(f"{path}: invalid YAML ({str(e).splitlines()[0]})") from None
    cfg = merge(cfg, VARIANT_SWITCHES[variant])
    cfg = merge(cfg, overrides or {})
    cfg["variant"] = variant
    return cfg
