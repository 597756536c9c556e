"""pose-evaluation's comparison arithmetic (AKD / MKR / AED) and its feature pickles.

Formulas are checked on hand-made tables with hand-computed answers; parity against the numbers that
pose-evaluation's unmodified cmp scripts printed on the fixture pickles in tests/data/pose_evaluation
(see the README there); pickle I/O against pickles written by pandas 0.23.4 to 3.x.
"""
import io
import json
import math
import os
import pickle
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from animbench.errors import UserError
from animbench.features import (compare, compare_body_pose, compare_embeddings, compare_face_pose, compare_result,
                                count_missing, read_features, write_features)
from animbench.features.pickles import features_pickle_bytes

DATA = Path(__file__).parent / "data" / "pose_evaluation"
EXPECTED = json.loads((DATA / "upstream_expected.json").read_text())


def table(rows):
    return pd.DataFrame({"file_name": [r[0] for r in rows], "frame_number": [r[1] for r in rows],
                         "value": pd.Series([r[2] for r in rows], dtype=object)})


def face(offset=0, at=None):
    """A (68, 2) int32 landmark array of zeros, plus ``offset`` everywhere or only at index ``at``."""
    a = np.zeros((68, 2), np.int32)
    if at is None:
        a += offset
    else:
        a[at] = offset
    return a


def body(present, coords=10.0):
    """An (18, 2) float64 joint array: -1 except the joints in ``present`` (set to ``coords``)."""
    a = -np.ones((18, 2))
    for j in present:
        a[j] = coords
    return a


def one_line_user_error(excinfo, *needles):
    message = str(excinfo.value)
    assert "\n" not in message
    for needle in needles:
        assert needle in message, message
    return message


# --- face AKD (cmp_kp.py) ---------------------------------------------------------------------------

def test_face_akd_per_frame_l1_mean_gen_none_skipped_gt_none_counted():
    gt = table([("v.mp4", 0, face()), ("v.mp4", 1, face()), ("v.mp4", 2, face()), ("v.mp4", 3, None),
                ("w.mp4", 0, face()), ("w.mp4", 1, None)])
    gen = table([("w.mp4.png", 1, None),  # both None: upstream skips it (generated checked first)
                 ("v.mp4.png", 2, None),  # generated None: skipped
                 ("v.mp4.png", 0, face(2)),  # |0 - 2| everywhere -> 2.0
                 ("v.mp4.png", 3, face(5)),  # GT None: skipped and counted (upstream would crash)
                 ("w.mp4.png", 0, face(-68, at=(0, 1))),  # one coordinate off by 68 -> 68 / 136 = 0.5
                 ("v.mp4.png", 1, face(1, at=(3, 0)))])  # 1 / 136
    res = compare_face_pose(gt, gen)
    assert res.akd == pytest.approx((2.0 + 1 / 136 + 0.5) / 3, rel=1e-15)
    assert (res.frames_scored, res.frames_missing_generated, res.frames_missing_gt) == (3, 2, 2)
    f = res.frames
    assert list(f["file_name"]) == ["v.mp4"] * 4 + ["w.mp4"] * 2
    assert list(f["file_name_generated"]) == ["v.mp4.png"] * 4 + ["w.mp4.png"] * 2
    assert list(f["frame_number"]) == [0, 1, 2, 3, 0, 1]
    assert list(f["scored"]) == [True, True, False, False, True, False]
    assert list(f["gen_missing"]) == [False, False, True, False, False, True]
    assert list(f["gt_missing"]) == [False, False, False, True, False, True]
    assert f["akd"].iloc[0] == 2.0 and math.isnan(f["akd"].iloc[2])
    v = res.videos.set_index("file_name")
    assert v.loc["v.mp4", "akd"] == pytest.approx((2.0 + 1 / 136) / 2)
    assert v.loc["w.mp4", "akd"] == 0.5 and v.loc["w.mp4", "frames_scored"] == 1
    assert compare(gt, gen, "face_pose") == {"akd": res.akd, "frames_scored": 3, "frames_missing_generated": 2,
                                             "frames_missing_gt": 2}


def test_face_akd_is_l1_not_euclidean():
    gt = table([("v.mp4", 0, face())])
    gen = table([("v.mp4.png", 0, face(at=0, offset=np.array([3, 4], np.int32)))])
    # one landmark moved by (3, 4): the Euclidean distance would be 5 / 68, the per-coordinate L1 is 7 / 136
    assert compare_face_pose(gt, gen).akd == pytest.approx(7 / 136, rel=1e-15)


