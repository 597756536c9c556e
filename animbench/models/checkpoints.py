"""Reading checkpoints of every model family: safe loading, legacy pickles, strict state_dict loading.

`read_checkpoint` tries `torch.load(weights_only=True)` first (no code from the file can run); a pickle that
needs arbitrary globals is refused with a message naming `--trust-checkpoint`. Python-2 era pickles (X2Face)
are retried with `encoding="latin1"`. `load_module_state` loads strictly with one clear error that names the
mismatched keys and a family-specific hint.
"""
from __future__ import annotations

import pickle
import sys
import tarfile
import warnings
import zipfile
from pathlib import Path
from typing import Callable, Dict, Optional

import torch

from animbench.errors import UserError

# torch's weights-only unpickler says "Unsupported global: GLOBAL x.y", "unsupported GLOBAL x.y" or
# "Unsupported operand ..." depending on the version; all mean: a valid pickle that wants to import code.
_NEEDS_CODE_MARKERS = ("unsupported global", "unsupported operand", "weights only load failed", "global")


def read_checkpoint(path, trust: bool = False, option: str = "--checkpoint"):
    """torch.load with weights_only=True first; full unpickling only when the user trusts the file."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{option} {path}: no such file" if not path.exists() else
                        f"{option} {path}: is a directory, not a checkpoint file")
    if path.stat().st_size == 0:
        raise UserError(f"{path}: empty file; download the checkpoint again")
    if trust:
        print(f"warning: loading {path} with full unpickling (--trust-checkpoint): any code in the file runs",
              file=sys.stderr)
    last_error: Optional[Exception] = None
    for extra in ({}, {"encoding": "latin1"}):  # latin1: Python-2 pickles (str written as bytes)
        try:
            with warnings.catch_warnings():  # torch warns that pickle args are for weights_only=False; they work
                warnings.simplefilter("ignore", UserWarning)
                return torch.load(path, map_location="cpu", weights_only=not trust, **extra)
        except UnicodeDecodeError as e:
            last_error = e
            continue
        except pickle.UnpicklingError as e:
            text = str(e).lower()
            if not trust and any(m in text for m in _NEEDS_CODE_MARKERS) and _is_valid_pickle_head(path):
                raise UserError(f"{path}: this pickle imports Python code when loaded (it could run anything); "
                                f"refused. If you trust where the file came from, pass --trust-checkpoint") from None
            raise UserError(_not_a_checkpoint(path, e)) from None
        except (RuntimeError, EOFError, OSError, ValueError, TypeError, AttributeError, ImportError) as e:
            raise UserError(_not_a_checkpoint(path, e)) from None
    raise UserError(_not_a_checkpoint(path, last_error))


def _is_valid_pickle_head(path: Path) -> bool:
    """A zip torch file or a pickle (protocol opcode 0x80) — not random bytes that happen to fail."""
    with open(path, "rb") as f:
        head = f.read(4)
    return head.startswith(b"PK") or head[:1] == b"\x80"


def _not_a_checkpoint(path: Path, error: Optional[Exception]) -> str:
    if tarfile.is_tarfile(path) and not zipfile.is_zipfile(path):
        return (f"{path}: is a tar archive, not a torch checkpoint; the released *.pth.tar files must be used "
                f"as they are (do not untar or re-tar them)")
    with open(path, "rb") as f:
        head = f.read(512).lstrip().lower()
    if head.startswith(b"<!doctype html") or head.startswith(b"<html"):
        return f"{path}: is an HTML page (a download quota or login page?), not a checkpoint; download it again"
    detail = str(error).splitlines()[0][:100] if error is not None and str(error) else ""
    return (f"{path}: not a readable torch checkpoint ({type(error).__name__}: {detail}); "
            f"the file is truncated or corrupt: download it again")


def strip_module_prefix(state: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """Drop the `module.` prefix (DataParallel) when every key has it."""
    if state and all(k.startswith("module.") for k in state):
        return {k[len("module."):]: v for k, v in state.items()}
    return state


def load_module_state(module: torch.nn.Module, state, what: str, path, family: str = "FOMM",
                      hint: Optional[Callable[[list, list, list], str]] = None) -> None:
    """Strict load with one clear error; absent or extra `num_batches_tracked` tolerated."""
    if not isinstance(state, dict):
        raise UserError(f"{path}: entry {what!r} is not a state_dict; is this a {family} checkpoint?")
    state = strip_module_prefix(dict(state))
    own = module.state_dict()
    state = {k: v for k, v in state.items() if not (k.endswith("num_batches_tracked") and k not in own)}
    for k in own:
        if k.endswith("num_batches_tracked") and k not in state:
            state[k] = own[k]
    not_tensors = [k for k, v in state.items() if not isinstance(v, torch.Tensor)]
    if not_tensors:
        raise UserError(f"{path}: {what} entry {not_tensors[0]!r} is not a tensor; not a {family} checkpoint")
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
        advice = hint(shapes, missing, unexpected) if hint else "pass the --config the checkpoint was trained with"
        raise UserError(f"{path}: {what} does not match the {family} model ({' | '.join(parts)}); {advice}")
    module.load_state_dict(state, strict=True)
