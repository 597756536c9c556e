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


def test_body_extract_then_compare(capsys, tmp_path):
    """features extract (body-id via the CLI with a weights file; body-pose through the same folder reader)
    -> features compare: the numbers of cmp.py / cmp_with_missing.py on those pickles."""
    import shutil

    from test_reid import reid_random_state

    from animbench.data.sample import sample_root
    from animbench.features.compare import compare
    from animbench.features.extract import extract_folder
    from animbench.features.openpose import load_body_pose
    from animbench.features.pickles import read_features, write_features

    src = sorted((sample_root(64) / "test").iterdir())[:2]
    gt_dir, gen_dir = tmp_path / "gt", tmp_path / "gen"
    def copy(video, dest):  # the first 4 frames keep the test fast
        dest.mkdir(parents=True)
        for frame in sorted(video.iterdir())[:4]:
            shutil.copy(frame, dest / frame.name)

    for video in src:
        copy(video, gt_dir / video.name)
    copy(src[0], gen_dir / src[0].name)
    copy(src[0], gen_dir / src[1].name)  # the "generated" second video is the first one
    keys = json.loads((DATA / "reid" / "official_state_dict_keys.json").read_text())
    weights = tmp_path / "reid_model.pth"
    torch.save(reid_random_state(keys), weights)
    for folder in (gt_dir, gen_dir):
        code, _, err = cli(capsys, "features", "extract", folder, tmp_path / f"{folder.name}-id.pkl", "--kind",
                           "body_id", "--weights", weights)
        assert code == 0, err
    code, out, err = cli(capsys, "features", "compare", tmp_path / "gt-id.pkl", tmp_path / "gen-id.pkl",
                         "--kind", "body-id", "--json")
    numbers = json.loads(out)
    gt, gen = pd.read_pickle(tmp_path / "gt-id.pkl"), pd.read_pickle(tmp_path / "gen-id.pkl")
    # cmp.py by hand: per frame sum((a - b)^2), mean over frames; video 0 is identical, video 1 differs
    merged = gt.merge(gen, on=["file_name", "frame_number"])
    by_hand = np.mean([np.sum(np.abs(a - b).astype(float) ** 2) for a, b in zip(merged.value_x, merged.value_y)])
    assert numbers["aed"] == pytest.approx(by_hand) and numbers["aed"] > 0
    extractor = load_body_pose(seed=0, input_size=96)
    for folder in (gt_dir, gen_dir):
        write_features(extract_folder(folder, extractor, progress=False), tmp_path / f"{folder.name}-pose.pkl")
    result = compare(read_features(tmp_path / "gt-pose.pkl"), read_features(tmp_path / "gen-pose.pkl"), "body-pose")
    assert set(result) >= {"akd", "mkr", "frames_scored"}
    assert pd.read_pickle(tmp_path / "gt-pose.pkl")["value"].iloc[0].shape == (18, 2)
