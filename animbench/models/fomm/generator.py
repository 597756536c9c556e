"""FOMM occlusion-aware generator: encode the source, warp its features with the dense motion, mask
them with the occlusion map, decode (no skip connections), sigmoid."""
from __future__ import annotations

from typing import Dict, Optional

import torch
import torch.nn.functional as F
from torch import nn

from animbench.models.fomm.blocks import DownBlock2d, ResBlock2d, SameBlock2d, UpBlock2d, grid_sample
from animbench.models.fomm.dense_motion import DenseMotionNetwork


class OcclusionAwareGenerator(nn.Module):
    def __init__(self, num_channels, num_kp, block_expansion, max_features, num_down_blocks, num_bottleneck_blocks,
                 estimate_occlusion_map=False, dense_motion_params=None, estimate_jacobian=False,
                 align_corners=True):
        super().__init__()
        self.align_corners = align_corners
        self.dense_motion_network = (DenseMotionNetwork(num_kp=num_kp, num_channels=num_channels,
                                                        estimate_occlusion_map=estimate_occlusion_map,
                                                        align_corners=align_corners, **dense_motion_params)
                                     if dense_motion_params is not None else None)
        self.first = SameBlock2d(num_channels, block_expansion, kernel_size=(7, 7), padding=(3, 3))
        self.down_blocks = nn.ModuleList([
            DownBlock2d(min(max_features, block_expansion * (2 ** i)), min(max_features, block_expansion * (2 ** (i + 1))),
                        kernel_size=(3, 3), padding=(1, 1)) for i in range(num_down_blocks)])
        self.up_blocks = nn.ModuleList([
            UpBlock2d(min(max_features, block_expansion * (2 ** (num_down_blocks - i))),
                      min(max_features, block_expansion * (2 ** (num_down_blocks - i - 1))),
                      kernel_size=(3, 3), padding=(1, 1)) for i in range(num_down_blocks)])
        self.bottleneck = nn.Sequential()
        width = min(max_features, block_expansion * (2 ** num_down_blocks))
        for i in range(num_bottleneck_blocks):
            self.bottleneck.add_module(f"r{i}", ResBlock2d(width, kernel_size=(3, 3), padding=(1, 1)))
        self.final = nn.Conv2d(block_expansion, num_channels, kernel_size=(7, 7), padding=(3, 3))
        self.estimate_occlusion_map = estimate_occlusion_map
        self.num_channels = num_channels

    def set_align_corners(self, value: bool) -> None:
        self.align_corners = value
        if self.dense_motion_network is not None:
            self.dense_motion_network.align_corners = value

    def deform_input(self, inp: torch.Tensor, deformation: torch.Tensor) -> torch.Tensor:
        _, h_old, w_old, _ = deformation.shape
        h, w = inp.shape[2:]
        if (h_old, w_old) != (h, w):
            # bilinear resize of the 64² flow: align_corners=False, as torch 1.0's interpolate already was
            deformation = F.interpolate(deformation.permute(0, 3, 1, 2), size=(h, w), mode="bilinear",
                                        align_corners=False).permute(0, 2, 3, 1)
        if inp.shape[0] != deformation.shape[0]:
            inp = inp.expand(deformation.shape[0], *inp.shape[1:])
        return grid_sample(inp, deformation, self.align_corners)

    def encode(self, source_image: torch.Tensor) -> torch.Tensor:
        """Source features before warping (depend on the source only: computed once per video)."""
        out = self.first(source_image)
        for block in self.down_blocks:
            out = block(out)
        return out

    def decode(self, features: torch.Tensor, up_blocks=None) -> torch.Tensor:
        """`up_blocks`: an inference replacement of `self.up_blocks` (models/fused.py), else the exact ones."""
        out = self.bottleneck(features)
        for block in (self.up_blocks if up_blocks is None else up_blocks):
            out = block(out)
        return torch.sigmoid(self.final(out))

    def motion(self, source_image, kp_driving, kp_source, source_down=None) -> Dict[str, torch.Tensor]:
        """Dense motion (mask, sparse_deformed, deformation, occlusion_map) from the keypoints."""
        return self.dense_motion_network(source_image, kp_driving, kp_source, source_down=source_down)

    def synthesize(self, source_image, features, motion: Dict[str, torch.Tensor],
                   up_blocks=None) -> Dict[str, torch.Tensor]:
        """Warp the source features with `motion`, mask by occlusion, decode: the prediction."""
        result = {"mask": motion["mask"], "sparse_deformed": motion["sparse_deformed"]}
        out = self.deform_input(features, motion["deformation"])
        occlusion = motion.get("occlusion_map")
        if occlusion is not None:
            result["occlusion_map"] = occlusion
            if out.shape[2:] != occlusion.shape[2:]:
                occlusion = F.interpolate(occlusion, size=out.shape[2:], mode="bilinear", align_corners=False)
            out = out * occlusion
        result["deformed"] = self.deform_input(source_image, motion["deformation"])
        result["prediction"] = self.decode(out, up_blocks)
        return result

    def forward(self, source_image, kp_driving, kp_source, source_features: Optional[torch.Tensor] = None,
                source_down: Optional[torch.Tensor] = None) -> Dict[str, torch.Tensor]:
        features = self.encode(source_image) if source_features is None else source_features
        if self.dense_motion_network is None:
            return {"prediction": self.decode(features)}
        motion = self.motion(source_image, kp_driving, kp_source, source_down=source_down)
        return self.synthesize(source_image, features, motion)
