"""OpenPose COCO-18 body pose (pose-evaluation's body AKD/MKR extractor) against the fork's own outputs.

Fixtures in tests/data/openpose/ were produced by running AliaksandrSiarohin/pose-evaluation @ 1bc4cae and its
submodule AliaksandrSiarohin/pytorch_Realtime_Multi-Person_Pose_Estimation @ 257d8b4 in a scratch directory
(see its README.md). `openpose_random_state`, `make_frame` and `synthetic_heatmaps` below are used verbatim by
that script (it extracts their source from this file), so weights, frames and heatmaps are regenerated here.
"""
import json
import math
import zlib
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest
import torch

from animbench.errors import UserError
from animbench.features import openpose_decode as dec
from animbench.features.openpose import BodyPoseExtractor, BodyPoseNet, load_body_pose

DATA = Path(__file__).parent / "data" / "openpose"
TOL = 1e-5

ONE_THREAD = True  # reference outputs were made with one thread (conftest pins it per test)


def openpose_random_state(key_shapes, seed=0):
    """Deterministic random weights in the fork's state_dict layout (one generator per key).

    Conv weights ~ N(0, 2/fan_in), centred per output unit; biases ~ U(-0.01, 0.01). The last conv of the
    two stage-6 branches is scaled x40 so heatmaps/PAFs are O(0.3) with many peaks above thre1 = 0.1, and the
    stage-6 heatmap bias of joints 3 (r_elbow) and 11 (l_hip) is -5, so after flip averaging joints 3, 6, 8
    and 11 (their mirrors included) have no peak: missing (-1).
    """
    last = {}
    for key, _ in key_shapes:  # the last conv of each branch = its highest Sequential index
        branch, index, _kind = key.split(".")
        last[branch] = max(last.get(branch, 0), int(index))
    state = OrderedDict()
    for key, shape in key_shapes:
        gen = torch.Generator().manual_seed(seed * 1_000_003 + zlib.crc32(key.encode("utf-8")))
        branch, index, kind = key.split(".")
        if kind == "weight":
            value = torch.randn(shape, generator=gen) * math.sqrt(2.0 / math.prod(shape[1:]))
            value = value - value.mean(dim=(1, 2, 3), keepdim=True)
        else:
            value = 0.02 * (torch.rand(shape, generator=gen) - 0.5)
        if branch.startswith("model6") and int(index) == last[branch] and kind == "weight":
            value = value * 40.0
        if key == "model6_2.12.bias":
            value[[3, 11]] = -5.0
        state[key] = value
    return state


def make_frame(spec):
    """uint8 RGB frame from a scikit-image sample image: slicing only, no resampling."""
    import skimage.data

    image = getattr(skimage.data, spec["image"])()
    return np.ascontiguousarray(image[slice(*spec["rows"]), slice(*spec["cols"])])


