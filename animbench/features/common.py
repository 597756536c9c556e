"""Small helpers shared by the extractor networks."""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from animbench.errors import UserError


def to_device(model: nn.Module, device) -> nn.Module:
    """`model.to(device)` with one-line errors for a bad or unusable device."""
    try:
        device = torch.device(device)
    except (RuntimeError, TypeError):
        raise UserError(f"device {device!r}: not a torch device (use cpu, cuda or cuda:N)") from None
    try:
        return model.to(device)
    except (RuntimeError, AssertionError) as e:
        raise UserError(f"device {device}: not usable here ({str(e).splitlines()[0][:80]})") from None


def check_frames(frames, what: str = "frames") -> np.ndarray:
    """(N, H, W, 3) uint8 RGB frames (numpy or torch), or a one-line UserError naming `what`."""
    if isinstance(frames, torch.Tensor):
        frames = frames.detach().cpu().numpy()
    if not isinstance(frames, np.ndarray):
        try:
            frames = np.asarray(frames)
        except (ValueError, TypeError):
            raise UserError(f"{what}: expected a uint8 array of shape (N, H, W, 3), got a ragged sequence "
                            f"(frames of different sizes?)") from None
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise UserError(f"{what}: expected shape (N, H, W, 3) RGB, got {tuple(frames.shape)}")
    if frames.dtype != np.uint8:
        raise UserError(f"{what}: expected dtype uint8 (0-255), got {frames.dtype}; convert with "
                        f"(x * 255).round().astype(np.uint8) if the frames are floats in [0, 1], or read the PNGs "
                        f"as uint8 (pose-evaluation feeds uint8 frames to its networks)")
    if frames.shape[1] < 1 or frames.shape[2] < 1:
        raise UserError(f"{what}: empty frame size {tuple(frames.shape[1:3])}")
    return frames
