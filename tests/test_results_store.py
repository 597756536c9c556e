import json
import os

import numpy as np
import pandas as pd
import pytest

from animbench.errors import UserError
from animbench.results.store import RunStore, atomic_write_bytes, build_manifest, file_sha256


def _video_rows(name, n, seed):
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"model": "m", "dataset": "d", "video": name, "frame": np.arange(n),
                         "l1": rng.random(n), "psnr": rng.random(n) * 30})


def test_round_trip_parts_and_finalize(tmp_path):
    store = RunStore(tmp_path / "run")
    a, b = _video_rows("b#2.mp4", 5, 0), _video_rows("a#1.mp4", 3, 1)
    store.write_video(a)
    store.write_video(b)
    assert store.has_video("a#1.mp4") and store.has_video("b#2.mp4") and not store.has_video("c")
    frames = store.read_frames()
    # sorted by video then frame; values identical to what was written
    assert list(frames["video"]) == ["a#1.mp4"] * 3 + ["b#2.mp4"] * 5
    pd.testing.assert_frame_equal(frames.iloc[:3].reset_index(drop=True), b)
    path = store.finalize()
    pd.testing.assert_frame_equal(pd.read_parquet(path), frames)
    assert store.done_videos() == ["a#1.mp4", "b#2.mp4"]


def test_write_video_rejects_two_videos_and_missing_keys(tmp_path):
    store = RunStore(tmp_path)
    with pytest.raises(ValueError):
        store.write_video(pd.concat([_video_rows("a", 2, 0), _video_rows("b", 2, 0)]))
    with pytest.raises(ValueError):
        store.write_video(_video_rows("a", 2, 0).drop(columns=["frame"]))


def test_atomic_write_leaves_old_file_on_failure(tmp_path, monkeypatch):
    target = tmp_path / "x.bin"
    atomic_write_bytes(target, b"old")

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError):
        atomic_write_bytes(target, b"new")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["x.bin"]  # no temp file left behind


def test_manifest_contents(tmp_path):
    ckpt = tmp_path / "c.pth"
    ckpt.write_bytes(b"abc")
    m = build_manifest("eval", config={"a": 1}, seed=3, dataset_manifest_hash="h", checkpoint=ckpt)
    assert m["checkpoint"]["sha256"] == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"  # sha256("abc")
    assert m["seed"] == 3 and m["dataset_manifest_hash"] == "h" and m["config"] == {"a": 1}
    assert {"torch", "numpy", "python"} <= set(m["versions"])
    store = RunStore(tmp_path / "r")
    store.write_manifest(m)
    assert store.read_manifest()["checkpoint"]["sha256"] == file_sha256(ckpt)
    json.loads((tmp_path / "r" / "manifest.json").read_text())


def test_reader_errors_are_user_errors(tmp_path):
    with pytest.raises(UserError, match="not a run directory"):
        RunStore(tmp_path).read_manifest()
    with pytest.raises(UserError, match="no per-frame results"):
        RunStore(tmp_path).read_frames()
    (tmp_path / "manifest.json").write_text("{broken")
    with pytest.raises(UserError, match="corrupt JSON"):
        RunStore(tmp_path).read_manifest()
