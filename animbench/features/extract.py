"""`animbench features extract`: a folder of videos -> a pose-evaluation feature table (a drop-in for
extract.py with `--is_video`).

Entries of IN_DIR are read exactly as pose-evaluation's `frames2array` reads them: a folder of frames (sorted
file names), a PNG/JPG horizontal strip split into frames of `image_shape`, or a GIF/MP4; with `image_shape`
(H,W) each frame is cut to the `column`-th block of W pixels (generators that stack several images side by side).
Rows: `file_name` (the entry's name in IN_DIR), `frame_number`, `value`.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional, Tuple

import numpy as np
import pandas as pd

from animbench.errors import UserError

IMAGE_EXTS = (".png", ".jpg", ".jpeg")


def read_entry(path: Path, image_shape: Optional[Tuple[int, int]] = None, column: int = 0) -> np.ndarray:
    """uint8 (T,H,W,3) frames of one entry, pose-evaluation's frames2array semantics."""
    import imageio.v3 as iio

    def rgb(image):
        if image.ndim == 2:
            image = np.repeat(image[..., None], 3, axis=2)
        return image[..., :3]

    try:
        if path.is_dir():
            names = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_EXTS)
            if not names:
                raise UserError(f"{path}: empty frame folder (no png/jpg); remove it or add frames")
            video = np.stack([rgb(iio.imread(p)) for p in names])
        elif path.suffix.lower() in IMAGE_EXTS:
            strip = rgb(iio.imread(path))
            h, w = image_shape if image_shape else (strip.shape[0], strip.shape[0])
            if strip.shape[0] != h or strip.shape[1] % w:
                raise UserError(f"{path}: a {strip.shape[0]}x{strip.shape[1]} strip does not split into "
                                f"{h}x{w} frames; pass the frame size with --image-shape H,W")
            video = strip.reshape(h, -1, w, 3).transpose(1, 0, 2, 3)
        elif path.suffix.lower() in (".gif", ".mp4", ".mov", ".avi"):
            video = np.stack([rgb(f) for f in iio.imiter(path)])
        else:
            return np.zeros((0, 1, 1, 3), np.uint8)
    except UserError:
        raise
    except Exception as e:  # unreadable image/video
        raise UserError(f"{path}: cannot read ({type(e).__name__}: {str(e).splitlines()[0][:80] if str(e) else ''})"
                        f"; replace or remove it") from None
    if image_shape is not None:
        w = image_shape[1]
        if video.shape[2] < w * (column + 1):
            raise UserError(f"{path}: frames are {video.shape[2]} px wide, column {column} of width {w} does not "
                            f"exist; check --image-shape and --column")
        video = video[:, :, w * column:w * (column + 1)]
    return np.ascontiguousarray(video.astype(np.uint8, copy=False))


def extract_folder(in_dir, extractor, image_shape: Optional[Tuple[int, int]] = None, column: int = 0,
                   progress: bool = True) -> pd.DataFrame:
    from tqdm.auto import tqdm

    from animbench.progress import progress_options

    in_dir = Path(in_dir)
    if not in_dir.is_dir():
        raise UserError(f"{in_dir}: no such directory; pass a folder of videos (frame folders, strips, mp4/gif)")
    entries = sorted(p for p in in_dir.iterdir() if not p.name.startswith("."))
    rows = {"file_name": [], "frame_number": [], "value": []}
    for entry in tqdm(entries, unit="video", desc=f"extract {extractor.kind}", disable=not progress,
                      **progress_options()):
        video = read_entry(entry, image_shape, column)
        if len(video) == 0:
            continue
        values = extractor.extract(video)
        rows["file_name"] += [entry.name] * len(values)
        rows["frame_number"] += list(range(len(values)))
        rows["value"] += list(values)
    if not rows["file_name"]:
        raise UserError(f"{in_dir}: no videos found (frame folders, png/jpg strips, gif/mp4)")
    return pd.DataFrame(rows)
