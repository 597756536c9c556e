"""End-to-end evaluation on the embedded sample dataset: results, resume, refusal of mixed settings."""

import numpy as np
import pandas as pd
import pytest
import torch

from animbench.data import open_dataset
from animbench.data.convert import to_float_tensor
from animbench.errors import UserError
from animbench.eval.pipeline import EvalSpec, run_eval
from animbench.results.store import RunStore


def _spec(out, **kw):
    base = dict(model="copy-source", out=out, dataset="sample", max_videos=2, batch_size=7)
    base.update(kw)
    return EvalSpec(**base)


def test_copy_source_metrics_match_direct_computation(tmp_path):
    store = run_eval(_spec(tmp_path / "run"), progress=False)
    frames = store.read_frames()
    dataset = open_dataset("sample", split="test", frame_size=(64, 64))
    video = dataset.videos[0]
    gt = to_float_tensor(video.read_all()).double()
    pred = gt[:1].expand_as(gt)
    # independent computation: FOMM's per-frame L1 and per-frame PSNR straight from numpy
    l1 = (pred - gt).abs().mean(dim=(1, 2, 3)).numpy()
    mine = frames[frames.video == video.name]
    assert list(mine["frame"]) == list(range(len(gt)))
    np.testing.assert_allclose(mine["l1"].to_numpy(), l1, rtol=1e-6, atol=1e-7)
    mse = ((pred - gt) ** 2).mean(dim=(1, 2, 3)).numpy()
    expected_psnr = np.where(mse > 0, 10 * np.log10(1.0 / np.maximum(mse, 1e-300)), np.nan)
    np.testing.assert_allclose(mine["psnr"].to_numpy()[1:], expected_psnr[1:], rtol=1e-6)
    assert l1[0] == 0 and np.isfinite(mine["psnr"].to_numpy()[0])  # identical frame 0: capped, not inf
    assert set(frames["video"]) == {v.name for v in dataset.videos[:2]}
    # the PNG strip holds floor(255*x) of the prediction, frames side by side
    import imageio.v3 as iio

    strip = iio.imread(tmp_path / "run" / "png" / f"{video.name}.png")
    assert strip.shape == (64, 64 * len(gt), 3)
    np.testing.assert_array_equal(strip[:, 64 * 3:64 * 4], video.read_all()[0])
    manifest = store.read_manifest()
    assert manifest["dataset_manifest_hash"] and manifest["identity"]["align_corners"] is True


def test_resume_after_interruption_gives_identical_table(tmp_path, monkeypatch):
    full = run_eval(_spec(tmp_path / "full", max_videos=3), progress=False).read_frames()

    calls = {"n": 0}
    original = RunStore.write_video

    def dying_write(self, rows):
        original(self, rows)
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt  # killed between videos 2 and 3

    monkeypatch.setattr(RunStore, "write_video", dying_write)
    with pytest.raises(KeyboardInterrupt):
        run_eval(_spec(tmp_path / "resumed", max_videos=3), progress=False)
    monkeypatch.setattr(RunStore, "write_video", original)
    assert len(RunStore(tmp_path / "resumed").done_videos()) == 2

    written = []
    monkeypatch.setattr(RunStore, "write_video", lambda self, rows: (written.append(rows.video[0]), original(self, rows)))
    resumed = run_eval(_spec(tmp_path / "resumed", max_videos=3), progress=False).read_frames()
    assert len(written) == 1  # only the unfinished video was recomputed
    pd.testing.assert_frame_equal(resumed, full)


def test_different_settings_into_same_dir_are_refused(tmp_path):
    run_eval(_spec(tmp_path / "run", max_videos=1), progress=False)
    with pytest.raises(UserError, match="different settings"):
        run_eval(_spec(tmp_path / "run", max_videos=1, metrics=("l1",)), progress=False)


def test_eval_from_reconstruction_reuses_png_strips(tmp_path):
    recon = run_eval(_spec(tmp_path / "recon", metrics=("l1",), kind="reconstruct"), progress=False)
    evaluated = run_eval(_spec(tmp_path / "eval", from_reconstruction=tmp_path / "recon"), progress=False)
    a, b = recon.read_frames(), evaluated.read_frames()
    # the strips are floor(255x) of the float prediction: L1 from PNG differs by < 1/255
    assert np.all(np.abs(a["l1"].to_numpy() - b["l1"].to_numpy()) < 1 / 255)
    assert evaluated.read_manifest()["protocol"]["prediction_values"].startswith("png")
    with pytest.raises(UserError, match="made with model"):
        run_eval(_spec(tmp_path / "eval2", model="fomm", from_reconstruction=tmp_path / "recon"), progress=False)


