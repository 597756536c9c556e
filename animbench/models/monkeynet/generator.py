"""Monkey-Net's motion transfer generator (official state_dict names, including `conv-last`).

The source frame is encoded once (`encode`); every encoder skip is warped by the dense flow (resampled to the
skip's size with `interpolation_mode`), the difference-heatmap keypoint embedding (resampled the same way) is
concatenated to it, and the decoder + residual refinement + sigmoid give the frame. `video_deformed` is the
source image warped by the same flow.
"""
from __future__ import annotations

from typing import Dict, List, Optional

import torch
from torch import nn

from animbench.models.monkeynet.blocks import Decoder, Encoder, ResBlock3D, _conv, grid_sample, resize
from animbench.models.monkeynet.dense_motion import MovementEmbedding, build_dense_motion
from animbench.models.monkeynet.keypoint_detector import Keypoints


class MotionTransferGenerator(nn.Module):
    def __init__(self, num_channels: int, num_kp: int, kp_variance, block_expansion: int, max_features: int,
                 num_blocks: int, num_refinement_blocks: int, dense_motion_params: Optional[dict] = None,
                 kp_embedding_params: Optional[dict] = None, interpolation_mode: str = "nearest"):
        super().__init__()
        if interpolation_mode not in ("nearest", "trilinear"):
            raise ValueError(f"interpolation_mode {interpolation_mode!r}: expected 'nearest' or 'trilinear'")
        self.appearance_encoder = Encoder(block_expansion, num_channels, num_blocks, max_features)
        if kp_embedding_params is not None:
            self.kp_embedding_module = MovementEmbedding(num_kp=num_kp, num_channels=num_channels,
                                                         kp_variance=kp_variance, **kp_embedding_params)
            extra = self.kp_embedding_module.out_channels
        else:
            self.kp_embedding_module = None
            extra = 0
        self.dense_motion_module = build_dense_motion(dense_motion_params, num_kp, num_channels, kp_variance)
        self.video_decoder = Decoder(block_expansion, num_channels, num_channels, num_blocks, max_features,
                                     extra=extra, last_conv=False)
        features = self.video_decoder.out_channels
        self.refinement_module = nn.Sequential()
        for i in range(num_refinement_blocks):
            self.refinement_module.add_module(f"r{i}", ResBlock3D(features))
        self.refinement_module.add_module("conv-last", _conv(features, num_channels, k=1))
        self.interpolation_mode = interpolation_mode
        self.align_corners = True

    def set_align_corners(self, value: bool) -> None:
        self.align_corners = value
        if hasattr(self.dense_motion_module, "set_align_corners"):
            self.dense_motion_module.set_align_corners(value)

    def encode(self, source_image: torch.Tensor) -> List[torch.Tensor]:
        """Encoder skips of the source (B,C,1,H,W): [source, 1/2, 1/4, ...]; depends on the source only."""
        return self.appearance_encoder(source_image)

    def deform(self, inp: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
        """Warp `inp` (B,C,1,h,w) with the absolute grid (B,D,h',w',3) resampled to (D,h,w)."""
        b, d = grid.shape[:2]
        if inp.shape[0] != b:
            inp = inp.expand(b, *inp.shape[1:])
        grid = resize(grid.permute(0, 4, 1, 2, 3), (d,) + tuple(inp.shape[3:]), mode=self.interpolation_mode)
        return grid_sample(inp, grid.permute(0, 2, 3, 4, 1), self.align_corners)

    def motion(self, source_image: torch.Tensor, kp_driving: Keypoints,
               kp_source: Keypoints) -> Dict[str, torch.Tensor]:
        """What depends on the keypoints: the dense flow grid (B,D,h,w,3) and the keypoint embedding."""
        out = {"flow": self.dense_motion_module(source_image, kp_driving, kp_source)}
        if self.kp_embedding_module is not None:
            out["embedding"] = self.kp_embedding_module(source_image, kp_driving, kp_source)
        return out

    def synthesize(self, source_image: torch.Tensor, skips: List[torch.Tensor],
                   motion: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
        """Warp the encoder skips, append the keypoint embedding, decode and refine."""
        flow = motion["flow"]
        d = flow.shape[1]
        warped = [self.deform(skip, flow) for skip in skips]
        if "embedding" in motion:
            warped = [torch.cat([skip, resize(motion["embedding"], (d,) + tuple(skip.shape[3:]),
                                              mode=self.interpolation_mode)], dim=1) for skip in warped]
        prediction = torch.sigmoid(self.refinement_module(self.video_decoder(warped)))
        return {"video_prediction": prediction, "video_deformed": self.deform(source_image, flow)}

    def forward(self, source_image: torch.Tensor, kp_driving: Keypoints, kp_source: Keypoints,
                skips: Optional[List[torch.Tensor]] = None) -> Dict[str, torch.Tensor]:
        """source (B,C,1,H,W), kp_driving (B,D,K,…), kp_source (B,1,K,…) → video_prediction/deformed (B,C,D,H,W).

        This is the authors' forward; `skips` may hold the source's encoder skips computed beforehand.
        """
        if skips is None:
            skips = self.encode(source_image)
        return self.synthesize(source_image, skips, self.motion(source_image, kp_driving, kp_source))
