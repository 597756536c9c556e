"""OpenPose COCO-18 body-pose network (rtpose, VGG-19 front), as pose-evaluation's body AKD/MKR runs it.

pose-evaluation (AliaksandrSiarohin/pose-evaluation @ 1bc4cae, ``extract.py: extract_body_pose``) builds the
network with ``get_model('vgg19')`` from its submodule AliaksandrSiarohin/pytorch_Realtime_Multi-Person_Pose_
Estimation @ 257d8b4 (``network/rtpose_vgg.py``), loads ``pose_model.pth`` with ``model.load_state_dict(
torch.load(...))`` BEFORE wrapping it in ``DataParallel`` (so the file is a plain state_dict without a
``module.`` prefix; a prefixed one is accepted too) and runs it in eval mode. This module is an independent
re-implementation with the same module/parameter names and the same state_dict key order, so that file loads
strictly (verified against the fork's own model: tests/data/openpose/official_state_dict_keys.json).

Layout (all convolutions have bias; "conv" = conv followed by ReLU unless marked "no ReLU"):

* ``model0``: the VGG-19 front up to conv4_2 (3x3 convs, padding 1; 64, 64, pool, 128, 128, pool, 256 x4,
  pool, 512, 512; 2x2/2 max-pools) followed by conv4_3_CPM (512 -> 256) and conv4_4_CPM (256 -> 128), each
  with a ReLU. Sequential indices of the convs: 0 2 5 7 10 12 14 16 19 21 23 25 (the first ten are
  torchvision's VGG-19 ``features`` indices). Output: 128 channels at 1/8 resolution.
* ``model1_1`` (PAFs) / ``model1_2`` (heatmaps): 3x (3x3, 128) -> 1x1 512 -> 1x1 to 38 / 19 (no ReLU);
  Sequential indices 0 2 4 6 8.
* ``model{2..6}_1`` / ``model{2..6}_2``: input = cat(previous PAFs, previous heatmaps, model0 output) = 185
  channels; 5x (7x7, 128, padding 3) -> 1x1 128 -> 1x1 to 38 / 19 (no ReLU); indices 0 2 ... 12.
* ``forward(x)`` returns ``((pafs, heatmaps), per_stage_outputs)`` as the fork does; pose-evaluation uses
  stage 6 only: PAFs (N, 38, H/8, W/8) and heatmaps (N, 19, H/8, W/8) (channel 18 = background).
"""
from __future__ import annotations

from collections import OrderedDict
from typing import List, Sequence, Tuple

import torch
import torch.nn as nn

from animbench.features.common import to_device as _to_device

PAF_CHANNELS = 38
HEATMAP_CHANNELS = 19
STRIDE = 8
STAGES = 6

# (in, out) of each 3x3 conv of the VGG front; "M" = 2x2 max-pool with stride 2.
_FRONT_PLAN: Sequence = (
    (3, 64), (64, 64), "M", (64, 128), (128, 128), "M",
    (128, 256), (256, 256), (256, 256), (256, 256), "M",
    (256, 512), (512, 512), (512, 256), (256, 128),
)


def _front() -> nn.Sequential:
    layers: List[nn.Module] = []
    for item in _FRONT_PLAN:
        if item == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2, padding=0))
        else:
            layers += [nn.Conv2d(item[0], item[1], kernel_size=3, stride=1, padding=1), nn.ReLU(inplace=True)]
    return nn.Sequential(*layers)


