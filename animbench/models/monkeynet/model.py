"""The Monkey-Net animation model behind the AnimationModel contract, and its configs.

Reconstruction follows the authors' reconstruction.py: the source is frame 0, keypoints of every driving
frame are detected on that frame alone, keypoints are used as they are (absolute), and the generator runs
once per driving frame with a depth of one. Here the driving frames are stacked along the depth axis of one
video (B=1, D=frames), which the authors' modules support natively: every conv has a (1,k,k) kernel,
BatchNorm uses its stored statistics, the flow's depth coordinate is 0 and resampling keeps the depth
size, so frames never mix.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Union

import torch
import yaml

from animbench.errors import UserError
from animbench.models.base import AnimationModel
from animbench.models.monkeynet.generator import MotionTransferGenerator
from animbench.models.monkeynet.keypoint_detector import KPDetector

CONFIG_DIR = Path(__file__).parent / "configs"
BUNDLED_CONFIGS = tuple(sorted(p.stem for p in CONFIG_DIR.glob("*.yaml")))
DEFAULT_CONFIG = "taichi"
_SECTIONS = ("common_params", "kp_detector_params", "generator_params")


def load_config(config: Union[str, Path, dict, None], default: str = DEFAULT_CONFIG) -> dict:
    """A bundled config name (taichi, nemo, moving-gif, vox), a path to any Monkey-Net YAML, or a parsed dict."""
    if isinstance(config, dict):
        return _check_config(config, "config")
    name = default if config is None else str(config)
    path = CONFIG_DIR / f"{name}.yaml" if name in BUNDLED_CONFIGS else Path(name)
    if not path.is_file():
        raise UserError(f"--config {name}: neither a bundled Monkey-Net config ({', '.join(BUNDLED_CONFIGS)}) "
                        f"nor a YAML file")
    try:
        cfg = yaml.safe_load(path.read_text())
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        raise UserError(f"{path}: invalid YAML ({str(e).splitlines()[0]}); fix the file") from None
    return _check_config(cfg, str(path))


def _check_config(cfg, where: str) -> dict:
    mp = cfg.get("model_params") if isinstance(cfg, dict) else None
    if not isinstance(mp, dict) or not all(isinstance(mp.get(s), dict) for s in _SECTIONS):
        raise UserError(f"{where}: not a Monkey-Net config (needs model_params with "
                        f"{', '.join(_SECTIONS)}, as in the authors' config/*.yaml)")
    gen = mp["generator_params"]
    if "num_down_blocks" in gen or "estimate_jacobian" in mp["common_params"]:
        raise UserError(f"{where}: this is a FOMM config, not a Monkey-Net one; use --model fomm")
    return cfg


def config_label(config) -> str:
    """How a config is named in manifests: the bundled name, the YAML path, or 'custom' for a dict."""
    if config is None:
        return DEFAULT_CONFIG
    if isinstance(config, dict):
        return "custom"
    return str(config)


def image_size(config: dict) -> tuple:
    """(H, W) from dataset_params.image_shape; the authors' FramesDataset default is (64, 64, 3)."""
    shape = (config.get("dataset_params") or {}).get("image_shape", [64, 64, 3])
    return int(shape[0]), int(shape[1])


def build_networks(config: dict):
    """(kp_detector, generator) exactly as the authors' run.py builds them from a config."""
    mp = config["model_params"]
    common = mp["common_params"]
    try:
        kp_detector = KPDetector(**mp["kp_detector_params"], **common)
        generator = MotionTransferGenerator(**mp["generator_params"], **common)
    except (TypeError, ValueError) as e:
        raise UserError(f"config: model_params do not fit Monkey-Net's modules ({e}); check the YAML") from None
    return kp_detector, generator


@dataclass
class SourceState:
    """What depends on the source frame only: the frame (1,C,1,H,W), its keypoints, the encoder skips."""
    source: torch.Tensor
    kp_source: Dict[str, torch.Tensor]
    skips: List[torch.Tensor]


