"""Metric registry: name -> MetricSpec (function + direction + display precision), and column naming.

Per-frame table columns are `<metric>` or `<metric>.<mask>` / `<metric>.not_<mask>` for the masked
variants (e.g. `psnr.salient`, `ssim.not_top10`); `parse_column` inverts `column_name`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Dict, Iterable, Optional, Tuple

import torch

from animbench.errors import UserError
from animbench.metrics.masked import masked
from animbench.metrics.pixel import l1, psnr
from animbench.metrics.ssim import ssim
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
                                    "per-frame PSNR, data range 1, capped at 100 dB"))
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
                          **opts) -> Dict[str, torch.Tensor]:
    """Every requested metric per frame; maskable ones also for each mask and its inversion."""
    pred, gt = pred.double(), gt.double()
    out: Dict[str, torch.Tensor] = {}
    for name in metrics:
        spec = get_metric(name)
        kwargs = {k: v for k, v in opts.items() if k in _OPTIONS.get(name, ())}
        out[column_name(name)] = spec.fn(pred, gt, **kwargs)
        if masks and spec.maskable:
            for mask_name, mask in masks.items():
                for inverted in (False, True):
                    out[column_name(name, mask_name, inverted)] = masked(
                        spec.fn, pred, gt, mask, inverted=inverted, masked_fill=masked_fill, **kwargs)
    return out


#: which keyword options each metric takes (e.g. ssim_convention -> convention)
_OPTIONS = {"psnr": ("data_range", "cap"), "ssim": ("convention", "data_range")}
