"""Feature extractors for AKD / MKR / AED: name -> loader, like the model registry (lazy imports).

Every extractor has `kind`, `extract(frames uint8 (N,H,W,3) RGB) -> list` (one value per frame, exactly what
pose-evaluation's extract.py stores: an array, or None when nothing was detected) and `describe() -> dict`.
"""
from __future__ import annotations

from animbench.errors import UserError
from animbench.registry import Registry

EXTRACTORS = Registry("feature extractor")
EXTRACTORS.register("face-pose", "animbench.features.registry:_load_face_pose",
                    help="68 face landmarks (face-alignment 2-D FAN + SFD), pose-evaluation's face AKD")
EXTRACTORS.register("face-id", "animbench.features.face_id:load_face_id",
                    help="OpenFace nn4.small2.v1 embeddings, pose-evaluation's face AED")
EXTRACTORS.register("body-pose", "animbench.features.openpose:load_body_pose",
                    help="OpenPose COCO 18 keypoints, pose-evaluation's body AKD/MKR")
EXTRACTORS.register("body-id", "animbench.features.reid:load_body_id",
                    help="Market-1501 ft_net ResNet-50 features, pose-evaluation's body AED")


def normalise_kind(kind: str) -> str:
    name = str(kind).strip().lower().replace("_", "-")
    if name not in EXTRACTORS:
        raise UserError(EXTRACTORS.unknown_message(kind) + " (underscores accepted: face_pose, ...)")
    return name


#: the weights-manifest entry of each extractor's network (face-pose resolves its two files itself)
WEIGHTS_ENTRY = {"face-id": "openface", "body-pose": "openpose-coco", "body-id": "reid-market1501"}


def load_extractor(kind: str, weights=None, device: str = "cpu", random_weights: bool = False,
                   weights_option: str = "--weights", **options):
    """The extractor `kind` with `weights` (a file; face-pose: a folder with FAN + S3FD), else the cached files
    (a clear error says where to get missing ones). Never random weights unless asked (tests, timing)."""
    kind = normalise_kind(kind)
    if kind == "face-pose":
        return EXTRACTORS.get(kind)(weights=weights, device=device, random_weights=random_weights, **options)
    if weights is None and not random_weights:
        from animbench.weights import resolve

        weights = resolve(WEIGHTS_ENTRY[kind], option=weights_option)
    return EXTRACTORS.get(kind)(weights=weights, device=device, **options)


def _load_face_pose(weights=None, device: str = "cpu", **options):
    from animbench.features.face_pose import load_face_pose

    return load_face_pose(weights_dir=weights, device=device, **options)
