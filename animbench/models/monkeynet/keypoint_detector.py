"""Monkey-Net's keypoint detector: an hourglass, a spatial softmax per keypoint, and the heatmap's moments.

Keypoints are dicts {'mean': (B,D,K,2) in [-1,1], (x,y) order; 'var': (B,D,K,2,2)} — the 'matrix'
keypoint variance that every released config uses.
"""
from __future__ import annotations

from typing import Dict, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from animbench.models.monkeynet.blocks import (Hourglass, inverse_2x2, make_coordinate_grid, resize,
                                               smallest_singular_value)

Keypoints = Dict[str, torch.Tensor]


def check_kp_variance(kp_variance) -> None:
    if kp_variance != "matrix":
        raise ValueError(f"kp_variance {kp_variance!r}: only 'matrix' (every released Monkey-Net config) is supported")


def heatmap_moments(heatmap: torch.Tensor, clip_variance: Optional[float] = None) -> Keypoints:
    """Mean and covariance of normalised heatmaps (B,K,D,h,w); 1e-7 is added to every pixel first.

    With `clip_variance` the covariance is rescaled so that its smallest singular value is at least that.
    """
    h, w = heatmap.shape[3:]
    weights = heatmap.unsqueeze(-1) + 1e-7                                   # (B,K,D,h,w,1)
    grid = make_coordinate_grid((h, w), heatmap.dtype, heatmap.device).view(1, 1, 1, h, w, 2)
    mean = (weights * grid).sum(dim=(3, 4))                                    # (B,K,D,2)
    centred = grid - mean.view(*mean.shape[:3], 1, 1, 2)
    outer = centred.unsqueeze(-1) * centred.unsqueeze(-2)                      # (B,K,D,h,w,2,2)
    var = (outer * weights.unsqueeze(-1)).sum(dim=(3, 4)).permute(0, 2, 1, 3, 4)
    if clip_variance:
        sigma = smallest_singular_value(var).unsqueeze(-1)
        floor = torch.tensor(clip_variance, dtype=var.dtype, device=var.device)
        var = torch.max(floor, sigma) * var / sigma
    return {"mean": mean.permute(0, 2, 1, 3), "var": var}


def kp2gaussian(kp: Keypoints, size: Tuple[int, int]) -> torch.Tensor:
    """Unnormalised Gaussians exp(-½ (z-μ)ᵀ Σ⁻¹ (z-μ)) on an (h,w) grid: (B,D,K,h,w)."""
    mean = kp["mean"]
    lead = mean.shape[:-1]
    grid = make_coordinate_grid(size, mean.dtype, mean.device)
    diff = grid.view((1,) * len(lead) + grid.shape) - mean.view(*lead, 1, 1, 2)      # (B,D,K,h,w,2)
    precision = inverse_2x2(kp["var"]).view(*lead, 1, 1, 2, 2)
    quad = torch.matmul(torch.matmul(diff.unsqueeze(-2), precision), diff.unsqueeze(-1))
    return torch.exp(-0.5 * quad.squeeze(-1).squeeze(-1))


class KPDetector(nn.Module):
    """Hourglass → softmax(heatmap / temperature) over each keypoint's pixels → heatmap moments."""

    def __init__(self, block_expansion: int, num_kp: int, num_channels: int, max_features: int, num_blocks: int,
                 temperature: float, kp_variance="matrix", scale_factor: float = 1, clip_variance=None):
        super().__init__()
        check_kp_variance(kp_variance)
        self.predictor = Hourglass(block_expansion, in_features=num_channels, out_features=num_kp,
                                   max_features=max_features, num_blocks=num_blocks)
        self.temperature = temperature
        self.scale_factor = scale_factor
        self.clip_variance = clip_variance

    def forward(self, video: torch.Tensor) -> Keypoints:
        """video (B,C,D,H,W) in [0,1] → {'mean': (B,D,K,2), 'var': (B,D,K,2,2)}."""
        if self.scale_factor != 1:
            video = resize(video, scale=self.scale_factor)
        logits = self.predictor(video)
        b, k, d, h, w = logits.shape
        heatmap = F.softmax(logits.view(b, k, d, h * w) / self.temperature, dim=3).view(b, k, d, h, w)
        return heatmap_moments(heatmap, self.clip_variance)
