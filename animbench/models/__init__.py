"""Model registry: name -> loader returning an :class:`AnimationModel` in eval mode.

Entries are lazy "module:attr" strings so `import animbench` stays light.
"""
from __future__ import annotations

from animbench.models.base import AnimationModel
from animbench.registry import Registry

MODELS = Registry("model")
MODELS.register("copy-source", "animbench.models.copy_source:load_copy_source",
                help="prediction = source frame (the floor every model must beat)")
MODELS.register("fomm", "animbench.models.fomm.checkpoint:load_fomm",
                help="First Order Motion Model (released vox/taichi/bair-cpk checkpoints)")
MODELS.register("fomm-adv", "animbench.models.fomm.checkpoint:load_fomm_adv",
                help="FOMM+ (adversarial fine-tuning; released vox/taichi-adv-cpk checkpoints)")
MODELS.register("prioritycut", "animbench.models.prioritycut:load_prioritycut",
                help="PriorityCut and the training ladder (checkpoints written by `animbench train`)")


def load_model(name: str, checkpoint=None, config=None, device="cpu", align_corners=True, **options):
    """Build model `name` with weights from `checkpoint` (path) and `config` (bundled name or YAML path)."""
    loader = MODELS.get(name)
    return loader(checkpoint=checkpoint, config=config, device=device, align_corners=align_corners, **options)


__all__ = ["AnimationModel", "MODELS", "load_model"]