class MonkeyNetModel(AnimationModel):
    has_motion_maps = False
    fully_convolutional = True  # (1,k,k) convolutions: the authors' code runs any size its hourglasses divide
    pooling = "video"           # reconstruction.py prints the mean over videos of each video's mean L1

    def __init__(self, config: dict, config_name: str = DEFAULT_CONFIG, align_corners: bool = True,
                 motion_chunk: Union[int, str, None] = "auto"):
        super().__init__()
        self.config = config
        self.config_name = config_name
        self.kp_detector, self.generator = build_networks(config)
        self.native_size = image_size(config)
        # Keypoints and dense motion (a small share of the FLOPs) run `motion_chunk` driving frames at a time;
        # the decoder always gets all frames, stacked along depth. With 1, keypoints and `deformed` are
        # bit-identical to the authors' per-frame loop on CPU. With several frames per call, convolutions
        # with some shapes (nemo's/moving-gif's keypoint detector) round differently (~6e-7 on keypoints)
        # and grid_sample amplifies that to ~3e-5 on sharp textures of `deformed` (4e-4 for vox-full).
        # None = all frames at once. "auto" = 1 on CPU, None on CUDA (per-frame motion is launch-bound).
        self.motion_chunk = motion_chunk
        self.set_align_corners(align_corners)

    def set_align_corners(self, value: bool) -> None:
        self.align_corners = bool(value)
        self.generator.set_align_corners(self.align_corners)

    def describe(self) -> dict:
        mp = self.config["model_params"]
        return {"native_size": list(self.native_size), "config": self.config_name,
                "interpolation_mode": self.generator.interpolation_mode, "num_kp": mp["common_params"]["num_kp"],
                "align_corners": self.align_corners, "keypoints": "absolute",
                "motion_chunk": self._motion_chunk(next(self.parameters()).device),
                # the authors print the mean over videos of each video's mean L1
                "pooling": "video-mean"}

    @staticmethod
    def _video(frames: torch.Tensor, what: str) -> torch.Tensor:
        """(N,3,H,W) frames → one video (1,3,N,H,W) with the frames along depth."""
        if frames.dim() != 4 or frames.shape[1] != 3:
            raise ValueError(f"Monkey-Net takes {what} frames (N,3,H,W), got {tuple(frames.shape)}")
        return frames.transpose(0, 1).unsqueeze(0)

    def detect(self, frames: torch.Tensor) -> Dict[str, torch.Tensor]:
        """Keypoints of each frame (N,3,H,W) on its own: {'mean': (N,K,2), 'var': (N,K,2,2)}."""
        return {k: v[0] for k, v in self.kp_detector(self._video(frames, "driving")).items()}

    def prepare_source(self, source: torch.Tensor) -> SourceState:
        if source.dim() != 4 or source.shape[0] != 1:
            raise ValueError(f"Monkey-Net takes one source frame (1,3,H,W), got {tuple(source.shape)}")
        video = self._video(source, "source")
        return SourceState(source=video, kp_source=self.kp_detector(video), skips=self.generator.encode(video))

    def _motion_chunk(self, device: torch.device) -> Optional[int]:
        if self.motion_chunk == "auto":
            return 1 if device.type == "cpu" else None
        return self.motion_chunk or None

    def animate(self, state: SourceState, driving: torch.Tensor) -> Dict[str, torch.Tensor]:
        video = self._video(driving, "driving")                     # (1,3,N,H,W)
        if video.shape[3:] != state.source.shape[3:]:
            raise ValueError(f"source {tuple(state.source.shape[3:])} and driving {tuple(video.shape[3:])} differ")
        frames = driving.shape[0]
        step = self._motion_chunk(driving.device) or frames
        kps, motions = [], []
        for i in range(0, frames, step):
            kp_driving = self.kp_detector(video[:, :, i:i + step])
            kps.append(kp_driving)
            motions.append(self.generator.motion(state.source, kp_driving, state.kp_source))
        kp_driving = _cat(kps, dim=1)
        motion = _cat_motion(motions)
        out = self.generator.synthesize(state.source, state.skips, motion)
        return {"prediction": out["video_prediction"][0].transpose(0, 1).contiguous(),
                "deformed": out["video_deformed"][0].transpose(0, 1).contiguous(),
                "kp_driving": {k: v[0] for k, v in kp_driving.items()},
                "kp_source": {k: v[0].expand(frames, *v.shape[2:]) for k, v in state.kp_source.items()}}


def _cat(parts: List[Dict[str, torch.Tensor]], dim: int) -> Dict[str, torch.Tensor]:
    return parts[0] if len(parts) == 1 else {k: torch.cat([p[k] for p in parts], dim=dim) for k in parts[0]}


def _cat_motion(parts: List[Dict[str, torch.Tensor]]) -> Dict[str, torch.Tensor]:
    """Concatenate motion chunks along depth: flow (1,D,h,w,3) on dim 1, embedding (1,K,D,h,w) on dim 2."""
    if len(parts) == 1:
        return parts[0]
    return {k: torch.cat([p[k] for p in parts], dim=1 if k == "flow" else 2) for k in parts[0]}
