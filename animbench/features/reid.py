"""Person-identity feature (Market-1501 ``ft_net``), computed as pose-evaluation's body AED (body_id) computes it.

pose-evaluation (AliaksandrSiarohin/pose-evaluation @ 1bc4cae, ``extract.py: extract_body_id``) uses
``ft_net(751)`` from layumi/Person_reID_baseline_pytorch @ 2a5a656 (its pinned ``reid_baseline`` submodule)
with the weights ``reid_model.pth``. This module is an independent plain-torch re-implementation with the same
module/parameter names, so that file loads strictly. What it reproduces (see tests/data/reid/README.md):

* Network: torchvision's ResNet-50 (Bottleneck blocks 3/4/6/3, stride in the 3x3 conv, 1x1 conv + BN
  ``downsample``) under the prefix ``model.``, global average pooling (``AdaptiveAvgPool2d((1, 1))``), the
  ft_net head ``model.fc`` = Linear(2048, 512), BatchNorm1d(512), LeakyReLU(0.1), Dropout(0.5) and
  ``classifier`` = Sequential(Linear(512, 751)). pose-evaluation loads the weights, then replaces
  ``model.fc`` and ``classifier`` by empty Sequentials, so the stored value is the **2048-d pooled feature**
  (before the head), unnormalised, no flip averaging: a float32 array of shape **(1, 2048)** per frame (one
  frame per forward). The head is kept here only so the checkpoint loads strictly; it is never run.
* Transform (torchvision on a uint8 RGB frame): ToPILImage, Resize((288, 144), PIL bicubic), ToTensor
  (/255), Normalize(mean 0, std 255) -- a **second** division by 255, so the network sees an almost
  constant image ((x/65025 - mean)/std) -- then the ImageNet Normalize. Reproduced bit-exactly with Pillow's
  own bicubic resize and the same float32 operations in the same order.
* Batch norm, ``bn_mode``:
  - ``"parity"`` (default, the published numbers): pose-evaluation never calls ``.eval()``, so every
    BatchNorm runs in training mode on a batch of ONE frame, i.e. each frame is normalised with its own
    per-channel spatial mean and biased variance (the running statistics in the file are ignored). Batched
    here by folding the batch into the channel axis, which gives the same per-frame statistics as
    upstream's one-frame batches; results do not depend on ``batch_size`` or on the other frames.
  - ``"eval"``: BatchNorm uses the running statistics stored in the weights -- what a trained re-id model is
    meant to use (the re-id baseline's own test.py calls ``.eval()``). A different metric: it must not be
    reported under the pose-evaluation AED name.

Precision: after the double division the image signal is ~1/300 of the input's magnitude, and parity-mode BN
re-amplifies it: float64 instead of float32 moves features by up to ~1e-3 (squared-L2 ~1e-4, against ~10
between different images), the expected order of CPU-vs-GPU differences. TF32 convolutions would wipe the signal out (the input collapses to
~10-20 distinct values per channel), so on CUDA cuDNN convolutions run in full fp32 during extraction.
"""
from __future__ import annotations

import contextlib
import hashlib
from pathlib import Path
from typing import List, Optional

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from animbench.features.common import check_frames as _check_frames
from animbench.errors import UserError

INPUT_SIZE = (288, 144)  # (H, W), as Resize((288, 144)) takes it
FEATURE_DIM = 2048
CLASS_NUM = 751
BOTTLENECK_DIM = 512
BN_MODES = ("parity", "eval")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
UPSTREAM = ("AliaksandrSiarohin/pose-evaluation@1bc4cae extract_body_id; "
            "layumi/Person_reID_baseline_pytorch@2a5a656 ft_net(751)")
TRANSFORM = ("uint8 RGB -> PIL bicubic resize to 288x144 (HxW) -> /255 (ToTensor) -> /255 (Normalize(0, 255)) "
             "-> ImageNet Normalize(mean (0.485, 0.456, 0.406), std (0.229, 0.224, 0.225)), float32")


