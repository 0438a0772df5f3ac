"""Small helpers for tests, benchmarks and examples: seeded random models and checkpoints, tiny
moving clips (a smooth pattern; a square, written as a folder of frames: a dataset video), and a
photo placed on a background (to make clips of a real face).

A random model is built from a preset with a fixed seed and then perturbed (BatchNorm affine
parameters and statistics, a non-zero Jacobian head, a sharper keypoint head), the way the parity
fixture does it, so that its outputs are not trivially flat.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch

from fomm.config import Config, resolve_config
from fomm.data import video_io
from fomm.models.checkpoint import save_checkpoint
from fomm.models.first_order_model import FirstOrderModel


def random_model(config: Config | str = "tiny-64", seed: int = 0, with_discriminator: bool = False) -> FirstOrderModel:
    """A seeded random model in eval mode."""
    cfg = resolve_config(config).copy()
    torch.manual_seed(seed)
    model = FirstOrderModel(cfg, with_discriminator=with_discriminator)
    gen = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.weight.add_(0.1 * torch.randn(module.weight.shape, generator=gen))
                module.bias.add_(0.1 * torch.randn(module.bias.shape, generator=gen))
                module.running_mean.copy_(0.1 * torch.randn(module.running_mean.shape, generator=gen))
                module.running_var.copy_(1 + 0.5 * torch.rand(module.running_var.shape, generator=gen))
        if model.kp_detector.jacobian is not None:
            model.kp_detector.jacobian.weight.copy_(
                0.02 * torch.randn(model.kp_detector.jacobian.weight.shape, generator=gen)
            )
        model.kp_detector.kp.weight.mul_(5)
        model.generator.final.weight.mul_(10)
    return model.eval()


# the widths of the 512 parity fixture (tests/fixtures/parity-512): (block_expansion, max_features)
SMALL_WIDTHS = {"kp_detector": (4, 128), "generator": (8, 64), "dense_motion": (4, 64), "discriminator": (4, 64)}


def small_config(preset: str = "vox-512", anti_alias_sigma: float | None = None) -> Config:
    """``preset``'s structure (frame size, scale factors, block counts) with small widths, so a
    512 x 512 model runs in about a second a frame on a CPU. ``anti_alias_sigma``: 1.5 builds the
    community's 13 x 13 kind of vox-512 (default: the original's blur)."""
    cfg = resolve_config(preset).copy()
    mp = cfg.model_params
    dense = mp.generator_params.dense_motion_params
    for section, key in (
        (mp.kp_detector_params, "kp_detector"),
        (mp.generator_params, "generator"),
        (dense, "dense_motion"),
        (mp.discriminator_params, "discriminator"),
    ):
        section.block_expansion, section.max_features = SMALL_WIDTHS[key]
    if anti_alias_sigma is not None:
        mp.kp_detector_params.anti_alias_sigma = dense.anti_alias_sigma = anti_alias_sigma
    cfg.name = f"{preset}-small"
    return cfg


def random_checkpoint(
    path: str | Path, config: Config | str = "tiny-64", seed: int = 0, original_format: bool = False
) -> Path:
    """Write a seeded random model as a checkpoint (ours, or the original layout)."""
    model = random_model(config, seed, with_discriminator=True)
    if original_format:
        data = {part: getattr(model, part).state_dict() for part in ("generator", "kp_detector", "discriminator")}
        data["epoch"] = 0
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(data, path)
        return path
    return save_checkpoint(path, model)


TINY_TPSMM = {
    "dataset_params": {"frame_shape": [64, 64, 3]},
    "model_params": {
        "common_params": {"num_tps": 2, "num_channels": 3, "bg": True, "multi_mask": True},
        "generator_params": {"block_expansion": 4, "max_features": 16, "num_down_blocks": 3},
        "dense_motion_params": {"block_expansion": 4, "max_features": 16, "num_blocks": 3, "scale_factor": 0.25},
        "avd_network_params": {"id_bottle_size": 4, "pose_bottle_size": 4},
        "resnet_width": 4,
    },
    "train_params": {"scales": [1, 0.5], "batch_size": 2, "num_repeats": 1, "dropout_epoch": 1, "bg_start": 0},
}


def random_tpsmm_model(config=None, seed: int = 0):
    """A seeded random Thin-Plate Spline Motion Model (default: 64 x 64, 2 TPS, tiny widths) in eval
    mode, with its AVD network and background predictor; normalisation parameters perturbed and the
    heads sharpened so that outputs are not flat."""
    from fomm.models.tpsmm import TpsmmModel

    torch.manual_seed(seed)
    model = TpsmmModel(TINY_TPSMM if config is None else config, with_bg=True)
    gen = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, (torch.nn.BatchNorm2d, torch.nn.BatchNorm1d, torch.nn.InstanceNorm2d)):
                module.weight.add_(0.1 * torch.randn(module.weight.shape, generator=gen))
                module.bias.add_(0.1 * torch.randn(module.bias.shape, generator=gen))
            if isinstance(module, (torch.nn.BatchNorm2d, torch.nn.BatchNorm1d)):
                module.running_var.copy_(1 + 0.5 * torch.rand(module.running_var.shape, generator=gen))
        model.kp_detector.fg_encoder.fc.weight.mul_(4)
        model.dense_motion_network.maps.weight.mul_(4)
        model.inpainting_network.final.weight.mul_(4)
    model.has_avd = True
    return model.eval()


def driving_clip(num_frames: int, size: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A smooth moving pattern: the source and ``num_frames`` driving frames, float32 ``(size,
    size, 3)`` in [0, 1] (the benchmarks' input: speed does not depend on the pixels)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / (size - 1)
    freq = rng.uniform(3, 7, size=3)
    frames = []
    for t in range(num_frames + 1):
        dx, dy = 0.05 * np.sin(0.2 * t), 0.04 * np.cos(0.15 * t)
        frames.append(np.stack([0.5 + 0.4 * np.sin(freq[c] * (xx + dx) + 2 * (yy + dy) * c) for c in range(3)], -1))
    frames = np.clip(np.stack(frames), 0, 1).astype(np.float32)
    return frames[0], frames[1:]


def place(photo: np.ndarray, background: np.ndarray, anchor, at, scale: float = 1.0, angle: float = 0.0) -> np.ndarray:
    """A copy of ``background`` with ``photo`` scaled by ``scale`` and turned by ``angle`` degrees
    about its point ``anchor`` (x, y), which lands on ``at``."""
    m = cv2.getRotationMatrix2D(anchor, angle, scale)
    m[:, 2] += (at[0] - anchor[0], at[1] - anchor[1])
    out = background.copy()
    size = (background.shape[1], background.shape[0])
    cv2.warpAffine(photo, m, size, dst=out, borderMode=cv2.BORDER_TRANSPARENT)
    return out


def moving_square_video(size: int, num_frames: int, seed: int) -> np.ndarray:
    """A coloured square moving over a coloured background, uint8 (T, size, size, 3)."""
    rng = np.random.default_rng(seed)
    bg = rng.integers(0, 120, 3)
    fg = rng.integers(130, 256, 3)
    side = size // 3
    frames = np.empty((num_frames, size, size, 3), np.uint8)
    x0, y0 = rng.integers(0, size - side, 2)
    dx, dy = rng.integers(-2, 3, 2)
    for t in range(num_frames):
        img = np.empty((size, size, 3), np.uint8)
        img[:] = bg
        x = int(np.clip(x0 + dx * t, 0, size - side))
        y = int(np.clip(y0 + dy * t, 0, size - side))
        img[y : y + side, x : x + side] = fg
        img[y + side // 3 : y + 2 * side // 3, x + side // 3 : x + 2 * side // 3] = 255 - fg
        frames[t] = img
    return frames


def write_frame_folder(folder: str | Path, frames) -> Path:
    """``frames`` (RGB) as ``folder``/0000000.png, 0000001.png, ...: a video of a dataset."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for t, frame in enumerate(frames):
        video_io.write_image(folder / f"{t:07d}.png", frame)
    return folder
