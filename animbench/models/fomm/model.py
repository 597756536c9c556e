"""The FOMM animation model: keypoint detector + occlusion-aware generator behind the AnimationModel contract.

`model(source, driving)` reconstructs with ABSOLUTE keypoints, as the authors' reconstruction.py does.
For a video, `prepare_source` computes everything that depends on the source alone once (its keypoints,
the generator's encoder features, the downsampled source for the dense motion network) and `animate`
processes batches of driving frames against it. `animate_relative` is FOMM's cross-identity animation
(`normalize_kp` semantics).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Optional, Union

import numpy as np
import torch
import yaml

from animbench.errors import UserError
from animbench.models.base import AnimationModel
from animbench.models.fomm.discriminator import MultiScaleDiscriminator
from animbench.models.fomm.generator import OcclusionAwareGenerator
from animbench.models.fomm.keypoint_detector import KPDetector

CONFIG_DIR = Path(__file__).parent / "configs"
BUNDLED_CONFIGS = tuple(sorted(p.stem for p in CONFIG_DIR.glob("*.yaml")))


def load_config(config: Union[str, Path, dict, None], default: str = "vox-256") -> dict:
    """A bundled config name ("vox-256", ...), a path to any FOMM YAML, or an already-parsed dict."""
    if isinstance(config, dict):
        return config
    name = default if config is None else str(config)
    path = CONFIG_DIR / f"{name}.yaml" if name in BUNDLED_CONFIGS else Path(name)
    if not path.is_file():
        raise UserError(f"--config {name}: neither a bundled config ({', '.join(BUNDLED_CONFIGS)}) nor a YAML file")
    try:
        cfg = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        raise UserError(f"{path}: invalid YAML ({str(e).splitlines()[0]}); fix the file") from None
    if not isinstance(cfg, dict) or "model_params" not in cfg:
        raise UserError(f"{path}: not a FOMM config (no model_params section)")
    return cfg


def build_networks(config: dict, align_corners: bool = True, discriminator: bool = False):
    """(kp_detector, generator[, discriminator]) exactly as the authors' run.py builds them."""
    mp = config["model_params"]
    common = mp["common_params"]
    try:
        kp_detector = KPDetector(**mp["kp_detector_params"], **common)
        generator = OcclusionAwareGenerator(**mp["generator_params"], **common, align_corners=align_corners)
        if not discriminator:
            return kp_detector, generator
        disc = MultiScaleDiscriminator(**mp["discriminator_params"], **common)
    except TypeError as e:
        raise UserError(f"config: model_params do not fit FOMM's modules ({e}); check the YAML") from None
    return kp_detector, generator, disc


@dataclass
class SourceState:
    """What `prepare_source` computes once per source frame."""
    source: torch.Tensor
    kp_source: Dict[str, torch.Tensor]
    features: torch.Tensor
    source_down: torch.Tensor


def _cat(parts):
    return parts[0] if len(parts) == 1 else {k: torch.cat([p[k] for p in parts]) for k in parts[0]}


def _expand_kp(kp: Dict[str, torch.Tensor], batch: int) -> Dict[str, torch.Tensor]:
    return {k: (v.expand(batch, *v.shape[1:]) if v.shape[0] == 1 and batch != 1 else v) for k, v in kp.items()}


