"""The `animbench` command line.

User mistakes raise :class:`animbench.errors.UserError`; `main()` prints them as one line on stderr and exits
with code 2 (`--verbose` shows the traceback). Heavy imports (torch models, matplotlib) happen inside the
commands so `animbench --help` is instant.
"""
from __future__ import annotations

import sys
import traceback
from pathlib import Path

import click

from animbench import __version__
from animbench.errors import UserError

CONTEXT = dict(help_option_names=["-h", "--help"], max_content_width=100)


def _parse_size(value):
    """'64' or '64x64' or '256,256' -> (H, W)."""
    if value is None:
        return None
    text = str(value).lower().replace("x", ",")
    try:
        parts = [int(p) for p in text.split(",") if p.strip()]
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a size; use e.g. 256 or 256x256") from None
    if len(parts) == 1:
        parts = parts * 2
    if len(parts) != 2 or min(parts) <= 0:
        raise click.BadParameter(f"{value!r} is not a size; use e.g. 256 or 256x256")
    return tuple(parts)


@click.group(context_settings=CONTEXT)
@click.version_option(__version__, prog_name="animbench")
@click.option("--verbose", "-v", is_flag=True, help="Show full tracebacks for errors.")
@click.pass_context
def cli(ctx, verbose):
    """Evaluate, train and report warp-based image animation models (FOMM, FOMM+, PriorityCut, ...)."""
    ctx.ensure_object(dict)
    ctx.obj["verbose"] = verbose


# ---------------------------------------------------------------------------------------------- list
@cli.command("list")
@click.argument("what", type=click.Choice(["models", "datasets", "metrics", "configs"]))
def list_cmd(what):
    """List the registered models, datasets, metrics or bundled configs."""
    if what == "models":
        from animbench.models import MODELS

        for name in MODELS.names():
            click.echo(f"{name:14s} {MODELS.help(name)}")
    elif what == "datasets":
        from animbench.data import DATASETS

        for name in DATASETS.names():
            preset = DATASETS.get(name)
            size = "x".join(str(s) for s in preset.frame_size)
            click.echo(f"{name:8s} {size:8s} {preset.description}")
    elif what == "configs":
        for family, names in _bundled_configs():
            click.echo(f"{family:22s} {', '.join(names)}")
    else:
        from animbench.metrics import METRICS

        for name in METRICS.names():
            spec = METRICS.get(name)
            arrow = "higher is better" if spec.higher_is_better else "lower is better"
            masked = ", maskable" if spec.maskable else ""
            click.echo(f"{name:8s} {spec.display:6s} {arrow}{masked}. {spec.description}")


def _bundled_configs():
    from animbench.models.fomm.model import BUNDLED_CONFIGS
    from animbench.train.config import bundled_train_configs

    configs = [("fomm / fomm-adv", list(BUNDLED_CONFIGS))]
    try:
        from animbench.models.monkeynet.model import BUNDLED_CONFIGS as MONKEYNET

        configs.append(("monkeynet", list(MONKEYNET)))
    except ImportError:
        pass
    configs.append(("train (animbench train)", bundled_train_configs()))
    return configs


# ---------------------------------------------------------------------------------------------- data
@cli.group()
def data():
    """Materialise the sample dataset or validate a dataset folder."""