# ----------------------------------------------------------------------------------------------------------
# Transform
# ----------------------------------------------------------------------------------------------------------
def check_frames(frames) -> np.ndarray:
    """(N, H, W, 3) uint8 RGB frames, or a one-line UserError."""
    return _check_frames(frames, "body-id frames")


def resize_bicubic(frames: np.ndarray) -> np.ndarray:
    """(N, H, W, 3) uint8 -> (N, 288, 144, 3) uint8 with Pillow's BICUBIC (what torchvision's Resize runs)."""
    from PIL import Image
    height, width = INPUT_SIZE
    out = np.empty((len(frames), height, width, 3), dtype=np.uint8)
    for i, frame in enumerate(frames):
        image = Image.fromarray(np.ascontiguousarray(frame))  # uint8 (H, W, 3) -> mode "RGB"
        out[i] = np.asarray(image.resize((width, height), Image.Resampling.BICUBIC))
    return out


def preprocess_frames(frames) -> torch.Tensor:
    """pose-evaluation's body_id transform: (N, H, W, 3) uint8 -> (N, 3, 288, 144) float32, bit-exact."""
    resized = resize_bicubic(check_frames(frames))
    x = torch.from_numpy(resized).permute(0, 3, 1, 2).contiguous()
    x = x.to(torch.float32).div(255)  # ToTensor
    x = x.sub_(torch.zeros(3, 1, 1)).div_(torch.full((3, 1, 1), 255.0))  # Normalize([0]*3, [255]*3)
    mean = torch.as_tensor(IMAGENET_MEAN, dtype=torch.float32).view(-1, 1, 1)
    std = torch.as_tensor(IMAGENET_STD, dtype=torch.float32).view(-1, 1, 1)
    return x.sub_(mean).div_(std)


# ----------------------------------------------------------------------------------------------------------
# Network (torchvision ResNet-50 key names under ft_net's ``model.`` / ``classifier.``)
# ----------------------------------------------------------------------------------------------------------
def batch_norm(x: torch.Tensor, bn: nn.BatchNorm2d, bn_mode: str) -> torch.Tensor:
    """BatchNorm2d with running statistics ("eval") or each sample's own statistics ("parity").

    Parity: (N, C, H, W) is viewed as one sample with N*C channels, so the per-channel training-mode
    statistics are computed per (frame, channel) over H*W -- exactly upstream's batch of one frame. No
    running statistics are updated.
    """
    if bn_mode == "eval":
        return F.batch_norm(x, bn.running_mean, bn.running_var, bn.weight, bn.bias, False, 0.0, bn.eps)
    n, c = x.shape[:2]
    y = F.batch_norm(x.reshape(1, n * c, *x.shape[2:]), None, None, bn.weight.repeat(n), bn.bias.repeat(n),
                     True, 0.0, bn.eps)
    return y.view_as(x)


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, in_channels: int, planes: int, stride: int = 1):
        super().__init__()
        out_channels = planes * self.expansion
        self.conv1 = nn.Conv2d(in_channels, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, out_channels, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_channels)
        self.downsample = None
        if stride != 1 or in_channels != out_channels:
            self.downsample = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
                                            nn.BatchNorm2d(out_channels))

    def forward(self, x: torch.Tensor, bn_mode: str) -> torch.Tensor:
        out = F.relu(batch_norm(self.conv1(x), self.bn1, bn_mode))
        out = F.relu(batch_norm(self.conv2(out), self.bn2, bn_mode))
        out = batch_norm(self.conv3(out), self.bn3, bn_mode)
        identity = x if self.downsample is None else batch_norm(self.downsample[0](x), self.downsample[1], bn_mode)
        return F.relu(out + identity)


