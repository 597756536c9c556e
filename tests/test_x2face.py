"""X2Face: official state_dict layout, parity with the authors' code (torch-0.4.1 semantics), checkpoints."""
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from animbench.data.convert import to_float_tensor
from animbench.errors import UserError
from animbench.models.x2face import X2FaceModel, identity_grid, load_x2face

DATA = Path(__file__).parent / "data" / "x2face"
WEIGHT_SEED = 20181008


def official_like_state_dict(keys):
    """Deterministic weights built from the key listing {name: shape} alone (the fixture script loaded this
    very function from this file into the authors' model; see data/x2face/README.md).

    Key number i in sorted order draws from its own `torch.Generator().manual_seed(WEIGHT_SEED + i)`:
    convolutions He-scaled randn (the outermost output convs ×0.25, so the warps stay moderate), BatchNorm
    gamma 1 + 0.1·randn, beta 0.1·randn, running_mean 0.1·randn, running_var 0.5 + rand.
    """
    index = {name: i for i, name in enumerate(sorted(keys))}
    state = {}
    for name, shape in keys.items():
        g = torch.Generator().manual_seed(WEIGHT_SEED + index[name])
        if name.endswith("num_batches_tracked"):
            value = torch.tensor(0, dtype=torch.long)
        elif name.endswith("running_var"):
            value = 0.5 + torch.rand(shape, generator=g)
        elif name.endswith("running_mean") or name.endswith(".bias"):
            value = 0.1 * torch.randn(shape, generator=g)
        elif len(shape) == 1:  # BatchNorm weight
            value = 1.0 + 0.1 * torch.randn(shape, generator=g)
        else:
            gain = 0.25 if name.endswith("netG.model.up.2.weight") else math.sqrt(2.0)
            value = torch.randn(shape, generator=g) * (gain / math.sqrt(shape[1] * shape[2] * shape[3]))
        state[name] = value
    return state


OFFICIAL_KEYS = json.loads((DATA / "official_state_dict_keys.json").read_text())


@pytest.fixture(scope="module")
def ref():
    with np.load(DATA / "parity.npz", allow_pickle=False) as f:
        return {k: torch.from_numpy(f[k]) for k in f.files}


@pytest.fixture(scope="module")
def frames(ref):
    # the demo's ToTensor: contiguous CHW, byte / 255
    return ref["frames_uint8"].permute(0, 3, 1, 2).contiguous().float().div(255)


@pytest.fixture(scope="module")
def weights():
    return official_like_state_dict(OFFICIAL_KEYS)


@pytest.fixture(scope="module")
def model(weights):
    net = X2FaceModel()
    net.load_state_dict(weights, strict=True)
    return net.eval()


def _sub(x, ref, grid=False):
    """The stored rows/columns of a full-size output (the fixture keeps every second one plus the last)."""
    idx = ref["rows_cols"]
    return x[:, idx][:, :, idx] if grid else x[:, :, idx][:, :, :, idx]


def _maxdiff(a, b):
    return (a - b).abs().max().item()


def test_state_dict_keys_and_shapes_match_official():
    # listing written from the authors' UnwrappedFaceWeightedAverage(2, 3, inner_nc=128) (see README.md)
    mine = {k: list(v.shape) for k, v in X2FaceModel().state_dict().items()}
    assert list(mine) == list(OFFICIAL_KEYS)  # same names in the same (registration) order
    assert mine == OFFICIAL_KEYS
    assert len(mine) == 162 and sum(1 for k in mine if not k.endswith("num_batches_tracked")) == 136
    assert sum(p.numel() for p in X2FaceModel().parameters()) == 64_771_840


def test_outputs_match_official_code_batched_vs_per_frame_reference(model, frames, ref):
    # one call with 3 driving frames vs the authors' model(driving_t, source) run frame by frame
    with torch.no_grad():
        out = model(frames[:1], frames[1:4])
    assert _maxdiff(_sub(out["prediction"], ref), ref["prediction"].clamp(0, 1)) <= 1e-5
    assert _maxdiff(_sub(out["embedded"], ref), ref["embedded"].expand(3, -1, -1, -1)) <= 1e-5
    assert _maxdiff(_sub(out["source_grid"], ref, grid=True), ref["source_grid"]) <= 1e-5
    assert _maxdiff(_sub(out["driving_grid"], ref, grid=True), ref["driving_grid"]) <= 1e-5
    assert out["prediction"].shape == (3, 3, 256, 256) and out["embedded"].shape == (3, 3, 256, 256)
    assert out["source_grid"].shape == (1, 256, 256, 2) and out["driving_grid"].shape == (3, 256, 256, 2)
    assert 0 <= out["prediction"].min() and out["prediction"].max() <= 1


