"""Per-frame metrics (pure functions) and their registry."""
from animbench.metrics.masked import apply_mask, masked
from animbench.metrics.pixel import PSNR_CAP_DB, l1, mse, psnr
from animbench.metrics.registry import (METRICS, MetricSpec, column_name, compute_frame_metrics, get_metric,
                                        parse_column, spec_for_column)
from animbench.metrics.ssim import ssim

__all__ = ["METRICS", "MetricSpec", "PSNR_CAP_DB", "apply_mask", "column_name", "compute_frame_metrics",
           "get_metric", "l1", "masked", "mse", "parse_column", "psnr", "spec_for_column", "ssim"]
