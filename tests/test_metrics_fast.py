"""fast_frame_metrics against scikit-image (real photos, real distortions, soft/binary/tiny masks, adversarial
frames) and against the exact float64 path `compute_frame_metrics`."""
import math

import numpy as np
import pytest
import torch
from skimage import data, filters, transform
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from animbench.errors import UserError
from animbench.metrics import column_name, compute_frame_metrics
from animbench.metrics import fast
from animbench.metrics.fast import fast_frame_metrics

SIZE = 256
SSIM_TOL, PSNR_TOL = 1e-5, 1e-4


def _photos():
    """(pred, gt) pairs, (H,W,3) float64: photo crops at 256² with warps, blur, noise, quantisation, plus a copy
    (pred == gt) and a pair of constant frames."""
    rng = np.random.default_rng(0)
    out = []
    for name in ("astronaut", "coffee", "chelsea"):
        img = getattr(data, name)()[:400, :400]
        img = transform.resize(img, (SIZE, SIZE), anti_aliasing=True)
        warped = transform.warp(img, transform.AffineTransform(rotation=0.05, translation=(3, -2)), mode="edge")
        blurred = filters.gaussian(img, sigma=1.2, channel_axis=-1)
        noisy = np.clip(img + rng.normal(0, 0.04, img.shape), 0, 1)
        quantised = np.round(img * 15) / 15
        out += [(warped, img), (blurred, img), (noisy, img), (quantised, img)]
    out.append((out[0][1].copy(), out[0][1]))                                   # copy-source frame: pred == gt
    out.append((np.full((SIZE, SIZE, 3), 0.8), np.full((SIZE, SIZE, 3), 0.2)))   # constant frames
    return out


def _masks(n, seed=1):
    """{name: (N,H,W) float64}: a soft mask, a blobby binary mask, a tiny-support mask, a one-pixel mask."""
    rng = np.random.default_rng(seed)
    soft = np.stack([filters.gaussian((rng.random((SIZE, SIZE)) > 0.5).astype(float), sigma=3) for _ in range(n)])
    blobs = np.stack([filters.gaussian(rng.random((SIZE, SIZE)), sigma=8) for _ in range(n)])
    binary = (blobs > np.median(blobs)).astype(float)
    tiny = np.zeros((n, SIZE, SIZE))
    tiny[:, 100:103, 50:52] = 1
    pixel = np.zeros((n, SIZE, SIZE))
    pixel[:, 0, 0] = 1
    return {"salient": soft, "top": binary, "tiny": tiny, "pixel": pixel}


def _t(frames):
    return torch.from_numpy(np.ascontiguousarray(np.stack(frames))).permute(0, 3, 1, 2)


def _skimage_columns(preds, gts, masks):
    """Every column by a plain scikit-image loop (pred and gt multiplied by the mask, as animbench defines it)."""
    out = {}
    psnr = lambda a, b: peak_signal_noise_ratio(a, b, data_range=1.0)                   # noqa: E731
    for t, (p, g) in enumerate(zip(preds, gts)):
        with np.errstate(divide="ignore"):                                   # identical: inf dB
            vals = {"l1": np.abs(p - g).mean(), "psnr": psnr(g, p),
                    "ssim": structural_similarity(g, p, channel_axis=-1, data_range=1.0)}
            for name, m in masks.items():
                for inverted, mm in ((False, m[t][..., None]), (True, 1 - m[t][..., None])):
                    vals[column_name("psnr", name, inverted)] = psnr(g * mm, p * mm)
                    vals[column_name("ssim", name, inverted)] = structural_similarity(
                        g * mm, p * mm, channel_axis=-1, data_range=1.0)
        for k, v in vals.items():
            out.setdefault(k, []).append(float(v))
    return {k: np.array(v) for k, v in out.items()}


def _max_dev(ours, ref, metric):
    """Max |ours − skimage| over the metric's columns; PSNR with the documented 100 dB cap applied to skimage."""
    devs = []
    for k, r in ref.items():
        if k.split(".")[0] == metric:
            devs.append(np.abs(ours[k].numpy() - (np.minimum(r, 100.0) if metric == "psnr" else r)))
    return np.concatenate(devs).max()