def test_layout_of_input_does_not_change_numbers(model, frames, ref):
    # the reconstruction loop's to_float_tensor gives channels-last strides; the model runs its networks on
    # contiguous frames, so the numbers equal the reference all the same
    strided = ref["frames_uint8"].permute(0, 3, 1, 2).float().div(255)
    assert not strided.is_contiguous() and torch.equal(strided, frames)
    with torch.no_grad():
        state = model.prepare_source(strided[:1])
        out = model.animate(state, strided[1:2])
        # to_float_tensor computes x·float32(1/255) (skimage's convention), the demo's ToTensor x/255: the
        # frames differ in the last bit for some values, which moves the prediction by ~2e-5 (≪ 1/255)
        protocol = to_float_tensor(ref["frames_uint8"].numpy())
        moved = model.animate(model.prepare_source(protocol[:1]), protocol[1:2])["prediction"]
    assert _maxdiff(_sub(out["prediction"], ref), ref["prediction"][:1].clamp(0, 1)) <= 1e-5
    assert _maxdiff(_sub(out["driving_grid"], ref, grid=True), ref["driving_grid"][:1]) <= 1e-5
    assert _maxdiff(moved, out["prediction"]) <= 1e-4


def test_whole_batch_networks_round_differently_but_stay_close(weights, frames, ref):
    net = X2FaceModel(chunk=None)
    net.load_state_dict(weights)
    with torch.no_grad():
        out = net.eval()(frames[:1], frames[1:4])
    assert _maxdiff(_sub(out["driving_grid"], ref, grid=True), ref["driving_grid"]) <= 1e-6
    assert _maxdiff(_sub(out["prediction"], ref), ref["prediction"].clamp(0, 1)) <= 1e-4
    assert net.describe()["chunk"] is None and X2FaceModel().describe()["chunk"] == 1


def test_several_source_frames_average_by_confidence(model, frames, ref):
    # the authors' model(driving, source_0, source_15): embedded faces averaged with weights exp(c) + 0.1
    with torch.no_grad():
        state = model.prepare_source(frames[[0, 4]])
        out = model.animate(state, frames[1:2])
    assert _maxdiff(_sub(out["prediction"], ref), ref["multi_prediction"].clamp(0, 1)) <= 1e-5
    assert _maxdiff(_sub(out["embedded"], ref), ref["multi_embedded"]) <= 1e-5
    assert state.source_grid.shape == (2, 256, 256, 2) and state.confidence.shape == (2, 1, 256, 256)
    assert state.confidence.min() > 0.1
    # the average really mixes the two embedded faces (the single-source face is not the answer)
    assert _maxdiff(ref["multi_embedded"], ref["embedded"]) > 1e-2


def test_align_corners_false_is_the_unmodified_code_on_modern_torch(weights, frames, ref):
    net = X2FaceModel(align_corners=False)
    net.load_state_dict(weights)
    with torch.no_grad():
        out = net.eval()(frames[:1], frames[1:2])
    assert _maxdiff(_sub(out["prediction"], ref), ref["prediction_align_false"].clamp(0, 1)) <= 1e-5
    assert _maxdiff(ref["prediction_align_false"], ref["prediction"][:1]) > 1e-2  # the flag is not a no-op
    assert net.describe()["align_corners"] is False and net.describe()["upsample_align_corners"] is True


