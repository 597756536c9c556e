"""`animbench eval` / `animbench reconstruct`: dataset → model → reconstruction → per-frame metrics → results.

One function, :func:`run_eval`, serves both commands (`reconstruct` = L1 only, strips and maps on disk).
Per video: reconstruct in batches, compute every requested per-frame metric (masked variants included),
write the PNG strip / motion maps and the video's rows to the results store. A rerun with the same settings
skips finished videos (resume); a rerun with different settings into the same directory is refused.
"""
from __future__ import annotations

import hashlib
import json
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy as np
import pandas as pd
import torch

from animbench.errors import UserError
from animbench.eval.sources import TopkSource, check_reconstruction, png_batches, salient_for
from animbench.results.store import RunStore, build_manifest, file_sha256
from animbench.features.metrics import resolve_feature_metric
from animbench.validation import check_output_dir, parse_device, parse_topk

TOPK_DEFAULT = (10, 20, 30, 40, 50)


@dataclass
class EvalSpec:
    model: str
    out: Path
    dataset: Optional[str] = None
    data_root: Optional[Path] = None
    checkpoint: Optional[Path] = None
    config: Optional[str] = None
    metrics: Tuple[str, ...] = ("l1", "psnr", "ssim")
    masks: Tuple[str, ...] = ()             # "salient", "topk"
    topk_from: Optional[Path] = None        # baseline run dir holding maps/; default: this run's own maps
    topk_ks: Tuple[int, ...] = TOPK_DEFAULT
    topk_threshold: Optional[float] = None  # background-confidence threshold (None = the mask module's default)
    salient_backend: str = "builtin"
    salient_dir: Optional[Path] = None      # for salient_backend="folder"
    salient_matting: str = "feather"        # builtin backend: "feather" or "cf" (pymatting closed-form)
    from_reconstruction: Optional[Path] = None  # reuse the PNG strips of an earlier `reconstruct` run
    ci: str = "video"
    max_videos: Optional[int] = None
    device: str = "cpu"
    batch_size: int = 8
    align_corners: bool = True
    frame_size: Optional[Tuple[int, int]] = None
    save_png: bool = True
    save_maps: bool = False
    trust_checkpoint: bool = False
    label: Optional[str] = None
    seed: int = 0
    kind: str = "eval"
    random_weights: bool = False            # deliberately evaluate a randomly initialised model (labelled)
    psnr_identical: str = "cap"             # PSNR of identical frames: "cap" (100 dB) or "skip" (NaN)
    save_visualization: bool = False        # viz/<video>.png: source | driving | prediction | occlusion per frame
    feature_weights: Optional[Dict[str, Path]] = None   # extractor kind -> weight file (default: the cache)
    exact_model: bool = False               # bit-exact model path (FOMM: no fused decoder on CPU)
    exact_metrics: bool = False             # float64 metric path, = scikit-image to 1e-12 (default: the fast suite)
    feature_options: Optional[Dict[str, dict]] = None   # extractor kind -> options (e.g. face-id resize)


def _validate(spec: EvalSpec) -> None:
    from animbench.metrics import METRICS

    for name in spec.metrics:
        if resolve_feature_metric(name, spec.dataset) is None:
            METRICS.get(name)  # did-you-mean error for typos
    bad = [m for m in spec.masks if m not in ("salient", "topk")]
    if bad:
        raise UserError(f"--masks {','.join(bad)}: unknown mask set; use salient and/or topk")
    if spec.ci not in ("frame", "video"):
        raise UserError(f"--ci {spec.ci}: use 'frame' or 'video'")
    if spec.batch_size < 1:
        raise UserError(f"--batch-size {spec.batch_size}: must be at least 1")
    if spec.max_videos is not None and spec.max_videos < 1:
        raise UserError(f"--max-videos {spec.max_videos}: must be at least 1 (leave it out for all videos)")
    if spec.psnr_identical not in ("cap", "skip"):
        raise UserError(f"--psnr-identical {spec.psnr_identical}: use cap or skip")
    parse_device(spec.device)
    if "topk" in spec.masks:
        parse_topk(spec.topk_ks)
    if spec.dataset is None and spec.data_root is None:
        raise UserError("no data: pass --dataset (vox, taichi, bair, sample) and/or --data-root DIR")
    if spec.salient_dir is not None and not ("salient" in spec.masks and spec.salient_backend == "folder"):
        raise UserError("--salient-dir is read only with --masks salient --salient folder; add those or drop it")
    if spec.random_weights and spec.checkpoint is not None:
        raise UserError("--random-weights and --checkpoint exclude each other; drop one")


