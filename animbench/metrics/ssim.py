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
    """Separable valid filtering of (B,1,H,W). The uniform window uses average pooling: float64 conv2d
    takes a slow path on CPU (~10x slower); both agree to ~1e-15."""
    k = taps.numel()
    if bool(torch.all(taps == taps[0])):
        return F.avg_pool2d(F.avg_pool2d(x, (k, 1), stride=1), (1, k), stride=1)
    x = F.conv2d(x, taps.view(1, 1, k, 1))
    return F.conv2d(x, taps.view(1, 1, 1, k))


def _check(pred, gt):
    if pred.shape != gt.shape or pred.dim() != 4:
        raise ValueError(f"expected two (N,C,H,W) tensors of equal shape, got {tuple(pred.shape)} and "
                         f"{tuple(gt.shape)}")


def _filtered(maps, taps):
    """Filter a list of (N,C,H,W) maps in one pass; returns the list of filtered (N*C,h',w') maps."""
    n, c, h, w = maps[0].shape
    stacked = torch.stack(maps, dim=2).reshape(-1, 1, h, w)      # (N*C*len, 1, H, W)
    out = _filter(stacked, taps)
    return list(out.reshape(n * c, len(maps), *out.shape[-2:]).unbind(1))


def _ssim_from_moments(ux, uy, uxx, uyy, uxy, cov_norm, data_range, n, c):
    vx = cov_norm * (uxx - ux * ux)
    vy = cov_norm * (uyy - uy * uy)
    vxy = cov_norm * (uxy - ux * uy)
    c1, c2 = (K1 * data_range) ** 2, (K2 * data_range) ** 2
    s = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux * ux + uy * uy + c1) * (vx + vy + c2))
    return s.mean(dim=(1, 2)).reshape(n, c).mean(dim=1)


def ssim(pred: torch.Tensor, gt: torch.Tensor, convention: str = "skimage", data_range: float = 1.0) -> torch.Tensor:
    """Per-frame SSIM of (N,C,H,W) tensors (float64 inside), mean over channels; returns Tensor[N]."""
    _check(pred, gt)
    n, c, h, w = pred.shape
    x, y = pred.double(), gt.double()
    taps, size, cov_norm = _window(convention, x.dtype, x.device)
    if h < size or w < size:
        raise ValueError(f"SSIM needs frames of at least {size}x{size}, got {h}x{w}")
    moments = _filtered([x, y, x * x, y * y, x * y], taps)
    return _ssim_from_moments(*moments, cov_norm, data_range, n, c)


def ssim_mask_pair(pred: torch.Tensor, gt: torch.Tensor, mask: torch.Tensor, convention: str = "skimage",
                   data_range: float = 1.0, full_moments=None):
    """(SSIM(M⊙p, M⊙g), SSIM((1−M)⊙p, (1−M)⊙g)) per frame, sharing work through linearity of the filter:
    filt((1−M)x) = filt(x) − filt(Mx), and for the squared terms filt((1−M)²xy) = filt(xy) − 2filt(Mxy) +
    filt(M²xy), where M²xy = (Mx)(My) — so a binary mask costs 5 filter passes for both variants, a soft one 8.
    Equals `masked(ssim, ...)` for both to float64 rounding (tests check)."""
    _check(pred, gt)
    n, c, h, w = pred.shape
    x, y = pred.double(), gt.double()
    m = mask.double()
    m = m[:, None] if m.dim() == 3 else m
    taps, size, cov_norm = _window(convention, x.dtype, x.device)
    if full_moments is None:
        full_moments = _filtered([x, y, x * x, y * y, x * y], taps)
    fx, fy, fxx, fyy, fxy = full_moments
    mx, my = m * x, m * y
    binary = bool(torch.all((m == 0) | (m == 1)))
    maps = [mx, my, mx * mx, my * my, mx * my]
    if not binary:
        maps += [m * x * x, m * y * y, m * x * y]
    f = _filtered(maps, taps)
    masked_ssim = _ssim_from_moments(*f[:5], cov_norm, data_range, n, c)
    if binary:  # M x² = (M x)² when M ∈ {0,1}
        lin_xx, lin_yy, lin_xy = f[2], f[3], f[4]
    else:
        lin_xx, lin_yy, lin_xy = f[5], f[6], f[7]
    inv = (fx - f[0], fy - f[1], fxx - 2 * lin_xx + f[2], fyy - 2 * lin_yy + f[3], fxy - 2 * lin_xy + f[4])
    return masked_ssim, _ssim_from_moments(*inv, cov_norm, data_range, n, c)


def full_moments(pred: torch.Tensor, gt: torch.Tensor, convention: str = "skimage"):
    x, y = pred.double(), gt.double()
    taps, _, _ = _window(convention, x.dtype, x.device)
    return _filtered([x, y, x * x, y * y, x * y], taps)