def test_face_akd_extra_generated_rows_after_the_ground_truth_are_ignored_like_cmp_kp():
    gt = table([("a.mp4", 0, face())])
    gen = table([("z.mp4.png", 0, face(9)), ("a.mp4.png", 0, face(1))])
    res = compare_face_pose(gt, gen)
    assert res.akd == 1.0 and res.rows_unmatched_generated == 1
    gen_first = table([("0.mp4.png", 0, face(9)), ("a.mp4.png", 0, face(1))])  # sorts before: misaligned
    with pytest.raises(UserError) as excinfo:
        compare_face_pose(gt, gen_first)
    one_line_user_error(excinfo, "'0.mp4.png'", "'a.mp4'", "stem")


def test_no_scored_frame_gives_none_and_json_without_nan():
    gt = table([("v.mp4", 0, face())])
    gen = table([("v.mp4.png", 0, None)])
    out = compare(gt, gen, "face-pose")
    assert out == {"akd": None, "frames_scored": 0, "frames_missing_generated": 1, "frames_missing_gt": 0}
    json.dumps(out, allow_nan=False)


# --- matching rules shared by the three scripts ---------------------------------------------------------

def test_rows_pair_by_stem_before_the_first_dot_and_frame_number():
    gt = table([("id1.a.mp4", 0, face()), ("id2.mp4", 0, face())])
    gen = table([("id2.gif", 0, face(3)), ("id1.png", 0, face(1))])  # stems 'id1', 'id2' agree
    assert compare_face_pose(gt, gen).akd == 2.0
    with pytest.raises(UserError) as excinfo:
        compare_face_pose(gt, table([("id1.png", 0, face()), ("id2.png", 1, face())]))
    one_line_user_error(excinfo, "frame 1", "frame 0")


def test_rows_are_sorted_on_the_full_file_name_before_pairing_like_upstream():
    # 'a' < 'a-b' but 'a-b.png' < 'a.png': the positional walk pairs 'a' with 'a-b.png' and upstream's
    # assertion fails; we stop with a one-line error rather than match by key
    gt = table([("a", 0, face()), ("a-b", 0, face())])
    gen = table([("a.png", 0, face()), ("a-b.png", 0, face())])
    with pytest.raises(UserError) as excinfo:
        compare_face_pose(gt, gen)
    one_line_user_error(excinfo, "'a-b.png'", "'a'")


def test_frame_numbers_sort_numerically_within_a_video():
    gt = table([("v.mp4", 10, face()), ("v.mp4", 9, face()), ("v.mp4", 2, face())])
    gen = table([("v.mp4.png", 2, face(1)), ("v.mp4.png", 10, face(3)), ("v.mp4.png", 9, face(2))])
    res = compare_face_pose(gt, gen)
    assert list(res.frames["frame_number"]) == [2, 9, 10] and list(res.frames["akd"]) == [1.0, 2.0, 3.0]


@pytest.mark.parametrize("kind", ["face-id", "body-pose", "body-id"])
def test_cmp_and_cmp_with_missing_require_the_same_number_of_rows(kind):
    value = body([0]) if kind == "body-pose" else np.zeros(4, np.float32)
    gt = table([("a.mp4", 0, value), ("a.mp4", 1, value)])
    with pytest.raises(UserError) as excinfo:
        compare(gt, table([("a.mp4.png", 0, value)]), kind)
    one_line_user_error(excinfo, "1 frames", "has 2")
    longer = table([("a.mp4.png", 0, value), ("a.mp4.png", 1, value), ("z.mp4.png", 0, value)])
    with pytest.raises(UserError) as excinfo:  # unlike cmp_kp.py, extra trailing rows are refused too
        compare(gt, longer, kind)
    one_line_user_error(excinfo, "3 frames", "has 2")


def test_duplicate_frames_are_refused():
    gt = table([("a.mp4", 0, face()), ("a.mp4", 0, face())])
    with pytest.raises(UserError) as excinfo:
        compare_face_pose(gt, gt)
    one_line_user_error(excinfo, "'a.mp4' frame 0", "more than once")


def test_mismatched_value_shapes_are_a_user_error():
    gt = table([("a.mp4", 0, np.zeros(128, np.float32))])
    gen = table([("a.mp4.png", 0, np.zeros(64, np.float32))])
    with pytest.raises(UserError) as excinfo:
        compare(gt, gen, "face-id")
    one_line_user_error(excinfo, "(64,)", "(128,)")


