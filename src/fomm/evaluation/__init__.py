"""Evaluation: reconstruction / animation metrics and simple baselines.

See :mod:`fomm.evaluation.metrics` (L1, PSNR, SSIM, AKD, AED, summaries) and
:mod:`fomm.evaluation.baselines` (static and oracle global-affine baselines).
"""

from fomm.evaluation.baselines import (
    fit_affine,
    fit_affine_batch,
    global_affine_baseline,
    static_baseline,
    warp_affine_frame,
)
from fomm.evaluation.metrics import (
    PSNR_CAP_DB,
    aed,
    akd,
    as_float_frames,
    frame_metrics,
    kp_from_pixels,
    kp_to_pixels,
    l1,
    psnr,
    psnr_per_frame,
    ssim,
    ssim_per_frame,
    summarize,
)

__all__ = [
    "PSNR_CAP_DB",
    "aed",
    "akd",
    "as_float_frames",
    "fit_affine",
    "fit_affine_batch",
    "frame_metrics",
    "global_affine_baseline",
    "kp_from_pixels",
    "kp_to_pixels",
    "l1",
    "psnr",
    "psnr_per_frame",
    "ssim",
    "ssim_per_frame",
    "static_baseline",
    "summarize",
    "warp_affine_frame",
]