class ResNet50(nn.Module):
    """torchvision's resnet50 layout; ``fc`` is ft_net's 2048->512 bottleneck head (kept for loading only)."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        in_channels = 64
        for index, (planes, blocks, stride) in enumerate(((64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2)), 1):
            layer = []
            for b in range(blocks):
                layer.append(Bottleneck(in_channels, planes, stride if b == 0 else 1))
                in_channels = planes * Bottleneck.expansion
            setattr(self, f"layer{index}", nn.ModuleList(layer))
        self.fc = nn.Sequential(nn.Linear(FEATURE_DIM, BOTTLENECK_DIM), nn.BatchNorm1d(BOTTLENECK_DIM),
                                nn.LeakyReLU(0.1), nn.Dropout(p=0.5))

    def features(self, x: torch.Tensor, bn_mode: str) -> torch.Tensor:
        """(N, 3, H, W) -> (N, 2048): everything up to the pooled vector (what pose-evaluation keeps)."""
        x = F.relu(batch_norm(self.conv1(x), self.bn1, bn_mode))
        x = F.max_pool2d(x, kernel_size=3, stride=2, padding=1)
        for layer in (self.layer1, self.layer2, self.layer3, self.layer4):
            for block in layer:
                x = block(x, bn_mode)
        return torch.flatten(F.adaptive_avg_pool2d(x, (1, 1)), 1)


class FtNet(nn.Module):
    """ft_net(class_num): ``model`` (ResNet-50 + bottleneck head) and ``classifier`` (Linear(512, class_num))."""

    def __init__(self, class_num: int = CLASS_NUM):
        super().__init__()
        self.model = ResNet50()
        self.classifier = nn.Sequential(nn.Linear(BOTTLENECK_DIM, class_num))

    def forward(self, x: torch.Tensor, bn_mode: str = "parity") -> torch.Tensor:
        if bn_mode not in BN_MODES:
            raise UserError(f"body-id bn_mode {bn_mode!r}: expected one of {', '.join(BN_MODES)}")
        return self.model.features(x, bn_mode)


def random_ft_net(seed: int = 0) -> FtNet:
    """Seeded random weights (tests, smoke runs): Kaiming-normal convs, BN gamma 1 / beta 0."""
    generator = torch.Generator().manual_seed(int(seed))
    net = FtNet()
    with torch.no_grad():
        for name, tensor in net.state_dict().items():
            if name.endswith("weight") and tensor.dim() > 1:
                fan_in = int(np.prod(tensor.shape[1:]))
                tensor.copy_(torch.randn(tensor.shape, generator=generator) * (2.0 / fan_in) ** 0.5)
    return net


# ----------------------------------------------------------------------------------------------------------
# Loading and extraction
# ----------------------------------------------------------------------------------------------------------
def _layout_hint(shapes: list, missing: list, unexpected: list) -> str:
    if any(k.startswith("classifier.add_block.") or k.startswith("classifier.classifier.") for k in unexpected):
        return ("this is a later Person_reID_baseline checkpoint (ClassBlock head); pose-evaluation uses ft_net "
                "@ 2a5a656 (model.fc.0/1 + classifier.0): use its reid_model.pth (https://yadi.sk/d/jAPhvFEFp6qzIw)")
    return "expected pose-evaluation's reid_model.pth (ft_net(751) state_dict, https://yadi.sk/d/jAPhvFEFp6qzIw)"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def load_ft_net(path, trust: bool = False) -> FtNet:
    """ft_net(751) with the weights of ``reid_model.pth`` (a plain state_dict), loaded strictly."""
    from animbench.models.checkpoints import load_module_state, read_checkpoint
    state = read_checkpoint(path, trust=trust, option="--weights")
    if isinstance(state, nn.Module):  # a whole pickled model (only readable with --trust-checkpoint)
        state = state.state_dict()
    net = FtNet()
    load_module_state(net, state, "state_dict", path, family="re-id", hint=_layout_hint)
    return net


@contextlib.contextmanager
def full_fp32_convolutions(device):
    """Disable TF32 for cuDNN convolutions while extracting on CUDA (restored afterwards)."""
    if torch.device(device).type != "cuda":
        yield
        return
    cudnn = torch.backends.cudnn
    conv = getattr(cudnn, "conv", None)
    if conv is not None and hasattr(conv, "fp32_precision"):  # torch >= 2.9 API
        saved = conv.fp32_precision
        conv.fp32_precision = "ieee"
        try:
            yield
        finally:
            conv.fp32_precision = saved
    else:
        saved = cudnn.allow_tf32
        cudnn.allow_tf32 = False
        try:
            yield
        finally:
            cudnn.allow_tf32 = saved


class BodyIdExtractor:
    """pose-evaluation's ``body_id`` values: one float32 (1, 2048) array per frame."""

    kind = "body-id"

    def __init__(self, net: FtNet, bn_mode: str = "parity", batch_size: int = 16, device: str = "cpu",
                 weights: Optional[Path] = None, weights_sha256: Optional[str] = None, seed: Optional[int] = None):
        if bn_mode not in BN_MODES:
            raise UserError(f"body-id bn_mode {bn_mode!r}: expected one of {', '.join(BN_MODES)}")
        if not isinstance(batch_size, int) or batch_size < 1:
            raise UserError(f"body-id batch_size {batch_size!r}: expected a positive integer")
        try:
            torch_device = torch.device(device)
        except (RuntimeError, TypeError) as e:
            raise UserError(f"body-id device {device!r}: {str(e).splitlines()[0]}") from None
        if torch_device.type == "cuda" and not torch.cuda.is_available():
            raise UserError(f"body-id device {device!r}: CUDA is not available in this torch build; use --device cpu")
        self.net = net.to(device).eval()  # .eval() only affects the unused head; BN follows bn_mode
        self.bn_mode, self.batch_size, self.device = bn_mode, batch_size, device
        self.weights, self.weights_sha256, self.seed = weights, weights_sha256, seed

    @torch.no_grad()
    def extract(self, frames) -> List[np.ndarray]:
        """(N, H, W, 3) uint8 RGB frames -> N float32 arrays of shape (1, 2048), as extract.py stores them."""
        frames = check_frames(frames)
        values: List[np.ndarray] = []
        for start in range(0, len(frames), self.batch_size):
            x = preprocess_frames(frames[start:start + self.batch_size]).to(self.device)
            with full_fp32_convolutions(self.device):
                feats = self.net(x, self.bn_mode).cpu().numpy()
            values.extend(np.array(f[None], dtype=np.float32) for f in feats)
        return values

    def describe(self) -> dict:
        return {
            "kind": self.kind,
            "network": "ft_net ResNet-50 (Market-1501, class_num 751); feature = 2048-d global average pool "
                       "before model.fc, unnormalised, no flip averaging",
            "upstream": UPSTREAM,
            "weights": None if self.weights is None else str(self.weights),
            "weights_sha256": self.weights_sha256,
            "random_seed": self.seed,
            "bn_mode": self.bn_mode,
            "bn_mode_meaning": ("train-mode BN with each frame's own statistics (pose-evaluation never calls "
                                ".eval())" if self.bn_mode == "parity" else "BN with the stored running statistics"),
            "transform": TRANSFORM,
            "value": "float32 array (1, 2048) per frame",
            "batch_size": self.batch_size,
            "device": str(self.device),
        }


def load_body_id(weights=None, device: str = "cpu", seed: int = 0, bn_mode: str = "parity",
                 batch_size: int = 16, trust: bool = False) -> BodyIdExtractor:
    """Extractor with ``reid_model.pth`` (``weights``), or seeded random weights when ``weights`` is None."""
    if bn_mode not in BN_MODES:
        raise UserError(f"body-id bn_mode {bn_mode!r}: expected one of {', '.join(BN_MODES)}")
    if weights is None:
        return BodyIdExtractor(random_ft_net(seed), bn_mode, batch_size, device, seed=seed)
    path = Path(weights)
    net = load_ft_net(path, trust=trust)
    return BodyIdExtractor(net, bn_mode, batch_size, device, weights=path, weights_sha256=_sha256(path))
