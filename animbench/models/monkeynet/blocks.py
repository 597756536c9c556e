"""Building blocks of Monkey-Net (Siarohin et al., CVPR 2019), with the official state_dict names.

Everything works on 5-D video tensors (B,C,D,H,W); every convolution is a Conv3d with a (1,k,k) kernel, so
frames never mix. Resampling follows torch 0.4.1, the version the released checkpoints were trained with:

- `resize`: `F.interpolate` with a scale factor turned into size = floor(in·s) (0.4.1 then samples with the
  ratio in/out); nearest uses src = floor(dst·in/out) and trilinear uses align_corners=False (0.4.1's default);
- `grid_sample`: bilinear, zero padding, align_corners=True (0.4.1's only behaviour) unless asked otherwise.
"""
from __future__ import annotations

import math
from typing import List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import nn


def make_coordinate_grid(size: Tuple[int, int], dtype=torch.float32, device=None) -> torch.Tensor:
    """(h,w,2) grid of (x,y) in [-1,1] with ±1 at the outer pixel centres."""
    h, w = size
    xs = 2 * (torch.arange(w, dtype=dtype, device=device) / (w - 1)) - 1
    ys = 2 * (torch.arange(h, dtype=dtype, device=device) / (h - 1)) - 1
    return torch.stack([xs.view(1, w).expand(h, w), ys.view(h, 1).expand(h, w)], dim=2)


def resize(x: torch.Tensor, size: Optional[Sequence[int]] = None, *, scale: Optional[float] = None,
           mode: str = "nearest") -> torch.Tensor:
    """torch-0.4.1 `F.interpolate` of a 5-D tensor: either to `size` (d,h,w) or by (1, scale, scale)."""
    if size is None:
        factors = (1.0, float(scale), float(scale))
        size = [int(math.floor(float(n) * f)) for n, f in zip(x.shape[2:], factors)]
    if mode == "nearest":
        return F.interpolate(x, size=tuple(size), mode="nearest")
    if mode == "trilinear":
        return F.interpolate(x, size=tuple(size), mode="trilinear", align_corners=False)
    raise ValueError(f"interpolation_mode {mode!r}: Monkey-Net uses 'nearest' or 'trilinear'")


def grid_sample(inp: torch.Tensor, grid: torch.Tensor, align_corners: bool = True) -> torch.Tensor:
    """Bilinear sampling with zero padding (4-D or 5-D)."""
    return F.grid_sample(inp, grid, mode="bilinear", padding_mode="zeros", align_corners=align_corners)


