"""`copy-source`: the prediction is the source frame itself — the floor every animation model must beat."""
from __future__ import annotations

from typing import Dict

import torch

from animbench.errors import UserError
from animbench.models.base import AnimationModel


class CopySource(AnimationModel):
    def prepare_source(self, source: torch.Tensor) -> torch.Tensor:
        if source.dim() != 4 or source.shape[0] != 1:
            raise ValueError(f"copy-source takes one source frame (1,3,H,W), got {tuple(source.shape)}")
        return source

    def animate(self, state: torch.Tensor, driving: torch.Tensor) -> Dict[str, torch.Tensor]:
        if state.shape[-2:] != driving.shape[-2:]:
            raise ValueError(f"source {tuple(state.shape[-2:])} and driving {tuple(driving.shape[-2:])} differ")
        return {"prediction": state.expand(driving.shape[0], -1, -1, -1)}


def load_copy_source(checkpoint=None, config=None, device="cpu", **options) -> CopySource:
    if checkpoint is not None or config is not None:
        raise UserError("--model copy-source takes no --checkpoint/--config (it has no weights); drop them")
    unknown = {k: v for k, v in options.items() if k not in ("align_corners", "trust_checkpoint")}
    if unknown:
        raise UserError(f"--model copy-source: unsupported options {sorted(unknown)}")
    return CopySource().to(device).eval()
