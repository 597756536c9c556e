"""`animbench demo`: the whole tool on the embedded sample dataset in a few minutes on a 2-core CPU.

Trains small `fomm` and `prioritycut` models (64×64, tiny config, random-initialised VGG for the perceptual
loss since no weights can be downloaded), evaluates them and the `copy-source` floor with top-k masks from the
FOMM run and built-in salient masks, and writes Markdown tables and plots.
"""
from __future__ import annotations

from pathlib import Path

import click


def run_demo(out: Path, steps: int = 150, seed: int = 0) -> Path:
    from animbench.eval.pipeline import EvalSpec, run_eval
    from animbench.reports import load_runs, make_table, summarize, write_plots
    from animbench.reports.plots import qualitative_from_runs
    from animbench.results.store import atomic_write_bytes
    from animbench.train import train

    out = Path(out)
    runs = {}
    for variant in ("fomm", "prioritycut"):
        click.echo(f"[demo] training {variant} for {steps} steps (tiny model, 64x64 sample dataset)")
        train_dir = out / "train" / variant
        if not (train_dir / "checkpoints" / "final.pth.tar").exists():
            train(variant, train_dir, config="tiny", max_steps=steps, seed=seed,
                  overrides={"augmentation": {"warmup_epochs": 1}})
        runs[variant] = train_dir / "checkpoints" / "final.pth.tar"
    click.echo("[demo] evaluating copy-source, fomm and prioritycut on the sample test set")
    common = dict(dataset="sample", masks=("topk", "salient"), frame_size=(64, 64))
    run_eval(EvalSpec(model="fomm", checkpoint=runs["fomm"], out=out / "eval" / "fomm", label="FOMM (demo)", **common))
    for name, checkpoint, label in (("prioritycut", runs["prioritycut"], "PriorityCut (demo)"),
                                    ("copy-source", None, None)):
        run_eval(EvalSpec(model=name, checkpoint=checkpoint, out=out / "eval" / name, label=label,
                          topk_from=out / "eval" / "fomm", **common))
    loaded = load_runs([out / "eval" / n for n in ("copy-source", "fomm", "prioritycut")])
    summary = summarize(loaded, ci="video", baseline="FOMM (demo)", seed=seed)
    text = ["# animbench demo", "",
            f"Tiny models trained for {steps} steps on the embedded sample dataset (64×64); perceptual loss with "
            "random-initialised VGG-19 (no downloads). The numbers show the pipeline, not the paper's models.", "",
            make_table(summary, "main", "markdown", baseline="FOMM (demo)"),
            make_table(summary, "topk", "markdown", baseline="FOMM (demo)")]
    report = out / "report.md"
    atomic_write_bytes(report, "\n".join(text).encode())
    plots = write_plots(summary, out / "plots", formats=("png",))
    plots += qualitative_from_runs(loaded, out / "plots" / "qualitative", formats=("png",))
    click.echo(f"[demo] report: {report}")
    click.echo(f"[demo] plots:  {out / 'plots'} ({len(plots)} files)")
    return report
