"""Training: the PriorityCut ladder (fomm, fomm-adv, unet, cutmix, prioritycut) on FOMM's modules."""
from animbench.train.config import VARIANTS, load_train_config

__all__ = ["VARIANTS", "load_train_config", "train"]


def train(variant, out, config=None, overrides=None, device="cpu", seed=0, amp=None, channels_last=False,
          max_steps=None, resume=False, progress=True):
    """Train `variant` into `out` (single process, or one rank of a torchrun job); returns the last losses."""
    from pathlib import Path

    from animbench.errors import UserError
    from animbench.results.store import atomic_write_json, build_manifest
    from animbench.distributed import distributed_context
    from animbench.train.trainer import Trainer

    cfg = load_train_config(variant, config, overrides)
    out = Path(out)
    with distributed_context(device) as (rank, world, device):
        trainer = Trainer(cfg, out, device=device, seed=seed, amp=amp, channels_last=channels_last, rank=rank,
                          world_size=world, progress=progress)
        last = out / "checkpoints" / "last.pth.tar"
        if resume:
            if not last.exists():
                raise UserError(f"--resume: no checkpoint in {out / 'checkpoints'}; start without --resume")
            trainer.load(last)
        elif last.exists():
            raise UserError(f"{out}: already holds a training run; pass --resume to continue it or a new --out")
        else:
            trainer.broadcast_parameters()
        if rank == 0:
            atomic_write_json(out / "manifest.json", build_manifest(
                "train", config=cfg, seed=seed, extra={"variant": variant, "device": str(device), "amp": amp,
                                                        "world_size": world}))
        return trainer.fit(max_steps)
