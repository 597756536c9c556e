"""Salient (foreground alpha) masks of ground-truth frames, behind a small backend interface.

PriorityCut computes them with DeepLabv3+ → automatic trimap → F,B,Alpha matting; none of those weights ship
offline. Backends here:

- `folder`: user-provided alpha masks, one entry per video named like the video (a folder of PNG frames or a
  horizontal strip PNG), grayscale 0–255 → [0,1]. Use this to evaluate with the paper's own pipeline's masks.
- `builtin`: an offline classical pipeline — foreground segmentation (OpenCV GrabCut seeded by a centre prior;
  the segmenter is pluggable), an automatic trimap (erode/dilate band), and alpha matting: pymatting's
  closed-form solver (`matting="cf"`, optional extra `animbench[salient]`, imported lazily because its first
  import JIT-compiles for minutes) or a Gaussian-feathered trimap (`matting="feather"`, no dependency).
  Its numbers are a proxy and not comparable to the paper's salient columns.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Optional

import numpy as np

from animbench.errors import UserError


class FolderSalient:
    """Masks read from `<folder>/<video name>` (PNG folder or strip) or `<folder>/<video name>.png`."""

    def __init__(self, folder: Optional[Path]):
        if folder is None:
            raise UserError("--salient folder needs --salient-dir DIR holding one mask entry per video")
        self.folder = Path(folder)
        if not self.folder.is_dir():
            raise UserError(f"--salient-dir {folder}: no such directory")

    def masks_for_video(self, video) -> np.ndarray:
        from animbench.data.video import open_video

        for candidate in (self.folder / video.name, self.folder / f"{video.name}.png"):
            if candidate.exists():
                masks = open_video(candidate, frame_shape=video.frame_size).read_all()[..., 0]
                if masks.shape[0] != video.num_frames:
                    raise UserError(f"{candidate}: {masks.shape[0]} mask frames for {video.num_frames} video frames")
                return masks.astype(np.float32) / np.float32(255)
        raise UserError(f"{self.folder}: no masks for video {video.name!r} (expected {video.name}/ or "
                        f"{video.name}.png)")

    def masks(self, frames: np.ndarray) -> np.ndarray:
        raise UserError("the folder backend reads masks per video; use masks_for_video")


def _ellipse_prior(h: int, w: int, margin: float) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w]
    return (((xx - (w - 1) / 2) / (w * (0.5 - margin))) ** 2 + ((yy - (h - 1) / 2) / (h * (0.5 - margin))) ** 2) <= 1


def grabcut_segmenter(frame: np.ndarray, margin: float = 0.05, iterations: int = 3, work_size: int = 128) -> np.ndarray:
    """Binary foreground by GrabCut seeded with a centre rectangle (subjects are centred in FOMM crops).

    Runs at `work_size`² (GrabCut is slow and unstable on tiny images) and resizes the result; when GrabCut
    collapses (< 2 % or > 98 % foreground) the centred ellipse prior is used instead.
    """
    import cv2

    h, w = frame.shape[:2]
    small = cv2.resize(frame, (work_size, work_size), interpolation=cv2.INTER_AREA if h > work_size else cv2.INTER_LINEAR)
    s = work_size
    rect = (int(s * margin), int(s * margin), int(s * (1 - 2 * margin)), int(s * (1 - 2 * margin)))
    mask = np.zeros((s, s), np.uint8)
    cv2.setRNGSeed(0)  # GrabCut's GMM initialisation uses OpenCV's RNG: seed it for reproducible masks
    bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    cv2.grabCut(np.ascontiguousarray(small[:, :, ::-1]), mask, rect, bgd, fgd, iterations, cv2.GC_INIT_WITH_RECT)
    fg = np.isin(mask, (cv2.GC_FGD, cv2.GC_PR_FGD))
    if not 0.02 <= fg.mean() <= 0.98:
        fg = _ellipse_prior(s, s, margin + 0.1)
    return cv2.resize(fg.astype(np.uint8), (w, h), interpolation=cv2.INTER_NEAREST) > 0


def make_trimap(foreground: np.ndarray, band: int) -> np.ndarray:
    """1 = sure foreground (eroded), 0 = sure background (outside the dilation), 0.5 = unknown band."""
    import cv2

    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * band + 1, 2 * band + 1))
    fg = foreground.astype(np.uint8)
    sure_fg = cv2.erode(fg, kernel) > 0
    maybe = cv2.dilate(fg, kernel) > 0
    trimap = np.full(foreground.shape, 0.5)
    trimap[sure_fg] = 1.0
    trimap[~maybe] = 0.0
    return trimap


def feather_matting(frame: np.ndarray, trimap: np.ndarray, band: int) -> np.ndarray:
    """Alpha = the trimap blurred across the unknown band (no image term; dependency-free fallback)."""
    import cv2

    sigma = max(band / 2.0, 0.5)
    alpha = cv2.GaussianBlur(trimap.astype(np.float64), (0, 0), sigma)
    alpha[trimap == 1.0] = 1.0
    alpha[trimap == 0.0] = 0.0
    return alpha


def closed_form_matting(frame: np.ndarray, trimap: np.ndarray, band: int) -> np.ndarray:
    try:
        from pymatting import estimate_alpha_cf
    except ImportError:
        raise UserError("salient matting 'cf' needs pymatting: pip install -c constraints.txt 'animbench[salient]' "
                        "(or use --salient-matting feather)") from None
    return estimate_alpha_cf(frame.astype(np.float64) / 255.0, trimap)


MATTING = {"feather": feather_matting, "cf": closed_form_matting}


class BuiltinSalient:
    """segmentation → trimap → matting, per frame (deterministic)."""

    def __init__(self, segmenter: Callable[[np.ndarray], np.ndarray] = grabcut_segmenter, matting: str = "feather",
                 band_fraction: float = 0.04):
        if matting not in MATTING:
            raise UserError(f"salient matting {matting!r}: use one of {', '.join(MATTING)}")
        self.segmenter, self.matting, self.band_fraction = segmenter, matting, band_fraction

    def mask(self, frame: np.ndarray) -> np.ndarray:
        band = max(1, int(round(self.band_fraction * max(frame.shape[:2]))))
        trimap = make_trimap(self.segmenter(frame), band)
        return np.clip(MATTING[self.matting](frame, trimap, band), 0.0, 1.0).astype(np.float32)

    def masks(self, frames: np.ndarray) -> np.ndarray:
        return np.stack([self.mask(f) for f in frames])

    def masks_for_video(self, video) -> np.ndarray:
        return np.concatenate([self.masks(chunk) for chunk in video.iter_chunks(32)])


def make_salient_backend(name: str, folder: Optional[Path] = None, matting: str = "feather"):
    if name == "folder":
        return FolderSalient(folder)
    if name == "builtin":
        return BuiltinSalient(matting=matting)
    raise UserError(f"--salient {name}: unknown backend; use builtin or folder")
