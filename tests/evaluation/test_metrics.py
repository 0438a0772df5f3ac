import math

import numpy as np
import pytest

from fomm.errors import FommError
from fomm.evaluation import metrics as M


def _clip(seed=0, shape=(3, 16, 20, 3)):
    return np.random.default_rng(seed).random(shape)


# ---------------------------------------------------------------- L1 / PSNR


def test_identical_frames():
    a = _clip()
    assert M.l1(a, a) == 0.0
    assert M.psnr(a, a) == math.inf
    assert np.all(np.isinf(M.psnr_per_frame(a, a)))
    assert M.ssim(a, a) == pytest.approx(1.0, abs=1e-12)


def test_constant_offset_l1_and_psnr():
    a = np.full((2, 12, 12, 3), 0.3)
    b = a + 0.1
    assert M.l1(a, b) == pytest.approx(0.1)
    assert M.psnr(a, b) == pytest.approx(20.0)
    np.testing.assert_allclose(M.psnr_per_frame(a, b), [20.0, 20.0])
    # data_range 2: 10 log10(4 / 0.01) = 26.0206
    assert M.psnr(a, b, data_range=2.0) == pytest.approx(10 * math.log10(400.0))


def test_psnr_mean_of_frames_with_cap():
    a = np.full((2, 12, 12, 3), 0.5)
    b = a.copy()
    b[1] += 0.1  # frame 0 identical (capped at 100 dB), frame 1 at 20 dB
    assert M.psnr(a, b) == pytest.approx((M.PSNR_CAP_DB + 20.0) / 2)
    assert M.psnr(a, b, cap_db=60.0) == pytest.approx(40.0)
    # mean of per-frame PSNR, not PSNR of the clip MSE
    c = a.copy()
    c[0] += 0.1
    c[1] += 0.01  # 20 dB and 40 dB
    assert M.psnr(a, c) == pytest.approx(30.0)


def test_uint8_and_single_frame():
    a = np.zeros((12, 12, 3), np.uint8)
    b = np.full((12, 12, 3), 51, np.uint8)  # 51/255 = 0.2
    assert M.l1(a, b) == pytest.approx(0.2)
    assert M.psnr(a, b) == pytest.approx(-20 * math.log10(0.2))
    assert M.l1(a, b.astype(np.float64) / 255) == pytest.approx(0.2)


def test_torch_input():
    torch = pytest.importorskip("torch")
    a = torch.zeros(1, 12, 12, 3)
    assert M.l1(a, a + 0.25) == pytest.approx(0.25)


def test_shape_errors():
    with pytest.raises(FommError):
        M.l1(np.zeros((2, 8, 8, 3)), np.zeros((3, 8, 8, 3)))
    with pytest.raises(FommError):
        M.l1(np.zeros((8, 8)), np.zeros((8, 8)))
    with pytest.raises(FommError):
        M.ssim(np.zeros((10, 30, 3)), np.zeros((10, 30, 3)))  # smaller than the 11x11 window


# ---------------------------------------------------------------- SSIM


@pytest.mark.parametrize("ma,mb", [(0.2, 0.7), (0.5, 0.5), (0.0, 1.0), (0.9, 0.1)])
def test_ssim_constant_images_closed_form(ma, mb):
    c1 = (0.01) ** 2
    expected = (2 * ma * mb + c1) / (ma**2 + mb**2 + c1)  # variances and covariance are 0
    a = np.full((2, 13, 15, 3), ma)
    b = np.full((2, 13, 15, 3), mb)
    assert M.ssim(a, b) == pytest.approx(expected, rel=1e-9, abs=1e-12)


def test_ssim_known_noise_level():
    # constant mean image vs. the same plus zero-mean +/-s checkerboard: the local mean stays
    # (almost) equal, var_a = 0, cov = 0, var_b ~= s^2  ->  SSIM ~= C2 / (s^2 + C2).
    s = 0.1
    yy, xx = np.mgrid[0:64, 0:64]
    sign = np.where((yy + xx) % 2 == 0, 1.0, -1.0)
    a = np.full((64, 64, 3), 0.5)
    b = a + s * sign[..., None]
    c2 = 0.03**2
    got = M.ssim(a, b)
    assert got == pytest.approx(c2 / (s**2 + c2), rel=2e-2)
    # and it drops monotonically with the noise
    assert M.ssim(a, a + 0.05 * sign[..., None]) > got > M.ssim(a, a + 0.2 * sign[..., None])


