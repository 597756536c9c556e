"""Face-pose extractor (pose-evaluation's face AKD landmarks) against face-alignment called the pose-evaluation way.

Offline: the FAN-4 and S3FD weight files are written here from face-alignment's own model classes (seeded
random FAN; an S3FD whose classifier heads are replaced by constants so that it returns known boxes, or none),
as plain state dicts under the file names face-alignment 1.5.0 loads from ``torch.hub.get_dir()/checkpoints``.
"""
import enum
import functools
import hashlib
import os

import numpy as np
import pytest
import torch
from skimage import data

import face_alignment
from animbench.errors import UserError
from animbench.features import face_pose as fp
from animbench.weights import get

ONE_THREAD = True  # reference outputs were made with one thread (conftest pins it per test)
os.environ.setdefault("OMP_NUM_THREADS", "1")
FAN_NAME, SFD_NAME = get("fan-2d").filename, get("s3fd").filename
LEVELS = ("conv3_3_norm", "conv4_3_norm", "conv5_3_norm", "fc7", "conv6_2", "conv7_2")


def constant_sfd(state, heads):
    """S3FD state dict whose heads ignore the image. ``heads``: {level: (face logit, (dx, dy, dw, dh))}, the
    face logit against background 0 and the box regression outputs (boxes = anchors moved by dx*0.1*size and
    scaled by exp(0.2*dw)); levels not named get face logit -20 (no face)."""
    state = dict(state)
    for level in LEVELS:
        for head in ("conf", "loc"):
            w, b = f"{level}_mbox_{head}.weight", f"{level}_mbox_{head}.bias"
            state[w], state[b] = torch.zeros_like(state[w]), torch.zeros_like(state[b])
        logit, loc = heads.get(level, (-20.0, (0.0, 0.0, 0.0, 0.0)))
        state[f"{level}_mbox_conf.bias"][-1] = logit
        state[f"{level}_mbox_loc.bias"][:] = torch.tensor(loc)
    return state


def frames128():
    astro = data.astronaut()[::4, ::4]                     # 128 x 128
    cat = data.chelsea()[20:276:2, 100:356:2]              # 128 x 128
    return np.ascontiguousarray(np.stack([astro, cat]))


@pytest.fixture(scope="module")
def hubs(tmp_path_factory):
    """Two torch hub dirs: 'faces' (S3FD keeps 2 boxes per 128x128 frame after NMS: the conv6_2 anchors
    enlarged to 696 px so that one suppresses the rest, p=0.95; then one conv7_2 anchor, shifted 154 px right
    so that its IoU with that box stays under NMS's 0.3, p=0.82) and 'none' (S3FD finds nothing); both hold
    the same random FAN."""
    root = tmp_path_factory.mktemp("hubs")
    fan, sfd = fp.random_state_dicts(seed=3)
    out = {}
    for name, logits in (("faces", {"conv6_2": (3.0, (0, 0, 5, 5)), "conv7_2": (1.5, (3, 0, 0, 0))}),
                         ("none", {})):
        ck = root / name / "checkpoints"
        ck.mkdir(parents=True)
        if name == "faces":
            torch.save(fan, ck / FAN_NAME)
        else:
            os.symlink(out["faces"] / "checkpoints" / FAN_NAME, ck / FAN_NAME)
        torch.save(constant_sfd(sfd, logits), ck / SFD_NAME)
        out[name] = root / name
    return out


def pose_evaluation_fa(hub):
    """face-alignment built as extract.py builds it (+ device='cpu', compile=False), weights from the hub dir."""
    previous = torch.hub._hub_dir
    torch.hub.set_dir(str(hub))
    try:
        return face_alignment.FaceAlignment(face_alignment.LandmarksType.TWO_D, flip_input=False, device="cpu",
                                            compile=False)
    finally:
        torch.hub._hub_dir = previous


@pytest.fixture(scope="module")
def ours(hubs):
    return fp.load_face_pose(weights_dir=hubs["faces"])


@pytest.fixture(scope="module")
def reference(hubs):
    return pose_evaluation_fa(hubs["faces"])


