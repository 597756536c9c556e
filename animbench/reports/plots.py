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


def bar_plot(summary: pd.DataFrame, column: str, out: Path, formats=("png", "pdf")) -> List[Path]:
    rows = summary[summary["column"] == column]
    fig = _figure(FIGSIZE_BAR)
    ax = fig.add_subplot(1, 1, 1)
    x = np.arange(len(rows))
    lower = (rows["estimate"] - rows["low"]).to_numpy()
    upper = (rows["high"] - rows["estimate"]).to_numpy()
    ax.bar(x, rows["estimate"], yerr=np.vstack([lower, upper]), capsize=4, color="#4c72b0")
    ax.set_xticks(x, rows["label"], rotation=20, ha="right")
    arrow = "↑" if bool(rows["higher_is_better"].iloc[0]) else "↓"
    ax.set_title(f"{column} {arrow} (95% CI)")
    lo = float(np.nanmin(rows["low"])) if len(rows) else 0.0
    hi = float(np.nanmax(rows["high"])) if len(rows) else 1.0
    pad = (hi - lo) * 0.3 or abs(hi) * 0.1 or 1.0
    ax.set_ylim(max(0.0, lo - pad) if lo >= 0 else lo - pad, hi + pad)
    fig.tight_layout()
    return _save(fig, out, formats)


def topk_plot(summary: pd.DataFrame, metric: str, out: Path, formats=("png", "pdf")) -> List[Path]:
    """metric vs k: solid = top-k, dashed = ¬top-k, one colour per model."""
    fig = _figure((5.0, 3.5))
    ax = fig.add_subplot(1, 1, 1)
    pattern = re.compile(rf"^{metric}\.(not_)?top(\d+)$")
    for i, (label, rows) in enumerate(summary.groupby("label", sort=False)):
        colour = f"C{i % 10}"
        for inverted, style in ((False, "-"), (True, "--")):
            pts = sorted((int(m.group(2)), r["estimate"]) for _, r in rows.iterrows()
                         for m in [pattern.match(r["column"])] if m and bool(m.group(1)) == inverted)
            if pts:
                ks, values = zip(*pts)
                ax.plot(ks, values, style, color=colour, marker="o", markersize=3,
                        label=f"{label} {'¬top-k' if inverted else 'top-k'}")
    ax.set_xlabel("k (%)")
    ax.set_ylabel(metric.upper())
    ax.legend(fontsize=6)
    fig.tight_layout()
    return _save(fig, out, formats)


def write_plots(summary: pd.DataFrame, out_dir, formats: Sequence[str] = ("png", "pdf")) -> List[Path]:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for column in ("l1", "psnr", "ssim", "akd", "mkr", "aed"):
        if column in set(summary["column"]):
            paths += bar_plot(summary, column, out / f"bars-{column}", formats)
    for metric in ("psnr", "ssim"):
        if summary["column"].str.match(rf"^{metric}\.(not_)?top\d+$").any():
            paths += topk_plot(summary, metric, out / f"topk-{metric}", formats)
    return paths


def qualitative_grid(rows: List[Dict[str, np.ndarray]], columns: List[str], out_path, formats=("png", "pdf"),
                     cell_inches: float = 1.2) -> List[Path]:
    """A grid of images: one row per sample, one column per name in `columns` (source, driving, each model's
    prediction, occlusion map, PriorityCut mask, augmented image ...). Images: uint8 HxWx3 or float HxW."""
    fig = _figure((cell_inches * len(columns), cell_inches * len(rows) + 0.3))
    for r, images in enumerate(rows):
        for c, name in enumerate(columns):
            ax = fig.add_subplot(len(rows), len(columns), r * len(columns) + c + 1)
            image = images.get(name)
            if image is not None:
                ax.imshow(image, cmap="gray" if image.ndim == 2 else None, vmin=0, vmax=1 if image.ndim == 2 else None)
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(name, fontsize=7)
    fig.tight_layout()
    return _save(fig, Path(out_path), formats)


def qualitative_from_runs(runs, out_path, n_rows: int = 3, k: int = 30, formats=("png", "pdf")) -> List[Path]:
    """The paper's Figure 1/3/5 from stored outputs: for frames of the first video all runs share — source,
    driving, every run's prediction (PNG strips), and for the first run with motion maps its occlusion map,
    the PriorityCut top-k mask and the augmented image (prediction inside the mask, driving outside)."""
    import torch

    from animbench.data.video import open_video
    from animbench.masks import prioritycut_mask

    with_png = [r for r in runs if r.path is not None and (Path(r.path) / "png").is_dir()]
    if not with_png:
        return []
    shared = set.intersection(*[set(r.frames["video"]) for r in with_png])
    if not shared:
        return []
    video_name = sorted(shared)[0]
    root = with_png[0].manifest.get("dataset_manifest", {}).get("root")
    if root is None:
        return []
    gt = open_video(Path(root) / "test" / video_name).read_all()
    t_all = gt.shape[0]
    picks = sorted({max(1, round(t_all * f)) for f in np.linspace(0.25, 0.9, n_rows)} - {t_all})[:n_rows]
    h, w = gt.shape[1:3]
    columns = ["source", "driving"] + [r.label for r in with_png]
    maps_run = next((r for r in with_png if (Path(r.path) / "maps" / f"{video_name}.npz").exists()), None)
    if maps_run is not None:
        columns += ["occlusion", f"PriorityCut mask (k={k})", "augmented"]
        maps = np.load(Path(maps_run.path) / "maps" / f"{video_name}.npz")
    strips = {r.label: open_video(Path(r.path) / "png" / f"{video_name}.png", frame_shape=(h, w)).read_all()
              for r in with_png}
    rows = []
    for t in picks:
        row = {"source": gt[0], "driving": gt[t], **{label: s[t] for label, s in strips.items()}}
        if maps_run is not None:
            occ = torch.from_numpy(maps["occlusion"][t:t + 1].astype(np.float32))[:, None]
            bg = torch.from_numpy(maps["background"][t:t + 1].astype(np.float32))[:, None]
            mask = prioritycut_mask(occ, bg, k, size=(h, w))[0, 0].numpy()
            pred = strips[maps_run.label][t]
            row["occlusion"] = torch.nn.functional.interpolate(occ, size=(h, w), mode="bilinear",
                                                               align_corners=False)[0, 0].numpy()
            row[f"PriorityCut mask (k={k})"] = mask
            row["augmented"] = np.where(mask[..., None] > 0, pred, gt[t])
        rows.append(row)
    return qualitative_grid(rows, columns, out_path, formats)