def _run_key(identity: dict) -> str:
    return hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _resolve_dataset(spec: EvalSpec, model):
    """The test set at the frame size the rules give: --size, else the model's config (FOMM frame_shape,
    Monkey-Net image_shape), else the dataset preset, else the first frame found. Returns (dataset, rule)."""
    from animbench.data import open_dataset

    native = getattr(model, "native_size", None) if model is not None else None
    if spec.frame_size is not None:
        size, rule = tuple(spec.frame_size), "--size"
    elif native:
        size, rule = tuple(native), "model config"
    elif spec.dataset == "sample":  # exists at 64 and 256
        size, rule = (64, 64), "dataset preset"
    elif spec.dataset is not None:
        size, rule = None, "dataset preset"  # open_dataset takes the preset's size
    else:
        size, rule = None, "first frame"
    return open_dataset(name=spec.dataset, root=spec.data_root, split="test", frame_size=size), rule


def _check_model_size(spec: EvalSpec, model, dataset) -> Optional[str]:
    """Refuse sizes a model cannot run at; a fully convolutional model runs at another size with a warning."""
    native = getattr(model, "native_size", None) if model is not None else None
    size = tuple(dataset.frame_size)
    if not native or tuple(native) == size:
        return None
    if not getattr(model, "fully_convolutional", False):
        raise UserError(f"{dataset.root}: frames are {size[0]}x{size[1]}, model {spec.model} works only at "
                        f"{native[0]}x{native[1]}; resize the frames to {native[0]}x{native[1]}")
    note = (f"model {spec.model} was configured for {native[0]}x{native[1]} frames and runs at {size[0]}x{size[1]} "
            f"(fully convolutional, as the authors' code allows); numbers are not comparable with native-size runs")
    print(f"animbench: warning: {note}", file=sys.stderr)
    return note


def run_eval(spec: EvalSpec, progress: bool = True) -> RunStore:
    """Run (or resume) an evaluation; returns the run's store. Prints nothing: see `summarize_run`.

    Under torchrun (`torchrun --nproc_per_node=N -m animbench eval ...`) the videos still to do are split
    across the ranks (rank r takes every N-th), each rank writes its videos' parts into the same run
    directory, and rank 0 writes the manifest first and the final table last; resuming works with any number
    of ranks since a part is one video.
    """
    from dataclasses import replace

    from animbench.distributed import distributed_context

    with distributed_context(spec.device) as (rank, world, device):
        if world > 1:
            spec = replace(spec, device=device)
        return _run_eval(spec, progress and rank == 0, rank, world)


def _on_rank0(rank: int, world: int, fn) -> None:
    """Run `fn` on rank 0 only; every rank raises the same UserError if it failed there."""
    error = None
    if rank == 0:
        try:
            fn()
        except UserError as e:
            error = e.message
    if world > 1:
        import torch.distributed as dist

        box = [error]
        dist.broadcast_object_list(box, src=0)
        error = box[0]
    if error is not None:
        raise UserError(error)


def _gather_error(world: int, error) -> None:
    """After the per-rank work: if any rank failed, every rank raises (and nobody finalizes the table)."""
    if world > 1:
        import torch.distributed as dist

        errors = [None] * world
        dist.all_gather_object(errors, error)
        error = next((e for e in errors if e is not None), None)
    if error is not None:
        raise UserError(error)


