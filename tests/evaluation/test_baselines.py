import numpy as np
import pytest

from fomm.errors import FommError
from fomm.evaluation import baselines as B


def _affine_apply(A, pts):
    return pts @ A[:, :2].T + A[:, 2]


def _grid(h: int, w: int):
    """The x and y pixel coordinates of an h x w image, float64."""
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float64)
    return xs, ys


def _linear_image(coef, xs, ys):
    """Channel c is coef[c] . (x, y, 1): bilinear interpolation reproduces it exactly."""
    return np.stack([c[0] * xs + c[1] * ys + c[2] for c in coef], axis=-1)


def _warped_linear_image(coef, A, h: int, w: int):
    """The linear image of ``coef`` warped by ``A`` (out(q) = f(A^-1 q)), and where A^-1 q is
    inside the image."""
    xs, ys = _grid(h, w)
    Ainv = np.linalg.inv(np.vstack([A, [0, 0, 1]]))[:2]
    sx = Ainv[0, 0] * xs + Ainv[0, 1] * ys + Ainv[0, 2]
    sy = Ainv[1, 0] * xs + Ainv[1, 1] * ys + Ainv[1, 2]
    return _linear_image(coef, sx, sy), (sx >= 0) & (sx <= w - 1) & (sy >= 0) & (sy <= h - 1)


def _smooth_image(h=40, w=48):
    xs, ys = _grid(h, w)
    return np.stack(
        [0.5 + 0.4 * np.sin(xs / 5.0) * np.cos(ys / 7.0), xs / w, 0.5 + 0.3 * np.sin((xs + ys) / 9.0)], axis=-1
    )


def test_static_baseline():
    src = np.random.default_rng(0).random((8, 9, 3)).astype(np.float32)
    out = B.static_baseline(src, 4)
    assert out.shape == (4, 8, 9, 3) and out.dtype == np.float32
    for t in range(4):
        np.testing.assert_array_equal(out[t], src)
    u8 = B.static_baseline(np.full((2, 2, 3), 255, np.uint8), 2)
    np.testing.assert_allclose(u8, 1.0)
    with pytest.raises(FommError):
        B.static_baseline(src, 0)


def test_fit_affine_recovers_known_affine():
    rng = np.random.default_rng(1)
    A = np.array([[1.1, -0.3, 5.0], [0.2, 0.9, -7.5]])
    src = rng.random((10, 2)) * 64
    dst = _affine_apply(A, src)
    np.testing.assert_allclose(B.fit_affine(src, dst), A, atol=1e-10)
    # exactly three points are enough
    np.testing.assert_allclose(B.fit_affine(src[:3], dst[:3]), A, atol=1e-9)
    # NaN pairs are dropped
    src_nan = src.copy()
    src_nan[4] = np.nan
    np.testing.assert_allclose(B.fit_affine(src_nan, dst), A, atol=1e-10)


def test_fit_affine_least_squares_with_noise():
    rng = np.random.default_rng(2)
    A = np.array([[0.8, 0.1, 2.0], [-0.1, 1.2, 3.0]])
    src = rng.random((200, 2)) * 100
    dst = _affine_apply(A, src) + 0.01 * rng.standard_normal((200, 2))
    np.testing.assert_allclose(B.fit_affine(src, dst), A, atol=2e-3)


def test_fit_affine_degenerate_fallbacks():
    # collinear source points -> similarity (rotation + scale + translation)
    theta, s, t = 0.3, 1.5, np.array([4.0, -2.0])
    S = np.array([[s * np.cos(theta), -s * np.sin(theta), t[0]], [s * np.sin(theta), s * np.cos(theta), t[1]]])
    src = np.array([[0.0, 0.0], [10.0, 5.0], [20.0, 10.0]])
    np.testing.assert_allclose(B.fit_affine(src, _affine_apply(S, src)), S, atol=1e-10)
    np.testing.assert_allclose(B.fit_affine(src[:2], _affine_apply(S, src[:2])), S, atol=1e-10)
    # a single point (or all points equal) -> translation
    one = np.array([[3.0, 4.0]])
    np.testing.assert_allclose(B.fit_affine(one, one + [1.0, 2.0]), [[1, 0, 1], [0, 1, 2]])
    same = np.repeat(one, 3, axis=0)
    np.testing.assert_allclose(B.fit_affine(same, same + [-1.0, 0.5]), [[1, 0, -1], [0, 1, 0.5]])
    with pytest.raises(FommError):
        B.fit_affine(np.full((2, 2), np.nan), np.zeros((2, 2)))


