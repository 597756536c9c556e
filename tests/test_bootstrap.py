"""Bootstrap CIs: coverage on clustered data, unit semantics, BCa vs SciPy, pairing, determinism."""
import numpy as np
import pytest
from scipy import stats as sps

from animbench.stats import bootstrap_ci, paired_difference


def clustered(rng, n_videos=30, true_mean=0.05, between=0.01, within=0.004):
    lengths = rng.integers(20, 60, size=n_videos)
    video_means = true_mean + rng.normal(0, between, n_videos)
    values = np.concatenate([m + rng.normal(0, within, n) for m, n in zip(video_means, lengths)])
    videos = np.repeat(np.arange(n_videos), lengths)
    return values, videos


def test_video_unit_covers_and_frame_unit_under_covers():
    # Equal-weight video means are the estimand of estimator="video_mean"; its expectation is true_mean.
    rng = np.random.default_rng(123)
    reps, hits_video, hits_frame = 400, 0, 0
    for i in range(reps):
        values, videos = clustered(rng)
        v = bootstrap_ci(values, videos, unit="video", estimator="video_mean", n_resamples=400, seed=i)
        f = bootstrap_ci(values, videos, unit="frame", n_resamples=400, seed=i)
        hits_video += v.low <= 0.05 <= v.high
        hits_frame += f.low <= 0.05 <= f.high
    # 400 reps: binomial sd of the coverage ≈ 1.1%; 30 videos make percentile intervals slightly narrow
    assert 0.90 <= hits_video / reps <= 0.98, hits_video / reps
    assert hits_frame / reps < 0.5, hits_frame / reps  # i.i.d. frames ignore the clustering


def test_estimators_and_fields():
    values = np.array([1.0, 1.0, 1.0, 4.0])
    videos = np.array(["a", "a", "a", "b"])
    pooled = bootstrap_ci(values, videos, unit="video", estimator="pooled", n_resamples=200)
    vmean = bootstrap_ci(values, videos, unit="video", estimator="video_mean", n_resamples=200)
    assert pooled.estimate == pytest.approx(7 / 4) and vmean.estimate == pytest.approx(2.5)
    assert pooled.n_frames == 4 and pooled.n_videos == 2 and pooled.half_width == pytest.approx(
        (pooled.high - pooled.low) / 2)
    nan = bootstrap_ci([1.0, np.nan, 3.0], n_resamples=100)
    assert nan.estimate == 2.0 and nan.n_frames == 2  # dropped frames are excluded


def test_bca_and_percentile_agree_with_scipy():
    rng = np.random.default_rng(5)
    x = rng.exponential(1.0, size=300)
    for method, scipy_method in (("percentile", "percentile"), ("bca", "BCa")):
        ours = bootstrap_ci(x, method=method, n_resamples=4000, seed=1)
        ref = sps.bootstrap((x,), np.mean, n_resamples=4000, method=scipy_method, rng=2).confidence_interval
        assert abs(ours.low - ref.low) < 0.02 and abs(ours.high - ref.high) < 0.02
    # BCa shifts the interval right for a right-skewed statistic
    assert bootstrap_ci(x, method="bca", seed=1).high > bootstrap_ci(x, method="percentile", seed=1).high - 0.01


def test_determinism_and_paired_sign():
    rng = np.random.default_rng(0)
    values, videos = clustered(rng)
    a = bootstrap_ci(values, videos, unit="video", seed=7)
    b = bootstrap_ci(values, videos, unit="video", seed=7)
    c = bootstrap_ci(values, videos, unit="video", seed=8)
    assert (a.low, a.high) == (b.low, b.high) and (a.low, a.high) != (c.low, c.high)
    better = values - 0.002 + rng.normal(0, 0.0005, values.size)
    res = paired_difference(better, values, videos, unit="video")
    assert res.significant and res.direction == -1 and res.ci.high < 0
    same = paired_difference(values + rng.normal(0, 1e-4, values.size), values, videos, unit="video")
    assert not same.significant and same.direction == 0


def test_bad_arguments():
    with pytest.raises(ValueError):
        bootstrap_ci([1.0, 2.0], unit="video")
    with pytest.raises(ValueError):
        bootstrap_ci([1.0, 2.0], [0, 1], unit="frame", estimator="video_mean")
