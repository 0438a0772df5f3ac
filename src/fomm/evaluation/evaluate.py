"""Evaluate a model on a dataset: reconstruction and (procedural data) cross-identity animation.

Protocols (those of the original FOMM code):

* **reconstruction** -- for each test video, frame 0 is the source and every frame is
  reconstructed from it with the driving frame's keypoints used as they are (absolute mode:
  ``generator(source, kp_source=kp(source), kp_driving=kp(frame))``). Frame 0 is included.
* **cross_identity** (procedural datasets only, i.e. a ``dataset.json`` made by ``fomm synth``)
  -- for each row of ``cross_identity/pairs.csv`` (identity A, driving video of B), the source
  image is frame 0 of the exact rendering of A performing B's motion, the driving video is B's
  test video, and the model animates in relative mode with movement-scale adaptation (the
  original animation protocol); the result is compared with the exact rendering.

Metrics per method: ``l1`` (mean absolute difference on [0, 1]), ``psnr`` (mean per-frame dB),
``ssim``, and ``akd`` (pixels): on procedural data the shipped landmark detector of the category
(:mod:`fomm.evaluation.landmarks`) is run on the generated frames and compared with the exact
ground-truth keypoints of the target frames; the detector's own AKD on the real target frames is
reported as ``landmark_detector_akd`` -- the measuring stick's error. All averages weight videos
by their frame count (:func:`fomm.evaluation.metrics.summarize`).

Methods: ``model``, and two baselines: ``static`` (the source frame repeated) and
``global_affine`` (the source moved by the least-squares global affine of the ground-truth
keypoints: an oracle of global motion; for reconstruction the source keypoints are the video's
frame-0 keypoints).

On real data (no ``dataset.json``) only reconstruction runs, with L1 / PSNR / SSIM. The paper's
AKD and AED use external networks (a pose or face-landmark detector, a re-identification network)
that nothing here can download: pass ``keypoint_fn`` / ``embedding_fn`` to compute them (AKD is
then ``keypoint_fn(generated)`` vs ``keypoint_fn(real)``, as the paper, and ``global_affine``
uses ``keypoint_fn``'s keypoints of the real frames).
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from fomm.errors import FommError

__all__ = ["TASKS", "METHODS", "evaluate", "write_report", "report_markdown"]

TASKS = ("reconstruction", "cross_identity")
METHODS = ("model", "static", "global_affine")
SAVE_FORMATS = ("mp4", "png")
REPORT_FORMAT = 1

_TASK_TITLES = {"reconstruction": "Reconstruction", "cross_identity": "Cross-identity animation"}
_VIDEO_SUFFIXES = (".mp4", ".mov", ".avi", ".webm", ".mkv", ".gif", ".m4v", ".png", ".jpg", ".jpeg")


# --------------------------------------------------------------------------------------------
# inputs
# --------------------------------------------------------------------------------------------


def _resolve_model(checkpoint_or_model, config, device):
    """``(model, checkpoint description)`` from a model, a checkpoint path or dict, or None."""
    from fomm.models.checkpoint import load_model
    from fomm.models.first_order_model import FirstOrderModel

    if isinstance(checkpoint_or_model, FirstOrderModel):
        return checkpoint_or_model.eval(), None
    if checkpoint_or_model is None:
        try:
            from fomm.bundled import bundled_checkpoint_path
        except ImportError:
            raise FommError(
                "no checkpoint given and this fomm has no bundled model; pass --checkpoint CKPT "
                "(a .pth.tar or a fomm checkpoint)"
            ) from None
        path = bundled_checkpoint_path()
        if path is None or not Path(path).is_file():
            raise FommError(
                f"no checkpoint given and the bundled model ({path}) is missing; pass --checkpoint "
                "CKPT or reinstall fomm"
            )
        digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()[:12]
        # named by package file and content, not by where this machine installed it
        return load_model(path, config, device=device), f"bundled {Path(path).name} (sha256 {digest}...)"
    if isinstance(checkpoint_or_model, dict):
        return load_model(checkpoint_or_model, config, device=device), "(checkpoint dict)"
    if not isinstance(checkpoint_or_model, (str, os.PathLike)):
        raise FommError(
            f"checkpoint is a {type(checkpoint_or_model).__name__}; pass a path, a checkpoint dict or a FirstOrderModel"
        )
    path = Path(checkpoint_or_model)
    if not path.is_file():
        raise FommError(f"checkpoint not found: {path}; check the path (e.g. runs/puppet64/checkpoints/best.pt)")
    return load_model(path, config, device=device), str(path)


def _check_tasks(tasks) -> tuple[str, ...]:
    if isinstance(tasks, str):
        tasks = [t for t in tasks.replace(",", " ").split() if t]
    tasks = tuple(dict.fromkeys(tasks))
    bad = [t for t in tasks if t not in TASKS]
    if bad or not tasks:
        raise FommError(f"unknown task(s) {', '.join(map(repr, bad)) or '(none)'}; use {' and/or '.join(TASKS)}")
    return tasks


def _dataset_info(root: Path) -> dict | None:
    meta_path = root / "dataset.json"
    if not meta_path.is_file():
        return None
    try:
        meta = json.loads(meta_path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise FommError(f"{meta_path} is unreadable ({exc}); regenerate the dataset with fomm synth") from None
    if not isinstance(meta, dict) or "category" not in meta:
        raise FommError(f"{meta_path} has no 'category'; regenerate the dataset with fomm synth")
    return meta


def _find_video(folder: Path, name: str) -> Path:
    """The frame folder or video file called ``name`` in ``folder``."""
    p = folder / name
    if p.exists():
        return p
    for suffix in _VIDEO_SUFFIXES:
        q = folder / f"{name}{suffix}"
        if q.is_file():
            return q
    raise FommError(f"video {name} not found in {folder}; the dataset is incomplete, regenerate it with fomm synth")


def _gt_keypoints(npz_path: Path, data_size: int | None, frame_hw: tuple[int, int]) -> np.ndarray:
    """Ground-truth ``keypoints_px`` (T, J, 2) mapped to the model's frame size (half-pixel centres)."""
    if not npz_path.is_file():
        raise FommError(f"ground truth {npz_path} not found; regenerate the dataset with fomm synth")
    with np.load(npz_path) as z:
        kp = np.asarray(z["keypoints_px"], np.float64)
        size = int(z["size"]) if "size" in z.files else data_size
    h, w = frame_hw
    if size and (size, size) != (h, w):
        kp = kp.copy()
        kp[..., 0] = (kp[..., 0] + 0.5) * (w / size) - 0.5
        kp[..., 1] = (kp[..., 1] + 0.5) * (h / size) - 0.5
    return kp


