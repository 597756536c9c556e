"""The embedded `sample` dataset: deterministic synthetic talking-head-like clips from scikit-image photos.

Six identities are cut from photos that ship inside scikit-image, each a soft elliptical sprite: training
id01–id04 are the astronaut's face, the cat `chelsea`, the `camera` man and a recoloured mirror copy of the
astronaut; test id05–id06 are photos used nowhere in training (the `coffee` cup, the `rocket`), so test
identities are disjoint from training ones (tests/test_data_sample.py checks it, flips and recolours included). A clip moves
the sprite over a static textured background (brick, grass, gravel, tinted) with temporally smooth motion:
rotation (±10°), scale (±8%), translation (±12% of the frame), plus two local non-rigid warps — a "mouth"
that opens and closes and an "eye" region that squeezes — so parts of the face move differently from the
head. As the head moves, background behind it is revealed (disocclusion), which is what occlusion maps model.

- train: identities id01–id04, 2 clips each (8 videos); test: id05–id06, 2 clips each (4 videos)
- 32 frames per clip; generated at 256×256 and, for size 64, downsampled with anti-aliasing
- stored as PNG folders in the FOMM layout: `<root>/{train,test}/idNN#clipMM/0000000.png ...`
- float64 numpy with explicit rounding: identical bytes on every machine (tests/test_data_sample.py pins
  the hash); generated in a few seconds and cached under `$ANIMBENCH_CACHE` (default ~/.cache/animbench)
"""
from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Dict, Iterator, Tuple

import numpy as np

from animbench.cache import cache_dir

SAMPLE_SIZES = (64, 256)
VERSION = 2  # 2: test identities from photos not used in training (v1 reused recoloured training photos)
NUM_FRAMES = 32
_BASE = 256
_SPLITS = {"train": ("id01", "id02", "id03", "id04"), "test": ("id05", "id06")}
_CLIPS = 2


def _photo(name: str) -> np.ndarray:
    from skimage import data

    img = getattr(data, name)()
    if img.ndim == 2:
        img = np.repeat(img[:, :, None], 3, axis=2)
    return img[:, :, :3].astype(np.float64) / 255.0


def _crop_resize(img: np.ndarray, box: Tuple[int, int, int, int], size: int) -> np.ndarray:
    from skimage.transform import resize

    r0, r1, c0, c1 = box
    return resize(img[r0:r1, c0:c1], (size, size), order=1, mode="edge", anti_aliasing=True)


def _sprites() -> Dict[str, np.ndarray]:
    """Six RGBA sprites (160×160, float64). Train id01–id04: three photo crops and a recoloured mirror copy of
    the first; test id05–id06: crops of two photos no training identity comes from."""
    size = 160
    crops = {
        "id01": _crop_resize(_photo("astronaut"), (20, 220, 140, 340), size),
        "id02": _crop_resize(_photo("chelsea"), (0, 300, 60, 360), size),
        "id03": _crop_resize(_photo("camera"), (40, 240, 170, 370), size),
        "id05": _crop_resize(_photo("coffee"), (40, 360, 140, 460), size),
        "id06": _crop_resize(_photo("rocket"), (60, 400, 150, 490), size),
    }
    crops["id04"] = np.clip(crops["id01"][:, ::-1] * np.array([1.0, 0.85, 0.7]), 0.0, 1.0)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    ell = ((xx - 79.5) / 70.0) ** 2 + ((yy - 79.5) / 78.0) ** 2
    alpha = np.clip((1.0 - ell) / 0.15, 0.0, 1.0)  # soft-edged ellipse
    return {name: np.dstack([crops[name], alpha]) for name in sorted(crops)}


