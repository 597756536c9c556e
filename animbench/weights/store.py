"""Where third-party weight files live, and how they are resolved, downloaded (pooch), verified and installed.

Layout (see :mod:`animbench.weights.manifest`):

* ``location="animbench"``: ``animbench.cache.cache_dir() / "weights" / <filename>``
  (``$ANIMBENCH_CACHE/weights`` or ``~/.cache/animbench/weights``).
* ``location="torch-hub"``: ``torch.hub.get_dir() / "checkpoints" / <filename>`` (``$TORCH_HOME/hub/checkpoints``,
  default ``~/.cache/torch/hub/checkpoints``), the directory and file name face-alignment 1.5.0 (FAN via
  ``load_file_from_url``, S3FD via ``torch.hub.load_state_dict_from_url``) and torchvision download to; a file
  either of them fetched is reused, and a file installed here is what they load.

Everything here returns data; nothing prints. ``cmd_*`` functions give the printable lines of the
``animbench weights list|download|verify|path|install`` subcommands. User mistakes raise
:class:`animbench.errors.UserError` with a one-line message (what file, what is wrong, what to do).
"""
from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, List, Optional, Sequence, Tuple, Union

from animbench.cache import cache_dir
from animbench.errors import UserError
from animbench.weights.manifest import MANIFEST, WeightFile, get

PathLike = Union[str, os.PathLike]


# ----------------------------------------------------------------------------------------------------------
# Paths
# ----------------------------------------------------------------------------------------------------------
def weights_dir() -> Path:
    """animbench's own weights directory: ``cache_dir() / "weights"``."""
    return cache_dir() / "weights"


def torch_hub_checkpoints_dir() -> Path:
    """``torch.hub.get_dir()/checkpoints``: where face-alignment and torchvision look for (and put) weights."""
    import torch.hub

    return Path(torch.hub.get_dir()) / "checkpoints"


def location_dir(name_or_entry) -> Path:
    entry = get(name_or_entry)
    return torch_hub_checkpoints_dir() if entry.location == "torch-hub" else weights_dir()


def path(name_or_entry) -> Path:
    """Where the cached file for ``name`` must be (it may not exist)."""
    entry = get(name_or_entry)
    return location_dir(entry) / entry.filename


def how_to_get(name_or_entry, dest: Optional[Path] = None) -> str:
    """The instruction part of a 'missing weights' message (one line)."""
    entry = get(name_or_entry)
    dest = path(entry) if dest is None else dest
    if not entry.direct_download:
        return (f"open {entry.urls[0]} in a browser (a shared-folder link), download {entry.filename} and put it "
                f"at {dest}")
    return (f"run `animbench weights download {entry.name}` (fetches {entry.urls[0]}) or download that URL "
            f"yourself and put it at {dest}")


def resolve(name_or_entry, override: Optional[PathLike] = None, option: str = "--weights") -> Path:
    """The file to load for ``name``: ``override`` if given (a file, or a directory holding ``filename`` or
    ``checkpoints/filename``), else the cached file. Missing -> :class:`UserError` saying where to get it."""
    entry = get(name_or_entry)
    if override is not None:
        given = Path(override).expanduser()
        if given.is_file():
            return given
        if given.is_dir():
            for candidate in (given / entry.filename, given / "checkpoints" / entry.filename):
                if candidate.is_file():
                    return candidate
            raise UserError(f"{option} {given}: the directory holds no {entry.filename} ({entry.name} weights); "
                            f"{how_to_get(entry, given / entry.filename)}")
        raise UserError(f"{option} {given}: no such file or directory ({entry.name} weights, {entry.filename}); "
                        f"pass the path of {entry.filename}, or {how_to_get(entry)}")
    dest = path(entry)
    if dest.is_file():
        return dest
    raise UserError(f"{entry.name} weights not found: {entry.filename} is not at {dest}; {how_to_get(entry, dest)}"
                    f", or pass {option}{'' if option.endswith('=') else ' '}PATH")


