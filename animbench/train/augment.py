"""CutMix and PriorityCut mixing of the driving frame x (real) and its reconstruction x' (fake), Eq. 3.

Masks passed around here are REAL-pixel masks R (1 = the mixed image shows the real pixel), which is also the
U-Net decoder's per-pixel target. PriorityCut's mask M_pc marks the k % most occluded foreground pixels; the
paper's Eq. 3 puts REAL pixels there while its prose says "PriorityCut always assigns the fake pixels to
locations where there are large changes in motion". Default `direction="prose"`: R = 1 − M_pc (fake pixels
at the most occluded locations); `direction="equation"`: R = M_pc.
"""
from __future__ import annotations

import torch

from animbench.masks import prioritycut_mask


def mix(real: torch.Tensor, fake: torch.Tensor, real_mask: torch.Tensor) -> torch.Tensor:
    return real_mask * real + (1 - real_mask) * fake


def rectangular_real_mask(batch: int, size, generator: torch.Generator, device="cpu") -> torch.Tensor:
    """Vanilla CutMix: a box covering a fraction λ ~ U(0,1) of the frame holds FAKE pixels, the rest real."""
    h, w = size
    lam = torch.rand(batch, generator=generator)
    cut_h = (h * torch.sqrt(lam)).long()
    cut_w = (w * torch.sqrt(lam)).long()
    cy = torch.randint(0, h, (batch,), generator=generator)
    cx = torch.randint(0, w, (batch,), generator=generator)
    ys = torch.arange(h).view(1, h, 1)
    xs = torch.arange(w).view(1, 1, w)
    y0 = (cy - cut_h // 2).clamp(0, h).view(-1, 1, 1)
    y1 = (cy + cut_h - cut_h // 2).clamp(0, h).view(-1, 1, 1)
    x0 = (cx - cut_w // 2).clamp(0, w).view(-1, 1, 1)
    x1 = (cx + cut_w - cut_w // 2).clamp(0, w).view(-1, 1, 1)
    box = (ys >= y0) & (ys < y1) & (xs >= x0) & (xs < x1)
    return (~box).float().unsqueeze(1).to(device)


def prioritycut_real_mask(occlusion, background, k, direction: str = "prose", **mask_options) -> torch.Tensor:
    """Real-pixel mask from the generator's own DETACHED occlusion map and background mask (`mask[:, :1]`)."""
    m = prioritycut_mask(occlusion.detach(), background.detach(), k, **mask_options)
    if direction == "prose":
        return 1 - m
    if direction == "equation":
        return m
    raise ValueError(f"direction must be 'prose' or 'equation', got {direction!r}")


def augmentation_probability(epoch: float, warmup_epochs: float, p_max: float = 0.5) -> float:
    """Linear ramp 0 → p_max over the first `warmup_epochs` epochs (fractional epochs: per iteration)."""
    if warmup_epochs <= 0:
        return p_max
    return p_max * min(1.0, max(0.0, epoch / warmup_epochs))
