"""Plots (matplotlib, Agg; PNG and PDF; fixed size and dpi, no timestamps, so files are reproducible):
per-metric bars with 95% CI whiskers, top-k curves, and a qualitative grid like the paper's Figures 1/3/5."""
from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Dict, List, Sequence

import numpy as np
import pandas as pd

from animbench.results.store import atomic_write_bytes

FIGSIZE_BAR = (4.0, 3.0)
DPI = 100
_METADATA = {"png": {"Software": None}, "pdf": {"Creator": None, "Producer": None, "CreationDate": None}}


def _figure(figsize):
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt.figure(figsize=figsize, dpi=DPI)


def _save(fig, out: Path, formats) -> List[Path]:
    import matplotlib.pyplot as plt

    paths = []
    for fmt in formats:
        buf = io.BytesIO()
        fig.savefig(buf, format=fmt, dpi=DPI, metadata=_METADATA.get(fmt))
        path = out.with_suffix("." + fmt)
        atomic_write_bytes(path, buf.getvalue())
        paths.append(path)
    plt.close(fig)
    return paths


def _axis_name(rows: pd.DataFrame) -> str:
    """"PSNR (dB) ↑": display name, unit, direction."""
    first = rows.iloc[0]
    unit = first.get("unit") if "unit" in rows else ""
    arrow = "↑" if bool(first["higher_is_better"]) else "↓"
    return f"{first['display']}{f' ({unit})' if unit else ''} {arrow}"


def bar_plot(summary: pd.DataFrame, column: str, out: Path, formats=("png", "pdf")) -> List[Path]:
    """One bar per run with its 95% CI whiskers; the y axis is labelled, and says so when it does not start
    at zero (differences between models are small next to the values)."""
    rows = summary[summary["column"] == column]
    fig = _figure(FIGSIZE_BAR)
    ax = fig.add_subplot(1, 1, 1)
    x = np.arange(len(rows))
    lower = (rows["estimate"] - rows["low"]).to_numpy()
    upper = (rows["high"] - rows["estimate"]).to_numpy()
    ax.bar(x, rows["estimate"], yerr=np.vstack([lower, upper]), capsize=4, color="#4c72b0")
    ax.set_xticks(x, rows["label"], rotation=20, ha="right")
    name = _axis_name(rows)
    ax.set_ylabel(name)
    ax.set_title(f"{name}: mean, 95% CI", fontsize=9)
    lo = float(np.nanmin(rows["low"])) if len(rows) else 0.0
    hi = float(np.nanmax(rows["high"])) if len(rows) else 1.0
    pad = (hi - lo) * 0.3 or abs(hi) * 0.1 or 1.0
    bottom = max(0.0, lo - pad) if lo >= 0 else lo - pad
    ax.set_ylim(bottom, hi + pad)
    if bottom > 0:
        ax.text(0.01, 0.98, f"note: the axis starts at {bottom:.3g}, not 0", transform=ax.transAxes, fontsize=6,
                va="top", color="#a00")
    fig.tight_layout()
    return _save(fig, out, formats)


def _topk_points(rows: pd.DataFrame, pattern, inverted: bool):
    pts = sorted((int(m.group(2)), r["estimate"], r["low"], r["high"]) for _, r in rows.iterrows()
                 for m in [pattern.match(r["column"])] if m and bool(m.group(1)) == inverted)
    return [np.array(v, dtype=np.float64) for v in zip(*pts)] if pts else None


def _far_off(values: Dict[str, np.ndarray]) -> List[str]:
    """Models whose curves lie far outside the others' range (e.g. copy-source at the PSNR cap): they get
    a panel of their own instead of squashing the rest."""
    far = []
    for label, v in values.items():
        others = np.concatenate([o for k, o in values.items() if k != label]) if len(values) > 1 else np.array([])
        if others.size == 0:
            continue
        spread = max(float(np.ptp(others)), 1e-3 * max(1.0, float(np.abs(others).max())))
        if float(np.min(np.abs(v[:, None] - others[None, :]))) > 3 * spread:
            far.append(label)
    return far if len(far) < len(values) else []


