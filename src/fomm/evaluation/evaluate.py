"""Evaluate a model on a dataset: reconstruction and (procedural data) cross-identity animation.

Protocols:

* **reconstruction** (the original's) -- for each test video, frame 0 is the source and every
  frame is reconstructed from it with the driving frame's keypoints used as they are (absolute
  mode: ``generator(source, kp_source=kp(source), kp_driving=kp(frame))``).
* **cross_identity** (procedural datasets only, i.e. a ``dataset.json`` made by ``fomm synth``)
  -- for each row of ``cross_identity/pairs.csv`` (identity A, driving video of B), the source
  image is frame 0 of the exact rendering of A performing B's motion, the driving video is B's
  test video, and the model animates in relative mode with movement-scale adaptation (the
  original animation protocol); the result is compared with the exact rendering.
* **The source frame** -- on procedural data frame 0 (the source itself) is left out of every
  metric, for the model and the baselines (``source_frame="exclude"``): the static baseline would
  otherwise score a perfect frame. On other videos the default is the original protocol (frame 0
  included, comparable with published numbers); ``source_frame`` chooses either.

Metrics per method: ``l1`` (mean absolute difference on [0, 1]), ``psnr`` (mean per-frame dB),
``ssim``, and ``akd`` (pixels): on procedural data the shipped landmark detector of the category
(:mod:`fomm.evaluation.landmarks`) is run on the generated frames and compared with the exact
ground-truth keypoints of the target frames; the detector's own AKD on the real target frames is
reported as ``landmark_detector_akd`` -- the measuring stick's error. All averages weight videos
by their scored frame count (:func:`fomm.evaluation.metrics.summarize`).

Methods: ``model``, and two baselines: ``static`` (the source frame repeated) and
``global_affine`` (the source moved by the least-squares global affine of the keypoints: an
oracle of global motion).

On real data (no ``dataset.json``) only reconstruction runs. On faces, with ``pip install
'fomm[faces]'``, AKD (dlib's 68 landmarks, pixels) and AED (dlib's 128-d identity embedding) are
added, with the share of frames in which no face was found (``missed``); see
:mod:`fomm.evaluation.face_metrics`. Other ``keypoint_fn`` / ``embedding_fn`` hooks can be passed
in the Python API (AKD is then ``keypoint_fn(generated)`` vs ``keypoint_fn(real)``, as the paper).
The tables and files are made by :mod:`fomm.evaluation.report`.
"""

from __future__ import annotations

import csv
import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from fomm import bundled
from fomm.animation.engine import AnimationEngine
from fomm.data.datasets import FramesDataset
from fomm.data.image_ops import to_uint8
from fomm.data.video_io import read_frames, write_image, write_video
from fomm.errors import FommError
from fomm.evaluation.baselines import global_affine_baseline, static_baseline
from fomm.evaluation.measure import Measure, Stick, affine_keypoints, procedural_stick, video_stick
from fomm.evaluation.metrics import summarize
from fomm.evaluation.report import METHODS, json_safe, keypoint_table, report_markdown, task_table, write_report
from fomm.models.checkpoint import checkpoint_file, load_model, read_checkpoint_sha256
from fomm.models.first_order_model import FirstOrderModel
from fomm.models.tpsmm.inference import reconstruct

__all__ = ["TASKS", "METHODS", "evaluate", "write_report", "report_markdown"]

TASKS = ("reconstruction", "cross_identity")
SAVE_FORMATS = ("mp4", "png")
SOURCE_FRAME = ("exclude", "include")
FACE_METRICS = ("auto", "on", "off")
REPORT_FORMAT = 2

_VIDEO_SUFFIXES = (".mp4", ".mov", ".avi", ".webm", ".mkv", ".gif", ".m4v", ".png", ".jpg", ".jpeg")


# --------------------------------------------------------------------------------------------
# inputs
# --------------------------------------------------------------------------------------------