def synthetic_heatmaps():
    """Three (40, 56, 19) float64 heatmaps with known peaks, and the hand-derived (18, 2) of the first.

    Frame 0 (x, y pixels): Gaussians amp * exp(-d^2 / (2 sigma^2)) plus a few hand-set pixels:
      0: one peak (10, 7)                        -> (10, 7)
      1: peaks (5, 5), (30, 20), (12, 33)        -> the last in row-major order: (12, 33)
      2: peaks (40, 15), (8, 15) (same row)      -> (40, 15) (larger x comes later)
      3: one peak of height 0.09 < thre1         -> missing
      4: one peak of height exactly 0.1          -> missing (the test is value > 0.1)
      5: nothing                                 -> missing
      6: peaks at the corners (0, 0), (55, 39)   -> (55, 39)
      7: a 2-pixel plateau (20, 10) = (21, 10) = 0.5: both are peaks, the last is (21, 10), its 5x5 window's
         first maximum in row-major order is (20, 10)                                     -> (20, 10)
      8: A (30, 20) = 0.5 is a peak; E (32, 18) = 0.8 is not (F (32, 17) = 0.95 above it is); A is the last
         peak and its window (x 28..32, y 18..22) has its maximum at E                       -> (32, 18)
      9: peaks (3, 2) = 0.5 and its diagonal neighbour (4, 3) = 0.6 (both peaks: the footprint is a
         cross), then (44, 25) sigma 2                                                        -> (44, 25)
     10: peak (1, 38) near the corner (window clipped), and (50, 4)                           -> (1, 38)
     11: negative everywhere except one pixel (27, 0) = 0.2 on the top border                  -> (27, 0)
     12..17: one peak each at (2 + 3j, 36 - j) for j = 12..17; background 18: a large peak, ignored
    Frame 1: everything below thre1 (all -1). Frame 2: smoothed seeded noise (many peaks per joint).
    """
    h, w = 40, 56
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)

    def bump(x, y, amp, sigma=1.5):
        return amp * np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2.0 * sigma ** 2))

    m = np.zeros((h, w, 19))
    m[..., 0] = bump(10, 7, 0.9)
    m[..., 1] = bump(5, 5, 0.5) + bump(30, 20, 0.5) + bump(12, 33, 0.5)
    m[..., 2] = bump(40, 15, 0.4) + bump(8, 15, 0.7)
    m[..., 3] = bump(20, 20, 0.09)
    m[..., 4] = bump(25, 12, 0.1)
    m[..., 6] = bump(0, 0, 0.6) + bump(55, 39, 0.3)
    m[10, 19:23, 7] = (0.2, 0.5, 0.5, 0.2)
    m[20, 30, 8], m[18, 32, 8], m[17, 32, 8] = 0.5, 0.8, 0.95
    m[..., 9] = bump(44, 25, 0.7, sigma=2.0)
    m[2, 3, 9], m[3, 4, 9] = 0.5, 0.6
    m[..., 10] = bump(1, 38, 0.8) + bump(50, 4, 0.8)
    m[..., 11] = -0.3
    m[0, 27, 11] = 0.2
    for j in range(12, 18):
        m[..., j] = bump(2 + 3 * j, 36 - j, 0.3 + 0.02 * j)
    m[..., 18] = bump(28, 20, 5.0)
    expected = -np.ones((18, 2))
    for j, xy in {0: (10, 7), 1: (12, 33), 2: (40, 15), 6: (55, 39), 7: (20, 10), 8: (32, 18), 9: (44, 25),
                  10: (1, 38), 11: (27, 0)}.items():
        expected[j] = xy
    for j in range(12, 18):
        expected[j] = (2 + 3 * j, 36 - j)

    low = np.full((h, w, 19), 0.05)
    low[5, 5] = 0.1
    rng = np.random.default_rng(20261127)
    noise = rng.standard_normal((h + 4, w + 4, 19))
    smooth = sum(noise[dy:dy + h, dx:dx + w] for dy in range(5) for dx in range(5)) / 10.0
    return [m, low, smooth], expected


# ----------------------------------------------------------------------------------------------------------
# Fixtures
# ----------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def meta():
    return json.loads((DATA / "fixture.json").read_text())


@pytest.fixture(scope="module")
def ref():
    with np.load(DATA / "fork_outputs.npz") as f:
        return {k: f[k] for k in f.files}


@pytest.fixture(scope="module")
def key_shapes():
    return [(k, tuple(s)) for k, s in json.loads((DATA / "official_state_dict_keys.json").read_text())]


@pytest.fixture(scope="module")
def net(key_shapes):
    model = BodyPoseNet()
    model.load_state_dict(openpose_random_state(key_shapes), strict=True)
    return model.eval()


@pytest.fixture(scope="module")
def full_size(net, meta):
    """Our flip-averaged maps of the 368-px protocol frame (computed once: ~3 s on one CPU thread)."""
    spec = meta["frames"][0]
    assert spec["input_size"] == dec.INPUT_SIZE
    return heatmaps_of(net, spec)


