"""X2Face (Wiles, Koepke & Zisserman, ECCV 2018) behind the AnimationModel contract.

The released VoxCeleb model (`x2face_model.pth`, `x2face_model_forpython3.pth`: `{'state_dict': sd, ...}`)
loads strictly into :class:`X2FaceModel`, whose parameter names are those of the authors'
`UnwrappedFaceWeightedAverage(output_num_channels=2, input_num_channels=3, inner_nc=128)`:

- `pix2pixUnwrapped` — the embedding network: an 8-level pix2pix encoder-decoder *with* skip connections
  (3 → 3 channels). Channels 0-1 are offsets: embedding grid = identity + tanh(offsets); channel 2 is a
  confidence, exp(c) + 0.1. The embedded face is the source sampled by that grid; with several source
  frames it is the confidence-weighted average of their embedded faces (one source: the confidence cancels).
- `pix2pixSampler` — the driving network: the same encoder-decoder *without* skips, a 128-channel 1×1 code
  at the bottleneck and a tanh on its 2-channel output; the model applies a second tanh, so
  driving grid = identity + tanh(tanh(raw)). prediction = embedded face sampled by the driving grid.

Numerics are those the authors ran (branch py37_pytorch_0.4.1, torch 0.4.1): the decoders' ×2 upsampling is
bilinear with align_corners=True (written explicitly in that branch; never changed here), and both
grid_samples use the pre-1.3 default align_corners=True (`align_corners=False` reproduces what the authors'
unmodified code does on torch ≥ 1.3). The identity grid is numpy's linspace(-1, 1) cast to float32, x first.
Inputs are RGB in [0,1] at 256×256 without normalisation (the demo: PIL resize → ToTensor); the output is
clamped to [0,1] as the demo notebook does before showing/saving it (bilinear warps of [0,1] images only
leave [0,1] by rounding). The networks use BatchNorm (BatchNorm-era pix2pix): the loader returns the model in
eval mode, and inference must stay in eval mode (running statistics, not batch statistics).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Optional, Union

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from animbench.errors import UserError
from animbench.models.base import AnimationModel
from animbench.models.checkpoints import load_module_state, read_checkpoint


# -- the pix2pix encoder-decoder ----------------------------------------------------------------------------
class _Level(nn.Module):
    """One resolution level: `down` halves the resolution, `submodule` is the next level, `up` doubles back.

    Sequential indices (they are the state_dict names) follow the authors' pix2pix variant: down =
    [LeakyReLU(0.2), Conv4×4/2, BN] ([Conv] outermost, no BN innermost); up = [ReLU, Upsample×2 bilinear,
    Conv3×3, BN] (no BN outermost, + Tanh for the driving network). No convolution has a bias. With `skip`,
    a level returns [up output, its input] concatenated on channels. (The authors' LeakyReLU is in-place,
    so their skip carries the activated input; that changes nothing, as the parent's `up` starts with a
    ReLU and ReLU(LeakyReLU(x)) = ReLU(x).)
    """

    def __init__(self, outer_nc: int, inner_nc: int, input_nc: Optional[int] = None,
                 submodule: Optional["_Level"] = None, outermost: bool = False, skip: bool = True,
                 final_tanh: bool = False):
        super().__init__()
        self.outermost = outermost
        self.innermost = submodule is None
        self.skip = skip
        conv_down = nn.Conv2d(outer_nc if input_nc is None else input_nc, inner_nc, 4, stride=2, padding=1,
                              bias=False)
        up_in = inner_nc * 2 if skip and not self.innermost else inner_nc
        up = [nn.ReLU(), nn.Upsample(scale_factor=2, mode="bilinear", align_corners=True),
              nn.Conv2d(up_in, outer_nc, 3, stride=1, padding=1, bias=False)]
        if outermost:
            down = [conv_down]
            up += [nn.Tanh()] if final_tanh else []
        elif self.innermost:
            down = [nn.LeakyReLU(0.2), conv_down]
            up += [nn.BatchNorm2d(outer_nc)]
        else:
            down = [nn.LeakyReLU(0.2), conv_down, nn.BatchNorm2d(inner_nc)]
            up += [nn.BatchNorm2d(outer_nc)]
        # registration order = state_dict order: up, down, submodule (as in the released file)
        self.up = nn.Sequential(*up)
        self.down = nn.Sequential(*down)
        if submodule is not None:
            self.submodule = submodule

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        inner = self.down(x)
        y = self.up(inner if self.innermost else self.submodule(inner))
        return torch.cat([y, x], 1) if self.skip and not self.outermost else y


class _Generator(nn.Module):
    """`netG`: the levels, outermost first, under the attribute `model`."""

    def __init__(self, input_nc: int, output_nc: int, skip: bool, inner_nc: int = 512, ngf: int = 64,
                 num_downs: int = 8, final_tanh: bool = False):
        super().__init__()
        level = _Level(ngf * 8, inner_nc, skip=skip)
        for _ in range(num_downs - 5):
            level = _Level(ngf * 8, ngf * 8, submodule=level, skip=skip)
        for mult in (4, 2, 1):
            level = _Level(ngf * mult, ngf * mult * 2, submodule=level, skip=skip)
        self.model = _Level(output_nc, ngf, input_nc=input_nc, submodule=level, outermost=True, skip=skip,
                            final_tanh=final_tanh)
        self.num_downs = num_downs

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class _Pix2Pix(nn.Module):
    """`pix2pixUnwrapped` / `pix2pixSampler`: a wrapper holding `netG`."""

    def __init__(self, input_nc: int, output_nc: int, skip: bool, inner_nc: int = 512, final_tanh: bool = False):
        super().__init__()
        self.netG = _Generator(input_nc, output_nc, skip=skip, inner_nc=inner_nc, final_tanh=final_tanh)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.netG(x)


def identity_grid(height: int, width: int, device=None, dtype=torch.float32) -> torch.Tensor:
    """(1,H,W,2) sampling grid of the identity warp, [..., 0] = x, as the authors build it (numpy float64
    linspace(-1, 1) cast to float32; corners at ±1, i.e. the align_corners=True convention)."""
    xs = torch.from_numpy(np.linspace(-1.0, 1.0, width)).float()
    ys = torch.from_numpy(np.linspace(-1.0, 1.0, height)).float()
    grid = torch.stack([xs.view(1, -1).expand(height, width), ys.view(-1, 1).expand(height, width)], dim=2)
    return grid.unsqueeze(0).to(device=device, dtype=dtype)


# -- the animation model -----------------------------------------------------------------------------------
@dataclass
class X2FaceSource:
    """What `prepare_source` computes once: the embedded face and what produced it."""
    sources: torch.Tensor      # (S,3,H,W) the source frames
    embedded: torch.Tensor     # (1,3,H,W) confidence-weighted average of the S embedded faces
    source_grid: torch.Tensor  # (S,H,W,2) the embedding network's sampling grids
    confidence: torch.Tensor   # (S,1,H,W) exp(c) + 0.1


class X2FaceModel(AnimationModel):
    """X2Face with the released model's state_dict layout (`pix2pixUnwrapped.*`, `pix2pixSampler.*`).

    `prepare_source(sources)` takes S ≥ 1 frames of ONE identity (the demo's `*sources`; the reconstruction
    protocol uses S = 1, frame 0) and `animate(state, driving)` drives the embedded face with B frames in one
    batch — `model(source, driving)` equals the authors' `model(driving, *sources)` with every source repeated
    to the driving batch. `animate` returns `prediction` (B,3,H,W) clamped to [0,1], `embedded` (B,3,H,W; one
    face, expanded), `source_grid` (S,H,W,2), `confidence` (S,1,H,W) and `driving_grid` (B,H,W,2).
    """

    native_size = (256, 256)
    has_motion_maps = False

    def __init__(self, inner_nc: int = 128, align_corners: bool = True, output_num_channels: int = 2,
                 input_num_channels: int = 3, chunk: Union[int, str, None] = "auto"):
        super().__init__()
        # The two networks run `chunk` frames at a time. Batched convolutions round differently from
        # single-frame ones, and grid_sample amplifies it: the authors' own code gives predictions 1.8e-5
        # apart for the same frames run batched or one by one (CPU). chunk=1 makes a batch bit-identical to the
        # frame-by-frame reference at no cost on a CPU (compute-bound either way). "auto" = 1 on CPU, whole
        # batches on CUDA; None = whole batches. The warps are always batched.
        self.chunk = chunk
        if output_num_channels != 2:
            raise ValueError("only the deterministic X2Face (output_num_channels=2, the release) is implemented")
        self.pix2pixUnwrapped = _Pix2Pix(3, 3, skip=True)
        self.pix2pixSampler = _Pix2Pix(input_num_channels, output_num_channels, skip=False, inner_nc=inner_nc,
                                       final_tanh=True)
        self.inner_nc = inner_nc
        self.align_corners = align_corners

    def set_align_corners(self, value: bool) -> None:
        self.align_corners = bool(value)

    def describe(self) -> dict:
        return {"native_size": list(self.native_size), "inner_nc": self.inner_nc,
                "align_corners": self.align_corners, "upsample_align_corners": True,
                "prediction_clamped": True, "source_frames": "confidence-weighted average",
                "chunk": self._chunk(next(self.parameters()).device)}

    def _chunk(self, device: torch.device) -> Optional[int]:
        if self.chunk == "auto":
            return 1 if device.type == "cpu" else None
        return self.chunk or None

    def _run(self, net: nn.Module, frames: torch.Tensor) -> torch.Tensor:
        # contiguous NCHW, as the demo's ToTensor + cat give: the convolutions pick other kernels (and round
        # differently, up to 8e-7 in the grids) for channels-last strides, which `to_float_tensor` produces
        frames = frames.contiguous()
        step = self._chunk(frames.device) or frames.shape[0]
        if step >= frames.shape[0]:
            return net(frames)
        return torch.cat([net(frames[i:i + step]) for i in range(0, frames.shape[0], step)])

    def _check(self, frames: torch.Tensor, what: str) -> None:
        if frames.dim() != 4 or frames.shape[1] != 3:
            raise ValueError(f"X2Face {what} must be (N,3,H,W) RGB in [0,1], got {tuple(frames.shape)}")
        unit = 2 ** self.pix2pixUnwrapped.netG.num_downs
        if frames.shape[2] % unit or frames.shape[3] % unit:
            raise ValueError(f"X2Face needs frames whose sides are multiples of {unit} (trained at 256x256), "
                             f"got {tuple(frames.shape[2:])}")

    def _warp(self, image: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
        return F.grid_sample(image, grid, mode="bilinear", padding_mode="zeros", align_corners=self.align_corners)

    def prepare_source(self, source: torch.Tensor) -> X2FaceSource:
        self._check(source, "source frames")
        raw = self._run(self.pix2pixUnwrapped, source)
        identity = identity_grid(source.shape[2], source.shape[3], source.device, source.dtype)
        grid = torch.tanh(raw[:, 0:2]).permute(0, 2, 3, 1) + identity
        confidence = raw[:, 2:3].exp() + 0.1
        weighted = self._warp(source, grid) * confidence
        embedded = weighted.sum(0, keepdim=True) / confidence.sum(0, keepdim=True)
        return X2FaceSource(sources=source, embedded=embedded, source_grid=grid, confidence=confidence)

    def driving_grid(self, driving: torch.Tensor) -> torch.Tensor:
        """(B,H,W,2): identity + tanh of the driving network's (already tanh'd) output."""
        identity = identity_grid(driving.shape[2], driving.shape[3], driving.device, driving.dtype)
        return torch.tanh(self._run(self.pix2pixSampler, driving)).permute(0, 2, 3, 1) + identity

    def animate(self, state: X2FaceSource, driving: torch.Tensor) -> Dict[str, torch.Tensor]:
        self._check(driving, "driving frames")
        if driving.shape[2:] != state.embedded.shape[2:]:
            raise ValueError(f"source {tuple(state.embedded.shape[2:])} and driving {tuple(driving.shape[2:])} "
                             f"frames differ in size")
        batch = driving.shape[0]
        grid = self.driving_grid(driving)
        embedded = state.embedded.expand(batch, *state.embedded.shape[1:])
        prediction = self._warp(embedded, grid)
        return {"prediction": prediction.clamp(0.0, 1.0), "embedded": embedded, "source_grid": state.source_grid,
                "confidence": state.confidence, "driving_grid": grid}


# -- loading -----------------------------------------------------------------------------------------------
def _hint(shapes, missing, unexpected) -> str:
    text = " ".join(shapes + missing + unexpected)
    if "pix2pixSampler" in text and ".submodule.submodule.submodule.submodule.submodule.submodule.submodule." in text:
        return ("the driving network's bottleneck width differs: animbench builds the released model "
                "(inner_nc=128); use x2face_model_forpython3.pth or x2face_model.pth")
    return ("use the released VoxCeleb model x2face_model_forpython3.pth (or x2face_model.pth); the pose/audio "
            "models (posereg.pth, posetobottle.pth, ...) are different networks")


def _state_dict_of(payload, path) -> dict:
    if not isinstance(payload, dict):
        raise UserError(f"{path}: holds a {type(payload).__name__}, not a checkpoint dict; not an X2Face checkpoint")
    if "generator" in payload and "kp_detector" in payload:
        raise UserError(f"{path}: this is a FOMM checkpoint ('generator'/'kp_detector' entries), not X2Face; "
                        f"use --model fomm (or fomm-adv)")
    if "state_dict" in payload:
        return payload["state_dict"]
    if payload and all(isinstance(v, torch.Tensor) for v in payload.values()):
        return payload  # a bare state_dict
    keys = ", ".join(map(str, list(payload)[:6]))
    raise UserError(f"{path}: no 'state_dict' entry (found: {keys}); not an X2Face checkpoint")


def load_x2face(checkpoint=None, config=None, device="cpu", align_corners: bool = True,
                trust_checkpoint: bool = False, seed: int = 0, **unused) -> X2FaceModel:
    """X2Face in eval mode on `device`; weights from the released file, else seeded random weights."""
    if unused:
        raise UserError(f"unsupported model options for X2Face: {sorted(unused)}")
    if config is not None:
        raise UserError("--model x2face takes no --config (the released model has one fixed architecture); drop it")
    payload = read_checkpoint(checkpoint, trust=trust_checkpoint) if checkpoint is not None else None
    torch.manual_seed(seed)
    model = X2FaceModel(align_corners=align_corners)
    if payload is not None:
        load_module_state(model, _state_dict_of(payload, checkpoint), "state_dict", checkpoint, family="X2Face",
                          hint=_hint)
    return model.to(device).eval()


__all__ = ["X2FaceModel", "X2FaceSource", "identity_grid", "load_x2face"]
