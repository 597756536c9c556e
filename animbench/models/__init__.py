"""Model registry: name -> loader returning an :class:`AnimationModel` in eval mode.

Entries are lazy "module:attr" strings so `import animbench` stays light.
"""
from __future__ import annotations

from animbench.errors import UserError
from animbench.models.base import AnimationModel
from animbench.registry import Registry

MODELS = Registry("model")
MODELS.register("copy-source", "animbench.models.copy_source:load_copy_source",
                help="prediction = source frame (the floor every model must beat)")
MODELS.register("fomm", "animbench.models.fomm.checkpoint:load_fomm",
                help="First Order Motion Model (released vox/taichi/bair-cpk checkpoints)")
MODELS.register("fomm-adv", "animbench.models.fomm.checkpoint:load_fomm_adv",
                help="FOMM+ (adversarial fine-tuning; released vox/taichi-adv-cpk checkpoints)")
MODELS.register("x2face", "animbench.models.x2face:load_x2face",
                help="X2Face (Wiles et al. 2018; the released VoxCeleb model, 256x256)")
MODELS.register("monkeynet", "animbench.models.monkeynet:load_monkeynet",
                help="Monkey-Net (Siarohin et al. 2019; released taichi/nemo 64, moving-gif 128, vox 256)")
MODELS.register("prioritycut", "animbench.models.prioritycut:load_prioritycut",
                help="PriorityCut and the training ladder (checkpoints written by `animbench train`)")


#: rungs of `animbench train` that are not models of their own (their checkpoints load as prioritycut)
LADDER_ALIASES = {"unet", "cutmix"}
#: models whose numbers mean nothing without trained weights
NEEDS_WEIGHTS = {"fomm", "fomm-adv", "prioritycut", "x2face", "monkeynet"}


def load_model(name: str, checkpoint=None, config=None, device="cpu", align_corners=True,
               random_weights: bool = False, **options):
    """Build model `name` with weights from `checkpoint` (path) and `config` (bundled name or YAML path).

    Models that need weights refuse to run without a checkpoint unless `random_weights=True` (seeded random
    initialisation, for smoke tests and timing; results are labelled as such).
    """
    if name in LADDER_ALIASES:
        raise UserError(f"--model {name}: checkpoints of the training ladder (fomm, fomm-adv, unet, cutmix, "
                        f"prioritycut rungs) are evaluated with --model prioritycut; the variant is read from the "
                        f"checkpoint and names the run")
    loader = MODELS.get(name)
    if name in NEEDS_WEIGHTS and checkpoint is None and not random_weights:
        raise UserError(f"--model {name} needs --checkpoint (its trained weights); a randomly initialised "
                        f"model gives meaningless numbers. Pass --random-weights to run one on purpose")
    return loader(checkpoint=checkpoint, config=config, device=device, align_corners=align_corners, **options)


__all__ = ["AnimationModel", "MODELS", "load_model"]