def heatmaps_of(net, spec):
    frame = make_frame(spec)
    assert list(frame.shape) == spec["shape"] and zlib.crc32(frame.tobytes()) == spec["crc32"]
    heat, pafs = dec.heatmaps_and_pafs(net, frame[None], input_size=spec["input_size"])
    return heat, pafs


def _hwc(maps, sub):
    return maps[0].permute(1, 2, 0).numpy()[::sub, ::sub]


def _decode(maps_hwc):
    return dec.decode_peaks(torch.from_numpy(np.ascontiguousarray(maps_hwc.transpose(2, 0, 1)))[None])[0].numpy()


# ----------------------------------------------------------------------------------------------------------
# Network layout and weights
# ----------------------------------------------------------------------------------------------------------
def test_state_dict_matches_fork_layout(key_shapes):
    ours = [(k, tuple(v.shape)) for k, v in BodyPoseNet().state_dict().items()]
    assert ours == key_shapes  # names, shapes and order of get_model('vgg19').state_dict()
    assert len(ours) == 184 and ours[0] == ("model0.0.weight", (64, 3, 3, 3))
    assert ("model0.25.weight", (128, 256, 3, 3)) in ours and ("model6_2.12.weight", (19, 128, 1, 1)) in ours


def test_network_matches_fork(net, ref):
    with torch.no_grad():
        (pafs, heat), stages = net(torch.from_numpy(ref["net_input"]))
    assert len(stages) == 12 and pafs.shape[1] == 38 and heat.shape[1] == 19
    assert pafs is stages[-2] and heat is stages[-1]
    for i, out in enumerate(stages):
        assert np.abs(out.numpy() - ref[f"net_stage{i}"]).max() <= TOL, f"stage output {i}"


def test_load_weights_file(tmp_path, key_shapes):
    state = openpose_random_state(key_shapes, seed=3)
    plain, prefixed, wrong = tmp_path / "pose_model.pth", tmp_path / "dp.pth", tmp_path / "bad.pth"
    torch.save(state, plain)
    torch.save({"module." + k: v for k, v in state.items()}, prefixed)
    for path in (plain, prefixed):
        ext = load_body_pose(path, batch_size=2)
        assert torch.equal(ext.net.state_dict()["model6_2.12.bias"], state["model6_2.12.bias"])
        info = ext.describe()
        assert info["weights"] == str(path) and len(info["weights_sha256"]) == 64 and not info["random_weights"]
    bad = dict(state)
    bad["model6_2.12.weight"] = torch.zeros(18, 128, 1, 1)
    del bad["model0.0.bias"]
    torch.save(bad, wrong)
    with pytest.raises(UserError, match="does not match the OpenPose model.*mis-shaped.*model6_2.12.weight"):
        load_body_pose(wrong)
    with pytest.raises(UserError, match="no such file"):
        load_body_pose(tmp_path / "missing.pth")
    (tmp_path / "page.pth").write_text("<!DOCTYPE html><html>quota exceeded</html>")
    with pytest.raises(UserError, match="HTML page"):
        load_body_pose(tmp_path / "page.pth")


def test_random_weights_are_seeded():
    a, b = load_body_pose(seed=1), load_body_pose(seed=1)
    assert torch.equal(a.net.model3_1[0].weight, b.net.model3_1[0].weight)
    assert not torch.equal(a.net.model3_1[0].weight, load_body_pose(seed=2).net.model3_1[0].weight)
    assert a.describe()["random_weights"] and a.kind == "body-pose" and a.describe()["thresholds"]["thre1"] == 0.1


# ----------------------------------------------------------------------------------------------------------
# Preprocessing and resampling
# ----------------------------------------------------------------------------------------------------------
def test_flip_permutations_match_fork(meta):
    assert dec.HEAT_FLIP == tuple(meta["swap_heat"])
    assert dec.PAF_FLIP == tuple(meta["swap_paf"])


