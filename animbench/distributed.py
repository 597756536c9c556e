"""Process-group setup for `torchrun --nproc_per_node=N -m animbench train ...` (NCCL on GPUs, gloo on CPU).

Each rank trains on its own shard of every batch; gradients are averaged with all-reduce after each backward
(what DistributedDataParallel does) and buffers (BatchNorm statistics) are broadcast from rank 0; only rank 0
writes files. Without torchrun's environment variables this is a single process.
"""
from __future__ import annotations

import contextlib
import os

import torch


@contextlib.contextmanager
def distributed_context(device: str):
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        yield 0, 1, device
        return
    import torch.distributed as dist

    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = device.startswith("cuda")
    if use_cuda:
        if local_rank >= torch.cuda.device_count():
            from animbench.errors import UserError

            raise UserError(f"torchrun started more processes per node than this node has GPUs "
                            f"({torch.cuda.device_count()}); use --nproc_per_node={torch.cuda.device_count()}")
        torch.cuda.set_device(local_rank)
        device = f"cuda:{local_rank}"
    dist.init_process_group("nccl" if use_cuda else "gloo")
    try:
        yield rank, world, device
    finally:
        dist.barrier()
        dist.destroy_process_group()
