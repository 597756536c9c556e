"""Reports: the paper's own tables rebuilt cell for cell, hand-checked marks, structure, summarize, plots."""
import re

import numpy as np
import pandas as pd
import pytest

from animbench.errors import UserError
from animbench.reports import make_table, summarize, summary_from_values, table_frame
from animbench.reports.summary import Run

INFO = {"akd": {"higher_is_better": False, "precision": 3, "display": "AKD"},
        "aed": {"higher_is_better": False, "precision": 4, "display": "AED"}}
MODELS = {"X2Face": "x2face", "Monkey-Net": "monkeynet", "FOMM": "fomm", "FOMM+": "fomm-adv", "Ours": "prioritycut"}


def row(l1, psnr, ssim, akd, aed, l1_hw, ssim_hw, akd_hw, aed_hw):
    cols = {"l1": (l1, l1_hw), "akd": (akd, akd_hw), "aed": (aed, aed_hw)}
    for (name, hw), value in zip((("psnr", 0.02), ("psnr.salient", 0.02), ("psnr.not_salient", 0.04)), psnr):
        cols[name] = (value, hw)
    for name, value, hw in zip(("ssim", "ssim.salient", "ssim.not_salient"), ssim, ssim_hw):
        cols[name] = (value, hw)
    return cols


# PriorityCut paper, Table 2 (VoxCeleb), transcribed from ../shared/reference/prioritycut.md §8
TABLE2 = {
    "X2Face": row(0.0739, (19.13, 20.04, 30.65), (0.625, 0.681, 0.944), 6.847, 0.3664, 2e-4, (6e-4, 5e-4, 2e-4), 4e-3, 2e-3),
    "Monkey-Net": row(0.0477, (22.47, 23.29, 34.43), (0.730, 0.769, 0.962), 1.892, 0.1967, 1e-4, (5e-4, 4e-4, 2e-4), 4e-3, 8e-4),
    "FOMM": row(0.0413, (24.28, 25.19, 36.19), (0.791, 0.825, 0.969), 1.290, 0.1324, 9e-5, (4e-4, 4e-4, 2e-4), 2e-3, 6e-4),
    "FOMM+": row(0.0409, (24.26, 25.17, 36.26), (0.790, 0.822, 0.970), 1.305, 0.1339, 9e-5, (4e-4, 4e-4, 1e-4), 2e-3, 6e-4),
    "Ours": row(0.0401, (24.45, 25.35, 36.45), (0.793, 0.826, 0.970), 1.286, 0.1303, 9e-5, (4e-4, 2e-4, 1e-4), 2e-3, 6e-4),
}
# The paper's printed cells (values, ±) and marks, read off its Table 2 independently of our formatting code:
# bold = best, underline = second best per column (SSIM ¬Salient: FOMM+ and Ours tie at 0.970 -> both bold,
# FOMM 0.969 second).
PAPER_CELLS = {
    "X2Face": ["0.0739 ± 2e-4", "19.13", "20.04", "30.65", "0.625 ± 6e-4", "0.681 ± 5e-4", "0.944 ± 2e-4", "6.847 ± 4e-3", "0.3664 ± 2e-3"],
    "Monkey-Net": ["0.0477 ± 1e-4", "22.47", "23.29", "34.43", "0.730 ± 5e-4", "0.769 ± 4e-4", "0.962 ± 2e-4", "1.892 ± 4e-3", "0.1967 ± 8e-4"],
    "FOMM": ["0.0413 ± 9e-5", "24.28", "25.19", "36.19", "0.791 ± 4e-4", "0.825 ± 4e-4", "0.969 ± 2e-4", "1.290 ± 2e-3", "0.1324 ± 6e-4"],
    "FOMM+": ["0.0409 ± 9e-5", "24.26", "25.17", "36.26", "0.790 ± 4e-4", "0.822 ± 4e-4", "0.970 ± 1e-4", "1.305 ± 2e-3", "0.1339 ± 6e-4"],
    "Ours": ["0.0401 ± 9e-5", "24.45", "25.35", "36.45", "0.793 ± 4e-4", "0.826 ± 2e-4", "0.970 ± 1e-4", "1.286 ± 2e-3", "0.1303 ± 6e-4"],
}
def paper_summary():
    return summary_from_values(TABLE2, INFO, models=MODELS)


