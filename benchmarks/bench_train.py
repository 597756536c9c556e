"""Training step time per variant of the ladder (fomm, fomm-adv, unet, cutmix, prioritycut).

    python benchmarks/bench_train.py --size 64 --batch-size 4 --steps 6                 # tiny config, CPU
    python benchmarks/bench_train.py --size 256 --batch-size 20 --device cuda --amp bf16  # full FOMM at 256²

256² uses the full vox-256 FOMM networks on the sample dataset's 256² clips; the perceptual loss uses a
random-initialised VGG-19 (same cost as the real weights). Augmentation probability is forced to 1 so the
mixing steps are timed. Reports the mean time of the steps after the first two (warm-up).
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time

import torch

from animbench.train.config import VARIANTS, load_train_config
from animbench.train.trainer import Trainer


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--size", type=int, default=64, choices=[64, 256])
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--amp", choices=["bf16", "fp16"], default=None)
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS))
    args = parser.parse_args()
    results = {"device": args.device, "size": args.size, "batch_size": args.batch_size, "amp": args.amp}
    if args.device.startswith("cuda"):
        results["gpu"] = torch.cuda.get_device_name()
    for variant in args.variants:
        overrides = {"augmentation": {"warmup_epochs": 0, "p_max": 1.0}, "vgg_weights": "random",
                     "train": {"batch_size": args.batch_size}}
        if args.size == 256:
            overrides["dataset"] = {"name": "sample", "frame_size": [256, 256], "id_sampling": False,
                                    "num_repeats": 40, "hflip": False, "time_flip": False}
        cfg = load_train_config(variant, "tiny" if args.size == 64 else "prioritycut-vox", overrides)
        trainer = Trainer(cfg, tempfile.mkdtemp(), device=args.device, amp=args.amp, progress=False)
        times = []
        for step in range(args.steps):
            if args.device.startswith("cuda"):
                torch.cuda.synchronize()
            start = time.perf_counter()
            trainer.train_step(step)
            if args.device.startswith("cuda"):
                torch.cuda.synchronize()
            times.append(time.perf_counter() - start)
        steady = times[2:] or times
        results[variant] = round(sum(steady) / len(steady), 4)
        if args.device.startswith("cuda"):
            results[variant + "_peak_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
            torch.cuda.reset_peak_memory_stats()
        del trainer
    if "prioritycut" in results and "fomm-adv" in results:
        results["prioritycut_over_fomm_adv"] = round(results["prioritycut"] / results["fomm-adv"], 3)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
