"""Checks of user-given options and paths, done before anything is written, and the one place that turns
filesystem errors on the user's paths into one-line messages (see `cli.main`).
"""
from __future__ import annotations

import errno
import os
import re
from pathlib import Path
from typing import Iterable, Optional, Sequence, Tuple

from animbench.errors import UserError

_TEMP_NAME = re.compile(r"^\.(?P<target>.+)\.[^.]+\.tmp$")  # atomic_write_bytes' temp files: .<name>.<rand>.tmp


def parse_device(value: str, option: str = "--device") -> str:
    """'cpu', 'cuda' or 'cuda:N' on a machine that has it; anything else is a one-line error."""
    import torch

    text = str(value).strip().lower()
    if text == "cpu":
        return "cpu"
    match = re.fullmatch(r"cuda(?::(\d+))?", text)
    if match is None:
        raise UserError(f"{option} {value}: not a device animbench runs on; use cpu, cuda or cuda:N")
    if not torch.cuda.is_available():
        raise UserError(f"{option} {value}: CUDA is not available on this machine; use --device cpu")
    if match.group(1) is not None and int(match.group(1)) >= torch.cuda.device_count():
        raise UserError(f"{option} {value}: this machine has {torch.cuda.device_count()} CUDA device(s) "
                        f"(cuda:0..cuda:{torch.cuda.device_count() - 1})")
    return text


def parse_topk(values: Sequence[int], option: str = "--topk") -> Tuple[int, ...]:
    ks = tuple(int(k) for k in values)
    bad = [k for k in ks if not 1 <= k <= 100]
    if not ks or bad:
        raise UserError(f"{option} {','.join(map(str, ks))}: k is a percentage of the foreground, each between "
                        f"1 and 100 (the paper uses 10,20,30,40,50)")
    if len(set(ks)) != len(ks):
        raise UserError(f"{option} {','.join(map(str, ks))}: a k value is repeated")
    return ks


def check_output_dir(out: Path, option: str = "--out", forbidden_inside: Iterable[Path] = ()) -> None:
    """--out must be creatable: no regular file on its path, and not inside the data it evaluates."""
    out = Path(out)
    for parent in [out, *out.parents]:
        if parent.exists() or parent.is_symlink():
            if not parent.is_dir():
                what = "is a regular file" if parent == out else f"lies under the regular file {parent}"
                raise UserError(f"{option} {out}: {what}; pass a directory path")
            break
    resolved = _resolve(out)
    for data_dir in forbidden_inside:
        data_dir = _resolve(Path(data_dir))
        if resolved == data_dir or data_dir in resolved.parents:
            raise UserError(f"{option} {out}: is inside the dataset folder {data_dir}; its files would be read "
                            f"as test videos: pass a directory outside the dataset")


def _resolve(path: Path) -> Path:
    try:
        return path.resolve()
    except RuntimeError:  # symlink loop (Python < 3.13)
        raise UserError(f"{path}: symbolic link loop; fix or remove the link") from None
    except OSError as e:
        raise UserError(os_error_message(e)) from None


def os_error_message(error: OSError) -> str:
    """One line for a filesystem error: which path, what is wrong, what to do."""
    path = error.filename
    if path is not None:
        p = Path(os.fsdecode(path))
        m = _TEMP_NAME.match(p.name)
        if m:  # report the file the user asked for, not our temp name
            p = p.with_name(m.group("target"))
        where = str(p)
    else:
        where = "output"
    code = error.errno
    if code == errno.ENOSPC or code == errno.EDQUOT:
        return f"{where}: no space left on the device (disk full or quota); free space or write elsewhere"
    if code in (errno.EACCES, errno.EPERM):
        return (f"{where}: permission denied (read-only or immutable?); pass a path you can write to, "
                f"or fix its permissions")
    if code == errno.EROFS:
        return f"{where}: read-only file system; pass a path on a writable disk"
    if code == errno.ENOTDIR:
        return f"{where}: a component of this path is a regular file, not a directory; pass another path"
    if code == errno.EEXIST:
        return f"{where}: already exists and is not a directory; pass another path"
    if code == errno.EISDIR:
        return f"{where}: is a directory, expected a file"
    if code == errno.ELOOP:
        return f"{where}: symbolic link loop; fix or remove the link"
    if code == errno.ENOENT:
        return f"{where}: no such file or directory"
    if code == errno.ENAMETOOLONG:
        return f"{where}: file name too long; use a shorter path"
    return f"{where}: {error.strerror or error}; check the path"


def optional_file(path: Optional[Path], option: str) -> Optional[Path]:
    if path is None:
        return None
    path = Path(path)
    if not path.exists():
        raise UserError(f"{option} {path}: no such file")
    if not path.is_file():
        raise UserError(f"{option} {path}: is a directory, not a file")
    return path
