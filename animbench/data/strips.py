"""Image strips with a title row, drawn with OpenCV (no matplotlib: used inside training and evaluation loops):
training sample grids and the per-video visualisation of `eval/reconstruct --save-visualization`."""
from __future__ import annotations

from typing import Sequence

import numpy as np


def title_row(titles: Sequence[str], width: int, height: int = 18) -> np.ndarray:
    """A white band with one centred title per column of `width` pixels."""
    import cv2

    band = np.full((height, width * len(titles), 3), 255, np.uint8)
    scale = 0.33 if width < 128 else 0.45
    for i, title in enumerate(titles):
        (tw, th), _ = cv2.getTextSize(title, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
        x = i * width + max(0, (width - tw) // 2)
        cv2.putText(band, title, (x, (height + th) // 2), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 1,
                    cv2.LINE_AA)
    return band


def titled_grid(rows: Sequence[Sequence[np.ndarray]], titles: Sequence[str]) -> np.ndarray:
    """uint8 (H,W,3) images, one list per row, under a title row; grey maps (H,W) are shown as grey images."""
    def rgb(image):
        return np.repeat(image[..., None], 3, axis=2) if image.ndim == 2 else image

    body = np.concatenate([np.concatenate([rgb(i) for i in row], axis=1) for row in rows], axis=0)
    width = rows[0][0].shape[1]
    return np.concatenate([title_row(titles, width), body], axis=0)