def _json_safe(x):
    if isinstance(x, dict):
        return {str(k): _json_safe(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_json_safe(v) for v in x]
    if isinstance(x, (np.integer,)):
        return int(x)
    if isinstance(x, (float, np.floating)):
        x = float(x)
        return x if math.isfinite(x) else None
    if isinstance(x, np.ndarray):
        return _json_safe(x.tolist())
    if isinstance(x, Path):
        return str(x)
    return x


# --------------------------------------------------------------------------------------------
# one video
# --------------------------------------------------------------------------------------------


class _Measure:
    """Metrics of candidate clips against one target clip (with its keypoints, if known)."""

    def __init__(self, target: np.ndarray, gt_kp: np.ndarray | None, detector, keypoint_fn, embedding_fn):
        self.target = target
        self.gt_kp = gt_kp
        self.detector = detector
        self.keypoint_fn = keypoint_fn
        self.embedding_fn = embedding_fn
        self.ref_kp = None  # keypoints AKD compares with
        self.detector_akd = math.nan
        if gt_kp is not None:
            self.ref_kp = gt_kp
            if detector is not None:
                from fomm.evaluation.metrics import akd

                self.detector_akd = akd(self._detect(target), gt_kp)
        elif keypoint_fn is not None:
            self.ref_kp = self._detect(target)

    def _detect(self, frames):
        fn = self.detector if self.gt_kp is not None and self.detector is not None else self.keypoint_fn
        kp = np.asarray(fn(frames), np.float64)
        if kp.ndim != 3 or kp.shape[0] != len(frames) or kp.shape[-1] != 2:
            raise FommError(
                f"keypoint_fn returned shape {kp.shape}; it must return (T={len(frames)}, K, 2) pixel coordinates"
            )
        return kp

    def __call__(self, frames: np.ndarray, detected: np.ndarray | None = None) -> dict:
        from fomm.evaluation.metrics import aed, akd, frame_metrics

        rec = frame_metrics(frames, self.target)
        can_akd = self.ref_kp is not None and (self.detector is not None or self.keypoint_fn is not None)
        if can_akd:
            kp = detected if detected is not None else self._detect(frames)
            if kp.shape != self.ref_kp.shape:
                raise FommError(
                    f"detected keypoints {kp.shape} do not match the reference {self.ref_kp.shape}; "
                    "keypoint_fn must return the dataset's keypoints in order"
                )
            rec["akd"] = akd(kp, self.ref_kp)
        if self.embedding_fn is not None:
            rec["aed"] = aed(frames, self.target, self.embedding_fn)
        return rec


def _run_model(engine, source: np.ndarray, driving: np.ndarray) -> np.ndarray:
    engine.set_source(source)
    return np.concatenate([out["prediction"] for out in engine.run(driving)])


def _save(save_dir: Path | None, task: str, name: str, frames: np.ndarray, fmt: str, fps: float) -> None:
    if save_dir is None:
        return
    from fomm.data.image_ops import to_uint8
    from fomm.data.video_io import write_image, write_video

    folder = save_dir / task
    folder.mkdir(parents=True, exist_ok=True)
    uint8 = to_uint8(frames)
    safe = Path(name).stem if Path(name).suffix.lower() in _VIDEO_SUFFIXES else name
    if fmt == "png":
        write_image(folder / f"{safe}.png", np.concatenate(list(uint8), axis=1))
    else:
        write_video(folder / f"{safe}.mp4", uint8, fps=fps)


def _evaluate_clip(
    measure: _Measure, prediction: np.ndarray, source: np.ndarray, src_kp, tgt_kp, detect_source: bool
) -> dict:
    """Records of ``model``, ``static`` and (with keypoints) ``global_affine`` for one clip."""
    from fomm.evaluation.baselines import global_affine_baseline, static_baseline

    t = len(measure.target)
    out = {"model": measure(prediction)}
    static = static_baseline(source, t)
    detected = None
    if (
        detect_source
        and measure.ref_kp is not None
        and (measure.detector is not None or measure.keypoint_fn is not None)
    ):
        detected = np.repeat(measure._detect(source[None]), t, axis=0)  # same frame: detect once
    out["static"] = measure(static, detected)
    if src_kp is not None and tgt_kp is not None:
        out["global_affine"] = measure(global_affine_baseline(source, src_kp, tgt_kp))
    return out


# --------------------------------------------------------------------------------------------
# the evaluation
# --------------------------------------------------------------------------------------------


def evaluate(
    checkpoint_or_model=None,
    data_root=None,
    max_videos: int | None = None,
    tasks: Sequence[str] | str = TASKS,
    batch_size: int = 16,
    progress: bool = True,
    device: str = "cpu",
    config=None,
    keypoint_fn: Callable | None = None,
    embedding_fn: Callable | None = None,
    landmark_detector=None,
    save_dir: str | os.PathLike | None = None,
    save_format: str = "mp4",
) -> dict:
    """Evaluate a model on ``data_root`` (see the module docstring); returns the report dict.

    ``checkpoint_or_model``: a :class:`~fomm.models.first_order_model.FirstOrderModel`, a
    checkpoint path or dict, or None for the bundled model. ``max_videos`` caps the videos (and the
    cross-identity pairs) evaluated per task. ``keypoint_fn(frames) -> (T, K, 2)`` pixel keypoints
    and ``embedding_fn(frames) -> (T, D)`` identity embeddings (frames: float ``(T, H, W, 3)`` on
    [0, 1] at the model's size) add AKD / AED; on procedural data ``keypoint_fn`` replaces the
    shipped landmark detector (it must then return the category's keypoints in order).
    ``landmark_detector``: a path to another detector file (or a
    :class:`~fomm.evaluation.landmarks.LandmarkDetector`). ``save_dir`` writes the model's outputs
    as ``save_dir/<task>/<video>.mp4`` (or ``.png`` strips with ``save_format="png"``).

    Report keys: ``reconstruction`` / ``cross_identity`` (each ``{method: {l1, psnr, ssim, akd,
    num_videos, num_frames}}``), ``landmark_detector_akd`` ``{task: px}``, ``counts``,
    ``per_video``, ``landmark_detector``, ``checkpoint``, ``data``, ``dataset``, ``notes``,
    ``seconds``. Metrics that could not be computed are None.
    """
    import torch
    from tqdm import tqdm

    from fomm.animation import AnimationEngine
    from fomm.data.datasets import FramesDataset
    from fomm.data.video_io import read_frames
    from fomm.evaluation.metrics import summarize

    started = time.perf_counter()
    if data_root is None:
        raise FommError("no dataset given; pass --data DIR (a folder with test/<video>...)")
    root = Path(data_root)
    if not root.is_dir():
        raise FommError(
            f"data folder {root} not found; pass a dataset folder (make one with fomm synth "
            f"--category puppet --out {root})"
        )
    tasks = _check_tasks(tasks)
    if max_videos is not None and (isinstance(max_videos, bool) or int(max_videos) < 1):
        raise FommError(f"max videos is {max_videos}; pass a positive number (or none for all)")
    if isinstance(batch_size, bool) or int(batch_size) < 1:
        raise FommError(f"batch size is {batch_size}; pass a positive number")
    if save_format not in SAVE_FORMATS:
        raise FommError(f"unknown save format {save_format!r}; use mp4 or png")
    for fn, what in ((keypoint_fn, "keypoint_fn"), (embedding_fn, "embedding_fn")):
        if fn is not None and not callable(fn):
            raise FommError(f"{what} is not callable; pass a function of (T, H, W, 3) frames")
    meta = _dataset_info(root)
    procedural = meta is not None
    notes: list[str] = []
    if not procedural and "cross_identity" in tasks:
        if tasks == ("cross_identity",):
            raise FommError(
                f"{root} has no dataset.json: cross-identity animation needs a procedural dataset "
                "with exact ground truth (fomm synth); use --tasks reconstruction"
            )
        tasks = tuple(t for t in tasks if t != "cross_identity")
        notes.append(
            "cross_identity skipped: it needs a procedural dataset (dataset.json, made by fomm synth) "
            "with exact renderings of one identity performing another's motion"
        )
    pairs_csv = root / "cross_identity" / "pairs.csv"
    if procedural and "cross_identity" in tasks and not pairs_csv.is_file():
        if tasks == ("cross_identity",):
            raise FommError(f"{pairs_csv} not found; regenerate the dataset with fomm synth --cross-pairs N")
        tasks = tuple(t for t in tasks if t != "cross_identity")
        notes.append(f"cross_identity skipped: {pairs_csv} not found")

    # test videos (raises a FommError when there are none)
    model, ckpt_desc = _resolve_model(checkpoint_or_model, config, device)
    frame_hw = tuple(int(s) for s in model.frame_shape[:2])
    dataset = None
    if "reconstruction" in tasks:
        dataset = FramesDataset(root, frame_shape=frame_hw, is_train=False)
    test_folder = dataset.root_dir if dataset is not None else root / "test"

    # keypoint measuring stick
    detector = None
    detector_info = None
    if procedural and keypoint_fn is None:
        from fomm.evaluation.landmarks import LandmarkDetector, load_landmark_detector

        if isinstance(landmark_detector, LandmarkDetector):
            detector = landmark_detector
        else:
            try:
                detector = load_landmark_detector(
                    meta["category"], frame_hw[0], path=landmark_detector, device=model.device
                )
            except FommError as exc:
                notes.append(f"AKD not computed: {exc}")
        if detector is not None:
            if detector.num_keypoints != len(meta.get("keypoint_names") or []) or detector.category != meta["category"]:
                raise FommError(
                    f"the landmark detector is for {detector.category} ({detector.num_keypoints} "
                    f"keypoints) but the dataset is {meta['category']}; pass a matching detector"
                )
            detector_info = {
                "category": detector.category,
                "size": detector.size,
                "weights": detector.meta.get("weights_file"),
                "test_akd_px": detector.meta.get("test_akd_px"),
                "trained_on": "training split ground-truth keypoints (fomm.evaluation.landmarks)",
            }
    elif procedural:
        detector_info = {"keypoint_fn": getattr(keypoint_fn, "__name__", type(keypoint_fn).__name__)}
    if not procedural:
        if keypoint_fn is None:
            notes.append(
                "AKD not computed: it needs an external keypoint detector (a pose estimator or face-"
                "landmark network) that cannot be downloaded here; pass keypoint_fn in the Python API"
            )
        else:
            notes.append(
                "AKD: keypoint_fn on the generated frames vs keypoint_fn on the real frames (paper "
                "protocol); global_affine uses keypoint_fn's keypoints of the real frames"
            )
    if embedding_fn is None:
        notes.append(
            "AED not computed: it needs an identity-embedding (re-identification) network that cannot be "
            "downloaded here; pass embedding_fn in the Python API"
        )
    fn_for_measure = None if procedural else keypoint_fn
    if procedural and keypoint_fn is not None:
        detector = keypoint_fn  # the user's detector replaces the shipped one, compared with ground truth

    # work lists
    recon_items: list[int] = []
    if dataset is not None:
        recon_items = list(range(len(dataset)))[: max_videos or None]
    cross_rows: list[dict] = []
    if "cross_identity" in tasks:
        with open(pairs_csv, newline="") as fh:
            cross_rows = list(csv.DictReader(fh))
        need = {"name", "source_identity_video", "driving_video"}
        if cross_rows and not need <= set(cross_rows[0]):
            raise FommError(
                f"{pairs_csv} lacks columns {', '.join(sorted(need - set(cross_rows[0])))}; "
                "regenerate the dataset with fomm synth"
            )
        cross_rows = cross_rows[: max_videos or None]
        if not cross_rows:
            raise FommError(
                f"{pairs_csv} lists no pairs; regenerate the dataset with fomm synth --cross-pairs N "
                "or use --tasks reconstruction"
            )

    save_path = Path(save_dir) if save_dir is not None else None
    fps = float((meta or {}).get("fps") or 25)
    data_size = int(meta["size"]) if procedural and meta.get("size") else None
    per_video: dict[str, list] = {t: [] for t in tasks}
    seconds: dict[str, float] = {}
    bar = tqdm(total=len(recon_items) + len(cross_rows), desc="evaluate", unit="video", disable=not progress)
    try:
        with torch.inference_mode():
            if "reconstruction" in tasks:
                t0 = time.perf_counter()
                engine = AnimationEngine(model, relative=False, adapt_movement_scale=False, batch_size=int(batch_size))
                for i in recon_items:
                    item = dataset[i]
                    name = item["name"]
                    frames = np.ascontiguousarray(item["video"].transpose(1, 2, 3, 0), dtype=np.float32)
                    bar.set_postfix_str(f"reconstruction {name}")
                    gt_kp = None
                    if procedural:
                        stem = Path(name).stem if (test_folder / name).is_file() else name
                        gt_kp = _gt_keypoints(test_folder / f"{stem}.npz", data_size, frame_hw)[: len(frames)]
                        frames = frames[: len(gt_kp)]
                    measure = _Measure(frames, gt_kp, detector, fn_for_measure, embedding_fn)
                    prediction = _run_model(engine, frames[0], frames)
                    src_kp = tgt_kp = None
                    if gt_kp is not None:
                        src_kp, tgt_kp = gt_kp[0], gt_kp
                    elif measure.ref_kp is not None:
                        src_kp, tgt_kp = measure.ref_kp[0], measure.ref_kp
                    rec = _evaluate_clip(measure, prediction, frames[0], src_kp, tgt_kp, detect_source=True)
                    per_video["reconstruction"].append(
                        {"name": name, "num_frames": len(frames), "landmark_detector_akd": measure.detector_akd, **rec}
                    )
                    _save(save_path, "reconstruction", name, prediction, save_format, fps)
                    bar.update(1)
                seconds["reconstruction"] = time.perf_counter() - t0
            if "cross_identity" in tasks:
                t0 = time.perf_counter()
                engine = AnimationEngine(model, relative=True, adapt_movement_scale=True, batch_size=int(batch_size))
                cross_folder = root / "cross_identity"
                for row in cross_rows:
                    name = row["name"]
                    bar.set_postfix_str(f"cross_identity {name}")
                    target, _ = read_frames(_find_video(cross_folder, name), frame_hw, dtype="float32")
                    driving, _ = read_frames(_find_video(test_folder, row["driving_video"]), frame_hw, dtype="float32")
                    gt_kp = _gt_keypoints(cross_folder / f"{name}.npz", data_size, frame_hw)
                    t = min(len(target), len(driving), len(gt_kp))
                    target, driving, gt_kp = target[:t], driving[:t], gt_kp[:t]
                    measure = _Measure(target, gt_kp, detector, None, embedding_fn)
                    source = target[0]
                    prediction = _run_model(engine, source, driving)
                    rec = _evaluate_clip(measure, prediction, source, gt_kp[0], gt_kp, detect_source=True)
                    per_video["cross_identity"].append(
                        {
                            "name": name,
                            "source_identity_video": row["source_identity_video"],
                            "driving_video": row["driving_video"],
                            "num_frames": int(t),
                            "landmark_detector_akd": measure.detector_akd,
                            **rec,
                        }
                    )
                    _save(save_path, "cross_identity", name, prediction, save_format, fps)
                    bar.update(1)
                seconds["cross_identity"] = time.perf_counter() - t0
    finally:
        bar.close()

    report: dict = {
        "fomm_evaluation": REPORT_FORMAT,
        "checkpoint": ckpt_desc,
        "config": getattr(model.config, "name", None),
        "data": str(root),
        "dataset": (
            {
                "kind": "procedural",
                "category": meta.get("category"),
                "size": meta.get("size"),
                "seed": meta.get("seed"),
                "generator_version": meta.get("generator_version"),
            }
            if procedural
            else {"kind": "videos"}
        ),
        "frame_shape": list(frame_hw),
        "tasks": list(tasks),
        "max_videos": max_videos,
        "protocol": {
            "reconstruction": "source = frame 0 of each test video; every frame reconstructed with its own "
            "keypoints (absolute mode)",
            "cross_identity": "source = frame 0 of the exact rendering of identity A performing video B's "
            "motion; driven by video B in relative mode with movement-scale adaptation; "
            "compared with the exact rendering",
            "akd": (
                "landmark detector on the generated frames vs the exact ground-truth keypoints"
                if procedural
                else "keypoint_fn on the generated frames vs keypoint_fn on the real frames"
            )
            + " (pixels at the model's frame size; frames of another size are resized to it)",
            "baselines": "static: the source frame repeated; global_affine: the source warped by the "
            "least-squares affine of the ground-truth keypoints (an oracle of global motion; it "
            "moves the background with the body)",
            "averaging": "per-video metrics averaged with each video weighted by its frame count; PSNR per "
            "frame, capped at 100 dB",
        },
        "landmark_detector": detector_info,
        "landmark_detector_akd": {},
        "counts": {},
    }
    for task in tasks:
        records = per_video[task]
        methods = [m for m in METHODS if records and all(m in r for r in records)]
        table = {}
        for m in methods:
            summary = summarize([{"num_frames": r["num_frames"], **r[m]} for r in records])
            table[m] = {
                k: summary.get(k, math.nan)
                for k in ("l1", "psnr", "ssim", "akd", "aed")
                if k in summary or k in ("akd",)
            }
            table[m]["num_videos"] = summary["num_videos"]
            table[m]["num_frames"] = summary["num_frames"]
        report[task] = table
        report["counts"][task] = {"videos": len(records), "frames": int(sum(r["num_frames"] for r in records))}
        det = summarize([{"num_frames": r["num_frames"], "v": r["landmark_detector_akd"]} for r in records])
        report["landmark_detector_akd"][task] = det.get("v", math.nan)
    report["notes"] = notes
    report["seconds"] = {
        **{k: round(v, 2) for k, v in seconds.items()},
        "total": round(time.perf_counter() - started, 2),
    }
    report["per_video"] = per_video
    return _json_safe(report)


# --------------------------------------------------------------------------------------------
# report files
# --------------------------------------------------------------------------------------------


def _fmt(value, digits: int) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    return f"{value:.{digits}f}"


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def report_markdown(report: dict) -> str:
    """The report as a Markdown document: one table per task."""
    lines = ["# FOMM evaluation", ""]
    ds = report.get("dataset") or {}
    what = (
        f"procedural {ds.get('category')} ({ds.get('size')}x{ds.get('size')}, seed {ds.get('seed')})"
        if ds.get("kind") == "procedural"
        else "videos"
    )
    lines.append(
        f"- checkpoint: `{report.get('checkpoint') or 'bundled / in-memory model'}` (config {report.get('config')})"
    )
    lines.append(
        f"- data: `{report.get('data')}` — {what}; model frame size "
        f"{'x'.join(map(str, report.get('frame_shape') or []))}"
    )
    det = report.get("landmark_detector")
    if det and det.get("weights"):
        lines.append(
            f"- landmark detector: `{det['weights']}` (AKD on held-out test frames when trained: "
            f"{_fmt(det.get('test_akd_px'), 2)} px)"
        )
    if report.get("max_videos"):
        lines.append(f"- at most {_plural(report['max_videos'], 'video')} per task (--max-videos)")
    lines.append("")
    has_aed = any("aed" in m for t in report.get("tasks", []) for m in (report.get(t) or {}).values())
    for task in report.get("tasks", []):
        table = report.get(task) or {}
        counts = report.get("counts", {}).get(task, {})
        lines.append(
            f"## {_TASK_TITLES.get(task, task)} ({_plural(counts.get('videos', 0), 'video')}, "
            f"{_plural(counts.get('frames', 0), 'frame')})"
        )
        lines.append("")
        head = "| method | L1 ↓ | PSNR (dB) ↑ | SSIM ↑ | AKD (px) ↓ |" + (" AED ↓ |" if has_aed else "")
        lines.append(head)
        lines.append("|---|---:|---:|---:|---:|" + ("---:|" if has_aed else ""))
        for method, m in table.items():
            row = (
                f"| {method} | {_fmt(m.get('l1'), 4)} | {_fmt(m.get('psnr'), 2)} | {_fmt(m.get('ssim'), 4)} "
                f"| {_fmt(m.get('akd'), 2)} |"
            )
            if has_aed:
                row += f" {_fmt(m.get('aed'), 4)} |"
            lines.append(row)
        stick = (report.get("landmark_detector_akd") or {}).get(task)
        if stick is not None:
            lines.append("")
            lines.append(
                f"Landmark detector's own AKD on the real target frames: {_fmt(stick, 2)} px "
                "(the measuring stick's error)."
            )
        lines.append("")
    lines.append("Protocol: " + "; ".join(f"{k}: {v}" for k, v in (report.get("protocol") or {}).items()) + ".")
    lines.append("")
    notes = report.get("notes") or []
    if notes:
        lines.append("## Notes")
        lines.append("")
        lines.extend(f"- {n}" for n in notes)
        lines.append("")
    secs = report.get("seconds") or {}
    if secs:
        lines.append(f"Time: {secs.get('total', 0):.1f} s.")
        lines.append("")
    return "\n".join(lines)


def write_report(report: dict, out: str | os.PathLike) -> tuple[Path, Path]:
    """Write ``report`` as JSON to ``out`` and as Markdown beside it (``.md``), atomically."""
    from fomm.atomic import atomic_path

    out = Path(out)
    if out.suffix.lower() != ".json":
        raise FommError(
            f"report path {out} does not end in .json; pass e.g. --out report.json (the Markdown table goes beside it)"
        )
    md = out.with_suffix(".md")
    text = json.dumps(_json_safe(report), indent=2, allow_nan=False) + "\n"
    try:
        with atomic_path(out) as tmp:
            tmp.write_text(text)
        with atomic_path(md) as tmp:
            tmp.write_text(report_markdown(report))
    except OSError as exc:
        raise FommError(f"cannot write {out} ({exc.strerror or exc}); choose a folder you can write to") from None
    return out, md