def test_input_geometry_matches_fork(meta):
    for spec in meta["frames"]:
        g = dec.input_geometry(spec["shape"][0], spec["shape"][1], spec["input_size"])
        assert g["scale"] == spec["im_scale"]
        assert list(g["resized"]) == spec["real_shape"][:2] and list(g["padded"]) == spec["cropped_shape"][:2]
    # the SHORTER side becomes 368 (crop_with_factor divides by min(H, W)), not the height
    assert dec.input_geometry(300, 210)["resized"] == (526, 368)
    assert dec.input_geometry(256, 256) == {"scale": 1.4375, "resized": (368, 368), "padded": (368, 368)}
    assert dec.input_geometry(100, 371)["padded"] == (368, 1368)


def test_preprocess_values():
    frame = np.zeros((1, 3, 20, 30), np.uint8)
    frame[..., 0, 0] = (0, 128, 255)
    x = dec.preprocess_bgr(torch.from_numpy(frame), input_size=20)  # scale 1: no resampling, pad to 24 x 32
    assert x.shape == (1, 3, 24, 32) and x.dtype == torch.float32
    assert x[0, :, 0, 0].tolist() == [-0.5, 0.0, 255 / 256 - 0.5]
    assert bool((x[..., 20:, :] == -0.5).all()) and bool((x[..., :, 30:] == -0.5).all())


def test_resize_matches_opencv():
    cv2 = pytest.importorskip("cv2")
    rng = np.random.default_rng(7)
    for h, w in [(256, 256), (300, 210), (67, 171), (736, 740), (739, 736), (5, 3)]:
        img = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        g = dec.input_geometry(h, w)
        s = g["scale"]
        ours = dec.resize_linear_u8(torch.from_numpy(img).permute(2, 0, 1)[None], *g["resized"], 1 / s, 1 / s)
        assert np.array_equal(ours[0].permute(1, 2, 0).numpy(), cv2.resize(img, None, fx=s, fy=s)), (h, w)
    for h, w, c in [(46, 46, 19), (11, 29, 38), (16, 12, 19), (2, 1, 19)]:
        maps = rng.standard_normal((h, w, c)).astype(np.float32)
        up = cv2.resize(maps, None, fx=8, fy=8, interpolation=cv2.INTER_CUBIC)
        ours = dec.resize_cubic_f32(torch.from_numpy(maps).permute(2, 0, 1)[None], 8 * h, 8 * w, 1 / 8, 1 / 8)
        assert np.array_equal(ours[0].permute(1, 2, 0).numpy(), up), (h, w, c)
        for out_h, out_w in [(256, 256), (8 * h - 7, 8 * w - 3), (31, 77)]:
            down = cv2.resize(up, (out_w, out_h), interpolation=cv2.INTER_CUBIC)
            ours = dec.resize_cubic_f32(torch.from_numpy(up).permute(2, 0, 1)[None], out_h, out_w,
                                        1 / (out_h / up.shape[0]), 1 / (out_w / up.shape[1]))
            assert np.array_equal(ours[0].permute(1, 2, 0).numpy(), down), (h, w, c, out_h, out_w)


# ----------------------------------------------------------------------------------------------------------
# Heatmaps, PAFs and per-frame values against the fork
# ----------------------------------------------------------------------------------------------------------
def test_full_size_maps_match_fork(full_size, meta, ref):
    heat, pafs = full_size
    name, sub = meta["frames"][0]["name"], meta["subsample"]
    assert heat.dtype == torch.float64 and heat.shape == (1, 19, 256, 256) and pafs.shape == (1, 38, 256, 256)
    assert np.abs(_hwc(heat, sub) - ref[f"heat_{name}"]).max() <= TOL
    assert np.abs(_hwc(pafs, sub) - ref[f"paf_{name}"]).max() <= TOL


