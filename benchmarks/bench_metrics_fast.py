"""The per-frame pixel suite (L1, PSNR, SSIM + masked PSNR/SSIM for a soft "salient" mask and top10..top50, and
their inversions: 27 numbers per frame) three ways on the same frames, side by side in one process:
a plain scikit-image loop, `compute_frame_metrics` (exact float64 path) and `fast_frame_metrics`.

    python benchmarks/bench_metrics_fast.py --frames 16 --size 256 --repeats 5 [--json out.json]

Each method runs `--repeats` times, interleaved, and the best time counts (the machine is shared: the load
average is reported). Deviations are max-abs against scikit-image over every value (PSNR in dB).
"""
from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np
import torch
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from animbench.masks import topk_masks
from animbench.metrics import column_name, compute_frame_metrics
from animbench.metrics.fast import fast_frame_metrics


def make_inputs(frames: int, size: int, seed: int = 0):
    """The frames and masks of bench_metrics.py: noisy copies of random frames, a soft random mask, top-k masks."""
    rng = torch.Generator().manual_seed(seed)
    gt = torch.rand(frames, 3, size, size, generator=rng, dtype=torch.float64)
    pred = (gt + 0.05 * torch.randn(gt.shape, generator=rng, dtype=torch.float64)).clamp(0, 1)
    salient = torch.rand(frames, 1, size, size, generator=rng, dtype=torch.float64)
    occ = torch.rand(frames, 1, 64, 64, generator=rng)
    bg = torch.rand(frames, 1, 64, 64, generator=rng) * 0.6
    masks = {"salient": salient, **{k: v.double() for k, v in topk_masks(occ, bg, size=(size, size)).items()}}
    return pred, gt, masks


def skimage_suite(pred: np.ndarray, gt: np.ndarray, masks: dict) -> dict:
    """What a user would write with scikit-image, per frame and per mask; {column: values}."""
    out = {}
    for t in range(pred.shape[0]):
        p, g = pred[t], gt[t]
        vals = {"l1": np.abs(p - g).mean(), "psnr": peak_signal_noise_ratio(g, p, data_range=1.0),
                "ssim": structural_similarity(g, p, channel_axis=-1, data_range=1.0)}
        for name, m in masks.items():
            for inverted, mm in ((False, m[t][..., None]), (True, 1 - m[t][..., None])):
                vals[column_name("psnr", name, inverted)] = peak_signal_noise_ratio(g * mm, p * mm, data_range=1.0)
                vals[column_name("ssim", name, inverted)] = structural_similarity(g * mm, p * mm, channel_axis=-1,
                                                                                 data_range=1.0)
        for k, v in vals.items():
            out.setdefault(k, []).append(float(v))
    return {k: np.array(v) for k, v in out.items()}


def deviation(ours: dict, ref: dict) -> dict:
    dev = {}
    for metric in ("l1", "psnr", "ssim"):
        cols = [k for k in ref if k.split(".")[0] == metric]
        vals = [np.abs(np.asarray(ours[k], dtype=np.float64) - ref[k]) for k in cols]
        dev[metric] = float(np.nanmax(np.concatenate(vals)))
    return dev


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None,
                        help="fast_frame_metrics worker threads (default: torch.get_num_threads())")
    parser.add_argument("--skip-exact", action="store_true", help="leave out compute_frame_metrics")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON here")
    args = parser.parse_args()
    pred, gt, masks = make_inputs(args.frames, args.size)
    np_pred, np_gt = pred.permute(0, 2, 3, 1).numpy(), gt.permute(0, 2, 3, 1).numpy()
    np_masks = {k: v[:, 0].numpy() for k, v in masks.items()}
    load_before = os.getloadavg()

    methods = {"skimage": lambda: skimage_suite(np_pred, np_gt, np_masks),
               "fast": lambda: fast_frame_metrics(pred, gt, masks=masks, threads=args.threads)}
    if not args.skip_exact:
        methods["exact"] = lambda: compute_frame_metrics(pred, gt, masks=masks, exact=True)
    best = {k: float("inf") for k in methods}
    results = {}
    for _ in range(args.repeats):
        for name, fn in methods.items():
            start = time.perf_counter()
            results[name] = fn()
            best[name] = min(best[name], time.perf_counter() - start)
    fps = {k: args.frames / v for k, v in best.items()}
    ref = results["skimage"]
    report = {
        "frames": args.frames, "size": args.size, "repeats": args.repeats,
        "numbers_per_frame": len(results["fast"]), "torch_threads": torch.get_num_threads(),
        "fast_threads": args.threads or torch.get_num_threads(),
        "cpu_count": os.cpu_count(), "load_avg_before": load_before, "load_avg_after": os.getloadavg(),
        "frames_per_s": fps,
        "fast_vs_skimage": fps["fast"] / fps["skimage"],
        "max_abs_dev_vs_skimage": {k: deviation(v, ref) for k, v in results.items() if k != "skimage"},
    }
    if "exact" in fps:
        report["exact_vs_skimage"] = fps["exact"] / fps["skimage"]
        report["fast_vs_exact"] = fps["fast"] / fps["exact"]
    print(f"{args.frames} frames of {args.size}², {report['numbers_per_frame']} numbers per frame, "
          f"load average {load_before[0]:.2f} -> {report['load_avg_after'][0]:.2f} on {os.cpu_count()} CPUs")
    for name in methods:
        dev = report["max_abs_dev_vs_skimage"].get(name)
        extra = "" if dev is None else (f"   max |dev| vs skimage: SSIM {dev['ssim']:.2e}, PSNR {dev['psnr']:.2e} dB, "
                                        f"L1 {dev['l1']:.2e}")
        print(f"  {name:8s} {fps[name]:8.2f} frames/s  ({fps[name] / fps['skimage']:6.2f}x skimage){extra}")
    print(json.dumps(report, indent=2))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(report, fh, indent=2)


if __name__ == "__main__":
    main()