def _bundled(category: str | None) -> Path:
    """The bundled checkpoint for a dataset of ``category``."""

    if category is None:
        raise FommError(
            "no checkpoint given and the data has no dataset.json (fomm synth) naming its category, so no "
            "bundled model fits it; pass --checkpoint CKPT"
        )
    shipped = bundled.bundled_categories()
    if category not in shipped:
        raise FommError(
            f"no checkpoint given and there is no bundled model for the dataset's category {category!r} "
            f"(bundled: {', '.join(shipped) or 'none'}); pass --checkpoint CKPT"
        )
    return Path(bundled.bundled_checkpoint_path(category))


def _resolve_model(checkpoint_or_model, config, device, category: str | None):
    """``(model, checkpoint description)`` from a model, a checkpoint (a path, a name such as
    ``face-64`` or ``vox``, or a dict), or None (the bundled model of ``category``)."""

    if isinstance(checkpoint_or_model, FirstOrderModel):
        return checkpoint_or_model.eval(), None
    if checkpoint_or_model is None:
        path = _bundled(category)
        data, digest = read_checkpoint_sha256(path)  # one read of the file for both
        # named by package file and content, not by where this machine installed it
        return load_model(data, config, device=device, name=path), f"bundled {path.name} (sha256 {digest[:12]}...)"
    if isinstance(checkpoint_or_model, dict):
        return load_model(checkpoint_or_model, config, device=device), "(checkpoint dict)"
    if not isinstance(checkpoint_or_model, (str, os.PathLike)):
        raise FommError(
            f"checkpoint is a {type(checkpoint_or_model).__name__}; pass a path, a checkpoint dict or a FirstOrderModel"
        )
    # a name ('vox', 'face-64') is its file; an ONNX export folder is refused in words that fit
    # evaluate, which has no --backend (load_model's own message would suggest one)
    path = checkpoint_file(checkpoint_or_model)
    name = os.fspath(checkpoint_or_model)
    desc = str(path) if Path(name) == path else f"{name} ({path.name})"  # a name, not this machine's cache path
    return load_model(path, config, device=device), desc


def _check_tasks(tasks) -> tuple[str, ...]:
    if isinstance(tasks, str):
        tasks = [t for t in tasks.replace(",", " ").split() if t]
    tasks = tuple(dict.fromkeys(tasks))
    bad = [t for t in tasks if t not in TASKS]
    if bad or not tasks:
        what = f"unknown {'task' if len(bad) == 1 else 'tasks'} {', '.join(map(repr, bad))}" if bad else "no task given"
        raise FommError(f"{what}; use {' and/or '.join(TASKS)}")
    return tasks


def _check_inputs(data_root, max_videos, batch_size, save_format, hooks: dict, source_frame, face_metrics) -> Path:
    if data_root is None:
        raise FommError("no dataset given; pass --data DIR (a folder with test/<video>...)")
    root = Path(data_root)
    if not root.is_dir():
        raise FommError(
            f"data folder {root} not found; pass a dataset folder (make one with fomm synth "
            f"--category puppet --out {root})"
        )
    if max_videos is not None and (isinstance(max_videos, bool) or int(max_videos) < 1):
        raise FommError(f"max videos is {max_videos}; pass a positive number (or none for all)")
    if isinstance(batch_size, bool) or int(batch_size) < 1:
        raise FommError(f"batch size is {batch_size}; pass a positive number")
    if save_format not in SAVE_FORMATS:
        raise FommError(f"unknown save format {save_format!r}; use mp4 or png")
    if source_frame is not None and source_frame not in SOURCE_FRAME:
        raise FommError(f"source_frame is {source_frame!r}; use exclude or include (or None for the default)")
    if face_metrics not in FACE_METRICS:
        raise FommError(f"face metrics is {face_metrics!r}; use auto, on or off")
    for what, fn in hooks.items():
        if fn is not None and not callable(fn):
            raise FommError(f"{what} is not callable; pass a function of (T, H, W, 3) frames")
    return root


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


