"""PriorityCut / top-k masks (Eq. 2) on hand-made maps, and the salient-mask backends."""
import numpy as np
import pytest
import torch

from animbench.masks import foreground_occlusion, prioritycut_mask, topk_masks


def maps(occ, bg):
    return torch.tensor(occ, dtype=torch.float32).view(1, 1, 2, 4), torch.tensor(bg, dtype=torch.float32).view(1, 1, 2, 4)


OCC = [[0.1, 0.5, 0.3, 0.3], [0.9, 0.2, 0.3, 0.0]]
BG = [[0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.9]]   # last pixel is confident background


def test_eq2_by_hand():
    occ, bg = maps(OCC, BG)
    o_fg, bg_bin = foreground_occlusion(occ, bg, threshold=0.5)
    # background pixel becomes 1 (never selected) although its occlusion value is the lowest (0.0)
    assert o_fg.flatten().tolist() == pytest.approx([0.1, 0.5, 0.3, 0.3, 0.9, 0.2, 0.3, 1.0])
    assert bg_bin.flatten().tolist() == [0, 0, 0, 0, 0, 0, 0, 1]


def test_topk_selection_ties_and_counts():
    occ, bg = maps(OCC, BG)
    # 7 foreground pixels; k=50 -> floor(3.5 + 0.5) = 4 lowest: 0.1, 0.2 and two of the three 0.3s (lowest index)
    assert prioritycut_mask(occ, bg, 50).flatten().tolist() == [1, 0, 1, 1, 0, 1, 0, 0]
    assert prioritycut_mask(occ, bg, 0).sum() == 0
    assert prioritycut_mask(occ, bg, 100).flatten().tolist() == [1, 1, 1, 1, 1, 1, 1, 0]  # whole foreground
    # base="frame": k% of all 8 pixels (50% -> 4), same pixels here; 100% is capped at the foreground
    assert prioritycut_mask(occ, bg, 100, base="frame").sum() == 7
    assert prioritycut_mask(occ, bg, 25, base="frame").flatten().tolist() == [1, 0, 0, 0, 0, 1, 0, 0]


def test_empty_foreground_and_threshold():
    occ, _ = maps(OCC, BG)
    all_bg = torch.ones_like(occ)
    assert prioritycut_mask(occ, all_bg, 50).sum() == 0
    # a lower threshold turns the 0.4-alpha pixels into background
    bg = torch.full_like(occ, 0.4)
    assert prioritycut_mask(occ, bg, 50, threshold=0.3).sum() == 0
    assert prioritycut_mask(occ, bg, 50, threshold=0.5).sum() == 4


def test_per_sample_k_and_upsampling():
    occ = torch.rand(3, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    bg = torch.zeros(3, 1, 8, 8)
    m = prioritycut_mask(occ, bg, torch.tensor([10.0, 50.0, 90.0]), size=(32, 32))
    assert m.shape == (3, 1, 32, 32)
    assert m.view(3, -1).sum(1).tolist() == [102, 512, 922]  # floor(k/100 * 1024 + 0.5)
    # the selected pixels are the most occluded: every selected value <= every unselected one
    up = torch.nn.functional.interpolate(occ, size=(32, 32), mode="bilinear", align_corners=False)
    for i in range(3):
        sel, rest = up[i][m[i] == 1], up[i][m[i] == 0]
        assert sel.max() <= rest.min()
    masks = topk_masks(occ, bg, ks=(10, 30), size=(32, 32))
    assert set(masks) == {"top10", "top30"} and torch.equal(masks["top10"][0], m[0])
    with pytest.raises(ValueError):
        prioritycut_mask(occ, bg, 120)


@pytest.mark.parametrize("matting", ["feather", "cf"])
def test_builtin_salient_covers_subject_not_corners(matting):
    # The sample dataset composites a face sprite over a known background, so the true foreground is exactly
    # the set of pixels that differ from that background: the mask must overlap it well and leave corners empty.
    from animbench.data.sample import _background, iter_sample_videos
    from animbench.masks.salient import BuiltinSalient

    videos = iter_sample_videos(256)
    for index in range(2):
        _, _, frames = next(videos)
        background = np.round(_background(index) * 255)
        for t in (0, 16):
            truth = np.abs(frames[t].astype(float) - background).max(axis=2) > 30
            alpha = BuiltinSalient(matting=matting).mask(frames[t])
            assert alpha.dtype == np.float32 and 0 <= alpha.min() and alpha.max() <= 1
            pred = alpha > 0.5
            assert (truth & pred).sum() / (truth | pred).sum() > 0.75
            for corner in (alpha[:16, :16], alpha[:16, -16:], alpha[-16:, :16], alpha[-16:, -16:]):
                assert corner.max() < 0.05
            assert 0 < ((alpha > 0) & (alpha < 1)).mean() < 0.3  # a soft band around the boundary only


def test_folder_salient_backend(tmp_path):
    import imageio.v3 as iio

    from animbench.data import open_video
    from animbench.errors import UserError
    from animbench.masks.salient import make_salient_backend

    (tmp_path / "vid").mkdir()
    for i in range(3):
        iio.imwrite(tmp_path / "vid" / f"{i}.png", np.zeros((8, 8, 3), np.uint8))
    masks = np.stack([np.full((8, 8), 51 * i, np.uint8) for i in range(3)])
    (tmp_path / "masks").mkdir()
    iio.imwrite(tmp_path / "masks" / "vid.png", np.concatenate(list(masks), axis=1))  # a strip per video
    got = make_salient_backend("folder", folder=tmp_path / "masks").masks_for_video(open_video(tmp_path / "vid"))
    np.testing.assert_allclose(got[:, 0, 0], [0.0, 0.2, 0.4], atol=1e-7)
    (tmp_path / "vid2").mkdir()
    iio.imwrite(tmp_path / "vid2" / "0.png", np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(UserError, match="no masks for video 'vid2'"):
        make_salient_backend("folder", folder=tmp_path / "masks").masks_for_video(open_video(tmp_path / "vid2"))
