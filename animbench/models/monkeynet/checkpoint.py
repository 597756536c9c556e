"""Loading Monkey-Net checkpoints (the authors' *.pth.tar files).

Released files are torch-0.4.1 legacy pickles holding {generator, discriminator, kp_detector, optimizer_*,
epoch, it}. We read `generator` and `kp_detector` only, strip a `module.` prefix, tolerate absent/extra
`num_batches_tracked` and load strictly; a mismatch becomes one error naming the bundled config whose
layout the file has. A FOMM checkpoint is recognised and sent to `--model fomm`.
"""
from __future__ import annotations

import functools
from typing import Dict, Tuple

import torch

from animbench.errors import UserError
from animbench.models.checkpoints import load_module_state, read_checkpoint, strip_module_prefix
from animbench.models.monkeynet.model import (BUNDLED_CONFIGS, DEFAULT_CONFIG, MonkeyNetModel, build_networks,
                                              config_label, load_config)

_FAMILY = "Monkey-Net"
_FOMM_GENERATOR = ("dense_motion_network.", "bottleneck.", "first.conv", "final.weight")
_FOMM_KP = ("kp.weight", "jacobian.weight")


@functools.lru_cache(maxsize=None)
def bundled_layout(name: str) -> Dict[str, Dict[str, Tuple[int, ...]]]:
    """{'generator'|'kp_detector': {key: shape}} of a bundled config, built on the meta device (no memory)."""
    with torch.device("meta"):
        kp_detector, generator = build_networks(load_config(name))
    return {"generator": {k: tuple(v.shape) for k, v in generator.state_dict().items()},
            "kp_detector": {k: tuple(v.shape) for k, v in kp_detector.state_dict().items()}}


def _layout(state) -> Dict[str, Tuple[int, ...]]:
    state = strip_module_prefix(dict(state)) if isinstance(state, dict) else {}
    return {k: tuple(v.shape) for k, v in state.items() if isinstance(v, torch.Tensor)}


def matching_configs(payload: dict) -> list:
    """Bundled configs whose generator and keypoint-detector layouts equal the checkpoint's."""
    found = {what: {k: s for k, s in _layout(payload.get(what)).items() if not k.endswith("num_batches_tracked")}
             for what in ("generator", "kp_detector")}
    matches = []
    for name in BUNDLED_CONFIGS:
        expected = bundled_layout(name)
        if all(found[w] == {k: s for k, s in expected[w].items() if not k.endswith("num_batches_tracked")}
               for w in found):
            matches.append(name)
    return matches


def _make_hint(payload: dict, config_name: str):
    def hint(shapes, missing, unexpected) -> str:
        matches = [m for m in matching_configs(payload) if m != config_name]
        if matches:
            return (f"the file has the layout of the bundled config {matches[0]!r} "
                    f"(config {config_name!r} was used): pass --config {matches[0]}")
        kp = _layout(payload.get("kp_detector")).get("predictor.decoder.conv.weight")
        detail = f" (the file has {kp[0]} keypoints)" if kp else ""
        return (f"no bundled config ({', '.join(BUNDLED_CONFIGS)}) matches the file{detail}: pass the "
                f"authors' YAML the checkpoint was trained with as --config")
    return hint


def _looks_like_fomm(payload: dict) -> bool:
    gen, kp = _layout(payload.get("generator")), _layout(payload.get("kp_detector"))
    return (any(k.startswith(_FOMM_GENERATOR) for k in gen) or any(k in _FOMM_KP for k in kp))


def load_monkeynet(checkpoint=None, config=None, device="cpu", align_corners: bool = True,
                   trust_checkpoint: bool = False, seed: int = 0, **unused) -> MonkeyNetModel:
    """A Monkey-Net model in eval mode.

    `config`: a bundled name (taichi, nemo: 64²; moving-gif: 128²; vox: 256²), a path to any of the authors'
    YAML configs, or a parsed dict; the default is 'taichi' (it is never guessed from the checkpoint: a
    mismatching file is refused with the name of the bundled config it fits). Without a checkpoint the
    weights are seeded random (`torch.manual_seed(seed)`).
    """
    if unused:
        raise UserError(f"unsupported model options for Monkey-Net: {sorted(unused)}")
    payload = read_checkpoint(checkpoint, trust=trust_checkpoint) if checkpoint is not None else None
    name = config_label(config)
    cfg = load_config(config, default=DEFAULT_CONFIG)
    if payload is not None:
        if not isinstance(payload, dict) or "generator" not in payload or "kp_detector" not in payload:
            keys = ", ".join(map(str, list(payload)[:6])) if isinstance(payload, dict) else type(payload).__name__
            raise UserError(f"{checkpoint}: no 'generator'/'kp_detector' entries (found: {keys}); "
                            f"not a Monkey-Net checkpoint")
        if _looks_like_fomm(payload):
            raise UserError(f"{checkpoint}: this looks like a FOMM (first-order-model) checkpoint "
                            f"(dense_motion_network / jacobian keys), not a Monkey-Net one; use --model fomm")
    torch.manual_seed(seed)
    model = MonkeyNetModel(cfg, config_name=name, align_corners=align_corners)
    if payload is not None:
        hint = _make_hint(payload, name)
        load_module_state(model.generator, payload["generator"], "generator", checkpoint, family=_FAMILY, hint=hint)
        load_module_state(model.kp_detector, payload["kp_detector"], "kp_detector", checkpoint, family=_FAMILY,
                          hint=hint)
    return model.to(device).eval()