def test_ssim_single_valid_window_by_hand():
    # An 11x11 frame has exactly one fully-inside window (the valid region is 1x1): SSIM is
    # that window's Gaussian-weighted statistics, averaged over channels.
    rng = np.random.default_rng(1)
    a = rng.random((11, 11, 3))
    b = rng.random((11, 11, 3))
    g = np.exp(-0.5 * (np.arange(-5, 6) / 1.5) ** 2)
    w = np.outer(g, g) / np.outer(g, g).sum()
    c1, c2 = 0.01**2, 0.03**2
    vals = []
    for c in range(3):
        x, y = a[..., c], b[..., c]
        mx, my = (w * x).sum(), (w * y).sum()
        vx, vy = (w * x * x).sum() - mx**2, (w * y * y).sum() - my**2
        cxy = (w * x * y).sum() - mx * my
        vals.append((2 * mx * my + c1) * (2 * cxy + c2) / ((mx**2 + my**2 + c1) * (vx + vy + c2)))
    assert M.ssim(a, b) == pytest.approx(np.mean(vals), rel=1e-12)


def test_ssim_per_frame_vectorised():
    a = _clip(3, (10, 16, 16, 3))  # more frames than one filtering chunk
    b = np.clip(a + 0.05 * np.random.default_rng(4).standard_normal(a.shape), 0, 1)
    per = M.ssim_per_frame(a, b)
    assert per.shape == (10,)
    for t in range(10):
        assert per[t] == pytest.approx(M.ssim(a[t], b[t]), rel=1e-12)
    assert M.ssim(a, b) == pytest.approx(per.mean())


def test_ssim_matches_skimage():
    skm = pytest.importorskip("skimage.metrics")
    rng = np.random.default_rng(5)
    a = rng.random((24, 30, 3))
    b = np.clip(a + 0.1 * rng.standard_normal(a.shape), 0, 1)
    ref = skm.structural_similarity(
        a, b, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, channel_axis=-1, data_range=1
    )
    assert M.ssim(a, b) == pytest.approx(ref, abs=1e-10)


# ---------------------------------------------------------------- keypoints


def test_kp_to_pixels_and_back():
    kp = np.array([[-1.0, -1.0], [1.0, 1.0], [0.0, 0.0]])
    px = M.kp_to_pixels(kp, (65, 129))  # H=65, W=129
    np.testing.assert_allclose(px, [[0, 0], [128, 64], [64, 32]])
    np.testing.assert_allclose(M.kp_from_pixels(px, (65, 129)), kp)


def test_kp_to_pixels_torch():
    torch = pytest.importorskip("torch")
    kp = torch.tensor([[[-1.0, 1.0]]])
    px = M.kp_to_pixels(kp, (11, 21))
    assert isinstance(px, torch.Tensor)
    assert px.tolist() == [[[0.0, 10.0]]]


def test_akd_known_shift():
    rng = np.random.default_rng(6)
    true = rng.random((5, 10, 2)) * 100
    pred = true + np.array([3.0, 4.0])
    assert M.akd(pred, true) == pytest.approx(5.0)
    assert M.akd(pred[0], true[0]) == pytest.approx(5.0)


def test_akd_nan_and_mask():
    true = np.zeros((2, 2, 2))
    pred = np.zeros((2, 2, 2))
    pred[0, 0] = [3, 4]  # distance 5
    pred[0, 1] = [6, 8]  # distance 10
    pred[1, 0] = [np.nan, np.nan]  # missed detection: skipped
    pred[1, 1] = [0, 1]  # distance 1
    assert M.akd(pred, true) == pytest.approx((5 + 10 + 1) / 3)
    true_nan = true.copy()
    true_nan[0, 1, 0] = np.nan
    assert M.akd(pred, true_nan) == pytest.approx((5 + 1) / 2)
    visible = np.array([[True, False], [True, True]])
    assert M.akd(pred, true, visible=visible) == pytest.approx((5 + 1) / 2)
    assert math.isnan(M.akd(np.full((1, 2, 2), np.nan), true[:1]))
    with pytest.raises(FommError):
        M.akd(pred, true[:1])


