"""Readers on the three FOMM layouts (folder, strip, video file), conversions, manifests, check."""
import numpy as np
import pytest
import imageio.v3 as iio
from skimage.util import img_as_float32

from animbench.data import dataset_manifest, open_dataset, open_video, to_float_tensor, to_uint8_truncate
from animbench.data.check import check_dataset
from animbench.errors import UserError


def frames(t=5, h=16, w=16, seed=0):
    return np.random.default_rng(seed).integers(0, 256, size=(t, h, w, 3), dtype=np.uint8)


def write_folder(path, video):
    path.mkdir(parents=True)
    for i, f in enumerate(video):
        iio.imwrite(path / f"{i:07d}.png", f)


def write_strip(path, video):
    path.parent.mkdir(parents=True, exist_ok=True)
    iio.imwrite(path, np.concatenate(list(video), axis=1))


def test_folder_strip_and_gif_read_identically(tmp_path):
    video = frames(7)
    write_folder(tmp_path / "a", video)
    write_strip(tmp_path / "b.png", video)
    iio.imwrite(tmp_path / "c.gif", video, loop=0)
    for name, kind in (("a", "frames"), ("b.png", "strip")):
        v = open_video(tmp_path / name, (16, 16))
        assert v.kind == kind and v.num_frames == 7 and v.frame_size == (16, 16)
        np.testing.assert_array_equal(v.read_all(), video)
    gif = open_video(tmp_path / "c.gif")
    assert gif.kind == "video" and gif.num_frames == 7 and gif.read_all().shape == (7, 16, 16, 3)


def test_mp4_streams_in_chunks(tmp_path):
    smooth = np.repeat(np.linspace(0, 255, 32, dtype=np.uint8)[None, :, None], 32, 0)
    video = np.stack([np.roll(np.repeat(smooth, 3, 2), t, axis=1) for t in range(10)])
    iio.imwrite(tmp_path / "v.mp4", video, fps=25, codec="libx264")
    v = open_video(tmp_path / "v.mp4")
    chunks = list(v.iter_chunks(4))
    assert [len(c) for c in chunks] == [4, 4, 2]
    got = np.concatenate(chunks)
    assert got.shape == video.shape and np.abs(got.astype(int) - video).mean() < 8  # lossy codec
    np.testing.assert_array_equal(v.read_frames([9, 0]), got[[9, 0]])


def test_chunks_concatenate_to_read_all_and_strip_order(tmp_path):
    video = frames(9)
    write_strip(tmp_path / "s.png", video)
    v = open_video(tmp_path / "s.png")
    chunks = list(v.iter_chunks(4))
    assert [len(c) for c in chunks] == [4, 4, 1]
    np.testing.assert_array_equal(np.concatenate(chunks)[3], video[3])  # frame t = columns [tW, (t+1)W)
    np.testing.assert_array_equal(v.read_frames([8, 2, 2]), video[[8, 2, 2]])


def test_gray_and_rgba_become_rgb(tmp_path):
    gray = frames(1)[0, :, :, 0]
    iio.imwrite(tmp_path / "g.png", gray)
    out = open_video(tmp_path / "g.png").read_all()[0]
    assert out.shape == (16, 16, 3) and np.array_equal(out[:, :, 2], gray)
    rgba = np.dstack([frames(1)[0], np.full((16, 16), 7, np.uint8)])
    iio.imwrite(tmp_path / "r.png", rgba)
    np.testing.assert_array_equal(open_video(tmp_path / "r.png").read_all()[0], rgba[:, :, :3])


def test_broken_inputs_raise_user_errors(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="empty video folder"):
        open_video(tmp_path / "empty").num_frames
    (tmp_path / "bad.png").write_bytes(b"not a png")
    with pytest.raises(UserError, match="cannot read image"):
        open_video(tmp_path / "bad.png").read_all()
    iio.imwrite(tmp_path / "odd.png", np.zeros((16, 40, 3), np.uint8))
    with pytest.raises(UserError, match="not a multiple"):
        open_video(tmp_path / "odd.png").num_frames
    write_folder(tmp_path / "big", frames(2, 20, 20))
    with pytest.raises(UserError, match="expected 16x16"):
        open_video(tmp_path / "big", (16, 16)).read_all()
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(UserError, match="not a video"):
        open_video(tmp_path / "notes.txt")


def test_float_conversion_is_skimage_exact_and_truncation():
    every = np.arange(256, dtype=np.uint8).reshape(1, 16, 16, 1).repeat(3, axis=3)
    x = to_float_tensor(every)
    assert x.shape == (1, 3, 16, 16)
    np.testing.assert_array_equal(x.permute(0, 2, 3, 1).numpy(), img_as_float32(every))  # bit-exact
    np.testing.assert_array_equal(to_uint8_truncate(x), every)  # floor(255 * k/255) == k for all k
    import torch

    y = torch.tensor([0.999, 1 / 255 - 1e-6, 0.5, 1.5, -0.2]).view(1, 1, 1, 5).expand(1, 3, 1, 5)
    assert to_uint8_truncate(y)[0, 0, :, 0].tolist() == [254, 0, 127, 255, 0]  # truncation, clamped


def make_dataset(root, n_test=2, n_train=1):
    for i in range(n_test):
        write_folder(root / "test" / f"id0{i}#v.mp4", frames(3, seed=i))
    for i in range(n_train):
        write_strip(root / "train" / f"t{i}.png", frames(4, seed=10 + i))
    return root


def test_dataset_manifest_and_hash_sensitivity(tmp_path):
    root = make_dataset(tmp_path / "ds")
    ds = open_dataset(root=root, split="test", frame_size=(16, 16))
    assert [v.name for v in ds.videos] == ["id00#v.mp4", "id01#v.mp4"]
    m = dataset_manifest(ds)
    assert m["num_videos"] == 2 and m["num_frames"] == 6 and len(m["videos"][0]["sha256"]) == 64
    before = m["hash"]
    f = root / "test" / "id01#v.mp4" / "0000002.png"
    img = iio.imread(f)
    img[0, 0, 0] ^= 1  # one pixel changes
    iio.imwrite(f, img)
    assert dataset_manifest(open_dataset(root=root, frame_size=(16, 16)))["hash"] != before


def test_dataset_errors(tmp_path):
    with pytest.raises(UserError, match="no such directory"):
        open_dataset(root=tmp_path / "nope")
    (tmp_path / "x").mkdir()
    with pytest.raises(UserError, match="test: missing"):
        open_dataset(root=tmp_path / "x")
    with pytest.raises(UserError, match="did you mean 'vox'"):
        open_dataset("voxx")


def test_check_reports_every_problem(tmp_path):
    root = make_dataset(tmp_path / "ds")
    (root / "test" / "empty.mp4").mkdir()
    (root / "test" / "bad.png").write_bytes(b"junk")
    iio.imwrite(root / "test" / "odd.png", np.zeros((16, 40, 3), np.uint8))
    write_folder(root / "test" / "big", frames(2, 20, 20))
    (root / "test" / "notes.txt").write_text("x")
    report = check_dataset(root, frame_size=(16, 16))
    text = "\n".join(report.problems)
    assert len(report.problems) == 5, text
    for needle in ("empty video folder", "cannot read image", "not a multiple", "expected 16x16", "not a video"):
        assert needle in text
    assert report.manifest["test"]["num_videos"] == 2 and report.manifest["train"]["num_videos"] == 1
    good = check_dataset(make_dataset(tmp_path / "ok"), frame_size=(16, 16))
    assert good.ok
