"""Paper-style tables from a summary (see summary.py): the PriorityCut paper's layouts.

- `main` (Tables 2/3): L1 | PSNR All/Salient/¬Salient | SSIM All/Salient/¬Salient | AKD | MKR | AED
- `compact` (Tables 1/4): L1 | PSNR | SSIM | AKD | MKR | AED
- `ablation` (Table 5): the main columns, rows in ladder order (FOMM, + Adv, + U-Net, + CutMix, + PriorityCut)
- `topk` (Tables A2–A4): k = 10…50, cells "top-k / ¬top-k", PSNR and SSIM as two separate tables

A column appears only when some run has it. Per column: bold = best, underlined = second best (ranked on the
printed values, so visibly tied cells share the mark); with a baseline, the other rows are marked better
(green / ▲) or worse (red / ▼) — with `significance`, only where the paired bootstrap CI excludes 0.
As in the paper, PSNR half-widths of the main/ablation tables and all half-widths of the top-k tables go
into the caption instead of the cells.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

import numpy as np
import pandas as pd

from animbench.errors import UserError
from animbench.reports.formatting import format_half_width, format_value, latex_escape, pm_style
from animbench.reports.summary import DEFAULT_LABELS, LADDER_LABELS, LADDER_ORDER, MAIN_ORDER

LAYOUTS = ("main", "compact", "ablation", "topk")
MASK_NAMES = {None: "All", "salient": "Salient"}


@dataclass
class Column:
    key: str            # summary column, e.g. "psnr.not_salient"
    group: str          # "PSNR"
    sub: str            # "¬Salient" ("" for single columns)
    metric: str
    higher_is_better: bool
    precision: int
    pm_in_cell: bool


def _columns(summary: pd.DataFrame, layout: str) -> List[List[Column]]:
    """Tables (one for every layout but topk, which has PSNR and SSIM) as lists of columns."""
    meta = summary.drop_duplicates("column").set_index("column")
    present = set(meta.index)

    def col(key, group, sub, pm_in_cell=True, precision=None):
        m = meta.loc[key]
        return Column(key, group, sub, m["metric"], bool(m["higher_is_better"]),
                      int(precision if precision is not None else m["precision"]), pm_in_cell)

    if layout == "topk":
        tables = []
        for metric in ("psnr", "ssim"):
            ks = sorted({int(re.match(r"top(\d+)$", m).group(1)) for c in present
                         for m in [c.split(".", 1)[1].replace("not_", "") if "." in c else ""]
                         if c.startswith(metric + ".") and re.match(r"top(\d+)$", m)})
            cols = []
            for k in ks:
                for inverted in (False, True):
                    key = f"{metric}.{'not_' if inverted else ''}top{k}"
                    if key in present:  # the paper prints SSIM with 4 decimals in the top-k tables
                        cols.append(col(key, f"{k}%", "¬top-k" if inverted else "top-k", pm_in_cell=False,
                                        precision=4 if metric == "ssim" else None))
            if cols:
                tables.append(cols)
        if not tables:
            raise UserError("--table topk: the runs have no top-k columns; evaluate with --masks topk")
        return tables
    cols = []
    if "l1" in present:
        cols.append(col("l1", "L1", ""))
    for metric, display in (("psnr", "PSNR"), ("ssim", "SSIM")):
        masked = layout != "compact"
        keys = [(metric, "All"), (f"{metric}.salient", "Salient"), (f"{metric}.not_salient", "¬Salient")]
        keys = [k for k in keys if k[0] in present and (masked or "." not in k[0])]
        single = len(keys) == 1
        for key, sub in keys:
            pm_in_cell = not (metric == "psnr" and layout in ("main", "ablation"))
            cols.append(col(key, display, "" if single else sub, pm_in_cell))
    for key in feature_columns(present):
        cols.append(col(key, meta.loc[key]["display"], ""))
    if not cols:
        raise UserError(f"--table {layout}: the runs have none of its columns (l1, psnr, ssim, akd, mkr, aed)")
    return [cols]


def feature_columns(present) -> List[str]:
    """AKD, MKR, AED columns in the paper's order (`akd`, or backend-explicit names like `akd_face_fan`)."""
    return [c for metric in ("akd", "mkr", "aed") for c in sorted(present)
            if "." not in c and (c == metric or c.startswith(metric + "_"))]


