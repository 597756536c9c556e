"""`animbench features extract|compare`: drop-ins for pose-evaluation's extract.py and cmp scripts."""
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from conftest import call_cli

DATA = Path(__file__).parent / "data"


cli = call_cli


@pytest.mark.parametrize("kind, keys", [("face_pose", {"Average difference": "akd"}),
                                        ("face_id", {"Average difference": "aed"}),
                                        ("body_pose", {"Average difference": "akd", "Missing count": "mkr"}),
                                        ("body_id", {"Average difference": "aed"})])
def test_compare_prints_the_numbers_of_the_official_scripts(capsys, kind, keys):
    expected = json.loads((DATA / "pose_evaluation" / "upstream_expected.json").read_text())
    printed = expected["runs"]["modern"]["cases"][kind]["values"]
    code, out, err = cli(capsys, "features", "compare", DATA / "pose_evaluation" / f"{kind}_gt.pkl",
                         DATA / "pose_evaluation" / f"{kind}_gen.pkl", "--kind", kind, "--json")
    assert code == 0, err
    numbers = json.loads(out)
    for upstream_name, ours in keys.items():
        assert numbers[ours] == pytest.approx(printed[upstream_name], rel=1e-12)
    assert numbers["frames_scored"] > 0


def test_compare_errors_are_one_line(capsys, tmp_path):
    bad = tmp_path / "bad.pkl"
    bad.write_bytes(b"not a pickle")
    code, _, err = cli(capsys, "features", "compare", bad, DATA / "pose_evaluation" / "face_id_gen.pkl",
                       "--kind", "face-id")
    assert code == 2 and len(err.strip().splitlines()) == 1 and str(bad) in err
    code, _, err = cli(capsys, "features", "compare", tmp_path / "nope.pkl", bad, "--kind", "face-id")
    assert code == 2 and "nope.pkl" in err


@pytest.fixture
def openface_weights(tmp_path):
    from test_openface import openface_random_state

    keys = json.loads((DATA / "openface" / "official_state_dict_keys.json").read_text())
    path = tmp_path / "openface.pth"
    torch.save(openface_random_state(keys), path, _use_new_zipfile_serialization=False)
    return path


def test_extract_face_id_writes_a_pose_evaluation_table(capsys, tmp_path, openface_weights):
    import shutil

    from animbench.data.sample import sample_root
    from animbench.features.face_id import load_face_id
    from animbench.features.extract import read_entry

    src = sorted((sample_root(64) / "test").iterdir())[0]
    videos = tmp_path / "videos"
    shutil.copytree(src, videos / src.name)  # a frame folder
    import imageio.v3 as iio

    frames = read_entry(src)
    iio.imwrite(videos / "strip.png", np.concatenate(list(frames[:5]), axis=1))  # a strip of 5 frames
    out = tmp_path / "gt.pkl"
    code, stdout, err = cli(capsys, "features", "extract", videos, out, "--kind", "face_id", "--weights",
                            openface_weights, "--image-shape", "64,64")
    assert code == 0, err
    table = pd.read_pickle(out)  # what pose-evaluation's cmp.py does
    assert list(table.columns) == ["file_name", "frame_number", "value"]
    assert sorted(set(table["file_name"])) == sorted([src.name, "strip.png"])
    assert len(table) == len(frames) + 5 and table["value"].iloc[0].shape == (1, 128)
    # the same embeddings as the extractor called directly; the strip's frames equal the folder's
    direct = load_face_id(openface_weights).extract(frames[:2])
    mine = table[table.file_name == src.name].sort_values("frame_number")["value"].tolist()
    np.testing.assert_allclose(mine[1], direct[1], atol=1e-6)  # batches of 32 vs 2 round differently
    strip = table[table.file_name == "strip.png"].sort_values("frame_number")["value"].tolist()
    np.testing.assert_allclose(strip[1], mine[1], atol=1e-6)
    # comparing a table with itself: AED 0 on every frame
    code, stdout, err = cli(capsys, "features", "compare", out, out, "--kind", "face-id", "--json")
    assert json.loads(stdout)["aed"] == 0.0


def test_extract_bad_inputs(capsys, tmp_path, openface_weights):
    code, _, err = cli(capsys, "features", "extract", tmp_path / "none", tmp_path / "o.pkl", "--kind", "face-id")
    assert code == 2 and "no such directory" in err
    videos = tmp_path / "v"
    videos.mkdir()
    import imageio.v3 as iio

    iio.imwrite(videos / "s.png", np.zeros((64, 100, 3), np.uint8))
    code, _, err = cli(capsys, "features", "extract", videos, tmp_path / "o.pkl", "--kind", "face-id",
                       "--weights", openface_weights, "--image-shape", "64,64")
    assert code == 2 and "s.png" in err and "--image-shape" in err and not (tmp_path / "o.pkl").exists()
    code, _, err = cli(capsys, "features", "extract", videos, tmp_path / "o.pkl", "--kind", "face-idd")
    assert code == 2 and "Traceback" not in err
