"""Feature scorers of `animbench eval`: AKD / MKR / AED per frame, exactly as pose-evaluation computes them.

For each requested feature metric the run holds one extractor (loaded once). Per video the predictions are
kept as the uint8 frames pose-evaluation would read from the PNG strips (floor(255·x), the same bytes), the
extractor runs on them, the ground truth's features come from the per-dataset cache (computed once per
dataset content + extractor + weights, shared by every model's run), and the comparison functions of
`animbench.features.compare` give the per-frame values: NaN where a detection is missing, with flag columns
`flag_<kind>_missing_gt` / `flag_<kind>_missing_gen`.
"""
from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np
import pandas as pd

from animbench.errors import UserError
from animbench.features.metrics import FeatureMetric


class FeatureScorers:
    def __init__(self, metrics: Sequence[FeatureMetric], weights: Dict[str, Path], device: str = "cpu",
                 options: Optional[Dict[str, dict]] = None):
        from animbench.features.registry import load_extractor

        self.metrics = list(metrics)
        self.kinds = sorted({m.kind for m in self.metrics})
        options = options or {}
        self.extractors = {}
        for kind in self.kinds:
            self.extractors[kind] = load_extractor(kind, weights=weights.get(kind), device=device,
                                                   weights_option=f"--weights {kind}=", **options.get(kind, {}))

    def describe(self) -> dict:
        return {kind: ex.describe() for kind, ex in self.extractors.items()}

    def identity(self) -> dict:
        """What changes the numbers (weights hashes, options) — part of the run key."""
        return {kind: {k: v for k, v in ex.describe().items() if k != "weights"} for kind, ex in
                self.extractors.items()}

    def score_video(self, dataset, video, predictions_uint8: np.ndarray) -> Dict[str, np.ndarray]:
        from animbench.features.compare import compare_result

        columns: Dict[str, np.ndarray] = {}
        for kind, extractor in self.extractors.items():
            gt_values = gt_features(dataset, video, extractor)
            gen_values = extractor.extract(predictions_uint8)
            if len(gen_values) != len(gt_values):
                raise UserError(f"video {video.name!r}: {len(gen_values)} predicted frames, {len(gt_values)} in "
                                f"the ground truth")
            n = len(gt_values)
            gt = pd.DataFrame({"file_name": [video.name] * n, "frame_number": np.arange(n), "value": gt_values})
            gen = pd.DataFrame({"file_name": [video.name] * n, "frame_number": np.arange(n), "value": gen_values})
            result = compare_result(gt, gen, kind).frames.sort_values("frame_number")
            for metric in self.metrics:
                if metric.kind == kind:
                    columns[metric.name] = result[metric.value].to_numpy(np.float64)
            stem = kind.replace("-", "_")
            columns[f"flag_{stem}_missing_gt"] = result["gt_missing"].to_numpy(np.int8)
            columns[f"flag_{stem}_missing_gen"] = result["gen_missing"].to_numpy(np.int8)
            if kind == "body-pose":  # for count_missing.py's number (see count_missing_gt)
                columns["flag_body_pose_gt_joints_missing"] = (18 - result["joints_gt"]).to_numpy(np.int8)
        return columns


def _extractor_key(extractor) -> str:
    described = extractor.describe()
    stable = {k: v for k, v in described.items() if k != "weights"}
    return hashlib.sha256(json.dumps(stable, sort_keys=True, default=str).encode()).hexdigest()[:16]


def gt_features(dataset, video, extractor, cache_root: Optional[Path] = None) -> List:
    """The ground-truth features of `video`, cached per dataset content + extractor + weights + options."""
    from animbench.cache import cache_dir
    from animbench.data.manifest import manifest_hash
    from animbench.features.pickles import read_features, write_features

    root = Path(cache_root) if cache_root else cache_dir() / "gt"
    key = hashlib.sha1(video.name.encode()).hexdigest()[:16]
    path = root / manifest_hash(dataset) / f"features-{extractor.kind}-{_extractor_key(extractor)}" / f"{key}.pkl"
    if path.exists():
        try:
            table = read_features(path)
            if len(table) == video.num_frames:
                return list(table.sort_values("frame_number")["value"])
        except UserError:
            pass
        print(f"animbench: note: the cached ground-truth features {path} are unreadable; recomputing them",
              file=sys.stderr)
    values = extractor.extract(video.read_all())
    table = pd.DataFrame({"file_name": [video.name] * len(values), "frame_number": np.arange(len(values)),
                          "value": values})
    path.parent.mkdir(parents=True, exist_ok=True)
    write_features(table, path)
    return values


def count_missing_gt(frames: pd.DataFrame):
    """pose-evaluation's count_missing.py on the ground truth: the mean number of missing joints per frame over
    the frames numbered below 32, all videos pooled (None without body-pose columns)."""
    from animbench.features.compare import COUNT_MISSING_FRAMES

    if "flag_body_pose_gt_joints_missing" not in frames:
        return None
    chosen = frames[frames["frame"] < COUNT_MISSING_FRAMES]["flag_body_pose_gt_joints_missing"]
    return float(chosen.mean()) if len(chosen) else None