def _conv(cin: int, cout: int, k: int = 3, groups: int = 1) -> nn.Conv3d:
    return nn.Conv3d(cin, cout, kernel_size=(1, k, k), padding=(0, k // 2, k // 2), groups=groups)


class DownBlock3D(nn.Module):
    """conv (1,3,3) → BN → ReLU → average pooling (1,2,2)."""

    def __init__(self, in_features: int, out_features: int):
        super().__init__()
        self.conv = _conv(in_features, out_features)
        self.norm = nn.BatchNorm3d(out_features, affine=True)

    def forward(self, x):
        return F.avg_pool3d(F.relu(self.norm(self.conv(x))), kernel_size=(1, 2, 2))


class UpBlock3D(nn.Module):
    """nearest ×2 upsampling (per frame) → conv (1,3,3) → BN → ReLU."""

    def __init__(self, in_features: int, out_features: int):
        super().__init__()
        self.conv = _conv(in_features, out_features)
        self.norm = nn.BatchNorm3d(out_features, affine=True)

    def forward(self, x):
        return F.relu(self.norm(self.conv(resize(x, scale=2))))


class SameBlock3D(nn.Module):
    """Grouped 1×1×1 conv → BN → ReLU (the dense motion module's per-keypoint input blocks)."""

    def __init__(self, features: int, groups: int):
        super().__init__()
        self.conv = _conv(features, features, k=1, groups=groups)
        self.norm = nn.BatchNorm3d(features, affine=True)

    def forward(self, x):
        return F.relu(self.norm(self.conv(x)))


class ResBlock3D(nn.Module):
    """Pre-activation residual block: BN → ReLU → conv → BN → ReLU → conv, plus the input."""

    def __init__(self, features: int):
        super().__init__()
        self.conv1 = _conv(features, features)
        self.conv2 = _conv(features, features)
        self.norm1 = nn.BatchNorm3d(features, affine=True)
        self.norm2 = nn.BatchNorm3d(features, affine=True)

    def forward(self, x):
        out = self.conv1(F.relu(self.norm1(x)))
        return self.conv2(F.relu(self.norm2(out))) + x


def _width(block_expansion: int, max_features: int, level: int) -> int:
    return min(max_features, block_expansion * (2 ** level))


class Encoder(nn.Module):
    """`num_blocks` DownBlock3D; returns [input, block 1 output, ...] (the skips)."""

    def __init__(self, block_expansion: int, in_features: int, num_blocks: int = 3, max_features: int = 256):
        super().__init__()
        widths = [in_features] + [_width(block_expansion, max_features, i + 1) for i in range(num_blocks)]
        self.down_blocks = nn.ModuleList(DownBlock3D(widths[i], widths[i + 1]) for i in range(num_blocks))

    def forward(self, x) -> List[torch.Tensor]:
        outs = [x]
        for block in self.down_blocks:
            outs.append(block(outs[-1]))
        return outs


class Decoder(nn.Module):
    """UpBlock3D from the deepest skip up, concatenating [up output, skip] after each block.

    `extra` channels are concatenated to every skip by the caller (the generator's keypoint embedding);
    with `last_conv` a final (1,3,3) conv maps the full-resolution features to `out_features`.
    """

    def __init__(self, block_expansion: int, in_features: int, out_features: int, num_blocks: int = 3,
                 max_features: int = 256, extra: int = 0, last_conv: bool = True):
        super().__init__()
        blocks = []
        for level in reversed(range(num_blocks)):
            width = _width(block_expansion, max_features, level + 1)
            cin = (width if level == num_blocks - 1 else 2 * width) + extra
            blocks.append(UpBlock3D(cin, _width(block_expansion, max_features, level)))
        self.up_blocks = nn.ModuleList(blocks)
        self.out_channels = block_expansion + in_features + extra
        if last_conv:
            self.conv = _conv(self.out_channels, out_features)
        else:
            self.conv = None

    def forward(self, skips: List[torch.Tensor]) -> torch.Tensor:
        skips = list(skips)
        out = skips.pop()
        for block in self.up_blocks:
            out = torch.cat([block(out), skips.pop()], dim=1)
        return out if self.conv is None else self.conv(out)


class Hourglass(nn.Module):
    """U-Net: Encoder + Decoder with a final conv."""

    def __init__(self, block_expansion: int, in_features: int, out_features: int, num_blocks: int = 3,
                 max_features: int = 256):
        super().__init__()
        self.encoder = Encoder(block_expansion, in_features, num_blocks, max_features)
        self.decoder = Decoder(block_expansion, in_features, out_features, num_blocks, max_features)

    def forward(self, x):
        return self.decoder(self.encoder(x))


def inverse_2x2(matrix: torch.Tensor) -> torch.Tensor:
    """Batched inverse by LU solve (what the authors' `torch.gesv(eye, m)` computed)."""
    eye = torch.eye(matrix.shape[-1], dtype=matrix.dtype, device=matrix.device).expand_as(matrix)
    return torch.linalg.solve(matrix, eye)


def smallest_singular_value(m: torch.Tensor) -> torch.Tensor:
    """Closed-form smallest singular value of 2×2 matrices (..., 2, 2) → (..., 1)."""
    a, b, c, d = m[..., 0, 0:1], m[..., 0, 1:2], m[..., 1, 0:1], m[..., 1, 1:2]
    s1 = a ** 2 + b ** 2 + c ** 2 + d ** 2
    s2 = torch.sqrt((a ** 2 + b ** 2 - c ** 2 - d ** 2) ** 2 + 4 * (a * c + b * d) ** 2)
    return torch.sqrt((s1 - s2) / 2)
