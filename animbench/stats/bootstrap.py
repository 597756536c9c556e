"""Bootstrap confidence intervals over per-frame values.

- `unit="frame"`: frames resampled i.i.d. — what the PriorityCut paper's ± implies (parity mode). Frames of
  one video are strongly correlated, so this under-covers as a statement about other test sets.
- `unit="video"`: cluster bootstrap, videos resampled with replacement; the resampled statistic equals the
  point estimator — `pooled` (Σ frame values / Σ frames over the resampled videos, a ratio estimator) or
  `video_mean` (mean of per-video means).

Percentile and BCa intervals (BCa's acceleration from the jackknife over the resampling units, in closed
form for these linear/ratio statistics). Seeded with numpy's Generator; vectorised: frame-unit resamples are
drawn in chunks, video-unit resamples as multinomial counts over videos.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Optional, Tuple

import numpy as np
from scipy.special import ndtr, ndtri

_CHUNK_ELEMENTS = 8_000_000  # indices drawn at once for frame-unit resampling (~64 MB of int64)


@dataclass
class CIResult:
    estimate: float
    low: float
    high: float
    half_width: float
    unit: str
    method: str
    n_resamples: int
    confidence: float
    seed: int
    estimator: str
    n_frames: int
    n_videos: int

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class PairedResult:
    ci: CIResult            # CI of the mean difference a − b
    significant: bool       # the CI excludes 0
    direction: int          # sign of the difference when significant, else 0

    def to_dict(self) -> dict:
        return {**self.ci.to_dict(), "significant": self.significant, "direction": self.direction}


def _prepare(values, videos) -> Tuple[np.ndarray, Optional[np.ndarray]]:
    values = np.asarray(values, dtype=np.float64).ravel()
    keep = np.isfinite(values)  # dropped frames (e.g. no detection) are NaN and excluded
    codes = None
    if videos is not None:
        videos = np.asarray(videos).ravel()
        if videos.shape != values.shape:
            raise ValueError("values and videos must have the same length")
        _, codes = np.unique(videos[keep], return_inverse=True)
    return values[keep], codes


def _frame_distribution(values: np.ndarray, n_resamples: int, rng: np.random.Generator) -> np.ndarray:
    n = values.size
    per_chunk = max(1, _CHUNK_ELEMENTS // max(n, 1))
    out = np.empty(n_resamples)
    for start in range(0, n_resamples, per_chunk):
        stop = min(n_resamples, start + per_chunk)
        idx = rng.integers(0, n, size=(stop - start, n), dtype=np.int32 if n < 2**31 else np.int64)
        out[start:stop] = values[idx].mean(axis=1)
    return out


def _video_sums(values: np.ndarray, codes: np.ndarray):
    n_videos = codes.max() + 1
    sums = np.bincount(codes, weights=values, minlength=n_videos)
    counts = np.bincount(codes, minlength=n_videos).astype(np.float64)
    return sums, counts


def _video_distribution(sums, counts, estimator, n_resamples, rng) -> np.ndarray:
    n_videos = sums.size
    weights = rng.multinomial(n_videos, np.full(n_videos, 1.0 / n_videos), size=n_resamples).astype(np.float64)
    if estimator == "pooled":
        return (weights @ sums) / (weights @ counts)
    return (weights @ (sums / counts)) / n_videos


def _jackknife(values, codes, unit, estimator) -> np.ndarray:
    """Leave-one-unit-out estimates (closed forms)."""
    if unit == "frame":
        return (values.sum() - values) / (values.size - 1)
    sums, counts = _video_sums(values, codes)
    if estimator == "pooled":
        return (sums.sum() - sums) / (counts.sum() - counts)
    means = sums / counts
    return (means.sum() - means) / (means.size - 1)


def _interval(dist, estimate, jack, method, confidence) -> Tuple[float, float]:
    alpha = (1 - confidence) / 2
    if method == "percentile":
        lo, hi = np.quantile(dist, [alpha, 1 - alpha])
        return float(lo), float(hi)
    if method != "bca":
        raise ValueError(f"method must be 'percentile' or 'bca', got {method!r}")
    frac = (np.sum(dist < estimate) + 0.5 * np.sum(dist == estimate)) / dist.size
    if frac <= 0 or frac >= 1:  # degenerate (e.g. constant data): fall back to the percentile interval
        return _interval(dist, estimate, jack, "percentile", confidence)
    z0 = ndtri(frac)
    d = jack.mean() - jack
    denom = 6.0 * np.sum(d ** 2) ** 1.5
    a = np.sum(d ** 3) / denom if denom > 0 else 0.0
    qs = []
    for z_alpha in (ndtri(alpha), ndtri(1 - alpha)):
        qs.append(ndtr(z0 + (z0 + z_alpha) / (1 - a * (z0 + z_alpha))))
    lo, hi = np.quantile(dist, qs)
    return float(lo), float(hi)


def bootstrap_ci(values, videos=None, unit: str = "frame", estimator: str = "pooled", method: str = "percentile",
                 n_resamples: int = 2000, confidence: float = 0.95, seed: int = 0) -> CIResult:
    """Point estimate and bootstrap CI of per-frame `values` (NaN = dropped frame)."""
    if unit not in ("frame", "video"):
        raise ValueError(f"unit must be 'frame' or 'video', got {unit!r}")
    if estimator not in ("pooled", "video_mean"):
        raise ValueError(f"estimator must be 'pooled' or 'video_mean', got {estimator!r}")
    if unit == "video" and videos is None:
        raise ValueError("unit='video' needs the video of every frame")
    if unit == "frame" and estimator == "video_mean":
        raise ValueError("the video_mean estimator needs unit='video' (frames of a video are not exchangeable)")
    values, codes = _prepare(values, videos)
    n_videos = int(codes.max() + 1) if codes is not None and codes.size else 0
    if values.size == 0:
        nan = float("nan")
        return CIResult(nan, nan, nan, nan, unit, method, n_resamples, confidence, seed, estimator, 0, n_videos)
    rng = np.random.default_rng(seed)
    if unit == "frame":
        estimate = float(values.mean())
        dist = _frame_distribution(values, n_resamples, rng)
    else:
        sums, counts = _video_sums(values, codes)
        estimate = float(sums.sum() / counts.sum()) if estimator == "pooled" else float(np.mean(sums / counts))
        dist = _video_distribution(sums, counts, estimator, n_resamples, rng)
    n_units = values.size if unit == "frame" else n_videos
    if n_units < 2:
        lo = hi = estimate
    else:
        lo, hi = _interval(dist, estimate, _jackknife(values, codes, unit, estimator), method, confidence)
    return CIResult(estimate, lo, hi, (hi - lo) / 2, unit, method, n_resamples, confidence, seed, estimator,
                    int(values.size), n_videos)


def paired_difference(a, b, videos=None, unit: str = "frame", estimator: str = "pooled",
                      method: str = "percentile", n_resamples: int = 2000, confidence: float = 0.95,
                      seed: int = 0) -> PairedResult:
    """CI of the mean of a − b over the same frames (paired: both runs resampled together)."""
    a = np.asarray(a, dtype=np.float64).ravel()
    b = np.asarray(b, dtype=np.float64).ravel()
    if a.shape != b.shape:
        raise ValueError("paired values must be aligned frame by frame (same length)")
    ci = bootstrap_ci(a - b, videos=videos, unit=unit, estimator=estimator, method=method,
                      n_resamples=n_resamples, confidence=confidence, seed=seed)
    significant = bool(ci.low > 0 or ci.high < 0)
    return PairedResult(ci, significant, int(np.sign(ci.estimate)) if significant else 0)
