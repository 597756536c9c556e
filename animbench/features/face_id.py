"""face-id: OpenFace nn4.small2.v1 embeddings as pose-evaluation's extract.py stores them (AED on faces).

Per frame: RGB→BGR, the whole frame resized to 96×96 (`resize="skimage-0.14"`: the published numbers' skimage
defaults; `"modern"`: today's skimage defaults, what pose-evaluation gives when run now), the port's network
in eval mode; the stored value is `net(frame)[0]`, a float32 array of shape (1, 128).
"""
from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import numpy as np

from animbench.features.openface import RESIZE_MODES, embed_frames, load_openface


class FaceIdExtractor:
    kind = "face-id"

    def __init__(self, weights: Optional[Path] = None, device: str = "cpu", resize: str = "skimage-0.14",
                 batch_size: int = 32, seed: int = 0, trust: bool = False):
        from animbench.errors import UserError

        if resize not in RESIZE_MODES:
            raise UserError(f"--resize {resize}: use one of {', '.join(RESIZE_MODES)}")
        self.weights, self.device, self.resize, self.batch_size = weights, device, resize, batch_size
        self.model = load_openface(weights, device=device, seed=seed, trust=trust)

    def extract(self, frames_uint8: np.ndarray) -> List[np.ndarray]:
        embeddings = embed_frames(self.model, frames_uint8, resize=self.resize, batch_size=self.batch_size,
                                  device=self.device)
        return [row[None, :].copy() for row in embeddings]

    def describe(self) -> dict:
        from animbench.results.store import file_sha256

        return {"kind": self.kind, "network": "OpenFace nn4.small2.v1 (thnkim/OpenFacePytorch port)",
                "weights": str(self.weights) if self.weights else "random (seeded)",
                "weights_sha256": file_sha256(self.weights) if self.weights else None, "resize": self.resize,
                "value": "net(frame)[0]: float32 (1, 128), L2-normalised"}


def load_face_id(weights=None, device: str = "cpu", resize: str = "skimage-0.14", batch_size: int = 32,
                 seed: int = 0, trust: bool = False, **unused) -> FaceIdExtractor:
    if unused:
        from animbench.errors import UserError

        raise UserError(f"face-id takes no option(s) {', '.join(sorted(unused))}")
    return FaceIdExtractor(weights, device=device, resize=resize, batch_size=batch_size, seed=seed, trust=trust)