def test_equals_pose_evaluation_call(ours, reference):
    frames = frames128()
    values = ours.extract(frames)
    assert len(values) == len(frames)
    for frame, value in zip(frames, values):
        boxes = reference.face_detector.detect_from_image(frame.copy())
        assert len(boxes) == 2 and boxes[0][-1] > boxes[1][-1] > 0.5   # two faces, best first
        upstream = reference.get_landmarks(frame)                      # extract.py: fa.get_landmarks(frame)[0]
        assert len(upstream) == 2
        assert value.shape == (68, 2) and value.dtype == np.float32
        np.testing.assert_array_equal(value, upstream[0])
        assert not np.array_equal(value, upstream[1])                  # the first face, not another one
        assert np.array_equal(value, np.trunc(value))                  # integer-valued pixels


def test_known_boxes_first_face(ours, reference):
    frame = frames128()[0]
    boxes = [np.array([30.0, 20.0, 100.0, 100.0, 0.9]), [0.0, 0.0, 40.0, 40.0, 0.7]]
    value, = ours.extract(frame[None], detected_faces=[boxes])
    np.testing.assert_array_equal(value, reference.get_landmarks(frame, detected_faces=boxes)[0])
    with pytest.raises(UserError, match="one list of boxes per frame"):
        ours.extract(frame[None], detected_faces=[boxes, boxes])


def test_coordinates_truncated_toward_zero(ours):
    """The value is face-alignment's heatmap peak mapped back to the image and truncated toward zero (int cast),
    not rounded or floored: a box at the corner puts part of the crop (and of the landmarks) at x, y < 0."""
    frame = frames128()[0]
    box = np.array([0.0, 0.0, 40.0, 40.0, 0.9])
    value, = ours.extract(frame[None], detected_faces=[[box]])
    center = np.array([box[2] - (box[2] - box[0]) / 2, box[3] - (box[3] - box[1]) / 2])
    center[1] -= (box[3] - box[1]) * 0.12
    scale = (box[2] - box[0] + box[3] - box[1]) / 195.0
    crop = fp._face_alignment().utils.crop(frame, center, scale).transpose(2, 0, 1).astype(np.float32) / 255
    with torch.no_grad():
        heat = ours.fa.face_alignment_net(torch.from_numpy(crop)[None])
    heat = (heat[-1] if isinstance(heat, list) else heat).numpy()
    preds, _, _ = fp._face_alignment().utils.get_preds_fromhm(heat, center, scale)   # 64x64 heatmap coords
    h = 200.0 * scale
    exact = preds[0].astype(np.float64) * h / 64 + center - h / 2                   # inverse crop transform
    assert (exact < 0).any() and not np.array_equal(np.trunc(exact), np.floor(exact))
    np.testing.assert_array_equal(value, np.trunc(exact).astype(np.float32))


def test_none_when_no_face(hubs):
    ex = fp.load_face_pose(weights_dir=hubs["none"])
    frames = frames128()
    assert ex.extract(frames) == [None, None]
    with pytest.warns(UserWarning, match="No faces"):
        assert pose_evaluation_fa(hubs["none"]).get_landmarks(frames[0]) is None


def test_landmarks_type_spellings(monkeypatch, hubs, ours):
    assert fp.landmarks_type_2d() is face_alignment.LandmarksType.TWO_D

    class Old(enum.IntEnum):      # face-alignment <= 1.3.4 spelling
        _2D = 1
        _2halfD = 2
        _3D = 3

    monkeypatch.setattr(face_alignment, "LandmarksType", Old)
    assert fp.landmarks_type_2d() is Old._2D
    old = fp.load_face_pose(weights_dir=hubs["faces"])     # face-alignment 1.5.0 accepts the old member (== 1)
    frame = frames128()[1]
    box = [[20.0, 10.0, 110.0, 120.0, 0.9]]
    np.testing.assert_array_equal(old.extract(frame[None], [box])[0], ours.extract(frame[None], [box])[0])

    class Neither(enum.IntEnum):
        THREE_D = 3

    monkeypatch.setattr(face_alignment, "LandmarksType", Neither)
    with pytest.raises(UserError, match="neither TWO_D nor _2D"):
        fp.landmarks_type_2d()


