"""A faster inference form of "nearest ×2 upsampling → 3×3 convolution → BatchNorm → ReLU" blocks.

A 3×3 convolution of a nearest-upsampled image reads each input pixel up to four times: output pixel
(2i+a, 2j+b) sees input rows {i−1, i} (a = 0) or {i, i+1} (a = 1), with the kernel rows summed accordingly
(a = 0: [w0, w1+w2]; a = 1: [w0+w1, w2]), and likewise for columns. So the block equals four 2×2
convolutions of the un-upsampled input (one per output phase), evaluated as ONE convolution with 4·C_out
output channels and interleaved by pixel shuffle: 16 instead of 36 multiply-adds per input-output channel
pair and input pixel. BatchNorm (eval mode) is folded into the weights. The result differs from the exact
block by float rounding only (~1e-7 relative); `fuse_up_blocks` leaves the original modules' parameters
untouched, so state_dicts still load and save in the authors' layout.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _phase_kernels(w: torch.Tensor) -> torch.Tensor:
    """(C_out, C_in, 3, 3) -> (4·C_out, C_in, 2, 2): phases (a, b) in pixel-shuffle order."""
    rows = [torch.stack([w[:, :, 0], w[:, :, 1] + w[:, :, 2]], dim=2),      # a = 0: input rows i-1, i
            torch.stack([w[:, :, 0] + w[:, :, 1], w[:, :, 2]], dim=2)]      # a = 1: input rows i, i+1
    phases = []
    for r in rows:
        cols = [torch.stack([r[..., 0], r[..., 1] + r[..., 2]], dim=3),
                torch.stack([r[..., 0] + r[..., 1], r[..., 2]], dim=3)]
        phases.append(cols)
    # pixel_shuffle expects channel index c·4 + a·2 + b
    return torch.stack([phases[a][b] for a in (0, 1) for b in (0, 1)], dim=1).flatten(0, 1)


class FusedUpBlock2d(nn.Module):
    """Inference-only replacement of an UpBlock2d (nearest ×2, 3×3 conv with padding 1, BN, ReLU)."""

    def __init__(self, block: nn.Module):
        super().__init__()
        conv, norm = block.conv, block.norm
        if conv.kernel_size != (3, 3) or conv.padding != (1, 1) or conv.groups != 1 or conv.stride != (1, 1):
            raise ValueError("only 3x3 convolutions with padding 1, stride 1 and one group can be fused")
        with torch.no_grad():
            scale = norm.weight.double() / torch.sqrt(norm.running_var.double() + norm.eps)
            weight = conv.weight.double() * scale[:, None, None, None]
            bias = (conv.bias.double() - norm.running_mean.double()) * scale + norm.bias.double()
            self.register_buffer("weight", _phase_kernels(weight).to(conv.weight.dtype))
            self.register_buffer("bias", bias.repeat_interleave(4).to(conv.weight.dtype))
        self.out_channels = conv.out_channels

    def forward(self, x):
        y = F.conv2d(F.pad(x, (1, 1, 1, 1)), self.weight, self.bias)         # (B, 4C, H+1, W+1)
        n, (h, w), c = x.shape[0], x.shape[-2:], self.out_channels
        y = y.view(n, c, 2, 2, h + 1, w + 1)
        out = y.new_empty(n, c, h, 2, w, 2)
        for a in (0, 1):  # phase (a, b) output (i, j) sits at conv position (i + a, j + b)
            for b in (0, 1):
                out[:, :, :, a, :, b] = y[:, :, a, b, a:a + h, b:b + w]
        return F.relu_(out.view(n, c, 2 * h, 2 * w))


def fuse_up_blocks(blocks: nn.ModuleList) -> nn.ModuleList:
    """Fused copies of a list of UpBlock2d modules (eval mode: BatchNorm running statistics)."""
    return nn.ModuleList([FusedUpBlock2d(b) for b in blocks])
