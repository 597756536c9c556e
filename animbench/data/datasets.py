"""Dataset presets and the test/train split reader (FOMM layout: root/{train,test}/<video>)."""
from __future__ import annotations

import errno
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Tuple

from animbench.data.video import IMAGE_EXTS, VIDEO_EXTS, Video, open_video
from animbench.errors import UserError
from animbench.registry import Registry


@dataclass(frozen=True)
class DatasetPreset:
    name: str
    root: Optional[str]                # default root (FOMM configs' root_dir); None = generated (sample)
    frame_size: Tuple[int, int] = (256, 256)
    description: str = ""


DATASETS = Registry("dataset")
DATASETS.register("vox", DatasetPreset("vox", "data/vox-png", (256, 256),
                                       "VoxCeleb talking heads (FOMM preprocessing), root data/vox-png"))
DATASETS.register("taichi", DatasetPreset("taichi", "data/taichi-png", (256, 256),
                                          "Tai-Chi-HD (FOMM preprocessing), root data/taichi-png"))
DATASETS.register("bair", DatasetPreset("bair", "data/bair", (256, 256),
                                        "BAIR robot pushing (FOMM download), root data/bair"))
DATASETS.register("sample", DatasetPreset("sample", None, (64, 64),
                                          "embedded synthetic clips from scikit-image photos (64 or 256)"))


def _is_video_entry(path: Path) -> bool:
    if path.name.startswith("."):
        return False
    if path.is_symlink() and not path.exists():  # dangling link or a loop: say which, never skip silently
        try:
            path.stat()
        except OSError as e:
            if e.errno == errno.ELOOP:
                raise UserError(f"{path}: symbolic link loop; fix or remove the link") from None
            raise UserError(f"{path}: broken symbolic link (points to a missing file); fix or remove it") from None
    return path.is_dir() or path.suffix.lower() in IMAGE_EXTS | VIDEO_EXTS


class Dataset:
    """The videos of one split, sorted by name (FOMM lists them unsorted; sorting makes runs reproducible)."""

    def __init__(self, name: str, root: Path, split: str, frame_size: Optional[Tuple[int, int]]):
        """`frame_size` None: the size of the first frame found (every other frame must have it too)."""
        self.name, self.root, self.split = name, Path(root), split
        split_dir = self.root / split
        if not split_dir.is_dir():
            raise UserError(f"{split_dir}: missing; a dataset root holds train/ and test/ folders of videos "
                            f"(FOMM layout), e.g. `animbench data sample --out DIR` writes one")
        entries = [p for p in sorted(split_dir.iterdir(), key=lambda p: p.name) if _is_video_entry(p)]
        if frame_size is None:
            frame_size = tuple(open_video(entries[0]).frame_size) if entries else (256, 256)
        self.frame_size = tuple(int(v) for v in frame_size)
        self.videos: List[Video] = [open_video(p, self.frame_size) for p in entries]

    def __len__(self) -> int:
        return len(self.videos)

    def __repr__(self) -> str:
        return f"Dataset({self.name!r}, {str(self.root)!r}, split={self.split!r}, {len(self)} videos)"


def open_dataset(name: Optional[str] = None, root=None, split: str = "test",
                 frame_size: Optional[Tuple[int, int]] = None) -> Dataset:
    """Open a preset (`name`) and/or a folder (`root`, overriding the preset's root).

    Frame size: `frame_size` if given, else the preset's, else the size of the first frame found.
    """
    if name is None and root is None:
        raise UserError("no dataset: pass --dataset (vox, taichi, bair, sample) or --data-root DIR")
    preset = DATASETS.get(name) if name is not None else None
    size = tuple(frame_size) if frame_size else (preset.frame_size if preset else None)
    if root is None and preset is not None and preset.root is None:  # the embedded sample dataset
        from animbench.data.sample import SAMPLE_SIZES, sample_root

        if size[0] != size[1] or size[0] not in SAMPLE_SIZES:
            raise UserError(f"--size {size[0]}x{size[1]}: the sample dataset exists at "
                            f"{' or '.join(str(s) for s in SAMPLE_SIZES)} pixels")
        root = sample_root(size[0])
    elif root is None:
        root = Path(preset.root)
        if not root.is_dir():
            raise UserError(f"{root}: dataset {name!r} not found at its default root; download and preprocess it "
                            f"as FOMM's video-preprocessing does, then pass --data-root DIR")
    root = Path(root)
    if not root.is_dir():
        raise UserError(f"{root}: no such directory; pass a dataset root holding train/ and test/")
    return Dataset(name or root.name, root, split, size)
