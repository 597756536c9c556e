"""From run directories to a summary table: one row per (run, metric column) with the estimate, the 95% CI
and, against a baseline run, the paired difference and whether its CI excludes 0.

The summary is the boundary between numbers and formatting: `reports.tables` only reads it, so tables can
also be built from published numbers (`summary_from_values`).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np
import pandas as pd

from animbench.errors import UserError
from animbench.results.store import metric_columns, open_run

DEFAULT_LABELS = {"copy-source": "Copy source", "x2face": "X2Face", "monkeynet": "Monkey-Net", "fomm": "FOMM",
                  "fomm-adv": "FOMM+", "prioritycut": "Ours", "unet": "+ U-Net", "cutmix": "+ CutMix"}
MAIN_ORDER = ["copy-source", "x2face", "monkeynet", "fomm", "fomm-adv", "prioritycut"]
LADDER_ORDER = ["fomm", "fomm-adv", "unet", "cutmix", "prioritycut"]
LADDER_LABELS = {"fomm": "FOMM", "fomm-adv": "+ Adv", "unet": "+ U-Net", "cutmix": "+ CutMix",
                 "prioritycut": "+ PriorityCut"}


@dataclass
class Run:
    path: Path
    manifest: dict
    frames: pd.DataFrame
    label_suffix: str = ""   # e.g. the test set, when a report mixes test sets on purpose

    @property
    def model(self) -> str:
        """The model, or for a checkpoint of `animbench train` its rung of the ladder (fomm ... prioritycut)."""
        return self.manifest.get("variant") or self.manifest.get("model") or str(self.frames["model"].iloc[0])

    @property
    def label(self) -> str:
        default = (LADDER_LABELS.get(self.model) if self.manifest.get("variant") else None) \
            or DEFAULT_LABELS.get(self.model, self.model)
        return (self.manifest.get("label") or default) + self.label_suffix

    @property
    def test_set(self) -> str:
        return str(self.manifest.get("dataset_manifest_hash") or "unknown")


def load_runs(paths: Sequence, allow_mixed_datasets: bool = False,
              labels: Optional[Dict[str, str]] = None) -> List[Run]:
    """The runs in `paths`; `labels` {run path or its folder name: label} relabels them for this report."""
    runs = []
    labels = dict(labels or {})
    for path in paths:
        store = open_run(path)
        manifest = store.read_manifest()
        for key in (str(path), str(Path(path)), Path(path).name):
            if key in labels:
                manifest["label"] = labels.pop(key)
                break
        runs.append(Run(Path(path), manifest, store.read_frames()))
    if labels:
        raise UserError(f"--label {next(iter(labels))}=...: no such run among the arguments; use a run directory "
                        f"as given or its folder name")
    test_sets = {r.test_set for r in runs}
    if len(test_sets) > 1:
        if not allow_mixed_datasets:
            described = "; ".join(f"{r.path}: {r.manifest.get('dataset')} {r.test_set[:12]}" for r in runs)
            raise UserError(f"the runs were evaluated on different test sets ({described}); their numbers are "
                            f"not comparable. Pass --allow-mixed-datasets to tabulate them anyway")
        for r in runs:
            r.label_suffix = f" [{r.manifest.get('dataset')} {r.test_set[:8]}]"
    labels = [r.label for r in runs]
    duplicates = sorted({l for l in labels if labels.count(l) > 1})
    if duplicates:
        raise UserError(f"two runs are both labelled {duplicates[0]!r}; pass --label when evaluating so every "
                        f"row of the table has its own name")
    return runs


def metric_meta(column: str, manifest_info: Optional[dict] = None) -> dict:
    """Direction, precision and display name of a column: the metric registry first, then the manifest."""
    from animbench.metrics import METRICS, parse_column

    base, mask, inverted = parse_column(column)
    if base in METRICS:
        spec = METRICS.get(base)
        return {"metric": base, "mask": mask, "inverted": inverted, "higher_is_better": spec.higher_is_better,
                "precision": spec.precision, "display": spec.display, "unit": spec.unit}
    info = (manifest_info or {}).get(column) or (manifest_info or {}).get(base)
    if info is None:
        raise UserError(f"column {column!r}: unknown metric (not registered and no metric_info in the run's "
                        f"manifest); cannot tell its direction")
    return {"metric": base, "mask": mask, "inverted": inverted, "higher_is_better": bool(info["higher_is_better"]),
            "precision": int(info.get("precision", 3)), "display": info.get("display", base.upper()),
            "unit": info.get("unit", "")}


POOLINGS = ("frame", "video", "native")


def summarize(runs: Sequence[Run], ci: str = "video", method: str = "percentile", n_resamples: int = 2000,
              seed: int = 0, baseline: Optional[str] = None, significance: bool = False,
              pooling: str = "frame", progress: bool = False) -> pd.DataFrame:
    """One row per (run, metric column): estimate, CI, and paired diff vs `baseline`.

    `pooling`: "frame" = mean over all frames (FOMM's protocol), "video" = mean of per-video means
    (Monkey-Net's reconstruction.py), "native" = each run as its model's authors pooled (the run manifest's
    `pooling`). A mean of video means is bootstrapped over videos whatever `ci` says (frames of a video are
    not exchangeable).
    """
    from animbench.stats import bootstrap_ci, paired_difference

    if not runs:
        raise UserError("no runs to report")
    if pooling not in POOLINGS:
        raise UserError(f"--pooling {pooling}: use one of {', '.join(POOLINGS)}")
    base_run = _find_baseline(runs, baseline) if baseline else None
    from tqdm.auto import tqdm

    from animbench.progress import progress_options

    rows = []
    total = sum(len(metric_columns(r.frames)) for r in runs)
    bar = tqdm(total=total, unit="column", desc="bootstrap", disable=not progress, **progress_options())
    for run in runs:
        info = run.manifest.get("metric_info")
        estimator = _estimator(run, pooling)
        unit = "video" if estimator == "video_mean" else ci
        for column in metric_columns(run.frames):
            meta = metric_meta(column, info)
            values = run.frames[column].to_numpy(np.float64)
            videos = run.frames["video"].to_numpy()
            r = bootstrap_ci(values, videos, unit=unit, estimator=estimator, method=method,
                             n_resamples=n_resamples, seed=seed)
            row = {"label": run.label, "model": run.model, "column": column, **meta, "estimate": r.estimate,
                   "low": r.low, "high": r.high, "half_width": r.half_width, "n_frames": r.n_frames,
                   "n_rows": int(len(values)),
                   "n_videos": r.n_videos, "ci_unit": unit, "ci_method": method, "n_resamples": n_resamples,
                   "pooling": estimator,
                   "seed": seed, "dataset": run.manifest.get("dataset")}
            if base_run is not None and run is not base_run and column in base_run.frames.columns:
                joined = run.frames[["video", "frame", column]].merge(
                    base_run.frames[["video", "frame", column]], on=["video", "frame"], suffixes=("", "_base"))
                if len(joined):
                    d = paired_difference(joined[column].to_numpy(np.float64),
                                          joined[column + "_base"].to_numpy(np.float64),
                                          joined["video"].to_numpy(), unit=unit, estimator=estimator,
                                          method=method,
                                          n_resamples=n_resamples, seed=seed)
                    row.update(diff=d.ci.estimate, diff_low=d.ci.low, diff_high=d.ci.high,
                               diff_significant=d.significant, n_paired=len(joined))
            rows.append(row)
            bar.update(1)
    bar.close()
    summary = pd.DataFrame(rows)
    mixed = len({r.test_set for r in runs}) > 1
    summary.attrs.update(ci_unit=ci, ci_method=method, n_resamples=n_resamples, seed=seed,
                         baseline=base_run.label if base_run is not None else None,
                         dataset="MIXED test sets, see each row" if mixed else runs[0].manifest.get("dataset"),
                         psnr_identical=sorted({_psnr_rule(r) for r in runs}),
                         pooling=sorted({_estimator(r, pooling) for r in runs}),
                         topk_sources=_topk_sources(runs))
    return summary


def _estimator(run: Run, pooling: str) -> str:
    if pooling == "native":
        pooling = "video" if (run.manifest.get("pooling") or "frame") == "video" else "frame"
    return "video_mean" if pooling == "video" else "pooled"


def _topk_sources(runs: Sequence[Run]) -> List[str]:
    """Whose occlusion maps defined the top-k masks of the runs (a run label when it is among them)."""
    by_path = {str(Path(r.path).resolve()): r.label for r in runs if r.path is not None}
    sources = set()
    for run in runs:
        if not any(".top" in c or ".not_top" in c for c in run.frames.columns):
            continue
        source = (run.manifest.get("identity") or {}).get("topk_from")
        if source is None:
            sources.add(run.label)
        else:
            sources.add(by_path.get(str(Path(source).resolve()), str(source)))
    return sorted(sources)


def _psnr_rule(run: Run) -> str:
    """How the run scored PSNR of identical frames (runs made before the option existed capped)."""
    return (run.manifest.get("identity") or {}).get("psnr_identical") or "cap"


def _find_baseline(runs, baseline: str) -> Run:
    for run in runs:
        if baseline in (run.label, run.model, str(run.path)):
            return run
    raise UserError(f"--baseline {baseline}: no run has that label or model (have: "
                    f"{', '.join(r.label for r in runs)})")


def summary_from_values(values: Dict[str, Dict[str, tuple]], metric_info: Optional[dict] = None,
                        models: Optional[Dict[str, str]] = None, **attrs) -> pd.DataFrame:
    """A summary from already-computed numbers: {label: {column: (estimate, half_width)}} (e.g. a paper's
    table), with the same columns `summarize` produces (no bootstrap, no paired differences)."""
    rows = []
    for label, columns in values.items():
        for column, (estimate, half_width) in columns.items():
            meta = metric_meta(column, metric_info)
            hw = np.nan if half_width is None else half_width
            rows.append({"label": label, "model": (models or {}).get(label, label), "column": column, **meta,
                         "estimate": estimate, "low": estimate - hw, "high": estimate + hw, "half_width": hw,
                         "n_frames": np.nan, "n_videos": np.nan})
    summary = pd.DataFrame(rows)
    summary.attrs.update(attrs)
    return summary
