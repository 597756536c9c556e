"""Frame size comes from --size, else the model's config, else the dataset preset, else the first frame found;
errors state the sizes really seen; fully convolutional models run at other sizes with a recorded warning."""
import json

import pytest
import yaml

from conftest import call_cli, write_tiny_fomm


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """One sample test video upscaled to 128², a tiny FOMM with configs for 64² and 128²."""
    import cv2
    import imageio.v3 as iio

    from animbench.data.sample import sample_root

    root = tmp_path_factory.mktemp("sizes")
    first = sorted((sample_root(64) / "test").iterdir())[0]
    for png in sorted(first.glob("*.png"))[:6]:
        out = root / "d128" / "test" / first.name / png.name
        out.parent.mkdir(parents=True, exist_ok=True)
        iio.imwrite(out, cv2.resize(iio.imread(png), (128, 128), interpolation=cv2.INTER_LINEAR))
    config64, checkpoint = write_tiny_fomm(root / "model")
    cfg = yaml.safe_load(config64.read_text())
    assert cfg["dataset_params"]["frame_shape"][:2] == [64, 64]
    cfg["dataset_params"]["frame_shape"] = [128, 128, 3]
    config128 = root / "model" / "tiny-128.yaml"
    config128.write_text(yaml.safe_dump(cfg))
    return {"data": root / "d128", "c64": config64, "c128": config128, "ckpt": checkpoint}


cli = call_cli


def test_config_frame_shape_sets_the_size(capsys, setup, tmp_path):
    code, out, err = cli(capsys, "reconstruct", "--model", "fomm", "--config", setup["c128"], "--checkpoint",
                         setup["ckpt"], "--data-root", setup["data"], "--out", tmp_path / "r")
    assert code == 0, err
    manifest = json.loads((tmp_path / "r" / "manifest.json").read_text())
    assert manifest["frame_size"] == {"size": [128, 128], "rule": "model config", "native": [128, 128],
                                      "warning": None}


def test_mismatch_states_the_real_sizes(capsys, setup, tmp_path):
    code, out, err = cli(capsys, "reconstruct", "--model", "fomm", "--config", setup["c64"], "--checkpoint",
                         setup["ckpt"], "--data-root", setup["data"], "--out", tmp_path / "r")
    assert code == 2 and "frame is 128x128, expected 64x64" in err and "--size" in err and "256" not in err
    assert not (tmp_path / "r" / "frames.parquet").exists()


def test_explicit_size_wins_and_a_convolutional_model_runs_with_a_warning(capsys, setup, tmp_path):
    code, out, err = cli(capsys, "reconstruct", "--model", "fomm", "--config", setup["c64"], "--checkpoint",
                         setup["ckpt"], "--data-root", setup["data"], "--size", "128", "--out", tmp_path / "r")
    assert code == 0, err
    assert "warning: model fomm was configured for 64x64 frames and runs at 128x128" in err
    manifest = json.loads((tmp_path / "r" / "manifest.json").read_text())
    assert manifest["frame_size"]["rule"] == "--size" and manifest["frame_size"]["native"] == [64, 64]
    assert "not comparable" in manifest["frame_size"]["warning"]


def test_first_frame_rule_without_model_size(capsys, setup, tmp_path):
    code, out, err = cli(capsys, "eval", "--model", "copy-source", "--data-root", setup["data"], "--out",
                         tmp_path / "r", "--metrics", "l1")
    assert code == 0, err
    manifest = json.loads((tmp_path / "r" / "manifest.json").read_text())
    assert manifest["frame_size"]["size"] == [128, 128] and manifest["frame_size"]["rule"] == "first frame"


def test_preset_rule(capsys, setup, tmp_path):
    code, out, err = cli(capsys, "eval", "--model", "copy-source", "--dataset", "vox", "--data-root", setup["data"],
                         "--out", tmp_path / "r", "--metrics", "l1")
    assert code == 2 and "frame is 128x128, expected 256x256" in err


def test_model_that_is_not_convolutional_refuses_other_sizes(setup, tmp_path):
    from animbench.errors import UserError
    from animbench.eval.pipeline import EvalSpec, _check_model_size
    from animbench.models import load_model

    model = load_model("fomm", checkpoint=setup["ckpt"], config=str(setup["c64"]))
    model.fully_convolutional = False

    class Data:
        root, frame_size = setup["data"], (128, 128)

    with pytest.raises(UserError, match="frames are 128x128, model fomm works only at 64x64"):
        _check_model_size(EvalSpec(model="fomm", out=tmp_path), model, Data())