def _run_eval(spec: EvalSpec, progress: bool, rank: int, world: int) -> RunStore:
    from tqdm.auto import tqdm

    from animbench.data.manifest import dataset_manifest
    from animbench.models import load_model
    from animbench.progress import progress_options

    _validate(spec)
    pixel_metrics = tuple(m for m in spec.metrics if resolve_feature_metric(m, spec.dataset) is None)
    feature_metrics = [resolve_feature_metric(m, spec.dataset) for m in spec.metrics
                       if resolve_feature_metric(m, spec.dataset) is not None]
    out = Path(spec.out)
    model = None
    recon = check_reconstruction(spec) if spec.from_reconstruction else None
    if recon is None:
        model = load_model(spec.model, checkpoint=spec.checkpoint, config=spec.config, device=spec.device,
                           align_corners=spec.align_corners, trust_checkpoint=spec.trust_checkpoint,
                           random_weights=spec.random_weights)
        if spec.exact_model and hasattr(model, "fused_decoder"):
            model.fused_decoder = False
    dataset, size_rule = _resolve_dataset(spec, model)
    check_output_dir(out, forbidden_inside=[dataset.root / "test"])
    size_note = _check_model_size(spec, model, dataset)
    videos = dataset.videos[: spec.max_videos] if spec.max_videos else dataset.videos
    if not videos:
        raise UserError(f"{dataset.root}/test: no videos found; check the path (`animbench data check`)")
    data_manifest = dataset_manifest(dataset)
    scorers = None
    if feature_metrics:
        from animbench.eval.feature_scorer import FeatureScorers

        scorers = FeatureScorers(feature_metrics, weights=spec.feature_weights or {}, device=spec.device,
                                 options=spec.feature_options)
    if recon is not None and recon["dataset_manifest_hash"] != data_manifest["hash"]:
        raise UserError(f"--from-reconstruction {spec.from_reconstruction}: its strips were made from another "
                        f"test set (dataset hash {str(recon['dataset_manifest_hash'])[:12]} != "
                        f"{data_manifest['hash'][:12]} of {dataset.root}); score it against the data it "
                        f"reconstructed, or reconstruct this dataset")

    want_topk = "topk" in spec.masks
    topk_from = spec.topk_from
    if want_topk and topk_from is None and recon is not None and (Path(spec.from_reconstruction) / "maps").is_dir():
        topk_from = Path(spec.from_reconstruction)  # the reconstruction run saved its maps: they define top-k
    own_maps = spec.save_maps or (want_topk and topk_from is None)
    if own_maps and model is not None and not getattr(model, "has_motion_maps", False):
        raise UserError(f"--model {spec.model} has no occlusion/background maps; top-k masks need "
                        f"--topk-from BASELINE_RUN (a FOMM run made with --save-maps)")
    if own_maps and model is None:
        raise UserError("--from-reconstruction cannot produce motion maps; pass --topk-from BASELINE_RUN")
    maps_dir = Path(topk_from) / "maps" if topk_from else out / "maps"
    topk = TopkSource(maps_dir, spec.topk_ks, spec.topk_threshold) if want_topk else None

    checkpoint_sha = file_sha256(spec.checkpoint) if spec.checkpoint else None
    identity = {
        "model": spec.model, "checkpoint_sha256": checkpoint_sha, "config": spec.config,
        "model_settings": model.describe() if model is not None and hasattr(model, "describe") else None,
        "align_corners": spec.align_corners, "dataset_manifest_hash": data_manifest["hash"],
        "metrics": list(spec.metrics), "masks": list(spec.masks), "topk_ks": list(spec.topk_ks),
        "features": scorers.identity() if scorers else None,
        "topk_threshold": spec.topk_threshold, "topk_from": str(topk_from) if topk_from else None,
        "salient_backend": spec.salient_backend if "salient" in spec.masks else None,
        "salient_matting": spec.salient_matting if "salient" in spec.masks else None,
        "from_reconstruction": recon,
        "random_weights": spec.random_weights, "psnr_identical": spec.psnr_identical,
        "frame_size": list(dataset.frame_size), "exact_metrics": spec.exact_metrics,
    }
    run_key = _run_key(identity)
    store = RunStore(out)

    def open_store():
        _open_store(store, spec, run_key, extra)

    extra = {
        "run_key": run_key, "identity": identity, "model": spec.model, "label": _default_label(spec),
        "dataset": dataset.name, "dataset_manifest": data_manifest,
        "weights": "random (seeded, --random-weights)" if spec.random_weights else
                   ("checkpoint" if spec.checkpoint else None),
        "pooling": getattr(model, "pooling", "frame"),
        "metric_info": {m.name: m.info() for m in feature_metrics},
        "features": None if scorers is None else {
            "extractors": scorers.describe(),
            "predictions": "uint8 floor(255*x) in memory (the bytes of the PNG strips)" if recon is None
                           else f"PNG strips of {spec.from_reconstruction}"},
        "variant": getattr(model, "trained_variant", None),
        "frame_size": {"size": list(dataset.frame_size), "rule": size_rule,
                       "native": list(model.native_size) if getattr(model, "native_size", None) else None,
                       "warning": size_note},
        "protocol": {"source_frame": 0, "include_t0": True, "align_corners": spec.align_corners,
                     "prediction_values": "float32" if recon is None else "png-uint8 (floor)",
                     "png_quantisation": "floor(255*x)", "psnr": "mean of per-frame PSNR, range 1",
                     "psnr_identical": spec.psnr_identical,
                     "metric_path": _metric_path(spec),
                     "ssim": "skimage defaults (7x7 uniform, sample covariance), RGB mean",
                     "masked": "metric(M*pred, M*gt) over the full frame"}}
    _on_rank0(rank, world, open_store)

    started = time.time()
    store.check_parts()
    todo = [v for v in videos if not store.has_video(v.name)]
    mine = todo[rank::world]
    bar = tqdm(total=len(videos), initial=len(videos) - len(todo), unit="video", disable=not progress,
               desc=f"{spec.kind} {spec.model}", **progress_options())
    error = None
    try:
        for video in mine:
            rows = _evaluate_video(spec, model, dataset, video, topk, own_maps, out, pixel_metrics, scorers)
            store.write_video(rows)
            bar.update(world)
    except UserError as e:
        error = e.message
        if world == 1:
            raise
    finally:
        bar.close()  # before any error line, so it is not glued onto the bar
    _gather_error(world, error)

    def finalize():
        store.finalize()
        timing = store.read_manifest().get("timing", {})
        timing["seconds_last_invocation"] = round(time.time() - started, 3)
        timing["videos_last_invocation"] = len(todo)
        timing["processes"] = world
        store.update_manifest(timing=timing, num_videos=len(videos))
        if scorers is not None and "body-pose" in scorers.kinds:
            from animbench.eval.feature_scorer import count_missing_gt

            store.update_manifest(count_missing_gt=count_missing_gt(store.read_frames()))

    _on_rank0(rank, world, finalize)
    return store


