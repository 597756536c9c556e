"""Pixel metrics against scikit-image on real photos with real distortions; masked definitions by hand."""
import numpy as np
import pytest
import torch
from skimage import data, filters, transform
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from animbench.metrics import (PSNR_CAP_DB, column_name, compute_frame_metrics, l1, masked, parse_column, psnr,
                               spec_for_column, ssim)


def _photos():
    rng = np.random.default_rng(0)
    out = []
    for name in ("astronaut", "coffee", "chelsea", "rocket"):
        img = transform.resize(getattr(data, name)(), (96, 128), anti_aliasing=True)  # float64 in [0,1]
        warped = transform.warp(img, transform.AffineTransform(rotation=0.05, translation=(3, -2)), mode="edge")
        blurred = filters.gaussian(img, sigma=1.2, channel_axis=-1)
        noisy = np.clip(img + rng.normal(0, 0.04, img.shape), 0, 1)
        quantised = np.round(img * 15) / 15  # coarse quantisation, JPEG-like banding
        out += [(img, d) for d in (warped, blurred, noisy, quantised)]
    return out


def _t(x):
    return torch.from_numpy(np.ascontiguousarray(x)).permute(2, 0, 1)[None]


PAIRS = _photos()


@pytest.mark.parametrize("convention", ["skimage", "gaussian"])
def test_ssim_matches_skimage(convention):
    kw = dict(channel_axis=-1, data_range=1.0)
    if convention == "gaussian":
        kw.update(gaussian_weights=True, sigma=1.5, use_sample_covariance=False)
    preds = torch.cat([_t(d) for _, d in PAIRS])
    gts = torch.cat([_t(g) for g, _ in PAIRS])
    ours = ssim(preds, gts, convention=convention).numpy()
    ref = np.array([structural_similarity(g, d, **kw) for g, d in PAIRS])
    assert np.abs(ours - ref).max() <= 1e-5, np.abs(ours - ref).max()
    assert ours.std() > 0.01  # the distortions give a spread of values: the check is not vacuous


def test_psnr_and_l1_match_direct_definitions():
    preds = torch.cat([_t(d) for _, d in PAIRS])
    gts = torch.cat([_t(g) for g, _ in PAIRS])
    ref = np.array([peak_signal_noise_ratio(g, d, data_range=1.0) for g, d in PAIRS])
    np.testing.assert_allclose(psnr(preds, gts).numpy(), ref, rtol=1e-12)
    np.testing.assert_allclose(l1(preds, gts).numpy(), [np.abs(d - g).mean() for g, d in PAIRS], rtol=1e-12)
    same = psnr(gts[:2], gts[:2])
    assert torch.all(same == PSNR_CAP_DB)  # identical frames: documented cap, never inf


def test_masked_metrics_equal_skimage_on_masked_arrays():
    rng = np.random.default_rng(1)
    g, d = PAIRS[2]
    soft = filters.gaussian((rng.random(g.shape[:2]) > 0.5).astype(float), sigma=3)  # soft alpha mask
    for m in (soft, 1 - soft):
        ours = masked(ssim, _t(d), _t(g), torch.from_numpy(m)[None]).item()
        ref = structural_similarity(g * m[..., None], d * m[..., None], channel_axis=-1, data_range=1.0)
        assert abs(ours - ref) <= 1e-5
    ours = masked(psnr, _t(d), _t(g), torch.from_numpy(soft)[None], inverted=True).item()
    m = (1 - soft)[..., None]
    assert abs(ours - peak_signal_noise_ratio(g * m, d * m, data_range=1.0)) < 1e-9


def test_binary_complementary_masks_split_mse_exactly():
    # paper's full-frame convention: MSE_m + MSE_(1-m) = MSE_all for a binary mask
    g, d = PAIRS[5]
    m = np.zeros(g.shape[:2])
    m[10:50, 20:90] = 1
    mask = torch.from_numpy(m)[None]
    mse = lambda p: 10 ** (-p / 10)
    a = mse(psnr(_t(d), _t(g)).item())
    b = mse(masked(psnr, _t(d), _t(g), mask).item())
    c = mse(masked(psnr, _t(d), _t(g), mask, inverted=True).item())
    assert abs(a - (b + c)) < 1e-12


def test_masked_fill_gt_and_hand_example():
    pred = torch.zeros(1, 3, 8, 8)
    gt = torch.zeros(1, 3, 8, 8)
    pred[..., :4, :] = 0.5       # error 0.5 in the top half only
    top = torch.zeros(1, 8, 8)
    top[:, :4] = 1
    # zeros fill: MSE = (32 px * 0.25) / 64 px = 0.125 -> PSNR = 9.0309 dB; bottom mask -> no error -> cap
    assert abs(masked(psnr, pred, gt, top).item() - 10 * np.log10(1 / 0.125)) < 1e-9
    assert masked(psnr, pred, gt, top, inverted=True).item() == PSNR_CAP_DB
    assert abs(masked(psnr, pred, gt, top, masked_fill="gt").item() - 10 * np.log10(1 / 0.125)) < 1e-9


def test_column_names_round_trip_and_suite():
    for args in (("psnr", None, False), ("psnr", "salient", False), ("ssim", "top10", True)):
        assert parse_column(column_name(*args)) == args
    assert spec_for_column("ssim.not_top30").higher_is_better
    assert not spec_for_column("l1").higher_is_better
    g, d = PAIRS[0]
    masks = {"salient": torch.ones(1, 96, 128) * 0.7}
    masks.update({f"top{k}": (torch.rand(1, 96, 128, generator=torch.Generator().manual_seed(k)) < k / 100).double()
                  for k in (10, 20, 30, 40, 50)})
    out = compute_frame_metrics(_t(d), _t(g), masks=masks)
    assert len(out) == 27  # L1, PSNR, SSIM + (salient, ¬salient, 5 × top-k/¬top-k) × (PSNR, SSIM)
    assert "l1.salient" not in out and "psnr.not_top50" in out


def test_suite_shared_moments_equal_direct_masked_definition():
    g, d = PAIRS[1]
    gen = torch.Generator().manual_seed(3)
    binary = (torch.rand(1, 96, 128, generator=gen) > 0.6).double()
    soft = torch.rand(1, 96, 128, generator=gen, dtype=torch.float64)
    out = compute_frame_metrics(_t(d), _t(g), metrics=("ssim", "psnr"), masks={"top20": binary, "salient": soft},
                                exact=True)
    fast = compute_frame_metrics(_t(d), _t(g), metrics=("ssim", "psnr"), masks={"top20": binary, "salient": soft})
    assert list(fast) == list(out)
    for col in out:  # the default (fast) suite: within 1e-7 of the exact path on this real photo pair
        assert abs(fast[col].item() - out[col].item()) < (1e-7 if col.startswith("ssim") else 1e-9), col
    for name, mask in (("top20", binary), ("salient", soft)):
        for inverted in (False, True):
            col = column_name("ssim", name, inverted)
            direct = masked(ssim, _t(d), _t(g), mask, inverted=inverted)
            assert abs(out[col].item() - direct.item()) < 1e-12, col
    torch.testing.assert_close(out["ssim"], ssim(_t(d), _t(g)), rtol=0, atol=1e-14)
