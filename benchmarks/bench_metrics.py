"""The full per-frame pixel suite — L1, PSNR, SSIM, plus salient/¬salient and top-k/¬top-k for 5 k's of
PSNR and SSIM (27 numbers per frame) — animbench (batched torch) against a plain scikit-image loop.

    python benchmarks/bench_metrics.py --frames 32 --size 256
"""
from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from animbench.masks import topk_masks
from animbench.metrics import compute_frame_metrics


def skimage_suite(pred: np.ndarray, gt: np.ndarray, masks: dict) -> int:
    """Per frame, per mask: what a user would write with scikit-image. Returns the number of values."""
    n = 0
    for t in range(pred.shape[0]):
        p, g = pred[t], gt[t]
        np.abs(p - g).mean(); n += 1
        peak_signal_noise_ratio(g, p, data_range=1.0); n += 1
        structural_similarity(g, p, channel_axis=-1, data_range=1.0); n += 1
        for m in masks.values():
            for mm in (m[t][..., None], 1 - m[t][..., None]):
                peak_signal_noise_ratio(g * mm, p * mm, data_range=1.0)
                structural_similarity(g * mm, p * mm, channel_axis=-1, data_range=1.0)
                n += 2
    return n


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--frames", type=int, default=32)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    rng = torch.Generator().manual_seed(0)
    gt = torch.rand(args.frames, 3, args.size, args.size, generator=rng, dtype=torch.float64)
    pred = (gt + 0.05 * torch.randn(gt.shape, generator=rng, dtype=torch.float64)).clamp(0, 1)
    salient = torch.rand(args.frames, 1, args.size, args.size, generator=rng, dtype=torch.float64)
    occ = torch.rand(args.frames, 1, 64, 64, generator=rng)
    bg = torch.rand(args.frames, 1, 64, 64, generator=rng) * 0.6
    masks = {"salient": salient, **{k: v.double() for k, v in topk_masks(occ, bg, size=(args.size,) * 2).items()}}

    start = time.perf_counter()
    count = 0
    for i in range(0, args.frames, args.batch_size):
        sl = slice(i, i + args.batch_size)
        out = compute_frame_metrics(pred[sl].to(args.device), gt[sl].to(args.device),
                                    masks={k: v[sl].to(args.device) for k, v in masks.items()})
        count = len(out)
    ours = time.perf_counter() - start

    np_pred, np_gt = pred.permute(0, 2, 3, 1).numpy(), gt.permute(0, 2, 3, 1).numpy()
    np_masks = {k: v[:, 0].numpy() for k, v in masks.items()}
    start = time.perf_counter()
    n_values = skimage_suite(np_pred, np_gt, np_masks)
    reference = time.perf_counter() - start
    print(json.dumps({"frames": args.frames, "size": args.size, "numbers_per_frame": count,
                      "skimage_numbers_per_frame": n_values // args.frames, "threads": torch.get_num_threads(),
                      "animbench_frames_per_s": args.frames / ours, "skimage_frames_per_s": args.frames / reference,
                      "speedup": reference / ours}, indent=2))


if __name__ == "__main__":
    main()