def _open_store(store: RunStore, spec: EvalSpec, run_key: str, extra: dict) -> None:
    """Write the manifest of a new run, or check that the existing one is the same run (resume)."""
    out = store.root
    if store.has_manifest() and not store.has_any_video():
        store.manifest_path.unlink()  # an earlier attempt failed before finishing a video: start afresh
    if store.has_manifest():
        previous = store.read_manifest()
        if previous.get("run_key") != run_key:
            raise UserError(f"{out}: holds a run with different settings (run key {previous.get('run_key')} != "
                            f"{run_key}); pass a new --out directory, or delete {out} to start over")
        if spec.label is not None and previous.get("label") != _default_label(spec):
            store.update_manifest(label=_default_label(spec))  # the label names the run; it changes no number
            print(f"animbench: note: {out} relabelled {previous.get('label')!r} -> {_default_label(spec)!r}",
                  file=sys.stderr)
    else:
        store.write_manifest(build_manifest(
            spec.kind, config={k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(spec).items()},
            seed=spec.seed, dataset_manifest_hash=extra["dataset_manifest"]["hash"], checkpoint=spec.checkpoint,
            extra=extra))


def _evaluate_video(spec, model, dataset, video, topk, own_maps, out: Path, pixel_metrics, scorers) -> pd.DataFrame:
    from animbench.data.convert import to_uint8_truncate
    from animbench.eval.reconstruct import MapWriter, StripWriter, VisualizationWriter, reconstruct_video

    strip = StripWriter(out / "png", video.name) if spec.save_png and model is not None else None
    maps_writer = MapWriter(out / "maps", video.name) if own_maps else None
    viz = VisualizationWriter(out / "viz", video.name) if spec.save_visualization and model is not None else None
    salient = salient_for(spec, dataset, video) if "salient" in spec.masks else None

    if model is not None:
        batches = reconstruct_video(model, video, device=spec.device, batch_size=spec.batch_size,
                                    want_maps=own_maps or (viz is not None and model.has_motion_maps))
    else:
        batches = png_batches(Path(spec.from_reconstruction) / "png", video, spec.batch_size,
                               dataset.frame_size)

    columns: Dict[str, List[np.ndarray]] = {}
    predictions_uint8 = []
    frames_done = 0
    baseline_maps = topk.for_video(video.name) if topk is not None and not own_maps else None
    for batch in batches:
        n = batch.prediction.shape[0]
        _check_finite(spec, video, batch)
        if strip is not None:
            strip.add(batch.prediction)
        if viz is not None:
            viz.add(batch)
        topk_masks = None
        if maps_writer is not None:
            maps_writer.add(batch.occlusion, batch.background)
        if topk is not None:
            if baseline_maps is not None:
                occ = baseline_maps["occlusion"][batch.start:batch.start + n]
                bg = baseline_maps["background"][batch.start:batch.start + n]
            else:  # this run is its own baseline: the same float16 rounding as the stored maps
                occ = batch.occlusion[:, 0].cpu().numpy().astype(np.float16)
                bg = batch.background[:, 0].cpu().numpy().astype(np.float16)
            topk_masks = topk.masks(occ, bg, n, batch.prediction.shape[-2:])
        _score(spec, pixel_metrics, batch, salient, topk_masks, columns)
        if scorers is not None:
            predictions_uint8.append(to_uint8_truncate(batch.prediction.cpu()))
        frames_done += n
    if maps_writer is not None:
        maps_writer.close()
    if strip is not None:
        strip.close()
    if viz is not None:
        viz.close()
    n = frames_done
    table = {"model": [_default_label(spec) or spec.model] * n, "dataset": [dataset.name] * n,
             "video": [video.name] * n, "frame": np.arange(n, dtype=np.int64)}
    table.update({name: np.concatenate(values) for name, values in columns.items()})
    if scorers is not None:
        table.update(scorers.score_video(dataset, video, np.concatenate(predictions_uint8)))
    return pd.DataFrame(table)


