"""Market-1501 ft_net (pose-evaluation's body AED network) against pose-evaluation's own outputs.

Fixtures in tests/data/reid/ were produced by running pose-evaluation's ``extract_body_id`` with the re-id
baseline it pins, in a scratch directory (see tests/data/reid/README.md). ``reid_random_state`` and
``make_frame`` below are used verbatim by that script (it extracts their source from this file), so the
weights and frames are regenerated here.
"""
import json
import math
import zlib
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest
import torch

DATA = Path(__file__).parent / "data" / "reid"
TOL = 1e-5

ONE_THREAD = True  # reference outputs were made with one thread (conftest pins it per test)


def reid_random_state(key_shapes, seed=0):
    """Deterministic random weights in ft_net's state_dict layout (one generator per key).

    Conv/linear weights ~ N(0, 2/fan_in), centred per output unit; BN gamma ~ U(0.5, 1.5); biases
    ~ U(-0.1, 0.1); running means ~ U(-0.2, 0.2) and running variances ~ U(0.5, 2.0) (far from the
    0 / 1 defaults, so using them or not changes the output); num_batches_tracked = 0.
    """
    state = OrderedDict()
    for key, shape in key_shapes:
        gen = torch.Generator().manual_seed(seed * 1_000_003 + zlib.crc32(key.encode("utf-8")))
        kind = key.rsplit(".", 1)[1]
        if kind == "num_batches_tracked":
            state[key] = torch.tensor(0, dtype=torch.int64)
            continue
        if kind == "weight" and len(shape) > 1:
            value = torch.randn(shape, generator=gen) * math.sqrt(2.0 / math.prod(shape[1:]))
            value = value - value.mean(dim=tuple(range(1, len(shape))), keepdim=True)
        elif kind == "weight":
            value = 0.5 + torch.rand(shape, generator=gen)
        elif kind == "bias":
            value = 0.2 * (torch.rand(shape, generator=gen) - 0.5)
        elif kind == "running_mean":
            value = 0.4 * (torch.rand(shape, generator=gen) - 0.5)
        elif kind == "running_var":
            value = 0.5 + 1.5 * torch.rand(shape, generator=gen)
        else:
            raise KeyError(key)
        state[key] = value
    return state


def make_frame(spec):
    """uint8 (H, W, 3) frame: image[rows[0]:rows[1]:rows[2], cols[0]:cols[1]:cols[2]] of skimage.data.<image>()."""
    import skimage.data
    image = getattr(skimage.data, spec["image"])()
    rows, cols = spec["rows"], spec["cols"]
    return np.ascontiguousarray(image[rows[0]:rows[1]:rows[2], cols[0]:cols[1]:cols[2]])


# ----------------------------------------------------------------------------------------------------------
# Fixtures
# ----------------------------------------------------------------------------------------------------------
from animbench.errors import UserError  # noqa: E402
from animbench.features.reid import (FEATURE_DIM, BodyIdExtractor, FtNet, load_body_id,  # noqa: E402
                                     preprocess_frames)


@pytest.fixture(scope="module")
def fixture():
    return json.loads((DATA / "fixture.json").read_text())


@pytest.fixture(scope="module")
def upstream():
    with np.load(DATA / "upstream_outputs.npz") as npz:
        return {k: npz[k] for k in npz.files}


@pytest.fixture(scope="module")
def key_shapes():
    return json.loads((DATA / "official_state_dict_keys.json").read_text())


@pytest.fixture(scope="module")
def weights_file(tmp_path_factory, key_shapes):
    """reid_model.pth as the scratch run saved it: a plain ft_net(751) state_dict."""
    path = tmp_path_factory.mktemp("reid") / "reid_model.pth"
    torch.save(reid_random_state(key_shapes, seed=0), path)
    return path


@pytest.fixture(scope="module")
def frames(fixture):
    """(clip of three 256x256 frames, one 400x600 frame), checked against the specs' crc32."""
    made = [make_frame(spec) for spec in fixture["frames"]]
    for spec, frame in zip(fixture["frames"], made):
        assert list(frame.shape) == spec["shape"] and zlib.crc32(frame.tobytes()) == spec["crc32"], spec["name"]
    return np.stack(made[:3]), made[3][None]


def _extract_all(extractor, frames):
    clip, full = frames
    return np.stack(extractor.extract(clip) + extractor.extract(full))


# ----------------------------------------------------------------------------------------------------------
# Parity with pose-evaluation's extract_body_id
# ----------------------------------------------------------------------------------------------------------
def test_state_dict_layout_is_ft_net_751(key_shapes):
    ours = [[k, list(v.shape)] for k, v in FtNet().state_dict().items()]
    assert ours == key_shapes
    keys = dict((k, s) for k, s in key_shapes)
    assert keys["model.fc.0.weight"] == [512, 2048] and keys["classifier.0.weight"] == [751, 512]


def test_transform_matches_upstream_bit_exactly(frames, upstream):
    ours = torch.cat([preprocess_frames(f) for f in frames]).numpy()
    assert ours.dtype == np.float32 and ours.shape == (4, 3, 288, 144)
    assert np.array_equal(ours, upstream["transform"]), float(np.abs(ours - upstream["transform"]).max())


@pytest.mark.parametrize("bn_mode", ["parity", "eval"])
def test_features_match_upstream(bn_mode, weights_file, frames, upstream):
    extractor = load_body_id(weights_file, bn_mode=bn_mode, batch_size=16)
    values = extractor.extract(frames[0])
    assert len(values) == 3
    assert all(isinstance(v, np.ndarray) and v.dtype == np.float32 and v.shape == (1, FEATURE_DIM) for v in values)
    ours = np.stack(values + extractor.extract(frames[1]))
    diff = np.abs(ours - upstream[f"feat_{bn_mode}"]).max()
    assert diff <= TOL, f"{bn_mode}: max abs diff {diff}"


