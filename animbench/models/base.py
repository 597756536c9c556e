"""The animation-model contract shared by every model family.

`model(source, driving) -> dict` with at least `prediction` (B,3,H,W) in [0,1]. Reconstruction of a video
calls `prepare_source` once and `animate` per batch of driving frames, so models can cache whatever depends
on the source only (FOMM: source keypoints and encoder features).
"""
from __future__ import annotations

from typing import Any, Dict, Optional, Tuple

import torch
from torch import nn


class AnimationModel(nn.Module):
    """Base class: subclasses implement `prepare_source` and `animate` (or override `forward`)."""

    #: (H, W) the model was trained at; None = any size.
    native_size: Optional[Tuple[int, int]] = None
    #: whether `animate` returns occlusion_map / mask (FOMM family), needed for top-k masks.
    has_motion_maps: bool = False
    #: whether the network runs at other frame sizes than `native_size` (then a warning, not a refusal).
    fully_convolutional: bool = False
    #: how the authors averaged per-frame metrics: "frame" (pooled, FOMM) or "video" (mean of video means)
    pooling: str = "frame"

    def prepare_source(self, source: torch.Tensor) -> Any:
        return source

    def animate(self, state: Any, driving: torch.Tensor) -> Dict[str, torch.Tensor]:
        raise NotImplementedError

    def forward(self, source: torch.Tensor, driving: torch.Tensor) -> Dict[str, torch.Tensor]:
        return self.animate(self.prepare_source(source), driving)

    def describe(self) -> Dict[str, Any]:
        """Settings that change the numbers; recorded in every result manifest."""
        return {"native_size": list(self.native_size) if self.native_size else None}
