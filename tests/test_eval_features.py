"""AKD/AED in `animbench eval`: per-frame values equal to `features extract` + `features compare` on the run's
PNG strips, ground-truth features cached per dataset and reused by the next model, reports show AED."""
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from conftest import call_cli, write_tiny_fomm

DATA = Path(__file__).parent / "data"


cli = call_cli


@pytest.fixture
def openface_weights(tmp_path):
    from test_openface import openface_random_state

    keys = json.loads((DATA / "openface" / "official_state_dict_keys.json").read_text())
    path = tmp_path / "openface.pth"
    torch.save(openface_random_state(keys), path)
    return path


def test_aed_in_eval_matches_the_drop_in_commands_and_caches_gt(capsys, tmp_path, monkeypatch, openface_weights):
    monkeypatch.setenv("ANIMBENCH_CACHE", str(tmp_path / "cache"))
    from animbench.features import face_id

    calls = []
    original = face_id.FaceIdExtractor.extract

    def counting(self, frames):
        calls.append(len(frames))
        return original(self, frames)

    monkeypatch.setattr(face_id.FaceIdExtractor, "extract", counting)
    run = tmp_path / "copy"
    common = ["--dataset", "sample", "--max-videos", "1", "--metrics", "l1,aed", "--weights",
              f"face-id={openface_weights}"]
    code, out, err = cli(capsys, "eval", "-m", "copy-source", "--out", run, *common)
    assert code == 0, err
    assert calls == [32, 32]  # ground truth once, predictions once
    frames = pd.read_parquet(run / "frames.parquet")
    assert {"aed_face_openface", "flag_face_id_missing_gt", "flag_face_id_missing_gen"} <= set(frames.columns)
    assert frames["aed_face_openface"].iloc[0] == 0.0  # copy-source frame 0 is the ground truth itself
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["metric_info"]["aed_face_openface"]["display"] == "AED"
    assert manifest["features"]["extractors"]["face-id"]["resize"] == "skimage-0.14"
    # the same numbers from the drop-in commands on the ground-truth folder and the run's PNG strips
    from animbench.data import open_dataset

    video = open_dataset("sample", split="test", frame_size=(64, 64)).videos[0]
    gt_dir = tmp_path / "gt"
    gt_dir.mkdir()
    (gt_dir / video.name).symlink_to(video.path)
    for folder, pkl in ((gt_dir, "gt.pkl"), (run / "png", "gen.pkl")):
        code, _, err = cli(capsys, "features", "extract", folder, tmp_path / pkl, "--kind", "face-id", "--weights",
                           openface_weights, "--image-shape", "64,64")
        assert code == 0, err
    code, out, err = cli(capsys, "features", "compare", tmp_path / "gt.pkl", tmp_path / "gen.pkl", "--kind",
                         "face-id", "--json")
    assert json.loads(out)["aed"] == pytest.approx(frames["aed_face_openface"].mean(), rel=1e-5)
    # a second model reuses the cached ground-truth features: only its predictions are embedded
    calls.clear()
    config, checkpoint = write_tiny_fomm(tmp_path / "fomm-model")
    code, out, err = cli(capsys, "eval", "-m", "fomm", "--config", config, "--checkpoint", checkpoint, "--size",
                         "64", "--out", tmp_path / "fomm", *common)
    assert code == 0, err
    assert calls == [32]
    code, out, err = cli(capsys, "report", run, tmp_path / "fomm", "--resamples", "100", "--table", "compact")
    assert code == 0, err
    assert "AED ↓" in out


def test_missing_detections_are_nan_with_flags_and_caption(tmp_path):
    from animbench.reports import make_table, summarize
    from animbench.reports.summary import Run

    frames = pd.DataFrame({"model": "m", "dataset": "d", "video": ["v"] * 4, "frame": range(4),
                           "akd_face_fan": [1.0, np.nan, 3.0, 2.0], "flag_face_pose_missing_gen": [0, 1, 0, 0]})
    info = {"akd_face_fan": {"higher_is_better": False, "precision": 3, "display": "AKD", "unit": "px"}}
    run = Run(None, {"model": "fomm", "label": "F", "dataset": "d", "metric_info": info}, frames)
    summary = summarize([run], n_resamples=100)
    row = summary.iloc[0]
    assert list(summary["column"]) == ["akd_face_fan"]  # flags are not metrics
    assert row["estimate"] == pytest.approx(2.0) and row["n_frames"] == 3
    table = make_table(summary, "compact")
    assert "AKD ↓" in table and "1 of 4" in table
    # a run without a single detection: a dash, not a crash and not a number
    none = Run(None, {"model": "x2face", "label": "X", "dataset": "d", "metric_info": info},
               frames.assign(akd_face_fan=np.nan))
    table = make_table(summarize([run, none], n_resamples=100), "compact")
    assert "| X | – |" in table and "5 of 8" in table  # 1 miss in F, 4 in X


