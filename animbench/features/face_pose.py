"""Face landmarks as pose-evaluation's face AKD (``face_pose``) extracts them, through the face-alignment library.

pose-evaluation (AliaksandrSiarohin/pose-evaluation @ 1bc4cae, ``extract.py: extract_face_pose``) builds
``FaceAlignment(LandmarksType._2D, flip_input=False)`` (2D-FAN-4, default S3FD detector, CUDA) from the
face-alignment submodule it pins (3750f83, 2018) and stores, per frame, ``fa.get_landmarks(frame)[0]`` or
None. This module calls the installed face-alignment (1.5.0 is what animbench pins) the same way; it does not
re-implement FAN or S3FD. What is reproduced, checked in both versions' code:

* first face: S3FD boxes after NMS (0.3) with score > 0.5, in descending score order; ``[0]`` is kept. Only
  that box is passed to FAN here (FAN handles each face separately, so the value is the same as upstream's,
  which runs FAN on every face and discards the rest).
* None when S3FD finds no face (face-alignment returns None; its "No faces were detected" warning is muted).
* value: a (68, 2) **float32** array of (x, y) pixels holding **integers**: face-alignment's inverse crop
  transform truncates toward zero (3750f83: torch ``.int()``; 1.5.0: ``astype(np.int32)``), and the result
  is written into a float32 array. Stored as returned (no int cast), exactly like upstream's pickle.
* colour: frames are uint8 RGB; S3FD sees BGR (3750f83 flipped in ``api.py``, 1.5.0 flips inside the
  detector), FAN sees RGB / 255.
* ``flip_input=False``; eager PyTorch (``compile=False``: no torch.compile, no ~/.cache/face_alignment/compile).

Weights: FAN (``2DFAN4-11f355bf06.pth.tar``) and S3FD (``s3fd-619a316812.pth``) are resolved by
:mod:`animbench.weights` (default: torch hub's checkpoints dir, where face-alignment itself looks). face-alignment
has no path argument for FAN: it loads ``torch.hub.get_dir()/checkpoints/<name>``. The loader therefore sets
``torch.hub.set_dir`` to the directory holding ``checkpoints/<name>`` for the duration of the constructor only
(restored afterwards); files elsewhere are linked (or copied) into a temporary hub dir under the expected
names. S3FD is also passed explicitly (``face_detector_kwargs={"path_to_detector": ...}``). Both files are
checked to exist first, so face-alignment never tries a download.

Per-image work stays per image, as face-alignment's API and upstream do it: S3FD's ``detect_from_batch`` and a
batched FAN forward are not bit-identical to per-image calls (batched S3FD also shares candidate positions
across the batch), and one changed float can move a truncated coordinate by a pixel.
"""
from __future__ import annotations

import contextlib
import inspect
import os
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np

from animbench.features.common import check_frames
from animbench.errors import UserError
from animbench.weights import FACE_POSE_WEIGHTS, file_digests, get, resolve

KIND = "face-pose"
NUM_LANDMARKS = 68
REFERENCE = ("AliaksandrSiarohin/pose-evaluation@1bc4cae extract.py extract_face_pose "
             "(face-alignment 3750f83: FaceAlignment(LandmarksType._2D, flip_input=False), get_landmarks(frame)[0])")


def _face_alignment():
    try:
        import face_alignment
    except ImportError as e:
        raise UserError(f"face-pose needs the face-alignment package ({e}); pip install face-alignment==1.5.0 "
                        f"(with your torch constraint)") from None
    return face_alignment


def landmarks_type_2d(face_alignment=None):
    """``LandmarksType.TWO_D`` (face-alignment >= 1.3.6) or ``LandmarksType._2D`` (<= 1.3.4, e.g. 3750f83)."""
    enum = (face_alignment or _face_alignment()).LandmarksType
    for attr in ("TWO_D", "_2D"):
        member = getattr(enum, attr, None)
        if member is not None:
            return member
    raise UserError(f"face-alignment's LandmarksType has neither TWO_D nor _2D ({list(enum.__members__)}); "
                    f"install face-alignment==1.5.0")


def expected_filenames(face_alignment=None) -> Dict[str, str]:
    """The FAN / S3FD file names the installed face-alignment downloads to (from its own URL tables)."""
    fa = face_alignment or _face_alignment()
    from face_alignment.detection.sfd import sfd_detector

    try:
        urls = {"fan-2d": fa.api.models_urls["2DFAN-4"], "s3fd": sfd_detector.models_urls["s3fd"]}
    except (AttributeError, KeyError):
        urls = {}
    names = {k: os.path.basename(v) for k, v in urls.items()}
    manifest = {k: get(k).filename for k in FACE_POSE_WEIGHTS}
    if names != manifest:
        raise UserError(f"face-alignment {getattr(fa, '__version__', '?')} expects weight files {names or 'unknown'}"
                        f", not animbench's {manifest} (face-alignment 1.3-1.4 use TorchScript .zip files); "
                        f"pip install face-alignment==1.5.0")
    return names


