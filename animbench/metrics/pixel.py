"""Per-frame pixel metrics: L1 and PSNR on (N,3,H,W) tensors in [0,1]; one float64 value per frame."""
from __future__ import annotations

import torch

#: PSNR of identical frames (MSE = 0) would be +inf; every frame's PSNR is capped here instead, so means
#: and CIs stay finite. 100 dB corresponds to an RMSE of 1e-5 (far below one 8-bit level, 3.9e-3).
PSNR_CAP_DB = 100.0


def _check(pred: torch.Tensor, gt: torch.Tensor) -> None:
    if pred.shape != gt.shape or pred.dim() != 4:
        raise ValueError(f"expected two (N,C,H,W) tensors of equal shape, got {tuple(pred.shape)} and "
                         f"{tuple(gt.shape)}")


def l1(pred: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    """Mean absolute difference over C·H·W per frame (FOMM's per-frame reconstruction L1)."""
    _check(pred, gt)
    return (pred.double() - gt.double()).abs().mean(dim=(1, 2, 3))


def mse(pred: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    _check(pred, gt)
    return (pred.double() - gt.double()).pow(2).mean(dim=(1, 2, 3))


def psnr(pred: torch.Tensor, gt: torch.Tensor, data_range: float = 1.0, cap: float = PSNR_CAP_DB,
         identical: str = "cap") -> torch.Tensor:
    """Per-frame PSNR = 10·log10(R²/MSE), MSE over C·H·W.

    Frames whose PSNR exceeds `cap` dB (identical frames: MSE = 0) get `cap` with identical="cap", or NaN
    (left out of every mean and CI) with identical="skip".
    """
    if identical not in ("cap", "skip"):
        raise ValueError(f"identical={identical!r}: use 'cap' or 'skip'")
    err = mse(pred, gt)
    value = 10.0 * torch.log10(data_range ** 2 / err.clamp_min(1e-300))
    if identical == "skip":
        return value.masked_fill(value > cap, float("nan"))
    return value.clamp_max(cap)