def _rows(summary: pd.DataFrame, layout: str) -> List[Tuple[str, str]]:
    """(label in summary, display label) in the layout's order."""
    runs = summary.drop_duplicates("label")[["label", "model"]].values.tolist()
    order = LADDER_ORDER if layout == "ablation" else MAIN_ORDER
    ranked = sorted(enumerate(runs), key=lambda x: (order.index(x[1][1]) if x[1][1] in order else len(order), x[0]))
    rows = []
    for _, (label, model) in ranked:
        shown = label
        if layout == "ablation" and model in LADDER_LABELS and label == DEFAULT_LABELS.get(model, model):
            shown = LADDER_LABELS[model]
        rows.append((label, shown))
    return rows


def _cells(summary, columns, rows, baseline, significance):
    """Plain text cells, half-widths and marks {best, second, better, worse, ''} per (row, column)."""
    index = summary.set_index(["label", "column"])
    text, marks, hws = {}, {}, {}
    for c in columns:
        shown = {}
        present = [label for label, _ in rows if (label, c.key) in index.index]
        finite = [index.loc[(label, c.key)]["half_width"] for label in present]
        finite = [h for h in finite if np.isfinite(h) and h > 0]
        column_hw = min(finite) if finite else None  # decimals are uniform down a column, as in the paper
        for label, _ in rows:
            if (label, c.key) not in index.index:
                text[label, c.key], marks[label, c.key] = "–", ""
                continue
            r = index.loc[(label, c.key)]
            if not np.isfinite(r["estimate"]):  # no frame scored (e.g. no detection anywhere): no number, no mark
                text[label, c.key], marks[label, c.key] = "–", ""
                continue
            hw = r["half_width"] if np.isfinite(r["half_width"]) else None
            value = format_value(r["estimate"], c.precision, column_hw)
            hws[label, c.key] = hw
            pm = format_half_width(hw, pm_style(c.metric)) if c.pm_in_cell and hw is not None else ""
            text[label, c.key] = f"{value} ± {pm}" if pm else value
            shown[label] = float(value)
            marks[label, c.key] = ""
        distinct = sorted(set(shown.values()), reverse=c.higher_is_better)
        for label, v in shown.items():
            if v == distinct[0]:
                marks[label, c.key] = "best"
            elif len(distinct) > 1 and v == distinct[1]:
                marks[label, c.key] = "second"
        if baseline is not None and (baseline, c.key) in index.index:
            base = index.loc[(baseline, c.key)]["estimate"]
            for label, v in shown.items():
                if label == baseline:
                    continue
                r = index.loc[(label, c.key)]
                if significance and not bool(r.get("diff_significant", False)):
                    continue
                if r["estimate"] != base:  # a cell can be best (or second) AND better (or worse): both marks
                    side = "better" if (r["estimate"] > base) == c.higher_is_better else "worse"
                    marks[label, c.key] = "+".join(m for m in (marks[label, c.key], side) if m)
    return text, marks, hws


def table_frame(summary: pd.DataFrame, layout: str = "main", baseline: Optional[str] = None,
                significance: bool = False, which: int = 0) -> pd.DataFrame:
    """The table as a DataFrame of cell strings (MultiIndex columns: group, sub); marks in `.attrs['marks']`."""
    if layout not in LAYOUTS:
        raise UserError(f"--table {layout}: use one of {', '.join(LAYOUTS)}")
    columns = _columns(summary, layout)[which]
    rows = _rows(summary, layout)
    text, marks, _ = _cells(summary, columns, rows, baseline, significance)
    frame = pd.DataFrame([[text[label, c.key] for c in columns] for label, _ in rows],
                         index=[shown for _, shown in rows],
                         columns=pd.MultiIndex.from_tuples([(c.group, c.sub) for c in columns]))
    frame.attrs["marks"] = pd.DataFrame([[marks[label, c.key] for c in columns] for label, _ in rows],
                                        index=frame.index, columns=frame.columns)
    return frame


