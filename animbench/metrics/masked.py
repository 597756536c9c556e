"""Masked metrics exactly as PriorityCut's tables imply: metric(M⊙prediction, M⊙ground truth) over the
full frame (masked-out pixels become equal zeros and contribute no error), for a mask M and for 1−M.

Masks may be soft (alpha in [0,1]). `masked_fill="gt"` instead composites the prediction inside the mask
with the ground truth outside (identical M-PSNR for binary masks, slightly different M-SSIM near borders).
"""
from __future__ import annotations

from typing import Callable

import torch


def _as_mask(mask: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    if mask.dim() == 3:
        mask = mask[:, None]
    if mask.dim() != 4 or mask.shape[1] != 1 or mask.shape[0] != like.shape[0] or mask.shape[-2:] != like.shape[-2:]:
        raise ValueError(f"mask of shape {tuple(mask.shape)} does not fit frames {tuple(like.shape)}; "
                         f"expected (N,1,H,W) or (N,H,W)")
    return mask.to(like.dtype)


def apply_mask(pred: torch.Tensor, gt: torch.Tensor, mask: torch.Tensor, masked_fill: str = "zeros"):
    """The (prediction, ground truth) pair a masked metric compares."""
    m = _as_mask(mask, pred)
    if masked_fill == "zeros":
        return m * pred, m * gt
    if masked_fill == "gt":
        return m * pred + (1 - m) * gt, gt
    raise ValueError(f"masked_fill must be 'zeros' or 'gt', got {masked_fill!r}")


def masked(metric: Callable, pred: torch.Tensor, gt: torch.Tensor, mask: torch.Tensor, inverted: bool = False,
           masked_fill: str = "zeros", **opts) -> torch.Tensor:
    """metric(M⊙pred, M⊙gt) per frame; with `inverted`, the mask is 1−M."""
    p, g = pred.double(), gt.double()
    m = _as_mask(mask, p)
    if inverted:
        m = 1 - m
    return metric(*apply_mask(p, g, m, masked_fill), **opts)
