"""Pixel conversions with the exact conventions of the reference code."""
from __future__ import annotations

import numpy as np
import torch


def to_float_tensor(frames: np.ndarray) -> torch.Tensor:
    """uint8 (n,H,W,3) -> float32 (n,3,H,W) in [0,1], bit-identical to skimage's `img_as_float32` (x / 255)."""
    if frames.dtype != np.uint8:
        raise TypeError(f"expected uint8 frames, got {frames.dtype}")
    # skimage multiplies by float32(1/255) rather than dividing by 255: the two differ in the last bit for
    # some values, so do exactly what it does (checked over all 256 values in tests/test_data_readers.py).
    return torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).to(torch.float32).mul_(1.0 / 255)


def to_uint8_truncate(x: torch.Tensor) -> np.ndarray:
    """float (n,3,H,W) in [0,1] -> uint8 (n,H,W,3) as FOMM writes its PNGs: (255·x).astype(uint8), truncation.

    Values are clamped to [0,1] first (the sigmoid output already is); truncation, not rounding, biases
    pixels by -0.5/255 on average, which is the protocol's on-disk format.
    """
    x = x.detach().clamp(0.0, 1.0).to(torch.float32)
    return (x * 255.0).to(torch.uint8).permute(0, 2, 3, 1).contiguous().cpu().numpy()
