"""Manifest of every third-party weight file animbench uses: where it comes from, how to check it, where it lives.

Only checksums that are actually known are recorded; nothing is guessed:

* ``sha256``: the full SHA-256 of the file. Unknown (None) for every entry so far.
* ``sha256_prefix``: the hex digits a torch-hub style file name embeds (``name-<prefix>.ext``).
  ``prefix_enforced=True`` means the publisher's own loader checks it (torchvision downloads with
  ``check_hash=True``), so a mismatch is a corrupt file. face-alignment 1.5.0 downloads with
  ``check_hash=False``, so for its files the prefix is only the naming convention and a mismatch is reported
  as information, not as an error.
* ``git_blob_sha1``: the git object id of the file in its repository at the pinned commit (SHA-1 of
  ``b"blob <size>\\0" + content``), read from the repository's tree; it identifies the exact bytes.

``location``: ``"animbench"`` = ``animbench.cache.cache_dir() / "weights"``; ``"torch-hub"`` = torch hub's
checkpoints directory (``torch.hub.get_dir()/checkpoints``, i.e. ``$TORCH_HOME/hub/checkpoints``, default
``~/.cache/torch/hub/checkpoints``), under the exact file name the owning library downloads to, so a file
fetched by face-alignment or torchvision itself is found and one installed by animbench is found by them.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, Optional, Tuple

LOCATIONS = ("animbench", "torch-hub")


@dataclass(frozen=True)
class WeightFile:
    name: str                           # animbench's name, e.g. "fan-2d"
    filename: str                       # exact file name on disk
    urls: Tuple[str, ...]               # first = primary; a folder link when direct_download is False
    used_by: str                        # animbench extractor / component that loads it
    license: str
    location: str = "animbench"         # "animbench" or "torch-hub" (see module docstring)
    direct_download: bool = True        # False: the URL is a page a human must open (no file URL exists)
    size: Optional[int] = None          # bytes, when known
    sha256: Optional[str] = None        # full hex digest, when known
    sha256_prefix: Optional[str] = None
    prefix_enforced: bool = False
    git_blob_sha1: Optional[str] = None
    description: str = ""
    notes: Tuple[str, ...] = field(default_factory=tuple)

    def __post_init__(self):
        if self.location not in LOCATIONS:
            raise ValueError(f"{self.name}: location must be one of {LOCATIONS}, got {self.location!r}")
        if not self.urls:
            raise ValueError(f"{self.name}: at least one URL is needed")


FACE_ALIGNMENT_BASE = "https://www.adrianbulat.com/downloads/python-fan/"

ENTRIES: Tuple[WeightFile, ...] = (
    WeightFile(
        name="fan-2d", filename="2DFAN4-11f355bf06.pth.tar",
        urls=(FACE_ALIGNMENT_BASE + "2DFAN4-11f355bf06.pth.tar",),
        used_by="face-pose (face AKD)", location="torch-hub",
        license="BSD-3-Clause (1adrianb/face-alignment); the weights' own terms are not stated separately",
        sha256_prefix="11f355bf06", prefix_enforced=False,
        description="2D-FAN-4 landmark network, plain state_dict, as face-alignment 1.5.0 downloads it "
                    "(face_alignment.api.models_urls['2DFAN-4']).",
        notes=("pose-evaluation pins face-alignment 3750f83 (2018), which downloaded '2DFAN-4.pth.tar' from the "
               "same host into ~/.face_alignment/data (Linux); whether its bytes equal this file is unverified.",)),
    WeightFile(
        name="s3fd", filename="s3fd-619a316812.pth",
        urls=(FACE_ALIGNMENT_BASE + "s3fd-619a316812.pth",),
        used_by="face-pose (face detector for FAN)", location="torch-hub",
        license="BSD-3-Clause (1adrianb/face-alignment); the weights' own terms are not stated separately",
        sha256_prefix="619a316812", prefix_enforced=False,
        description="S3FD face detector, plain state_dict, as face-alignment 1.5.0 downloads it "
                    "(face_alignment.detection.sfd.sfd_detector.models_urls['s3fd']).",
        notes=("face-alignment 3750f83 used 's3fd_convert.pth' from the same host; equality with this file is "
               "unverified.",)),
    WeightFile(
        name="openface", filename="openface.pth",
        urls=("https://raw.githubusercontent.com/thnkim/OpenFacePytorch/"
              "d00221832413e86b5608ca791c956b7949479627/openface.pth",),
        used_by="face-id (face AED)", location="animbench",
        license="Apache-2.0 (thnkim/OpenFacePytorch; converted from CMU OpenFace nn4.small2.v1, Apache-2.0)",
        git_blob_sha1="8ea57ad9cf6eb702d20353d93dea5558fe3a04d7",
        description="OpenFace nn4.small2.v1 ported to PyTorch, state_dict saved by 2017 PyTorch, at the "
                    "commit pose-evaluation pins (d002218).",
        notes=("The git blob id is the file's entry in the repository tree at d002218 (added in e888515).",)),
    WeightFile(
        name="openpose-coco", filename="pose_model.pth",
        urls=("https://yadi.sk/d/0L-PgAaGRKgkJA",), direct_download=False,
        used_by="body-pose (body AKD / MKR)", location="animbench",
        license="MIT (tensorboy/pytorch_Realtime_Multi-Person_Pose_Estimation); weights' terms not stated",
        description="OpenPose COCO-18 VGG-19 (rtpose) weights linked from pose-evaluation's README "
                    "(which puts them at pose_estimation/network/weight/pose_model.pth).",
        notes=("A Yandex Disk share link: open it in a browser and download pose_model.pth.",)),
    WeightFile(
        name="reid-market1501", filename="reid_model.pth",
        urls=("https://yadi.sk/d/jAPhvFEFp6qzIw",), direct_download=False,
        used_by="body-id (body AED)", location="animbench",
        license="MIT (layumi/Person_reID_baseline_pytorch); weights' terms not stated",
        description="ft_net(751) ResNet-50 trained on Market-1501, linked from pose-evaluation's README "
                    "(which loads reid_baseline/reid_model.pth).",
        notes=("A Yandex Disk share link: open it in a browser and download reid_model.pth.",)),
    WeightFile(
        name="vgg19", filename="vgg19-dcbb9e9d.pth",
        urls=("https://download.pytorch.org/models/vgg19-dcbb9e9d.pth",),
        used_by="train (perceptual loss)", location="torch-hub",
        license="BSD-3-Clause (pytorch/vision); trained on ImageNet, check its terms of access",
        sha256_prefix="dcbb9e9d", prefix_enforced=True,
        description="torchvision VGG-19 ImageNet weights (about 548 MB).",
        notes=("torchvision verifies the name's hash prefix against the file's SHA-256 (check_hash=True).",)),
)

MANIFEST: Dict[str, WeightFile] = {e.name: e for e in ENTRIES}
FACE_POSE_WEIGHTS = ("fan-2d", "s3fd")


def names() -> Tuple[str, ...]:
    return tuple(MANIFEST)


def get(name_or_entry) -> WeightFile:
    """The manifest entry for ``name`` (a :class:`WeightFile` is returned as is)."""
    from animbench.errors import UserError

    if isinstance(name_or_entry, WeightFile):
        return name_or_entry
    try:
        return MANIFEST[name_or_entry]
    except (KeyError, TypeError):
        raise UserError(f"unknown weights name {name_or_entry!r}; known: {', '.join(MANIFEST)} "
                        f"(see `animbench weights list`)") from None