def _cross_rows(root: Path, tasks: tuple, procedural: bool, notes: list) -> tuple[tuple, list[dict]]:
    """The tasks left and the rows of ``cross_identity/pairs.csv``; cross-identity is skipped with
    a note (an error when it is the only task) on real data and when pairs.csv is missing or empty."""
    if "cross_identity" not in tasks:
        return tasks, []
    pairs_csv = root / "cross_identity" / "pairs.csv"
    rows: list[dict] = []
    if not procedural:
        why = (
            f"{root} has no dataset.json: cross-identity animation needs a procedural dataset (fomm synth) "
            "with exact renderings of one identity performing another's motion"
        )
    elif not pairs_csv.is_file():
        why = f"{pairs_csv} not found (fomm synth --cross-pairs N makes it)"
    else:
        with open(pairs_csv, newline="") as fh:
            rows = list(csv.DictReader(fh))
        need = {"name", "source_identity_video", "driving_video"}
        if rows and not need <= set(rows[0]):
            raise FommError(
                f"{pairs_csv} lacks columns {', '.join(sorted(need - set(rows[0])))}; regenerate the dataset with fomm synth"
            )
        why = f"{pairs_csv} lists no pairs (fomm synth --cross-pairs N makes them)"
    if rows:
        return tasks, rows
    if tasks == ("cross_identity",):
        raise FommError(f"cross_identity cannot run: {why}; use --tasks reconstruction")
    notes.append(f"cross_identity skipped: {why}")
    return tuple(t for t in tasks if t != "cross_identity"), []


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


# --------------------------------------------------------------------------------------------
# one clip
# --------------------------------------------------------------------------------------------


@dataclass
class _Context:
    """Everything the task loops share."""

    model: object
    frame_hw: tuple
    stick: Stick
    skip: int  # 1: frame 0 (the source) is left out of the metrics
    batch_size: int
    procedural: bool
    data_size: int | None
    save_dir: Path | None
    save_format: str
    fps: float


def _run_model(engine, source: np.ndarray, driving: np.ndarray) -> np.ndarray:
    engine.set_source(source)
    return np.concatenate([out["prediction"] for out in engine.run(driving)])


def _save(ctx: _Context, task: str, name: str, frames: np.ndarray) -> None:
    if ctx.save_dir is None:
        return

    folder = ctx.save_dir / task
    folder.mkdir(parents=True, exist_ok=True)
    uint8 = to_uint8(frames)
    safe = Path(name).stem if Path(name).suffix.lower() in _VIDEO_SUFFIXES else name
    if ctx.save_format == "png":
        write_image(folder / f"{safe}.png", np.concatenate(list(uint8), axis=1))
    else:
        write_video(folder / f"{safe}.mp4", uint8, fps=ctx.fps)


def _score_clip(ctx: _Context, target: np.ndarray, prediction: np.ndarray, source: np.ndarray, gt_kp) -> dict:
    """The record of one clip: ``model``, ``static`` and (with keypoints) ``global_affine``, on the
    scored frames (without frame 0 when ``ctx.skip``)."""

    s = ctx.skip
    target, prediction = target[s:], prediction[s:]
    gt = None if gt_kp is None else gt_kp[s:]
    measure = Measure(target, gt, ctx.stick)
    rec = {"num_frames": len(target), "landmark_detector_akd": measure.detector_akd}
    if np.isfinite(measure.ref_missed):
        rec["reference_missed"] = measure.ref_missed
    rec["model"] = measure(prediction)
    rec["static"] = measure(static_baseline(source, len(target)), same_frame=True)
    kps = (gt_kp[0], gt) if gt_kp is not None else affine_keypoints(measure, source)
    if kps is not None:
        rec["global_affine"] = measure(global_affine_baseline(source, *kps))
    return rec


# --------------------------------------------------------------------------------------------
# the tasks
# --------------------------------------------------------------------------------------------