def topk_plot(summary: pd.DataFrame, metric: str, out: Path, formats=("png", "pdf")) -> List[Path]:
    """metric vs k with 95% CI bands: solid = top-k, dashed = ¬top-k, one colour per model; models far off the
    others' scale are drawn in a separate panel above."""
    pattern = re.compile(rf"^{metric}\.(not_)?top(\d+)$")
    curves, values = {}, {}
    for label, rows in summary.groupby("label", sort=False):
        mine = {inv: _topk_points(rows, pattern, inv) for inv in (False, True)}
        if any(v is not None for v in mine.values()):
            curves[label] = mine
            values[label] = np.concatenate([v[1] for v in mine.values() if v is not None])
    meta = summary[summary["column"].str.match(pattern.pattern)]
    far = _far_off(values)
    fig = _figure((5.5, 4.6 if far else 3.8))
    if far:
        grid = fig.add_gridspec(2, 1, height_ratios=[1, 3])
        axes = {"far": fig.add_subplot(grid[0]), "main": fig.add_subplot(grid[1])}
    else:
        axes = {"main": fig.add_subplot(1, 1, 1)}
    for i, (label, mine) in enumerate(curves.items()):
        ax = axes["far"] if label in far else axes["main"]
        colour = f"C{i % 10}"
        for inverted, style in ((False, "-"), (True, "--")):
            if mine[inverted] is None:
                continue
            ks, est, low, high = mine[inverted]
            ax.plot(ks, est, style, color=colour, marker="o", markersize=3,
                    label=f"{label} {'¬top-k' if inverted else 'top-k'}")
            ax.fill_between(ks, low, high, color=colour, alpha=0.15, linewidth=0)
    name = _axis_name(meta) if len(meta) else metric.upper()
    for key, ax in axes.items():
        ax.set_ylabel(name if key == "main" else "")
        ax.legend(fontsize=6, loc="best")
    if far:
        axes["far"].set_title("separate axis: far off the others' scale", fontsize=7)
    axes["main"].set_xlabel("k (% of the foreground: most occluded pixels first)")
    sources = summary.attrs.get("topk_sources") or []
    note = "masks from the occlusion maps of " + ", ".join(sources) if sources else ""
    fig.suptitle(f"Top-k masked {metric.upper()}, 95% CI bands" + (f"\n{note}" if note else ""), fontsize=8)
    fig.tight_layout()
    return _save(fig, out, formats)


def write_plots(summary: pd.DataFrame, out_dir, formats: Sequence[str] = ("png", "pdf")) -> List[Path]:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    from animbench.reports.tables import feature_columns

    present = set(summary["column"])
    for column in [c for c in ("l1", "psnr", "ssim") if c in present] + feature_columns(present):
        paths += bar_plot(summary, column, out / f"bars-{column}", formats)
    for metric in ("psnr", "ssim"):
        if summary["column"].str.match(rf"^{metric}\.(not_)?top\d+$").any():
            paths += topk_plot(summary, metric, out / f"topk-{metric}", formats)
    return paths


