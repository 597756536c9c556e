"""One video of a FOMM-layout dataset: a folder of frames, a horizontal PNG/JPG strip, or a video file.

Frames come out as uint8 (n,H,W,3) RGB in chunks, so long clips never need to be decoded whole
(except a strip, which is one image file by construction).
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterator, Optional, Sequence, Tuple

import numpy as np

from animbench.errors import UserError

IMAGE_EXTS = {".png", ".jpg", ".jpeg", ".bmp"}
VIDEO_EXTS = {".mp4", ".gif", ".mov", ".avi", ".mkv", ".webm"}


def _rgb(image: np.ndarray, path) -> np.ndarray:
    """Gray -> RGB, RGBA -> RGB, anything else non-uint8 -> error."""
    if image.dtype != np.uint8:
        raise UserError(f"{path}: {image.dtype} pixels; animbench reads 8-bit images (convert the file to 8-bit)")
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    elif image.ndim == 3 and image.shape[2] == 4:
        image = image[:, :, :3]
    elif image.ndim == 3 and image.shape[2] == 1:
        image = np.repeat(image, 3, axis=2)
    if image.ndim != 3 or image.shape[2] != 3:
        raise UserError(f"{path}: unexpected image shape {image.shape}; expected H×W×3 RGB")
    return image


def read_image(path: Path) -> np.ndarray:
    import imageio.v3 as iio

    try:
        image = iio.imread(path, plugin="pillow")  # no plugin guessing: a corrupt file gives one clear error
    except Exception as e:  # imageio raises many types for corrupt/unknown files
        raise UserError(f"{path}: cannot read image ({type(e).__name__}: {str(e).splitlines()[0][:120]}); "
                        f"replace or remove the file") from None
    return _rgb(np.asarray(image), path)


def _frame_files(folder: Path):
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTS and not p.name.startswith("."))


class Video:
    """A lazily read video. `kind` is "frames" (folder), "strip" (one image) or "video" (mp4/gif/...)."""

    def __init__(self, path: Path, kind: str, frame_shape: Optional[Tuple[int, int]] = None):
        self.path = Path(path)
        self.name = self.path.name
        self.kind = kind
        self._frame_shape = tuple(frame_shape) if frame_shape else None
        self._num_frames: Optional[int] = None
        self._size: Optional[Tuple[int, int]] = None

    def __repr__(self) -> str:
        return f"Video({self.name!r}, kind={self.kind})"

    # -- metadata --------------------------------------------------------------------------------------
    @property
    def frame_size(self) -> Tuple[int, int]:
        if self._size is None:
            self._probe()
        return self._size

    @property
    def num_frames(self) -> int:
        if self._num_frames is None:
            self._probe()
        return self._num_frames

    def _probe(self) -> None:
        if self.kind == "frames":
            files = _frame_files(self.path)
            if not files:
                raise UserError(f"{self.path}: empty video folder (no png/jpg frames); remove it or add frames")
            first = read_image(files[0])
            self._size, self._num_frames = first.shape[:2], len(files)
        elif self.kind == "strip":
            h, total_w = self._strip_geometry()
            w = self._frame_shape[1] if self._frame_shape else h
            if total_w % w:
                raise UserError(f"{self.path}: strip width {total_w} is not a multiple of the frame width {w}; "
                                f"a strip holds frames side by side (H × T·W)")
            self._size, self._num_frames = (h, w), total_w // w
        else:
            count, size = 0, None
            for frame in self._iter_video_frames():
                size = frame.shape[:2]
                count += 1
            if count == 0:
                raise UserError(f"{self.path}: video file has no frames; re-encode or remove it")
            self._size, self._num_frames = size, count

    def _strip_geometry(self):
        import imageio.v3 as iio

        try:
            props = iio.improps(self.path, plugin="pillow")
        except Exception as e:
            raise UserError(f"{self.path}: cannot read image ({type(e).__name__}); replace or remove the file") \
                from None
        shape = props.shape
        return int(shape[0]), int(shape[1])

    # -- frames ----------------------------------------------------------------------------------------
    def _iter_video_frames(self) -> Iterator[np.ndarray]:
        import imageio.v3 as iio

        try:
            # imiter streams: a long clip is never decoded whole (imageio's mimread memory limit, FOMM #214)
            for frame in iio.imiter(self.path):
                yield _rgb(np.asarray(frame), self.path)
        except UserError:
            raise
        except Exception as e:
            raise UserError(f"{self.path}: cannot decode video ({type(e).__name__}: "
                            f"{str(e).splitlines()[0][:120] if str(e) else ''}); re-encode or remove it") from None

    def _check_size(self, frame: np.ndarray, where) -> np.ndarray:
        if self._frame_shape and tuple(frame.shape[:2]) != tuple(self._frame_shape):
            raise UserError(f"{where}: frame is {frame.shape[0]}x{frame.shape[1]}, expected "
                            f"{self._frame_shape[0]}x{self._frame_shape[1]}; resize the dataset or pass --size")
        return frame

    def iter_chunks(self, chunk_size: int = 32) -> Iterator[np.ndarray]:
        """Yield uint8 (n,H,W,3) chunks of consecutive frames, n <= chunk_size."""
        if chunk_size < 1:
            raise ValueError("chunk_size must be >= 1")
        if self.kind == "strip":
            strip = read_image(self.path)
            h, w = strip.shape[0], (self._frame_shape[1] if self._frame_shape else strip.shape[0])
            if strip.shape[1] % w:
                raise UserError(f"{self.path}: strip width {strip.shape[1]} is not a multiple of the frame "
                                f"width {w}; a strip holds frames side by side (H × T·W)")
            if self._frame_shape and h != self._frame_shape[0]:
                self._check_size(strip[:, :w], self.path)
            frames = strip.reshape(h, -1, w, 3).transpose(1, 0, 2, 3)  # frame t = columns [tW, (t+1)W)
            for i in range(0, frames.shape[0], chunk_size):
                yield np.ascontiguousarray(frames[i:i + chunk_size])
            return
        if self.kind == "frames":
            source = ((read_image(p), p) for p in _frame_files(self.path))
        else:
            source = ((f, self.path) for f in self._iter_video_frames())
        chunk, size = [], None
        for frame, where in source:
            frame = self._check_size(frame, where)
            if size is None:
                size = frame.shape
            elif frame.shape != size:
                raise UserError(f"{where}: frame is {frame.shape[0]}x{frame.shape[1]} but earlier frames of "
                                f"{self.name} are {size[0]}x{size[1]}; all frames of a video must match")
            chunk.append(frame)
            if len(chunk) == chunk_size:
                yield np.stack(chunk)
                chunk = []
        if chunk:
            yield np.stack(chunk)
        elif size is None:
            what = "empty video folder (no png/jpg frames)" if self.kind == "frames" else "video has no frames"
            raise UserError(f"{self.path}: {what}; remove it or add frames")

    def read_all(self) -> np.ndarray:
        return np.concatenate(list(self.iter_chunks(256)))

    def read_frames(self, indices: Sequence[int]) -> np.ndarray:
        """Frames at `indices` (any order, repeats allowed) as uint8 (n,H,W,3)."""
        indices = [int(i) for i in indices]
        if self.kind == "frames":
            files = _frame_files(self.path)
            return np.stack([self._check_size(read_image(files[i]), files[i]) for i in indices])
        wanted, found = set(indices), {}
        start = 0
        for chunk in self.iter_chunks(64):
            for j in range(len(chunk)):
                if start + j in wanted:
                    found[start + j] = chunk[j]
            start += len(chunk)
            if len(found) == len(wanted):
                break
        missing = wanted - set(found)
        if missing:
            raise IndexError(f"{self.path}: frame {min(missing)} out of range ({start} frames)")
        return np.stack([found[i] for i in indices])


def open_video(path, frame_shape: Optional[Tuple[int, int]] = None) -> Video:
    """Open one video entry of a dataset split (folder, strip image or video file)."""
    path = Path(path)
    if path.is_dir():
        return Video(path, "frames", frame_shape)
    suffix = path.suffix.lower()
    if not path.exists():
        raise UserError(f"{path}: no such file or folder")
    if suffix in IMAGE_EXTS:
        return Video(path, "strip", frame_shape)
    if suffix in VIDEO_EXTS:
        return Video(path, "video", frame_shape)
    raise UserError(f"{path}: not a video (expected a folder of frames, a .png/.jpg strip or "
                    f"{'/'.join(sorted(VIDEO_EXTS))}); move it out of the dataset folder")