def _caption(summary, layout, columns, rows, hws, title) -> str:
    a = summary.attrs
    parts = [title]
    n_frames = summary["n_frames"].max() if "n_frames" in summary else np.nan
    n_videos = summary["n_videos"].max() if "n_videos" in summary else np.nan
    if a.get("ci_unit"):
        what = "frames (i.i.d.)" if a["ci_unit"] == "frame" else "videos (cluster bootstrap)"
        parts.append(f"± = 95% CI half-width, {a.get('ci_method', 'percentile')} bootstrap over {what}, "
                     f"{a.get('n_resamples')} resamples, seed {a.get('seed')}.")
    if np.isfinite(n_frames):
        parts.append(f"{int(n_videos)} video{'s' if int(n_videos) != 1 else ''}, {int(n_frames)} frames"
                     + (f" ({a['dataset']})." if a.get("dataset") else "."))
    moved = [c for c in columns if not c.pm_in_cell]
    if moved:
        groups = {}
        for c in moved:
            worst = max((hws.get((label, c.key)) or 0) for label, _ in rows)
            shown = format_half_width(worst, pm_style(c.metric))
            groups.setdefault(c.group, []).append(f"{c.sub} {shown}" if c.sub else shown)
        parts.append("Largest ± per column: " + "; ".join(f"{g}: {', '.join(v)}" for g, v in groups.items()) + ".")
    pooling = a.get("pooling") or []
    if "video_mean" in pooling:
        parts.append("Estimates: the mean of per-video means (Monkey-Net's protocol)" if len(pooling) == 1 else
                     "Estimates: each model's own protocol (frame-pooled mean, or mean of per-video means for "
                     "Monkey-Net)")
        parts[-1] += "; CIs over videos for those rows." if a.get("ci_unit") == "frame" else "."
    rules = a.get("psnr_identical")
    if rules and any(c.metric == "psnr" for c in columns):
        said = {"cap": "capped at 100 dB", "skip": "left out"}
        parts.append("PSNR of frames identical to the ground truth: " + " / ".join(said.get(r, r) for r in rules)
                     + ("." if len(rules) == 1 else " (runs differ!)."))
    if "n_rows" in summary:
        for c in columns:
            part = summary[summary["column"] == c.key]
            missing = (part["n_rows"] - part["n_frames"]).fillna(0)
            if c.key in feature_columns([c.key]) and missing.sum() > 0:
                parts.append(f"{c.group}: frames without a detection are left out ({int(missing.sum())} of "
                             f"{int(part['n_rows'].sum())}, {100 * missing.sum() / part['n_rows'].sum():.1f}%).")
    if any(c.metric == "ssim" for c in columns):
        parts.append("SSIM: scikit-image defaults (7×7 uniform window, sample covariance, RGB mean).")
    if any(c.key.count(".") for c in columns):
        parts.append("Masked metrics compare M⊙prediction with M⊙ground truth over the full frame.")
    return " ".join(parts)


def make_table(summary: pd.DataFrame, layout: str = "main", fmt: str = "markdown", baseline: Optional[str] = None,
               significance: bool = False) -> str:
    if layout not in LAYOUTS:
        raise UserError(f"--table {layout}: use one of {', '.join(LAYOUTS)}")
    if fmt not in ("markdown", "latex"):
        raise UserError(f"--format {fmt}: use markdown or latex")
    baseline = _baseline_label(summary, baseline)
    out = []
    for which, columns in enumerate(_columns(summary, layout)):
        rows = _rows(summary, layout)
        text, marks, hws = _cells(summary, columns, rows, baseline, significance)
        title = {"main": "Reconstruction", "compact": "Reconstruction", "ablation": "Ablation",
                 "topk": f"Top-k masked {columns[0].metric.upper()} (top-k / ¬top-k)"}[layout]
        caption = _caption(summary, layout, columns, rows, hws, title + ".")
        render = _markdown if fmt == "markdown" else _latex
        out.append(render(columns, rows, text, marks, caption, baseline, layout))
    return "\n\n".join(out) + "\n"


def _baseline_label(summary, baseline):
    if baseline is None:
        return None
    runs = summary.drop_duplicates("label")
    for label, model in runs[["label", "model"]].values:
        if baseline in (label, model):
            return label
    raise UserError(f"--baseline {baseline}: no run has that label or model (have: {', '.join(runs['label'])})")