def test_parity_mode_is_per_frame_and_batch_independent(weights_file, frames, upstream):
    """Upstream feeds one frame per forward: a frame's feature must not depend on its batch neighbours."""
    clip = frames[0]
    net = load_body_id(weights_file, bn_mode="parity").net
    before = {k: v.clone() for k, v in net.state_dict().items()}
    one = BodyIdExtractor(net, "parity", batch_size=1).extract(clip)
    mixed = BodyIdExtractor(net, "parity", batch_size=5).extract(np.concatenate([clip[::-1], clip[:2]]))
    np.testing.assert_array_equal(np.stack(one), np.stack(mixed[2::-1]))
    np.testing.assert_array_equal(np.stack(one[:2]), np.stack(mixed[3:]))
    assert np.abs(np.stack(one) - upstream["feat_parity"][:3]).max() <= TOL
    # running statistics are neither used nor updated
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())


def test_running_statistics_matter_only_in_eval_mode(weights_file, frames):
    """parity ignores the stored running statistics (train-mode BN); eval uses them."""
    small = frames[0][:2]
    parity, evaluation = load_body_id(weights_file, bn_mode="parity"), load_body_id(weights_file, bn_mode="eval")
    p0, e0 = np.stack(parity.extract(small)), np.stack(evaluation.extract(small))
    assert np.abs(p0 - e0).max() > 0.1
    for net in (parity.net, evaluation.net):
        with torch.no_grad():
            for module in net.modules():
                if isinstance(module, torch.nn.BatchNorm2d):
                    module.running_mean.add_(0.5)
                    module.running_var.mul_(2.0)
    np.testing.assert_array_equal(np.stack(parity.extract(small)), p0)
    assert np.abs(np.stack(evaluation.extract(small)) - e0).max() > 0.1


def test_tf32_is_disabled_for_cuda_convolutions_and_restored():
    from animbench.features.reid import full_fp32_convolutions
    conv = torch.backends.cudnn.conv
    before = conv.fp32_precision
    with full_fp32_convolutions("cuda"):
        assert conv.fp32_precision == "ieee"
    assert conv.fp32_precision == before
    with full_fp32_convolutions("cpu"):
        assert conv.fp32_precision == before


def test_describe(weights_file):
    import hashlib
    info = load_body_id(weights_file, bn_mode="eval", batch_size=4).describe()
    assert info["kind"] == "body-id" and info["bn_mode"] == "eval" and info["batch_size"] == 4
    assert info["weights"] == str(weights_file)
    assert info["weights_sha256"] == hashlib.sha256(weights_file.read_bytes()).hexdigest()
    assert "288x144" in info["transform"] and "/255" in info["transform"]
    assert "2048" in info["network"]
    rand = load_body_id(None, seed=3).describe()
    assert rand["weights"] is None and rand["random_seed"] == 3 and rand["bn_mode"] == "parity"


def test_random_weights_are_seeded(frames):
    small = frames[0][:1, ::4, ::4]
    a = load_body_id(None, seed=0).extract(small)[0]
    b = load_body_id(None, seed=0).extract(small)[0]
    c = load_body_id(None, seed=1).extract(small)[0]
    assert a.shape == (1, FEATURE_DIM) and np.array_equal(a, b) and not np.array_equal(a, c)


# ----------------------------------------------------------------------------------------------------------
# User mistakes: one-line UserError
# ----------------------------------------------------------------------------------------------------------
def _one_line_error(func, *args, **kwargs):
    with pytest.raises(UserError) as info:
        func(*args, **kwargs)
    assert "\n" not in str(info.value)
    return str(info.value)


def test_bad_frames_and_options(weights_file, tmp_path):
    extractor = load_body_id(None)
    assert "uint8" in _one_line_error(extractor.extract, np.zeros((1, 8, 8, 3), np.float32))
    assert "(N, H, W, 3)" in _one_line_error(extractor.extract, np.zeros((8, 8, 3), np.uint8))
    assert "(N, H, W, 3)" in _one_line_error(extractor.extract, np.zeros((1, 8, 8, 4), np.uint8))
    assert extractor.extract(np.zeros((0, 8, 8, 3), np.uint8)) == []
    assert "bn_mode" in _one_line_error(load_body_id, None, bn_mode="train")
    assert "batch_size" in _one_line_error(load_body_id, None, batch_size=0)
    assert "no such file" in _one_line_error(load_body_id, tmp_path / "missing.pth")
    assert "device" in _one_line_error(load_body_id, None, device="gpu0")
    if not torch.cuda.is_available():
        assert "CUDA" in _one_line_error(load_body_id, None, device="cuda")


def test_bad_checkpoints(tmp_path, key_shapes):
    state = reid_random_state(key_shapes[:6])  # conv1 + bn1 only
    torch.save(state, tmp_path / "partial.pth")
    assert "missing" in _one_line_error(load_body_id, tmp_path / "partial.pth")
    later = OrderedDict((k, v) for k, v in state.items())
    later["classifier.add_block.0.weight"] = torch.zeros(512, 2048)
    torch.save(later, tmp_path / "classblock.pth")
    assert "ClassBlock" in _one_line_error(load_body_id, tmp_path / "classblock.pth")
    torch.save([1, 2, 3], tmp_path / "list.pth")
    assert "not a state_dict" in _one_line_error(load_body_id, tmp_path / "list.pth")
    (tmp_path / "page.pth").write_text("<html>quota exceeded</html>")
    assert "HTML" in _one_line_error(load_body_id, tmp_path / "page.pth")
