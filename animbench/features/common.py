"""Small helpers shared by the extractor networks."""
from __future__ import annotations

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
