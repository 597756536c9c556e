"""Video reconstruction: frame 0 is the source, every frame (frame 0 included) a driving frame.

The source is prepared once per video (FOMM: source keypoints + encoder features) and driving frames are
processed in batches. Outputs are streamed per batch so long videos never need all predictions at once,
except the uint8 PNG strip, which is the protocol's on-disk format.
"""
from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterator, Optional

import numpy as np
import torch

from animbench.data.convert import to_float_tensor, to_uint8_truncate
from animbench.results.store import atomic_write_bytes


@dataclass
class ReconstructedBatch:
    start: int                      # index of the first frame of this batch in the video
    driving: torch.Tensor           # (n,3,H,W) float32 ground truth
    prediction: torch.Tensor        # (n,3,H,W) float32 in [0,1]
    occlusion: Optional[torch.Tensor] = None   # (n,1,h,w) FOMM occlusion map (1 = visible)
    background: Optional[torch.Tensor] = None  # (n,1,h,w) FOMM mask channel 0 (background alpha)


def reconstruct_video(model, video, *, device="cpu", batch_size=8, want_maps=False) -> Iterator[ReconstructedBatch]:
    """Yield the reconstruction of `video` batch by batch (inference mode, source prepared once)."""
    start = 0
    state = None
    for chunk in video.iter_chunks(batch_size):
        # inference mode only around the model: a `with` spanning the `yield` would leave it switched on in
        # the caller's thread whenever the consumer stops early (an error mid-video)
        with torch.inference_mode():
            driving = to_float_tensor(chunk).to(device)
            if state is None:
                state = model.prepare_source(driving[:1])
            out = model.animate(state, driving)
            batch = ReconstructedBatch(start=start, driving=driving, prediction=out["prediction"].float())
            if want_maps:
                if "occlusion_map" not in out or "mask" not in out:
                    raise ValueError("model returns no occlusion_map/mask; top-k masks need a FOMM-family model")
                batch.occlusion = out["occlusion_map"].float()
                batch.background = out["mask"][:, :1].float()
        yield batch
        start += driving.shape[0]


def encode_png(frames_uint8: np.ndarray) -> bytes:
    """Encode (T,H,W,3) uint8 frames as one horizontal strip PNG (H × T·W), as pose-evaluation reads them."""
    import imageio.v3 as iio

    strip = np.concatenate(list(frames_uint8), axis=1) if len(frames_uint8) else frames_uint8
    buf = io.BytesIO()
    iio.imwrite(buf, strip, extension=".png")
    return buf.getvalue()


class StripWriter:
    """Collects truncated uint8 frames of one video and writes `<dir>/<video>.png` atomically at the end."""

    def __init__(self, directory: Path, video_name: str):
        self.path = Path(directory) / f"{video_name}.png"
        self._frames = []

    def add(self, prediction: torch.Tensor) -> None:
        self._frames.append(to_uint8_truncate(prediction.cpu()))

    def close(self) -> Path:
        atomic_write_bytes(self.path, encode_png(np.concatenate(self._frames)))
        return self.path


class MapWriter:
    """Collects occlusion/background maps of one video; writes `<dir>/<video>.npz` (float16, compressed).

    float16 keeps a vox-size run in a few GB; the top-k masks of every model are derived from the stored
    (float16) maps, the baseline's own included, so all models get identical masks.
    """

    def __init__(self, directory: Path, video_name: str):
        self.path = Path(directory) / f"{video_name}.npz"
        self._occ, self._bg = [], []

    def add(self, occlusion: torch.Tensor, background: torch.Tensor) -> None:
        self._occ.append(occlusion[:, 0].cpu().numpy().astype(np.float16))
        self._bg.append(background[:, 0].cpu().numpy().astype(np.float16))

    def close(self) -> Path:
        buf = io.BytesIO()
        np.savez_compressed(buf, occlusion=np.concatenate(self._occ), background=np.concatenate(self._bg))
        atomic_write_bytes(self.path, buf.getvalue())
        return self.path


class VisualizationWriter:
    """`viz/<video>.png`, like the authors' reconstruction mode: one row per frame, columns source | driving |
    prediction (| occlusion map, when the model has one), under a title row."""

    def __init__(self, directory: Path, video_name: str):
        self.path = Path(directory) / f"{video_name}.png"
        self._rows = []
        self._source = None

    def add(self, batch: "ReconstructedBatch") -> None:
        driving = to_uint8_truncate(batch.driving.cpu())
        prediction = to_uint8_truncate(batch.prediction.cpu())
        if self._source is None:
            self._source = driving[0]
        occlusion = None
        if batch.occlusion is not None:
            occ = torch.nn.functional.interpolate(batch.occlusion.float(), size=batch.prediction.shape[-2:],
                                                  mode="bilinear", align_corners=False)
            occlusion = to_uint8_truncate(occ.expand(-1, 3, -1, -1).cpu())
        for i in range(prediction.shape[0]):
            row = [self._source, driving[i], prediction[i]] + ([occlusion[i]] if occlusion is not None else [])
            self._rows.append(row)

    def close(self) -> Path:
        import imageio.v3 as iio

        from animbench.data.strips import titled_grid

        titles = ["source", "driving", "prediction", "occlusion"][: len(self._rows[0])]
        buf = io.BytesIO()
        iio.imwrite(buf, titled_grid(self._rows, titles), extension=".png")
        atomic_write_bytes(self.path, buf.getvalue())
        return self.path


def load_maps(path: Path) -> Dict[str, np.ndarray]:
    with np.load(path) as z:
        return {"occlusion": z["occlusion"], "background": z["background"]}