def _score(spec, pixel_metrics, batch, salient, topk_masks, columns) -> None:
    from animbench.metrics import compute_frame_metrics

    n = batch.prediction.shape[0]
    masks = {}
    if salient is not None:
        masks["salient"] = torch.from_numpy(salient[batch.start:batch.start + n])[:, None].to(batch.prediction)
    if topk_masks is not None:
        masks.update({name: m.to(batch.prediction) for name, m in topk_masks.items()})
    if not pixel_metrics:
        return
    values = compute_frame_metrics(batch.prediction, batch.driving, metrics=pixel_metrics, masks=masks or None,
                                   identical=spec.psnr_identical, exact=spec.exact_metrics)
    for name, v in values.items():
        columns.setdefault(name, []).append(v.detach().cpu().numpy().astype(np.float64))


def _metric_path(spec) -> str:
    if spec.exact_metrics or not spec.device.startswith("cpu"):
        return "exact float64 (= scikit-image to 1e-12)"
    return "fast (metrics/fast.py: float32 box sums + float64 fallback; <= 1e-7 from scikit-image)"


def _default_label(spec) -> Optional[str]:
    """The run's label: the user's, or None (reports pick the model's display name); random weights say so."""
    if spec.random_weights:
        return f"{spec.label or spec.model} (random weights)"
    return spec.label


def _check_finite(spec, video, batch) -> None:
    """NaN/inf predictions (broken weights, overflow) stop the run: never a plausible-looking NaN table."""
    finite = torch.isfinite(batch.prediction).flatten(1).all(dim=1)
    if not bool(finite.all()):
        frame = batch.start + int((~finite).nonzero()[0])
        source = f"checkpoint {spec.checkpoint}" if spec.checkpoint else (
            f"reconstruction {spec.from_reconstruction}" if spec.from_reconstruction else f"model {spec.model}")
        raise UserError(f"video {video.name!r} frame {frame}: the prediction holds NaN/inf values; {source} "
                        f"is broken (non-finite weights?) — nothing was scored for this video")