def _stage(convs: Sequence[Tuple[int, int, int]]) -> nn.Sequential:
    """convs: (in, out, kernel) with padding kernel // 2; ReLU after every conv except the last."""
    layers: List[nn.Module] = []
    for i, (c_in, c_out, k) in enumerate(convs):
        layers.append(nn.Conv2d(c_in, c_out, kernel_size=k, stride=1, padding=k // 2))
        if i < len(convs) - 1:
            layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


def _first_stage(out_ch: int) -> nn.Sequential:
    return _stage([(128, 128, 3)] * 3 + [(128, 512, 1), (512, out_ch, 1)])


def _later_stage(out_ch: int) -> nn.Sequential:
    feat = PAF_CHANNELS + HEATMAP_CHANNELS + 128
    return _stage([(feat, 128, 7)] + [(128, 128, 7)] * 4 + [(128, 128, 1), (128, out_ch, 1)])


class BodyPoseNet(nn.Module):
    """The fork's ``rtpose_model`` for trunk 'vgg19' (attribute names model0, model{s}_1, model{s}_2)."""

    def __init__(self):
        super().__init__()
        # Registration order = the fork's: model0, PAF branches 1..6, heatmap branches 1..6.
        self.model0 = _front()
        for s in range(1, STAGES + 1):
            setattr(self, f"model{s}_1", (_first_stage if s == 1 else _later_stage)(PAF_CHANNELS))
        for s in range(1, STAGES + 1):
            setattr(self, f"model{s}_2", (_first_stage if s == 1 else _later_stage)(HEATMAP_CHANNELS))

    def forward(self, x: torch.Tensor):
        feat = self.model0(x)
        stages = []
        inp = feat
        pafs = heat = None
        for s in range(1, STAGES + 1):
            pafs = getattr(self, f"model{s}_1")(inp)
            heat = getattr(self, f"model{s}_2")(inp)
            stages += [pafs, heat]
            if s < STAGES:
                inp = torch.cat([pafs, heat, feat], 1)
        return (pafs, heat), stages


def state_dict_layout(model: nn.Module = None) -> "OrderedDict[str, tuple]":
    """name -> shape of the state_dict, in order (what official_state_dict_keys.json records)."""
    model = BodyPoseNet() if model is None else model
    return OrderedDict((k, tuple(v.shape)) for k, v in model.state_dict().items())


# ----------------------------------------------------------------------------------------------------------
# Loading and the extractor
# ----------------------------------------------------------------------------------------------------------
def _hint(shapes, missing, unexpected) -> str:
    return ("expected pose-evaluation's pose_model.pth (the rtpose VGG-19 COCO state_dict of "
            "pytorch_Realtime_Multi-Person_Pose_Estimation, https://yadi.sk/d/0L-PgAaGRKgkJA)")


def _sha256(path) -> str:
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class BodyPoseExtractor:
    """pose-evaluation's ``extract_body_pose`` value per frame: float64 (18, 2) (x, y), -1 = missing joint.

    ``extract(frames)`` takes uint8 RGB frames (N, H, W, 3) (numpy or torch) of one video and returns a list
    of N arrays, exactly what extract.py stores in the pickle's ``value`` column. Frames run through the
    network ``batch_size`` at a time (each with its mirror image: 2 x batch_size network inputs) on the
    network's device; peak finding and decoding stay on that device (see ``openpose_decode``).
    ``input_size`` is 368 in pose-evaluation; other values exist only to keep tests fast.
    """

    kind = "body-pose"

    def __init__(self, net: BodyPoseNet, batch_size: int = 8, weights_path=None, weights_sha256=None,
                 input_size: int = 368):
        from animbench.errors import UserError

        if not isinstance(batch_size, int) or batch_size < 1:
            raise UserError(f"batch_size={batch_size!r}: must be a positive integer")
        self.net = net.eval()
        self.batch_size = batch_size
        self.weights_path = None if weights_path is None else str(weights_path)
        self.weights_sha256 = weights_sha256
        self.input_size = int(input_size)

    @property
    def device(self) -> torch.device:
        return next(self.net.parameters()).device

    @torch.no_grad()
    def extract(self, frames_uint8) -> list:
        from animbench.features import openpose_decode as dec

        frames = dec.check_frames(frames_uint8)
        values: list = []
        for start in range(0, len(frames), self.batch_size):
            heat = dec.heatmaps(self.net, frames[start:start + self.batch_size], self.device, self.input_size)
            values += dec.frame_values(dec.decode_peaks(heat))
        return values

    def describe(self) -> dict:
        from animbench.features import openpose_decode as dec

        return {
            "kind": self.kind,
            "network": "OpenPose COCO-18 rtpose VGG-19, 6 stages (pytorch_Realtime_Multi-Person_Pose_Estimation "
                       "@ 257d8b4, get_model('vgg19'))",
            "reference": "AliaksandrSiarohin/pose-evaluation @ 1bc4cae extract.py --type body_pose",
            "weights": self.weights_path,
            "weights_sha256": self.weights_sha256,
            "random_weights": self.weights_path is None,
            "input": f"BGR, shorter side scaled to {self.input_size} px (cv2 INTER_LINEAR), zero-padded to a "
                     f"multiple of {dec.STRIDE}, x/256 - 0.5",
            "input_size": self.input_size,
            "upsampling": "cv2 INTER_CUBIC x8, crop padding, INTER_CUBIC to the frame size",
            "flip_averaging": True,
            "thresholds": dict(dec.THRESHOLDS),
            "peak": "4-neighbour maximum > thre1; last peak per joint type; argmax of its 5x5 window",
            "joints": list(dec.JOINT_NAMES),
            "value": "float64 (18, 2) (x, y) pixels at frame resolution, -1 = missing",
            "device": str(self.device),
            "batch_size": self.batch_size,
        }


def load_body_pose(weights=None, device="cpu", seed: int = 0, batch_size: int = 8, trust: bool = False,
                   input_size: int = 368) -> BodyPoseExtractor:
    """BodyPoseExtractor with pose-evaluation's ``pose_model.pth`` (None: seeded random weights, for tests).

    The file is a plain state_dict (extract.py loads it before wrapping the model in DataParallel); a
    ``module.`` prefix or a ``{'state_dict': ...}`` wrapper is accepted too. It is read with
    ``torch.load(weights_only=True)`` unless ``trust=True``.
    """
    from animbench.models.checkpoints import load_module_state, read_checkpoint

    sha = None
    if weights is None:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            net = BodyPoseNet()
    else:
        state = read_checkpoint(weights, trust=trust, option="--weights")
        if isinstance(state, nn.Module):  # a pickled module (only reachable with trust=True)
            state = state.state_dict()
        if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
            state = state["state_dict"]
        net = BodyPoseNet()
        load_module_state(net, state, "OpenPose weights", weights, family="OpenPose", hint=_hint)
        sha = _sha256(weights)
    net = _to_device(net, device)
    return BodyPoseExtractor(net, batch_size=batch_size, weights_path=weights, weights_sha256=sha,
                             input_size=input_size)