@contextlib.contextmanager
def torch_hub_dir(hub_dir: Path):
    """Point ``torch.hub.get_dir()`` at ``hub_dir`` inside the block; the previous setting is restored."""
    import torch.hub

    previous = getattr(torch.hub, "_hub_dir", None)
    torch.hub.set_dir(str(hub_dir))
    try:
        yield Path(hub_dir)
    finally:
        torch.hub._hub_dir = previous


@contextlib.contextmanager
def hub_dir_holding(files: Dict[str, Path]):
    """A torch hub dir whose ``checkpoints/`` holds each file under its manifest name: the files' own hub dir when
    they already sit in one ``checkpoints`` folder under those names, else a temporary one with links (copies
    where links are impossible), removed on exit."""
    wanted = {get(k).filename: Path(p) for k, p in files.items()}
    parents = {p.parent for p in wanted.values()}
    if len(parents) == 1 and next(iter(parents)).name == "checkpoints" and all(
            p.name == n for n, p in wanted.items()):
        yield next(iter(parents)).parent
        return
    tmp = Path(tempfile.mkdtemp(prefix="animbench-hub-"))
    try:
        (tmp / "checkpoints").mkdir()
        for name, src in wanted.items():
            try:
                os.symlink(src.resolve(), tmp / "checkpoints" / name)
            except OSError:
                shutil.copyfile(src, tmp / "checkpoints" / name)
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def random_state_dicts(seed: int = 0):
    """(FAN-4, S3FD) state dicts of seeded random weights built with face-alignment's own model classes."""
    import torch
    from face_alignment.detection.sfd.net_s3fd import s3fd
    from face_alignment.models import FAN

    with torch.random.fork_rng(devices=[]):  # leave the caller's RNG state alone
        torch.manual_seed(seed)
        return FAN(4).state_dict(), s3fd().state_dict()


def write_random_weights(directory, seed: int = 0) -> Dict[str, Path]:
    """Write seeded random FAN / S3FD state dicts as ``directory/checkpoints/<face-alignment's file names>``."""
    import torch

    out = Path(directory) / "checkpoints"
    out.mkdir(parents=True, exist_ok=True)
    paths = {}
    for key, state in zip(FACE_POSE_WEIGHTS, random_state_dicts(seed)):
        paths[key] = out / get(key).filename
        torch.save(state, paths[key])
    return paths


def _check_device(device: str) -> str:
    device = str(device)
    if device != "cpu" and not (device == "cuda" or device.startswith("cuda:")):
        raise UserError(f"device={device!r}: face-pose runs on 'cpu' or 'cuda' (or 'cuda:N')")
    if device != "cpu":
        import torch

        if not torch.cuda.is_available():
            raise UserError(f"device={device!r}: CUDA is not available in this PyTorch; use device='cpu'")
    return device


class FacePoseExtractor:
    """pose-evaluation's ``face_pose`` values for frames: a (68, 2) float32 integer-valued array or None each."""

    kind = KIND

    def __init__(self, fa, weights: Dict[str, Optional[Path]], device: str, compile: bool = False,
                 random_seed: Optional[int] = None):
        self.fa = fa
        self.weights = dict(weights)
        self.device = device
        self.compile = compile
        self.random_seed = random_seed
        self._digests: Dict[str, str] = {}

    def detect(self, frame: np.ndarray):
        """S3FD boxes [x1, y1, x2, y2, score] for one uint8 RGB frame, best first (face-alignment's call)."""
        return self.fa.face_detector.detect_from_image(frame.copy())

    def extract_frame(self, frame: np.ndarray, boxes=None):
        if boxes is None:
            boxes = self.detect(frame)
        if len(boxes) == 0:
            return None
        landmarks = self.fa.get_landmarks_from_image(frame, detected_faces=[boxes[0]])
        if landmarks is None:
            return None
        value = np.asarray(landmarks[0])
        if value.shape != (NUM_LANDMARKS, 2):
            raise RuntimeError(f"face-alignment returned landmarks of shape {value.shape}, expected (68, 2)")
        return value

    def extract(self, frames_uint8, detected_faces: Optional[Sequence] = None) -> List[Optional[np.ndarray]]:
        """One value per frame of ``frames_uint8`` (N, H, W, 3) uint8 RGB, as extract.py stores it.

        ``detected_faces``: optional per-frame box lists ([x1, y1, x2, y2(, score)] each, best first) used
        instead of S3FD (face-alignment's ``detected_faces``); the first box of each frame is used.
        """
        frames = check_frames(frames_uint8, "face-pose frames")
        if detected_faces is not None and len(detected_faces) != len(frames):
            raise UserError(f"detected_faces has {len(detected_faces)} entries for {len(frames)} frames; "
                            f"give one list of boxes per frame")
        out = []
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="No faces were detected")
            for i, frame in enumerate(frames):
                out.append(self.extract_frame(frame, None if detected_faces is None else detected_faces[i]))
        return out

    def _sha256(self, key: str) -> Optional[str]:
        p = self.weights.get(key)
        if p is None or not Path(p).is_file():
            return None
        if key not in self._digests:
            self._digests[key] = file_digests(p)[1]
        return self._digests[key]

    def describe(self) -> dict:
        fa = _face_alignment()
        random = self.random_seed is not None
        return {
            "kind": KIND, "reference": REFERENCE,
            "implementation": f"face-alignment {getattr(fa, '__version__', '?')} (library)",
            "landmarks_type": "2D (LandmarksType.TWO_D / _2D)", "network": "2DFAN-4", "face_detector": "sfd",
            "flip_input": False, "device": self.device, "dtype": "float32", "compile": self.compile,
            "face": "first S3FD box (NMS 0.3, score > 0.5, best score first)",
            "value": "(68, 2) float32 (x, y) pixels, integer-valued (truncated toward zero); None when no face",
            "random_weights": random, "seed": self.random_seed,
            "weights": {k: {"file": None if random else str(self.weights.get(k)), "filename": get(k).filename,
                            "sha256": None if random else self._sha256(k)} for k in FACE_POSE_WEIGHTS},
        }


