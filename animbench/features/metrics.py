"""The pose-evaluation metrics as per-frame columns of `animbench eval`: which extractor feeds them, which
number of the comparison they are, and how tables show them.

Column names say the backend (`akd_face_fan`, `aed_face_openface`, `akd_body_openpose`, `mkr_body_openpose`,
`aed_body_reid`); tables show AKD / MKR / AED. `akd`, `aed` and `mkr` are accepted as short names: faces, or
bodies on the taichi preset.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Optional

from animbench.errors import UserError


@dataclass(frozen=True)
class FeatureMetric:
    name: str
    kind: str              # extractor: face-pose, face-id, body-pose, body-id
    value: str             # column of the comparison's per-frame table: akd, mkr, aed
    display: str
    precision: int
    unit: str = ""
    higher_is_better: bool = False

    def info(self) -> dict:
        return {"higher_is_better": self.higher_is_better, "precision": self.precision, "display": self.display,
                "unit": self.unit, "extractor": self.kind}


FEATURE_METRICS: Dict[str, FeatureMetric] = {m.name: m for m in (
    FeatureMetric("akd_face_fan", "face-pose", "akd", "AKD", 3, "px"),
    FeatureMetric("aed_face_openface", "face-id", "aed", "AED", 4),
    FeatureMetric("akd_body_openpose", "body-pose", "akd", "AKD", 3, "px"),
    FeatureMetric("mkr_body_openpose", "body-pose", "mkr", "MKR", 3),
    FeatureMetric("aed_body_reid", "body-id", "aed", "AED", 3),
)}
SHORT_NAMES = {"face": {"akd": "akd_face_fan", "aed": "aed_face_openface"},
               "body": {"akd": "akd_body_openpose", "mkr": "mkr_body_openpose", "aed": "aed_body_reid"}}


def resolve_feature_metric(name: str, dataset: Optional[str] = None) -> Optional[FeatureMetric]:
    """The feature metric `name` stands for (None for a pixel metric)."""
    if name in FEATURE_METRICS:
        return FEATURE_METRICS[name]
    if name in ("akd", "aed", "mkr"):
        family = "body" if dataset == "taichi" else "face"
        if name not in SHORT_NAMES[family]:
            raise UserError(f"--metrics {name}: MKR exists for bodies only (mkr_body_openpose, on Tai-Chi-HD)")
        return FEATURE_METRICS[SHORT_NAMES[family][name]]
    return None