def _background(index: int) -> np.ndarray:
    from skimage.transform import resize

    name = ("brick", "grass", "gravel")[index % 3]
    tex = _photo(name)
    tint = np.array([[0.9, 0.75, 0.6], [0.6, 0.85, 0.6], [0.7, 0.7, 0.85], [0.85, 0.8, 0.75]])[index % 4]
    crop = tex[: tex.shape[0] // 2 * 2, : tex.shape[1] // 2 * 2]
    bg = resize(crop, (_BASE, _BASE), order=1, mode="edge", anti_aliasing=True)
    return np.clip(bg * tint, 0.0, 1.0)


def _bilinear(img: np.ndarray, y: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Sample img (h,w,C) at float coordinates with bilinear interpolation; outside = 0 (alpha 0)."""
    from scipy.ndimage import map_coordinates

    return np.stack([map_coordinates(img[:, :, c], [y, x], order=1, mode="constant", cval=0.0)
                     for c in range(img.shape[2])], axis=-1)


def _clip_frames(sprite: np.ndarray, background: np.ndarray, seed: int) -> Iterator[np.ndarray]:
    """Frames (256×256×3 float64 in [0,1]) of one clip: smooth global motion + mouth/eye warps."""
    rng = np.random.default_rng(seed)
    amp = rng.uniform([0.10, 0.05, 20.0, 14.0], [0.18, 0.08, 30.0, 22.0])   # rot(rad), scale, tx, ty (px)
    freq = rng.uniform(0.6, 1.4, size=6)                                     # cycles per clip
    phase = rng.uniform(0, 2 * np.pi, size=6)
    yy, xx = np.mgrid[0:_BASE, 0:_BASE].astype(np.float64)
    centre = (_BASE - 1) / 2.0
    s_half = (sprite.shape[0] - 1) / 2.0
    for t in range(NUM_FRAMES):
        u = t / NUM_FRAMES
        wave = np.sin(2 * np.pi * freq * u + phase)
        angle, scale = amp[0] * wave[0], 1.0 + amp[1] * wave[1]
        tx, ty = amp[2] * wave[2], amp[3] * wave[3]
        # inverse map: frame pixel -> sprite coordinates (rotation about the sprite centre)
        dx, dy = xx - centre - tx, yy - centre - ty
        cos, sin = np.cos(angle), np.sin(angle)
        sx = (cos * dx + sin * dy) / scale + s_half
        sy = (-sin * dx + cos * dy) / scale + s_half
        # non-rigid: a "mouth" opening (vertical stretch around the lower centre) and an "eye" squeeze
        mouth = 6.0 * max(0.0, wave[4]) * np.exp(-((sx - s_half) ** 2 + (sy - 118.0) ** 2) / (2 * 18.0 ** 2))
        eyes = 3.0 * wave[5] * np.exp(-((sy - 62.0) ** 2) / (2 * 10.0 ** 2)) * np.exp(-((sx - s_half) ** 2) / (2 * 45.0 ** 2))
        sy = sy - mouth * np.sign(sy - 118.0) + eyes * np.sign(sy - 62.0)
        rgba = _bilinear(sprite, sy, sx)
        a = rgba[:, :, 3:4]
        yield rgba[:, :, :3] * a + background * (1.0 - a)


def iter_sample_videos(size: int = 64) -> Iterator[Tuple[str, str, np.ndarray]]:
    """Yield (split, video name, uint8 frames (T,size,size,3)) for every clip, deterministically."""
    from skimage.transform import resize

    if size not in SAMPLE_SIZES:
        raise ValueError(f"sample size must be one of {SAMPLE_SIZES}")
    sprites = _sprites()
    index = 0
    for split, ids in _SPLITS.items():
        for person in ids:
            for clip in range(_CLIPS):
                bg = _background(index)
                frames = []
                for frame in _clip_frames(sprites[person], bg, seed=1000 + index):
                    if size != _BASE:
                        frame = resize(frame, (size, size), order=1, mode="edge", anti_aliasing=True)
                    frames.append(np.round(np.clip(frame, 0.0, 1.0) * 255.0).astype(np.uint8))
                yield split, f"{person}#clip{clip:02d}", np.stack(frames)
                index += 1


def sample_frames_hash(size: int = 64) -> str:
    """SHA-256 over every generated frame's bytes (split, name, pixels), independent of PNG encoding."""
    h = hashlib.sha256()
    for split, name, frames in iter_sample_videos(size):
        h.update(f"{split}/{name}\0".encode())
        h.update(frames.tobytes())
    return h.hexdigest()


def write_sample(out_dir, size: int = 64, progress: bool = False) -> Path:
    """Write the sample dataset (PNG folders, FOMM layout) into `out_dir` (created; must be empty/new)."""
    import imageio.v3 as iio
    from tqdm.auto import tqdm

    from animbench.progress import progress_options

    out = Path(out_dir)
    if out.exists() and any(out.iterdir()):
        from animbench.errors import UserError

        raise UserError(f"{out}: folder exists and is not empty; pass a new --out folder")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        total = sum(len(ids) for ids in _SPLITS.values()) * _CLIPS
        for split, name, frames in tqdm(iter_sample_videos(size), total=total, unit="clip", disable=not progress,
                                        desc=f"sample {size}x{size}", **progress_options()):
            folder = tmp / split / name
            folder.mkdir(parents=True)
            for t, frame in enumerate(frames):
                iio.imwrite(folder / f"{t:07d}.png", frame)
        (tmp / "README.txt").write_text(f"animbench sample dataset v{VERSION}, {size}x{size}; see animbench/data/sample.py\n")
        if out.exists():
            out.rmdir()
        os.replace(tmp, out)  # atomic: a half-written sample dataset is never visible
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def sample_root(size: int = 64) -> Path:
    """The cached sample dataset of `size`, generated on first use."""
    root = cache_dir() / f"sample-v{VERSION}-{size}"
    if (root / "README.txt").exists():
        return root
    root.parent.mkdir(parents=True, exist_ok=True)
    try:
        return write_sample(root, size)
    except OSError:
        if (root / "README.txt").exists():  # another process generated it concurrently
            return root
        raise
