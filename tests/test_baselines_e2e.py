"""X2Face and Monkey-Net through every command: reconstruct (a FOMM-layout folder, --config FILE.yaml), eval with
all pixel metrics and top-k masks from a FOMM run, report with the three models."""
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from animbench.cli import main
from conftest import call_cli, write_tiny_fomm

MONKEYNET = torch.load(Path(__file__).parent / "data" / "monkeynet" / "tiny_parity.pt", weights_only=True)


@pytest.fixture(autouse=True)
def one_thread():
    # the reference outputs were made with one thread; convolutions round differently with more
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


cli = call_cli


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """The fixture's 4 frames as a FOMM-layout dataset (one test video, PNG frames)."""
    import imageio.v3 as iio

    root = tmp_path_factory.mktemp("mn")
    video = root / "data" / "test" / "clip"
    video.mkdir(parents=True)
    for t, frame in enumerate(MONKEYNET["frames"].permute(0, 2, 3, 1).numpy()):
        iio.imwrite(video / f"{t:07d}.png", frame)
    return root


@pytest.mark.parametrize("name", ["tiny-nearest", "tiny-trilinear"])
def test_monkeynet_reconstruct_with_config_file(capsys, folder, tmp_path, name):
    entry = MONKEYNET[name]
    config = tmp_path / f"{name}.yaml"
    config.write_text(yaml.safe_dump(entry["config"]))
    checkpoint = tmp_path / "cpk.pth.tar"  # the released layout: training entries included, legacy pickle
    torch.save({**entry["state_dict"], "discriminator": {}, "optimizer_generator": {}, "optimizer_kp_detector": {},
                "optimizer_discriminator": {}, "epoch": 10, "it": 1000}, checkpoint,
               _use_new_zipfile_serialization=False)
    out = tmp_path / "recon"
    code, stdout, err = cli(capsys, "reconstruct", "--model", "monkeynet", "--config", config, "--checkpoint",
                            checkpoint, "--data-root", folder / "data", "--out", out)
    assert code == 0, err
    frames = pd.read_parquet(out / "frames.parquet")
    gt = MONKEYNET["frames"].double() / 255
    reference = entry["reference"]["prediction"].double()
    np.testing.assert_allclose(frames["l1"], (reference - gt).abs().mean(dim=(1, 2, 3)).numpy(), atol=1e-5)
    import imageio.v3 as iio

    strip = iio.imread(out / "png" / "clip.png").astype(int)
    expected = np.concatenate(list((reference * 255).floor().permute(0, 2, 3, 1).numpy().astype(int)), axis=1)
    assert np.abs(strip - expected).max() <= 1 and (strip != expected).mean() < 1e-3
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["pooling"] == "video"
    assert manifest["identity"]["model_settings"]["num_kp"] == entry["config"]["model_params"]["common_params"]["num_kp"]


@pytest.fixture(scope="module")
def three_runs(tmp_path_factory):
    """FOMM (tiny, with maps), Monkey-Net (bundled taichi config at 64², random weights) and X2Face (random
    weights, 256² frames) evaluated on one sample video with salient and top-k masks from the FOMM run."""
    root = tmp_path_factory.mktemp("three")
    config, checkpoint = write_tiny_fomm(root / "fomm-model")
    common = ["--dataset", "sample", "--max-videos", "1", "--masks", "topk", "--topk", "10,30"]
    runs = {"fomm": root / "fomm", "monkeynet": root / "monkeynet", "x2face": root / "x2face"}

    def run(*args):
        with pytest.raises(SystemExit) as e:
            main([str(a) for a in args])
        assert e.value.code == 0

    run("eval", "-m", "fomm", "--config", config, "--checkpoint", checkpoint, "--size", "64", "--save-maps",
        "--out", runs["fomm"], *common)
    run("eval", "-m", "monkeynet", "--config", "taichi", "--random-weights", "--out", runs["monkeynet"],
        "--topk-from", runs["fomm"], "--label", "Monkey-Net", *common)
    return runs


def test_monkeynet_eval_with_topk_from_fomm_and_report(capsys, three_runs):
    frames = pd.read_parquet(three_runs["monkeynet"] / "frames.parquet")
    assert {"l1", "psnr", "ssim", "psnr.top10", "ssim.not_top30"} <= set(frames.columns)
    assert np.isfinite(frames[["l1", "psnr", "ssim"]].to_numpy()).all() and len(frames) == 32
    code, out, err = cli(capsys, "report", three_runs["fomm"], three_runs["monkeynet"], "--table", "main",
                         "--pooling", "native", "--resamples", "100")
    assert code == 0, err
    rows = [l.split("|")[1].strip() for l in out.splitlines() if l.startswith("| ") and "Model" not in l]
    assert rows == ["Monkey-Net (random weights)", "FOMM"]  # the paper's row order; random weights labelled
    assert "each model's own protocol" in out


def test_x2face_eval_on_sample(capsys, tmp_path, three_runs):
    out = tmp_path / "x2face"
    code, _, err = cli(capsys, "eval", "-m", "x2face", "--random-weights", "--dataset", "sample", "--max-videos",
                       "1", "--out", out, "--metrics", "l1,psnr,ssim")
    assert code == 0, err
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["frame_size"]["size"] == [256, 256] and manifest["label"] == "x2face (random weights)"
    frames = pd.read_parquet(out / "frames.parquet")
    assert len(frames) == 32 and np.isfinite(frames["ssim"]).all()
    # the same numbers as load_model + the model called directly on the first frames
    from animbench.data import open_dataset
    from animbench.data.convert import to_float_tensor
    from animbench.metrics import l1
    from animbench.models import load_model

    model = load_model("x2face", random_weights=True)
    video = open_dataset("sample", split="test", frame_size=(256, 256)).videos[0]
    x = to_float_tensor(video.read_frames([0, 1, 2]))
    with torch.inference_mode():
        pred = model(x[:1], x)["prediction"]
    np.testing.assert_allclose(frames["l1"].to_numpy()[:3], l1(pred, x).numpy(), rtol=1e-6, atol=1e-7)
    # x2face is not fully convolutional: other sizes are refused with the sizes seen
    code, _, err = cli(capsys, "eval", "-m", "x2face", "--random-weights", "--dataset", "sample", "--size", "64",
                       "--out", tmp_path / "x64")
    assert code == 2 and "64x64" in err and "256x256" in err
