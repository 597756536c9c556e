"""Loading FOMM checkpoints (the authors' *.pth.tar files and animbench's own).

Released files are torch-1.0 legacy pickles holding {generator, kp_detector, [discriminator, optimizer_*,
epoch]} state_dicts. We read `generator` and `kp_detector` only, strip a `module.` prefix, tolerate
absent/extra `num_batches_tracked`, and load strictly; mismatches become one clear error naming the
likely config mismatch.
"""
from __future__ import annotations

import pickle
import tarfile
import zipfile
from pathlib import Path
from typing import Dict

import torch

from animbench.errors import UserError
from animbench.models.fomm.model import FOMMModel, load_config


def read_checkpoint(path, trust: bool = False) -> dict:
    """torch.load with weights_only=True first; full unpickling only when the user trusts the file."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"--checkpoint {path}: no such file")
    if path.stat().st_size == 0:
        raise UserError(f"{path}: empty file; download the checkpoint again")
    try:
        return torch.load(path, map_location="cpu", weights_only=not trust)
    except pickle.UnpicklingError as e:
        if not trust and "Unsupported global" in str(e):  # a valid pickle holding non-tensor objects
            raise UserError(f"{path}: needs full unpickling, which can run code from the file; if you trust its "
                            f"source, pass --trust-checkpoint") from None
        raise UserError(_not_a_checkpoint(path, e)) from None
    except (RuntimeError, EOFError, OSError, ValueError) as e:
        raise UserError(_not_a_checkpoint(path, e)) from None


def _not_a_checkpoint(path: Path, error: Exception) -> str:
    if tarfile.is_tarfile(path) and not zipfile.is_zipfile(path):
        return (f"{path}: is a tar archive, not a torch checkpoint; the released *.pth.tar files must be used "
                f"as they are (do not untar or re-tar them)")
    return (f"{path}: not a readable torch checkpoint ({type(error).__name__}: "
            f"{str(error).splitlines()[0][:100] if str(error) else ''}); download it again")


def _strip_prefix(state: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    if state and all(k.startswith("module.") for k in state):
        return {k[len("module."):]: v for k, v in state.items()}
    return state


def load_module_state(module: torch.nn.Module, state, what: str, path) -> None:
    """Strict load with one clear error; absent or extra `num_batches_tracked` tolerated."""
    if not isinstance(state, dict):
        raise UserError(f"{path}: entry {what!r} is not a state_dict; is this a FOMM checkpoint?")
    state = _strip_prefix(dict(state))
    own = module.state_dict()
    state = {k: v for k, v in state.items() if not (k.endswith("num_batches_tracked") and k not in own)}
    for k in own:
        if k.endswith("num_batches_tracked") and k not in state:
            state[k] = own[k]
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shapes = [f"{k} {tuple(state[k].shape)} vs {tuple(own[k].shape)}" for k in own
              if k in state and tuple(state[k].shape) != tuple(own[k].shape)]
    if missing or unexpected or shapes:
        parts = []
        if shapes:
            parts.append("mis-shaped: " + "; ".join(shapes[:3]))
        if missing:
            parts.append(f"missing {len(missing)} keys, e.g. " + ", ".join(missing[:3]))
        if unexpected:
            parts.append(f"unexpected {len(unexpected)} keys, e.g. " + ", ".join(unexpected[:3]))
        hint = _hint(shapes, missing, unexpected)
        raise UserError(f"{path}: {what} does not match the config ({' | '.join(parts)}); {hint}")
    module.load_state_dict(state, strict=True)


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
    return model.to(device).eval()


def load_fomm_adv(checkpoint=None, config=None, device="cpu", align_corners=True, **options) -> FOMMModel:
    return load_fomm(checkpoint, config, device, align_corners, adv=True, **options)
