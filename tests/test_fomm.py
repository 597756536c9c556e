"""FOMM modules: official state_dict layout, parity with the authors' code, checkpoints, keypoint maths."""
import json
from pathlib import Path

import pytest
import torch

from animbench.errors import UserError
from animbench.models import load_model
from animbench.models.fomm import FOMMModel, build_networks, load_config, load_fomm, normalize_kp
from animbench.models.fomm.blocks import grid_sample, kp2gaussian, make_coordinate_grid
from animbench.models.fomm.keypoint_detector import KPDetector

DATA = Path(__file__).parent / "data" / "fomm"
CONFIGS = ["vox-256", "vox-adv-256", "taichi-256", "taichi-adv-256", "bair-256"]


@pytest.mark.parametrize("name", CONFIGS)
def test_state_dict_keys_and_shapes_match_official(name):
    # the listing was generated from the official modules built with the official YAMLs (see README.md)
    official = json.loads((DATA / "official_state_dict_keys.json").read_text())["configs"][name]
    ours = build_networks(load_config(name), discriminator=True)
    for module, net in zip(("kp_detector", "generator", "discriminator"), ours):
        mine = {k: list(v.shape) for k, v in net.state_dict().items()}
        assert list(mine) == list(official[module])  # same names, same (declaration) order
        assert mine == official[module]


def test_parameter_counts_match_reference_notes():
    kp, gen, disc = build_networks(load_config("vox-256"), discriminator=True)
    count = lambda m: sum(p.numel() for p in m.parameters())
    assert count(gen) == 45_575_391 and count(kp) == 14_215_368 and count(disc) == 2_758_849


FIXTURE = torch.load(DATA / "tiny_parity.pt", weights_only=True)


@pytest.mark.parametrize("fused", [False, True])
@pytest.mark.parametrize("align", [False, True])
def test_outputs_match_official_code(align, fused):
    model = FOMMModel(FIXTURE["config"], align_corners=align, fused_decoder=fused)
    model.kp_detector.load_state_dict(FIXTURE["state_dict"]["kp_detector"])
    model.generator.load_state_dict(FIXTURE["state_dict"]["generator"])
    model.eval()
    frames = FIXTURE["frames"]
    ref = FIXTURE[f"reference_align_{align}"]
    with torch.no_grad():
        out = model(frames[:1], frames)
    got = {"prediction": out["prediction"], "occlusion_map": out["occlusion_map"], "mask": out["mask"],
           "deformed": out["deformed"], "sparse_deformed": out["sparse_deformed"],
           "kp_value": out["kp_driving"]["value"], "kp_jacobian": out["kp_driving"]["jacobian"]}
    for key, value in got.items():
        # the parity tolerance of both decoders (exact: 0 with one thread; convolutions round differently with
        # more threads, and grid_sample amplifies it in `deformed`); fused vs exact: the test below
        assert (value - ref[key]).abs().max().item() <= 1e-5, key
    assert model.describe()["decoder"] == ("fused (sub-pixel, BN folded)" if fused else "exact")
    # the two conventions really differ: the fixture is not testing a no-op flag
    other = FIXTURE[f"reference_align_{not align}"]
    assert (other["deformed"] - ref["deformed"]).abs().max() > 1e-3


def test_batched_reconstruction_equals_frame_by_frame():
    model = load_fomm(config=FIXTURE["config"], seed=3)
    frames = FIXTURE["frames"]
    with torch.no_grad():
        state = model.prepare_source(frames[:1])
        batched = model.animate(state, frames)
        single = [model.animate(state, frames[i:i + 1]) for i in range(len(frames))]
    for key in ("prediction", "occlusion_map", "mask", "deformed"):
        assert (batched[key] - torch.cat([s[key] for s in single])).abs().max() <= 1e-6


def test_output_contract_shapes_and_ranges():
    model = load_fomm(config=FIXTURE["config"], seed=0)
    with torch.no_grad():
        out = model(FIXTURE["frames"][:1], FIXTURE["frames"][:3])
    assert out["prediction"].shape == (3, 3, 64, 64) and 0 <= out["prediction"].min() <= out["prediction"].max() <= 1
    assert out["occlusion_map"].shape == (3, 1, 32, 32) and out["mask"].shape == (3, 6, 32, 32)
    torch.testing.assert_close(out["mask"].sum(1), torch.ones(3, 32, 32))  # softmax over K+1 motions
    assert out["kp_source"]["value"].shape == (3, 5, 2) and out["kp_driving"]["jacobian"].shape == (3, 5, 2, 2)
    assert model.native_size == (64, 64) and model.has_motion_maps