def _arrow(c: Column, latex: bool) -> str:
    if latex:
        return r"$\uparrow$" if c.higher_is_better else r"$\downarrow$"
    return "↑" if c.higher_is_better else "↓"


def _pairs(columns: List[Column], layout: str):
    """top-k tables pair the top-k / ¬top-k columns of each k into one "a / b" cell."""
    if layout != "topk":
        return [[c] for c in columns]
    groups: Dict[str, List[Column]] = {}
    for c in columns:
        groups.setdefault(c.group, []).append(c)
    return list(groups.values())


def _markdown(columns, rows, text, marks, caption, baseline, layout) -> str:
    def deco(label, c):
        t, parts = text[label, c.key], marks[label, c.key].split("+")
        t = f"**{t}**" if "best" in parts else f"<u>{t}</u>" if "second" in parts else t
        return f"{t} ▲" if "better" in parts else f"{t} ▼" if "worse" in parts else t

    cells = _pairs(columns, layout)
    header = ["Model"]
    for group in cells:
        c = group[0]
        if layout == "topk":
            header.append(f"{c.group} (top-k / ¬top-k) {_arrow(c, False)}")
        else:
            header.append(f"{c.group} {_arrow(c, False)}" + (f" {c.sub}" if c.sub else ""))
    lines = [f"**{caption}**", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for label, shown in rows:
        lines.append("| " + " | ".join([shown.replace("|", "\\|")] + [" / ".join(deco(label, c) for c in g)
                                                                       for g in cells]) + " |")
    legend = "**bold**: best, <u>underlined</u>: second best"
    if baseline is not None:
        legend += f"; ▲ / ▼: better / worse than {baseline}"
    return "\n".join(lines + ["", legend + "."])


def _latex(columns, rows, text, marks, caption, baseline, layout) -> str:
    def deco(label, c):
        t = text[label, c.key].replace("±", r"$\pm$").replace("–", "--")
        parts = marks[label, c.key].split("+")
        t = rf"\textbf{{{t}}}" if "best" in parts else rf"\underline{{{t}}}" if "second" in parts else t
        if "better" in parts:
            return rf"\textcolor{{green!50!black}}{{{t}}}"
        return rf"\textcolor{{red}}{{{t}}}" if "worse" in parts else t

    cells = _pairs(columns, layout)
    spec = "l" + "c" * len(cells)
    top, sub, rules = ["Model"], [""], []
    i = 0
    while i < len(cells):
        c = cells[i][0]
        if layout == "topk":
            top.append(latex_escape(c.group))
            sub.append("top-k / $\\neg$top-k")
            i += 1
            continue
        span = 1
        while i + span < len(cells) and cells[i + span][0].group == c.group and c.sub:
            span += 1
        head = f"{latex_escape(c.group)} {_arrow(c, True)}"
        if span > 1:
            top.append(rf"\multicolumn{{{span}}}{{c}}{{{head}}}")
            rules.append(rf"\cmidrule(lr){{{i + 2}-{i + span + 1}}}")
            sub += [latex_escape(cells[j][0].sub).replace("¬", r"$\neg$") for j in range(i, i + span)]
        else:
            top.append(head)
            sub.append("")
        i += span
    body = [" & ".join([latex_escape(shown)] + [" / ".join(deco(label, c) for c in g) for g in cells]) + r" \\"
            for label, shown in rows]
    lines = [r"\begin{table}[t]", r"\centering",
             r"\caption{" + latex_escape(caption).replace("±", r"$\pm$").replace("¬", r"$\neg$")
             .replace("⊙", r"$\odot$").replace("×", r"$\times$") + "}",
             r"\begin{tabular}{" + spec + "}", r"\toprule", " & ".join(top) + r" \\"]
    if rules:
        lines.append(" ".join(rules))
    if any(sub[1:]):
        lines.append(" & ".join(sub) + r" \\")
    lines += [r"\midrule"] + body + [r"\bottomrule", r"\end{tabular}", r"\end{table}"]
    return "\n".join(lines)
