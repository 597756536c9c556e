"""Loading FOMM checkpoints (the authors' *.pth.tar files and animbench's own).

Released files are torch-1.0 legacy pickles holding {generator, kp_detector, [discriminator, optimizer_*,
epoch]} state_dicts. We read `generator` and `kp_detector` only, strip a `module.` prefix, tolerate
absent/extra `num_batches_tracked`, and load strictly; mismatches become one clear error naming the
likely config mismatch.
"""
from __future__ import annotations

import torch

from animbench.errors import UserError
from animbench.models.checkpoints import load_module_state as _load_module_state
from animbench.models.checkpoints import read_checkpoint
from animbench.models.fomm.model import FOMMModel, load_config


def load_module_state(module: torch.nn.Module, state, what: str, path) -> None:
    _load_module_state(module, state, what, path, family="FOMM", hint=_hint)


def _hint(shapes, missing, unexpected) -> str:
    text = " ".join(shapes + missing + unexpected)
    if "kp." in text or "jacobian" in text:
        return "the number of keypoints or the jacobian setting differs: pass the config the checkpoint was trained with"
    if "dense_motion_network" in text:
        return "dense-motion settings differ (block_expansion/num_blocks): pass the matching --config"
    if "bottleneck" in text or "down_blocks" in text or "up_blocks" in text:
        return "generator depth/width differs: pass the matching --config"
    return "pass the --config the checkpoint was trained with"


def load_fomm(checkpoint=None, config=None, device="cpu", align_corners: bool = True, adv: bool = False,
              trust_checkpoint: bool = False, seed: int = 0, **unused) -> FOMMModel:
    """A FOMM (`adv=False`) or FOMM+ (`adv=True`) model in eval mode.

    `config`: bundled name (vox-256, vox-adv-256, taichi-256, taichi-adv-256, bair-256) or a YAML path; an
    animbench training checkpoint carries its own config. Without a checkpoint the weights are seeded random.
    """
    if unused:
        raise UserError(f"unsupported model options for FOMM: {sorted(unused)}")
    payload = read_checkpoint(checkpoint, trust=trust_checkpoint) if checkpoint is not None else None
    stored = payload.get("animbench", {}).get("model_config") if isinstance(payload, dict) else None
    cfg = load_config(config if config is not None or stored is None else stored,
                      default="vox-adv-256" if adv else "vox-256")
    torch.manual_seed(seed)
    model = FOMMModel(cfg, align_corners=align_corners, name="fomm-adv" if adv else "fomm")
    if payload is not None:
        if not isinstance(payload, dict) or "generator" not in payload or "kp_detector" not in payload:
            keys = ", ".join(list(payload)[:6]) if isinstance(payload, dict) else type(payload).__name__
            raise UserError(f"{checkpoint}: no 'generator'/'kp_detector' entries (found: {keys}); "
                            f"not a FOMM checkpoint")
        load_module_state(model.generator, payload["generator"], "generator", checkpoint)
        load_module_state(model.kp_detector, payload["kp_detector"], "kp_detector", checkpoint)
        # checkpoints written by `animbench train` name their rung of the ladder (reports label rows by it)
        model.trained_variant = (payload.get("animbench") or {}).get("variant")
    return model.to(device).eval()


def load_fomm_adv(checkpoint=None, config=None, device="cpu", align_corners=True, **options) -> FOMMModel:
    return load_fomm(checkpoint, config, device, align_corners, adv=True, **options)
