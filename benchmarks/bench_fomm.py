"""Reconstruction throughput of FOMM at full vox-256 size with seeded random weights.

Compares the authors' reconstruction loop semantics (source keypoints once per video, then for every frame:
keypoint detector + the FULL generator, one driving frame at a time, under no_grad) with animbench's path
(source keypoints AND generator encoder features once per video, driving frames batched, inference_mode,
optional channels_last). Prints frames/s, the speedup and peak memory.

    python benchmarks/bench_fomm.py --device cpu --frames 8 --batch-size 1
    python benchmarks/bench_fomm.py --device cuda --frames 128 --batch-size 16 --amp bf16
"""
from __future__ import annotations

import argparse
import json
import resource
import time

import torch

from animbench.models.fomm import load_fomm


def _sync(device):
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def official_loop(model, frames, device):
    """One driving frame at a time; the generator re-encodes the source every frame (as reconstruction.py)."""
    with torch.no_grad():
        source = frames[:1]
        kp_source = model.kp_detector(source)
        for t in range(frames.shape[0]):
            driving = frames[t:t + 1]
            kp_driving = model.kp_detector(driving)
            out = model.generator(source, kp_driving=kp_driving, kp_source=kp_source)
    return out["prediction"]


def animbench_path(model, frames, batch_size, amp=None, device="cpu"):
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(amp)
    with torch.inference_mode(), torch.autocast(device.split(":")[0], dtype=dtype, enabled=dtype is not None):
        state = model.prepare_source(frames[:1])
        for i in range(0, frames.shape[0], batch_size):
            out = model.animate(state, frames[i:i + batch_size])
    return out["prediction"]


def timed(fn, device, repeats=1):
    _sync(device)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        _sync(device)
        best = min(best, time.perf_counter() - start)
    return best


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--batch-size", type=int, nargs="+", default=[1])
    parser.add_argument("--channels-last", action="store_true")
    parser.add_argument("--motion-chunk", type=int, default=-1,
                        help="keypoints/dense motion frames per call: 1 = per frame (exact), 0 = all batched, "
                             "-1 = auto (1 on CPU, all on CUDA)")
    parser.add_argument("--amp", choices=["bf16", "fp16"], default=None)
    parser.add_argument("--skip-official", action="store_true")
    parser.add_argument("--exact-model", action="store_true", help="the exact decoder (no fused up blocks)")
    parser.add_argument("--json", default=None, help="also write the results here")
    args = parser.parse_args()

    torch.manual_seed(0)
    model = load_fomm(config="vox-256", device=args.device, seed=0)
    model.motion_chunk = args.motion_chunk if args.motion_chunk >= 0 else "auto"
    model.fused_decoder = False if args.exact_model else "auto"
    frames = torch.rand(args.frames, 3, 256, 256, generator=torch.Generator().manual_seed(0)).to(args.device)
    if args.channels_last:
        model = model.to(memory_format=torch.channels_last)
        frames = frames.contiguous(memory_format=torch.channels_last)
    results = {"device": args.device, "frames": args.frames, "threads": torch.get_num_threads(),
               "decoder": model.describe()["decoder"],
               "channels_last": args.channels_last, "amp": args.amp, "motion_chunk": args.motion_chunk}
    if args.device.startswith("cuda"):
        results["gpu"] = torch.cuda.get_device_name()
        official_loop(model, frames[:2], args.device)  # warm-up (cuDNN autotune, allocator)
        torch.cuda.reset_peak_memory_stats()
    if not args.skip_official:
        t = timed(lambda: official_loop(model, frames, args.device), args.device)
        results["official_fps"] = args.frames / t
        if args.device.startswith("cuda"):
            results["official_peak_mib"] = torch.cuda.max_memory_allocated() / 2**20
    for bs in args.batch_size:
        if args.device.startswith("cuda"):
            animbench_path(model, frames[:bs], bs, args.amp, args.device)
            torch.cuda.reset_peak_memory_stats()
        t = timed(lambda: animbench_path(model, frames, bs, args.amp, args.device), args.device)
        results[f"animbench_fps_bs{bs}"] = args.frames / t
        if args.device.startswith("cuda"):
            results[f"animbench_peak_mib_bs{bs}"] = torch.cuda.max_memory_allocated() / 2**20
        if "official_fps" in results:
            results[f"speedup_bs{bs}"] = results[f"animbench_fps_bs{bs}"] / results["official_fps"]
    with torch.inference_mode():  # how far the default path is from the exact one on these frames
        state = model.prepare_source(frames[:1])
        default = model.animate(state, frames[:2])["prediction"]
        fused, model.fused_decoder = model.fused_decoder, False
        exact = model.animate(state, frames[:2])["prediction"]
        model.fused_decoder = fused
    results["max_abs_vs_exact"] = float((default - exact).abs().max())
    results["process_peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(results, indent=2))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
