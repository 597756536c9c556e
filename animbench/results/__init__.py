"""Results store: one tidy per-frame table per run plus a JSON manifest (see store.py)."""
from animbench.results.store import (
    KEY_COLUMNS,
    RunStore,
    atomic_write_bytes,
    atomic_write_json,
    build_manifest,
    file_sha256,
    open_run,
)

__all__ = [
    "KEY_COLUMNS",
    "RunStore",
    "atomic_write_bytes",
    "atomic_write_json",
    "build_manifest",
    "file_sha256",
    "open_run",
]