def qualitative_grid(rows: List[Dict[str, np.ndarray]], columns: List[str], out_path, formats=("png", "pdf"),
                     cell_inches: float = 1.2, row_labels: Sequence[str] = (), colorbar_column: str = None
                     ) -> List[Path]:
    """A grid of images: one row per sample (labelled on the left), one column per name in `columns`.
    Images: uint8 HxWx3, or float HxW maps drawn with a colour scale in [0,1] (`colorbar_column` gets a
    colour bar under the grid)."""
    fig = _figure((cell_inches * len(columns) + 0.6, cell_inches * len(rows) + (0.9 if colorbar_column else 0.4)))
    mappable = None
    for r, images in enumerate(rows):
        for c, name in enumerate(columns):
            ax = fig.add_subplot(len(rows), len(columns), r * len(columns) + c + 1)
            image = images.get(name)
            if image is not None:
                if image.ndim == 2:
                    shown = ax.imshow(image, cmap="viridis", vmin=0, vmax=1)
                    if name == colorbar_column:
                        mappable = shown
                else:
                    ax.imshow(image)
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(name, fontsize=6)
            if c == 0 and r < len(row_labels):
                ax.set_ylabel(row_labels[r], fontsize=5)
    fig.tight_layout()
    if mappable is not None:
        fig.subplots_adjust(bottom=0.2)
        bar_ax = fig.add_axes([0.3, 0.1, 0.4, 0.025])
        fig.colorbar(mappable, cax=bar_ax, orientation="horizontal").set_label(
            f"{colorbar_column}: 1 = visible in the source, 0 = occluded", fontsize=5)
        bar_ax.tick_params(labelsize=5)
    return _save(fig, Path(out_path), formats)


def qualitative_from_runs(runs, out_path, n_rows: int = 3, k: int = 30, formats=("png", "pdf")) -> List[Path]:
    """The paper's Figure 1/3/5 from stored outputs: one row per test video (name and frame index on the left;
    the frame 60% into each video) — source, driving, every run's prediction (PNG strips), and for the first run
    with motion maps its occlusion map (with a colour bar), the PriorityCut top-k mask and the augmented image
    (prediction inside the mask, driving outside)."""
    import torch

    from animbench.data.video import open_video
    from animbench.masks import prioritycut_mask

    with_png = [r for r in runs if r.path is not None and (Path(r.path) / "png").is_dir()]
    if not with_png:
        return []
    shared = set.intersection(*[set(r.frames["video"]) for r in with_png])
    root = with_png[0].manifest.get("dataset_manifest", {}).get("root")
    if not shared or root is None:
        return []
    videos = sorted(shared)[:n_rows]
    maps_run = next((r for r in with_png if all((Path(r.path) / "maps" / f"{v}.npz").exists() for v in videos)),
                    None)
    columns = ["source", "driving"] + [r.label for r in with_png]
    occ_name = f"occlusion ({maps_run.label})" if maps_run is not None else None
    if maps_run is not None:
        columns += [occ_name, f"PriorityCut mask (k={k})", "augmented"]
    rows, labels = [], []
    for video_name in videos:
        gt = open_video(Path(root) / "test" / video_name).read_all()
        t = max(1, min(gt.shape[0] - 1, round(0.6 * (gt.shape[0] - 1))))
        h, w = gt.shape[1:3]
        strips = {r.label: open_video(Path(r.path) / "png" / f"{video_name}.png", frame_shape=(h, w)).read_all()
                  for r in with_png}
        row = {"source": gt[0], "driving": gt[t], **{label: s[t] for label, s in strips.items()}}
        if maps_run is not None:
            with np.load(Path(maps_run.path) / "maps" / f"{video_name}.npz") as maps:
                occ = torch.from_numpy(maps["occlusion"][t:t + 1].astype(np.float32))[:, None]
                bg = torch.from_numpy(maps["background"][t:t + 1].astype(np.float32))[:, None]
            mask = prioritycut_mask(occ, bg, k, size=(h, w))[0, 0].numpy()
            row[occ_name] = torch.nn.functional.interpolate(occ, size=(h, w), mode="bilinear",
                                                            align_corners=False)[0, 0].numpy()
            row[f"PriorityCut mask (k={k})"] = mask
            row["augmented"] = np.where(mask[..., None] > 0, strips[maps_run.label][t], gt[t])
        rows.append(row)
        labels.append(f"{video_name}\nframe {t}")
    return qualitative_grid(rows, columns, out_path, formats, row_labels=labels, colorbar_column=occ_name)