def test_unknown_metric_and_weights_errors(capsys, tmp_path):
    code, _, err = cli(capsys, "eval", "-m", "copy-source", "--dataset", "sample", "--metrics", "akdd",
                       "--out", tmp_path / "r")
    assert code == 2 and "akdd" in err
    code, _, err = cli(capsys, "eval", "-m", "copy-source", "--dataset", "sample", "--metrics", "aed",
                       "--weights", "face-id=/nope.pth", "--out", tmp_path / "r")
    assert code == 2 and "/nope.pth" in err


def test_akd_face_in_eval_with_synthesised_face_alignment_weights(capsys, tmp_path, monkeypatch):
    """face-alignment built offline from random FAN/S3FD files: a random detector finds no face, so every frame
    is a miss — NaN with its flag, reported as such, never a number."""
    from animbench.features.face_pose import write_random_weights

    monkeypatch.setenv("ANIMBENCH_CACHE", str(tmp_path / "cache"))
    weights = tmp_path / "fa"
    write_random_weights(weights, seed=0)
    run = tmp_path / "run"
    code, out, err = cli(capsys, "eval", "-m", "copy-source", "--dataset", "sample", "--max-videos", "1",
                         "--metrics", "l1,akd", "--weights", f"face-pose={weights}", "--out", run)
    assert code == 0, err
    frames = pd.read_parquet(run / "frames.parquet")
    assert {"akd_face_fan", "flag_face_pose_missing_gt", "flag_face_pose_missing_gen"} <= set(frames.columns)
    scored = frames["akd_face_fan"].notna()
    missing = (frames["flag_face_pose_missing_gt"] == 1) | (frames["flag_face_pose_missing_gen"] == 1)
    assert (scored == ~missing).all()  # a value exactly where both sides have a detection
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["metric_info"]["akd_face_fan"]["unit"] == "px"


def test_body_metrics_in_eval_and_count_missing(tmp_path, monkeypatch):
    """akd/mkr/aed on the taichi preset mean the body extractors (random weights, small OpenPose input for
    speed): columns, flags, the manifest's count_missing number, and a report with AKD, MKR, AED."""
    from animbench.eval.pipeline import EvalSpec, run_eval
    from animbench.features.compare import count_missing
    from animbench.reports import load_runs, make_table, summarize

    monkeypatch.setenv("ANIMBENCH_CACHE", str(tmp_path / "cache"))
    from animbench.data.sample import sample_root

    spec = EvalSpec(model="copy-source", out=tmp_path / "run", dataset="taichi", data_root=sample_root(64),
                    frame_size=(64, 64), max_videos=1, metrics=("l1", "akd", "mkr", "aed"),
                    feature_options={"body-pose": {"random_weights": True, "input_size": 96},
                                     "body-id": {"random_weights": True}})
    store = run_eval(spec, progress=False)
    frames = store.read_frames()
    assert {"akd_body_openpose", "mkr_body_openpose", "aed_body_reid", "flag_body_pose_gt_joints_missing"} <= set(
        frames.columns)
    manifest = store.read_manifest()
    gt = pd.DataFrame({"file_name": frames["video"], "frame_number": frames["frame"],
                       "value": [np.full((18, 2), -1.0)] * len(frames)})
    for i, n in enumerate(frames["flag_body_pose_gt_joints_missing"]):  # rebuild per-frame missing counts
        gt.at[i, "value"] = np.where(np.arange(18)[:, None] < n, -1.0, 5.0)
    assert manifest["count_missing_gt"] == pytest.approx(count_missing(gt))
    table = make_table(summarize(load_runs([tmp_path / "run"]), n_resamples=100), "main")
    assert "AKD ↓" in table and "MKR ↓" in table and "AED ↓" in table