# --- AED (cmp.py) ----------------------------------------------------------------------------------

def test_aed_is_the_squared_euclidean_distance_averaged_over_frames():
    gt = table([("a.mp4", 0, np.array([0, 0, 0], np.float32)), ("a.mp4", 1, np.array([1, 1, 1], np.float32)),
                ("b.mp4", 0, np.array([0, 0, 0], np.float32)), ("b.mp4", 1, None)])
    gen = table([("b.mp4.png", 1, np.zeros(3, np.float32)),  # GT None: skipped and counted
                 ("a.mp4.png", 1, np.array([1, 1, 3], np.float32)),  # 2^2 = 4
                 ("b.mp4.png", 0, None),  # generated None: skipped and counted
                 ("a.mp4.png", 0, np.array([3, 4, 0], np.float32))])  # 3^2 + 4^2 = 25 (not 5)
    res = compare_embeddings(gt, gen)
    assert res.aed == 14.5
    assert (res.frames_scored, res.frames_missing_generated, res.frames_missing_gt) == (2, 1, 1)
    assert compare(gt, gen, "body_id") == {"aed": 14.5, "frames_scored": 2, "frames_missing_generated": 1,
                                           "frames_missing_gt": 1}
    assert res.videos.set_index("file_name").loc["a.mp4", "aed"] == 14.5


def test_aed_subtracts_in_the_arrays_own_dtype():
    # float32 inputs: upstream subtracts in float32, then squares in float64
    a, b = np.float32(2.0 ** 25), np.float32(1.0)  # a - b needs 25 bits: float32 rounds it back to 2^25
    gt = table([("a.mp4", 0, np.array([a], np.float32))])
    gen = table([("a.mp4.png", 0, np.array([b], np.float32))])
    expected = float(np.float64(np.float32(a - b)) ** 2)
    assert expected != (float(a) - float(b)) ** 2
    assert compare(gt, gen, "face-id")["aed"] == expected


# --- body AKD / MKR (cmp_with_missing.py) ---------------------------------------------------------------

def test_body_akd_is_averaged_per_frame_then_over_frames():
    gt = table([("a.mp4", 0, body(range(18), 0.0)), ("a.mp4", 1, body(range(18), 0.0))])
    gen = table([("a.mp4.png", 0, body([5], 10.0)),  # one joint in common, off by 10 -> AKD_t 10
                 ("a.mp4.png", 1, body(range(18), 0.0))])  # 18 joints, exact -> AKD_t 0
    res = compare_body_pose(gt, gen)
    assert res.akd == 5.0  # pooled over joints it would be 20 / 38
    assert res.mkr == pytest.approx((17 / 18 + 0) / 2, rel=1e-15)


def test_body_missing_is_decided_by_x_only_and_mkr_counts_lost_gt_joints():
    g0 = body(range(10), 0.0)  # 10 joints in GT
    p0 = body(list(range(5)) + [12, 13], 4.0)  # keeps 5 of them, adds 2 GT lacks -> MKR_t 5 / 10
    g1 = body(range(18), 0.0)
    g1[3] = (-1, 7)  # x == -1: missing, even though y is not
    g1[4] = (7, -1)  # y == -1 only: present, and its y difference counts
    p1 = body(range(18), 0.0)
    p1[4] = (7, 1)
    g2 = body([])  # GT has no joint: no MKR term, no AKD term
    p2 = body(range(18), 1.0)
    gt = table([("a.mp4", 0, g0), ("a.mp4", 1, g1), ("a.mp4", 2, g2)])
    gen = table([("a.mp4.png", 0, p0), ("a.mp4.png", 1, p1), ("a.mp4.png", 2, p2)])
    res = compare_body_pose(gt, gen)
    # frame 0: 5 joints x 2 coords off by 4 -> 4; frame 1: 17 joints, one coordinate off by 2 -> 2 / 34
    assert res.akd == pytest.approx((4.0 + 2 / 34) / 2, rel=1e-15)
    assert res.mkr == pytest.approx((5 / 10 + 0 / 17) / 2, rel=1e-15)  # denominator 18 - missing GT joints
    assert (res.frames_scored, res.frames_scored_mkr, res.frames_missing_gt, res.frames_missing_generated) == \
        (2, 2, 1, 0)
    f = res.frames
    assert list(f["joints_gt"]) == [10, 17, 0] and list(f["joints_lost"]) == [5, 0, 0]
    assert list(f["joints_both"]) == [5, 17, 0]


