"""Monkey-Net: official state_dict layout, configs, parity with the authors' code, checkpoint loading."""
import json
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from animbench.errors import UserError
from animbench.models.monkeynet import BUNDLED_CONFIGS, MonkeyNetModel, build_networks, load_config, load_monkeynet
from animbench.models.monkeynet.blocks import smallest_singular_value

DATA = Path(__file__).parent / "data" / "monkeynet"
OFFICIAL = json.loads((DATA / "official_state_dict_keys.json").read_text())
TINY = torch.load(DATA / "tiny_parity.pt", weights_only=True)
FULL = torch.load(DATA / "full_parity.pt", weights_only=True)
RELEASED = ["taichi", "nemo", "moving-gif", "vox"]
TOL = 1e-5


@pytest.fixture(autouse=True)
def one_thread():
    """The references were computed on one thread; with more, oneDNN splits reductions differently and the
    authors' own code moves by up to 2e-5 (vox `deformed`) against its one-thread output."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


_SCALE = {"predictor.decoder.conv.weight": 3.0,                       # sharper keypoint heatmaps
          "dense_motion_module.hourglass.decoder.conv.weight": 0.3}   # moderate masks/correction


def synthetic_state(listing, seed=0):
    """Deterministic non-trivial weights for a {key: shape} listing (independent of any module code):
    conv weights N(0, 1.2²/fan_in), conv biases N(0, 0.05²), BN affine U(0.7,1.3)/N(0, 0.1²),
    running_mean N(0, 0.1²), running_var U(0.5, 1.5); one numpy PCG64 stream per (seed, crc32(key))."""
    state = {}
    for key, shape in listing.items():
        rng = np.random.default_rng([seed, zlib.crc32(key.encode())])
        parts = key.split(".")
        leaf, owner = parts[-1], parts[-2]
        if leaf == "num_batches_tracked":
            state[key] = torch.tensor(1000, dtype=torch.int64)
            continue
        if leaf == "running_mean":
            value = rng.normal(0.0, 0.1, shape)
        elif leaf == "running_var":
            value = rng.uniform(0.5, 1.5, shape)
        elif owner.startswith("norm"):
            value = rng.uniform(0.7, 1.3, shape) if leaf == "weight" else rng.normal(0.0, 0.1, shape)
        elif leaf == "weight":
            fan_in = int(np.prod(shape[1:]))
            value = rng.normal(0.0, 1.2 / np.sqrt(fan_in), shape) * _SCALE.get(key, 1.0)
        else:
            value = rng.normal(0.0, 0.05, shape)
        state[key] = torch.from_numpy(np.asarray(value, dtype=np.float32))
    return state


def _frames(u8):
    return u8.float() / 255


def _outputs(model, frames):
    with torch.no_grad():
        out = model(frames[:1], frames)
    return {"prediction": out["prediction"], "deformed": out["deformed"], "kp_mean": out["kp_driving"]["mean"],
            "kp_var": out["kp_driving"]["var"], "kp_source_mean": out["kp_source"]["mean"][0],
            "kp_source_var": out["kp_source"]["var"][0]}


def _tiny_model(name, **kwargs):
    entry = TINY[name]
    model = MonkeyNetModel(entry["config"], config_name=name, **kwargs)
    model.kp_detector.load_state_dict(entry["state_dict"]["kp_detector"])
    model.generator.load_state_dict(entry["state_dict"]["generator"])
    return model.eval()


def _max_diff(a, b):
    return (a - b).abs().max().item()


# -- layout and configs -------------------------------------------------------------------------------------
def test_bundled_configs_are_the_released_ones():
    assert sorted(BUNDLED_CONFIGS) == sorted(RELEASED)


@pytest.mark.parametrize("name", RELEASED)
def test_state_dict_keys_and_shapes_match_official(name):
    # listing generated from the authors' modules built with the authors' YAML files (see data/monkeynet/README.md)
    official = OFFICIAL["configs"][name]
    with torch.device("meta"):
        kp_detector, generator = build_networks(load_config(name))
    for what, net in (("kp_detector", kp_detector), ("generator", generator)):
        mine = {k: list(v.shape) for k, v in net.state_dict().items()}
        assert list(mine) == list(official[what])  # same names in the same (declaration) order
        assert mine == official[what]
        count = sum(p.numel() for p in net.parameters())
        assert [len(mine), count] == OFFICIAL["param_counts"][name][what]


@pytest.mark.parametrize("name", RELEASED)
def test_bundled_config_values_match_upstream_yaml(name):
    ours = load_config(name)
    upstream = OFFICIAL["model_params"][name]
    for section in ("common_params", "kp_detector_params", "generator_params"):
        assert ours["model_params"][section] == upstream[section], section
    size = OFFICIAL["image_shape"][name] or [64, 64, 3]  # FramesDataset's default when the YAML has none
    assert ours["dataset_params"]["image_shape"] == size
    with torch.device("meta"):
        model = MonkeyNetModel(ours, config_name=name)
    assert model.native_size == tuple(size[:2])
    assert model.generator.interpolation_mode == ("trilinear" if name == "vox" else "nearest")


def test_authors_yaml_file_loads(tmp_path):
    # the authors' layout: extra sections (train_params, discriminator_params, ...) are ignored
    cfg = {"dataset_params": {"root_dir": "data/nemo", "augmentation_params": {"flip_param": {"time_flip": True}}},
           "model_params": dict(OFFICIAL["model_params"]["nemo"]),
           "train_params": {"num_epochs": 750, "loss_weights": {"reconstruction": [10, 10, 10, 10, 1]}},
           "reconstruction_params": {"num_videos": None, "format": ".gif"}}
    path = tmp_path / "nemo.yaml"
    path.write_text(yaml.safe_dump(cfg))
    loaded = load_config(str(path))
    assert loaded["model_params"]["generator_params"]["max_features"] == 512
    with torch.device("meta"):
        model = MonkeyNetModel(loaded, config_name=str(path))
    assert model.native_size == (64, 64)
    assert model.describe()["config"] == str(path)


def test_config_errors(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("model_params: [unclosed\n")
    with pytest.raises(UserError, match="invalid YAML"):
        load_config(str(bad))
    other = tmp_path / "other.yaml"
    other.write_text("dataset_params: {root_dir: x}\n")
    with pytest.raises(UserError, match="not a Monkey-Net config"):
        load_config(str(other))
    fomm = tmp_path / "vox-256.yaml"
    fomm.write_text(yaml.safe_dump({"model_params": {
        "common_params": {"num_kp": 10, "num_channels": 3, "estimate_jacobian": True},
        "kp_detector_params": {"temperature": 0.1}, "generator_params": {"num_down_blocks": 2}}}))
    with pytest.raises(UserError, match="FOMM config.*--model fomm"):
        load_config(str(fomm))
    with pytest.raises(UserError, match="neither a bundled Monkey-Net config"):
        load_config("vox-256")
    single = json.loads(json.dumps(TINY["tiny-nearest"]["config"]))
    single["model_params"]["common_params"]["kp_variance"] = "single"
    with pytest.raises(UserError, match="kp_variance"):
        load_monkeynet(config=single)
    with pytest.raises(UserError, match="unsupported model options"):
        load_monkeynet(config=TINY["tiny-nearest"]["config"], adv=True)


# -- parity with the authors' code ---------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["tiny-nearest", "tiny-trilinear"])
def test_tiny_configs_match_official_code(name):
    model = _tiny_model(name)
    ref = TINY[name]["reference"]
    got = _outputs(model, _frames(TINY["frames"]))
    for key, value in got.items():
        assert value.shape == ref[key].shape, key
        assert _max_diff(value, ref[key]) <= TOL, key


def test_tiny_fixtures_exercise_the_special_paths():
    # tiny-nearest: variance clipping active for some keypoints, not for others; 'sum' normalisation
    cfg = TINY["tiny-nearest"]["config"]["model_params"]
    clip = cfg["kp_detector_params"]["clip_variance"]
    sigma = smallest_singular_value(TINY["tiny-nearest"]["reference"]["kp_var"]).flatten()
    assert ((sigma - clip).abs() < 1e-6).any() and (sigma > clip + 0.05).any()
    assert cfg["generator_params"]["kp_embedding_params"]["norm_const"] == "sum"
    # tiny-trilinear: scale factor 0.25 and trilinear resampling of flow and embedding really matter
    model = _tiny_model("tiny-trilinear")
    assert model.kp_detector.scale_factor == 0.25 and model.generator.dense_motion_module.scale_factor == 0.25
    frames = _frames(TINY["frames"])
    model.generator.interpolation_mode = "nearest"
    changed = _outputs(model, frames)
    ref = TINY["tiny-trilinear"]["reference"]
    assert _max_diff(changed["prediction"], ref["prediction"]) > 1e-2
    assert _max_diff(changed["deformed"], ref["deformed"]) > 1e-2


def _full_model(name):
    entry = FULL[name]
    listing = OFFICIAL["configs"][name]
    with torch.device("meta"):  # no random init: the weights come from the listing
        model = MonkeyNetModel(load_config(name), config_name=name)
    for what in ("kp_detector", "generator"):
        state = synthetic_state(listing[what], entry["seed"])
        fingerprint = sum(v.double().abs().sum().item() for v in state.values())
        assert fingerprint == pytest.approx(entry["fingerprint"][what], rel=1e-9), \
            "synthetic weights changed (numpy's random stream?): regenerate the fixtures (README.md)"
        getattr(model, what).load_state_dict(state, strict=True, assign=True)
    return model.eval()


def test_full_size_taichi_matches_official_code():
    model = _full_model("taichi")
    frames = _frames(TINY["frames"])[FULL["taichi"]["frame_indices"]]
    ref = FULL["taichi"]["reference"]
    got = _outputs(model, frames)
    for key, value in got.items():
        assert _max_diff(value, ref[key]) <= TOL, key


def test_full_size_vox_matches_official_code():
    # 256² frames, keypoints and dense motion at 64² (scale 0.25), trilinear flow resampling, 7-block generator
    model = _full_model("vox")
    ref = FULL["vox"]["reference"]
    got = _outputs(model, _frames(FULL["frames_256"]))
    assert got["prediction"].shape == (2, 3, 256, 256)
    for key in ("kp_mean", "kp_var", "kp_source_mean", "kp_source_var"):
        assert _max_diff(got[key], ref[key]) <= TOL, key
    a, b = FULL["crop"]
    step = FULL["stride"]
    for key in ("prediction", "deformed"):
        assert _max_diff(got[key][:, :, a:b, a:b], ref[key + "_crop"]) <= TOL, key
        assert _max_diff(got[key][:, :, ::step, ::step], ref[key + "_stride"]) <= TOL, key
        sums = got[key].double().sum(dim=(1, 2, 3))
        assert _max_diff(sums, ref[key + "_sum"]) <= 1e-5 * got[key][0].numel(), key


# -- the model contract ---------------------------------------------------------------------------------------
def test_frame_by_frame_equals_batched_and_motion_chunks():
    frames = _frames(TINY["frames"])
    for name in ("tiny-nearest", "tiny-trilinear"):
        model = _tiny_model(name, motion_chunk=None)
        with torch.no_grad():
            state = model.prepare_source(frames[:1])
            batched = model.animate(state, frames)
            single = [model.animate(state, frames[i:i + 1]) for i in range(len(frames))]
            model.motion_chunk = 2
            chunked = model.animate(state, frames)
        for key in ("prediction", "deformed"):
            assert _max_diff(batched[key], torch.cat([s[key] for s in single])) <= 1e-6
            assert _max_diff(batched[key], chunked[key]) <= 1e-6
        assert _max_diff(batched["kp_driving"]["mean"], torch.cat([s["kp_driving"]["mean"] for s in single])) <= 1e-6


def test_default_motion_is_per_frame_on_cpu():
    # nemo's keypoint detector rounds differently with several frames per call (~6e-7 on keypoints, 8e-6 on
    # `deformed`); the default runs keypoints and dense motion frame by frame on CPU, like the authors' loop
    # (whose numerics the parity tests pin), and only the decoder on all frames at once
    listing = OFFICIAL["configs"]["nemo"]
    with torch.device("meta"):
        model = MonkeyNetModel(load_config("nemo"), config_name="nemo")
    for what in ("kp_detector", "generator"):
        getattr(model, what).load_state_dict(synthetic_state(listing[what], 2), assign=True)
    model.eval()
    assert model.describe()["motion_chunk"] == 1
    frames = _frames(TINY["frames"])
    with torch.no_grad():
        state = model.prepare_source(frames[:1])
        default = model.animate(state, frames)
        single = [model.animate(state, frames[i:i + 1]) for i in range(len(frames))]
    assert torch.equal(default["kp_driving"]["mean"], torch.cat([s["kp_driving"]["mean"] for s in single]))
    assert torch.equal(default["deformed"], torch.cat([s["deformed"] for s in single]))
    assert _max_diff(default["prediction"], torch.cat([s["prediction"] for s in single])) <= 2e-6


def test_output_contract_shapes_and_describe():
    model = load_monkeynet(config=TINY["tiny-nearest"]["config"], seed=0)
    frames = _frames(TINY["frames"])
    with torch.no_grad():
        out = model(frames[:1], frames[:3])
    assert out["prediction"].shape == (3, 3, 64, 64) and out["deformed"].shape == (3, 3, 64, 64)
    assert 0 <= out["prediction"].min() <= out["prediction"].max() <= 1
    assert out["kp_driving"]["mean"].shape == (3, 4, 2) and out["kp_driving"]["var"].shape == (3, 4, 2, 2)
    assert out["kp_source"]["mean"].shape == (3, 4, 2) and out["kp_source"]["var"].shape == (3, 4, 2, 2)
    assert model.native_size == (64, 64) and model.has_motion_maps is False
    desc = model.describe()
    assert desc["native_size"] == [64, 64] and desc["config"] == "custom" and desc["num_kp"] == 4
    assert desc["interpolation_mode"] == "nearest" and desc["pooling"] == "video-mean"
    assert desc["align_corners"] is True
    with pytest.raises(ValueError, match="one source frame"):
        model.prepare_source(frames[:2])
    with torch.device("meta"):
        bundled = MonkeyNetModel(load_config("vox"), config_name="vox")
    assert bundled.native_size == (256, 256) and bundled.describe()["config"] == "vox"
    assert bundled.describe()["interpolation_mode"] == "trilinear"


def test_align_corners_false_changes_every_warp():
    frames = _frames(TINY["frames"])
    ref = TINY["tiny-nearest"]["reference"]
    model = _tiny_model("tiny-nearest", align_corners=False)
    out = _outputs(model, frames)
    assert _max_diff(out["deformed"], ref["deformed"]) > 1e-2
    assert _max_diff(out["kp_mean"], ref["kp_mean"]) == 0  # keypoints do not warp
    assert model.describe()["align_corners"] is False


def test_random_weights_seeded_and_authors_init():
    cfg = TINY["tiny-trilinear"]["config"]
    a, b, c = (load_monkeynet(config=cfg, seed=s) for s in (3, 3, 4))
    wa, wb, wc = (m.generator.appearance_encoder.down_blocks[0].conv.weight for m in (a, b, c))
    assert torch.equal(wa, wb) and not torch.equal(wa, wc)
    last = a.generator.dense_motion_module.hourglass.decoder.conv
    assert not last.weight.any() and last.bias.tolist() == [2.0, 0, 0, 0, 0, 0]  # bg mask, K masks, correction


# -- checkpoints ----------------------------------------------------------------------------------------------
def _payload(model, **extra):
    payload = {"generator": model.generator.state_dict(), "kp_detector": model.kp_detector.state_dict()}
    payload.update(extra)
    return payload


def test_legacy_checkpoint_with_training_entries(tmp_path):
    cfg = TINY["tiny-nearest"]["config"]
    source = load_monkeynet(config=cfg, seed=5)
    path = tmp_path / "00000749-checkpoint.pth.tar"
    disc = {"down_blocks.0.conv.weight": torch.rand(8, 7, 1, 4, 4), "conv.bias": torch.zeros(1)}
    optimizer = {"state": {}, "param_groups": [{"lr": 2e-4, "betas": (0.5, 0.999), "eps": 1e-8, "weight_decay": 0,
                                                "amsgrad": False, "params": [0, 1, 2]}]}
    torch.save(_payload(source, discriminator=disc, optimizer_generator=optimizer, optimizer_discriminator=optimizer,
                        optimizer_kp_detector=optimizer, epoch=749, it=123456), path,
               _use_new_zipfile_serialization=False)
    assert not zipfile.is_zipfile(path)  # like the released files: a legacy pickle, not an archive
    loaded = load_monkeynet(path, config=cfg)
    frames = _frames(TINY["frames"])[:2]
    with torch.no_grad():
        assert torch.equal(loaded(frames[:1], frames)["prediction"], source(frames[:1], frames)["prediction"])


def test_module_prefix_and_missing_num_batches_tracked(tmp_path):
    cfg = TINY["tiny-trilinear"]["config"]
    source = load_monkeynet(config=cfg, seed=6)
    path = tmp_path / "prefixed.pth.tar"
    torch.save({"generator": {"module." + k: v for k, v in source.generator.state_dict().items()},
                "kp_detector": {k: v for k, v in source.kp_detector.state_dict().items()
                                if not k.endswith("num_batches_tracked")}}, path)
    loaded = load_monkeynet(path, config=cfg, seed=99)
    for a, b in zip(loaded.state_dict().values(), source.state_dict().values()):
        assert torch.equal(a, b)


def _layout_payload(name):
    """A checkpoint with config `name`'s layout and no data (stride-0 tensors: a few bytes on disk)."""
    listing = OFFICIAL["configs"][name]
    return {what: {k: torch.zeros((), dtype=torch.int64 if k.endswith("num_batches_tracked") else torch.float32)
                   .expand(shape) for k, shape in listing[what].items()} for what in ("generator", "kp_detector")}