PAIRS = _photos()


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """The exact float64 reference runs ~50x slower with 2 OpenMP threads on a loaded 2-core machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_equals_skimage_on_photos_with_masks():
    preds, gts = [p for p, _ in PAIRS], [g for _, g in PAIRS]
    masks = _masks(len(PAIRS))
    ours = fast_frame_metrics(_t(preds), _t(gts), masks={k: torch.from_numpy(v) for k, v in masks.items()})
    ref = _skimage_columns(preds, gts, masks)
    assert set(ours) == set(ref)
    assert _max_dev(ours, ref, "ssim") <= SSIM_TOL
    assert _max_dev(ours, ref, "psnr") <= PSNR_TOL
    assert _max_dev(ours, ref, "l1") <= 1e-10
    # not vacuous: the distortions and the masks spread the values
    assert ref["ssim"].std() > 0.05 and np.abs(ref["ssim.top"] - ref["ssim"]).max() > 0.05
    assert np.abs(ref["ssim.not_tiny"] - ref["ssim"]).max() > 1e-4                # the tiny mask changes SSIM


def test_drop_in_for_compute_frame_metrics():
    # the exact float64 path is slow: 4 non-square 96x128 frames
    small = [(transform.resize(p, (96, 128)), transform.resize(g, (96, 128))) for p, g in PAIRS[::4]]
    preds, gts = _t([p for p, _ in small]), _t([g for _, g in small])
    masks = {k: torch.from_numpy(transform.resize(v.transpose(1, 2, 0), (96, 128), order=0).transpose(2, 0, 1))
             for k, v in _masks(len(small), seed=3).items()}
    masks["top"] = masks["top"][:, None]                                        # (N,1,H,W) masks work too
    exact = compute_frame_metrics(preds, gts, masks=masks)
    ours = fast_frame_metrics(preds, gts, masks=masks)
    assert list(ours) == list(exact)                                            # same columns, same order
    for k, v in exact.items():
        assert ours[k].dtype == torch.float64 and ours[k].shape == v.shape
        tol = SSIM_TOL if k.startswith("ssim") else PSNR_TOL
        assert torch.allclose(ours[k], v, rtol=0, atol=tol), (k, (ours[k] - v).abs().max())
    tiny = {k: v[:, ..., :16, :16] for k, v in masks.items()}
    for metrics in (("psnr",), ("ssim", "l1"), ()):
        sub = fast_frame_metrics(preds[..., :16, :16], gts[..., :16, :16], metrics=metrics, masks=tiny)
        assert list(sub) == list(compute_frame_metrics(preds[..., :16, :16], gts[..., :16, :16], metrics=metrics,
                                                       masks=tiny))
    # float32 inputs, every threading / chunking choice, and the batched (GPU-style) path give the same numbers
    f32 = fast_frame_metrics(preds.float(), gts.float(), masks=masks)
    ref32 = compute_frame_metrics(preds.float(), gts.float(), masks=masks)
    assert all(torch.allclose(f32[k], ref32[k], rtol=0, atol=1e-4) for k in ref32)
    for kw in ({"threads": 1}, {"threads": 3}, {"threads": 2, "chunk": 3}):
        other = fast_frame_metrics(preds, gts, masks=masks, **kw)
        assert all(torch.allclose(other[k], ours[k], rtol=0, atol=1e-10) for k in ours), kw
    batched = fast._chunk(preds, gts, [m if m.dim() == 4 else m[:, None] for m in masks.values()],
                          (True, True, True), 1.0, split=False)             # rows: [full, mask, not mask, ...]
    assert torch.allclose(batched["ssim"], torch.stack([ours[k] for k in ours if k.startswith("ssim")]),
                          rtol=0, atol=1e-6)


@pytest.mark.parametrize("identical", ["cap", "skip"])
def test_identical_frames_cap_or_skip(identical):
    g = _t([PAIRS[0][1], PAIRS[1][1]])[..., 64:128, 64:128]
    p = g.clone()
    p[1, :, :32] += 0.1                                                         # frame 1 differs in its top half
    bottom = torch.zeros(2, 64, 64, dtype=torch.float64)
    bottom[:, 32:] = 1
    kw = dict(masks={"bottom": bottom}, identical=identical, cap=60.0)
    ours = fast_frame_metrics(p, g, **kw)
    exact = compute_frame_metrics(p, g, **kw)
    expect_frame0 = 60.0 if identical == "cap" else float("nan")
    for k in ("psnr", "psnr.bottom", "psnr.not_bottom"):
        assert torch.allclose(ours[k], exact[k], rtol=0, atol=PSNR_TOL, equal_nan=True), k
        assert math.isclose(ours[k][0].item(), expect_frame0) or (math.isnan(expect_frame0) and
                                                                   math.isnan(ours[k][0].item())), k
    assert math.isnan(ours["psnr.bottom"][1].item()) if identical == "skip" else ours["psnr.bottom"][1] == 60.0
    assert 10 < ours["psnr.not_bottom"][1] < 60 and ours["ssim"][0] == 1.0
    with pytest.raises(ValueError):
        fast_frame_metrics(p, g, identical="drop")


def _adversarial():
    n = torch.randn(3, SIZE, SIZE, dtype=torch.float64, generator=torch.Generator().manual_seed(5))
    img = torch.from_numpy(np.ascontiguousarray(PAIRS[0][1])).permute(2, 0, 1)
    flat = torch.zeros(3, SIZE, SIZE, dtype=torch.float64)
    halves = torch.cat([flat[:, :128] + 0.9, flat[:, 128:] + 0.1], 1)
    square = img.clone()
    square[:, 64:192, 64:192] = 0.95
    return {
        "constant": (flat + 0.9, flat + 0.1),
        "large_mean_low_variance": (0.95 + 1e-3 * n, 0.95 + 1e-3 * n.roll(1, 1)),
        "near_identical": (img, (img + 1e-5 * n).clamp(0, 1)),
        "anticorrelated": (0.9 + 0.03 * n, 0.9 - 0.03 * n),
        "offset_image": (img * 0.5 + 0.5, img * 0.5),
        "swapped_halves": (halves, halves.flip(1)),                              # needs the float64 fallback
        "flat_square_vs_image": (square, img),
    }


def test_adversarial_frames_equal_skimage():
    cases = _adversarial()
    preds = [p.clamp(0, 1).permute(1, 2, 0).numpy() for p, _ in cases.values()]
    gts = [g.clamp(0, 1).permute(1, 2, 0).numpy() for _, g in cases.values()]
    masks = _masks(len(cases), seed=7)
    masks["half_soft"] = np.full((len(cases), SIZE, SIZE), 0.5)                  # a flat soft mask
    masks["none"] = np.zeros((len(cases), SIZE, SIZE))
    ours = fast_frame_metrics(_t(preds), _t(gts), masks={k: torch.from_numpy(v) for k, v in masks.items()})
    ref = _skimage_columns(preds, gts, masks)
    assert _max_dev(ours, ref, "ssim") <= SSIM_TOL
    assert _max_dev(ours, ref, "psnr") <= PSNR_TOL


def test_float32_error_estimate_triggers_float64(monkeypatch):
    p, g = _adversarial()["swapped_halves"]
    ref = structural_similarity(g.permute(1, 2, 0).numpy(), p.permute(1, 2, 0).numpy(), channel_axis=-1,
                                data_range=1.0)
    assert abs(fast_frame_metrics(p[None], g[None], metrics=("ssim",))["ssim"].item() - ref) <= SSIM_TOL
    monkeypatch.setattr(fast, "FLOAT32_RISK", float("inf"))                     # float32 only: misses
    assert abs(fast_frame_metrics(p[None], g[None], metrics=("ssim",))["ssim"].item() - ref) > SSIM_TOL


def test_bad_inputs():
    x = torch.rand(2, 3, 32, 32, dtype=torch.float64)
    with pytest.raises(ValueError):
        fast_frame_metrics(x, x[:1])
    with pytest.raises(ValueError):
        fast_frame_metrics(x[..., :5, :5], x[..., :5, :5])
    with pytest.raises(ValueError):
        fast_frame_metrics(x, x, masks={"m": torch.ones(2, 16, 16)})
    with pytest.raises(ValueError):
        fast_frame_metrics(x, x, masks={"not_m": torch.ones(2, 32, 32)})
    with pytest.raises(UserError, match="unknown metric"):
        fast_frame_metrics(x, x, metrics=("lpips",))