def _reconstruction(ctx: _Context, dataset, items: list[int], bar) -> list[dict]:

    engine = AnimationEngine(ctx.model, relative=False, adapt_movement_scale=False, batch_size=ctx.batch_size)
    test_folder = Path(dataset.root_dir)
    records = []
    for i in items:
        item = dataset[i]
        name = item["name"]
        frames = np.ascontiguousarray(item["video"].transpose(1, 2, 3, 0), dtype=np.float32)
        bar.set_postfix_str(f"reconstruction {name}")
        gt_kp = None
        if ctx.procedural:
            stem = Path(name).stem if (test_folder / name).is_file() else name
            gt_kp = _gt_keypoints(test_folder / f"{stem}.npz", ctx.data_size, ctx.frame_hw)[: len(frames)]
            frames = frames[: len(gt_kp)]
        if len(frames) <= ctx.skip:
            bar.update(1)
            continue
        if getattr(ctx.model, "kind", "fomm") == "tpsmm":  # with its background predictor, as its reconstruction.py
            prediction = reconstruct(ctx.model, frames, ctx.batch_size)
        else:
            prediction = _run_model(engine, frames[0], frames)
        records.append({"name": name, **_score_clip(ctx, frames, prediction, frames[0], gt_kp)})
        _save(ctx, "reconstruction", name, prediction)
        bar.update(1)
    return records


def _cross_identity(ctx: _Context, root: Path, test_folder: Path, rows: list[dict], bar) -> list[dict]:

    engine = AnimationEngine(ctx.model, relative=True, adapt_movement_scale=True, batch_size=ctx.batch_size)
    cross_folder = root / "cross_identity"
    records = []
    for row in rows:
        name = row["name"]
        bar.set_postfix_str(f"cross_identity {name}")
        target, _ = read_frames(_find_video(cross_folder, name), ctx.frame_hw, dtype="float32")
        driving, _ = read_frames(_find_video(test_folder, row["driving_video"]), ctx.frame_hw, dtype="float32")
        gt_kp = _gt_keypoints(cross_folder / f"{name}.npz", ctx.data_size, ctx.frame_hw)
        t = min(len(target), len(driving), len(gt_kp))
        target, driving, gt_kp = target[:t], driving[:t], gt_kp[:t]
        if t > ctx.skip:
            prediction = _run_model(engine, target[0], driving)
            rec = _score_clip(ctx, target, prediction, target[0], gt_kp)
            records.append(
                {
                    "name": name,
                    "source_identity_video": row["source_identity_video"],
                    "driving_video": row["driving_video"],
                    **rec,
                }
            )
            _save(ctx, "cross_identity", name, prediction)
        bar.update(1)
    return records


def _protocol(procedural: bool, skip: int, stick: Stick) -> dict:
    return {
        "reconstruction": "source = frame 0 of each test video; every frame reconstructed with its own "
        "keypoints (absolute mode)",
        "cross_identity": "source = frame 0 of the exact rendering of identity A performing video B's "
        "motion; driven by video B in relative mode with movement-scale adaptation; "
        "compared with the exact rendering",
        "source_frame": "excluded" if skip else "included",
        "akd": (
            "landmark detector on the generated frames vs the exact ground-truth keypoints"
            if procedural
            else "keypoint_fn on the generated frames vs keypoint_fn on the real frames"
        )
        + " (pixels at the model's frame size; frames of another size are resized to it)",
        "akd_l1": "AKD as the paper's evaluation code (pose-evaluation cmp.py) computes it: per frame the mean "
        "absolute difference of the keypoints' x and y coordinates, then the mean over frames (the akd "
        "column is the mean Euclidean distance; compare akd_l1 with the paper's tables)",
        "baselines": "static: the source frame repeated; global_affine: the source warped by the "
        "least-squares affine of the keypoints (an oracle of global motion; it "
        "moves the background with the body)",
        "averaging": "per-video metrics averaged with each video weighted by its scored frame count; PSNR per "
        "frame, capped at 100 dB",
    }


