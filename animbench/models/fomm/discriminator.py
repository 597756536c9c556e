"""FOMM's pix2pix-style discriminator (4×4 valid convs, InstanceNorm, LeakyReLU 0.2), optionally spectral-
normalised (vox/bair configs) or conditioned on keypoint heatmaps (FOMM+ configs), and its multi-scale
wrapper keyed by scale ('1', '0-5', ...)."""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from animbench.models.fomm.blocks import kp2gaussian


class DownBlock2d(nn.Module):
    """conv 4×4 (no padding) → [InstanceNorm] → LeakyReLU 0.2 → [AvgPool 2]."""

    def __init__(self, in_features, out_features, norm=False, kernel_size=4, pool=False, sn=False):
        super().__init__()
        conv = nn.Conv2d(in_features, out_features, kernel_size=kernel_size)
        self.conv = nn.utils.spectral_norm(conv) if sn else conv
        self.norm = nn.InstanceNorm2d(out_features, affine=True) if norm else None
        self.pool = pool

    def forward(self, x):
        out = self.conv(x)
        if self.norm is not None:
            out = self.norm(out)
        out = F.leaky_relu(out, 0.2)
        return F.avg_pool2d(out, (2, 2)) if self.pool else out


class Discriminator(nn.Module):
    def __init__(self, num_channels=3, block_expansion=64, num_blocks=4, max_features=512, sn=False, use_kp=False,
                 num_kp=10, kp_variance=0.01, **unused):
        super().__init__()
        self.down_blocks = nn.ModuleList([
            DownBlock2d(num_channels + num_kp * use_kp if i == 0 else min(max_features, block_expansion * (2 ** i)),
                        min(max_features, block_expansion * (2 ** (i + 1))), norm=(i != 0), kernel_size=4,
                        pool=(i != num_blocks - 1), sn=sn)
            for i in range(num_blocks)])
        conv = nn.Conv2d(min(max_features, block_expansion * (2 ** num_blocks)), 1, kernel_size=1)
        self.conv = nn.utils.spectral_norm(conv) if sn else conv
        self.use_kp = use_kp
        self.kp_variance = kp_variance

    def forward(self, x, kp: Optional[Dict[str, torch.Tensor]] = None) -> Tuple[List[torch.Tensor], torch.Tensor]:
        out = x
        if self.use_kp:
            out = torch.cat([out, kp2gaussian(kp, x.shape[2:], self.kp_variance)], dim=1)
        feature_maps = []
        for block in self.down_blocks:
            out = block(out)
            feature_maps.append(out)
        return feature_maps, self.conv(out)


class MultiScaleDiscriminator(nn.Module):
    def __init__(self, scales: Sequence[float] = (), **kwargs):
        super().__init__()
        self.scales = scales
        self.discs = nn.ModuleDict({str(scale).replace(".", "-"): Discriminator(**kwargs) for scale in scales})

    def forward(self, x: Dict[str, torch.Tensor], kp=None) -> Dict[str, torch.Tensor]:
        out = {}
        for key, disc in self.discs.items():
            scale = key.replace("-", ".")
            feature_maps, prediction_map = disc(x["prediction_" + scale], kp)
            out["feature_maps_" + scale] = feature_maps
            out["prediction_map_" + scale] = prediction_map
        return out
