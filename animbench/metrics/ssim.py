"""Batched SSIM in torch with skimage's conventions.

`convention="skimage"` equals `skimage.metrics.structural_similarity(x, y, channel_axis=-1, data_range=1)`:
7×7 uniform window, sample covariance (NP/(NP−1)), K1 0.01, K2 0.03, the SSIM map cropped by 3 pixels on
each side before averaging, mean over channels. `convention="gaussian"` is Wang et al.'s recipe as skimage
computes it with `gaussian_weights=True, sigma=1.5, use_sample_covariance=False`: an 11-tap Gaussian window
(σ 1.5, truncate 3.5), population covariance, border cropped by 5.

Because skimage averages only the cropped interior, where the window lies wholly inside the image, a *valid*
convolution reproduces it exactly (skimage's reflect padding never reaches the averaged pixels).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

K1, K2 = 0.01, 0.03


def _window(convention: str, dtype, device):
    if convention == "skimage":
        taps = torch.full((7,), 1.0 / 7, dtype=dtype, device=device)
        return taps, 7, 49.0 / 48.0
    if convention == "gaussian":
        sigma, truncate = 1.5, 3.5
        radius = int(truncate * sigma + 0.5)
        x = torch.arange(-radius, radius + 1, dtype=dtype, device=device)
        taps = torch.exp(-0.5 * (x / sigma) ** 2)
        return taps / taps.sum(), 2 * radius + 1, 1.0
    raise ValueError(f"unknown SSIM convention {convention!r}; use 'skimage' or 'gaussian'")


def _filter(x: torch.Tensor, taps: torch.Tensor) -> torch.Tensor:
    """Separable valid filtering of (B,1,H,W)."""
    k = taps.numel()
    x = F.conv2d(x, taps.view(1, 1, k, 1))
    return F.conv2d(x, taps.view(1, 1, 1, k))


def ssim(pred: torch.Tensor, gt: torch.Tensor, convention: str = "skimage", data_range: float = 1.0) -> torch.Tensor:
    """Per-frame SSIM of (N,C,H,W) tensors (float64 inside), mean over channels; returns Tensor[N]."""
    if pred.shape != gt.shape or pred.dim() != 4:
        raise ValueError(f"expected two (N,C,H,W) tensors of equal shape, got {tuple(pred.shape)} and "
                         f"{tuple(gt.shape)}")
    n, c, h, w = pred.shape
    x = pred.double().reshape(n * c, 1, h, w)
    y = gt.double().reshape(n * c, 1, h, w)
    taps, size, cov_norm = _window(convention, x.dtype, x.device)
    if h < size or w < size:
        raise ValueError(f"SSIM needs frames of at least {size}x{size}, got {h}x{w}")
    stacked = _filter(torch.cat([x, y, x * x, y * y, x * y], dim=1).reshape(-1, 1, h, w), taps)
    ux, uy, uxx, uyy, uxy = stacked.reshape(n * c, 5, h - size + 1, w - size + 1).unbind(1)
    vx = cov_norm * (uxx - ux * ux)
    vy = cov_norm * (uyy - uy * uy)
    vxy = cov_norm * (uxy - ux * uy)
    c1, c2 = (K1 * data_range) ** 2, (K2 * data_range) ** 2
    s = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux * ux + uy * uy + c1) * (vx + vy + c2))
    return s.mean(dim=(1, 2)).reshape(n, c).mean(dim=1)