def _dataset_section(meta: dict | None) -> dict:
    if meta is None:
        return {"kind": "videos"}
    keys = ("category", "size", "seed", "generator_version")
    return {"kind": "procedural", **{k: meta.get(k) for k in keys}}


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
    source_frame: str | None = None,
    face_metrics: str = "auto",
) -> dict:
    """Evaluate a model on ``data_root`` (see the module docstring); returns the report dict.

    ``checkpoint_or_model``: a :class:`~fomm.models.first_order_model.FirstOrderModel`, a
    checkpoint path or dict, or None for the bundled model of the dataset's category (its
    ``dataset.json``). ``max_videos`` caps the videos (and the cross-identity pairs) per task.
    ``keypoint_fn(frames) -> (T, K, 2)`` pixel keypoints and ``embedding_fn(frames) -> (T, D)``
    identity embeddings (frames: float ``(T, H, W, 3)`` on [0, 1] at the model's size; NaN rows
    for frames where nothing was found) add AKD / AED; on procedural data ``keypoint_fn`` replaces
    the shipped landmark detector (it must then return the category's keypoints in order).
    ``landmark_detector``: another detector file (or a
    :class:`~fomm.evaluation.landmarks.LandmarkDetector`). ``save_dir`` writes the model's outputs
    as ``save_dir/<task>/<video>.mp4`` (or ``.png`` strips with ``save_format="png"``).
    ``source_frame``: ``exclude`` or ``include`` frame 0 in the metrics (None: exclude on procedural
    data, include on other videos). ``face_metrics``: on real videos without hooks, ``auto`` uses
    the fomm[faces] models when installed and the first test frame shows a face; ``on``, ``off``.

    Report keys: ``reconstruction`` / ``cross_identity`` (each ``{method: {l1, psnr, ssim, akd,
    [aed, missed], num_videos, num_frames}}``), ``landmark_detector_akd`` ``{task: px}``,
    ``counts`` (videos and scored frames), ``akd_per_keypoint`` (procedural data: ``{task: {"names":
    [...], method: [px per keypoint]}}``), ``protocol``, ``per_video``, ``landmark_detector``,
    ``checkpoint``, ``data``, ``dataset``, ``notes``, ``seconds``. Metrics not computed are None.
    """

    started = time.perf_counter()
    hooks = {"keypoint_fn": keypoint_fn, "embedding_fn": embedding_fn}
    root = _check_inputs(data_root, max_videos, batch_size, save_format, hooks, source_frame, face_metrics)
    meta = _dataset_info(root)
    procedural = meta is not None
    notes: list[str] = []
    tasks, cross_rows = _cross_rows(root, _check_tasks(tasks), procedural, notes)
    cross_rows = cross_rows[: max_videos or None]
    model, ckpt_desc = _resolve_model(checkpoint_or_model, config, device, (meta or {}).get("category"))
    frame_hw = tuple(int(s) for s in model.frame_shape[:2])
    dataset = FramesDataset(root, frame_shape=frame_hw, is_train=False) if "reconstruction" in tasks else None
    test_folder = Path(dataset.root_dir) if dataset is not None else root / "test"
    recon_items = list(range(len(dataset)))[: max_videos or None] if dataset is not None else []
    options = dict(
        keypoint_fn=keypoint_fn,
        embedding_fn=embedding_fn,
        landmark_detector=landmark_detector,
        face_metrics=face_metrics,
        source_frame=source_frame,
        batch_size=batch_size,
        save_dir=save_dir,
        save_format=save_format,
    )
    ctx = _context(model, meta, dataset, bool(recon_items), options)
    per_video, seconds = _run_tasks(ctx, tasks, dataset, recon_items, (root, test_folder, cross_rows), progress)
    report: dict = {
        "fomm_evaluation": REPORT_FORMAT,
        "checkpoint": ckpt_desc,
        "config": getattr(model.config, "name", None),
        "data": str(root),
        "dataset": _dataset_section(meta),
        "frame_shape": list(frame_hw),
        "tasks": list(tasks),
        "max_videos": max_videos,
        "protocol": _protocol(procedural, ctx.skip, ctx.stick),
        "landmark_detector": ctx.stick.info,
    }
    _add_tables(report, per_video, notes + ctx.stick.notes, (meta or {}).get("keypoint_names"))
    seconds["total"] = time.perf_counter() - started
    report["seconds"] = {k: round(v, 2) for k, v in seconds.items()}
    report["per_video"] = per_video
    return json_safe(report)


