"""The researcher's workflow end to end: the ablation ladder from trained rungs to an ordered, labelled Table 5,
relabelling at report time, summary as CSV/JSON, options that only make sense together."""
import json

import pandas as pd
import pytest

from conftest import call_cli

LADDER = ["prioritycut", "fomm", "cutmix", "fomm-adv", "unet"]  # deliberately not in ladder order


cli = call_cli


@pytest.fixture(scope="module")
def ladder_runs(tmp_path_factory):
    """Every rung trained 2 steps (tiny config) and evaluated with --model prioritycut on one sample video."""
    from animbench.eval.pipeline import EvalSpec, run_eval
    from animbench.train import train

    root = tmp_path_factory.mktemp("ladder")
    runs = []
    for variant in LADDER:
        train(variant, root / "train" / variant, config="tiny", max_steps=2, progress=False,
              overrides={"vgg_weights": "random"})
        run_eval(EvalSpec(model="prioritycut", checkpoint=root / "train" / variant / "checkpoints" / "final.pth.tar",
                          out=root / "eval" / variant, dataset="sample", frame_size=(64, 64), max_videos=1),
                 progress=False)
        runs.append(root / "eval" / variant)
    return runs


def test_ablation_table_from_trained_rungs(capsys, ladder_runs):
    code, out, err = cli(capsys, "report", *ladder_runs, "--table", "ablation", "--baseline", "fomm",
                         "--resamples", "100")
    assert code == 0, err
    rows = [line.split("|")[1].strip() for line in out.splitlines() if line.startswith("| ") and "Model" not in line]
    assert rows == ["FOMM", "+ Adv", "+ U-Net", "+ CutMix", "+ PriorityCut"]
    assert "better / worse than FOMM" in out


def test_relabel_at_report_time_and_on_rerun(capsys, ladder_runs, tmp_path):
    code, out, err = cli(capsys, "report", ladder_runs[0], ladder_runs[1], "--label", f"{ladder_runs[0]}=Ours",
                         "--resamples", "100")
    assert code == 0 and "| Ours |" in out and "| FOMM |" in out, (out, err)
    code, _, err = cli(capsys, "report", ladder_runs[0], "--label", "nope=X")
    assert code == 2 and "no such run" in err
    # a rerun into a finished run with --label relabels it (no number changes)
    run = ladder_runs[1]
    manifest = json.loads((run / "manifest.json").read_text())
    code, _, err = cli(capsys, "eval", "-m", "prioritycut", "--checkpoint", manifest["checkpoint"]["path"],
                       "--dataset", "sample", "--size", "64", "--max-videos", "1", "--out", run, "--label", "Mine")
    assert code == 0 and "relabelled" in err, err
    assert json.loads((run / "manifest.json").read_text())["label"] == "Mine"


def test_summary_as_csv_and_json(capsys, ladder_runs, tmp_path):
    code, out, err = cli(capsys, "report", *ladder_runs[:2], "--format", "csv", "--out", tmp_path / "s.csv",
                         "--resamples", "100")
    assert code == 0, err
    table = pd.read_csv(tmp_path / "s.csv")
    assert {"label", "column", "estimate", "low", "high", "half_width"} <= set(table.columns)
    assert len(table) == 2 * 3  # two runs x l1, psnr, ssim
    code, out, err = cli(capsys, "report", *ladder_runs[:2], "--format", "json", "--resamples", "100",
                         "--baseline", "fomm")
    payload = json.loads(out)
    assert payload["attrs"]["ci_unit"] == "video" and len(payload["rows"]) == 6
    assert any(r.get("diff") is not None for r in payload["rows"])


def test_options_that_only_make_sense_together(capsys, ladder_runs):
    code, _, err = cli(capsys, "report", *ladder_runs[:2], "--significance")
    assert code == 2 and "--baseline" in err
    code, _, err = cli(capsys, "eval", "-m", "cutmix", "--dataset", "sample", "--out", "/tmp/never-animbench")
    assert code == 2 and "--model prioritycut" in err
    code, out, err = cli(capsys, "report", *ladder_runs[:2], "--ci-method", "bca", "--resamples", "200")
    assert code == 0 and "bca bootstrap" in out


def test_train_size_picks_the_frame_shape_and_inputs_are_checked_before_downloads(capsys, tmp_path, monkeypatch):
    import torch

    code, _, err = cli(capsys, "train", "fomm", "--dataset", "sample", "--size", "256", "--max-steps", "1",
                       "--vgg-weights", "random", "--out", tmp_path / "t256")
    assert code == 0, err
    payload = torch.load(tmp_path / "t256" / "checkpoints" / "final.pth.tar", weights_only=True)
    assert payload["animbench"]["model_config"]["dataset_params"]["frame_shape"][:2] == [256, 256]
    # no dataset at the preset's root: said before any VGG download is attempted
    import animbench.train.vgg as vgg

    monkeypatch.setattr(vgg.torch.hub, "load_state_dict_from_url",
                        lambda *a, **k: (_ for _ in ()).throw(AssertionError("download attempted")))
    monkeypatch.chdir(tmp_path)
    code, _, err = cli(capsys, "train", "fomm", "--dataset", "vox", "--vgg-weights", "torchvision",
                       "--out", tmp_path / "vox")
    assert code == 2 and "data/vox-png" in err and "download attempted" not in err, err
