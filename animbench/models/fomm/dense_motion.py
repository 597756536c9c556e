"""FOMM dense motion network: sparse motions around each keypoint (first-order Taylor expansion),
the source warped by each, an hourglass predicting a soft assignment (mask; channel 0 = background /
identity motion) and an occlusion map (1 = visible)."""
from __future__ import annotations

from typing import Dict, Optional

import torch
import torch.nn.functional as F
from torch import nn

from animbench.models.fomm.blocks import AntiAliasInterpolation2d, Hourglass, grid_sample, kp2gaussian, \
    make_coordinate_grid


class DenseMotionNetwork(nn.Module):
    def __init__(self, block_expansion, num_blocks, max_features, num_kp, num_channels, estimate_occlusion_map=False,
                 scale_factor=1, kp_variance=0.01, align_corners=True):
        super().__init__()
        self.hourglass = Hourglass(block_expansion=block_expansion, in_features=(num_kp + 1) * (num_channels + 1),
                                   max_features=max_features, num_blocks=num_blocks)
        self.mask = nn.Conv2d(self.hourglass.out_filters, num_kp + 1, kernel_size=(7, 7), padding=(3, 3))
        self.occlusion = (nn.Conv2d(self.hourglass.out_filters, 1, kernel_size=(7, 7), padding=(3, 3))
                          if estimate_occlusion_map else None)
        self.num_kp = num_kp
        self.scale_factor = scale_factor
        self.kp_variance = kp_variance
        self.align_corners = align_corners
        if scale_factor != 1:
            self.down = AntiAliasInterpolation2d(num_channels, scale_factor)

    def downsample(self, source: torch.Tensor) -> torch.Tensor:
        return self.down(source) if self.scale_factor != 1 else source

    def heatmap_representation(self, size, kp_driving, kp_source) -> torch.Tensor:
        """(B,K+1,1,h,w): driving minus source Gaussians, a zero background channel first."""
        heatmap = kp2gaussian(kp_driving, size, self.kp_variance) - kp2gaussian(kp_source, size, self.kp_variance)
        zeros = torch.zeros(heatmap.shape[0], 1, *size, dtype=heatmap.dtype, device=heatmap.device)
        return torch.cat([zeros, heatmap], dim=1).unsqueeze(2)

    def sparse_motions(self, size, kp_driving, kp_source) -> torch.Tensor:
        """(B,K+1,h,w,2): identity first, then z ↦ J_s·J_d⁻¹·(z − kp_d) + kp_s for each keypoint."""
        h, w = size
        bs = kp_driving["value"].shape[0]
        identity = make_coordinate_grid((h, w), kp_source["value"].dtype, kp_source["value"].device).view(1, 1, h, w, 2)
        coords = identity - kp_driving["value"].view(bs, self.num_kp, 1, 1, 2)
        if "jacobian" in kp_driving:
            jacobian = torch.matmul(kp_source["jacobian"], torch.inverse(kp_driving["jacobian"]))
            jacobian = jacobian.view(bs, self.num_kp, 1, 1, 2, 2)
            coords = torch.matmul(jacobian, coords.unsqueeze(-1)).squeeze(-1)
        driving_to_source = coords + kp_source["value"].view(bs, self.num_kp, 1, 1, 2)
        return torch.cat([identity.expand(bs, 1, h, w, 2), driving_to_source], dim=1)

    def deformed_sources(self, source_down, motions) -> torch.Tensor:
        """(B,K+1,C,h,w): the downsampled source warped by every sparse motion."""
        bs, n, h, w, _ = motions.shape
        c = source_down.shape[1]
        repeated = source_down.unsqueeze(1).expand(bs, n, c, h, w).reshape(bs * n, c, h, w)
        warped = grid_sample(repeated, motions.reshape(bs * n, h, w, 2), self.align_corners)
        return warped.view(bs, n, c, h, w)

    def forward(self, source_image, kp_driving, kp_source, source_down: Optional[torch.Tensor] = None
                ) -> Dict[str, torch.Tensor]:
        """`source_down` (the downsampled source, possibly batch 1) may be passed to skip recomputing it."""
        if source_down is None:
            source_down = self.downsample(source_image)
        bs = kp_driving["value"].shape[0]
        if source_down.shape[0] != bs:
            source_down = source_down.expand(bs, *source_down.shape[1:])
        h, w = source_down.shape[2:]
        heatmap = self.heatmap_representation((h, w), kp_driving, kp_source)
        motions = self.sparse_motions((h, w), kp_driving, kp_source)
        deformed = self.deformed_sources(source_down, motions)
        features = self.hourglass(torch.cat([heatmap, deformed], dim=2).view(bs, -1, h, w))
        mask = F.softmax(self.mask(features), dim=1)
        deformation = (motions.permute(0, 1, 4, 2, 3) * mask.unsqueeze(2)).sum(dim=1).permute(0, 2, 3, 1)
        out = {"sparse_deformed": deformed, "mask": mask, "deformation": deformation}
        if self.occlusion is not None:
            out["occlusion_map"] = torch.sigmoid(self.occlusion(features))
        return out