def test_body_nothing_detected_counts_every_gt_joint_as_lost_and_none_means_all_missing():
    gt = table([("a.mp4", 0, body(range(6))), ("a.mp4", 1, body(range(6))), ("a.mp4", 2, None),
                ("a.mp4", 3, body(range(18)))])
    gen = table([("a.mp4.png", 0, body([])), ("a.mp4.png", 1, None), ("a.mp4.png", 2, body([1])),
                 ("a.mp4.png", 3, body(range(18), 12.0))])
    res = compare_body_pose(gt, gen)
    assert res.mkr == pytest.approx((1 + 1 + 0) / 3, rel=1e-15)  # the GT-None frame has no MKR term
    assert res.akd == 2.0 and res.frames_scored == 1
    assert (res.frames_missing_generated, res.frames_missing_gt, res.frames_scored_mkr) == (2, 1, 3)
    out = compare(gt, gen, "body-pose")
    assert out == {"akd": 2.0, "mkr": res.mkr, "frames_scored": 1, "frames_missing_generated": 2,
                   "frames_missing_gt": 1, "frames_scored_mkr": 3}
    json.dumps(out, allow_nan=False)


def test_body_values_must_be_18_joint_arrays():
    gt = table([("a.mp4", 0, np.zeros((17, 2)))])
    with pytest.raises(UserError) as excinfo:
        compare_body_pose(gt, table([("a.mp4.png", 0, np.zeros((17, 2)))]))
    one_line_user_error(excinfo, "(17, 2)", "(18, 2)")


def test_count_missing_pools_frames_below_32_and_none_is_18():
    rows = [("b.mp4", 0, body(range(15))), ("b.mp4", 31, None), ("b.mp4", 32, body([])),
            ("a.mp4", 5, body(range(18))), ("a.mp4", 40, body([]))]
    assert count_missing(table(rows)) == pytest.approx((3 + 18 + 0) / 3, rel=1e-15)
    assert count_missing(table([("a.mp4", 32, body([]))])) is None


def test_compare_kinds_and_unknown_kind():
    gt = table([("a.mp4", 0, np.ones(2, np.float32))])
    gen = table([("a.mp4.png", 0, np.zeros(2, np.float32))])
    for kind in ("face-id", "face_id", "FACE-ID", "body-id", "body_id"):
        assert compare(gt, gen, kind)["aed"] == 2.0
    assert compare_result(gt, gen, "body_id").kind == "body-id"
    with pytest.raises(UserError) as excinfo:
        compare(gt, gen, "vgg")
    one_line_user_error(excinfo, "'vgg'", "face-pose")


def test_not_a_feature_table_is_a_user_error():
    with pytest.raises(UserError) as excinfo:
        compare(pd.DataFrame({"file_name": ["a"], "value": [None]}), table([]), "face-pose")
    one_line_user_error(excinfo, "frame_number")
    with pytest.raises(UserError) as excinfo:
        compare([1, 2], table([]), "face-id")
    one_line_user_error(excinfo, "not a pandas DataFrame")


# --- parity with pose-evaluation's printed numbers -------------------------------------------------------

def _pair(case):
    return read_features(DATA / f"{case}_gt.pkl"), read_features(DATA / f"{case}_gen.pkl")


@pytest.mark.parametrize("run", sorted(EXPECTED["runs"]))
def test_parity_with_upstream_scripts(run):
    cases = EXPECTED["runs"][run]["cases"]
    face_pose = compare(*_pair("face_pose"), "face-pose")
    face_id = compare(*_pair("face_id"), "face-id")
    body_pose = compare(*_pair("body_pose"), "body-pose")
    body_id = compare(*_pair("body_id"), "body-id")
    got = {
        ("face_pose", "Average difference"): face_pose["akd"],
        ("face_id", "Average difference"): face_id["aed"],
        ("body_pose", "Average difference"): body_pose["akd"],
        ("body_pose", "Missing count"): body_pose["mkr"],
        ("body_id", "Average difference"): body_id["aed"],
        ("body_pose_count_missing_gt", "Missing count"): count_missing(read_features(DATA / "body_pose_gt.pkl")),
        ("body_pose_count_missing_gen", "Missing count"): count_missing(read_features(DATA / "body_pose_gen.pkl")),
    }
    expected = {(case, key): value for case, entry in cases.items() for key, value in entry["values"].items()}
    assert set(got) == set(expected)
    for key, value in expected.items():
        assert got[key] == pytest.approx(value, rel=1e-9, abs=0), key
    # the fixtures exercise the skip paths: generated None (and one frame None on both sides), lost joints
    assert (face_pose["frames_missing_generated"], face_pose["frames_missing_gt"]) == (4, 1)
    assert body_pose["frames_scored"] < body_pose["frames_scored_mkr"] < 46


