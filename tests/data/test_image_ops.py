"""fomm.data.image_ops: one rule for values, channels, sizes and keypoint pixels, everywhere."""

from __future__ import annotations

import warnings

import cv2
import numpy as np
import pytest
import torch

from fomm.data import image_ops as ops
from fomm.data.video_io import read_image
from fomm.errors import FommError


def _rgba() -> np.ndarray:
    rgba = np.zeros((4, 6, 4), np.uint8)
    rgba[..., 0] = 200
    rgba[..., 1] = np.arange(6, dtype=np.uint8) * 40
    rgba[..., 3] = np.array([0, 64, 128, 192, 255, 255], np.uint8)
    return rgba


def test_rgba_array_and_rgba_file_give_the_same_image(tmp_path):
    rgba = _rgba()
    cv2.imwrite(str(tmp_path / "a.png"), cv2.cvtColor(rgba, cv2.COLOR_RGBA2BGRA))
    with pytest.warns(UserWarning, match="white"):
        from_array = ops.to_rgb_uint8(rgba)
    ops.reset_warn_once()
    with pytest.warns(UserWarning, match="white"):
        from_file = read_image(tmp_path / "a.png")
    np.testing.assert_array_equal(from_array, from_file)
    np.testing.assert_array_equal(from_array[0, 0], [255, 255, 255])  # transparent -> white
    np.testing.assert_array_equal(from_array[0, 5], [200, 200, 0])  # opaque -> its colour
    # the float path composites the same way (within rounding)
    as_float = ops.to_rgb_float01(rgba)
    assert as_float.dtype == np.float32 and as_float.shape == (4, 6, 3)
    assert np.abs(as_float * 255 - from_array).max() <= 0.5 + 1e-3
    as_float2 = ops.to_rgb_float01(rgba.astype(np.float32) / 255)
    np.testing.assert_allclose(as_float2, as_float, atol=1e-6)


def test_float_path_values_gray_and_clips():
    gray = np.linspace(0, 1, 12, dtype=np.float32).reshape(3, 4)
    with pytest.warns(UserWarning, match="grayscale"):
        out = ops.to_rgb_float01(gray)
    assert out.shape == (3, 4, 3) and (out[..., 1] == gray).all()
    clip = ops.to_rgb_float01(np.zeros((2, 3, 4), np.uint8), ndim=4)  # a gray clip (T, H, W)
    assert clip.shape == (2, 3, 4, 3)
    np.testing.assert_allclose(ops.to_rgb_float01(np.full((2, 2, 3), 51, np.uint8)), 0.2, atol=1e-7)
    np.testing.assert_allclose(ops.to_rgb_float01(torch.ones(2, 2, 3)), 1.0)
    with pytest.warns(UserWarning, match="clipped"):
        np.testing.assert_allclose(ops.to_rgb_float01(np.full((2, 2, 3), 1.01)), 1.0)
    with pytest.raises(FommError, match=r"outside \[0, 1\].*divide by 255"):
        ops.to_rgb_float01(np.full((2, 2, 3), 255.0))
    with pytest.raises(FommError, match="5 channels"):
        ops.to_rgb_float01(np.zeros((4, 4, 5)), ndim=3)
    with pytest.raises(FommError, match=r"expected \(T, H, W, 3\)"):
        ops.to_rgb_float01(np.zeros((1, 1, 4, 4, 3)), ndim=4)


def test_non_finite_values_are_counted_and_located():
    a = np.zeros((3, 4, 5, 3), np.float32)
    a[1, 2, 3, 0] = np.nan
    a[2, 0, 0, 1] = np.inf
    with pytest.raises(
        FommError, match=r"driving video has 2 NaN or infinite values \(first at index \(1, 2, 3, 0\)\)"
    ):
        ops.to_rgb_float01(a, "driving video", ndim=4)
    with pytest.raises(FommError, match=r"1 NaN or infinite value \(first at index \(0, 1, 0\)\)"):
        b = np.zeros((2, 2, 3))
        b[0, 1, 0] = -np.inf
        ops.to_rgb_uint8(b)
    ops.check_finite(np.zeros(3, np.uint8))  # integers are always finite