def _context(model, meta, dataset, first_item: bool, options: dict) -> _Context:
    """The task loops' shared state; ``options``: evaluate()'s keyword arguments."""
    procedural = meta is not None
    frame_hw = tuple(int(s) for s in model.frame_shape[:2])
    hooks = (options["keypoint_fn"], options["embedding_fn"])
    if procedural:
        stick = procedural_stick(meta, frame_hw, *hooks, options["landmark_detector"], model.device)
    else:
        first = dataset[0]["video"][:, 0].transpose(1, 2, 0) if first_item else None
        stick = video_stick(first, *hooks, options["face_metrics"])
    source_frame = options["source_frame"] or ("exclude" if procedural else "include")
    save_dir = options["save_dir"]
    return _Context(
        model=model,
        frame_hw=frame_hw,
        stick=stick,
        skip=int(source_frame == "exclude"),
        batch_size=int(options["batch_size"]),
        procedural=procedural,
        data_size=int(meta["size"]) if procedural and meta.get("size") else None,
        save_dir=Path(save_dir) if save_dir is not None else None,
        save_format=options["save_format"],
        fps=float((meta or {}).get("fps") or 25),
    )


def _run_tasks(ctx: _Context, tasks, dataset, recon_items, cross: tuple, progress: bool) -> tuple[dict, dict]:
    """Run each task: ``({task: per-video records}, {task: seconds})``."""

    root, test_folder, cross_rows = cross
    per_video: dict[str, list] = {}
    seconds: dict[str, float] = {}
    bar = tqdm(total=len(recon_items) + len(cross_rows), desc="evaluate", unit="video", disable=not progress)
    try:
        with torch.inference_mode():
            for task in tasks:
                t0 = time.perf_counter()
                if task == "reconstruction":
                    per_video[task] = _reconstruction(ctx, dataset, recon_items, bar)
                else:
                    per_video[task] = _cross_identity(ctx, root, test_folder, cross_rows, bar)
                seconds[task] = time.perf_counter() - t0
    finally:
        bar.close()
    return per_video, seconds


def _add_tables(report: dict, per_video: dict, notes: list, keypoint_names: list | None = None) -> None:
    """Each task's table (and, with named ground-truth keypoints, its AKD per keypoint), counts and
    measuring-stick errors, and the notes."""

    report.update({"landmark_detector_akd": {}, "counts": {}, "reference_missed": {}, "akd_per_keypoint": {}})
    for task, records in per_video.items():
        if not records:
            raise FommError(f"{task}: no video has a frame to score besides the source; use longer videos")
        report[task] = task_table(records)
        if keypoint_names:
            report["akd_per_keypoint"][task] = keypoint_table(records, keypoint_names)
        report["counts"][task] = {"videos": len(records), "frames": int(sum(r["num_frames"] for r in records))}
        det = summarize([{"num_frames": r["num_frames"], "v": r["landmark_detector_akd"]} for r in records])
        report["landmark_detector_akd"][task] = det.get("v", np.nan)
        if any("reference_missed" in r for r in records):
            ref = summarize([{"num_frames": r["num_frames"], "v": r.get("reference_missed", np.nan)} for r in records])
            report["reference_missed"][task] = ref.get("v", np.nan)
    report["notes"] = notes
