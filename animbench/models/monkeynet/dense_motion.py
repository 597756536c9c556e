"""Monkey-Net's keypoint embeddings and dense motion module (official state_dict names).

The embedding has no parameters. For each keypoint k it can stack: the (difference) Gaussian heatmap,
the keypoint displacement s_k − d_k as two constant maps, and the source image shifted by that displacement.
The dense motion module turns that into K+1 soft masks (background + keypoints) and a 2-channel correction:
flow(z) = z + Σ_k mask_k(z)·(s_k − d_k) + correction(z), with a z = 0 depth coordinate appended.
"""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from animbench.models.monkeynet.blocks import Hourglass, SameBlock3D, grid_sample, make_coordinate_grid, resize
from animbench.models.monkeynet.keypoint_detector import Keypoints, check_kp_variance, kp2gaussian


class MovementEmbedding(nn.Module):
    """Keypoint representation (B, out_channels, D, h, w) at `scale_factor` × the source resolution."""

    def __init__(self, num_kp: int, num_channels: int, kp_variance="matrix", use_deformed_source_image=False,
                 use_difference=False, use_heatmap=True, add_bg_feature_map=False, heatmap_type="gaussian",
                 norm_const="sum", scale_factor=1):
        super().__init__()
        check_kp_variance(kp_variance)
        if heatmap_type not in ("gaussian", "difference"):
            raise ValueError(f"heatmap_type {heatmap_type!r}: expected 'gaussian' or 'difference'")
        if not (use_heatmap or use_deformed_source_image or use_difference):
            raise ValueError("the keypoint embedding needs use_heatmap, use_difference or use_deformed_source_image")
        self.use_heatmap, self.use_difference = bool(use_heatmap), bool(use_difference)
        self.use_deformed_source_image = bool(use_deformed_source_image)
        self.add_bg = bool(add_bg_feature_map)
        self.heatmap_type, self.norm_const, self.scale_factor = heatmap_type, norm_const, scale_factor
        per_kp = self.use_heatmap + 2 * self.use_difference + num_channels * self.use_deformed_source_image
        self.out_channels = per_kp * (num_kp + self.add_bg)
        self.align_corners = True

    def scale(self, source: torch.Tensor) -> torch.Tensor:
        return source if self.scale_factor == 1 else resize(source, scale=self.scale_factor)

    def _normalise(self, heatmap: torch.Tensor) -> torch.Tensor:
        if self.norm_const == "sum":
            flat = heatmap.view(*heatmap.shape[:3], -1)
            return (flat / flat.sum(dim=3, keepdim=True)).view(heatmap.shape)
        return heatmap / self.norm_const

    def forward(self, source: torch.Tensor, kp_driving: Keypoints, kp_source: Keypoints,
                scaled: bool = False) -> torch.Tensor:
        """source (B,C,1,H,W) (already at the embedding's scale when `scaled`), keypoints (B,D,K,…)."""
        if not scaled:
            source = self.scale(source)
        b, c, _, h, w = source.shape
        d = kp_driving["mean"].shape[1]
        parts = []
        if self.use_heatmap:
            heat = self._normalise(kp2gaussian(kp_driving, (h, w)))
            if self.heatmap_type == "difference":
                heat = heat - self._normalise(kp2gaussian(kp_source, (h, w)))
            if self.add_bg:
                heat = torch.cat([heat.new_zeros(b, d, 1, h, w), heat], dim=2)
            parts.append(heat.unsqueeze(3))                                   # (B,D,K',1,h,w)
        if self.use_difference or self.use_deformed_source_image:
            shift = kp_source["mean"] - kp_driving["mean"]                    # (B,D,K,2)
            if self.add_bg:
                shift = torch.cat([shift.new_zeros(b, d, 1, 2), shift], dim=2)
            n = shift.shape[2]
            if self.use_difference:
                parts.append(shift.view(b, d, n, 2, 1, 1).expand(b, d, n, 2, h, w))
            if self.use_deformed_source_image:
                grid = make_coordinate_grid((h, w), shift.dtype, shift.device).view(1, h, w, 2)
                grid = grid + shift.reshape(b * d * n, 1, 1, 2)
                images = source.reshape(b, 1, 1, c, h, w).expand(b, d, n, c, h, w).reshape(b * d * n, c, h, w)
                parts.append(grid_sample(images, grid, self.align_corners).view(b, d, n, c, h, w))
        out = torch.cat(parts, dim=3)
        return out.view(b, d, -1, h, w).permute(0, 2, 1, 3, 4)