def test_paper_table2_cell_for_cell():
    frame = table_frame(paper_summary(), "main")
    marks = frame.attrs["marks"]
    assert list(frame.index) == ["X2Face", "Monkey-Net", "FOMM", "FOMM+", "Ours"]
    for label, cells in PAPER_CELLS.items():
        assert list(frame.loc[label]) == cells, label
    # marks, column by column (from the paper): L1 best Ours, second FOMM+; PSNR All best Ours, second FOMM;
    # PSNR Sal: Ours, FOMM; PSNR ¬Sal: Ours, FOMM+; SSIM All: Ours, FOMM; SSIM Sal: Ours, FOMM;
    # SSIM ¬Sal: FOMM+ & Ours tie (bold), FOMM second; AKD: Ours, FOMM; AED: Ours, FOMM.
    expected_second = ["FOMM+", "FOMM", "FOMM", "FOMM+", "FOMM", "FOMM", "FOMM", "FOMM", "FOMM"]
    for j, second in enumerate(expected_second):
        column = marks.iloc[:, j]
        assert column["Ours"] == "best"
        assert column[second] == "second", (frame.columns[j], column.to_dict())
        assert (column == "second").sum() == 1
    assert marks.iloc[:, 6]["FOMM+"] == "best"  # the tie


def test_paper_table5_ablation_order_and_labels():
    ladder = {k: TABLE2[k] for k in ("Ours", "FOMM", "FOMM+")}
    ladder["+ U-Net"] = row(0.0401, (24.34, 25.29, 36.31), (0.791, 0.824, 0.969), 1.278, 0.1347, 9e-5,
                            (4e-4, 4e-4, 2e-4), 2e-3, 6e-4)
    s = summary_from_values(ladder, INFO, models={**MODELS, "+ U-Net": "unet"})
    frame = table_frame(s, "ablation")
    assert list(frame.index) == ["FOMM", "+ Adv", "+ U-Net", "+ PriorityCut"]  # the legend says "than FOMM"
    marks = frame.attrs["marks"]
    # L1: U-Net and PriorityCut tie at 0.0401 (both bold), + Adv 0.0409 second; AKD best + U-Net 1.278
    assert marks.iloc[:, 0].tolist() == ["", "second", "best", "best"]
    assert marks[("AKD", "")].tolist() == ["", "", "best", "second"]
    assert frame.loc["+ U-Net", ("PSNR", "All")] == "24.34"


def test_paper_table_a2a_topk_psnr():
    a2 = {"FOMM": [(32.99, 25.24), (30.07, 26.14), (28.46, 27.09), (27.37, 28.11), (26.55, 29.24)],
          "FOMM+": [(32.91, 25.24), (30.00, 26.16), (28.39, 27.12), (27.30, 28.15), (26.49, 29.30)],
          "Ours": [(33.14, 25.42), (30.21, 26.34), (28.60, 27.29), (27.51, 28.32), (26.70, 29.46)]}
    values = {label: {f"psnr.{'not_' if inv else ''}top{k}": (pair[inv], 0.02)
                      for k, pair in zip((10, 20, 30, 40, 50), pairs) for inv in (0, 1)} for label, pairs in a2.items()}
    s = summary_from_values(values, models=MODELS)
    frame = table_frame(s, "topk")
    marks = frame.attrs["marks"]
    assert frame.loc["Ours", ("10%", "top-k")] == "33.14" and frame.loc["FOMM+", ("50%", "¬top-k")] == "29.30"
    # from the paper's values: k=10 top-k best Ours 33.14, second FOMM 32.99; ¬top-10: Ours best, FOMM and
    # FOMM+ tie at 25.24 (both second); ¬top-50: Ours 29.46 best, FOMM+ 29.30 second
    assert marks[("10%", "top-k")].tolist() == ["second", "", "best"]
    assert marks[("10%", "¬top-k")].tolist() == ["second", "second", "best"]
    assert marks[("50%", "¬top-k")].tolist() == ["", "second", "best"]
    md = make_table(s, "topk", "markdown")
    assert "| Ours | **33.14** / **25.42** | **30.21** / **26.34** |" in md
    assert "| FOMM | <u>32.99</u> / <u>25.24</u> |" in md
    assert "Largest ± per column" in md and "top-k 0.02" in md


