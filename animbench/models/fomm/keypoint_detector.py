"""FOMM keypoint detector: an hourglass on the 4× downsampled frame, a VALID 7×7 conv to K heatmaps
(58×58 at 256² input — keypoints live on that grid; do not "fix" it with padding), softmax with a
temperature, and keypoints/Jacobians as heatmap-weighted sums."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from animbench.models.fomm.blocks import AntiAliasInterpolation2d, Hourglass, make_coordinate_grid


class KPDetector(nn.Module):
    def __init__(self, block_expansion, num_kp, num_channels, max_features, num_blocks, temperature,
                 estimate_jacobian=False, scale_factor=1, single_jacobian_map=False, pad=0):
        super().__init__()
        self.predictor = Hourglass(block_expansion, in_features=num_channels, max_features=max_features,
                                   num_blocks=num_blocks)
        self.kp = nn.Conv2d(self.predictor.out_filters, num_kp, kernel_size=(7, 7), padding=pad)
        if estimate_jacobian:
            self.num_jacobian_maps = 1 if single_jacobian_map else num_kp
            self.jacobian = nn.Conv2d(self.predictor.out_filters, 4 * self.num_jacobian_maps, kernel_size=(7, 7),
                                      padding=pad)
            # identity Jacobians at initialisation
            nn.init.zeros_(self.jacobian.weight)
            with torch.no_grad():
                self.jacobian.bias.copy_(torch.tensor([1.0, 0.0, 0.0, 1.0] * self.num_jacobian_maps))
        else:
            self.jacobian = None
        self.num_kp = num_kp
        self.temperature = temperature
        self.scale_factor = scale_factor
        if scale_factor != 1:
            self.down = AntiAliasInterpolation2d(num_channels, scale_factor)

    @staticmethod
    def heatmap_to_keypoints(heatmap: torch.Tensor) -> torch.Tensor:
        """(B,K,h,w) probability maps -> (B,K,2) expected (x,y) coordinates on the map's own grid."""
        grid = make_coordinate_grid(heatmap.shape[2:], heatmap.dtype, heatmap.device)
        return (heatmap.unsqueeze(-1) * grid.view(1, 1, *grid.shape)).sum(dim=(2, 3))

    def forward(self, x):
        if self.scale_factor != 1:
            x = self.down(x)
        features = self.predictor(x)
        logits = self.kp(features)
        b, k, h, w = logits.shape
        heatmap = F.softmax(logits.view(b, k, -1) / self.temperature, dim=2).view(b, k, h, w)
        out = {"value": self.heatmap_to_keypoints(heatmap)}
        if self.jacobian is not None:
            jacobian_map = self.jacobian(features).reshape(b, self.num_jacobian_maps, 4, h, w)
            jacobian = (heatmap.unsqueeze(2) * jacobian_map).view(b, k, 4, -1).sum(dim=-1)
            out["jacobian"] = jacobian.view(b, k, 2, 2)
        return out