class FOMMModel(AnimationModel):
    has_motion_maps = True
    fully_convolutional = True

    def __init__(self, config: dict, align_corners: bool = True, name: str = "fomm",
                 motion_chunk: Union[int, str, None] = "auto", fused_decoder: Union[bool, str] = "auto"):
        super().__init__()
        # The generator's up blocks (nearest x2 + 3x3 conv + BN) run as sub-pixel 2x2 convolutions with BN folded
        # (models/fused.py: 16 instead of 36 MACs per pixel; prediction within ~1e-6 of the exact path).
        # "auto" = fused on CPU, exact on CUDA; False = bit-exact with the authors' code.
        self.fused_decoder = fused_decoder
        self._fused_cache = {}
        # Keypoints and dense motion (~6% of the FLOPs) run `motion_chunk` driving frames at a time. With 1
        # they are bit-identical to the authors' per-frame loop on CPU: batched convolutions round
        # differently and grid_sample amplifies a 1e-7 shift of the flow into ~3e-5 on sharp textures in
        # `deformed`. None batches everything (on a GPU per-frame motion is launch-bound: 2.0x vs 9.2x the
        # official loop on an H100). "auto" = 1 on CPU, None on CUDA. The heavy generator convolutions are
        # always batched (prediction differs from per-frame by ~1e-7).
        self.motion_chunk = motion_chunk
        self.config = config
        self.name = name
        self.kp_detector, self.generator = build_networks(config, align_corners=align_corners)
        self.align_corners = align_corners
        frame_shape = config.get("dataset_params", {}).get("frame_shape", [256, 256, 3])
        self.native_size = (int(frame_shape[0]), int(frame_shape[1]))

    def set_align_corners(self, value: bool) -> None:
        self.align_corners = value
        self.generator.set_align_corners(value)

    def describe(self) -> dict:
        device = next(self.parameters()).device
        return {"native_size": list(self.native_size), "align_corners": self.align_corners,
                "num_kp": self.config["model_params"]["common_params"]["num_kp"],
                "motion_chunk": self._motion_chunk(device),
                "decoder": "fused (sub-pixel, BN folded)" if self._use_fused(device) else "exact"}

    def _use_fused(self, device: torch.device) -> bool:
        if self.fused_decoder == "auto":
            return device.type == "cpu" and not self.training
        return bool(self.fused_decoder) and not self.training

    def _fused_up_blocks(self, device: torch.device):
        """Fused copies of the generator's up blocks, built from the current weights (kept out of state_dict)."""
        from animbench.models.fused import fuse_up_blocks

        key = (str(device), tuple(p.data_ptr() for p in self.generator.up_blocks.parameters()),
               tuple(t._version for t in (*self.generator.up_blocks.parameters(),
                                           *self.generator.up_blocks.buffers())))
        if self._fused_cache.get("key") != key:
            self._fused_cache = {"key": key, "blocks": fuse_up_blocks(self.generator.up_blocks).to(device)}
        return self._fused_cache["blocks"]

    def _motion_chunk(self, device: torch.device) -> Optional[int]:
        if self.motion_chunk == "auto":
            return 1 if device.type == "cpu" else None
        return self.motion_chunk or None

    # -- reconstruction ------------------------------------------------------------------------------
    def prepare_source(self, source: torch.Tensor) -> SourceState:
        return SourceState(source=source, kp_source=self.kp_detector(source), features=self.generator.encode(source),
                           source_down=self.generator.dense_motion_network.downsample(source))

    def animate(self, state: SourceState, driving: torch.Tensor,
                kp_driving: Optional[Dict[str, torch.Tensor]] = None) -> Dict[str, torch.Tensor]:
        batch = driving.shape[0]
        if state.source.shape[0] not in (1, batch):
            raise ValueError(f"{state.source.shape[0]} sources for {batch} driving frames")
        kp_source = _expand_kp(state.kp_source, batch)
        source = state.source.expand(batch, *state.source.shape[1:])
        step = self._motion_chunk(driving.device) or batch
        kp_parts, motion_parts = [], []
        for i in range(0, batch, step):
            sl = slice(i, i + step)
            kp = self.kp_detector(driving[sl]) if kp_driving is None else {k: v[sl] for k, v in kp_driving.items()}
            kp_parts.append(kp)
            motion_parts.append(self.generator.motion(source[sl], kp, {k: v[sl] for k, v in kp_source.items()},
                                                      source_down=state.source_down))
        kp_driving = _cat(kp_parts)
        motion = _cat(motion_parts)
        features = state.features.expand(batch, *state.features.shape[1:])
        up_blocks = self._fused_up_blocks(driving.device) if self._use_fused(driving.device) else None
        out = self.generator.synthesize(source, features, motion, up_blocks=up_blocks)
        out["kp_source"] = kp_source
        out["kp_driving"] = kp_driving
        return out

    # -- animation (cross-identity) ------------------------------------------------------------------
    def animate_relative(self, state: SourceState, driving: torch.Tensor, kp_driving_initial: Dict[str, torch.Tensor],
                         adapt_movement_scale: bool = False, use_relative_movement: bool = True,
                         use_relative_jacobian: bool = True) -> Dict[str, torch.Tensor]:
        kp_driving = self.kp_detector(driving)
        kp_new = normalize_kp(state.kp_source, kp_driving, kp_driving_initial, adapt_movement_scale,
                              use_relative_movement, use_relative_jacobian)
        return self.animate(state, driving, kp_driving=kp_new)


def normalize_kp(kp_source, kp_driving, kp_driving_initial, adapt_movement_scale=False, use_relative_movement=False,
                 use_relative_jacobian=False) -> Dict[str, torch.Tensor]:
    """FOMM's relative motion transfer: kp = (kp_d − kp_d0)·scale + kp_s, J = J_d·J_d0⁻¹·J_s."""
    scale = 1.0
    if adapt_movement_scale:
        from scipy.spatial import ConvexHull

        source_area = ConvexHull(kp_source["value"][0].detach().cpu().numpy()).volume
        driving_area = ConvexHull(kp_driving_initial["value"][0].detach().cpu().numpy()).volume
        scale = float(np.sqrt(source_area) / np.sqrt(driving_area))
    kp_new = dict(kp_driving)
    if use_relative_movement:
        kp_new["value"] = (kp_driving["value"] - kp_driving_initial["value"]) * scale + kp_source["value"]
        if use_relative_jacobian:
            diff = torch.matmul(kp_driving["jacobian"], torch.inverse(kp_driving_initial["jacobian"]))
            kp_new["jacobian"] = torch.matmul(diff, kp_source["jacobian"])
    return kp_new