def test_hand_checked_marks_colours_missing_columns_and_single_model():
    # three runs, lower-is-better l1 and higher-is-better psnr; baseline B
    values = {"A": {"l1": (0.050, 1e-3), "psnr": (20.0, 0.1)},
              "B": {"l1": (0.040, 1e-3), "psnr": (21.0, 0.1)},
              "C": {"l1": (0.045, 1e-3)},                       # C has no PSNR: a dash, no mark
              "D": {"l1": (0.060, 1e-3), "psnr": (22.0, 0.1)}}
    s = summary_from_values(values)
    frame = table_frame(s, "compact", baseline="B")
    marks = frame.attrs["marks"]
    # by hand: l1 best B (0.040), second C (0.045, also worse than B); A 0.050 and D 0.060 worse than B
    assert marks[("L1", "")].tolist() == ["worse", "best", "second+worse", "worse"]
    # psnr: best D 22.0 (and better than B), second B 21.0 (the baseline: no comparison), A 20.0 worse; C missing
    assert marks[("PSNR", "")].tolist() == ["worse", "second", "", "best+better"]
    assert frame.loc["C", ("PSNR", "")] == "–"
    md = make_table(s, "compact", "markdown", baseline="B")
    assert "0.050 ± 1e-3 ▼" in md and "▲ / ▼: better / worse than B" in md
    assert "<u>0.045 ± 1e-3</u> ▼" in md and "**22.0 ± 0.1** ▲" in md  # both marks carried
    tex = make_table(s, "compact", "latex", baseline="B")
    assert r"\textcolor{red}{\underline{0.045 $\pm$ 1e-3}}" in tex and r"\textcolor{green!50!black}{\textbf{22.0 $\pm$ 0.1}}" in tex
    # ties share the rank mark and each gets its own comparison
    tied = table_frame(summary_from_values({"A": {"l1": (0.05, 1e-3)}, "B": {"l1": (0.04, 1e-3)},
                                            "C": {"l1": (0.05, 1e-3)}}), "compact", baseline="A")
    assert tied.attrs["marks"][("L1", "")].tolist() == ["second", "best+better", "second"]
    single = make_table(summary_from_values({"only": {"l1": (0.04, 1e-3)}}), "compact", "markdown")
    assert "**0.040 ± 1e-3**" in single  # a single model is the best of its column
    with pytest.raises(UserError, match="no top-k columns"):
        make_table(s, "topk")
    with pytest.raises(UserError, match="--baseline Z"):
        make_table(s, "compact", baseline="Z")


def test_markdown_columns_consistent_and_latex_balanced():
    s = paper_summary()
    for layout in ("main", "compact", "ablation"):
        md = make_table(s, layout, "markdown")
        table_lines = [l for l in md.splitlines() if l.startswith("|")]
        counts = {l.count("|") for l in table_lines}
        assert len(counts) == 1, layout
        tex = make_table(s, layout, "latex", baseline="FOMM")
        assert tex.count("{") == tex.count("}")
        assert re.findall(r"\\begin\{(\w+)\}", tex) == ["table", "tabular"]
        assert re.findall(r"\\end\{(\w+)\}", tex) == ["tabular", "table"]
        commands = set(re.findall(r"\\([a-zA-Z]+)", tex))
        allowed = {"begin", "end", "centering", "caption", "toprule", "midrule", "bottomrule", "cmidrule",
                   "multicolumn", "textbf", "underline", "textcolor", "pm", "uparrow", "downarrow", "neg", "odot",
                   "times"}
        assert commands <= allowed, commands - allowed
        assert r"\textcolor{red}" in tex or layout == "compact"  # X2Face/Monkey-Net are worse than FOMM