# --- pickle I/O ----------------------------------------------------------------------------------------

FORMAT_ROWS = [("b.mp4", 0, np.arange(136, dtype=np.int32).reshape(68, 2)), ("b.mp4", 1, None),
               ("a.mp4", 0, -np.ones((18, 2))), ("a.mp4", 1, np.linspace(0, 1, 128).astype(np.float32))]


def assert_format_rows(df):
    assert list(df.columns) == ["file_name", "frame_number", "value"]
    assert list(df["file_name"]) == [r[0] for r in FORMAT_ROWS]
    assert list(df["frame_number"]) == [r[1] for r in FORMAT_ROWS] and df["frame_number"].dtype == np.int64
    for got, (_, _, want) in zip(df["value"], FORMAT_ROWS):
        if want is None:
            assert got is None
        else:
            assert got.dtype == want.dtype and got.shape == want.shape and np.array_equal(got, want)


@pytest.mark.parametrize("name", sorted(p.name for p in DATA.glob("format_pandas-*.pkl")))
def test_reads_pickles_written_by_older_pandas(name):
    assert_format_rows(read_features(DATA / name))


@pytest.mark.parametrize("storage", ["python", "pyarrow"])
def test_reads_pickles_written_by_this_pandas(tmp_path, storage):
    if storage == "pyarrow":
        pytest.importorskip("pyarrow")
    with pd.option_context("mode.string_storage", storage):
        table(FORMAT_ROWS).to_pickle(tmp_path / "f.pkl")
    df = read_features(tmp_path / "f.pkl")
    assert_format_rows(df)
    assert df.attrs["source"] == str(tmp_path / "f.pkl")
    assert_format_rows(read_features(tmp_path / "f.pkl", trust=True))


def test_write_features_round_trips_through_pandas_read_pickle(tmp_path):
    old = os.umask(0o022)
    try:
        path = write_features(table(FORMAT_ROWS), tmp_path / "out.pkl")
    finally:
        os.umask(old)
    assert path == tmp_path / "out.pkl" and sorted(p.name for p in tmp_path.iterdir()) == ["out.pkl"]
    assert os.stat(path).st_mode & 0o777 == 0o644
    back = pd.read_pickle(path)
    assert_format_rows(back)
    assert all(v.flags.writeable for v in back["value"] if v is not None)
    assert_format_rows(read_features(path))


def test_written_pickle_names_only_globals_every_pandas_has():
    # pose-evaluation's scripts run under pandas 0.23 / numpy 1.15: a pandas >= 3 to_pickle would need
    # pyarrow and pandas >= 3 to load; ours builds the table through pandas.DataFrame(dict)
    data = features_pickle_bytes(table(FORMAT_ROWS))
    assert data[:2] == b"\x80\x04"  # protocol 4
    globals_ = set()

    class Recorder(pickle.Unpickler):
        def find_class(self, module, name):
            globals_.add((module, name))
            return super().find_class(module, name)

    assert_format_rows(Recorder(io.BytesIO(data)).load())
    assert globals_ == {("pandas", "DataFrame"), ("numpy", "array"), ("numpy", "ndarray")}


def test_write_features_is_atomic_and_validates_first(tmp_path):
    path = tmp_path / "out.pkl"
    path.write_bytes(b"previous")
    with pytest.raises(UserError) as excinfo:
        write_features(table([("a.mp4", 0, "not an array")]), path)
    one_line_user_error(excinfo, "row 0", "numeric numpy array")
    assert path.read_bytes() == b"previous" and sorted(p.name for p in tmp_path.iterdir()) == ["out.pkl"]
    with pytest.raises(UserError) as excinfo:
        write_features(table(FORMAT_ROWS), tmp_path / "missing" / "out.pkl")
    one_line_user_error(excinfo, "does not exist")


