"""OpenFace nn4.small2.v1 face embedding, computed as pose-evaluation's AED (face_id) computes it.

pose-evaluation (AliaksandrSiarohin/pose-evaluation @ 1bc4cae, ``extract.py: extract_face_id``) uses the
PyTorch port thnkim/OpenFacePytorch @ d002218 (``loadOpenFace.py``, weights ``openface.pth``). This module is
an independent re-implementation with the port's module/parameter names, so the port's ``openface.pth``
loads strictly. What it reproduces (checked against the port's code, see tests/data/openface/README.md):

* The port's cross-map LRN (``SpatialCrossMapLRN_temp``, 0-based translation of Torch7's Lua code) has an
  off-by-one: channel 0's square enters the running window sum and is never removed again, so every channel
  c >= prePad (= 3 for size 5) is normalised by its 5-channel window PLUS x[0]**2. Reproduced, including the
  port's order of float32 operations (a running sum over channels), so results match to the last bit.
* Inception branches of different spatial size are zero-padded, centred, to the largest one (the port's
  LPPool/MaxPool branches with stride 2-3 are much smaller than the conv branches), then concatenated.
* BatchNorm runs with running statistics: pose-evaluation calls ``.eval()`` on the port's model.
* Output: the 128-d embedding x / sqrt(sum(x**2) + 1e-6) (the port's ``forward(...)[0]``, which pose-evaluation
  stores). The port's 736-d pre-linear feature is available from ``OpenFaceNet.features``.
* A 128x128 input is first upsampled x3 (nearest) and average-pooled by 4 to 96x96, as in the port.

Preprocessing (``preprocess_frames``) follows extract.py: uint8 RGB -> BGR, the WHOLE frame resized to 96x96
with ``skimage.transform.resize`` (float64 in [0, 1]), CHW, float32. ``resize="skimage-0.14"`` reproduces
scikit-image 0.14.0's defaults (the published numbers); ``resize="modern"`` today's defaults.
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Optional, Sequence

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from animbench.features.common import check_frames
from animbench.features.common import to_device as _to_device
from animbench.errors import UserError

INPUT_SIZE = 96
EMBEDDING_DIM = 128
RESIZE_MODES = ("skimage-0.14", "modern")


# ----------------------------------------------------------------------------------------------------------
# Cross-map LRN with the port's quirk
# ----------------------------------------------------------------------------------------------------------
def legacy_cross_map_lrn(x: torch.Tensor, size: int = 5, alpha: float = 1e-4, beta: float = 0.75,
                         k: float = 1.0) -> torch.Tensor:
    """y = x * (k + alpha/size * S)^-beta, S = the port's running window sum of squares over channels.

    Torch7's cross-map LRN sums x_j**2 over the `size` channels centred on c. The port starts the running
    sum with channels [0, prePad) (prePad = (size-1)//2 + 1), then for each next channel c adds channel
    c + prePad - 1 and subtracts channel c - prePad only when ``c > prePad``; the Lua original's 1-based test
    ``c > prePad`` should have become ``c >= prePad`` in 0-based code. So channel 0 is never subtracted:
    S_c = window_c + x_0**2 for every c >= prePad. The sum is accumulated channel by channel in the same
    order as the port (add the next square, then subtract the old one) so float32 rounding is identical.
    """
    if x.dim() != 4:
        raise ValueError(f"cross-map LRN expects (N, C, H, W), got shape {tuple(x.shape)}")
    channels = x.shape[1]
    square = torch.pow(x, 2)
    pre_pad = int((size - 1) / 2 + 1)
    running = square[:, 0].clone()
    for c in range(1, min(pre_pad, channels)):
        running = running + square[:, c]
    sums = [running]
    for c in range(1, channels):
        if c < channels - pre_pad + 1:
            running = running + square[:, c + pre_pad - 1]
        if c > pre_pad:  # the port's off-by-one (correct: c >= pre_pad); channel 0 stays in the sum
            running = running - square[:, c - pre_pad]
        sums.append(running)
    scale = torch.stack(sums, dim=1).mul(alpha / size).add(k)
    return torch.pow(scale, -beta).mul(x)


class CrossMapLRN(nn.Module):
    """Parameter-free module around :func:`legacy_cross_map_lrn` (the port's ``CrossMapLRN``)."""

    def __init__(self, size: int = 5, alpha: float = 1e-4, beta: float = 0.75, k: float = 1.0):
        super().__init__()
        self.size, self.alpha, self.beta, self.k = size, alpha, beta, k

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return legacy_cross_map_lrn(x, self.size, self.alpha, self.beta, self.k)

    def extra_repr(self) -> str:
        return f"size={self.size}, alpha={self.alpha}, beta={self.beta}, k={self.k}"


# ----------------------------------------------------------------------------------------------------------
# Network
# ----------------------------------------------------------------------------------------------------------
def _conv_bn_relu(names: Sequence[str], in_ch: int, out_ch: int, kernel: int, stride: int,
                  padding: int) -> "list[tuple[str, nn.Module]]":
    conv, bn, relu = names
    return [(conv, nn.Conv2d(in_ch, out_ch, kernel, stride=stride, padding=padding)),
            (bn, nn.BatchNorm2d(out_ch)), (relu, nn.ReLU())]


class InceptionBlock(nn.Module):
    """One of the port's ``Inception`` modules; submodule names follow its ``seq_list`` layout.

    Branches: for each kernel size n, 1x1 reduce -> nxn conv (stride s, padding n//2); then the pooling
    branch (optionally followed by a 1x1 conv); then an optional plain 1x1 branch. All convs have BatchNorm
    and ReLU. Outputs are zero-padded (centred, extra row/column at the bottom/right) to the largest spatial
    size among the branches, then concatenated along channels.
    """

    def __init__(self, in_ch: int, kernels: Sequence[int], strides: Sequence[int], out_chs: Sequence[int],
                 reduce_chs: Sequence[Optional[int]], pool: nn.Module):
        super().__init__()
        branches = []
        for n, s, out_ch, red in zip(kernels, strides, out_chs, reduce_chs):
            layers = _conv_bn_relu(("1_conv", "2_bn", "3_relu"), in_ch, red, 1, 1, 0)
            layers += _conv_bn_relu(("4_conv", "5_bn", "6_relu"), red, out_ch, n, s, n // 2)
            branches.append(nn.Sequential(OrderedDict(layers)))
        rest = list(reduce_chs[len(kernels):]) + [None, None]
        pool_layers = [("1_pool", pool)]
        if rest[0] is not None:
            pool_layers += _conv_bn_relu(("2_conv", "3_bn", "4_relu"), in_ch, rest[0], 1, 1, 0)
        branches.append(nn.Sequential(OrderedDict(pool_layers)))
        if rest[1] is not None:
            branches.append(nn.Sequential(OrderedDict(_conv_bn_relu(("1_conv", "2_bn", "3_relu"),
                                                                    in_ch, rest[1], 1, 1, 0))))
        self.seq_list = nn.ModuleList(branches)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outs = [branch(x) for branch in self.seq_list]
        height = max(o.shape[2] for o in outs)
        width = max(o.shape[3] for o in outs)
        padded = []
        for o in outs:
            dh, dw = height - o.shape[2], width - o.shape[3]
            padded.append(F.pad(o, (dw // 2, dw - dw // 2, dh // 2, dh - dh // 2)) if dh or dw else o)
        return torch.cat(padded, dim=1)


def _max_pool() -> nn.Module:
    return nn.MaxPool2d(3, stride=2, padding=0)


def _lp_pool() -> nn.Module:
    return nn.LPPool2d(2, 3, stride=3)


class OpenFaceNet(nn.Module):
    """nn4.small2.v1 as laid out by the PyTorch port (attribute names ``layer1`` ... ``layer25``)."""

    def __init__(self):
        super().__init__()
        self.layer1 = nn.Conv2d(3, 64, 7, stride=2, padding=3)
        self.layer2 = nn.BatchNorm2d(64)
        self.layer3 = nn.ReLU()
        self.layer4 = nn.MaxPool2d(3, stride=2, padding=1)
        self.layer5 = CrossMapLRN(5, 1e-4, 0.75, 1.0)
        self.layer6 = nn.Conv2d(64, 64, 1)
        self.layer7 = nn.BatchNorm2d(64)
        self.layer8 = nn.ReLU()
        self.layer9 = nn.Conv2d(64, 192, 3, padding=1)
        self.layer10 = nn.BatchNorm2d(192)
        self.layer11 = nn.ReLU()
        self.layer12 = CrossMapLRN(5, 1e-4, 0.75, 1.0)
        self.layer13 = nn.MaxPool2d(3, stride=2, padding=1)
        self.layer14 = InceptionBlock(192, (3, 5), (1, 1), (128, 32), (96, 16, 32, 64), _max_pool())
        self.layer15 = InceptionBlock(256, (3, 5), (1, 1), (128, 64), (96, 32, 64, 64), _lp_pool())
        self.layer16 = InceptionBlock(320, (3, 5), (2, 2), (256, 64), (128, 32, None, None), _max_pool())
        self.layer17 = InceptionBlock(640, (3, 5), (1, 1), (192, 64), (96, 32, 128, 256), _lp_pool())
        self.layer18 = InceptionBlock(640, (3, 5), (2, 2), (256, 128), (160, 64, None, None), _max_pool())
        self.layer19 = InceptionBlock(1024, (3,), (1,), (384,), (96, 96, 256), _lp_pool())
        self.layer21 = InceptionBlock(736, (3,), (1,), (384,), (96, 96, 256), _max_pool())
        self.layer22 = nn.AvgPool2d(3, stride=1)
        self.layer25 = nn.Linear(736, EMBEDDING_DIM)

    def features(self, x: torch.Tensor):
        """(embedding (N,128) L2-normalised with the port's +1e-6, pre-linear feature (N,736))."""
        if x.dim() != 4 or x.shape[1] != 3 or tuple(x.shape[-2:]) not in ((96, 96), (128, 128)):
            raise UserError(f"OpenFace expects input of shape (N, 3, 96, 96), got {tuple(x.shape)}; "
                            f"use embed_frames()/preprocess_frames() to resize frames")
        if x.shape[-1] == 128:  # the port's branch for 128x128 inputs
            x = F.avg_pool2d(F.interpolate(x, scale_factor=3, mode="nearest"), 4)
        x = self.layer8(self.layer7(self.layer6(self.layer5(self.layer4(self.layer3(self.layer2(self.layer1(x))))))))
        x = self.layer13(self.layer12(self.layer11(self.layer10(self.layer9(x)))))
        for block in (self.layer14, self.layer15, self.layer16, self.layer17, self.layer18, self.layer19,
                      self.layer21):
            x = block(x)
        feat = self.layer22(x).reshape(-1, 736)
        emb = self.layer25(feat)
        norm = torch.sqrt(torch.sum(emb ** 2, 1) + 1e-6)
        return torch.div(emb, norm.view(-1, 1).expand_as(emb)), feat

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)[0]


# ----------------------------------------------------------------------------------------------------------
# Loading
# ----------------------------------------------------------------------------------------------------------
def _hint(shapes, missing, unexpected) -> str:
    return "expected the OpenFacePytorch openface.pth (nn4.small2.v1 state_dict) from thnkim/OpenFacePytorch"


def _is_torch_tar(path) -> bool:
    """PyTorch's original (early-2017) serialization: a tar with members storages, tensors and pickle."""
    import tarfile
    import zipfile

    try:
        if not tarfile.is_tarfile(path) or zipfile.is_zipfile(path):
            return False
        with tarfile.open(path) as tar:
            return {"storages", "tensors", "pickle"} <= set(tar.getnames())
    except (OSError, tarfile.TarError):
        return False


def load_openface(weights_path=None, device="cpu", seed: int = 0, trust: bool = False) -> OpenFaceNet:
    """OpenFaceNet in eval mode (BatchNorm on running statistics, as pose-evaluation runs it).

    ``weights_path``: the port's ``openface.pth`` (a state_dict saved by 2017 PyTorch with CUDA tensors;
    mapped to CPU). It is read with ``torch.load(weights_only=True)``; a file that needs full unpickling
    (e.g. a whole pickled module) is refused unless ``trust=True``. None: seeded random weights (tests only).
    """
    from animbench.models.checkpoints import load_module_state, read_checkpoint

    if weights_path is None:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = OpenFaceNet()
    else:
        if not trust and _is_torch_tar(weights_path):
            raise UserError(f"{weights_path}: saved in PyTorch's early-2017 tar format, which can only be read "
                            f"with full unpickling (it could run code); if you trust the file, pass "
                            f"--trust-checkpoint (trust=True)")
        state = read_checkpoint(weights_path, trust=trust, option="--openface-weights")
        if isinstance(state, nn.Module):  # a pickled module (only reachable with trust=True)
            state = state.state_dict()
        if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
            state = state["state_dict"]
        model = OpenFaceNet()
        load_module_state(model, state, "OpenFace weights", weights_path, family="OpenFace nn4.small2.v1",
                          hint=_hint)
    return _to_device(model, device).eval()


# ----------------------------------------------------------------------------------------------------------
# Preprocessing
# ----------------------------------------------------------------------------------------------------------
def resize_skimage014(images: np.ndarray, out_h: int = INPUT_SIZE, out_w: int = INPUT_SIZE) -> np.ndarray:
    """skimage 0.14.0 ``resize(img, (out_h, out_w))`` for a batch (N, H, W, C) of uint8 images -> float64.

    0.14's defaults: ``order=1, mode='constant', cval=0, clip=True, preserve_range=False,
    anti_aliasing=False`` (both defaults changed in 0.15). Its code path: img_as_float (x * (1/255) in
    float64), then ``warp`` with the affine map r = (H/out_h)(i + 0.5) - 0.5, c = (W/out_w)(j + 0.5) - 0.5,
    bilinear interpolation per channel with neighbours outside the image read as cval = 0, then
    ``_clip_warp_output``: clip to [min, max] of the whole input image, keeping outputs exactly equal to cval
    when cval lies outside that range. Equal to today's ``resize(..., order=1, mode='constant', cval=0,
    clip=True, preserve_range=False, anti_aliasing=False)`` per image (the clip is per image here too).
    """
    n, h, w, _ = images.shape
    img = np.multiply(images, 1.0 / 255, dtype=np.float64)
    padded = np.pad(img, ((0, 0), (1, 1), (1, 1), (0, 0)))  # cval = 0 around the image

    def axis(size_in, size_out):
        coord = (size_in / size_out) * (np.arange(size_out) + 0.5) - 0.5
        low, high = np.floor(coord), np.ceil(coord)
        return low.astype(np.int64) + 1, high.astype(np.int64) + 1, coord - low  # +1: index in padded

    r0, r1, dr = axis(h, out_h)
    c0, c1, dc = axis(w, out_w)
    dr, dc = dr[None, :, None, None], dc[None, None, :, None]
    rows0, rows1 = padded[:, r0], padded[:, r1]
    top = (1 - dc) * rows0[:, :, c0] + dc * rows0[:, :, c1]
    bottom = (1 - dc) * rows1[:, :, c0] + dc * rows1[:, :, c1]
    out = (1 - dr) * top + dr * bottom
    lo = img.reshape(n, -1).min(axis=1)[:, None, None, None]
    hi = img.reshape(n, -1).max(axis=1)[:, None, None, None]
    keep_cval = (out == 0.0) & ~((lo <= 0.0) & (0.0 <= hi))
    return np.where(keep_cval, 0.0, np.clip(out, lo, hi))


def resize_modern(images: np.ndarray, out_h: int = INPUT_SIZE, out_w: int = INPUT_SIZE) -> np.ndarray:
    """Today's ``skimage.transform.resize(img, (out_h, out_w))`` defaults, made explicit, for a batch.

    ``order=1, mode='reflect', cval=0, clip=True, preserve_range=False, anti_aliasing=(downsampling along
    any axis), anti_aliasing_sigma=None`` (= max(0, (factor - 1) / 2) per axis). One call on the 4-D batch:
    the batch and channel axes have zoom 1 and sigma 0, so each image is resized independently.
    """
    from skimage.transform import resize

    n, h, w, c = images.shape
    return resize(images, (n, out_h, out_w, c), order=1, mode="reflect", cval=0, clip=True,
                  preserve_range=False, anti_aliasing=bool(h > out_h or w > out_w), anti_aliasing_sigma=None)


def preprocess_frames(frames_uint8, resize: str = "skimage-0.14") -> torch.Tensor:
    """uint8 RGB (N, H, W, 3) -> float32 BGR (N, 3, 96, 96) in [0, 1], as pose-evaluation's extract.py."""
    if resize not in RESIZE_MODES:
        raise UserError(f"resize={resize!r}: unknown resize mode; use one of {', '.join(RESIZE_MODES)}")
    frames = check_frames(frames_uint8, "face-id frames")
    bgr = frames[..., ::-1]
    out = resize_skimage014(bgr) if resize == "skimage-0.14" else resize_modern(bgr)
    return torch.from_numpy(np.ascontiguousarray(out.transpose(0, 3, 1, 2), dtype=np.float32))


@torch.no_grad()
def embed_frames(model: OpenFaceNet, frames_uint8, resize: str = "skimage-0.14", batch_size: int = 32,
                 device=None) -> np.ndarray:
    """(N, 128) float32 OpenFace embeddings of uint8 RGB frames (N, H, W, 3), preprocessed in batches.

    pose-evaluation stores ``net(frame)[0]`` per frame, an array of shape (1, 128); row i here is that
    array's only row. Its AED is the squared L2 distance between GT and generated embeddings. The model
    runs in eval mode (restored afterwards); with ``device`` it is moved there first.
    """
    if not isinstance(batch_size, int) or batch_size < 1:
        raise UserError(f"batch_size={batch_size!r}: must be a positive integer")
    frames = check_frames(frames_uint8, "face-id frames")
    if resize not in RESIZE_MODES:
        raise UserError(f"resize={resize!r}: unknown resize mode; use one of {', '.join(RESIZE_MODES)}")
    if device is not None:
        _to_device(model, device)
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()  # BatchNorm on running statistics, as pose-evaluation runs the port
    out = np.zeros((len(frames), EMBEDDING_DIM), dtype=np.float32)
    try:
        for start in range(0, len(frames), batch_size):
            x = preprocess_frames(frames[start:start + batch_size], resize=resize).to(device)
            out[start:start + len(x)] = model(x).float().cpu().numpy()
    finally:
        model.train(was_training)
    return out