def _run(label, model, rng, shift, n_videos=6, n_frames=20):
    frames = pd.DataFrame({"model": model, "dataset": "d", "video": np.repeat([f"v{i}" for i in range(n_videos)], n_frames),
                           "frame": np.tile(np.arange(n_frames), n_videos)})
    base = np.repeat(rng.normal(0.05, 0.01, n_videos), n_frames) + rng.normal(0, 0.002, len(frames))
    frames["l1"] = base + shift
    return Run(path=None, manifest={"model": model, "label": label, "dataset": "d"}, frames=frames)


def test_summarize_estimates_cis_and_paired_significance():
    rng = np.random.default_rng(0)
    a = _run("A", "fomm", rng, 0.0)
    b = Run(None, {"model": "prioritycut", "label": "B", "dataset": "d"}, a.frames.assign(
        l1=a.frames["l1"] - 0.001 + rng.normal(0, 1e-4, len(a.frames))))
    s = summarize([a, b], ci="video", n_resamples=500, seed=1, baseline="A", significance=True)
    ra, rb = s[s.label == "A"].iloc[0], s[s.label == "B"].iloc[0]
    assert ra["estimate"] == pytest.approx(a.frames["l1"].mean())
    assert ra["low"] < ra["estimate"] < ra["high"] and ra["n_videos"] == 6 and ra["n_frames"] == 120
    assert rb["diff"] == pytest.approx(-0.001, abs=2e-4) and bool(rb["diff_significant"])
    frame = table_frame(s, "compact", baseline="A", significance=True)
    assert frame.attrs["marks"].loc["B"].iloc[0] == "best+better"  # significantly better than A, and best
    caption = make_table(s, "compact", "latex")
    assert "cluster bootstrap" in caption and "500 resamples" in caption and "6 videos, 120 frames" in caption


def test_plots_written_and_deterministic(tmp_path):
    from animbench.reports import write_plots
    from animbench.reports.plots import qualitative_grid

    s = paper_summary()
    first = write_plots(s, tmp_path / "a", formats=("png",))
    second = write_plots(s, tmp_path / "b", formats=("png",))
    assert [p.name for p in first] == [p.name for p in second] and len(first) >= 5
    import imageio.v3 as iio

    for p, q in zip(first, second):
        assert p.stat().st_size > 1000
        assert iio.imread(p).shape == iio.imread(q).shape
        assert p.read_bytes() == q.read_bytes()
    pdf = write_plots(s, tmp_path / "c", formats=("pdf",))
    assert all(p.read_bytes().startswith(b"%PDF") for p in pdf)
    img = np.zeros((16, 16, 3), np.uint8)
    grid = qualitative_grid([{"source": img, "driving": img, "occlusion": np.ones((16, 16))}] * 2,
                            ["source", "driving", "occlusion"], tmp_path / "grid", formats=("png",))
    assert iio.imread(grid[0]).shape[:2] == (round((1.2 * 2 + 0.4) * 100), round((1.2 * 3 + 0.6) * 100))
    with_bar = qualitative_grid([{"source": img, "driving": img, "occlusion": np.ones((16, 16))}] * 2,
                                ["source", "driving", "occlusion"], tmp_path / "grid2", formats=("png",),
                                row_labels=["v1\nframe 3", "v2\nframe 5"], colorbar_column="occlusion")
    assert iio.imread(with_bar[0]).shape[0] == round((1.2 * 2 + 0.9) * 100)


def test_plot_axes_units_and_far_off_models(tmp_path):
    from animbench.reports.plots import _axis_name, _far_off, topk_plot

    s = paper_summary()
    assert _axis_name(s[s.column == "psnr"]) == "PSNR (dB) ↑" and _axis_name(s[s.column == "l1"]) == "L1 ↓"
    # copy-source at the PSNR cap is far off the models' 25-40 dB: it gets its own panel, the others do not
    values = {"copy": np.array([100.0, 100.0]), "a": np.array([30.0, 35.0]), "b": np.array([31.0, 36.0])}
    assert _far_off(values) == ["copy"]
    assert _far_off({"a": np.array([30.0, 35.0]), "b": np.array([31.0, 36.0])}) == []
    rows = [{"label": label, "model": label, "column": f"psnr.{'not_' if inv else ''}top{k}", "metric": "psnr",
             "mask": f"top{k}", "inverted": inv, "higher_is_better": True, "precision": 2, "display": "PSNR",
             "unit": "dB", "estimate": base + k / 10, "low": base + k / 10 - 0.1, "high": base + k / 10 + 0.1,
             "half_width": 0.1} for label, base in (("copy", 100.0), ("a", 30.0), ("b", 31.0))
            for k in (10, 30) for inv in (False, True)]
    summary = pd.DataFrame(rows)
    summary.attrs["topk_sources"] = ["a"]
    paths = topk_plot(summary, "psnr", tmp_path / "topk", formats=("png",))
    import imageio.v3 as iio

    assert iio.imread(paths[0]).shape[0] == 460  # the two-panel layout


