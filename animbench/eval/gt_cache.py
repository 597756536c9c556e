"""Ground-truth-side artefacts, computed once per dataset and shared by every model's evaluation.

Keyed by the dataset manifest hash (content of the test set), so a changed dataset never reuses stale
masks: `<cache>/gt/<manifest hash>/salient-<backend>-<matting>/<video hash>.npy` (float32 alpha, (T,H,W)).
"""
from __future__ import annotations

import hashlib
import io
import sys
from pathlib import Path
from typing import Optional

import numpy as np

from animbench.cache import cache_dir
from animbench.results.store import atomic_write_bytes


def _video_key(name: str) -> str:
    return hashlib.sha1(name.encode()).hexdigest()[:16]


def salient_masks_for_video(dataset, video, backend: str = "builtin", folder: Optional[Path] = None,
                            cache_root: Optional[Path] = None, matting: str = "feather") -> np.ndarray:
    """(T,H,W) float32 salient alpha masks of `video`'s ground-truth frames (cached for computed backends)."""
    from animbench.data.manifest import manifest_hash
    from animbench.masks.salient import make_salient_backend

    impl = make_salient_backend(backend, folder=folder, matting=matting)
    if backend == "folder":  # user-provided masks: read them, nothing to cache
        return impl.masks_for_video(video)
    root = Path(cache_root) if cache_root else cache_dir() / "gt"
    path = root / manifest_hash(dataset) / f"salient-{backend}-{matting}" / f"{_video_key(video.name)}.npy"
    if path.exists():
        try:
            cached = np.load(path)
            if cached.shape[0] == video.num_frames:
                return cached
        except (OSError, ValueError, EOFError):
            pass
        print(f"animbench: note: the cached salient masks {path} are unreadable; recomputing them",
              file=sys.stderr)
    masks = np.concatenate([impl.masks(chunk) for chunk in video.iter_chunks(32)]).astype(np.float32)
    buf = io.BytesIO()
    np.save(buf, masks)
    atomic_write_bytes(path, buf.getvalue())
    return masks