def test_topk_needs_motion_maps(tmp_path):
    with pytest.raises(UserError, match="top-k masks need"):
        run_eval(_spec(tmp_path / "run", masks=("topk",)), progress=False)


def test_topk_masks_from_baseline_maps_are_shared(tmp_path, tiny_fomm):
    from animbench.eval.reconstruct import load_maps
    from animbench.masks import prioritycut_mask
    from animbench.metrics import masked, psnr, ssim

    config, checkpoint = tiny_fomm
    base = run_eval(_spec(tmp_path / "fomm", model="fomm", config=str(config), checkpoint=checkpoint,
                          masks=("topk",), max_videos=1,
                          topk_ks=(10, 30)), progress=False)
    frames = base.read_frames()
    assert {"psnr.top10", "psnr.not_top10", "ssim.top30", "ssim.not_top30"} <= set(frames.columns)
    video = open_dataset("sample", split="test", frame_size=(64, 64)).videos[0]
    maps = load_maps(tmp_path / "fomm" / "maps" / f"{video.name}.npz")
    assert maps["occlusion"].shape == (video.num_frames, 32, 32) and maps["occlusion"].dtype == np.float16

    other = run_eval(_spec(tmp_path / "copy", masks=("topk",), topk_from=tmp_path / "fomm", max_videos=1,
                           topk_ks=(10, 30), exact_metrics=True), progress=False).read_frames()
    # recompute frame 7 of the copy-source run by hand from the stored baseline maps
    t = 7
    gt = to_float_tensor(video.read_all()).double()
    pred = gt[:1]
    occ = torch.from_numpy(maps["occlusion"][t:t + 1].astype(np.float32))[:, None]
    bg = torch.from_numpy(maps["background"][t:t + 1].astype(np.float32))[:, None]
    m = prioritycut_mask(occ, bg, 30, size=(64, 64))
    row = other[other.frame == t].iloc[0]
    assert row["ssim.top30"] == pytest.approx(masked(ssim, pred, gt[t:t + 1], m).item(), abs=1e-9)
    assert row["psnr.not_top30"] == pytest.approx(masked(psnr, pred, gt[t:t + 1], m, inverted=True).item(), abs=1e-9)


