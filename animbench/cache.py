"""Where animbench caches generated data (sample dataset, GT-side artefacts): $ANIMBENCH_CACHE or ~/.cache/animbench."""
from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    root = os.environ.get("ANIMBENCH_CACHE")
    return Path(root).expanduser() if root else Path.home() / ".cache" / "animbench"
