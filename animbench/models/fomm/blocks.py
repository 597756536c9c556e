"""Building blocks of the First Order Motion Model, with the official state_dict names.

Numerics follow the authors' modules (fomm.md §2): pre-activation residual blocks, nearest ×2 upsampling,
2×2 average pooling, a decoder that concatenates [up output, encoder skip], and a band-limited
downsampler whose Gaussian kernel is a persistent buffer (it is stored in the released checkpoints).
"""
from __future__ import annotations

from typing import Dict, List, Tuple

import torch
import torch.nn.functional as F
from torch import nn


def make_coordinate_grid(size: Tuple[int, int], dtype=torch.float32, device=None) -> torch.Tensor:
    """(h,w,2) grid of (x,y) in [-1,1]; pixel centres at ±1 (the align_corners=True convention)."""
    h, w = size
    x = torch.arange(w, dtype=dtype, device=device)
    y = torch.arange(h, dtype=dtype, device=device)
    x = 2 * (x / (w - 1)) - 1
    y = 2 * (y / (h - 1)) - 1
    return torch.stack([x.view(1, w).expand(h, w), y.view(h, 1).expand(h, w)], dim=2)


def kp2gaussian(kp: Dict[str, torch.Tensor], size: Tuple[int, int], variance: float) -> torch.Tensor:
    """Gaussian heatmaps exp(-0.5·|z - kp|² / variance) on an (h,w) grid: (..., K, h, w)."""
    mean = kp["value"]
    grid = make_coordinate_grid(size, mean.dtype, mean.device)
    lead = mean.dim() - 1
    diff = grid.view((1,) * lead + grid.shape) - mean.view(mean.shape[:lead] + (1, 1, 2))
    return torch.exp(-0.5 * (diff ** 2).sum(-1) / variance)


def grid_sample(inp: torch.Tensor, grid: torch.Tensor, align_corners: bool) -> torch.Tensor:
    """Bilinear, zero padding — FOMM's calls with an explicit align_corners (True = torch 1.0 behaviour)."""
    return F.grid_sample(inp, grid, mode="bilinear", padding_mode="zeros", align_corners=align_corners)


class ResBlock2d(nn.Module):
    """Pre-activation residual block: BN → ReLU → conv → BN → ReLU → conv, plus the input."""

    def __init__(self, in_features: int, kernel_size, padding):
        super().__init__()
        self.conv1 = nn.Conv2d(in_features, in_features, kernel_size=kernel_size, padding=padding)
        self.conv2 = nn.Conv2d(in_features, in_features, kernel_size=kernel_size, padding=padding)
        self.norm1 = nn.BatchNorm2d(in_features, affine=True)
        self.norm2 = nn.BatchNorm2d(in_features, affine=True)

    def forward(self, x):
        out = self.conv1(F.relu(self.norm1(x)))
        out = self.conv2(F.relu(self.norm2(out)))
        return out + x


class UpBlock2d(nn.Module):
    """Nearest ×2 upsampling → conv → BN → ReLU."""

    def __init__(self, in_features, out_features, kernel_size=3, padding=1, groups=1):
        super().__init__()
        self.conv = nn.Conv2d(in_features, out_features, kernel_size=kernel_size, padding=padding, groups=groups)
        self.norm = nn.BatchNorm2d(out_features, affine=True)

    def forward(self, x):
        return F.relu(self.norm(self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))))


class DownBlock2d(nn.Module):
    """conv → BN → ReLU → 2×2 average pooling."""

    def __init__(self, in_features, out_features, kernel_size=3, padding=1, groups=1):
        super().__init__()
        self.conv = nn.Conv2d(in_features, out_features, kernel_size=kernel_size, padding=padding, groups=groups)
        self.norm = nn.BatchNorm2d(out_features, affine=True)
        self.pool = nn.AvgPool2d(kernel_size=(2, 2))

    def forward(self, x):
        return self.pool(F.relu(self.norm(self.conv(x))))