class _RunsCode:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_restricted_unpickler_refuses_code_without_running_it(tmp_path):
    marker = tmp_path / "ran"
    path = tmp_path / "evil.pkl"
    df = table([("a.mp4", 0, None)])
    df["value"] = pd.Series([_RunsCode(marker)], dtype=object)
    df.to_pickle(path)
    with pytest.raises(UserError) as excinfo:
        read_features(path)
    one_line_user_error(excinfo, str(path), "system", "--trust-pickle")
    assert not marker.exists()


@pytest.mark.parametrize("payload", [b"cbuiltins\neval\n(S'1'\ntR.", b"cpandas\nread_pickle\n(S'x'\ntR.",
                                     b"cnumpy\nload\n(S'x'\ntR.", b"cbuiltins\ngetattr\n.",
                                     b"cnumpy\n__builtins__\n.", b"cnumpy.testing\nrun_module_suite\n."])
def test_restricted_unpickler_refuses_other_globals(tmp_path, payload):
    path = tmp_path / "evil.pkl"
    path.write_bytes(payload)
    with pytest.raises(UserError) as excinfo:
        read_features(path)
    one_line_user_error(excinfo, "refusing", "--trust-pickle")


def test_restricted_unpickler_never_imports_a_named_module(tmp_path, monkeypatch):
    marker = tmp_path / "imported"
    (tmp_path / "animbench_evil_mod.py").write_text(f"open({str(marker)!r}, 'w').close()\nattr = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    path = tmp_path / "evil.pkl"
    path.write_bytes(b"canimbench_evil_mod\nattr\n.")
    with pytest.raises(UserError) as excinfo:
        read_features(path)
    one_line_user_error(excinfo, "animbench_evil_mod.attr")
    assert not marker.exists() and "animbench_evil_mod" not in sys.modules


def test_unreadable_pickles_are_one_line_user_errors(tmp_path):
    good = features_pickle_bytes(table(FORMAT_ROWS))
    cases = {
        "missing.pkl": (None, "no such file"),
        "empty.pkl": (b"", "empty file"),
        "truncated.pkl": (good[: len(good) // 2], "truncated"),
        "garbage.pkl": (b"this is not a pickle at all", "cannot unpickle"),
        "list.pkl": (pickle.dumps([1, 2, 3]), "not a pandas DataFrame"),
        "columns.pkl": (pickle.dumps(pd.DataFrame({"file_name": ["a"], "frame": [0]})), "missing column(s)"),
        "names.pkl": (pickle.dumps(pd.DataFrame({"file_name": [3], "frame_number": [0], "value": [None]})),
                      "not a str"),
        "frames.pkl": (pickle.dumps(pd.DataFrame({"file_name": ["a"], "frame_number": [0.5], "value": [None]})),
                       "not an integer"),
    }
    for name, (data, needle) in cases.items():
        path = tmp_path / name
        if data is not None:
            path.write_bytes(data)
        with pytest.raises(UserError) as excinfo:
            read_features(path)
        one_line_user_error(excinfo, str(path), needle)
    with pytest.raises(UserError) as excinfo:
        read_features(tmp_path)
    one_line_user_error(excinfo, "is a directory")


def test_compressed_pickles_are_read_by_extension(tmp_path):
    table(FORMAT_ROWS).to_pickle(tmp_path / "f.pkl.gz")
    assert_format_rows(read_features(tmp_path / "f.pkl.gz"))


def test_errors_name_the_source_file(tmp_path):
    path = tmp_path / "gen.pkl"
    write_features(table([("b.mp4.png", 0, face())]), path)
    with pytest.raises(UserError) as excinfo:
        compare_face_pose(table([("a.mp4", 0, face())]), read_features(path))
    one_line_user_error(excinfo, str(path))


def test_features_pickle_bytes_is_loadable_in_memory():
    assert_format_rows(pd.read_pickle(io.BytesIO(features_pickle_bytes(table(FORMAT_ROWS)))))


def test_a_missing_optional_reader_dependency_is_named(tmp_path, monkeypatch):
    # pandas >= 3 string columns pickle through pyarrow; without it the error says what to install
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    monkeypatch.setitem(sys.modules, "pyarrow.lib", None)
    path = tmp_path / "arrow.pkl"
    path.write_bytes(b"cpyarrow.lib\npy_buffer\n.")
    with pytest.raises(UserError) as excinfo:
        read_features(path)
    one_line_user_error(excinfo, str(path), "pip install pyarrow")