def test_identity_grid_by_hand():
    grid = identity_grid(3, 5)
    assert grid.shape == (1, 3, 5, 2)
    assert grid[0, 0, 0].tolist() == [-1, -1] and grid[0, 2, 4].tolist() == [1, 1] and grid[0, 1, 2].tolist() == [0, 0]
    assert grid[0, 0, 1].tolist() == [-0.5, -1]  # last dim is (x, y)
    image = torch.rand(1, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    same = torch.nn.functional.grid_sample(image, identity_grid(8, 8), align_corners=True)
    assert _maxdiff(same, image) < 1e-6


def test_contract_and_input_checks(model, frames):
    assert model.native_size == (256, 256) and not model.has_motion_maps
    assert model.describe() == {"native_size": [256, 256], "inner_nc": 128, "align_corners": True,
                                "upsample_align_corners": True, "prediction_clamped": True,
                                "source_frames": "confidence-weighted average", "chunk": 1}
    with torch.no_grad():  # as the demo: the prediction is clamped to [0,1], the embedded face is not
        out = model(frames[:1] * 3.0, frames[1:2])
    assert out["embedded"].max() > 1.5 and out["prediction"].max() == 1.0 and out["prediction"].min() >= 0
    with pytest.raises(ValueError, match="multiples of 256"):
        model.prepare_source(torch.rand(1, 3, 128, 128))
    with pytest.raises(ValueError, match=r"\(N,3,H,W\)"):
        model.prepare_source(torch.rand(3, 256, 256))
    with pytest.raises(ValueError, match="only the deterministic"):
        X2FaceModel(output_num_channels=3)


# -- checkpoints ----------------------------------------------------------------------------------------------
def _assert_holds(net, weights):
    own = net.state_dict()
    assert all(torch.equal(own[k], v) for k, v in weights.items() if not k.endswith("num_batches_tracked"))
    assert not net.training and not any(m.training for m in net.modules())  # BatchNorm uses running stats


def test_release_format_bare_and_prefixed_state_dicts_load(tmp_path, weights):
    release = tmp_path / "x2face_model_forpython3.pth"
    torch.save({"state_dict": weights, "optimizer": {"state": {}, "param_groups": [{"lr": 1e-3}]}}, release)
    _assert_holds(load_x2face(release), weights)
    release.unlink()
    bare = tmp_path / "bare.pth"
    torch.save(weights, bare)
    _assert_holds(load_x2face(bare), weights)
    bare.unlink()
    # DataParallel prefix and no num_batches_tracked (the torch-0.2 era release has none)
    prefixed = tmp_path / "prefixed.pth"
    torch.save({"state_dict": {"module." + k: v for k, v in weights.items() if not k.endswith("num_batches_tracked")}},
               prefixed)
    _assert_holds(load_x2face(prefixed, device="cpu"), weights)


def test_legacy_non_zip_checkpoint_loads(tmp_path, weights):
    legacy = tmp_path / "legacy.pth"
    torch.save({"state_dict": weights}, legacy, _use_new_zipfile_serialization=False)
    assert not __import__("zipfile").is_zipfile(legacy)
    _assert_holds(load_x2face(legacy), weights)


def _python2_pickle_module():
    """A pickle module writing every str/bytes as a Python-2 `str` (SHORT_BINSTRING), protocol 2."""
    import pickle
    import types

    class Py2Pickler(pickle._Pickler):
        dispatch = dict(pickle._Pickler.dispatch)

        def save_py2_str(self, obj):
            data = obj.encode("latin1") if isinstance(obj, str) else obj
            assert len(data) < 256
            self.write(pickle.SHORT_BINSTRING + bytes([len(data)]) + data)
            self.memoize(obj)

        dispatch[str] = save_py2_str
        dispatch[bytes] = save_py2_str

    module = types.ModuleType("py2_pickle")
    module.Pickler = Py2Pickler
    module.dump = lambda obj, f, protocol: Py2Pickler(f, protocol).dump(obj)
    return module


def test_python2_pickle_needs_latin1_and_loads(tmp_path, weights):
    path = tmp_path / "x2face_model.pth"
    sd = {k: v for k, v in weights.items() if not k.endswith("num_batches_tracked")}
    # like the Python-2.7 release: byte strings that are not ASCII somewhere in the pickle
    torch.save({"state_dict": sd, "note": b"\xcd\xe9t\xe9"}, path, pickle_module=_python2_pickle_module(),
               pickle_protocol=2, _use_new_zipfile_serialization=False)
    with pytest.raises(UnicodeDecodeError):
        torch.load(path, weights_only=True)  # what Python 3 users of the release hit (issues #8, #22)
    _assert_holds(load_x2face(path), weights)


def test_checkpoint_errors_are_clear(tmp_path, weights):
    fomm = tmp_path / "vox-cpk.pth.tar"
    torch.save({"generator": {"w": torch.zeros(1)}, "kp_detector": {"w": torch.zeros(1)}, "epoch": 1}, fomm)
    with pytest.raises(UserError, match=r"FOMM checkpoint.*--model fomm"):
        load_x2face(fomm)
    good = tmp_path / "good.pth"
    torch.save({"state_dict": weights}, good)
    truncated = tmp_path / "truncated.pth"
    truncated.write_bytes(good.read_bytes()[: 5_000_000])
    good.unlink()
    with pytest.raises(UserError, match="truncated or corrupt"):
        load_x2face(truncated)
    wide = dict(weights)
    inner = "pix2pixSampler.netG.model" + ".submodule" * 7 + ".down.1.weight"
    wide[inner] = torch.zeros(512, 512, 4, 4)
    wrong = tmp_path / "wrong.pth"
    torch.save({"state_dict": wide}, wrong)
    with pytest.raises(UserError, match=r"does not match the X2Face model .*mis-shaped.*inner_nc=128"):
        load_x2face(wrong)
    other = tmp_path / "other.pth"
    torch.save({"model": {"w": torch.zeros(1)}, "epoch": 3}, other)
    with pytest.raises(UserError, match="no 'state_dict' entry"):
        load_x2face(other)
    with pytest.raises(UserError, match="no such file"):
        load_x2face(tmp_path / "missing.pth")
    with pytest.raises(UserError, match="takes no --config"):
        load_x2face(config="vox-256")
    with pytest.raises(UserError, match="unsupported model options"):
        load_x2face(num_kp=10)


def test_random_weights_are_seeded():
    a, b, c = load_x2face(seed=3), load_x2face(seed=3), load_x2face(seed=4)
    key = "pix2pixSampler.netG.model.up.2.weight"
    assert torch.equal(a.state_dict()[key], b.state_dict()[key])
    assert not torch.equal(a.state_dict()[key], c.state_dict()[key])
    assert not a.training and a.align_corners and not load_x2face(align_corners=False).align_corners
