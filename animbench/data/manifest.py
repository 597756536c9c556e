"""Test-set manifests: video names, frame counts and content hashes, so every result says what it measured.

The per-video hash covers the file bytes (every frame file of a folder, in order, with its name), which is
cheap (no decoding) and changes when any pixel does. Manifests are cached per (path, size, mtime).
"""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Dict, Tuple

_CACHE: Dict[Tuple, dict] = {}


def _video_files(video):
    from animbench.data.video import _frame_files

    return _frame_files(video.path) if video.kind == "frames" else [video.path]


def _video_fingerprint(video) -> Tuple:
    return tuple((str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in _video_files(video))


def video_sha256(video) -> str:
    h = hashlib.sha256()
    for p in _video_files(video):
        h.update(p.name.encode() + b"\0")
        with open(p, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()


def video_entry(video) -> dict:
    key = ("video", _video_fingerprint(video))
    if key not in _CACHE:
        _CACHE[key] = {"name": video.name, "frames": int(video.num_frames), "sha256": video_sha256(video)}
    return _CACHE[key]


def videos_hash(videos) -> str:
    """One hash over the sorted (name, frames, sha256) entries: the identity of a test set."""
    digest = hashlib.sha256()
    for v in videos:
        digest.update(f"{v['name']}\0{v['frames']}\0{v['sha256']}\n".encode())
    return digest.hexdigest()


def dataset_manifest(dataset) -> dict:
    videos = [video_entry(v) for v in dataset.videos]
    return {"name": dataset.name, "root": str(Path(dataset.root).resolve()), "split": dataset.split,
            "frame_size": list(dataset.frame_size), "num_videos": len(videos),
            "num_frames": int(sum(v["frames"] for v in videos)), "videos": videos, "hash": videos_hash(videos)}


def manifest_hash(dataset) -> str:
    return dataset_manifest(dataset)["hash"]
