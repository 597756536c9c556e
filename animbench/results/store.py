"""The results store of one run.

Layout of a run directory::

    manifest.json        provenance: command, resolved config, checkpoint sha256, versions, dataset hash, ...
    parts/<i>.parquet    per-frame metrics of one video each, written as the run goes (resume = skip done videos)
    frames.parquet       all parts in one tidy table (model, dataset, video, frame, <metric columns>),
                         written by `finalize()`; readers fall back to the parts while a run is unfinished

Every file is written to a temporary name in the same directory and renamed, so an interrupted run never
leaves a half-written file behind. Estimators and CIs are computed from the per-frame table, never stored
instead of it.
"""
from __future__ import annotations

import datetime as _dt
import hashlib
import io
import json
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Dict, List, Optional

import pandas as pd

from animbench.errors import UserError

KEY_COLUMNS = ["model", "dataset", "video", "frame"]
MANIFEST = "manifest.json"
FRAMES = "frames.parquet"
PARTS = "parts"


def _file_mode() -> int:
    """0666 minus the umask: what `open()` would give (mkstemp's 0600 is too private for results)."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def atomic_write_bytes(path: os.PathLike, data: bytes) -> None:
    """Write `data` to `path` via a temp file in the same directory and an atomic rename."""
    path = Path(path)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, _file_mode())
        os.replace(tmp, path)
    except BaseException as e:
        if tmp is not None:
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass
        if isinstance(e, OSError) and e.filename is None:  # e.g. ENOSPC from write(): name the file
            e.filename = str(path)
        raise


def atomic_write_json(path: os.PathLike, obj) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n").encode())


def _parquet_bytes(df: pd.DataFrame) -> bytes:
    buf = io.BytesIO()
    df.to_parquet(buf, index=False)
    return buf.getvalue()


def file_sha256(path: os.PathLike, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def _git_revision() -> Optional[str]:
    """The animbench source's git revision when it runs from a checkout (None for an installed wheel)."""
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(["git", "-C", str(here), "rev-parse", "HEAD"], capture_output=True, text=True,
                             timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def package_versions() -> Dict[str, str]:
    from importlib import metadata

    versions = {"python": platform.python_version()}
    for name in ("animbench", "torch", "numpy", "scipy", "pandas", "pyarrow", "scikit-image", "imageio",
                 "opencv-python", "face-alignment", "pooch", "pymatting"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return versions


def build_manifest(kind: str, *, config: dict, seed: Optional[int] = None, dataset_manifest_hash: str = None,
                   checkpoint: Optional[os.PathLike] = None, extra: Optional[dict] = None) -> dict:
    """The provenance block every run writes (command line, config, versions, hashes, seed, start time)."""
    manifest = {
        "kind": kind,
        "animbench_version": package_versions().get("animbench"),
        "command": [os.path.basename(sys.argv[0])] + sys.argv[1:],
        "config": config,
        "seed": seed,
        "dataset_manifest_hash": dataset_manifest_hash,
        "checkpoint": None,
        "versions": package_versions(),
        "git_revision": _git_revision(),
        "platform": platform.platform(),
        "started": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
    if checkpoint is not None:
        manifest["checkpoint"] = {"path": str(checkpoint), "sha256": file_sha256(checkpoint)}
    if extra:
        manifest.update(extra)
    return manifest


class RunStore:
    """Reads and writes one run directory (see the module docstring for the layout)."""

    def __init__(self, root: os.PathLike):
        self.root = Path(root)

    # -- manifest -------------------------------------------------------------------------------------------
    @property
    def manifest_path(self) -> Path:
        return self.root / MANIFEST

    def has_manifest(self) -> bool:
        return self.manifest_path.exists()

    def read_manifest(self) -> dict:
        try:
            return json.loads(self.manifest_path.read_text())
        except FileNotFoundError:
            raise UserError(f"{self.root}: not a run directory (no {MANIFEST}); pass a directory written by "
                            f"`animbench eval` or `animbench reconstruct`") from None
        except json.JSONDecodeError as e:
            raise UserError(f"{self.manifest_path}: corrupt JSON ({e.msg}); delete the run directory and "
                            f"run again") from None

    def write_manifest(self, manifest: dict) -> None:
        atomic_write_json(self.manifest_path, manifest)

    def update_manifest(self, **fields) -> dict:
        manifest = self.read_manifest() if self.has_manifest() else {}
        manifest.update(fields)
        self.write_manifest(manifest)
        return manifest

    # -- per-video parts ------------------------------------------------------------------------------------
    def _part_path(self, video: str) -> Path:
        # Video names contain '#', '.', spaces: hash them for a safe, stable file name.
        return self.root / PARTS / (hashlib.sha1(video.encode()).hexdigest()[:16] + ".parquet")

    def write_video(self, frames: pd.DataFrame) -> None:
        """Store the per-frame rows of ONE video (atomically; replaces an earlier part of that video)."""
        missing = [c for c in KEY_COLUMNS if c not in frames.columns]
        if missing:
            raise ValueError(f"per-frame table lacks key columns {missing}")
        videos = frames["video"].unique()
        if len(videos) != 1:
            raise ValueError(f"write_video takes one video's rows, got {len(videos)} videos")
        atomic_write_bytes(self._part_path(str(videos[0])), _parquet_bytes(frames.reset_index(drop=True)))

    def has_video(self, video: str) -> bool:
        return self._part_path(video).exists()

    def done_videos(self) -> List[str]:
        return sorted(set(self.read_frames()["video"])) if self._any_frames() else []

    def has_any_video(self) -> bool:
        """Whether at least one video finished (a part or the final table exists)."""
        return self._any_frames()

    def _any_frames(self) -> bool:
        return (self.root / FRAMES).exists() or any((self.root / PARTS).glob("*.parquet"))

    # -- the tidy table -------------------------------------------------------------------------------------
    def read_frames(self) -> pd.DataFrame:
        """The per-frame table: the parts if any exist (they are the newest), else frames.parquet."""
        parts = sorted((self.root / PARTS).glob("*.parquet"))
        if parts:
            df = pd.concat([_read_part(p) for p in parts], ignore_index=True)
        elif (self.root / FRAMES).exists():
            df = _read_part(self.root / FRAMES, remedy="delete the run directory and evaluate again")
        else:
            raise UserError(f"{self.root}: run has no per-frame results yet; run `animbench eval` first")
        return df.sort_values(["video", "frame"], kind="stable").reset_index(drop=True)

    def check_parts(self) -> None:
        """Fail early (before new work) when a finished video's part is unreadable."""
        import pyarrow.parquet as pq

        for part in sorted((self.root / PARTS).glob("*.parquet")):
            try:
                pq.read_metadata(part)
            except Exception:
                _read_part(part)  # raises the one-line error

    def finalize(self) -> Path:
        """Write frames.parquet from the parts (atomically) and return its path. Parts stay for resuming."""
        df = self.read_frames()
        atomic_write_bytes(self.root / FRAMES, _parquet_bytes(df))
        return self.root / FRAMES


def _read_part(path: Path, remedy: str = "delete this file and rerun the same command: it recomputes that "
                                             "video") -> pd.DataFrame:
    try:
        return pd.read_parquet(path)
    except Exception as e:  # pyarrow raises ArrowInvalid/OSError for truncated or foreign files
        raise UserError(f"{path}: unreadable results file ({type(e).__name__}; truncated or corrupt); "
                        f"{remedy}") from None


def open_run(path: os.PathLike) -> RunStore:
    store = RunStore(path)
    if not store.root.is_dir():
        raise UserError(f"{path}: run directory does not exist; pass the --out directory of an eval run")
    return store


#: per-frame flag columns (e.g. `flag_face_pose_missing_gt`: no detection in the ground truth) are not metrics
FLAG_PREFIX = "flag_"


def metric_columns(df: pd.DataFrame) -> List[str]:
    """The metric columns of a per-frame table (everything but the key and flag columns)."""
    return [c for c in df.columns if c not in KEY_COLUMNS and not str(c).startswith(FLAG_PREFIX)]