def test_wrong_config_names_mismatched_key_and_likely_config(tmp_path):
    path = tmp_path / "vox-cpk.pth.tar"
    torch.save(_layout_payload("vox"), path, _use_new_zipfile_serialization=False)
    with pytest.raises(UserError) as err:
        load_monkeynet(path)  # default config: taichi (64², 5 generator blocks)
    text = str(err.value)
    assert "generator does not match the Monkey-Net model" in text
    assert "video_decoder.up_blocks.0.conv.weight" in text and "--config vox" in text
    nemo = tmp_path / "nemo-ckp.pth.tar"
    torch.save(_layout_payload("nemo"), nemo)
    with pytest.raises(UserError, match="'nemo'.*--config nemo"):
        load_monkeynet(nemo, config="moving-gif")
    model = load_monkeynet(nemo, config="nemo")
    assert not model.generator.video_decoder.up_blocks[0].conv.weight.any()
    tiny = tmp_path / "tiny.pth.tar"
    torch.save(TINY["tiny-nearest"]["state_dict"], tiny)
    with pytest.raises(UserError, match="no bundled config.*4 keypoints"):
        load_monkeynet(tiny, config="taichi")


def test_fomm_checkpoint_is_refused_with_a_pointer_to_fomm(tmp_path):
    path = tmp_path / "vox-cpk.pth.tar"
    hourglass = "dense_motion_network.hourglass.encoder.down_blocks.0.conv.weight"
    torch.save({"generator": {"first.conv.weight": torch.zeros(64, 3, 7, 7), hourglass: torch.zeros(64, 44, 3, 3)},
                "kp_detector": {"kp.weight": torch.zeros(10, 35, 7, 7), "jacobian.weight": torch.zeros(40, 35, 7, 7)},
                "optimizer_generator": {}, "epoch": 99}, path)
    with pytest.raises(UserError, match="FOMM.*--model fomm"):
        load_monkeynet(path, config="vox")


def test_not_a_monkeynet_checkpoint(tmp_path):
    path = tmp_path / "model.pth"
    torch.save({"state_dict": {"w": torch.zeros(1)}}, path)
    with pytest.raises(UserError, match="no 'generator'/'kp_detector' entries"):
        load_monkeynet(path, config=TINY["tiny-nearest"]["config"])
    with pytest.raises(UserError, match="no such file"):
        load_monkeynet(tmp_path / "missing.pth.tar")