def test_full_size_values_match_fork(full_size, meta, ref):
    heat, _ = full_size
    name = meta["frames"][0]["name"]
    assert np.array_equal(dec.peak_mask(heat[:, :18]).sum((2, 3))[0].numpy(), ref[f"npeaks_{name}"])
    value = dec.frame_values(dec.decode_peaks(heat))[0]
    assert value.dtype == np.float64 and value.shape == (18, 2)
    assert np.array_equal(value, ref[f"value_{name}"])
    assert (value[[3, 6, 8, 11]] == -1).all() and (value[[0, 1, 2]] >= 0).all()


def test_small_frames_match_fork(net, meta, ref):
    sub = meta["subsample"]
    for spec in meta["frames"][1:]:
        heat, pafs = heatmaps_of(net, spec)
        assert np.abs(_hwc(heat, sub) - ref[f"heat_{spec['name']}"]).max() <= TOL, spec["name"]
        assert np.abs(_hwc(pafs, sub) - ref[f"paf_{spec['name']}"]).max() <= TOL, spec["name"]
        ext = BodyPoseExtractor(net, batch_size=2, input_size=spec["input_size"])
        frame = make_frame(spec)
        values = ext.extract(np.stack([frame, frame[:, ::-1], frame]))  # batches of 2 and 1
        assert len(values) == 3 and np.array_equal(values[0], ref[f"value_{spec['name']}"]), spec["name"]
        assert np.array_equal(values[2], values[0]) and not np.array_equal(values[1], values[0])
        assert np.array_equal(ext.extract(torch.from_numpy(frame[None]))[0], values[0])


# ----------------------------------------------------------------------------------------------------------
# Decoding on synthetic heatmaps (hand-checkable)
# ----------------------------------------------------------------------------------------------------------
def test_synthetic_decode_matches_fork_and_hand(ref):
    maps, expected = synthetic_heatmaps()
    assert np.array_equal(ref["synth_value_0"], expected)  # the fork agrees with the hand derivation
    for i, maps_hwc in enumerate(maps):
        assert np.array_equal(_decode(maps_hwc), ref[f"synth_value_{i}"]), f"synthetic frame {i}"
    assert (ref["synth_value_1"] == -1).all() and (ref["synth_value_2"] >= 0).all()
    batch = torch.from_numpy(np.stack([m.transpose(2, 0, 1) for m in maps]))
    assert np.array_equal(dec.decode_peaks(batch).numpy(), np.stack([ref[f"synth_value_{i}"] for i in range(3)]))


def test_peak_mask_is_scipy_cross_maximum():
    ndimage = pytest.importorskip("scipy.ndimage")
    maps, _ = synthetic_heatmaps()
    rng = np.random.default_rng(3)
    coarse = np.repeat(np.repeat(rng.integers(0, 4, (2, 10, 14)) / 10.0, 4, axis=1), 4, axis=2)  # plateaus
    for m in [maps[0][..., j] for j in range(18)] + [maps[2][..., 0]] + list(coarse):
        expect = (ndimage.maximum_filter(m, footprint=ndimage.generate_binary_structure(2, 1)) == m) & (m > 0.1)
        assert np.array_equal(dec.peak_mask(torch.from_numpy(m)[None, None])[0, 0].numpy(), expect)


def test_frame_validation():
    ext = load_body_pose(batch_size=1)
    with pytest.raises(UserError, match="uint8"):
        ext.extract(np.zeros((1, 8, 8, 3), np.float32))
    with pytest.raises(UserError, match=r"\(N, H, W, 3\)"):
        ext.extract(np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(UserError, match="batch_size"):
        load_body_pose(batch_size=0)
    with pytest.raises(UserError, match="not a torch device"):
        load_body_pose(device="gpu7")
    assert ext.extract(np.zeros((0, 8, 8, 3), np.uint8)) == []
