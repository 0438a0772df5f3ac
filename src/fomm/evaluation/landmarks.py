"""Evaluation landmark detectors for the procedural datasets (``puppet`` and ``face``).

The paper measures keypoint accuracy (AKD) with external pose / face-landmark networks. For the
procedural datasets of :mod:`fomm.data.synthetic` the project trains its own small detectors on
the training split's exact ground-truth keypoints and ships them in ``fomm/assets/landmarks/``
(``<category>-<size>.pt`` state dicts, loadable with ``torch.load(weights_only=True)``, and a
``<category>-<size>.json`` beside each saying how it was trained and its error on held-out test
identities). ``scripts/train_landmarks.sh`` holds the exact commands that made them.

Network: a small fully convolutional encoder-decoder (64 -> 32 -> 16 -> 8 -> 16 -> 32) whose
``J`` heatmaps at half the input resolution are turned into coordinates with a soft-argmax, so
the output is continuous, sub-pixel, ``(x, y)`` pixel coordinates where the centre of pixel ``i``
is coordinate ``i`` (the convention of the synthetic data and of
:func:`fomm.evaluation.metrics.kp_to_pixels`).

Training (:func:`train_landmark_detector`) is deterministic for a seed (one CPU thread by
default): frames are sampled and augmented (small random affine, blur, colour jitter, noise -- so
that blurry generated frames are measured fairly) from generators seeded by ``seed``.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from fomm.atomic import atomic_path
from fomm.data.image_ops import resize_frames, to_float01, to_numpy, to_rgb_float01, to_uint8
from fomm.data.video_io import read_frames
from fomm.errors import FommError
from fomm.evaluation.metrics import akd

__all__ = [
    "ASSET_DIR",
    "FORMAT",
    "LandmarkNet",
    "LandmarkDetector",
    "train_landmark_detector",
    "load_landmark_detector",
    "shipped_detectors",
    "load_landmark_data",
    "detector_akd",
]

#: Folder of the shipped detector weights and their metadata.
ASSET_DIR = Path(__file__).resolve().parents[1] / "assets" / "landmarks"
#: Format tag stored in every detector file.
FORMAT = "fomm-landmarks-1"


# --------------------------------------------------------------------------------------------
# network
# --------------------------------------------------------------------------------------------


def _conv(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


class LandmarkNet(nn.Module):
    """Heatmap + soft-argmax keypoint regressor.

    ``forward(x)``: ``x`` float ``(B, 3, S, S)`` on ``[0, 1]`` -> ``(B, J, 2)`` pixel coordinates
    ``(x, y)`` in the input's pixels. ``S`` must be a multiple of 8.
    """

    def __init__(self, num_keypoints: int, width: int = 8):
        super().__init__()
        w = int(width)
        self.num_keypoints = int(num_keypoints)
        self.width = w
        self.stem = _conv(3, w)  # S
        self.down1 = nn.Sequential(_conv(w, 2 * w, 2), _conv(2 * w, 2 * w))  # S/2
        self.down2 = nn.Sequential(_conv(2 * w, 4 * w, 2), _conv(4 * w, 4 * w), _conv(4 * w, 4 * w))  # S/4
        self.down3 = nn.Sequential(_conv(4 * w, 6 * w, 2), _conv(6 * w, 6 * w), _conv(6 * w, 6 * w))  # S/8
        self.lateral3 = nn.Conv2d(6 * w, 4 * w, 1)
        self.up2 = _conv(4 * w, 4 * w)  # S/4
        self.lateral2 = nn.Conv2d(4 * w, 2 * w, 1)
        self.up1 = _conv(2 * w, 2 * w)  # S/2
        self.head = nn.Conv2d(2 * w, self.num_keypoints, 1)

    def heatmaps(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(B, J, S/2, S/2)``."""
        x = (x - 0.5) * 2.0
        f1 = self.down1(self.stem(x))
        f2 = self.down2(f1)
        f3 = self.down3(f2)
        u2 = self.up2(F.interpolate(self.lateral3(f3), size=f2.shape[-2:], mode="nearest") + f2)
        u1 = self.up1(F.interpolate(self.lateral2(u2), size=f1.shape[-2:], mode="nearest") + f1)
        return self.head(u1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.heatmaps(x)
        b, j, h, w = logits.shape
        prob = torch.softmax(logits.reshape(b, j, h * w).float(), dim=-1).reshape(b, j, h, w)
        # centre of heatmap cell k in input pixels (pixel centre i is coordinate i)
        xs = (torch.arange(w, dtype=prob.dtype, device=prob.device) + 0.5) * (x.shape[-1] / w) - 0.5
        ys = (torch.arange(h, dtype=prob.dtype, device=prob.device) + 0.5) * (x.shape[-2] / h) - 0.5
        px = (prob.sum(dim=2) * xs).sum(-1)
        py = (prob.sum(dim=3) * ys).sum(-1)
        return torch.stack([px, py], dim=-1)


# --------------------------------------------------------------------------------------------
# the detector: a trained network plus what it was trained on
# --------------------------------------------------------------------------------------------


def _resize_frames(frames: np.ndarray, size: int) -> np.ndarray:
    return resize_frames(frames, (size, size))


def _as_uint8_or_float(frames) -> np.ndarray:
    """``(T, H, W, 3)`` float32 in [0, 1] (one ``(H, W, 3)`` frame: T = 1), by the project's rule."""
    arr = to_numpy(frames)
    if arr.ndim == 3 and arr.shape[-1] == 3:
        arr = arr[None]
    if arr.ndim != 4 or arr.shape[-1] != 3:
        raise FommError(f"frames have shape {arr.shape}; pass RGB frames (T, H, W, 3) or one frame (H, W, 3)")
    return to_rgb_float01(arr, "frames", ndim=4)


class LandmarkDetector:
    """A trained :class:`LandmarkNet` and its metadata; call it on frames.

    ``detector(frames)`` with ``frames`` ``(T, H, W, 3)`` (or one ``(H, W, 3)``) uint8 or float in
    ``[0, 1]``, any size, returns ``(T, J, 2)`` float64 pixel coordinates in the frames' own pixels
    (frames of another size than the training size are resized for the network and the keypoints
    mapped back).
    """

    def __init__(
        self,
        net: LandmarkNet,
        category: str,
        size: int,
        keypoint_names: list[str],
        meta: dict | None = None,
        device: str | torch.device = "cpu",
    ):
        self.net = net.to(device).eval()
        self.category = category
        self.size = int(size)
        self.keypoint_names = list(keypoint_names)
        self.meta = dict(meta or {})
        self.device = torch.device(device)

    @property
    def num_keypoints(self) -> int:
        return self.net.num_keypoints

    @torch.inference_mode()
    def __call__(self, frames, batch_size: int = 64) -> np.ndarray:
        arr = _as_uint8_or_float(frames)
        t, h, w = arr.shape[:3]
        if (h, w) != (self.size, self.size):
            arr = _resize_frames(arr, self.size)
        out = np.empty((t, self.num_keypoints, 2), np.float64)
        for i in range(0, t, batch_size):
            x = torch.from_numpy(np.ascontiguousarray(arr[i : i + batch_size])).permute(0, 3, 1, 2).to(self.device)
            out[i : i + len(x)] = self.net(x).double().cpu().numpy()
        if (h, w) != (self.size, self.size):  # back to the frames' pixels (half-pixel convention)
            out[..., 0] = (out[..., 0] + 0.5) * (w / self.size) - 0.5
            out[..., 1] = (out[..., 1] + 0.5) * (h / self.size) - 0.5
        return out

    def state(self) -> dict:
        """The file payload (plain dict of tensors and values: ``torch.load(weights_only=True)``)."""
        return {
            "format": FORMAT,
            "category": self.category,
            "size": self.size,
            "num_keypoints": self.num_keypoints,
            "keypoint_names": list(self.keypoint_names),
            "width": self.net.width,
            "state_dict": {k: v.detach().cpu().clone() for k, v in self.net.state_dict().items()},
        }

    @classmethod
    def from_state(
        cls, data: dict, meta: dict | None = None, device="cpu", source: str = "detector"
    ) -> LandmarkDetector:
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise FommError(
                f"{source} is not a fomm landmark detector (no '{FORMAT}' format tag); "
                "train one with fomm train-landmarks"
            )
        net = LandmarkNet(int(data["num_keypoints"]), int(data["width"]))
        try:
            net.load_state_dict(data["state_dict"])
        except RuntimeError as exc:
            raise FommError(
                f"{source} does not fit its stated architecture ({str(exc).splitlines()[0]}); "
                "retrain it with fomm train-landmarks"
            ) from None
        return cls(net, str(data["category"]), int(data["size"]), list(data["keypoint_names"]), meta, device)


def shipped_detectors() -> dict[tuple[str, int], Path]:
    """``{(category, size): path}`` of the detector weights shipped with the package."""
    found = {}
    for p in sorted(ASSET_DIR.glob("*.pt")):
        stem = p.stem
        if "-" not in stem:
            continue
        cat, _, size = stem.rpartition("-")
        if size.isdigit():
            found[(cat, int(size))] = p
    return found


def _read_detector_file(path: Path, device) -> LandmarkDetector:
    if not path.is_file():
        raise FommError(
            f"landmark detector {path} not found; pass an existing .pt file or train one with fomm train-landmarks"
        )
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - unpickling raises many kinds on damaged files
        raise FommError(
            f"landmark detector {path} is unreadable ({type(exc).__name__}); retrain it with fomm train-landmarks"
        ) from None
    meta_path = path.with_suffix(".json")
    meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
    return LandmarkDetector.from_state(data, meta, device, source=str(path))


def load_landmark_detector(
    category: str | None = None, size: int = 64, path: str | Path | None = None, device: str | torch.device = "cpu"
) -> LandmarkDetector:
    """The shipped detector for ``category`` (``'puppet'`` or ``'face'``), or the one at ``path``.

    The shipped detectors were trained at 64x64. For another ``size`` the detector of the nearest
    trained size is returned; it resizes frames to its own size (see :class:`LandmarkDetector`).
    Its ``meta`` holds the training record, including ``test_akd_px`` (error on held-out frames).
    """
    if path is not None:
        return _read_detector_file(Path(path), device)
    shipped = shipped_detectors()
    sizes = sorted(s for c, s in shipped if c == category)
    if not sizes:
        cats = sorted({c for c, _ in shipped}) or ["none"]
        raise FommError(
            f"no shipped landmark detector for category {category!r} (shipped: {', '.join(cats)}); "
            "train one with fomm train-landmarks and pass its path"
        )
    best = min(sizes, key=lambda s: (abs(math.log(s / max(int(size), 1))), -s))
    return _read_detector_file(shipped[(category, best)], device)


# --------------------------------------------------------------------------------------------
# data
# --------------------------------------------------------------------------------------------


def _dataset_meta(root: Path) -> dict:
    meta_path = root / "dataset.json"
    if not meta_path.is_file():
        raise FommError(
            f"{root} has no dataset.json; landmark detectors train on a procedural dataset "
            "made with fomm synth (e.g. fomm synth --category puppet --out DIR)"
        )
    meta = json.loads(meta_path.read_text())
    if meta.get("category") not in ("puppet", "face"):
        raise FommError(f"{meta_path} names category {meta.get('category')!r}; expected puppet or face")
    return meta


def load_landmark_data(
    data_root: str | Path, split: str = "train", max_videos: int | None = None, frame_step: int = 1
) -> tuple[np.ndarray, np.ndarray, dict]:
    """All frames of a procedural split and their keypoints.

    Returns ``(frames uint8 (N, S, S, 3), keypoints_px float32 (N, J, 2), dataset meta)``;
    ``frame_step`` keeps every k-th frame of each video.
    """
    root = Path(data_root)
    if not root.is_dir():
        raise FommError(f"data folder {root} not found; make one with fomm synth --category puppet --out {root}")
    meta = _dataset_meta(root)
    folder = root / split
    npzs = sorted(folder.glob("*.npz")) if folder.is_dir() else []
    if max_videos is not None:
        npzs = npzs[:max_videos]
    if not npzs:
        raise FommError(
            f"{folder} has no videos with ground truth (<name>.npz); regenerate the dataset with "
            f"fomm synth and a positive --{split} count"
        )
    frames, kps = [], []
    for npz in npzs:
        name = npz.stem
        video = folder / name
        if not video.exists():
            candidates = sorted(folder.glob(f"{name}.*"))
            candidates = [c for c in candidates if c.suffix != ".npz"]
            if not candidates:
                raise FommError(f"{npz} has no video beside it ({video}); regenerate the dataset")
            video = candidates[0]
        clip, _ = read_frames(video)
        with np.load(npz) as z:
            kp = np.asarray(z["keypoints_px"], np.float32)
        n = min(len(clip), len(kp))
        frames.append(clip[:n:frame_step])
        kps.append(kp[:n:frame_step])
    return np.concatenate(frames), np.concatenate(kps), meta


# --------------------------------------------------------------------------------------------
# augmentation
# --------------------------------------------------------------------------------------------


def _gaussian_blur(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """Blur each image of ``x`` (B, C, H, W) with its own sigma (B,); sigma 0 leaves it unchanged."""
    b, c, h, w = x.shape
    r = 3
    taps = torch.arange(-r, r + 1, dtype=x.dtype)
    s = sigma.clamp_min(1e-3)[:, None]
    k = torch.exp(-0.5 * (taps[None] / s) ** 2)
    k = k / k.sum(-1, keepdim=True)  # (B, 7); sigma ~0 gives a delta
    k = k.repeat_interleave(c, 0)  # (B*C, 7)
    y = x.reshape(1, b * c, h, w)
    y = F.pad(y, (r, r, r, r), mode="replicate")
    y = F.conv2d(y, k[:, None, None, :], groups=b * c)
    y = F.conv2d(y, k[:, None, :, None], groups=b * c)
    return y.reshape(b, c, h, w)


def augment(
    images: torch.Tensor,
    kps: torch.Tensor,
    gen: torch.Generator,
    max_rotation: float = 12.0,
    scale_range: float = 0.1,
    max_shift: float = 4.0,
    max_blur: float = 1.5,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Random affine (images and keypoints together), blur, colour jitter and noise.

    ``images`` float (B, 3, S, S) on [0, 1]; ``kps`` (B, J, 2) pixels. Deterministic for ``gen``.
    """
    b, _, h, w = images.shape

    def u(lo, hi, *shape):
        return lo + (hi - lo) * torch.rand(*(shape or (b,)), generator=gen)

    angle = u(-max_rotation, max_rotation) * math.pi / 180
    scale = u(1 - scale_range, 1 + scale_range)
    shift = u(-max_shift, max_shift, b, 2)
    # forward map in normalised coordinates (align_corners=False): out = scale * R @ in + t
    cos, sin = torch.cos(angle), torch.sin(angle)
    fwd = torch.stack([torch.stack([cos, -sin], -1), torch.stack([sin, cos], -1)], -2) * scale[:, None, None]
    t = torch.stack([shift[:, 0] * 2 / w, shift[:, 1] * 2 / h], -1)
    inv = torch.linalg.inv(fwd)
    theta = torch.cat([inv, (-inv @ t[..., None])], -1)  # output -> input sampling
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    out = F.grid_sample(images, grid, mode="bilinear", padding_mode="border", align_corners=False)
    norm = torch.stack([(2 * kps[..., 0] + 1) / w - 1, (2 * kps[..., 1] + 1) / h - 1], -1)
    norm = norm @ fwd.transpose(1, 2) + t[:, None]
    new_kps = torch.stack([((norm[..., 0] + 1) * w - 1) / 2, ((norm[..., 1] + 1) * h - 1) / 2], -1)

    sigma = u(0, max_blur) * (torch.rand(b, generator=gen) < 0.6)
    out = _gaussian_blur(out, sigma)
    mean = out.mean(dim=(1, 2, 3), keepdim=True)
    out = (out - mean) * u(0.75, 1.25)[:, None, None, None] + mean + u(-0.1, 0.1)[:, None, None, None]
    out = out * u(0.9, 1.1, b, 3)[:, :, None, None]
    out = out + torch.randn(out.shape, generator=gen) * u(0, 0.03)[:, None, None, None]
    return out.clamp(0, 1), new_kps


# --------------------------------------------------------------------------------------------
# training and testing
# --------------------------------------------------------------------------------------------


def detector_akd(detector: Callable, frames: np.ndarray, kps_px: np.ndarray) -> float:
    """Mean pixel distance between ``detector(frames)`` and the true keypoints."""
    return akd(detector(frames), kps_px)


def _check_training_args(out: str | Path, steps: int, batch_size: int) -> Path:
    """Check the step count, batch size and output name; return ``out`` as a Path."""
    if int(steps) < 1:
        raise FommError(f"steps is {steps}; pass a positive number of training steps")
    if int(batch_size) < 1:
        raise FommError(f"batch size is {batch_size}; pass a positive batch size")
    out = Path(out)
    if out.suffix != ".pt":
        raise FommError(f"output {out} does not end in .pt; name the detector file e.g. puppet-64.pt")
    return out


def _load_training_frames(data_root: str | Path) -> tuple[np.ndarray, np.ndarray, dict, float]:
    """The training split: frames uint8 ``(N, S, S, 3)``, keypoints ``(N, J, 2)``, its metadata and
    the seconds loading took. Refuses frames that are not square with a side divisible by 8."""
    started = time.perf_counter()
    frames_np, kps_np, meta = load_landmark_data(data_root, "train")
    if frames_np.shape[1] != frames_np.shape[2] or int(frames_np.shape[1]) % 8:
        raise FommError(
            f"frames are {frames_np.shape[2]}x{frames_np.shape[1]}; landmark detectors need square "
            "frames with a side divisible by 8 (e.g. 64)"
        )
    return frames_np, kps_np, meta, time.perf_counter() - started


def _fit(
    net: LandmarkNet,
    frames_np: np.ndarray,
    kps_np: np.ndarray,
    *,
    steps: int,
    batch_size: int,
    lr: float,
    gen: torch.Generator,
    bar,
    log: Callable[[str], None] | None,
) -> tuple[list[float], int]:
    """Train ``net`` in place on random augmented batches of ``frames_np`` (uint8 ``(N, S, S, 3)``,
    made float per batch) against ``kps_np`` ``(N, J, 2)``. Returns the mean loss per logged
    interval and the interval length in steps."""
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: 0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * min(s, steps) / steps))
    )
    kps_t = torch.from_numpy(kps_np)
    n = len(frames_np)
    log_every = max(1, min(100, steps // 10))
    losses: list[float] = []
    running, count = 0.0, 0
    net.train()
    for step in range(steps):
        idx = torch.randint(0, n, (batch_size,), generator=gen)
        x = torch.from_numpy(to_float01(frames_np[idx.numpy()])).permute(0, 3, 1, 2)
        x, y = augment(x, kps_t[idx].float(), gen)
        loss = (net(x) - y).abs().mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        running += float(loss.detach())
        count += 1
        if count == log_every or step == steps - 1:
            losses.append(running / count)
            if log:
                log(f"step {step + 1}/{steps}: loss {running / count:.4f} px")
            bar.set_postfix(loss=f"{running / count:.3f}")
            running, count = 0.0, 0
        bar.update(1)
    net.eval()
    return losses, log_every


def _training_record(net: LandmarkNet, meta: dict, kps_np: np.ndarray, size: int, width: int, training: dict) -> dict:
    """The detector's JSON record (without test scores and file details); ``training`` holds the
    run's own values (frames, steps, batch size, lr, seed, threads, timings)."""
    return {
        "format": FORMAT,
        "category": meta["category"],
        "size": size,
        "num_keypoints": int(kps_np.shape[1]),
        "keypoint_names": list(meta.get("keypoint_names") or []),
        "architecture": f"LandmarkNet(width={width}): conv encoder 64-32-16-8, decoder to 32x32 heatmaps, soft-argmax",
        "parameters": int(sum(p.numel() for p in net.parameters())),
        "training": {
            "data": {k: meta.get(k) for k in ("category", "size", "num_frames", "seed", "counts", "generator_version")},
            "train_frames": training["train_frames"],
            "steps": training["steps"],
            "batch_size": training["batch_size"],
            "lr": training["lr"],
            "seed": training["seed"],
            "threads": training["threads"],
            "optimizer": "Adam, cosine decay to 2% of lr",
            "loss": "L1 on pixel coordinates",
            "augmentation": "affine (rotation +-12 deg, scale +-10%, shift +-4 px), blur sigma 0-1.5 (60%), "
            "contrast/brightness/channel gain jitter, Gaussian noise",
            "load_seconds": training["load_seconds"],
            "train_seconds": training["train_seconds"],
            "torch": torch.__version__,
        },
    }


def _add_test_scores(record: dict, detector: LandmarkDetector, data_root: str | Path, test_videos: int | None) -> None:
    """Add the test split's AKD (sharp and blurred with sigma 1) to ``record`` when there is one."""
    root = Path(data_root)
    if (root / "test").is_dir() and any((root / "test").glob("*.npz")):
        test_frames, test_kps, _ = load_landmark_data(root, "test", max_videos=test_videos)
        record["test_frames"] = int(len(test_frames))
        record["test_akd_px"] = round(detector_akd(detector, test_frames, test_kps), 4)
        blurred = _blur_np(test_frames, 1.0)
        record["test_akd_px_blur1"] = round(detector_akd(detector, blurred, test_kps), 4)


def _write_detector(detector: LandmarkDetector, record: dict, out: Path) -> None:
    """Write the weights to ``out`` and the record to ``out`` with ``.json``, each atomically."""
    state = detector.state()
    with atomic_path(out) as tmp:
        torch.save(state, tmp)
    record["weights_file"] = out.name
    record["weights_bytes"] = out.stat().st_size
    with atomic_path(out.with_suffix(".json")) as tmp:
        tmp.write_text(json.dumps(record, indent=2) + "\n")


def train_landmark_detector(
    data_root: str | Path,
    out: str | Path,
    steps: int = 3000,
    seed: int = 0,
    batch_size: int = 32,
    lr: float = 2e-3,
    width: int = 8,
    threads: int | None = 1,
    test_videos: int | None = None,
    progress: bool = True,
    log: Callable[[str], None] | None = None,
    command: str | None = None,
) -> dict:
    """Train a detector on ``data_root``'s training split and write it to ``out`` (.pt) plus
    ``out`` with ``.json`` (training record; test AKD on the ``test`` split when there is one).

    Adam with a cosine learning-rate decay, L1 loss on pixel coordinates, augmentation from
    :func:`augment`. Deterministic for ``seed`` with a fixed thread count (``threads=1`` by
    default; ``None`` keeps PyTorch's). Returns the training record (also in the JSON), including
    ``losses`` (mean training loss per logged interval).
    """
    out = _check_training_args(out, steps, batch_size)
    steps, batch_size = int(steps), int(batch_size)
    old_threads = torch.get_num_threads()
    if threads:
        torch.set_num_threads(int(threads))
    try:
        frames_np, kps_np, meta, load_seconds = _load_training_frames(data_root)
        torch.manual_seed(int(seed))
        gen = torch.Generator().manual_seed(int(seed))
        net = LandmarkNet(kps_np.shape[1], width)
        bar = tqdm(total=steps, desc=f"landmarks {meta['category']}", unit="step", disable=not progress)
        train_started = time.perf_counter()
        losses, log_every = _fit(
            net, frames_np, kps_np, steps=steps, batch_size=batch_size, lr=lr, gen=gen, bar=bar, log=log
        )
        bar.close()
        size = int(frames_np.shape[1])
        training = {
            "train_frames": int(len(frames_np)),
            "steps": steps,
            "batch_size": batch_size,
            "lr": lr,
            "seed": int(seed),
            "threads": int(threads) if threads else None,
            "load_seconds": round(load_seconds, 1),
            "train_seconds": round(time.perf_counter() - train_started, 1),
        }
        record = _training_record(net, meta, kps_np, size, width, training)
        record["losses"] = [round(v, 5) for v in losses]
        record["log_every"] = log_every
        if command:
            record["training"]["command"] = command
        detector = LandmarkDetector(net, meta["category"], size, record["keypoint_names"])
        _add_test_scores(record, detector, data_root, test_videos)
        _write_detector(detector, record, out)
        detector.meta = record
        return record
    finally:
        torch.set_num_threads(old_threads)


def _blur_np(frames: np.ndarray, sigma: float) -> np.ndarray:
    x = torch.from_numpy(to_float01(frames)).permute(0, 3, 1, 2)
    y = _gaussian_blur(x, torch.full((len(x),), float(sigma)))
    return to_uint8(y.permute(0, 2, 3, 1))