def test_fomm_eval_with_salient_folder_and_cli_summary(tmp_path, tiny_fomm):
    import subprocess
    import sys

    import imageio.v3 as iio

    dataset = open_dataset("sample", split="test", frame_size=(64, 64))
    video = dataset.videos[0]
    masks = tmp_path / "masks"
    masks.mkdir()
    iio.imwrite(masks / f"{video.name}.png", np.full((64, 64 * video.num_frames), 255, np.uint8))
    config, checkpoint = tiny_fomm
    cmd = [sys.executable, "-m", "animbench", "eval", "--model", "fomm", "--config", str(config),
           "--checkpoint", str(checkpoint), "--dataset",
           "sample", "--max-videos", "1", "--masks", "salient", "--salient", "folder", "--salient-dir", str(masks),
           "--out", str(tmp_path / "run"), "--ci", "video"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "psnr.salient" in r.stdout and "95% CI: video bootstrap" in r.stdout
    frames = RunStore(tmp_path / "run").read_frames()
    # an all-ones salient mask: masked PSNR equals plain PSNR; the inverted mask has no error (capped)
    np.testing.assert_allclose(frames["psnr.salient"], frames["psnr"], rtol=1e-12)
    assert (frames["psnr.not_salient"] == 100.0).all()


def test_builtin_salient_masks_are_cached_per_dataset_and_reused(tmp_path, monkeypatch):
    from animbench.masks import salient

    monkeypatch.setenv("ANIMBENCH_CACHE", str(tmp_path / "cache"))
    first = run_eval(_spec(tmp_path / "a", max_videos=1, masks=("salient",)), progress=False).read_frames()
    cached = list((tmp_path / "cache" / "gt").glob("*/salient-builtin-feather/*.npy"))
    assert len(cached) == 1
    masks = np.load(cached[0])
    assert masks.shape == (32, 64, 64) and 0.05 < masks.mean() < 0.6

    def no_recompute(*a, **k):
        raise AssertionError("salient masks recomputed instead of read from the cache")

    monkeypatch.setattr(salient.BuiltinSalient, "masks", no_recompute)
    second = run_eval(_spec(tmp_path / "b", max_videos=1, masks=("salient",), label="again"), progress=False)
    pd.testing.assert_frame_equal(second.read_frames().drop(columns="model"), first.drop(columns="model"))


def test_from_reconstruction_uses_its_own_maps_for_topk(tmp_path, tiny_fomm):
    config, checkpoint = tiny_fomm
    fomm = dict(model="fomm", config=str(config), checkpoint=checkpoint, max_videos=1, frame_size=(64, 64))
    run_eval(_spec(tmp_path / "recon", metrics=("l1",), kind="reconstruct", save_maps=True, **fomm), progress=False)
    a = run_eval(_spec(tmp_path / "a", masks=("topk",), topk_ks=(10, 30),
                       from_reconstruction=tmp_path / "recon", **fomm), progress=False)
    assert a.read_manifest()["identity"]["topk_from"] == str(tmp_path / "recon")
    # the same masks as naming the reconstruction run as the top-k baseline explicitly
    b = run_eval(_spec(tmp_path / "b", masks=("topk",), topk_ks=(10, 30), topk_from=tmp_path / "recon",
                       from_reconstruction=tmp_path / "recon", **fomm), progress=False)
    pd.testing.assert_frame_equal(a.read_frames(), b.read_frames())
    # without maps in the reconstruction run, top-k still needs --topk-from
    run_eval(_spec(tmp_path / "recon2", metrics=("l1",), kind="reconstruct", **fomm), progress=False)
    with pytest.raises(UserError, match="--topk-from"):
        run_eval(_spec(tmp_path / "c", masks=("topk",), from_reconstruction=tmp_path / "recon2", **fomm),
                 progress=False)


def test_save_visualization_strips(tmp_path, tiny_fomm):
    import imageio.v3 as iio

    config, checkpoint = tiny_fomm
    run_eval(_spec(tmp_path / "fomm", model="fomm", config=str(config), checkpoint=checkpoint, max_videos=1,
                   frame_size=(64, 64), metrics=("l1",), save_visualization=True), progress=False)
    video = open_dataset("sample", split="test", frame_size=(64, 64)).videos[0]
    viz = iio.imread(tmp_path / "fomm" / "viz" / f"{video.name}.png")
    assert viz.shape == (18 + 64 * video.num_frames, 4 * 64, 3)  # title row + one row per frame, 4 columns
    strip = iio.imread(tmp_path / "fomm" / "png" / f"{video.name}.png")
    np.testing.assert_array_equal(viz[18 + 64 * 5:18 + 64 * 6, 128:192], strip[:, 64 * 5:64 * 6])  # prediction
    np.testing.assert_array_equal(viz[18:18 + 64, 64:128], video.read_all()[0])  # driving frame 0
    run_eval(_spec(tmp_path / "copy", max_videos=1, metrics=("l1",), save_visualization=True), progress=False)
    assert iio.imread(tmp_path / "copy" / "viz" / f"{video.name}.png").shape[1] == 3 * 64  # no occlusion map


def test_sharded_eval_with_two_gloo_processes_equals_one_process(tmp_path):
    import os
    import subprocess
    import sys

    single = run_eval(_spec(tmp_path / "single", max_videos=4, masks=("salient",)), progress=False).read_frames()
    # one process does the first video, then two ranks resume and split the remaining three
    run_eval(_spec(tmp_path / "sharded", max_videos=1, masks=("salient",)), progress=False)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_port=29531", "-m",
           "animbench", "eval", "-m", "copy-source", "--dataset", "sample", "--max-videos", "4", "--batch-size",
           "7", "--masks", "salient", "--out", str(tmp_path / "sharded")]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.count("4 videos, 128 frames") == 1  # rank 0 prints the summary, once
    sharded = RunStore(tmp_path / "sharded")
    pd.testing.assert_frame_equal(sharded.read_frames(), single)
    assert pd.read_parquet(tmp_path / "sharded" / "frames.parquet").equals(single)
    assert sharded.read_manifest()["timing"]["processes"] == 2


def test_metric_path_is_recorded_and_both_paths_agree(tmp_path):
    fast = run_eval(_spec(tmp_path / "fast", max_videos=1, masks=("salient",)), progress=False)
    exact = run_eval(_spec(tmp_path / "exact", max_videos=1, masks=("salient",), exact_metrics=True), progress=False)
    assert fast.read_manifest()["protocol"]["metric_path"].startswith("fast")
    assert exact.read_manifest()["protocol"]["metric_path"].startswith("exact")
    a, b = fast.read_frames(), exact.read_frames()
    for column in ("l1", "psnr", "ssim", "psnr.salient", "ssim.not_salient"):
        np.testing.assert_allclose(a[column], b[column], atol={"l1": 1e-9, "psnr": 1e-5}.get(column[:4], 1e-6), rtol=0)
