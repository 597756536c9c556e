"""tqdm settings shared by every progress bar: live on a terminal, sparse in logs (no carriage-return spam)."""
from __future__ import annotations

import sys


def progress_options() -> dict:
    if sys.stderr.isatty():
        return {"mininterval": 0.1}
    return {"mininterval": 30.0, "maxinterval": 60.0, "ascii": True}
