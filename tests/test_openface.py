"""OpenFace nn4.small2.v1 (pose-evaluation's face AED network) against the port's own outputs.

Fixtures in tests/data/openface/ were produced by running thnkim/OpenFacePytorch @ d002218 in a scratch
directory (see its README.md). `openface_random_state` and `make_frame` below are used verbatim by that
script (it extracts their source from this file), so the weights and frames are regenerated here.
"""
import json
import math
import tarfile
import zlib
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest
import torch

from animbench.errors import UserError
from animbench.features.openface import (OpenFaceNet, embed_frames, legacy_cross_map_lrn, load_openface,
                                         preprocess_frames, resize_modern, resize_skimage014)

DATA = Path(__file__).parent / "data" / "openface"
TOL = 1e-5

ONE_THREAD = True  # reference outputs were made with one thread (conftest pins it per test)


def openface_random_state(key_shapes, seed=0):
    """Deterministic random weights in the port's state_dict layout (one generator per key).

    Conv/linear weights ~ N(0, 2/fan_in), centred per output unit (zero sum over its fan-in, so the
    input-independent mean of ReLU outputs does not swamp deep layers and embeddings differ between
    images); BN gamma ~ U(0.5, 1.5) except the two BNs that feed the LRNs (layer2, layer10), whose gamma
    is x10 so the LRN (and its channel-0 quirk) visibly changes the output; biases and running means
    ~ U(-0.01, 0.01); running variances ~ U(0.5, 1.5); num_batches_tracked = 0.
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
        elif kind in ("bias", "running_mean"):
            value = 0.02 * (torch.rand(shape, generator=gen) - 0.5)
        elif kind == "running_var":
            value = 0.5 + torch.rand(shape, generator=gen)
        else:
            raise KeyError(key)
        if key in ("layer2.weight", "layer10.weight"):
            value = value * 10.0
        state[key] = value
    return state


def make_frame(spec):
    """uint8 RGB frame from a scikit-image sample image: slicing (+ optional floor), no resampling."""
    import skimage.data

    image = getattr(skimage.data, spec["image"])()
    frame = image[slice(*spec["rows"]), slice(*spec["cols"])]
    if "floor" in spec:
        frame = np.maximum(frame, np.uint8(spec["floor"]))
    return np.ascontiguousarray(frame)


@pytest.fixture(scope="module")
def meta():
    return json.loads((DATA / "fixture.json").read_text())


@pytest.fixture(scope="module")
def ref():
    with np.load(DATA / "port_outputs.npz") as f:
        return {k: f[k] for k in f.files}


@pytest.fixture(scope="module")
def key_shapes():
    return [(k, tuple(s)) for k, s in json.loads((DATA / "official_state_dict_keys.json").read_text())]


@pytest.fixture(scope="module")
def weights_file(tmp_path_factory, key_shapes):
    """The random weights saved like the port's 2017 openface.pth: legacy format, no num_batches_tracked."""
    state = OrderedDict((k, v) for k, v in openface_random_state(key_shapes).items()
                        if not k.endswith("num_batches_tracked"))
    path = tmp_path_factory.mktemp("openface") / "openface.pth"
    torch.save(state, path, _use_new_zipfile_serialization=False)
    return path


@pytest.fixture(scope="module")
def model(weights_file):
    return load_openface(weights_file)


@pytest.fixture(scope="module")
def frames(meta):
    out = {}
    for spec in meta["frames"]:
        frame = make_frame(spec)
        assert list(frame.shape) == spec["shape"]
        assert zlib.crc32(frame.tobytes()) == spec["crc32"], f"{spec['name']}: sample image changed"
        out[spec["name"]] = frame
    return out


def test_state_dict_matches_port(key_shapes):
    ours = [(k, tuple(v.shape)) for k, v in OpenFaceNet().state_dict().items()]
    assert ours == key_shapes


def test_lrn_matches_port_on_stress_inputs(meta, ref):
    for i, case in enumerate(meta["lrn_cases"]):
        x = torch.from_numpy(ref[f"lrn_in_{i}"])
        y = legacy_cross_map_lrn(x, case["size"], case["alpha"], case["beta"], case["k"]).numpy()
        expected = ref[f"lrn_out_{i}"]
        assert np.isfinite(expected).all()
        assert np.abs(y - expected).max() <= TOL, case


def test_lrn_quirk_is_channel_zero_in_every_later_window():
    x = torch.randn(2, 11, 5, 3, dtype=torch.float64) * 10
    correct = torch.nn.LocalResponseNorm(5, 1e-4, 0.75, 1.0)
    ours = legacy_cross_map_lrn(x, 5, 1e-4, 0.75, 1.0)
    assert torch.allclose(ours[:, :3], correct(x)[:, :3], rtol=0, atol=1e-12)  # channels < prePad: correct
    assert not torch.allclose(ours[:, 3:], correct(x)[:, 3:], rtol=1e-6)
    x0 = x.clone()
    x0[:, 0] = 0  # without channel 0 the quirk vanishes
    assert torch.allclose(legacy_cross_map_lrn(x0, 5, 1e-4, 0.75, 1.0), correct(x0), rtol=0, atol=1e-12)