def test_fit_affine_batch():
    rng = np.random.default_rng(3)
    src = rng.random((6, 2)) * 50
    As = np.stack([np.array([[1.0, 0.1 * t, t], [0.0, 1.0 - 0.05 * t, -t]]) for t in range(3)])
    dst = np.stack([_affine_apply(A, src) for A in As])
    np.testing.assert_allclose(B.fit_affine_batch(src, dst), As, atol=1e-10)
    np.testing.assert_allclose(B.fit_affine_batch(np.broadcast_to(src, dst.shape), dst), As, atol=1e-10)


@pytest.mark.parametrize("border", ["replicate", "reflect", "constant"])
def test_warp_integer_translation_is_exact(border):
    img = np.random.default_rng(4).random((20, 24, 3))
    dx, dy = 3, -2
    A = np.array([[1.0, 0.0, dx], [0.0, 1.0, dy]])
    out = B.warp_affine_frame(img, A, border=border)
    # a source pixel (x, y) moves to (x + dx, y + dy)
    np.testing.assert_array_equal(out[0 : 20 + dy, dx:24], img[-dy:20, 0 : 24 - dx])


def test_warp_borders():
    img = np.arange(5, dtype=np.float64)[None, :, None].repeat(3, axis=0).repeat(3, axis=2)  # (3, 5, 3)
    A = np.array([[1.0, 0.0, 2.0], [0.0, 1.0, 0.0]])  # shift right by 2

    def row(border):
        return B.warp_affine_frame(img, A, border=border)[1, :, 0]

    np.testing.assert_array_equal(row("replicate"), [0, 0, 0, 1, 2])
    np.testing.assert_array_equal(row("reflect"), [1, 0, 0, 1, 2])
    np.testing.assert_array_equal(row("constant"), [0, 0, 0, 1, 2])
    np.testing.assert_array_equal(B.warp_affine_frame(img + 1, A, border="constant")[1, :, 0], [0, 0, 1, 2, 3])
    with pytest.raises(FommError):
        B.warp_affine_frame(img, A, border="wrap")
    with pytest.raises(FommError):
        B.warp_affine_frame(img, np.zeros((2, 3)))


def test_warp_linear_image_exact():
    # bilinear interpolation reproduces a linear image exactly: out(q) = f(A^-1 q)
    h, w = 30, 36
    coef = np.array([[0.01, 0.02, 0.1], [-0.015, 0.01, 0.6], [0.005, -0.01, 0.4]])
    img = _linear_image(coef, *_grid(h, w))
    A = np.array([[0.95, 0.1, 1.7], [-0.08, 1.05, -0.6]])
    out = B.warp_affine_frame(img, A)
    expected, inside = _warped_linear_image(coef, A, h, w)
    assert inside.sum() > 0.7 * h * w
    np.testing.assert_allclose(out[inside], expected[inside], atol=1e-12)


def test_global_affine_baseline_reproduces_analytic_warp():
    h, w = 40, 48
    coef = np.array([[0.01, 0.015, 0.1], [-0.012, 0.01, 0.7], [0.004, -0.006, 0.5]])
    src_img = _linear_image(coef, *_grid(h, w))
    rng = np.random.default_rng(5)
    kp_src = rng.random((10, 2)) * [w - 1, h - 1]
    As = [
        np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]),
        np.array([[1.0, 0.0, 3.0], [0.0, 1.0, -2.0]]),
        np.array([[0.9, 0.15, 2.5], [-0.1, 1.08, 1.5]]),
    ]
    kp_drv = np.stack([_affine_apply(A, kp_src) for A in As])
    kp_drv[2, 7] = np.nan  # a missing keypoint changes nothing for an exact affine
    out = B.global_affine_baseline(src_img, kp_src, kp_drv)
    assert out.shape == (3, h, w, 3)
    np.testing.assert_allclose(out[0], src_img, atol=1e-12)
    for t, A in enumerate(As):
        expected, inside = _warped_linear_image(coef, A, h, w)
        np.testing.assert_allclose(out[t][inside], expected[inside], atol=1e-10)
        # and it equals warping with the true affine everywhere
        np.testing.assert_allclose(out[t], B.warp_affine_frame(src_img, A), atol=1e-9)


def test_global_affine_baseline_smooth_image_interior():
    img = _smooth_image()
    A = np.array([[1.0, 0.0, 2.0], [0.0, 1.0, 3.0]])
    kp_src = np.array([[5.0, 5.0], [40.0, 8.0], [20.0, 30.0], [33.0, 33.0]])
    out = B.global_affine_baseline(img, kp_src, _affine_apply(A, kp_src)[None])
    np.testing.assert_allclose(out[0, 3:, 2:], img[:-3, :-2], atol=1e-9)
