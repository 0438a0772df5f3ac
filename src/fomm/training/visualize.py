"""Training visualisation: one image per logged batch, like the original ``Visualizer``.

Columns, one row per sample (at most ``max_rows``), each named in a band above the first row: the source with its keypoints, the driving
frame with its keypoints, the equivariance-warped driving frame with its keypoints (when the loss
computed it), the deformed source (source warped by the dense flow), the occlusion map, the
prediction with the driving keypoints, and the prediction alone. Keypoints are drawn with cv2 as
filled circles coloured along a rainbow (keypoint k has the same colour everywhere). Small frames
are enlarged (nearest neighbour) to at least ``min_size`` pixels so the keypoints stay legible.

Thin-Plate Spline Motion Model runs (``kp_group=5``: the 5 control points of each TPS share a
colour) add the contribution maps when ``generated`` has them: each pixel coloured by the
transformations that move it (Eq. 6's softmax weights; the background in gray), in the colours of
their keypoints.
"""

from __future__ import annotations

import colorsys
from collections.abc import Mapping
from pathlib import Path

import cv2
import numpy as np
import torch

from fomm.atomic import atomic_path
from fomm.data.drawing import labelled_row
from fomm.data.image_ops import kp_to_pixels, resize_frame, to_rgb_uint8, to_uint8


def keypoint_colors(num_kp: int) -> np.ndarray:
    """``(K, 3)`` uint8 RGB colours spread along the hue circle (like gist_rainbow)."""
    return np.array(
        [[int(255 * c) for c in colorsys.hsv_to_rgb(0.85 * k / max(1, num_kp - 1), 1.0, 1.0)] for k in range(num_kp)],
        dtype=np.uint8,
    )


def _to_hwc_uint8(image: torch.Tensor, size: int) -> np.ndarray:
    """``(C, h, w)`` float in [0, 1] (C = 1 or 3) -> ``(size, size, 3)`` uint8 (nearest-neighbour
    enlargement, :mod:`fomm.data.image_ops`)."""
    image = image.detach().float().cpu()
    if image.shape[0] == 1:  # a map (occlusion): shown in gray on purpose
        image = image.expand(3, *image.shape[1:])
    arr = to_rgb_uint8(to_uint8(image.permute(1, 2, 0)), "visualised image", ndim=3)
    return np.ascontiguousarray(resize_frame(arr, (size, size), interpolation="nearest"))


def group_colors(num_kp: int, group: int = 1) -> np.ndarray:
    """``(num_kp, 3)`` uint8 colours, the same for each run of ``group`` consecutive keypoints."""
    return np.repeat(keypoint_colors(-(-num_kp // group)), group, axis=0)[:num_kp]


def draw_keypoints(image: np.ndarray, kp: np.ndarray, radius: int = 3, group: int = 1) -> np.ndarray:
    """Draw ``(K, 2)`` keypoints in [-1, 1] (x, y) on an ``(H, W, 3)`` uint8 image (a copy);
    pixels by :func:`fomm.data.image_ops.kp_to_pixels`; ``group`` consecutive keypoints share a colour."""
    out = image.copy()
    h, w = out.shape[:2]
    colors = group_colors(len(kp), group)
    for k, (cx, cy) in enumerate(kp_to_pixels(np.asarray(kp, dtype=np.float64), (h, w))):
        if not (np.isfinite(cx) and np.isfinite(cy)):
            continue
        center = (int(round(cx)), int(round(cy)))
        cv2.circle(out, center, int(radius), tuple(int(c) for c in colors[k]), thickness=-1, lineType=cv2.LINE_AA)
    return out


def contribution_image(maps: torch.Tensor, size: int) -> np.ndarray:
    """``(N + 1, h, w)`` softmax weights (background first) -> ``(size, size, 3)`` uint8: the mix of
    gray for the background and the group colours of the N transformations."""
    palette = np.concatenate([[[128, 128, 128]], keypoint_colors(maps.shape[0] - 1)]).astype(np.float32) / 255
    mixed = torch.einsum("nhw,nc->chw", maps.detach().float().cpu(), torch.from_numpy(palette))
    return _to_hwc_uint8(mixed.clamp(0, 1), size)


def make_visualization(
    batch: Mapping[str, torch.Tensor],
    generated: Mapping,
    max_rows: int = 4,
    min_size: int = 128,
    kp_size: int | None = None,
    kp_group: int = 1,
) -> np.ndarray:
    """The grid image ``(band + rows * S, columns * S, 3)`` uint8 described in the module doc (the
    first row has a band with the column names above it); ``kp_group`` keypoints share a colour."""
    source, driving = batch["source"], batch["driving"]
    rows = min(int(max_rows), source.shape[0])
    size = max(int(min_size), int(source.shape[-1]))
    radius = int(kp_size) if kp_size else max(2, size // 48)

    def kp(name, i):
        d = generated.get(name)
        return None if d is None else d["value"][i].detach().float().cpu().numpy()

    lines = []
    for i in range(rows):
        cols = [
            ("source", draw_keypoints(_to_hwc_uint8(source[i], size), kp("kp_source", i), radius, kp_group)),
            ("driving", draw_keypoints(_to_hwc_uint8(driving[i], size), kp("kp_driving", i), radius, kp_group)),
        ]
        if "transformed_frame" in generated:
            warped = _to_hwc_uint8(generated["transformed_frame"][i], size)
            cols.append(("equivariance warp", draw_keypoints(warped, kp("transformed_kp", i), radius, kp_group)))
        if "deformed" in generated:
            cols.append(("deformed source", _to_hwc_uint8(generated["deformed"][i], size)))
        if "occlusion_map" in generated:
            cols.append(("occlusion", _to_hwc_uint8(generated["occlusion_map"][i], size)))
        if "contribution_maps" in generated:
            cols.append(("contribution", contribution_image(generated["contribution_maps"][i], size)))
        pred = _to_hwc_uint8(generated["prediction"][i], size)
        cols.append(("prediction + kp", draw_keypoints(pred, kp("kp_driving", i), radius, kp_group)))
        cols.append(("prediction", pred))
        if i == 0:  # the first row carries the column names
            lines.append(labelled_row([c for _, c in cols], [n for n, _ in cols], min_height=size))
        else:
            lines.append(np.concatenate([c for _, c in cols], axis=1))
    return np.concatenate(lines, axis=0)


def save_png(path: str | Path, image: np.ndarray) -> Path:
    """Write an RGB uint8 image as PNG atomically."""
    ok, buf = cv2.imencode(".png", np.ascontiguousarray(image[..., ::-1]))
    if not ok:  # pragma: no cover
        raise OSError(f"could not encode {path}")
    with atomic_path(path) as tmp:
        tmp.write_bytes(buf.tobytes())
    return Path(path)
