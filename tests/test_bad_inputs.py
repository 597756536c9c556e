"""The bad-input and fault corpus: every user mistake is one line on stderr + exit 2, never a traceback, never a
plausible wrong number, never a result directory that looks complete.

Each case runs the real CLI entry point in-process (`animbench.cli.main`) on a one-video copy of the 64² sample
dataset and a tiny FOMM.
"""
import errno
import os
import shutil
import stat
from pathlib import Path

import numpy as np
import pytest
import torch

from animbench.cli import main
from conftest import write_tiny_fomm


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """A one-test-video, one-train-video dataset, a second test set with the same names, a tiny FOMM."""
    from animbench.data.sample import sample_root

    root = tmp_path_factory.mktemp("corpus")
    src = sample_root(64)
    ds = root / "ds"
    for split in ("test", "train"):
        first = sorted((src / split).iterdir())[0]
        shutil.copytree(first, ds / split / first.name)
    other = root / "other"  # same video names and frame counts, other content
    shutil.copytree(ds, other)
    import imageio.v3 as iio

    for png in sorted((other / "test").rglob("*.png")):
        iio.imwrite(png, 255 - iio.imread(png))
    config, checkpoint = write_tiny_fomm(root / "model")
    return {"root": root, "ds": ds, "other": other, "config": config, "checkpoint": checkpoint,
            "video": next((ds / "test").iterdir()).name}


def cli(capsys, *args):
    """(exit code, stdout, stderr lines) of one in-process CLI call."""
    capsys.readouterr()
    with pytest.raises(SystemExit) as e:
        main([str(a) for a in args])
    out, err = capsys.readouterr()
    return e.value.code, out, [l for l in err.replace("\r", "\n").splitlines() if l.strip()]


def refused(capsys, *args, names=()):
    """Assert the call is refused with one error line naming `names`; return that line."""
    code, _, err = cli(capsys, *args)
    assert code == 2, (code, err)
    assert not any("Traceback" in l for l in err), err
    errors = [l for l in err if l.startswith("animbench: error:")]
    assert len(errors) == 1 and errors[0] == err[-1], err
    for name in names:
        assert str(name) in errors[0], (name, errors[0])
    return errors[0]


def one_line(capsys, *args, names=()):
    """Refused before any work started: stderr is exactly one line."""
    code, _, err = cli(capsys, *args)
    assert code == 2 and len(err) == 1 and "Traceback" not in err[0] and err[0].startswith("animbench: error:"), err
    for name in names:
        assert str(name) in err[0], (name, err[0])
    return err[0]


def eval_args(data, out, *extra):
    return ["eval", "-m", "copy-source", "--data-root", data["ds"], "--size", "64", "--out", out, *extra]


def looks_complete(run: Path) -> bool:
    return (run / "frames.parquet").exists()


# ---------------------------------------------------------------------------------------- silent wrong results
def test_model_that_needs_weights_refuses_without_checkpoint(capsys, data, tmp_path):
    out = tmp_path / "run"
    line = one_line(capsys, "eval", "-m", "fomm", "--dataset", "sample", "--out", out, names=["--checkpoint",
                                                                                               "--random-weights"])
    assert "meaningless" in line and not out.exists()
    # a deliberate random-weights run is labelled as such
    code, _, err = cli(capsys, "eval", "-m", "fomm", "--config", data["config"], "--random-weights",
                       "--data-root", data["ds"], "--size", "64", "--out", out)
    assert code == 0, err
    import json

    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["label"] == "fomm (random weights)" and manifest["weights"].startswith("random")


def test_from_reconstruction_of_another_test_set_is_refused(capsys, data, tmp_path):
    recon = tmp_path / "recon"
    code, _, err = cli(capsys, "reconstruct", "-m", "copy-source", "--data-root", data["other"], "--size", "64",
                       "--out", recon)
    assert code == 0, err
    out = tmp_path / "eval"
    one_line(capsys, *eval_args(data, out, "--from-reconstruction", recon), names=["--from-reconstruction",
                                                                                   "another test set"])
    assert not looks_complete(out)


@pytest.mark.parametrize("value", ["0", "-1"])
def test_max_videos_must_be_positive(capsys, data, tmp_path, value):
    one_line(capsys, *eval_args(data, tmp_path / "run", "--max-videos", value), names=["--max-videos"])
    assert not (tmp_path / "run").exists()