def test_to_uint8_and_to_float01():
    np.testing.assert_array_equal(ops.to_uint8(np.array([0.0, 0.5, 1.0, 1.2, -0.1, np.nan])), [0, 128, 255, 255, 0, 0])
    a = np.arange(5, dtype=np.uint8)
    assert ops.to_uint8(a) is a
    assert ops.to_uint8(torch.ones(2)).tolist() == [255, 255]
    assert ops.to_float01(np.array([255], np.uint8), np.float64).dtype == np.float64
    np.testing.assert_allclose(ops.to_float01(np.array([0, 51, 255], np.uint8)), [0, 0.2, 1.0], atol=1e-7)
    with pytest.raises(FommError, match="dtype"):
        ops.to_float01(np.array(["a"]))


def test_resize_frames_and_interpolations():
    frames = np.zeros((2, 3, 4, 4, 3), np.float32)
    frames[..., :, 2:, :] = 1.0
    out = ops.resize_frames(frames, (8, 8), interpolation="nearest")
    assert out.shape == (2, 3, 8, 8, 3)
    assert set(np.unique(out)) == {0.0, 1.0}  # nearest: no new values
    assert ops.resize_frames(frames, (4, 4)) is frames
    smooth = ops.resize_frames(frames[0], (8, 8))
    assert 0 < smooth[0, 0, 3, 0] < 1 and smooth.min() >= 0 and smooth.max() <= 1
    with pytest.raises(FommError, match="interpolation"):
        ops.resize_frame(frames[0, 0], (8, 8), interpolation="lanczos9")


def test_fit_aspect_crop_pad_stretch():
    wide = np.arange(2 * 6 * 1, dtype=np.uint8).reshape(2, 6, 1)
    np.testing.assert_array_equal(ops.fit_aspect(wide, (4, 4), "crop"), wide[:, 2:4])
    padded = ops.fit_aspect(wide, (4, 4), "pad")
    assert padded.shape == (6, 6, 1)
    np.testing.assert_array_equal(padded[2:4], wide)
    assert (padded[:2] == 0).all() and (padded[4:] == 0).all()
    assert ops.fit_aspect(wide, (4, 4), "stretch") is wide
    tall = np.ones((9, 3, 3), np.float32)
    assert ops.fit_aspect(tall, (2, 2), "crop").shape == (3, 3, 3)
    assert ops.fit_aspect(tall, (2, 2), "pad", fill=1.0).shape == (9, 9, 3)
    with pytest.raises(FommError, match="crop, pad, stretch"):
        ops.fit_aspect(tall, (2, 2), "squash")


def test_kp_to_pixels_matches_the_model_grid():
    from fomm.models.geometry import make_coordinate_grid

    grid = make_coordinate_grid((5, 7), dtype=torch.float64)  # (H, W, 2), x = 2 i / (W - 1) - 1
    px = ops.kp_to_pixels(grid, (5, 7))
    assert isinstance(px, torch.Tensor)
    np.testing.assert_allclose(px[..., 0].numpy(), np.tile(np.arange(7), (5, 1)), atol=1e-12)
    np.testing.assert_allclose(px[..., 1].numpy(), np.tile(np.arange(5)[:, None], (1, 7)), atol=1e-12)
    kp = np.random.default_rng(0).uniform(-1, 1, (3, 10, 2))
    np.testing.assert_allclose(ops.pixels_to_kp(ops.kp_to_pixels(kp, (64, 32)), (64, 32)), kp, atol=1e-12)
    np.testing.assert_allclose(ops.kp_to_pixels(np.array([0.0, 0.0]), 65), [32, 32])  # int: a square
    with pytest.raises(FommError, match="size_hw"):
        ops.kp_to_pixels(kp, (0, 4))


def test_opaque_alpha_is_dropped_silently():
    rgba = _rgba()
    rgba[..., 3] = 255
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_array_equal(ops.to_rgb_uint8(rgba), rgba[..., :3])
        np.testing.assert_allclose(ops.to_rgb_float01(rgba), rgba[..., :3] / 255, atol=1e-7)


def test_non_finite_values_in_a_float_image_file(tmp_path):
    image = np.full((4, 5, 3), 0.5, np.float32)
    image[2, 3, 1] = np.nan
    assert cv2.imwrite(str(tmp_path / "x.tiff"), image)
    with pytest.raises(FommError, match=r"image .*x\.tiff has 1 NaN or infinite value \(first at index \(2, 3, 1\)\)"):
        read_image(tmp_path / "x.tiff")