def test_report_cli_end_to_end(tmp_path):
    import subprocess
    import sys

    from conftest import write_tiny_fomm

    from animbench.eval.pipeline import EvalSpec, run_eval

    config, checkpoint = write_tiny_fomm(tmp_path / "tiny")
    run_eval(EvalSpec(model="fomm", config=str(config), checkpoint=checkpoint, dataset="sample",
                      out=tmp_path / "fomm", max_videos=2, masks=("topk",), topk_ks=(10, 30)), progress=False)
    run_eval(EvalSpec(model="copy-source", dataset="sample", out=tmp_path / "copy", max_videos=2, masks=("topk",),
                      topk_from=tmp_path / "fomm", topk_ks=(10, 30)), progress=False)
    cmd = [sys.executable, "-m", "animbench", "report", str(tmp_path / "fomm"), str(tmp_path / "copy"),
           "--baseline", "fomm", "--resamples", "200"]
    main = subprocess.run(cmd + ["--table", "main", "--plots", str(tmp_path / "plots")], capture_output=True,
                          text=True, timeout=300)
    assert main.returncode == 0, main.stderr
    assert "| FOMM |" in main.stdout and "| Copy source |" in main.stdout and "2 videos, 64 frames" in main.stdout
    assert (tmp_path / "plots" / "bars-l1.png").exists() and (tmp_path / "plots" / "topk-ssim.pdf").exists()
    grid = tmp_path / "plots" / "qualitative.png"
    assert grid.exists() and grid.stat().st_size > 5000
    topk = subprocess.run(cmd + ["--table", "topk", "--format", "latex", "--out", str(tmp_path / "t.tex")],
                          capture_output=True, text=True, timeout=300)
    assert topk.returncode == 0, topk.stderr
    tex = (tmp_path / "t.tex").read_text()
    assert tex.count(r"\begin{tabular}") == 2 and "10\\%" in tex
    bad = subprocess.run([sys.executable, "-m", "animbench", "report", str(tmp_path / "nope")], capture_output=True,
                         text=True, timeout=120)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr


def test_pooling_frame_video_and_native():
    # unequal video lengths make the two estimators differ: video 0 has 2 frames of 1.0, video 1 has 8 of 0.0
    frames = pd.DataFrame({"model": "m", "dataset": "d", "video": ["v0"] * 2 + ["v1"] * 8,
                           "frame": list(range(2)) + list(range(8)), "l1": [1.0] * 2 + [0.0] * 8})
    fomm = Run(None, {"model": "fomm", "label": "F", "dataset": "d"}, frames)
    monkey = Run(None, {"model": "monkeynet", "label": "M", "dataset": "d", "pooling": "video"}, frames)
    by = lambda s, label: s[s.label == label].iloc[0]
    frame = summarize([fomm, monkey], n_resamples=200, pooling="frame")
    assert by(frame, "F")["estimate"] == pytest.approx(0.2) and by(frame, "M")["estimate"] == pytest.approx(0.2)
    video = summarize([fomm, monkey], n_resamples=200, pooling="video")
    assert by(video, "F")["estimate"] == pytest.approx(0.5) and by(video, "M")["ci_unit"] == "video"
    native = summarize([fomm, monkey], n_resamples=200, pooling="native")
    assert by(native, "F")["estimate"] == pytest.approx(0.2) and by(native, "M")["estimate"] == pytest.approx(0.5)
    assert "each model's own protocol" in make_table(native, "compact")