@data.command("sample")
@click.option("--out", "-o", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Folder to write the sample dataset into (FOMM layout: train/, test/).")
@click.option("--size", default="64", show_default=True, help="Frame size: 64 or 256.")
def data_sample(out, size):
    """Write the embedded synthetic sample dataset (train + test clips) as PNG folders."""
    from animbench.data.sample import write_sample
    from animbench.validation import check_output_dir

    check_output_dir(out)
    h, w = _parse_size(size)
    if h != w or h not in (64, 256):
        raise UserError(f"--size {size}: the sample dataset exists at 64 or 256; pass one of those")
    root = write_sample(out, size=h, progress=True)
    click.echo(f"wrote the sample dataset ({h}x{w}) to {root}")


@data.command("check")
@click.argument("root", type=click.Path(path_type=Path))
@click.option("--size", default=None,
              help="Expected frame size, e.g. 256 or 256x256 (default: the size of the first frame found).")
@click.option("--json", "as_json", is_flag=True, help="Print the manifest as JSON.")
@click.option("--for-training", is_flag=True, help="Also require a train/ split (needed by `animbench train`).")
def data_check(root, size, as_json, for_training):
    """Validate a dataset folder: print its manifest and every problem found (exit 1 if any)."""
    import json

    from animbench.data.check import check_dataset

    if not root.exists():
        raise UserError(f"{root}: no such directory; pass a dataset root holding train/ and test/")
    report = check_dataset(root, frame_size=_parse_size(size),
                           required=("train", "test") if for_training else ("test",))
    for note in report.notes:
        click.echo(f"note: {note}", err=True)
    if as_json:
        click.echo(json.dumps(report.manifest, indent=2, default=str))
    else:
        for split, manifest in report.manifest.items():
            if manifest is None:
                continue
            click.echo(f"{split}: {manifest.get('num_videos', 0)} videos, {manifest.get('num_frames', 0)} frames,"
                       f" hash {str(manifest.get('hash', ''))[:16]}")
    for problem in report.problems:
        click.echo(f"problem: {problem}", err=True)
    if report.problems:
        click.echo(f"{len(report.problems)} problem(s) found in {root}", err=True)
        sys.exit(1)
    click.echo(f"{root}: OK")


# ---------------------------------------------------------------------------------------------- eval / reconstruct
def _split_list(value):
    return tuple(v.strip() for v in value.split(",") if v.strip()) if value else ()


def _model_options(f):
    """Options shared by `eval` and `reconstruct` (model, data, device)."""
    options = [
        click.option("--model", "-m", required=True, help="Model name (see `animbench list models`)."),
        click.option("--dataset", "-d", default=None, help="Dataset preset: vox, taichi, bair, sample."),
        click.option("--data-root", type=click.Path(path_type=Path), default=None,
                     help="Dataset root holding test/ (overrides the preset's default root)."),
        click.option("--checkpoint", "-c", type=click.Path(path_type=Path), default=None,
                     help="Checkpoint file (.pth.tar), e.g. the authors' vox-cpk.pth.tar."),
        click.option("--config", default=None, help="Bundled config name (vox-256, ...) or a FOMM YAML file."),
        click.option("--out", "-o", required=True, type=click.Path(file_okay=False, path_type=Path),
                     help="Run directory (created; rerun the same command to resume)."),
        click.option("--batch-size", default=8, show_default=True, type=click.IntRange(min=1),
                     help="Driving frames per forward pass."),
        click.option("--device", default="cpu", show_default=True, help="cpu, cuda, cuda:1, ..."),
        click.option("--max-videos", type=click.IntRange(min=1), default=None,
                     help="Evaluate only the first N videos (by name)."),
        click.option("--align-corners/--no-align-corners", default=True, show_default=True,
                     help="grid_sample convention: True = torch 1.0 (the checkpoints' training), False = "
                          "official code on modern torch."),
        click.option("--trust-checkpoint", is_flag=True,
                     help="Allow full unpickling of a checkpoint that weights_only loading rejects."),
        click.option("--size", "frame_size", default=None,
                     help="Frame size of the data, e.g. 64 or 256 (default: the model's/dataset's)."),
        click.option("--label", default=None, help="Display name of this run in tables (default: model name)."),
        click.option("--exact-model", is_flag=True,
                     help="Bit-exact model path: FOMM's decoder as the authors compute it (default on CPU: the fused "
                          "sub-pixel decoder, prediction within 1e-6, faster). Recorded in the manifest."),
        click.option("--save-visualization", is_flag=True,
                     help="Also write viz/<video>.png: source | driving | prediction | occlusion, one row per frame."),
        click.option("--random-weights", is_flag=True,
                     help="Run a model that needs weights with seeded random ones (smoke tests, timing); the "
                          "results are labelled '(random weights)'."),
    ]
    for option in reversed(options):
        f = option(f)
    return f


def _check_paths(checkpoint, data_root):
    if checkpoint is not None and not checkpoint.is_file():
        what = "is a directory" if checkpoint.is_dir() else "no such file"
        raise UserError(f"--checkpoint {checkpoint}: {what}; pass the path of a .pth.tar checkpoint")
    if data_root is not None and not data_root.is_dir():
        raise UserError(f"--data-root {data_root}: no such directory; pass a folder holding test/ "
                        f"(or try `animbench data sample --out DIR`)")


def _weights_path(kind: str, path: Path, option: str) -> Path:
    """A weight file (face-pose: a folder holding face-alignment's FAN and S3FD files, or one of them)."""
    from animbench.validation import optional_file

    if kind == "face-pose" and path.is_dir():
        return path
    return optional_file(path, option)


def _is_rank0() -> bool:
    import os

    return os.environ.get("RANK", "0") == "0"


def _print_summary(store, ci, n_resamples=2000, seed=0, method="percentile"):
    import numpy as np

    from animbench.metrics import spec_for_column
    from animbench.results.store import metric_columns
    from animbench.stats import bootstrap_ci

    frames = store.read_frames()
    info = store.read_manifest().get("metric_info") or {}
    click.echo(f"{store.root}: {frames['video'].nunique()} videos, {len(frames)} frames "
               f"(95% CI: {ci} bootstrap, {method}, {n_resamples} resamples, seed {seed})")
    for column in metric_columns(frames):
        if column in info:
            higher, precision = info[column]["higher_is_better"], info[column]["precision"]
        else:
            spec = spec_for_column(column)
            higher, precision = spec.higher_is_better, spec.precision
        r = bootstrap_ci(frames[column].to_numpy(np.float64), videos=frames["video"].to_numpy(), unit=ci,
                         method=method, n_resamples=n_resamples, seed=seed)
        arrow = "↑" if higher else "↓"
        p = precision + 1
        scored = int(np.isfinite(frames[column].to_numpy(np.float64)).sum())
        note = f"  ({scored}/{len(frames)} frames scored)" if scored < len(frames) else ""
        click.echo(f"  {column:18s} {arrow} {r.estimate:.{p}f}  [{r.low:.{p}f}, {r.high:.{p}f}]{note}")


@cli.command("eval")
@_model_options
@click.option("--metrics", default="l1,psnr,ssim", show_default=True, help="Comma-separated metric names.")
@click.option("--masks", default="", help="Masked variants: salient, topk (comma-separated).")
@click.option("--topk-from", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Baseline FOMM run (made with --save-maps) whose maps define the top-k masks.")
@click.option("--topk", "topk_ks", default="10,20,30,40,50", show_default=True, help="k values (%) for top-k masks.")
@click.option("--salient", "salient_backend", default="builtin", show_default=True,
              help="Salient-mask backend: builtin (segmentation → trimap → matting) or folder.")
@click.option("--salient-dir", type=click.Path(path_type=Path), default=None,
              help="With --salient folder: masks per video (folder of PNGs or a strip PNG).")
@click.option("--salient-matting", type=click.Choice(["feather", "cf"]), default="feather", show_default=True,
              help="Builtin salient backend: feathered trimap, or pymatting's closed-form matting (extra).")
@click.option("--from-reconstruction", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Reuse the PNG strips of an earlier `animbench reconstruct` run (uint8) instead of running "
                   "the model.")
@click.option("--ci", type=click.Choice(["frame", "video"]), default="video", show_default=True,
              help="Bootstrap unit of the printed CIs: video (cluster bootstrap, honest) or frame (the paper's ±).")
@click.option("--ci-method", type=click.Choice(["percentile", "bca"]), default="percentile", show_default=True,
              help="Bootstrap interval: percentile or BCa (bias-corrected and accelerated).")
@click.option("--save-maps", is_flag=True, help="Also store occlusion/background maps (for other runs' top-k).")
@click.option("--psnr-identical", type=click.Choice(["cap", "skip"]), default="cap", show_default=True,
              help="PSNR of a frame identical to the ground truth (infinite): cap at 100 dB, or skip the frame "
                   "(NaN, left out of means). Recorded in the manifest and the table caption.")
@click.option("--seed", default=0, show_default=True, type=click.IntRange(min=0),
              help="Seed of the printed bootstrap CIs (and of random weights).")
@click.option("--weights", "feature_weights", multiple=True, metavar="KIND=PATH",
              help="Weight file of a feature extractor for AKD/MKR/AED (face-pose, face-id, body-pose, body-id); "
                   "repeatable; default: the cached files (`animbench weights list`).")
@click.option("--face-id-resize", type=click.Choice(["skimage-0.14", "modern"]), default="skimage-0.14",
              show_default=True, help="AED on faces: the 96x96 resize of the published numbers or today's skimage.")
@click.option("--exact-metrics", is_flag=True,
              help="Pixel metrics on the float64 path equal to scikit-image to 1e-12 (default on CPU: the fast suite, "
                   "within 1e-7, >10x faster). Recorded in the manifest.")
@click.option("--body-id-bn", type=click.Choice(["parity", "eval"]), default="parity", show_default=True,
              help="AED on bodies: re-id BatchNorm as pose-evaluation ran it (per-frame statistics) or eval mode.")
def eval_cmd(model, dataset, data_root, checkpoint, config, out, batch_size, device, max_videos, align_corners,
             trust_checkpoint, frame_size, label, exact_model, save_visualization, random_weights, metrics, masks, topk_from, topk_ks,
             salient_backend, salient_dir, salient_matting, from_reconstruction, ci, ci_method, save_maps,
             psnr_identical, seed, feature_weights, face_id_resize, exact_metrics, body_id_bn):
    """Reconstruct the test videos and compute per-frame metrics into OUT (resumable)."""
    from animbench.eval.pipeline import EvalSpec, run_eval

    from animbench.features.registry import normalise_kind
    from animbench.validation import parse_topk

    _check_paths(checkpoint, data_root)
    weights = {}
    for item in feature_weights:
        kind, sep, path = item.partition("=")
        if not sep:
            raise UserError(f"--weights {item}: use KIND=PATH, e.g. --weights face-id=openface.pth")
        kind = normalise_kind(kind)
        weights[kind] = _weights_path(kind, Path(path), f"--weights {kind}=")
    try:
        ks = parse_topk(int(k) for k in _split_list(topk_ks))
    except ValueError:
        raise UserError(f"--topk {topk_ks}: use comma-separated integers, e.g. 10,20,30") from None
    spec = EvalSpec(model=model, out=out, dataset=dataset, data_root=data_root, checkpoint=checkpoint,
                    config=config, metrics=_split_list(metrics), masks=_split_list(masks), topk_from=topk_from,
                    topk_ks=ks, salient_backend=salient_backend, salient_dir=salient_dir, salient_matting=salient_matting,
                    from_reconstruction=from_reconstruction,
                    ci=ci, max_videos=max_videos, device=device, batch_size=batch_size,
                    align_corners=align_corners, frame_size=_parse_size(frame_size), save_maps=save_maps,
                    trust_checkpoint=trust_checkpoint, label=label, random_weights=random_weights,
                    psnr_identical=psnr_identical, seed=seed, save_visualization=save_visualization,
                    exact_model=exact_model, exact_metrics=exact_metrics,
                    feature_weights=weights, feature_options={"face-id": {"resize": face_id_resize},
                                                              "body-id": {"bn_mode": body_id_bn}})
    store = run_eval(spec)
    if _is_rank0():
        _print_summary(store, ci, seed=seed, method=ci_method)


@cli.command("reconstruct")
@_model_options
@click.option("--save-maps", is_flag=True, help="Store occlusion/background maps per frame (for top-k masks).")
def reconstruct_cmd(model, dataset, data_root, checkpoint, config, out, batch_size, device, max_videos,
                    align_corners, trust_checkpoint, frame_size, label, exact_model, save_visualization,
                    random_weights, save_maps):
    """Reconstruct the test videos: OUT/png/<video>.png strips, per-frame L1, optional motion maps."""
    from animbench.eval.pipeline import EvalSpec, run_eval

    _check_paths(checkpoint, data_root)
    spec = EvalSpec(model=model, out=out, dataset=dataset, data_root=data_root, checkpoint=checkpoint,
                    config=config, metrics=("l1",), max_videos=max_videos, device=device, batch_size=batch_size,
                    align_corners=align_corners, frame_size=_parse_size(frame_size), save_maps=save_maps,
                    trust_checkpoint=trust_checkpoint, label=label, random_weights=random_weights,
                    save_visualization=save_visualization, exact_model=exact_model, kind="reconstruct")
    store = run_eval(spec)
    if not _is_rank0():
        return
    frames = store.read_frames()
    click.echo(f"reconstructed {frames['video'].nunique()} videos, {len(frames)} frames into {out}; "
               f"L1 (frame-pooled) {frames['l1'].mean():.5f}")


# ---------------------------------------------------------------------------------------------- report
@cli.command("report")
@click.argument("runs", nargs=-1, required=True, type=click.Path(file_okay=False, path_type=Path))
@click.option("--format", "fmt", type=click.Choice(["markdown", "latex", "csv", "json"]), default="markdown",
              show_default=True, help="markdown / latex: the paper-style table; csv / json: the summary (one row per "
                                      "run and metric column: estimate, CI, paired difference) for your own tables.")
@click.option("--table", "layout", type=click.Choice(["main", "compact", "ablation", "topk"]), default="main",
              show_default=True, help="Paper layout: main (Tables 2/3), compact (1/4), ablation (5), topk (A2–A4).")
@click.option("--baseline", default=None, help="Run label/model the others are coloured against (e.g. fomm).")
@click.option("--ci", type=click.Choice(["frame", "video"]), default="video", show_default=True,
              help="Bootstrap unit: video (cluster bootstrap, honest) or frame (the paper's ±, for parity).")
@click.option("--ci-method", type=click.Choice(["percentile", "bca"]), default="percentile", show_default=True,
              help="Bootstrap interval: percentile or BCa.")
@click.option("--significance", is_flag=True, help="Colour only where the paired bootstrap CI excludes 0.")
@click.option("--resamples", default=2000, show_default=True, type=click.IntRange(min=100),
              help="Bootstrap resamples (at least 100).")
@click.option("--seed", default=0, show_default=True, type=click.IntRange(min=0), help="Bootstrap seed.")
@click.option("--out", "-o", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the table here (default: print it).")
@click.option("--plots", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Also write PNG/PDF plots into this folder.")
@click.option("--pooling", type=click.Choice(["frame", "video", "native"]), default="frame", show_default=True,
              help="Estimate: mean over frames (FOMM), mean of per-video means (Monkey-Net), or native (each "
                   "run as its model's authors computed it).")
@click.option("--label", "relabel", multiple=True, metavar="RUN=NAME",
              help="Row name of a run for this report (repeatable), e.g. --label runs/a=Ours.")
@click.option("--allow-mixed-datasets", is_flag=True,
              help="Put runs over different test sets into one table (each row then names its test set).")
def report_cmd(runs, fmt, layout, baseline, ci, ci_method, significance, resamples, seed, out, plots, pooling, relabel,
               allow_mixed_datasets):
    """Paper-style tables (bold best, underlined second, ± 95% CI) and plots from eval run directories."""
    from animbench.reports import load_runs, make_table, summarize, write_plots
    from animbench.results.store import atomic_write_bytes
    from animbench.validation import check_output_dir

    if out is not None:
        check_output_dir(out.parent, option="--out")
        if out.is_dir():
            raise UserError(f"--out {out}: is a directory; pass a file name such as table.md")
    if plots is not None:
        check_output_dir(plots, option="--plots")
    labels = {}
    for item in relabel:
        run, sep, name = item.partition("=")
        if not sep or not run or not name.strip():
            raise UserError(f"--label {item}: use RUN=NAME, e.g. --label runs/a=Ours")
        labels[run.rstrip("/")] = name.strip()
    if significance and baseline is None:
        raise UserError("--significance compares each run with a baseline: add --baseline NAME")
    loaded = load_runs(runs, allow_mixed_datasets=allow_mixed_datasets, labels=labels)
    summary = summarize(loaded, ci=ci, method=ci_method, n_resamples=resamples, seed=seed, baseline=baseline,
                        pooling=pooling,
                        significance=significance, progress=True)
    if fmt == "csv":
        text = summary.to_csv(index=False)
    elif fmt == "json":
        import json

        text = json.dumps({"attrs": {k: v for k, v in summary.attrs.items()},
                           "rows": json.loads(summary.to_json(orient="records"))}, indent=2, default=str)
    else:
        text = make_table(summary, layout, fmt, baseline=baseline, significance=significance)
    if out is None:
        click.echo(text)
    else:
        atomic_write_bytes(out, text.encode())
        click.echo(f"wrote {out}")
    if plots is not None:
        from animbench.reports.plots import qualitative_from_runs

        click.echo(f"writing plots into {plots} ...", err=True)
        for path in write_plots(summary, plots) + qualitative_from_runs(loaded, plots / "qualitative"):
            click.echo(f"wrote {path}")


def _add_feature_commands():
    from animbench.cli_features import features
    from animbench.cli_train import demo_cmd, train_cmd

    cli.add_command(train_cmd)
    cli.add_command(demo_cmd)
    cli.add_command(features)
    try:
        from animbench.cli_features import weights
    except ImportError:  # the weights layer is optional during development
        return
    cli.add_command(weights)


_add_feature_commands()


def main(argv=None):
    verbose = "--verbose" in (argv or sys.argv[1:]) or "-v" in (argv or sys.argv[1:])
    try:
        cli.main(args=argv, prog_name="animbench", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("animbench: aborted", err=True)
        sys.exit(130)
    except click.ClickException as e:  # bad option values: one line, like every other user error
        hint = ""
        ctx = getattr(e, "ctx", None)
        if ctx is not None:
            hint = f" (see `{ctx.command_path} --help`)"
        click.echo(f"animbench: error: {e.format_message()}{hint}", err=True)
        sys.exit(e.exit_code)
    except UserError as e:
        if verbose:
            traceback.print_exc()
        click.echo(f"animbench: error: {e.message}", err=True)
        sys.exit(e.exit_code)
    except KeyboardInterrupt:
        click.echo("animbench: interrupted (finished videos are kept; rerun the same command to resume)", err=True)
        sys.exit(130)
    except OSError as e:  # filesystem errors on the user's paths (disk full, read-only, a file where a dir goes)
        from animbench.validation import os_error_message

        if verbose:
            traceback.print_exc()
        click.echo(f"animbench: error: {os_error_message(e)}", err=True)
        sys.exit(2)
    except click.exceptions.Exit as e:
        sys.exit(e.exit_code)
    sys.exit(0)


if __name__ == "__main__":
    main()
