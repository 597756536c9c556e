"""Training pairs (source, driving) drawn as FOMM does: two sorted random frames of one video per item.

Deterministic given (seed, epoch, index) — no hidden RNG state — so distributed training and exact resume
reproduce the same batches. With `id_sampling`, an item is a person id (name.split('#')[0]) and a random
video of that person is used, as FOMM's vox/taichi configs do.
"""
from __future__ import annotations

import numpy as np
import torch

from animbench.data.convert import to_float_tensor


class FramePairs(torch.utils.data.Dataset):
    def __init__(self, dataset, num_repeats: int = 1, id_sampling: bool = False, seed: int = 0,
                 hflip: bool = False, time_flip: bool = False):
        self.videos = list(dataset.videos)
        if not self.videos:
            from animbench.errors import UserError

            raise UserError(f"{dataset.root}/{dataset.split}: no training videos")
        self.groups = {}
        for v in self.videos:
            key = v.name.split("#")[0] if id_sampling else v.name
            self.groups.setdefault(key, []).append(v)
        self.keys = sorted(self.groups)
        self.num_repeats, self.seed, self.epoch = num_repeats, seed, 0
        self.hflip, self.time_flip = hflip, time_flip

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.keys) * self.num_repeats

    def __getitem__(self, index: int):
        rng = np.random.default_rng([self.seed, self.epoch, index])
        group = self.groups[self.keys[index % len(self.keys)]]
        video = group[int(rng.integers(len(group)))]
        frames = video.read_frames(np.sort(rng.choice(video.num_frames, 2, replace=True)))
        if self.time_flip and rng.random() < 0.5:  # FOMM: a time flip returns at once, skipping the h-flip
            frames = frames[::-1]
        elif self.hflip and rng.random() < 0.5:
            frames = frames[:, :, ::-1]
        pair = to_float_tensor(np.ascontiguousarray(frames))
        return {"source": pair[0], "driving": pair[1], "name": video.name}
