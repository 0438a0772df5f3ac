"""Tests for fomm.faces.paste_back: exact photo outside the box, a smooth seam, colour match, even size."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from fomm.errors import FommError
from fomm.faces.paste_back import PasteBack, even_size, feather_mask, paste_back


def smooth_image(h: int, w: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    img = cv2.GaussianBlur(rng.integers(0, 256, (h, w, 3)).astype(np.uint8), (0, 0), 3)
    return cv2.normalize(img, None, 20, 230, cv2.NORM_MINMAX)


def border_steps(out: np.ndarray, box) -> float:
    """Largest step between horizontally or vertically adjacent pixels along the box border
    (each pair that has one pixel inside the box and one outside)."""
    x0, y0, x1, y1 = box
    o = out.astype(np.int32)
    steps = [
        np.abs(o[y0:y1, x0] - o[y0:y1, x0 - 1]),
        np.abs(o[y0:y1, x1 - 1] - o[y0:y1, x1]),
        np.abs(o[y0, x0:x1] - o[y0 - 1, x0:x1]),
        np.abs(o[y1 - 1, x0:x1] - o[y1, x0:x1]),
    ]
    return float(max(s.max() for s in steps))


def max_step(image: np.ndarray) -> float:
    i = image.astype(np.int32)
    return float(max(np.abs(np.diff(i, axis=0)).max(), np.abs(np.diff(i, axis=1)).max()))


def test_pixels_outside_the_box_are_the_photo_and_the_size_is_even():
    photo = smooth_image(75, 101, 0)
    box = (30, 20, 70, 60)
    frames = np.stack([smooth_image(64, 64, s) for s in (1, 2, 3)])
    out = paste_back(photo, box, frames)
    assert out.shape == (3, 74, 100, 3) and out.dtype == np.uint8  # rounded down to even
    assert even_size(75, 101) == (74, 100) and even_size(1, 1) == (2, 2)
    inside = np.zeros((74, 100), bool)
    inside[20:60, 30:70] = True
    for frame in out:
        np.testing.assert_array_equal(frame[~inside], photo[:74, :100][~inside])
        assert not np.array_equal(frame[inside], photo[:74, :100][inside])
    # streaming gives the same frames; float frames in [0, 1] are accepted
    paster = PasteBack(photo, box)
    np.testing.assert_array_equal(np.stack(list(paster.paste_all(iter(frames)))), out)
    np.testing.assert_array_equal(paster(frames[0].astype(np.float32) / 255), out[0])


def test_the_seam_is_smooth():
    box = (40, 30, 140, 130)  # 100 px: a 10 px feather band
    photo = np.zeros((160, 180, 3), np.uint8)
    white = np.full((1, 64, 64, 3), 255, np.uint8)
    hard = paste_back(photo, box, white, feather=0)[0]
    assert border_steps(hard, box) == 255  # a hard edge: what the feather must remove
    soft = PasteBack(photo, box)
    assert soft.margin == 10
    # the smoothstep's slope is at most 1.5 / margin of the difference
    bound = 255 * 1.5 / soft.margin + 1
    assert max_step(soft(white[0])) <= bound and border_steps(soft(white[0]), box) <= bound
    # textured inputs: steps no larger than the inputs' own plus the blend's
    photo = smooth_image(160, 180, 4)
    frame = smooth_image(100, 100, 5)  # the box's size: no resampling in the bound
    out = PasteBack(photo, box)(frame)
    diff = np.abs(frame.astype(np.int32) - photo[30:130, 40:140]).max()
    bound = max_step(photo) + max_step(frame) + diff * 1.5 / 10 + 1
    assert border_steps(out, box) <= bound and max_step(out) <= bound


def test_sides_on_the_photo_border_are_not_feathered():
    photo = np.zeros((100, 100, 3), np.uint8)
    frame = np.full((50, 50, 3), 200, np.uint8)
    out = PasteBack(photo, (0, 0, 50, 50))(frame)
    assert (out[0, :40] == 200).all() and (out[:40, 0] == 200).all()  # no fade at the photo's edge
    assert out[49, 49, 0] < 20 and out[25, 25, 0] == 200  # the inner sides fade out
    mask = feather_mask((10, 10), 3, (False, True, True, False))
    assert mask[5, 0] == 1 and mask[9, 5] == 1 and mask[0, 5] < 0.1 and mask[5, 9] < 0.1


def test_color_match_removes_a_colour_cast():
    photo = smooth_image(120, 120, 6)
    box = (20, 20, 100, 100)
    region = photo[20:100, 20:100].astype(np.float32)
    cast = np.clip(region * [0.7, 0.9, 1.1] + [40, -10, 5], 0, 255).astype(np.uint8)
    ring = np.ones((80, 80), bool)
    ring[8:72, 8:72] = False
    for match, low, high in ((False, 8, 255), (True, 0, 3)):
        out = PasteBack(photo, box, color_match=match)(cast)
        err = np.abs(out[20:100, 20:100][ring].mean(axis=0) - region[ring].mean(axis=0)).max()
        assert low <= err <= high, (match, err)


def test_bad_boxes_and_options_are_one_line_errors():
    photo = np.zeros((50, 60, 3), np.uint8)
    with pytest.raises(FommError, match=r"crop box \(10, 10, 70, 40\) is not inside the 60x50 photo"):
        PasteBack(photo, (10, 10, 70, 40))
    with pytest.raises(FommError, match="not inside"):
        PasteBack(photo, (10, 10, 10, 40))
    with pytest.raises(FommError, match=r"is not \(x0, y0, x1, y1\)"):
        PasteBack(photo, (1, 2))
    with pytest.raises(FommError, match="feather must be in"):
        PasteBack(photo, (0, 0, 10, 10), feather=0.9)
    with pytest.raises(FommError, match="no frames"):
        paste_back(photo, (0, 0, 10, 10), [])
