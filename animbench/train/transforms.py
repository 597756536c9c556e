"""FOMM's random equivariance transform: affine + thin-plate-spline-like warp, exactly as the authors' code —
note the L1 radial distance r = |dx| + |dy| and the one scalar s(z) added to BOTH coordinates."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from animbench.models.fomm.blocks import make_coordinate_grid


class RandomTPS:
    def __init__(self, batch: int, sigma_affine: float, sigma_tps: float, points_tps: int,
                 generator: torch.Generator = None, device="cpu", dtype=torch.float32):
        noise = torch.randn(batch, 2, 3, generator=generator) * sigma_affine
        self.theta = (noise + torch.eye(2, 3).view(1, 2, 3)).to(device, dtype)
        self.control_points = make_coordinate_grid((points_tps, points_tps), dtype, device).view(1, -1, 2)
        self.control_params = (torch.randn(batch, 1, points_tps ** 2, generator=generator) * sigma_tps).to(device, dtype)
        self.batch = batch

    def warp_coordinates(self, coords: torch.Tensor) -> torch.Tensor:
        """(B,N,2) -> (B,N,2): A·z + b + s(z)·[1,1], s(z) = Σ_k w_k r_k² log(r_k + 1e-6), r_k = L1 distance."""
        theta = self.theta.unsqueeze(1)
        out = (torch.matmul(theta[:, :, :, :2], coords.unsqueeze(-1)) + theta[:, :, :, 2:]).squeeze(-1)
        r = (coords.view(coords.shape[0], -1, 1, 2) - self.control_points.view(1, 1, -1, 2)).abs().sum(-1)
        s = (r ** 2 * torch.log(r + 1e-6) * self.control_params).sum(dim=2).view(self.batch, coords.shape[1], 1)
        return out + s

    def transform_frame(self, frame: torch.Tensor, align_corners: bool = True) -> torch.Tensor:
        h, w = frame.shape[2:]
        grid = make_coordinate_grid((h, w), frame.dtype, frame.device).view(1, h * w, 2)
        grid = self.warp_coordinates(grid.expand(self.batch, -1, -1)).view(self.batch, h, w, 2)
        return F.grid_sample(frame, grid, padding_mode="reflection", align_corners=align_corners)

    def jacobian(self, coords: torch.Tensor) -> torch.Tensor:
        """∇T at `coords` (B,K,2) by autograd (create_graph: the equivariance loss backpropagates through it)."""
        if not coords.requires_grad:
            coords = coords.detach().requires_grad_(True)
        new = self.warp_coordinates(coords)
        gx = torch.autograd.grad(new[..., 0].sum(), coords, create_graph=True)[0]
        gy = torch.autograd.grad(new[..., 1].sum(), coords, create_graph=True)[0]
        return torch.stack([gx, gy], dim=-2)