# ----------------------------------------------------------------------------------------------------------
# Checking
# ----------------------------------------------------------------------------------------------------------
def file_digests(file: PathLike, chunk: int = 1 << 20) -> Tuple[int, str, str]:
    """(size, sha256 hex, git blob sha1 hex) of ``file`` in one read."""
    p = Path(file)
    size = p.stat().st_size
    sha256, blob = hashlib.sha256(), hashlib.sha1(b"blob %d\0" % size)
    with open(p, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            sha256.update(block)
            blob.update(block)
    return size, sha256.hexdigest(), blob.hexdigest()


@dataclass
class VerifyResult:
    name: str
    path: Path
    status: str                     # "ok", "mismatch", "unchecked" (no known checksum), "missing"
    detail: str
    size: Optional[int] = None
    sha256: Optional[str] = None
    advice: str = ""                # what to do about a missing / mismatching file

    @property
    def ok(self) -> bool:
        return self.status in ("ok", "unchecked")

    def row(self) -> Tuple[str, str, str, str]:
        return (self.name, self.status, str(self.path), "; ".join(x for x in (self.detail, self.advice) if x))


def check_file(name_or_entry, file: PathLike) -> VerifyResult:
    """Compare ``file`` with everything the manifest knows about it (size, sha256, git blob id, hash prefix)."""
    entry = get(name_or_entry)
    p = Path(file)
    if not p.is_file():
        return VerifyResult(entry.name, p, "missing", "no such file", advice=how_to_get(entry, p))
    size, sha256, blob = file_digests(p)
    problems, matched, info = [], [], []
    if entry.size is not None:
        (matched if size == entry.size else problems).append(f"size {size} (expected {entry.size})")
    if entry.sha256 is not None:
        (matched if sha256 == entry.sha256.lower() else problems).append(
            f"sha256 {sha256} (expected {entry.sha256.lower()})")
    if entry.git_blob_sha1 is not None:
        (matched if blob == entry.git_blob_sha1.lower() else problems).append(
            f"git blob {blob} (expected {entry.git_blob_sha1.lower()})")
    if entry.sha256_prefix is not None:
        prefix_ok = sha256.startswith(entry.sha256_prefix.lower())
        text = f"sha256 {sha256[:16]}... {'matches' if prefix_ok else 'does not match'} the name's prefix " \
               f"{entry.sha256_prefix}"
        if entry.prefix_enforced:
            (matched if prefix_ok else problems).append(text)
        else:
            info.append(text + " (not checked by its publisher, informational)")
    if problems:
        return VerifyResult(entry.name, p, "mismatch", "; ".join(problems), size, sha256,
                            advice=f"delete it and {how_to_get(entry)}")
    if matched:
        return VerifyResult(entry.name, p, "ok", "; ".join(matched + info), size, sha256)
    return VerifyResult(entry.name, p, "unchecked", "; ".join([f"no known checksum; size {size}, sha256 {sha256}"]
                                                              + info), size, sha256)


def _entries(names: Union[str, WeightFile, Iterable, None]) -> List[WeightFile]:
    if names is None or names == "all":
        return list(MANIFEST.values())
    if isinstance(names, (str, WeightFile)):
        names = [names]
    return [get(n) for n in names]


def verify(names: Union[str, WeightFile, Sequence, None] = "all") -> List[VerifyResult]:
    """Check the cached file of each entry (``"all"``: the whole manifest). Missing files are reported, not raised."""
    return [check_file(e, path(e)) for e in _entries(names)]


# ----------------------------------------------------------------------------------------------------------
# Installing and downloading
# ----------------------------------------------------------------------------------------------------------
def _copy_into_place(src: Path, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=dest.name + ".", suffix=".part", dir=dest.parent)
    os.close(fd)
    try:
        shutil.copyfile(src, tmp)
        os.replace(tmp, dest)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def install(name_or_entry, file: PathLike, force: bool = False) -> Path:
    """Copy a user-supplied ``file`` to the entry's cache location (for face-alignment's and torchvision's files:
    the torch hub checkpoints dir, under the name they expect). A checksum mismatch is refused unless ``force``."""
    entry = get(name_or_entry)
    src = Path(file).expanduser()
    if not src.is_file():
        raise UserError(f"{src}: no such file to install as {entry.name} ({entry.filename}); {how_to_get(entry)}")
    dest = path(entry)
    result = check_file(entry, src)
    if result.status == "mismatch" and not force:
        raise UserError(f"{src}: not the expected {entry.filename} ({result.detail}); "
                        f"get the right file ({entry.urls[0]}) or install anyway with force")
    if dest.exists() and src.resolve() == dest.resolve():
        return dest
    _copy_into_place(src, dest)
    return dest


def download(name_or_entry, force: bool = False, progress: bool = False, retries: int = 3,
             backoff_s: float = 2.0) -> Path:
    """Download ``name`` into its cache location with pooch (SHA-256 checked by pooch when known; prefix / git
    blob / size checked afterwards), trying each URL ``retries`` times. An existing file that passes
    :func:`check_file` is kept unless ``force``. Entries without a direct download raise the manual steps."""
    entry = get(name_or_entry)
    dest = path(entry)
    if not entry.direct_download:
        raise UserError(f"{entry.name} ({entry.filename}) cannot be downloaded automatically: "
                        f"{how_to_get(entry, dest)}")
    backup = None
    if dest.is_file():
        if check_file(entry, dest).status == "mismatch":
            dest.unlink()
        elif not force:
            return dest
        else:  # forced re-download of a good file: keep it until the new one has arrived
            backup = dest.with_name(dest.name + ".old")
            os.replace(dest, backup)
    try:
        return _download(entry, dest, progress, retries, backoff_s)
    except BaseException:
        if backup is not None and not dest.exists():
            os.replace(backup, dest)
        raise
    finally:
        if backup is not None and backup.exists():
            backup.unlink()


def _download(entry: WeightFile, dest: Path, progress: bool, retries: int, backoff_s: float) -> Path:
    import pooch

    known_hash = f"sha256:{entry.sha256.lower()}" if entry.sha256 else None
    errors = []
    for url in entry.urls:
        for attempt in range(max(1, retries)):
            try:
                got = Path(pooch.retrieve(url, known_hash=known_hash, fname=entry.filename,
                                          path=str(dest.parent), progressbar=progress))
            except Exception as e:  # network errors, HTTP errors, pooch's hash mismatch (ValueError)
                errors.append(f"{url}: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}")
                if attempt + 1 < retries:
                    time.sleep(backoff_s * (2 ** attempt))
                continue
            if got != dest:  # pooch returns path/fname; keep the invariant explicit
                _copy_into_place(got, dest)
            result = check_file(entry, dest)
            if result.status == "mismatch":
                dest.unlink()
                raise UserError(f"{entry.name}: downloaded {entry.filename} from {url} failed its check "
                                f"({result.detail}); removed it; try again later or "
                                f"download it yourself and put it at {dest}")
            return dest
    raise UserError(f"could not download {entry.name} ({entry.filename}): {errors[-1] if errors else 'no URL'}; "
                    f"download {entry.urls[0]} yourself and put it at {dest}")


# ----------------------------------------------------------------------------------------------------------
# Printable rows for the CLI (`animbench weights list|download|verify|path|install`)
# ----------------------------------------------------------------------------------------------------------
def list_rows() -> List[dict]:
    rows = []
    for e in MANIFEST.values():
        p = path(e)
        rows.append({"name": e.name, "file": e.filename, "used_by": e.used_by,
                     "present": p.is_file(), "path": str(p),
                     "source": e.urls[0] if e.direct_download else f"manual: {e.urls[0]}",
                     "checksum": ("sha256" if e.sha256 else "git-blob" if e.git_blob_sha1 else
                                  f"name prefix {e.sha256_prefix}" if e.sha256_prefix else "unknown"),
                     "license": e.license})
    return rows


def format_rows(rows: Sequence[Sequence[str]], header: Sequence[str]) -> List[str]:
    table = [list(map(str, header))] + [list(map(str, r)) for r in rows]
    widths = [max(len(r[i]) for r in table) for i in range(len(header) - 1)]
    return ["  ".join([c.ljust(w) for c, w in zip(r[:-1], widths)] + [r[-1]]).rstrip() for r in table]


def cmd_list() -> List[str]:
    rows = [(r["name"], "yes" if r["present"] else "no", r["file"], r["used_by"], r["checksum"],
             f"{r['path']}  <- {r['source']}") for r in list_rows()]
    return format_rows(rows, ("NAME", "PRESENT", "FILE", "USED BY", "CHECKSUM", "PATH  <- SOURCE"))


def cmd_download(names: Union[str, Sequence[str]] = "all", force: bool = False, progress: bool = True) -> List[str]:
    """Download each name (``"all"``: every direct-download entry); manual entries raise their instructions."""
    entries = [e for e in _entries(names) if e.direct_download or names not in (None, "all")]
    return [f"{e.name}: {download(e, force=force, progress=progress)}" for e in entries]


def cmd_verify(names: Union[str, Sequence[str]] = "all") -> Tuple[List[str], bool]:
    """(lines, all_ok): missing files count as not ok only when named explicitly."""
    results = verify(names)
    explicit = names not in (None, "all")
    ok = all(r.ok or (r.status == "missing" and not explicit) for r in results)
    return format_rows([r.row() for r in results], ("NAME", "STATUS", "PATH", "DETAIL")), ok


def cmd_path(names: Union[str, Sequence[str]] = "all") -> List[str]:
    return [str(path(e)) for e in _entries(names)]


def cmd_install(name: str, file: PathLike, force: bool = False) -> List[str]:
    return [f"{get(name).name}: installed {file} -> {install(name, file, force=force)}"]