def test_identity_warp_exact_only_with_align_corners():
    image = torch.rand(1, 3, 32, 40, generator=torch.Generator().manual_seed(0))
    grid = make_coordinate_grid((32, 40)).unsqueeze(0)
    # exact up to float32 rounding of the grid coordinates (random noise is the worst case)
    assert (grid_sample(image, grid, align_corners=True) - image).abs().max() < 1e-5
    assert (grid_sample(image, grid, align_corners=False) - image).abs().max() > 0.05


def test_coordinate_grid_and_gaussian_by_hand():
    grid = make_coordinate_grid((3, 5))
    assert grid[0, 0].tolist() == [-1, -1] and grid[2, 4].tolist() == [1, 1] and grid[1, 2].tolist() == [0, 0]
    assert grid[0, 1].tolist() == [-0.5, -1]  # last dim is (x, y)
    heat = kp2gaussian({"value": torch.tensor([[[0.5, -1.0]]])}, (3, 5), 0.01)
    assert heat[0, 0, 0, 3].item() == pytest.approx(1.0)          # the keypoint's own pixel
    assert heat[0, 0, 1, 3].item() == pytest.approx(torch.exp(torch.tensor(-0.5 / 0.01)).item())


def test_keypoints_and_jacobians_from_heatmaps_by_hand():
    heat = torch.zeros(1, 2, 5, 5)
    heat[0, 0, 1, 3] = 1.0                          # a delta at (x=0.5, y=-0.5)
    heat[0, 1, 0, 0] = heat[0, 1, 4, 4] = 0.5       # two halves: mean at the centre
    value = KPDetector.heatmap_to_keypoints(heat)
    assert value[0, 0].tolist() == [0.5, -0.5] and value[0, 1].tolist() == [0.0, 0.0]
    # jacobian = heatmap-weighted sum of the 4-channel jacobian map, per keypoint
    det = KPDetector(block_expansion=4, num_kp=1, num_channels=3, max_features=8, num_blocks=2, temperature=0.1,
                     estimate_jacobian=True)
    with torch.no_grad():
        det.kp.weight.zero_(); det.kp.bias.zero_()   # uniform heatmap
        det.jacobian.weight.zero_(); det.jacobian.bias.copy_(torch.tensor([2.0, 3.0, 5.0, 7.0]))
    out = det.eval()(torch.rand(1, 3, 16, 16))
    torch.testing.assert_close(out["jacobian"][0, 0], torch.tensor([[2.0, 3.0], [5.0, 7.0]]))
    torch.testing.assert_close(out["value"][0, 0], torch.zeros(2), atol=1e-6, rtol=0)


def test_relative_animation_identity():
    model = load_fomm(config=FIXTURE["config"], seed=1)
    frames = FIXTURE["frames"]
    with torch.no_grad():
        kp_s, kp_d = model.kp_detector(frames[:1]), model.kp_detector(frames[2:3])
        same = normalize_kp(kp_s, kp_d, kp_d, use_relative_movement=True, use_relative_jacobian=True)
        torch.testing.assert_close(same["value"], kp_s["value"])
        torch.testing.assert_close(same["jacobian"], kp_s["jacobian"], atol=1e-5, rtol=1e-5)
        moved = normalize_kp(kp_s, {"value": kp_d["value"] + 0.1, "jacobian": kp_d["jacobian"]}, kp_d,
                             adapt_movement_scale=True, use_relative_movement=True)
        area = lambda kp: __import__("scipy.spatial", fromlist=["ConvexHull"]).ConvexHull(kp["value"][0].numpy()).volume
        scale = (area(kp_s) / area(kp_d)) ** 0.5
        torch.testing.assert_close(moved["value"], kp_s["value"] + 0.1 * scale)
        out = model.animate_relative(model.prepare_source(frames[:1]), frames[1:3], kp_d)
    assert out["prediction"].shape == (2, 3, 64, 64)


# -- checkpoints --------------------------------------------------------------------------------------------
def _checkpoint(model, **extra):
    payload = {"generator": model.generator.state_dict(), "kp_detector": model.kp_detector.state_dict()}
    payload.update(extra)
    return payload