@pytest.mark.parametrize("mode", ["skimage-0.14", "modern"])
def test_embeddings_match_port(model, frames, meta, ref, mode):
    expected = ref["emb_skimage014" if mode == "skimage-0.14" else "emb_modern"]
    names = [s["name"] for s in meta["frames"]]
    by_shape = {}
    for i, name in enumerate(names):
        by_shape.setdefault(frames[name].shape, []).append(i)
    for idx in by_shape.values():  # same-size frames in one batch, batch_size 2 to exercise chunking
        emb = embed_frames(model, np.stack([frames[names[i]] for i in idx]), resize=mode, batch_size=2)
        assert emb.shape == (len(idx), 128) and emb.dtype == np.float32
        assert np.abs(emb - expected[idx]).max() <= TOL, [names[i] for i in idx]
    # a real difference between the two resize modes (modern anti-aliases), as the notes warn
    assert np.abs(ref["emb_skimage014"] - ref["emb_modern"]).max() > 1e-3


def test_128_input_branch_matches_port(model, ref):
    x = torch.from_numpy(ref["input_128"])
    with torch.no_grad():
        emb, feat = model.features(x)
    assert np.abs(emb.numpy() - ref["emb_128"]).max() <= TOL


def test_resize_skimage014_matches_014_transliteration(frames, ref, meta):
    for name in meta["resize014_stored"]:
        ours = resize_skimage014(frames[name][None, ..., ::-1])[0]
        assert np.abs(ours - ref[f"resize014_{name}"]).max() <= 1e-12, name


def test_resizes_match_installed_skimage(frames):
    from skimage.transform import resize

    for name, frame in frames.items():
        bgr = frame[..., ::-1]
        explicit014 = resize(bgr, (96, 96), order=1, mode="constant", cval=0, clip=True, preserve_range=False,
                             anti_aliasing=False)
        assert np.abs(resize_skimage014(bgr[None])[0] - explicit014).max() <= 1e-12, name
        assert np.abs(resize_modern(bgr[None])[0] - resize(bgr, (96, 96))).max() <= 1e-12, name
    two = np.stack([frames["astronaut_256"], frames["coffee_256"]])[..., ::-1]
    for fn in (resize_skimage014, resize_modern):
        batched = fn(two)
        assert np.array_equal(batched[1], fn(two[1:])[0])  # batch members do not interact (clip per image)


def test_preprocess_layout(frames):
    frame = frames["astronaut_96"]
    x = preprocess_frames(frame[None])  # 96x96: no resampling, so exactly BGR / 255 in CHW
    assert x.dtype == torch.float32 and x.shape == (1, 3, 96, 96)
    expected = np.multiply(frame[..., ::-1], 1.0 / 255).transpose(2, 0, 1).astype(np.float32)
    assert np.array_equal(x[0].numpy(), expected)


def test_seeded_random_model_and_eval_mode():
    a, b, c = load_openface(seed=0), load_openface(seed=0), load_openface(seed=1)
    assert not a.training and not any(m.training for m in a.modules())
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not torch.equal(sa["layer1.weight"], sc["layer1.weight"])
    emb = embed_frames(a, np.zeros((1, 40, 30, 3), np.uint8))
    assert emb.shape == (1, 128) and np.isfinite(emb).all()
    assert embed_frames(a, np.zeros((0, 40, 30, 3), np.uint8)).shape == (0, 128)


def test_weights_loading_errors(tmp_path, key_shapes, model):
    with pytest.raises(UserError, match="no such file"):
        load_openface(tmp_path / "missing.pth")
    pickled = tmp_path / "module.pth"
    torch.save(model, pickled)  # a whole pickled module needs code to unpickle
    with pytest.raises(UserError, match="trust"):
        load_openface(pickled)
    loaded = load_openface(pickled, trust=True)
    assert torch.equal(loaded.state_dict()["layer25.weight"], model.state_dict()["layer25.weight"])
    wrong = tmp_path / "wrong.pth"
    state = openface_random_state(key_shapes)
    del state["layer25.weight"]
    torch.save(state, wrong)
    with pytest.raises(UserError, match="layer25.weight"):
        load_openface(wrong)
    old_tar = tmp_path / "tar-format.pth"  # PyTorch's pre-0.1.10 format: weights_only cannot read it
    with tarfile.open(old_tar, "w") as tar:
        for member in ("storages", "tensors", "pickle"):
            tar.addfile(tarfile.TarInfo(member))
    with pytest.raises(UserError, match="trust"):
        load_openface(old_tar)
    with pytest.raises(UserError, match="device"):
        load_openface(None, device="nonsense")


def test_bad_frames_are_user_errors(model):
    good = np.zeros((1, 32, 32, 3), np.uint8)
    for bad, match in [(good.astype(np.float32), "uint8"), (good[0], "shape"), (good[..., :1], "shape")]:
        with pytest.raises(UserError, match=match):
            embed_frames(model, bad)
    with pytest.raises(UserError, match="resize"):
        embed_frames(model, good, resize="bilinear")
    with pytest.raises(UserError, match="batch_size"):
        embed_frames(model, good, batch_size=0)
    with pytest.raises(UserError, match="96, 96"):
        model(torch.zeros(1, 3, 64, 64))