def test_constructor_arguments_and_hub_dir(monkeypatch, tmp_path, hubs):
    """Flat weights dir (not a hub layout): linked into a temporary hub dir that face-alignment sees only during
    construction; SFD passed by path; flip_input=False, compile=False, sfd detector."""
    flat = tmp_path / "my-weights"
    flat.mkdir()
    for name in (FAN_NAME, SFD_NAME):
        os.symlink(hubs["faces"] / "checkpoints" / name, flat / name)
    seen = {}

    real = face_alignment.FaceAlignment

    class Recorder(real):         # same constructor signature (the loader inspects it), builds nothing
        @functools.wraps(real.__init__)
        def __init__(self, landmarks_type, **kwargs):
            seen.update(kwargs, landmarks_type=landmarks_type, hub=torch.hub.get_dir())
            seen["fan_there"] = os.path.isfile(os.path.join(torch.hub.get_dir(), "checkpoints", FAN_NAME))

    before = torch.hub.get_dir()
    monkeypatch.setattr(face_alignment, "FaceAlignment", Recorder)
    ex = fp.load_face_pose(weights_dir=flat)
    assert torch.hub.get_dir() == before and not os.path.exists(seen["hub"])   # restored, temp dir removed
    assert seen["fan_there"] and seen["hub"] != before
    assert seen["landmarks_type"] == face_alignment.LandmarksType.TWO_D
    assert seen["flip_input"] is False and seen["compile"] is False and seen["face_detector"] == "sfd"
    assert seen["device"] == "cpu" and seen["face_detector_kwargs"]["path_to_detector"] == str(flat / SFD_NAME)
    assert ex.weights["fan-2d"] == flat / FAN_NAME
    # a real hub layout is used in place
    fp.load_face_pose(weights_dir=hubs["faces"])
    assert seen["hub"] == str(hubs["faces"])


def test_default_location_and_missing_weights(monkeypatch, tmp_path, hubs):
    monkeypatch.setattr(torch.hub, "_hub_dir", None)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    with pytest.raises(UserError) as err:
        fp.load_face_pose()
    msg = str(err.value)
    assert "\n" not in msg and FAN_NAME in msg and "https://www.adrianbulat.com/downloads/python-fan/" in msg
    assert str(tmp_path / "torch" / "hub" / "checkpoints" / FAN_NAME) in msg and "animbench weights download" in msg
    with pytest.raises(UserError, match="holds no"):
        fp.load_face_pose(weights_dir=tmp_path)
    (tmp_path / "torch" / "hub").mkdir(parents=True)
    os.symlink(hubs["faces"] / "checkpoints", tmp_path / "torch" / "hub" / "checkpoints")
    ex = fp.load_face_pose()
    assert ex.weights["s3fd"] == tmp_path / "torch" / "hub" / "checkpoints" / SFD_NAME
    d = ex.describe()
    assert d["kind"] == "face-pose" and d["flip_input"] is False and d["compile"] is False
    assert d["weights"]["s3fd"]["sha256"] == hashlib.sha256(ex.weights["s3fd"].read_bytes()).hexdigest()


def test_bad_inputs_and_versions(monkeypatch, ours, tmp_path):
    with pytest.raises(UserError, match="uint8"):
        ours.extract(np.zeros((1, 8, 8, 3), np.float32))
    with pytest.raises(UserError, match=r"\(N, H, W, 3\)"):
        ours.extract(np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(UserError, match="device"):
        fp.load_face_pose(tmp_path, device="tpu")
    monkeypatch.setitem(face_alignment.api.models_urls, "2DFAN-4",
                        "https://www.adrianbulat.com/downloads/python-fan/2DFAN4-cd938726ad.zip")
    with pytest.raises(UserError, match="face-alignment==1.5.0"):
        fp.load_face_pose(tmp_path)


def test_corrupt_weights_file(tmp_path, hubs):
    (tmp_path / FAN_NAME).write_bytes(b"not a checkpoint")
    os.symlink(hubs["faces"] / "checkpoints" / SFD_NAME, tmp_path / SFD_NAME)
    with pytest.raises(UserError, match="weights verify") as err:
        fp.load_face_pose(weights_dir=tmp_path)
    assert "\n" not in str(err.value)


def test_random_weights_mode():
    ex = fp.load_face_pose(random_weights=True, seed=1)
    assert ex.describe()["random_weights"] is True and ex.describe()["weights"]["fan-2d"]["sha256"] is None
    value, = ex.extract(frames128()[:1], detected_faces=[[[30.0, 20.0, 100.0, 100.0, 0.9]]])
    assert value.shape == (68, 2)
