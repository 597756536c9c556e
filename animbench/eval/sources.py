"""What the evaluation reads besides the model: top-k masks from a baseline run's stored maps, the strips of an
earlier reconstruction run, and ground-truth salient masks (cached per dataset)."""
from __future__ import annotations

from pathlib import Path
from typing import Dict, Optional, Sequence

import numpy as np
import torch

from animbench.errors import UserError
from animbench.results.store import RunStore, file_sha256


class TopkSource:
    """Top-k masks from the stored motion maps of a (baseline FOMM) run, derived with the shared mask function."""

    def __init__(self, maps_dir: Path, ks: Sequence[int], threshold: Optional[float]):
        self.maps_dir = Path(maps_dir)
        self.ks = tuple(ks)
        self.threshold = threshold

    def for_video(self, video_name: str) -> Dict[str, np.ndarray]:
        from animbench.eval.reconstruct import load_maps

        path = self.maps_dir / f"{video_name}.npz"
        if not path.exists():
            raise UserError(f"{path}: no motion maps for video {video_name!r}; run the baseline with "
                            f"`animbench reconstruct ... --save-maps` (or eval --save-maps) on the same dataset")
        try:
            return load_maps(path)
        except Exception as e:  # zipfile/zlib/ValueError on a truncated or foreign file
            raise UserError(f"{path}: corrupt motion maps ({type(e).__name__}); the baseline run "
                            f"{self.maps_dir.parent} must be redone: rerun it into a new --out with "
                            f"--save-maps") from None

    def masks(self, occlusion: np.ndarray, background: np.ndarray, n: int, size) -> Dict[str, torch.Tensor]:
        """Top-k masks at frame `size` from (n,h,w) float16 maps (the stored precision)."""
        from animbench.masks import topk_masks

        if occlusion.shape[0] != n:
            raise UserError(f"{self.maps_dir}: motion maps hold fewer frames than the video; the baseline run "
                            f"used a different dataset")
        occ = torch.from_numpy(occlusion.astype(np.float32))[:, None]
        bg = torch.from_numpy(background.astype(np.float32))[:, None]
        opts = {} if self.threshold is None else {"threshold": self.threshold}
        return topk_masks(occ, bg, ks=self.ks, size=tuple(size), **opts)


def check_reconstruction(spec) -> dict:
    """The identity of the reconstruction run whose strips `spec` reuses (same model, checkpoint, settings)."""
    recon = RunStore(spec.from_reconstruction)
    manifest = recon.read_manifest()
    if manifest.get("kind") != "reconstruct":
        raise UserError(f"--from-reconstruction {spec.from_reconstruction}: not a `animbench reconstruct` run")
    if manifest.get("model") != spec.model:
        raise UserError(f"--from-reconstruction {spec.from_reconstruction}: made with model "
                        f"{manifest.get('model')!r}, not {spec.model!r}")
    identity = manifest.get("identity", {})
    sha = file_sha256(spec.checkpoint) if spec.checkpoint else None
    if spec.checkpoint and identity.get("checkpoint_sha256") != sha:
        raise UserError(f"--from-reconstruction {spec.from_reconstruction}: made with another checkpoint "
                        f"than {spec.checkpoint}")
    return {"dir": str(spec.from_reconstruction), "run_key": manifest.get("run_key"),
            "dataset_manifest_hash": manifest.get("dataset_manifest_hash"),
            "checkpoint_sha256": identity.get("checkpoint_sha256"), "align_corners": identity.get("align_corners"),
            "model_settings": identity.get("model_settings")}


def salient_for(spec, dataset, video) -> np.ndarray:
    from animbench.eval.gt_cache import salient_masks_for_video

    return salient_masks_for_video(dataset, video, backend=spec.salient_backend, folder=spec.salient_dir,
                                   matting=spec.salient_matting)


def png_batches(png_dir: Path, video, batch_size: int, frame_size):
    """Predictions read back from `<png_dir>/<video>.png` strips (uint8, as written by reconstruct)."""
    from animbench.data.convert import to_float_tensor
    from animbench.data.video import open_video
    from animbench.eval.reconstruct import ReconstructedBatch

    path = png_dir / f"{video.name}.png"
    if not path.exists():
        raise UserError(f"{path}: no reconstruction strip for video {video.name!r}; the reconstruction run "
                        f"is incomplete or used another dataset: rerun `animbench reconstruct` to finish it")
    pred_video = open_video(path, frame_shape=tuple(frame_size))
    if pred_video.num_frames != video.num_frames:
        raise UserError(f"{path}: {pred_video.num_frames} frames, ground truth has {video.num_frames}")
    start = 0
    for gt_chunk, pred_chunk in zip(video.iter_chunks(batch_size), pred_video.iter_chunks(batch_size)):
        yield ReconstructedBatch(start=start, driving=to_float_tensor(gt_chunk), prediction=to_float_tensor(pred_chunk))
        start += len(gt_chunk)