def test_legacy_and_zip_checkpoints_load(tmp_path):
    source = load_fomm(config=FIXTURE["config"], seed=5)
    legacy = tmp_path / "legacy.pth.tar"
    torch.save(_checkpoint(source, epoch=3), legacy, _use_new_zipfile_serialization=False)
    prefixed = tmp_path / "prefixed.pth.tar"
    torch.save({"generator": {"module." + k: v for k, v in source.generator.state_dict().items()},
                "kp_detector": {k: v for k, v in source.kp_detector.state_dict().items()
                                if not k.endswith("num_batches_tracked")}}, prefixed)
    frames = FIXTURE["frames"][:2]
    with torch.no_grad():
        expected = source(frames[:1], frames)["prediction"]
        for path in (legacy, prefixed):
            loaded = load_model("fomm", checkpoint=path, config=FIXTURE["config"])
            assert torch.equal(loaded(frames[:1], frames)["prediction"], expected)


def test_checkpoint_errors_are_clear(tmp_path):
    with pytest.raises(UserError, match="no such file"):
        load_fomm(checkpoint=tmp_path / "missing.pth.tar")
    junk = tmp_path / "junk.pth.tar"
    junk.write_bytes(b"not a checkpoint at all")
    with pytest.raises(UserError, match="not a readable torch checkpoint"):
        load_fomm(checkpoint=junk)
    import tarfile

    tarred = tmp_path / "tarred.pth.tar"
    with tarfile.open(tarred, "w") as tf:
        tf.add(junk, arcname="data.pkl")
    with pytest.raises(UserError, match="do not untar"):
        load_fomm(checkpoint=tarred)
    small = load_fomm(config=FIXTURE["config"])
    wrong = tmp_path / "wrong.pth.tar"
    torch.save(_checkpoint(small), wrong)
    with pytest.raises(UserError, match=r"generator does not match the FOMM model .*mis-shaped.*--config"):
        load_fomm(checkpoint=wrong, config="vox-256")
    no_gen = tmp_path / "nogen.pth.tar"
    torch.save({"kp_detector": small.kp_detector.state_dict()}, no_gen)
    with pytest.raises(UserError, match="no 'generator'/'kp_detector'"):
        load_fomm(checkpoint=no_gen, config=FIXTURE["config"])


def test_untrusted_pickle_needs_flag(tmp_path):
    import argparse

    small = load_fomm(config=FIXTURE["config"])
    payload = _checkpoint(small)
    payload["extra"] = argparse.Namespace(lr=2e-4)  # an object weights_only loading refuses
    path = tmp_path / "pickled.pth.tar"
    torch.save(payload, path)
    with pytest.raises(UserError, match="--trust-checkpoint"):
        load_fomm(checkpoint=path, config=FIXTURE["config"])
    assert load_fomm(checkpoint=path, config=FIXTURE["config"], trust_checkpoint=True) is not None


@pytest.mark.parametrize("name", ["vox-256", "vox-adv-256"])
def test_discriminator_feature_map_sizes(name):
    # fomm.md §6: at 256² the four blocks give 64@126², 128@61², 256@29², 512@26², prediction map 1@26²
    _, _, disc = build_networks(load_config(name), discriminator=True)
    image = torch.rand(1, 3, 256, 256)
    kp = {"value": torch.zeros(1, 10, 2)}
    with torch.no_grad():
        out = disc({"prediction_1": image}, kp)
    shapes = [tuple(f.shape[1:]) for f in out["feature_maps_1"]]
    assert shapes == [(64, 126, 126), (128, 61, 61), (256, 29, 29), (512, 26, 26)]
    assert tuple(out["prediction_map_1"].shape) == (1, 1, 26, 26)


def test_fused_decoder_is_the_cpu_default_and_follows_weight_changes():
    model = load_fomm(config=FIXTURE["config"], seed=3)
    frames = FIXTURE["frames"]
    assert model.describe()["decoder"].startswith("fused")
    with torch.no_grad():
        state = model.prepare_source(frames[:1])
        fused = model.animate(state, frames)["prediction"]
        model.fused_decoder = False
        exact = model.animate(state, frames)["prediction"]
        assert 0 < (fused - exact).abs().max() <= 1e-6
        model.fused_decoder = True
        for p in model.generator.up_blocks.parameters():  # new weights: the fused copy is rebuilt
            p.mul_(0.5)
        again = model.animate(state, frames)["prediction"]
        model.fused_decoder = False
        assert (again - model.animate(state, frames)["prediction"]).abs().max() <= 1e-6
        assert (again - fused).abs().max() > 1e-3
