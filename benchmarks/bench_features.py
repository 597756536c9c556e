"""Feature extraction throughput (frames/s) of animbench's extractors against the per-frame way of
pose-evaluation's extract.py (one frame per network call, preprocessing per frame), on the same frames and
seeded random weights (the speed of a network does not depend on its weights).

    python benchmarks/bench_features.py --kind face-id --frames 64
    python benchmarks/bench_features.py --kind body-id --frames 32 --device cuda
"""
from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch


def frames(n: int, size: int) -> np.ndarray:
    from animbench.data.sample import iter_sample_videos

    video = next(f for split, _, f in iter_sample_videos(256) if split == "test")
    out = np.concatenate([video] * (n // len(video) + 1))[:n]
    if size != 256:
        import cv2

        out = np.stack([cv2.resize(f, (size, size), interpolation=cv2.INTER_AREA) for f in out])
    return out


def timed(fn, device):
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    start = time.perf_counter()
    fn()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kind", choices=["face-id", "body-id", "body-pose", "face-pose"], required=True)
    parser.add_argument("--frames", type=int, default=32)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()

    from animbench.features.registry import load_extractor

    video = frames(args.frames, args.size)
    extractor = load_extractor(args.kind, device=args.device, random_weights=True)
    extractor.extract(video[:2])  # warm-up (numba, cuDNN)
    per_frame = timed(lambda: [extractor.extract(video[i:i + 1]) for i in range(len(video))], args.device)
    batched = timed(lambda: extractor.extract(video), args.device)
    results = {"kind": args.kind, "frames": args.frames, "size": args.size, "device": args.device,
               "threads": torch.get_num_threads(), "per_frame_fps": args.frames / per_frame,
               "animbench_fps": args.frames / batched, "speedup": per_frame / batched}
    if args.device.startswith("cuda"):
        results["gpu"] = torch.cuda.get_device_name()
    print(json.dumps(results, indent=2))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
