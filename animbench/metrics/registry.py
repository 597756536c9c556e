"""Metric registry: name -> MetricSpec (function + direction + display precision), and column naming.

Per-frame table columns are `<metric>` or `<metric>.<mask>` / `<metric>.not_<mask>` for the masked
variants (e.g. `psnr.salient`, `ssim.not_top10`); `parse_column` inverts `column_name`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Dict, Iterable, Optional, Tuple

import torch

from animbench.metrics.masked import masked
from animbench.metrics.pixel import l1, psnr
from animbench.metrics.ssim import _ssim_from_moments, full_moments, ssim, ssim_mask_pair
from animbench.registry import Registry


@dataclass(frozen=True)
class MetricSpec:
    name: str
    fn: Callable
    higher_is_better: bool
    precision: int          # decimals shown in tables (the paper's: L1 4, PSNR 2, SSIM 3)
    display: str
    maskable: bool
    unit: str = ""
    description: str = ""


METRICS: Registry = Registry("metric")
METRICS.register("l1", MetricSpec("l1", l1, False, 4, "L1", False, "",
                                  "mean |pred - gt| over C·H·W per frame, [0,1] range (FOMM)"))
METRICS.register("psnr", MetricSpec("psnr", psnr, True, 2, "PSNR", True, "dB",
                                    "per-frame PSNR, data range 1; identical frames capped at 100 dB or skipped"))
METRICS.register("ssim", MetricSpec("ssim", ssim, True, 3, "SSIM", True, "",
                                    "skimage SSIM (7x7 uniform, sample covariance), mean over RGB"))


def get_metric(name: str) -> MetricSpec:
    return METRICS.get(name)


def column_name(metric: str, mask: Optional[str] = None, inverted: bool = False) -> str:
    if mask is None:
        return metric
    if "." in mask or mask.startswith("not_"):
        raise ValueError(f"invalid mask name {mask!r}")
    return f"{metric}.{'not_' if inverted else ''}{mask}"


def parse_column(column: str) -> Tuple[str, Optional[str], bool]:
    metric, _, mask = column.partition(".")
    if not mask:
        return metric, None, False
    if mask.startswith("not_"):
        return metric, mask[4:], True
    return metric, mask, False


def spec_for_column(column: str) -> MetricSpec:
    return get_metric(parse_column(column)[0])


def compute_frame_metrics(pred: torch.Tensor, gt: torch.Tensor, metrics: Iterable[str] = ("l1", "psnr", "ssim"),
                          masks: Optional[Dict[str, torch.Tensor]] = None, masked_fill: str = "zeros",
                          cpu_chunk: int = 1, exact: bool = False, **opts) -> Dict[str, torch.Tensor]:
    """Every requested metric per frame; maskable ones also for each mask and its inversion.

    On CPU the default is the fast suite (metrics/fast.py: float32 box sums in the sum/difference basis with a
    float64 fallback for the frames where float32 could drift; within ~1e-7 of scikit-image for SSIM and 1e-10 dB
    for PSNR, >10x a scikit-image loop). `exact=True` (and every other device or option) takes the float64 path
    below, equal to scikit-image to 1e-12: memory-bound, fastest one frame at a time on CPU (`cpu_chunk`).
    """
    if not exact and fast_path_applies(pred, metrics, masked_fill, opts):
        from animbench.metrics.fast import fast_frame_metrics

        return fast_frame_metrics(pred, gt, metrics, masks, identical=opts.get("identical", "cap"),
                                  cap=opts.get("cap", 100.0), data_range=opts.get("data_range", 1.0))
    if pred.device.type == "cpu" and pred.shape[0] > cpu_chunk:
        parts = [compute_frame_metrics(pred[i:i + cpu_chunk], gt[i:i + cpu_chunk], metrics,
                                       {k: v[i:i + cpu_chunk] for k, v in masks.items()} if masks else None,
                                       masked_fill, cpu_chunk=cpu_chunk, exact=True, **opts)
                 for i in range(0, pred.shape[0], cpu_chunk)]
        return {k: torch.cat([p[k] for p in parts]) for k in parts[0]}
    pred, gt = pred.double(), gt.double()
    out: Dict[str, torch.Tensor] = {}
    for name in metrics:
        spec = get_metric(name)
        kwargs = {k: v for k, v in opts.items() if k in _OPTIONS.get(name, ())}
        if name == "ssim" and masks and masked_fill == "zeros":
            # shared filtered moments: the mask and its inversion cost one filtering pass together
            moments = full_moments(pred, gt, kwargs.get("convention", "skimage"))
            out["ssim"] = _ssim_from_moments(*moments, *_ssim_constants(pred, kwargs))
            for mask_name, mask in masks.items():
                pair = ssim_mask_pair(pred, gt, mask, full_moments=moments, **kwargs)
                out[column_name(name, mask_name)], out[column_name(name, mask_name, True)] = pair
            continue
        out[column_name(name)] = spec.fn(pred, gt, **kwargs)
        if masks and spec.maskable:
            for mask_name, mask in masks.items():
                for inverted in (False, True):
                    out[column_name(name, mask_name, inverted)] = masked(
                        spec.fn, pred, gt, mask, inverted=inverted, masked_fill=masked_fill, **kwargs)
    return out


def fast_path_applies(pred: torch.Tensor, metrics: Iterable[str], masked_fill: str, opts: dict) -> bool:
    """The fast suite covers L1/PSNR/skimage-SSIM with zero-filled masks on CPU (CUDA: the tested float64 path)."""
    return (pred.device.type == "cpu" and masked_fill == "zeros" and opts.get("convention", "skimage") == "skimage"
            and set(metrics) <= {"l1", "psnr", "ssim"})


def _ssim_constants(pred, kwargs):
    from animbench.metrics.ssim import _window

    _, _, cov_norm = _window(kwargs.get("convention", "skimage"), torch.float64, pred.device)
    n, c = pred.shape[:2]
    return cov_norm, kwargs.get("data_range", 1.0), n, c


#: which keyword options each metric takes (e.g. ssim_convention -> convention)
_OPTIONS = {"psnr": ("data_range", "cap", "identical"), "ssim": ("convention", "data_range")}