def test_report_refuses_runs_over_different_test_sets(capsys, data, tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    assert cli(capsys, *eval_args(data, a, "--label", "on ds"))[0] == 0
    assert cli(capsys, "eval", "-m", "copy-source", "--data-root", data["other"], "--size", "64", "--out", b,
               "--label", "on other")[0] == 0
    one_line(capsys, "report", a, b, names=["different test sets", "--allow-mixed-datasets"])
    code, out, err = cli(capsys, "report", a, b, "--allow-mixed-datasets", "--resamples", "100")
    assert code == 0, err
    assert "MIXED test sets" in out and "| on ds [ds " in out and "| on other [other " in out


def test_nan_weights_stop_the_run(capsys, data, tmp_path):
    payload = torch.load(data["checkpoint"], weights_only=True)
    payload["generator"] = {k: (v.fill_(float("nan")) if v.is_floating_point() else v)
                            for k, v in payload["generator"].items()}
    broken = tmp_path / "nan.pth.tar"
    torch.save(payload, broken)
    out = tmp_path / "run"
    line = refused(capsys, "eval", "-m", "fomm", "--config", data["config"], "--checkpoint", broken,
                   "--data-root", data["ds"], "--size", "64", "--out", out, names=[data["video"], "frame 0", broken])
    assert "NaN" in line and not looks_complete(out) and not list(out.glob("parts/*"))


# ---------------------------------------------------------------------------------------- filesystem errors
def test_out_under_a_regular_file(capsys, data, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    out = blocker / "run"
    one_line(capsys, *eval_args(data, out), names=[out, "regular file"])
    one_line(capsys, "reconstruct", "-m", "copy-source", "--data-root", data["ds"], "--size", "64", "--out", out,
             names=[out])
    one_line(capsys, "train", "fomm", "--dataset", "sample", "--out", out, "--max-steps", "1", names=[out])
    one_line(capsys, "data", "sample", "--out", out, names=[out])
    one_line(capsys, "demo", "--out", out, names=[out])
    run = tmp_path / "run"
    assert cli(capsys, *eval_args(data, run))[0] == 0
    one_line(capsys, "report", run, "--out", out / "t.md", names=["--out"])
    one_line(capsys, "report", run, "--plots", out, names=["--plots"])


def _fake_mkstemp(kind):
    def fake(prefix="", suffix="", dir=None):
        if kind == "full":  # writes to /dev/full fail with ENOSPC, like a full disk
            return os.open("/dev/full", os.O_WRONLY), os.path.join(dir, f"{prefix}x{suffix}")
        raise PermissionError(errno.EACCES, "Permission denied", os.path.join(dir, f"{prefix}x{suffix}"))
    return fake


@pytest.mark.parametrize("kind, words", [("full", "no space left"), ("readonly", "permission denied")])
def test_disk_full_and_read_only_are_one_line(capsys, data, tmp_path, monkeypatch, kind, words):
    import animbench.results.store as store

    monkeypatch.setattr(store.tempfile, "mkstemp", _fake_mkstemp(kind))
    out = tmp_path / "run"
    line = refused(capsys, *eval_args(data, out), names=[out / "manifest.json", words])
    assert not looks_complete(out)
    run = tmp_path / "report-run"
    monkeypatch.undo()
    assert cli(capsys, *eval_args(data, run))[0] == 0
    monkeypatch.setattr(store.tempfile, "mkstemp", _fake_mkstemp(kind))
    line = refused(capsys, "report", run, "--out", tmp_path / "table.md", "--resamples", "100",
                   names=["table.md", words])
    assert ".tmp" not in line and not (tmp_path / "table.md").exists()


# ---------------------------------------------------------------------------------------- options
@pytest.mark.parametrize("device", ["gpu0", "mps", "meta", "cuda:7"])
def test_bad_devices(capsys, data, tmp_path, device):
    one_line(capsys, *eval_args(data, tmp_path / "run", "--device", device), names=["--device", device])
    one_line(capsys, "train", "fomm", "--dataset", "sample", "--out", tmp_path / "t", "--device", device,
             names=["--device"])
    assert not (tmp_path / "run").exists() and not (tmp_path / "t").exists()


def test_bad_topk_values(capsys, data, tmp_path):
    one_line(capsys, "eval", "-m", "fomm", "--checkpoint", data["checkpoint"], "--config", data["config"],
             "--data-root", data["ds"], "--size", "64", "--out", tmp_path / "run", "--masks", "topk",
             "--topk", "0,150", names=["--topk"])
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("args, option", [
    (["report", "RUN", "--resamples", "0"], "--resamples"),
    (["train", "fomm", "--dataset", "sample", "--out", "OUT", "--batch-size", "0"], "--batch-size"),
    (["train", "fomm", "--dataset", "sample", "--out", "OUT", "--max-steps", "0"], "--max-steps"),
    (["train", "fomm", "--dataset", "sample", "--out", "OUT", "--epochs", "0"], "--epochs"),
    (["demo", "--out", "OUT", "--steps", "0"], "--steps"),
    (["eval", "-m", "copy-source", "--dataset", "sample", "--out", "OUT", "--batch-size", "0"], "--batch-size"),
])
def test_numeric_options_checked_at_parse_time(capsys, tmp_path, args, option):
    args = [str(tmp_path / "OUT") if a == "OUT" else str(tmp_path) if a == "RUN" else a for a in args]
    one_line(capsys, *args, names=[option])
    assert not (tmp_path / "OUT").exists()


def test_vgg_weights_that_are_not_a_checkpoint(capsys, tmp_path):
    junk = tmp_path / "vgg.pth"
    junk.write_bytes(b"not a checkpoint at all")
    out = tmp_path / "t"
    refused(capsys, "train", "fomm", "--dataset", "sample", "--out", out, "--max-steps", "1", "--vgg-weights", junk,
            names=["--vgg-weights", junk])
    assert not (out / "checkpoints").exists()


def test_salient_dir_without_folder_backend(capsys, data, tmp_path):
    one_line(capsys, *eval_args(data, tmp_path / "run", "--salient-dir", tmp_path), names=["--salient-dir"])


# ---------------------------------------------------------------------------------------- corrupt files
def test_truncated_part_in_report_and_on_resume(capsys, data, tmp_path):
    run = tmp_path / "run"
    assert cli(capsys, *eval_args(data, run))[0] == 0
    part = next((run / "parts").glob("*.parquet"))
    part.write_bytes(part.read_bytes()[:40])
    one_line(capsys, "report", run, names=[part, "delete this file"])
    (run / "frames.parquet").unlink()
    one_line(capsys, *eval_args(data, run), names=[part, "delete this file"])
    part.unlink()  # the remedy works: the rerun recomputes that video
    assert cli(capsys, *eval_args(data, run))[0] == 0 and looks_complete(run)


def test_corrupt_salient_cache_is_recomputed(capsys, data, tmp_path, monkeypatch):
    monkeypatch.setenv("ANIMBENCH_CACHE", str(tmp_path / "cache"))
    first, second = tmp_path / "a", tmp_path / "b"
    assert cli(capsys, *eval_args(data, first, "--masks", "salient"))[0] == 0
    cached = next((tmp_path / "cache").rglob("*.npy"))
    cached.write_bytes(b"\x93NUMPY garbage")
    code, _, err = cli(capsys, *eval_args(data, second, "--masks", "salient"))
    assert code == 0 and any("recomputing" in l and str(cached) in l for l in err), err
    import pandas as pd

    a, b = pd.read_parquet(first / "frames.parquet"), pd.read_parquet(second / "frames.parquet")
    np.testing.assert_array_equal(a["psnr.salient"], b["psnr.salient"])


def test_corrupt_baseline_maps(capsys, data, tmp_path):
    base = tmp_path / "base"
    assert cli(capsys, "eval", "-m", "fomm", "--checkpoint", data["checkpoint"], "--config", data["config"],
               "--data-root", data["ds"], "--size", "64", "--out", base, "--save-maps", "--metrics", "l1")[0] == 0
    maps = next((base / "maps").glob("*.npz"))
    maps.write_bytes(maps.read_bytes()[:100])
    out = tmp_path / "run"
    refused(capsys, *eval_args(data, out, "--masks", "topk", "--topk-from", base), names=[maps, "--save-maps"])
    assert not looks_complete(out)


def test_truncated_training_checkpoint_and_torn_log(capsys, tmp_path):
    out = tmp_path / "t"
    args = ["train", "fomm", "--dataset", "sample", "--out", out, "--vgg-weights", "random"]
    assert cli(capsys, *args, "--max-steps", "1")[0] == 0
    log = out / "losses.jsonl"
    log.write_text(log.read_text() + '{"step": 1, "los')  # killed mid-write
    last = out / "checkpoints" / "last.pth.tar"
    good = last.read_bytes()
    last.write_bytes(good[: len(good) // 2])
    one_line(capsys, *args, "--max-steps", "2", "--resume", names=[last, "truncated"])
    last.write_bytes(good)
    code, _, err = cli(capsys, *args, "--max-steps", "2", "--resume")
    assert code == 0, err
    import json

    steps = [json.loads(l)["step"] for l in log.read_text().splitlines()]
    assert steps == [0, 1]


def test_code_running_pickle_is_refused_and_named(capsys, data, tmp_path):
    marker = tmp_path / "ran"

    class Evil:
        def __reduce__(self):
            return os.system, (f"touch {marker}",)

    evil = tmp_path / "evil.pth.tar"
    torch.save({"generator": Evil()}, evil, _use_new_zipfile_serialization=False)
    one_line(capsys, "eval", "-m", "fomm", "--checkpoint", evil, "--dataset", "sample", "--out", tmp_path / "run",
             names=[evil, "--trust-checkpoint", "run"])
    assert not marker.exists()


# ---------------------------------------------------------------------------------------- smaller, same spirit
def test_failed_first_attempt_does_not_block_the_corrected_rerun(capsys, data, tmp_path):
    out = tmp_path / "run"
    refused(capsys, *eval_args(data, out, "--masks", "topk", "--topk-from", tmp_path / "no-baseline"),
            names=["--save-maps"])
    code, _, err = cli(capsys, *eval_args(data, out))
    assert code == 0, err


def test_results_get_normal_permissions(capsys, data, tmp_path):
    old = os.umask(0o022)
    try:
        out = tmp_path / "run"
        assert cli(capsys, *eval_args(data, out))[0] == 0
    finally:
        os.umask(old)
    for path in [out / "manifest.json", out / "frames.parquet", *out.glob("png/*.png")]:
        assert stat.S_IMODE(path.stat().st_mode) == 0o644, path


def test_pipe_in_label_is_escaped(capsys, data, tmp_path):
    out = tmp_path / "run"
    assert cli(capsys, *eval_args(data, out, "--label", "A|B"))[0] == 0
    code, text, _ = cli(capsys, "report", out, "--resamples", "100")
    assert code == 0 and "| A\\|B |" in text


def test_out_inside_the_test_split_is_refused(capsys, data):
    out = data["ds"] / "test" / "results"
    one_line(capsys, *eval_args(data, out), names=["inside the dataset"])
    assert not out.exists()


def test_symlink_loop_is_reported(capsys, data, tmp_path):
    ds = tmp_path / "ds"
    shutil.copytree(data["ds"], ds)
    (ds / "test" / "loop").symlink_to(ds / "test" / "loop")
    one_line(capsys, "eval", "-m", "copy-source", "--data-root", ds, "--size", "64", "--out", tmp_path / "run",
             names=["loop", "symbolic link loop"])


def test_data_check_on_eval_only_dataset(capsys, data, tmp_path):
    ds = tmp_path / "ds"
    shutil.copytree(data["ds"] / "test", ds / "test")
    code, out, err = cli(capsys, "data", "check", ds, "--size", "64")
    assert code == 0 and any("train" in l and "absent" in l for l in err), (code, err)
    code, out, err = cli(capsys, "data", "check", ds, "--size", "64", "--for-training")
    assert code == 1 and any("missing split folder" in l for l in err)


def test_psnr_rule_for_identical_frames(capsys, data, tmp_path):
    import pandas as pd

    cap, skip = tmp_path / "cap", tmp_path / "skip"
    assert cli(capsys, *eval_args(data, cap, "--label", "capped"))[0] == 0
    assert cli(capsys, *eval_args(data, skip, "--psnr-identical", "skip", "--label", "skipped"))[0] == 0
    a, b = pd.read_parquet(cap / "frames.parquet"), pd.read_parquet(skip / "frames.parquet")
    assert a["psnr"].iloc[0] == 100.0 and np.isnan(b["psnr"].iloc[0])  # frame 0 of copy-source is exact
    np.testing.assert_array_equal(a["psnr"].iloc[1:], b["psnr"].iloc[1:])
    code, text, _ = cli(capsys, "report", skip, "--resamples", "100")
    assert code == 0 and "identical to the ground truth: left out" in text
    code, text, _ = cli(capsys, "report", cap, skip, "--resamples", "100")
    assert "capped at 100 dB / left out (runs differ!)" in text