def _build(face_alignment, fan: Path, sfd: Path, device: str, compile: bool):
    params = inspect.signature(face_alignment.FaceAlignment.__init__).parameters
    kwargs = {"flip_input": False, "device": device, "face_detector": "sfd"}
    if "face_detector_kwargs" in params:
        kwargs["face_detector_kwargs"] = {"path_to_detector": str(sfd)}
    if "compile" in params:
        kwargs["compile"] = bool(compile)
    if "verbose" in params:
        kwargs["verbose"] = False
    with hub_dir_holding({"fan-2d": fan, "s3fd": sfd}) as hub, torch_hub_dir(hub):
        return face_alignment.FaceAlignment(landmarks_type_2d(face_alignment), **kwargs)


def load_face_pose(weights_dir=None, device: str = "cpu", *, fan_weights=None, sfd_weights=None,
                   compile: bool = False, random_weights: bool = False, seed: int = 0,
                   option: str = "--weights") -> FacePoseExtractor:
    """A :class:`FacePoseExtractor` on ``device`` ("cpu", "cuda", "cuda:N").

    Weights: ``fan_weights`` / ``sfd_weights`` (files) win; else ``weights_dir`` (a directory holding the two
    files, directly or under ``checkpoints/``); else the cached files (``animbench weights path fan-2d s3fd``).
    A missing file raises a one-line :class:`UserError` saying where to get it and where to put it.
    ``random_weights``: seeded random FAN / S3FD (smoke tests, timing; values are meaningless).
    ``compile=True`` lets face-alignment torch.compile FAN (not bit-identical to eager; default off).
    """
    fa_mod = _face_alignment()
    expected_filenames(fa_mod)
    device = _check_device(device)
    if random_weights:
        with tempfile.TemporaryDirectory(prefix="animbench-random-fan-") as tmp:
            paths = write_random_weights(tmp, seed)
            fa = _build(fa_mod, paths["fan-2d"], paths["s3fd"], device, compile)
        return FacePoseExtractor(fa, {k: None for k in FACE_POSE_WEIGHTS}, device, compile, random_seed=seed)
    fan = resolve("fan-2d", fan_weights if fan_weights is not None else weights_dir, option=option)
    sfd = resolve("s3fd", sfd_weights if sfd_weights is not None else weights_dir, option=option)
    try:
        fa = _build(fa_mod, fan, sfd, device, compile)
    except Exception as e:  # a wrong / truncated file: say which files and what to do, in one line
        import pickle

        first = (str(e).splitlines() or [""])[0][:200]
        if isinstance(e, (pickle.UnpicklingError, EOFError)) or any(
                s in str(e) for s in ("state_dict", "PytorchStreamReader", "Weights only load", "load key")):
            raise UserError(f"{fan} / {sfd}: not the 2D-FAN-4 and S3FD state dicts face-alignment expects "
                            f"({type(e).__name__}: {first}); run `animbench weights verify fan-2d s3fd` and "
                            f"re-download them") from None
        raise
    return FacePoseExtractor(fa, {"fan-2d": fan, "s3fd": sfd}, device, compile)