class IdentityDeformation(nn.Module):
    """The generator's flow when a config has no dense_motion_params: the identity."""

    def forward(self, source_image, kp_driving, kp_source, scaled: bool = False):
        _, _, _, h, w = source_image.shape
        b, d = kp_driving["mean"].shape[:2]
        grid = make_coordinate_grid((h, w), source_image.dtype, source_image.device)
        grid = grid.view(1, 1, h, w, 2).expand(b, d, h, w, 2)
        return torch.cat([grid, grid.new_zeros(b, d, h, w, 1)], dim=-1)


class DenseMotionModule(nn.Module):
    """Mask embedding → grouped 1×1 blocks → hourglass → K+1 softmax masks and a correction flow."""

    def __init__(self, block_expansion: int, num_blocks: int, max_features: int, mask_embedding_params: dict,
                 num_kp: int, num_channels: int, kp_variance="matrix", use_correction=True, use_mask=True,
                 bg_init=2, num_group_blocks=0, scale_factor=1):
        super().__init__()
        self.mask_embedding = MovementEmbedding(num_kp=num_kp, num_channels=num_channels, kp_variance=kp_variance,
                                                add_bg_feature_map=True, **mask_embedding_params)
        features = self.mask_embedding.out_channels
        self.group_blocks = nn.ModuleList(SameBlock3D(features, groups=num_kp + 1) for _ in range(num_group_blocks))
        outputs = (num_kp + 1) * bool(use_mask) + 2 * bool(use_correction)
        self.hourglass = Hourglass(block_expansion, in_features=features, out_features=outputs,
                                   max_features=max_features, num_blocks=num_blocks)
        with torch.no_grad():  # the authors' initialisation: background mask favoured, no correction
            self.hourglass.decoder.conv.weight.zero_()
            bias = ([float(bg_init)] + [0.0] * num_kp) * bool(use_mask) + [0.0, 0.0] * bool(use_correction)
            self.hourglass.decoder.conv.bias.copy_(torch.tensor(bias))
        self.num_kp, self.use_mask, self.use_correction = num_kp, bool(use_mask), bool(use_correction)
        self.scale_factor = scale_factor

    def scale(self, source: torch.Tensor) -> torch.Tensor:
        return source if self.scale_factor == 1 else resize(source, scale=self.scale_factor)

    def forward(self, source_image: torch.Tensor, kp_driving: Keypoints, kp_source: Keypoints,
                scaled: bool = False) -> torch.Tensor:
        """Absolute sampling grid (B,D,h,w,3) at `scale_factor` × the source resolution."""
        source = source_image if scaled else self.scale(source_image)
        x = self.mask_embedding(source, kp_driving, kp_source, scaled=True)
        for block in self.group_blocks:
            x = F.leaky_relu(block(x), 0.2)
        prediction = self.hourglass(x)
        b, _, d, h, w = prediction.shape
        flow = 0
        if self.use_mask:
            mask = F.softmax(prediction[:, :self.num_kp + 1], dim=1).unsqueeze(2)   # (B,K+1,1,D,h,w)
            shift = kp_source["mean"] - kp_driving["mean"]                             # (B,D,K,2)
            shift = torch.cat([shift.new_zeros(b, d, 1, 2), shift], dim=2)
            shift = shift.permute(0, 2, 3, 1).reshape(b, self.num_kp + 1, 2, d, 1, 1).expand(-1, -1, -1, -1, h, w)
            flow = (shift * mask).sum(dim=1)                                           # (B,2,D,h,w)
        if self.use_correction:
            flow = flow + prediction[:, -2:]
        if not torch.is_tensor(flow):
            flow = prediction.new_zeros(b, 2, d, h, w)
        grid = make_coordinate_grid((h, w), flow.dtype, flow.device).view(1, 1, h, w, 2)
        absolute = flow.permute(0, 2, 3, 4, 1) + grid
        return torch.cat([absolute, absolute.new_zeros(b, d, h, w, 1)], dim=-1)

    def set_align_corners(self, value: bool) -> None:
        self.mask_embedding.align_corners = value


def build_dense_motion(params: Optional[dict], num_kp: int, num_channels: int, kp_variance) -> nn.Module:
    if params is None:
        return IdentityDeformation()
    return DenseMotionModule(num_kp=num_kp, num_channels=num_channels, kp_variance=kp_variance, **params)
