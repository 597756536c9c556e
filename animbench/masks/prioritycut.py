"""PriorityCut / top-k masks (PriorityCut, Eq. 2) — ONE function shared by the trainer and the evaluator.

From a model's alpha background mask M_bg (FOMM `mask[:, 0]`) and occlusion map O (1 = visible):
1. M̂bg = [M_bg > threshold]: a binary, high-confidence background (the paper leaves the threshold open);
2. O_fg = M̂bg + (1 − M̂bg)⊙O — background pixels become 1 and are never selected;
3. the k % most occluded foreground pixels (LOWEST O_fg values) form the binary mask.

Choices the paper leaves open, all options here: the maps are resized to the frame size BEFORE selection
(bilinear with align_corners=False, FOMM's own interpolation; or nearest); k % of the foreground pixel count
(`base="foreground"`, default) or of the whole frame (`base="frame"`, capped at the foreground); the count is
floor(k/100·N + 0.5); ties are broken by pixel index (row-major), so equal values are selected deterministically;
an empty foreground gives an empty mask.
"""
from __future__ import annotations

from typing import Dict, Iterable, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F

DEFAULT_BG_THRESHOLD = 0.5


def _resize(x: torch.Tensor, size, mode: str) -> torch.Tensor:
    if size is None or tuple(x.shape[-2:]) == tuple(size):
        return x
    if mode == "bilinear":
        return F.interpolate(x, size=tuple(size), mode="bilinear", align_corners=False)
    if mode == "nearest":
        return F.interpolate(x, size=tuple(size), mode="nearest")
    raise ValueError(f"upsample must be 'bilinear' or 'nearest', got {mode!r}")


def foreground_occlusion(occlusion: torch.Tensor, background: torch.Tensor,
                         threshold: float = DEFAULT_BG_THRESHOLD) -> Tuple[torch.Tensor, torch.Tensor]:
    """Eq. 2: (O_fg, binary background) from (B,1,H,W) occlusion and background alpha."""
    bg = (background > threshold).to(occlusion.dtype)
    return bg + (1 - bg) * occlusion, bg


def prioritycut_mask(occlusion: torch.Tensor, background: torch.Tensor, k: Union[float, torch.Tensor],
                     threshold: float = DEFAULT_BG_THRESHOLD, size: Optional[Sequence[int]] = None,
                     upsample: str = "bilinear", base: str = "foreground") -> torch.Tensor:
    """Binary (B,1,H,W) float mask of the k % most occluded foreground pixels; k scalar or (B,) per sample."""
    if occlusion.dim() != 4 or occlusion.shape[1] != 1 or background.shape != occlusion.shape:
        raise ValueError(f"expected (B,1,h,w) occlusion and background maps, got {tuple(occlusion.shape)} and "
                         f"{tuple(background.shape)}")
    occ = _resize(occlusion.float(), size, upsample)
    bg_alpha = _resize(background.float(), size, upsample)
    o_fg, bg = foreground_occlusion(occ, bg_alpha, threshold)
    b, _, h, w = o_fg.shape
    k = torch.as_tensor(k, dtype=torch.float64).to(o_fg.device)  # k may come from a CPU generator
    k = k.expand(b) if k.dim() == 0 else k
    if torch.any((k < 0) | (k > 100)):
        raise ValueError("k must be a percentage in [0, 100]")
    fg = bg.view(b, -1) == 0
    n_fg = fg.sum(dim=1).to(torch.float64)
    total = n_fg if base == "foreground" else torch.full_like(n_fg, h * w) if base == "frame" else None
    if total is None:
        raise ValueError(f"base must be 'foreground' or 'frame', got {base!r}")
    count = torch.minimum(torch.floor(k / 100.0 * total + 0.5), n_fg).to(torch.long)
    values = o_fg.view(b, -1).masked_fill(~fg, float("inf"))
    order = torch.sort(values, dim=1, stable=True).indices          # ties: lower pixel index first
    ranks = torch.empty_like(order)
    ranks.scatter_(1, order, torch.arange(h * w, device=order.device).expand(b, -1))
    return (ranks < count.view(b, 1)).to(occlusion.dtype if occlusion.is_floating_point() else torch.float32
                                         ).view(b, 1, h, w)


def topk_masks(occlusion: torch.Tensor, background: torch.Tensor, ks: Iterable[int] = (10, 20, 30, 40, 50),
               **options) -> Dict[str, torch.Tensor]:
    """{"top10": mask, ...} for the evaluator's fixed k values (same function as the trainer's)."""
    return {f"top{int(k)}": prioritycut_mask(occlusion, background, k, **options) for k in ks}
