"""Numbers the way the PriorityCut paper prints them.

- the ± half-width has ONE significant digit: `9e-5`, `4e-4`, `6e-2` in e-notation, except PSNR whose ±
  is printed as a decimal (`0.02`, `0.1`) — the paper's Tables 1–5 and A2–A4 follow exactly this;
- the value has the metric's precision, but never more decimals than the first significant digit of the
  SMALLEST ± in its column, so a column prints uniformly (BAIR PSNR `24.8 ± 0.1`, Tai-Chi AKD `6.87 ± 6e-2`
  against Vox AKD `1.290 ± 2e-3`, and Vox AED `0.3664 ± 2e-3` next to `0.1324 ± 6e-4`).
"""
from __future__ import annotations

import math
from typing import Optional


def round_half_width(hw: float) -> Optional[float]:
    """hw rounded to one significant digit (None when missing)."""
    if hw is None or not math.isfinite(hw):
        return None
    if hw <= 0:
        return 0.0
    exponent = math.floor(math.log10(hw))
    mantissa = round(hw / 10 ** exponent)
    if mantissa == 10:
        mantissa, exponent = 1, exponent + 1
    return mantissa * 10.0 ** exponent


def hw_decimals(hw: Optional[float]) -> Optional[int]:
    if hw is None or hw <= 0:
        return None
    return max(0, -math.floor(math.log10(hw) + 1e-9))


def value_decimals(precision: int, hw: Optional[float]) -> int:
    d = hw_decimals(round_half_width(hw) if hw is not None else None)
    return precision if d is None else min(precision, d)


def format_value(value: float, precision: int, hw: Optional[float] = None) -> str:
    if value is None or not math.isfinite(value):
        return "–"
    return f"{value:.{value_decimals(precision, hw)}f}"


def format_half_width(hw: Optional[float], style: str = "sci") -> str:
    r = round_half_width(hw)
    if r is None:
        return ""
    if r == 0:
        return "0"
    exponent = math.floor(math.log10(r) + 1e-9)
    mantissa = int(round(r / 10 ** exponent))
    if style == "decimal":
        return f"{r:.{max(0, -exponent)}f}"
    return f"{mantissa}e{exponent}" if exponent < 0 else f"{mantissa}e+{exponent}"


def pm_style(metric: str) -> str:
    return "decimal" if metric == "psnr" else "sci"


def latex_escape(text: str) -> str:
    for a, b in (("\\", r"\textbackslash{}"), ("&", r"\&"), ("%", r"\%"), ("$", r"\$"), ("#", r"\#"),
                 ("_", r"\_"), ("{", r"\{"), ("}", r"\}"), ("~", r"\textasciitilde{}"), ("^", r"\^{}")):
        text = text.replace(a, b)
    return text
