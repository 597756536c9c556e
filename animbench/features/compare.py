"""pose-evaluation's comparison arithmetic (AKD, MKR, AED) as pure functions on two feature tables.

Checked against AliaksandrSiarohin/pose-evaluation at commit 1bc4cae (``cmp_kp.py``, ``cmp.py``,
``cmp_with_missing.py``, ``count_missing.py``); the headline numbers equal what those scripts print,
to the last bit where both run the same numpy (the parity fixtures in tests/data/pose_evaluation).

Row matching (all three scripts): each table is sorted by (``file_name``, ``frame_number``) on the
*full* file name, then rows are paired by position; the pair must agree on the file-name stem, the text
before the first ``.`` (``x.mp4`` matches ``x.mp4.png``), and on ``frame_number``, otherwise the
comparison stops with a :class:`UserError` naming the first disagreeing row. ``cmp.py`` and
``cmp_with_missing.py`` require both tables to have the same number of rows; ``cmp_kp.py`` walks the
ground-truth rows only, so extra generated rows sorting after them are ignored (counted in
``rows_unmatched_generated``). A (file_name, frame_number) pair that appears twice in one table is
refused (upstream would pair such rows in an order that depends on the sort).

Averaging: every headline number is the plain mean over frames of a per-frame score (frame-weighted,
all videos pooled), in the sorted row order; there is no per-video averaging upstream. Per-video means
are given here as extra information only.

Where pose-evaluation crashes, this module skips and counts instead:

* face AKD: a ground-truth frame with no face (``None``) is skipped and counted in
  ``frames_missing_gt``; upstream raises on ``None - array`` (unless the generated value is also None,
  which upstream skips first);
* AED: a None on either side is skipped and counted (upstream raises);
* body AKD/MKR: None means "no joint detected", i.e. the all ``-1`` array extract.py writes in that
  case, so it is handled exactly like that array.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from animbench.errors import UserError
from animbench.features.pickles import validate_features

#: cmp_with_missing.py divides by 18 - (missing GT joints): the OpenPose COCO-18 joint count, hard-coded.
BODY_JOINTS = 18
#: count_missing.py looks only at frames numbered below this.
COUNT_MISSING_FRAMES = 32

KINDS = ("face-pose", "face-id", "body-pose", "body-id")


@dataclass
class ComparisonResult:
    """What one comparison found.

    ``akd``/``mkr``/``aed`` are the headline numbers as pose-evaluation prints them (None where that
    metric does not apply, or where no frame could be scored: upstream prints ``nan`` there).
    ``frames`` has one row per matched frame (sorted order); ``videos`` one row per ground-truth video.
    """

    kind: str
    akd: float | None = None
    mkr: float | None = None
    aed: float | None = None
    frames_scored: int = 0
    frames_missing_generated: int = 0
    frames_missing_gt: int = 0
    frames_scored_mkr: int | None = None
    rows_unmatched_generated: int = 0
    frames: pd.DataFrame = field(default_factory=pd.DataFrame, repr=False)
    videos: pd.DataFrame = field(default_factory=pd.DataFrame, repr=False)

    def to_dict(self) -> dict:
        """The headline numbers and counts, JSON-serialisable (floats, ints, None)."""
        out: dict = {}
        if self.kind in ("face-pose", "body-pose"):
            out["akd"] = self.akd
        if self.kind == "body-pose":
            out["mkr"] = self.mkr
        if self.kind in ("face-id", "body-id"):
            out["aed"] = self.aed
        out["frames_scored"] = int(self.frames_scored)
        out["frames_missing_generated"] = int(self.frames_missing_generated)
        out["frames_missing_gt"] = int(self.frames_missing_gt)
        if self.frames_scored_mkr is not None:
            out["frames_scored_mkr"] = int(self.frames_scored_mkr)
        return out


# --- matching ---------------------------------------------------------------------------------------

def _stem(file_name: str) -> str:
    return file_name.split(".")[0]


def _prepare(df, label: str) -> tuple[pd.DataFrame, str]:
    where = label
    if isinstance(df, pd.DataFrame):
        source = df.attrs.get("source")
        if source:
            where = f"{source} ({label})"
    table = validate_features(df, where)
    order = sorted(range(len(table)), key=lambda i: (table["file_name"].iat[i], table["frame_number"].iat[i]))
    table = table.iloc[order].reset_index(drop=True)
    keys = list(zip(table["file_name"], table["frame_number"]))
    for a, b in zip(keys, keys[1:]):
        if a == b:
            raise UserError(f"{where}: file_name {a[0]!r} frame {a[1]} appears more than once; each frame must "
                            f"appear once, as extract.py writes it; re-extract the features")
    return table, where


def _match(gt, gen, *, equal_rows: bool, gt_label: str, gen_label: str):
    """Pair rows as pose-evaluation does; returns (gt table, gen table, unmatched generated rows)."""
    gt_t, gt_where = _prepare(gt, gt_label)
    gen_t, gen_where = _prepare(gen, gen_label)
    n_gt, n_gen = len(gt_t), len(gen_t)
    if (equal_rows and n_gt != n_gen) or n_gen < n_gt:
        raise UserError(f"{gen_where}: has {n_gen} frames but {gt_where} has {n_gt}; both must list the same "
                        f"videos and frames; extract both from matching folders")
    for i in range(n_gt):
        gt_name, gen_name = gt_t["file_name"].iat[i], gen_t["file_name"].iat[i]
        gt_frame, gen_frame = gt_t["frame_number"].iat[i], gen_t["frame_number"].iat[i]
        if _stem(gt_name) != _stem(gen_name) or gt_frame != gen_frame:
            raise UserError(
                f"{gen_where}: sorted row {i} is {gen_name!r} frame {gen_frame} but {gt_where} has {gt_name!r} "
                f"frame {gt_frame}; rows are paired by file-name stem (text before the first '.') and frame "
                f"number after sorting, so both must list the same videos and frames")
    return gt_t, gen_t.iloc[:n_gt].reset_index(drop=True), n_gen - n_gt


def _check_same_shape(g: np.ndarray, p: np.ndarray, gt_t, gen_t, i: int):
    if g.shape != p.shape:
        raise UserError(f"generated features: {gen_t['file_name'].iat[i]!r} frame {gen_t['frame_number'].iat[i]} "
                        f"has a value of shape {p.shape} but the ground truth ({gt_t['file_name'].iat[i]!r}) has "
                        f"{g.shape}; extract both with the same --type")


def _mean_or_none(scores: list) -> float | None:
    if not scores:
        return None
    return float(np.mean(np.asarray(scores, dtype=np.float64)))


def _frame_table(gt_t, gen_t, columns: dict) -> pd.DataFrame:
    frames = pd.DataFrame({"file_name": gt_t["file_name"].astype(object),
                           "file_name_generated": gen_t["file_name"].astype(object),
                           "frame_number": gt_t["frame_number"].astype(np.int64)})
    for name, values in columns.items():
        frames[name] = values
    return frames


def _video_table(frames: pd.DataFrame, metrics: list[str], scored: dict[str, str]) -> pd.DataFrame:
    rows = []
    for name, group in frames.groupby("file_name", sort=False):
        row = {"file_name": name, "frames": int(len(group))}
        for metric in metrics:
            row[f"frames_scored_{metric}" if len(metrics) > 1 else "frames_scored"] = int(group[scored[metric]].sum())
            values = group[metric].dropna()
            row[metric] = float(values.mean()) if len(values) else float("nan")
        rows.append(row)
    columns = ["file_name", "frames"] + [c for m in metrics
                                         for c in ((f"frames_scored_{m}" if len(metrics) > 1 else "frames_scored"), m)]
    return pd.DataFrame(rows, columns=columns)


# --- the three comparisons --------------------------------------------------------------------------

def compare_face_pose(gt, gen, *, gt_label: str = "ground truth", gen_label: str = "generated") -> ComparisonResult:
    """Face AKD as ``cmp_kp.py``: per frame the mean |gt - gen| over all landmark coordinates.

    The difference is taken in the arrays' own dtype, then converted to float64 and averaged over all
    68x2 coordinates (an L1 per coordinate in pixels, not a Euclidean distance); AKD is the mean of
    those per-frame values over scored frames. A frame whose generated value is None is skipped
    (upstream does the same); a ground-truth None is skipped and counted here (upstream crashes).
    """
    gt_t, gen_t, unmatched = _match(gt, gen, equal_rows=False, gt_label=gt_label, gen_label=gen_label)
    n = len(gt_t)
    akd = np.full(n, np.nan)
    gt_missing = np.zeros(n, bool)
    gen_missing = np.zeros(n, bool)
    scores = []
    for i in range(n):
        g, p = gt_t["value"].iat[i], gen_t["value"].iat[i]
        gen_missing[i] = p is None
        gt_missing[i] = g is None
        if p is None or g is None:
            continue
        _check_same_shape(g, p, gt_t, gen_t, i)
        score = np.mean(np.abs(g - p).astype(np.float64))
        akd[i] = score
        scores.append(score)
    scored = ~(gt_missing | gen_missing)
    frames = _frame_table(gt_t, gen_t, {"akd": akd, "gt_missing": gt_missing, "gen_missing": gen_missing,
                                        "scored": scored})
    return ComparisonResult(
        kind="face-pose", akd=_mean_or_none(scores), frames_scored=int(scored.sum()),
        frames_missing_generated=int(gen_missing.sum()), frames_missing_gt=int(gt_missing.sum()),
        rows_unmatched_generated=unmatched, frames=frames,
        videos=_video_table(frames, ["akd"], {"akd": "scored"}))


def _compare_embeddings(gt, gen, kind: str, gt_label: str, gen_label: str) -> ComparisonResult:
    gt_t, gen_t, unmatched = _match(gt, gen, equal_rows=True, gt_label=gt_label, gen_label=gen_label)
    n = len(gt_t)
    aed = np.full(n, np.nan)
    gt_missing = np.zeros(n, bool)
    gen_missing = np.zeros(n, bool)
    scores = []
    for i in range(n):
        g, p = gt_t["value"].iat[i], gen_t["value"].iat[i]
        gen_missing[i] = p is None
        gt_missing[i] = g is None
        if p is None or g is None:
            continue
        _check_same_shape(g, p, gt_t, gen_t, i)
        score = np.sum(np.abs(g - p).astype(np.float64) ** 2)
        aed[i] = score
        scores.append(score)
    scored = ~(gt_missing | gen_missing)
    frames = _frame_table(gt_t, gen_t, {"aed": aed, "gt_missing": gt_missing, "gen_missing": gen_missing,
                                        "scored": scored})
    return ComparisonResult(
        kind=kind, aed=_mean_or_none(scores), frames_scored=int(scored.sum()),
        frames_missing_generated=int(gen_missing.sum()), frames_missing_gt=int(gt_missing.sum()),
        rows_unmatched_generated=unmatched, frames=frames,
        videos=_video_table(frames, ["aed"], {"aed": "scored"}))


def compare_embeddings(gt, gen, *, kind: str = "face-id", gt_label: str = "ground truth",
                       gen_label: str = "generated") -> ComparisonResult:
    """AED as ``cmp.py``: per frame the *squared* Euclidean distance sum((gt - gen)^2), then the mean.

    The difference is taken in the arrays' own dtype (float32 embeddings: a float32 difference),
    then squared and summed in float64. Both tables must have the same number of rows. A None on
    either side is skipped and counted (upstream crashes). ``kind`` (face-id or body-id) only labels
    the result.
    """
    kind = _normalise_kind(kind)
    if kind not in ("face-id", "body-id"):
        raise UserError(f"kind {kind}: compare_embeddings scores face-id or body-id features")
    return _compare_embeddings(gt, gen, kind, gt_label, gen_label)


def _body_missing(value, n_joints: int) -> np.ndarray:
    if value is None:
        return np.ones(n_joints, bool)
    return value[:, 0] == -1


def _check_body_value(value, table, i: int, label: str):
    if value is not None and (value.ndim != 2 or value.shape[0] != BODY_JOINTS or value.shape[1] < 1):
        raise UserError(f"{label} features: {table['file_name'].iat[i]!r} frame {table['frame_number'].iat[i]} has "
                        f"a value of shape {value.shape}; body-pose values are ({BODY_JOINTS}, 2) joint arrays "
                        f"with -1 for a missing joint (extract.py --type body_pose)")


def compare_body_pose(gt, gen, *, gt_label: str = "ground truth", gen_label: str = "generated") -> ComparisonResult:
    """Body AKD and MKR as ``cmp_with_missing.py``.

    A joint is missing where its x coordinate is -1. Per frame:

    * AKD_t = mean |gt - gen| over both coordinates of the joints present in both, computed only
      when at least one joint is present in both;
    * MKR_t = (joints present in GT but missing in generated) / (18 - joints missing in GT),
      computed only when the ground truth has at least one joint.

    AKD and MKR are the means of AKD_t and MKR_t over the frames where each was computed (two
    different frame sets). None counts as "no joint detected" (all -1).
    """
    gt_t, gen_t, unmatched = _match(gt, gen, equal_rows=True, gt_label=gt_label, gen_label=gen_label)
    n = len(gt_t)
    akd, mkr = np.full(n, np.nan), np.full(n, np.nan)
    joints = {k: np.zeros(n, np.int64) for k in ("joints_gt", "joints_generated", "joints_both", "joints_lost")}
    akd_scores, mkr_scores = [], []
    for i in range(n):
        g, p = gt_t["value"].iat[i], gen_t["value"].iat[i]
        _check_body_value(g, gt_t, i, "ground-truth")
        _check_body_value(p, gen_t, i, "generated")
        if g is not None and p is not None:
            _check_same_shape(g, p, gt_t, gen_t, i)
        missing_gt = _body_missing(g, BODY_JOINTS)
        missing_gen = _body_missing(p, BODY_JOINTS)
        present = ~missing_gt & ~missing_gen
        lost = ~missing_gt & missing_gen
        present_gt = BODY_JOINTS - int(missing_gt.sum())
        joints["joints_gt"][i] = present_gt
        joints["joints_generated"][i] = int((~missing_gen).sum())
        joints["joints_both"][i] = int(present.sum())
        joints["joints_lost"][i] = int(lost.sum())
        if present_gt != 0:
            mkr[i] = int(lost.sum()) / present_gt
            mkr_scores.append(mkr[i])
        if present.any():
            score = np.mean(np.abs(g[present] - p[present]).astype(np.float64))
            akd[i] = score
            akd_scores.append(score)
    scored = ~np.isnan(akd)
    scored_mkr = ~np.isnan(mkr)
    gt_missing = joints["joints_gt"] == 0
    gen_missing = joints["joints_generated"] == 0
    frames = _frame_table(gt_t, gen_t, {"akd": akd, "mkr": mkr, **joints, "gt_missing": gt_missing,
                                        "gen_missing": gen_missing, "scored": scored, "scored_mkr": scored_mkr})
    return ComparisonResult(
        kind="body-pose", akd=_mean_or_none(akd_scores), mkr=_mean_or_none(mkr_scores),
        frames_scored=int(scored.sum()), frames_scored_mkr=int(scored_mkr.sum()),
        frames_missing_generated=int(gen_missing.sum()), frames_missing_gt=int(gt_missing.sum()),
        rows_unmatched_generated=unmatched, frames=frames,
        videos=_video_table(frames, ["akd", "mkr"], {"akd": "scored", "mkr": "scored_mkr"}))


def count_missing(df, *, label: str = "features") -> float | None:
    """``count_missing.py``: mean number of missing joints (x == -1) per frame, frames numbered < 32 only.

    All videos are pooled (frame-weighted). None counts as 18 missing joints. Returns None when no
    frame is numbered below 32 (upstream prints nan).
    """
    table, where = _prepare(df, label)
    counts = []
    for i in range(len(table)):
        if table["frame_number"].iat[i] >= COUNT_MISSING_FRAMES:
            continue
        value = table["value"].iat[i]
        _check_body_value(value, table, i, label)
        counts.append(int(_body_missing(value, BODY_JOINTS).sum()))
    return _mean_or_none(counts)


# --- dispatch ---------------------------------------------------------------------------------------

def _normalise_kind(kind: str) -> str:
    norm = str(kind).strip().lower().replace("_", "-")
    if norm not in KINDS:
        raise UserError(f"kind {kind!r}: unknown; use one of {', '.join(KINDS)} (underscores also accepted)")
    return norm


def compare_result(gt, gen, kind: str, *, gt_label: str = "ground truth",
                   gen_label: str = "generated") -> ComparisonResult:
    """Dispatch to the comparison for ``kind`` (face-pose, face-id, body-pose, body-id) and return it whole."""
    kind = _normalise_kind(kind)
    if kind == "face-pose":
        return compare_face_pose(gt, gen, gt_label=gt_label, gen_label=gen_label)
    if kind == "body-pose":
        return compare_body_pose(gt, gen, gt_label=gt_label, gen_label=gen_label)
    return _compare_embeddings(gt, gen, kind, gt_label, gen_label)


def compare(gt, gen, kind: str, *, gt_label: str = "ground truth", gen_label: str = "generated") -> dict:
    """Score ``gen`` against ``gt`` as pose-evaluation does for ``kind``; a JSON-serialisable dict.

    Keys: ``akd`` (face-pose, body-pose), ``mkr`` (body-pose), ``aed`` (face-id, body-id),
    ``frames_scored``, ``frames_missing_generated``, ``frames_missing_gt`` and, for body-pose,
    ``frames_scored_mkr``. Undefined numbers (no frame scored) are None.
    """
    return compare_result(gt, gen, kind, gt_label=gt_label, gen_label=gen_label).to_dict()