class SameBlock2d(nn.Module):
    """conv → BN → ReLU at the same resolution."""

    def __init__(self, in_features, out_features, groups=1, kernel_size=3, padding=1):
        super().__init__()
        self.conv = nn.Conv2d(in_features, out_features, kernel_size=kernel_size, padding=padding, groups=groups)
        self.norm = nn.BatchNorm2d(out_features, affine=True)

    def forward(self, x):
        return F.relu(self.norm(self.conv(x)))


def _features(block_expansion: int, max_features: int, i: int) -> int:
    return min(max_features, block_expansion * (2 ** i))


class Encoder(nn.Module):
    def __init__(self, block_expansion, in_features, num_blocks=3, max_features=256):
        super().__init__()
        self.down_blocks = nn.ModuleList([
            DownBlock2d(in_features if i == 0 else _features(block_expansion, max_features, i),
                        _features(block_expansion, max_features, i + 1), kernel_size=3, padding=1)
            for i in range(num_blocks)])

    def forward(self, x) -> List[torch.Tensor]:
        outs = [x]
        for block in self.down_blocks:
            outs.append(block(outs[-1]))
        return outs


class Decoder(nn.Module):
    def __init__(self, block_expansion, in_features, num_blocks=3, max_features=256):
        super().__init__()
        blocks = []
        for i in reversed(range(num_blocks)):
            mult = 1 if i == num_blocks - 1 else 2  # later blocks also take the concatenated skip
            blocks.append(UpBlock2d(mult * _features(block_expansion, max_features, i + 1),
                                    _features(block_expansion, max_features, i), kernel_size=3, padding=1))
        self.up_blocks = nn.ModuleList(blocks)
        self.out_filters = block_expansion + in_features

    def forward(self, skips: List[torch.Tensor]) -> torch.Tensor:
        skips = list(skips)
        out = skips.pop()
        for block in self.up_blocks:
            out = torch.cat([block(out), skips.pop()], dim=1)  # up output first, skip second
        return out


class Hourglass(nn.Module):
    def __init__(self, block_expansion, in_features, num_blocks=3, max_features=256):
        super().__init__()
        self.encoder = Encoder(block_expansion, in_features, num_blocks, max_features)
        self.decoder = Decoder(block_expansion, in_features, num_blocks, max_features)
        self.out_filters = self.decoder.out_filters

    def forward(self, x):
        return self.decoder(self.encoder(x))


def antialias_kernel(channels: int, scale: float) -> torch.Tensor:
    """The (C,1,k,k) Gaussian of AntiAliasInterpolation2d: sigma = (1/scale − 1)/2, k = 2·round(4σ)+1."""
    sigma = (1 / scale - 1) / 2
    size = 2 * round(sigma * 4) + 1
    coords = torch.arange(size, dtype=torch.float32)
    gauss = torch.exp(-(coords - (size - 1) / 2) ** 2 / (2 * sigma ** 2))
    kernel = gauss.view(size, 1) * gauss.view(1, size)
    kernel = kernel / torch.sum(kernel)
    return kernel.view(1, 1, size, size).repeat(channels, 1, 1, 1)


class AntiAliasInterpolation2d(nn.Module):
    """Band-limited downsampling: zero-pad, depthwise Gaussian blur, keep every (1/scale)-th pixel from 0."""

    def __init__(self, channels: int, scale: float):
        super().__init__()
        kernel = antialias_kernel(channels, scale)
        size = kernel.shape[-1]
        self.ka = size // 2
        self.kb = self.ka - 1 if size % 2 == 0 else self.ka
        self.register_buffer("weight", kernel)  # persistent: it is part of the released state_dicts
        self.groups = channels
        self.scale = scale
        self.int_inv_scale = int(1 / scale)

    def forward(self, x):
        if self.scale == 1.0:
            return x
        out = F.pad(x, (self.ka, self.kb, self.ka, self.kb))
        out = F.conv2d(out, weight=self.weight, groups=self.groups)
        # stride slicing, not interpolate: the form that trains stably on torch > 1.0 (FOMM #146)
        return out[:, :, ::self.int_inv_scale, ::self.int_inv_scale]
