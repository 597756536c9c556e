"""Reconstruction throughput of X2Face (released size, 256²) and Monkey-Net (a bundled config) with seeded random
weights: the authors' per-frame semantics against animbench's path.

"Official loop": one driving frame per call and everything recomputed per frame — X2Face's demo notebook calls
`model(driving, source)` per frame (the source is re-embedded every call); Monkey-Net's reconstruction.py calls
the generator per frame (the appearance encoder re-encodes the source every frame; source keypoints once).
animbench: the source-only work once per video (`prepare_source`), driving frames batched (`animate`).

    python benchmarks/bench_baselines.py --model x2face --frames 8 --batch-size 1 4
    python benchmarks/bench_baselines.py --model monkeynet --config vox --frames 8 --batch-size 1 4
    python benchmarks/bench_baselines.py --model monkeynet --config taichi --device cuda --frames 128 --batch-size 32
"""
from __future__ import annotations

import argparse
import json
import resource
import time

import torch

from animbench.models import load_model


def _sync(device):
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def official_loop(model, frames):
    with torch.no_grad():
        for t in range(frames.shape[0]):
            out = model.animate(model.prepare_source(frames[:1]), frames[t:t + 1])
    return out["prediction"]


def monkeynet_official_loop(model, frames):
    """Source keypoints once; per frame the keypoint detector and the FULL generator (source re-encoded)."""
    from dataclasses import replace

    with torch.no_grad():
        state = model.prepare_source(frames[:1])
        for t in range(frames.shape[0]):
            fresh = replace(state, skips=model.generator.encode(state.source))
            out = model.animate(fresh, frames[t:t + 1])
    return out["prediction"]


def animbench_path(model, frames, batch_size):
    with torch.inference_mode():
        state = model.prepare_source(frames[:1])
        for i in range(0, frames.shape[0], batch_size):
            out = model.animate(state, frames[i:i + batch_size])
    return out["prediction"]


def timed(fn, device):
    _sync(device)
    start = time.perf_counter()
    fn()
    _sync(device)
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", choices=["x2face", "monkeynet"], required=True)
    parser.add_argument("--config", default=None, help="Monkey-Net config (taichi, nemo, moving-gif, vox)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--batch-size", type=int, nargs="+", default=[1])
    parser.add_argument("--json", default=None)
    args = parser.parse_args()

    model = load_model(args.model, config=args.config, device=args.device, random_weights=True)
    h, w = model.native_size
    frames = torch.rand(args.frames, 3, h, w, generator=torch.Generator().manual_seed(0)).to(args.device)
    results = {"model": args.model, "config": args.config, "size": [h, w], "device": args.device,
               "frames": args.frames, "threads": torch.get_num_threads()}
    if args.device.startswith("cuda"):
        results["gpu"] = torch.cuda.get_device_name()
        animbench_path(model, frames[:2], 2)  # warm-up
    loop = monkeynet_official_loop if args.model == "monkeynet" else official_loop
    results["official_fps"] = args.frames / timed(lambda: loop(model, frames), args.device)
    for bs in args.batch_size:
        fps = args.frames / timed(lambda: animbench_path(model, frames, bs), args.device)
        results[f"animbench_fps_bs{bs}"] = fps
        results[f"speedup_bs{bs}"] = fps / results["official_fps"]
    results["process_peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(results, indent=2))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
