"""Training losses: FOMM's (pyramid perceptual, equivariance value/Jacobian, LSGAN, feature matching) and
PriorityCut's U-Net terms (Eq. 4–6). Each function returns an already-weighted scalar, as FOMM's code."""
from __future__ import annotations

from typing import Dict, List, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from animbench.models.fomm.blocks import AntiAliasInterpolation2d


class ImagePyramid(nn.Module):
    def __init__(self, scales: Sequence[float], num_channels: int = 3):
        super().__init__()
        self.scales = list(scales)
        self.downs = nn.ModuleDict({str(s).replace(".", "-"): AntiAliasInterpolation2d(num_channels, s)
                                    for s in scales})

    def forward(self, x) -> Dict[str, torch.Tensor]:
        return {"prediction_" + k.replace("-", "."): down(x) for k, down in self.downs.items()}


def perceptual_loss(vgg, pyramid_fake: Dict, pyramid_real: Dict, weights: Sequence[float]) -> torch.Tensor:
    """Σ_scales Σ_layers w_i · mean|φ_i(fake) − φ_i(real).detach()| (FOMM's pyramid perceptual loss)."""
    total = 0
    for key in pyramid_fake:
        fake, real = vgg(pyramid_fake[key]), vgg(pyramid_real[key])
        for w, a, b in zip(weights, fake, real):
            total = total + w * (a - b.detach()).abs().mean()
    return total


def equivariance_losses(kp_detector, driving, kp_driving, transform, w_value: float, w_jacobian: float,
                        align_corners: bool = True) -> Dict[str, torch.Tensor]:
    transformed = transform.transform_frame(driving, align_corners)
    kp_t = kp_detector(transformed)
    out = {}
    if w_value:
        out["equivariance_value"] = w_value * (kp_driving["value"] - transform.warp_coordinates(kp_t["value"])).abs().mean()
    if w_jacobian:
        jac = torch.matmul(transform.jacobian(kp_t["value"]), kp_t["jacobian"])
        value = torch.matmul(torch.inverse(kp_driving["jacobian"]), jac)
        eye = torch.eye(2, dtype=value.dtype, device=value.device).view(1, 1, 2, 2)
        out["equivariance_jacobian"] = w_jacobian * (eye - value).abs().mean()
    return out


def gan_target_loss(logits: torch.Tensor, target, kind: str = "lsgan") -> torch.Tensor:
    """Mean loss of `logits` against a 0/1 target (scalar or per-pixel map): LSGAN on raw outputs or BCE."""
    target = torch.as_tensor(target, dtype=logits.dtype, device=logits.device).expand_as(logits)
    if kind == "lsgan":
        return ((target - logits) ** 2).mean()
    if kind == "bce":
        return F.binary_cross_entropy_with_logits(logits, target)
    raise ValueError(f"gan loss must be 'lsgan' or 'bce', got {kind!r}")


def feature_matching(real_maps: List[torch.Tensor], fake_maps: List[torch.Tensor], weights: Sequence[float]):
    total = 0
    for w, a, b in zip(weights, real_maps, fake_maps):
        if w:
            total = total + w * (a - b).abs().mean()
    return total


def consistency_loss(dec_mixed: torch.Tensor, dec_real: torch.Tensor, dec_fake: torch.Tensor,
                     real_mask: torch.Tensor) -> torch.Tensor:
    """Eq. 5: ||D_dec(mix(x, x', M)) − mix(D_dec(x), D_dec(x'), M)||², mean over pixels (on logits, as U-Net GAN);
    `real_mask` = 1 where the mixed image holds real pixels."""
    target = real_mask * dec_real + (1 - real_mask) * dec_fake
    return ((dec_mixed - target) ** 2).mean()
