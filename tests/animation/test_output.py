"""fomm.animation.output: keypoints on every panel, also when the face is pasted back into the photo."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import torch

from fomm.animation.options import AnimateOptions
from fomm.animation.output import Panels, compose, keypoints_in_photo, source_panel
from fomm.data.image_ops import kp_to_pixels
from fomm.faces.paste_back import PasteBack

BOX = (40, 30, 104, 94)  # x0, y0, x1, y1: a 64-pixel face crop
PHOTO_HW = (120, 160)


def _photo() -> np.ndarray:
    yy, xx = np.mgrid[: PHOTO_HW[0], : PHOTO_HW[1]]
    return np.stack([xx % 200, yy % 200, np.full_like(xx, 90)], -1).astype(np.uint8)


def _batch(kp) -> dict:
    value = torch.tensor([kp], dtype=torch.float32)
    return {
        "prediction": np.full((1, 64, 64, 3), 0.5, np.float32),
        "kp_norm": {"value": value},
        "kp_driving": {"value": value},
    }


def test_crop_keypoints_land_on_the_box_in_the_photo():
    kp = np.array([[-1.0, -1.0], [1.0, 1.0], [0.0, 0.0]])
    pixels = kp_to_pixels(keypoints_in_photo(kp, BOX, PHOTO_HW), PHOTO_HW)
    np.testing.assert_allclose(pixels, [[40, 30], [103, 93], [71.5, 61.5]], atol=1e-9)


def _changed(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    ys, xs = np.nonzero(np.any(a != b, axis=-1))
    return np.array([xs.min(), ys.min(), xs.max(), ys.max()]) if len(xs) else None


def test_pasted_back_result_and_source_panel_get_keypoints():
    """--crop --show-keypoints: the keypoints are drawn on the photo the face is pasted into, at the face."""
    photo = _photo()
    plain, shown = AnimateOptions(crop=True), AnimateOptions(crop=True, show_keypoints=True)
    kp = [[0.0, 0.0], [-0.5, 0.5]]  # the crop's centre and a point lower left in it
    panels = Panels(paster=PasteBack(photo, BOX))
    without = compose(_batch(kp), None, plain, panels)[0]
    with_kp = compose(_batch(kp), None, shown, panels)[0]
    x0, y0, x1, y1 = _changed(without, with_kp)
    assert BOX[0] <= x0 and x1 < BOX[2] and BOX[1] <= y0 and y1 < BOX[3]  # drawn in the face box only
    assert x0 < 58 and y1 > 70  # both keypoints, the lower-left one included
    engine = SimpleNamespace(kp_source={"value": torch.tensor([kp])}, model=SimpleNamespace(frame_shape=(64, 64)))
    panel = source_panel(engine, photo[30:94, 40:104], shown, photo, BOX)
    x0, y0, x1, y1 = _changed(photo, panel)
    assert BOX[0] <= x0 and x1 < BOX[2] and BOX[1] <= y0 and y1 < BOX[3]
    np.testing.assert_array_equal(source_panel(engine, None, plain, photo, BOX), photo)


def test_side_by_side_with_paste_back_draws_on_every_panel():
    photo = _photo()
    kp = [[0.0, 0.0]]
    engine = SimpleNamespace(kp_source={"value": torch.tensor([kp])}, model=SimpleNamespace(frame_shape=(64, 64)))
    frames = {}
    for show in (False, True):
        o = AnimateOptions(crop=True, show_keypoints=show, layout="side-by-side", labels=False, panel_size=64)
        panels = Panels(paster=PasteBack(photo, BOX), source_panel=source_panel(engine, None, o, photo, BOX))
        frames[show] = compose(_batch(kp), [np.full((64, 64, 3), 128, np.uint8)], o, panels)[0]
    # panels side by side at the photo's height: source (160 wide), driving (enlarged to 120), result (160)
    w = PHOTO_HW[1]
    changed = np.any(frames[False] != frames[True], axis=(0, 2))
    assert changed[:w].any() and changed[w : w + 120].any() and changed[w + 120 :].any()