def test_aed_with_callable_embedder():
    a = np.zeros((3, 12, 12, 3))
    b = a.copy()
    b[1] += 0.5

    def embed(frames):  # per-frame mean colour: (T, 3)
        return frames.mean(axis=(1, 2))

    # frame 1 differs by 0.5 in each of 3 channels -> distance 0.5 * sqrt(3); mean over 3 frames
    assert M.aed(a, b, embed) == pytest.approx(0.5 * math.sqrt(3) / 3)
    with pytest.raises(FommError):
        M.aed(a, b, lambda f: f.mean())


# ---------------------------------------------------------------- summary


def test_frame_metrics_and_summarize_weighted():
    recs = [
        {"name": "a", "num_frames": 1, "l1": 0.1, "psnr": 20.0, "akd": float("nan")},
        {"name": "b", "num_frames": 3, "l1": 0.3, "psnr": 30.0, "akd": 2.0},
    ]
    s = M.summarize(recs)
    assert s["num_videos"] == 2 and s["num_frames"] == 4
    assert s["l1"] == pytest.approx((0.1 + 3 * 0.3) / 4)
    assert s["psnr"] == pytest.approx((20 + 90) / 4)
    assert s["akd"] == pytest.approx(2.0)  # NaN record skipped
    assert "name" not in s
    with pytest.raises(FommError):
        M.summarize([{"l1": 0.1}])
    with pytest.raises(FommError):
        M.summarize([])

    a = np.full((2, 12, 12, 3), 0.3)
    rec = M.frame_metrics(a, a + 0.1)
    assert rec["num_frames"] == 2
    assert rec["l1"] == pytest.approx(0.1) and rec["psnr"] == pytest.approx(20.0)
    assert rec["ssim"] == pytest.approx((2 * 0.3 * 0.4 + 1e-4) / (0.09 + 0.16 + 1e-4))


def test_akd_l1_is_the_papers_cmp_py_definition():
    # frame 0: keypoint errors (3, 4) and (0, 0); frame 1: (1, -1) and a missed keypoint
    pred = np.array([[[13.0, 24.0], [5.0, 5.0]], [[2.0, 1.0], [np.nan, np.nan]]])
    true = np.array([[[10.0, 20.0], [5.0, 5.0]], [[1.0, 2.0], [7.0, 7.0]]])
    # cmp.py: per frame np.mean(np.abs(a - b)) over every coordinate, then the mean over frames
    assert M.akd_l1(pred, true) == pytest.approx(((3 + 4 + 0 + 0) / 4 + (1 + 1) / 2) / 2)  # 1.375
    assert M.akd(pred, true) == pytest.approx((5 + 0 + math.sqrt(2)) / 3)  # Euclidean, per keypoint
    assert M.akd_l1(pred[:1], true[:1]) == pytest.approx(1.75) and M.akd(pred[:1], true[:1]) == 2.5
    assert M.akd_l1(pred[0], true[0]) == pytest.approx(1.75)  # one frame (K, 2)
    assert math.isnan(M.akd_l1(np.full((1, 2, 2), np.nan), true[:1]))
    with pytest.raises(FommError, match="same shape"):
        M.akd_l1(pred, true[:, :1])


def test_akd_per_keypoint_is_the_mean_over_frames_of_each_keypoint():
    from fomm.evaluation.metrics import akd_per_keypoint

    true = np.zeros((3, 3, 2))
    pred = true.copy()
    pred[:, 0, 0] = [1, 2, 3]  # keypoint 0: 1, 2, 3 px off
    pred[0, 1] = [3, 4]  # keypoint 1: 5 px off in frame 0 only
    pred[1, 1] = np.nan  # ...and missed in frame 1 (skipped)
    pred[:, 2] = np.nan  # keypoint 2: never found
    per = akd_per_keypoint(pred, true)
    np.testing.assert_allclose(per[:2], [2.0, 2.5])
    assert np.isnan(per[2])
    with pytest.raises(FommError, match="same shape"):
        akd_per_keypoint(pred[:, :2], true)
