"""Writing a synthetic dataset to disk, in the original FOMM layout.

::

    root/train/<name>/0000000.png ...   frames (lossless PNG; format="mp4" writes <name>.mp4)
    root/train/<name>.npz               ground truth (keypoints, pose_*, identity_*, ...)
    root/test/<name>/...  root/test/<name>.npz
    root/cross_identity/pairs.csv       name,source_identity_video,driving_video
    root/cross_identity/<name>/...      source video's identity performing the driving video's
    root/cross_identity/<name>.npz      full trajectory (frame 0 = the source image)
    root/pairs.csv                      source,driving (test videos; same rows as above)
    root/dataset.json                   what was generated, and how

Names are ``<identity-id>#<clip>`` so FOMM's id sampling (identity = text before '#') works.
The dataset is written into a hidden temporary folder beside ``root`` (``fomm.atomic`` naming:
``.<root>.fomm-<host>-<pid>-XXXX.tmp``) and renamed at the end, so an interrupted run leaves no
half-written dataset, and the folder of a killed run is removed by the next write there.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import shutil
import signal
import zipfile
from multiprocessing import get_context
from pathlib import Path

import av
import cv2
import numpy as np
from tqdm import tqdm

from fomm.atomic import atomic_path, make_temp_dir
from fomm.cpu import usable_cores as default_workers  # write_dataset's worker count by default
from fomm.errors import FommError

from .generate import (
    CATEGORIES,
    FPS,
    GENERATOR_VERSION,
    generate_video,
    keypoint_names,
    normalize_keypoints,
    part_names,
    render_video,
    video_name,
    video_params,
)

FORMATS = ("png", "mp4")


# --------------------------------------------------------------------------------------------
# Writers
# --------------------------------------------------------------------------------------------
def write_png(path: str | os.PathLike, image: np.ndarray) -> None:
    """Write an RGB uint8 image as PNG (lossless, deterministic bytes)."""
    ok, buf = cv2.imencode(".png", np.ascontiguousarray(image[..., ::-1]), [cv2.IMWRITE_PNG_COMPRESSION, 3])
    if not ok:  # pragma: no cover - cv2 failure
        raise OSError(f"could not encode {path}")
    Path(path).write_bytes(buf.tobytes())


def write_frames(folder: Path, frames: np.ndarray) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for t, frame in enumerate(frames):
        write_png(folder / f"{t:07d}.png", frame)


def write_mp4(path: str | os.PathLike, frames: np.ndarray, fps: int) -> None:
    """Encode RGB frames as H.264 (yuv420p, crf 10, single-threaded so bytes are repeatable)."""
    frames = np.asarray(frames)
    h, w = frames.shape[1:3]
    if h % 2 or w % 2:
        raise FommError(f"mp4 needs even frame sizes, got {w}x{h}; use an even --size or --format png")
    with av.open(str(path), mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=int(fps))
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        stream.options = {"crf": "10", "preset": "medium"}
        stream.codec_context.thread_count = 1
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def _npz_payload(pose: dict, identity: dict, **extra) -> dict:
    out = {}
    for k, v in pose.items():
        out[f"pose_{k}"] = np.asarray(v)
    for k, v in identity.items():
        out[f"identity_{k}"] = np.asarray(v)
    for k, v in extra.items():
        out[k] = np.asarray(v)
    return out


def write_npz(path: Path, payload: dict) -> None:
    """Like ``np.savez`` (uncompressed, loads with ``np.load``) but with fixed zip timestamps, so
    identical payloads give identical bytes."""
    with atomic_path(path) as tmp:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED) as zf:
            for key, value in payload.items():
                buf = io.BytesIO()
                np.lib.format.write_array(buf, np.asarray(value), allow_pickle=False)
                info = zipfile.ZipInfo(f"{key}.npy", date_time=(1980, 1, 1, 0, 0, 0))
                zf.writestr(info, buf.getvalue())


def _write_video(folder: Path, name: str, frames: np.ndarray, fmt: str, fps: int) -> None:
    if fmt == "png":
        write_frames(folder / name, frames)
    else:
        write_mp4(folder / f"{name}.mp4", frames, fps)


# --------------------------------------------------------------------------------------------
# Tasks (run in this process or in worker processes)
# --------------------------------------------------------------------------------------------
def _task(job: tuple) -> str:
    kind = job[0]
    if kind == "video":
        _, out, category, split, index, seed, num_frames, size, fmt, cpi = job
        v = generate_video(category, split, index, seed, num_frames, size, cpi)
        folder = Path(out) / split
        _write_video(folder, v["name"], v["frames"], fmt, FPS)
        write_npz(
            folder / f"{v['name']}.npz",
            _npz_payload(
                v["pose"],
                v["identity"],
                keypoints_px=v["keypoints_px"],
                keypoints=v["keypoints"],
                category=category,
                size=size,
                fps=FPS,
                name=v["name"],
                identity_id=v["identity_id"],
                split=split,
                index=index,
                seed=seed,
                num_frames=num_frames,
                keypoint_names=np.array(keypoint_names(category)),
            ),
        )
        return v["name"]
    _, out, category, name, src_index, drv_index, seed, num_frames, size, fmt, cpi = job
    src = video_params(category, "test", src_index, seed, num_frames, cpi)
    drv = video_params(category, "test", drv_index, seed, num_frames, cpi)
    frames, kps = render_video(category, src["identity"], drv["pose"], size)
    folder = Path(out) / "cross_identity"
    _write_video(folder, name, frames, fmt, FPS)
    write_npz(
        folder / f"{name}.npz",
        _npz_payload(
            drv["pose"],
            src["identity"],
            keypoints_px=kps,
            keypoints=normalize_keypoints(kps, size),
            category=category,
            size=size,
            fps=FPS,
            name=name,
            source_identity_video=src["name"],
            driving_video=drv["name"],
            source_identity_id=src["identity_id"],
            driving_identity_id=drv["identity_id"],
            seed=seed,
            num_frames=num_frames,
            keypoint_names=np.array(keypoint_names(category)),
        ),
    )
    return name


def _init_worker() -> None:
    # Ctrl-C is handled by the parent, which terminates the pool; one cv2 thread per worker.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    cv2.setNumThreads(1)


def max_cross_pairs(num_test: int, clips_per_identity: int = 1) -> int:
    """How many (source, driving) pairs of test videos with different identities exist."""
    cpi = max(1, int(clips_per_identity))
    num_test = max(0, int(num_test))
    same = sum(n * n for n in np.bincount(np.arange(num_test) // cpi)) if num_test else 0
    return num_test * num_test - same


def cross_pairs(category: str, num_test: int, num_pairs: int, seed: int, clips_per_identity: int = 1) -> list:
    """``num_pairs`` (source_index, driving_index) pairs of test videos whose identities differ,
    distinct and in a deterministic random order."""
    if num_pairs <= 0:
        return []
    cpi = max(1, int(clips_per_identity))
    idx = np.arange(num_test)
    ident = idx // cpi
    cand = [(int(a), int(b)) for a in idx for b in idx if ident[a] != ident[b]]
    if len(cand) < num_pairs:
        raise FommError(
            f"{num_pairs} cross-identity pairs were asked for but the {num_test} test videos "
            f"allow only {len(cand)}; lower --cross-pairs or raise --test"
        )
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), CATEGORIES.index(category) + 1, 99]))
    order = rng.permutation(len(cand))[:num_pairs]
    return [cand[i] for i in order]


def _csv_text(header: list[str], rows: list) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    w.writerows(rows)
    return buf.getvalue()


def _validate(category, num_train, num_test, num_frames, size, seed, num_cross_pairs, fmt, workers, cpi):
    if category not in CATEGORIES:
        raise FommError(f"unknown synthetic category {category!r}; use one of: {', '.join(CATEGORIES)}")
    for label, value, low in (
        ("train", num_train, 0),
        ("test", num_test, 0),
        ("frames", num_frames, 1),
        ("cross-pairs", num_cross_pairs, 0),
        ("workers", workers, 1),
        ("clips-per-identity", cpi, 1),
        ("seed", seed, 0),
    ):
        if int(value) < low:
            raise FommError(f"--{label} must be at least {low}, got {value}")
    if not 16 <= int(size) <= 2048:
        raise FommError(f"frame size {size} is out of range; use a size between 16 and 2048 (e.g. 64, 128, 256)")
    if fmt not in FORMATS:
        raise FommError(f"unknown format {fmt!r}; use png or mp4")
    if fmt == "mp4" and int(size) % 2:
        raise FommError(f"mp4 needs an even frame size, got {size}; use an even --size or --format png")


def write_dataset(
    root,
    category: str,
    num_train: int,
    num_test: int,
    num_frames: int,
    size: int,
    seed: int,
    num_cross_pairs: int,
    format: str = "png",
    workers: int | None = None,
    progress: bool = True,
    clips_per_identity: int = 1,
    overwrite: bool = False,
) -> Path:
    """Generate a dataset folder (layout in the module docstring) and return its path.

    Refuses to replace an existing non-empty ``root`` unless ``overwrite``. ``workers`` processes
    render the videos (None: one per available core, :func:`default_workers`); every file,
    ``dataset.json`` included, is byte-identical whatever the number of workers (each video is
    drawn from its own seed, and nothing time- or order-dependent is written).
    """
    fmt = format
    workers = default_workers() if workers is None else workers
    _validate(category, num_train, num_test, num_frames, size, seed, num_cross_pairs, fmt, workers, clips_per_identity)
    num_train, num_test, num_frames, size, seed = map(int, (num_train, num_test, num_frames, size, seed))
    cpi, workers = int(clips_per_identity), int(workers)
    root = _check_out(Path(root), overwrite)
    pairs = cross_pairs(category, num_test, num_cross_pairs, seed, cpi)
    tmp = make_temp_dir(root)  # also removes the temporary folders of killed runs beside root
    try:
        for sub in ("train", "test", "cross_identity"):
            (tmp / sub).mkdir()
        jobs = [("video", str(tmp), category, "train", i, seed, num_frames, size, fmt, cpi) for i in range(num_train)]
        jobs += [("video", str(tmp), category, "test", i, seed, num_frames, size, fmt, cpi) for i in range(num_test)]
        cross_rows = _cross_rows(category, pairs, cpi)
        for (name, _, _), (a, b) in zip(cross_rows, pairs):
            jobs.append(("cross", str(tmp), category, name, a, b, seed, num_frames, size, fmt, cpi))
        _run_jobs(jobs, workers, progress, f"synth {category}")
        (tmp / "cross_identity" / "pairs.csv").write_text(
            _csv_text(["name", "source_identity_video", "driving_video"], cross_rows)
        )
        (tmp / "pairs.csv").write_text(_csv_text(["source", "driving"], [(r[1], r[2]) for r in cross_rows]))
        counts = {"train": num_train, "test": num_test, "cross_identity": len(cross_rows)}
        meta = _metadata(category, size, num_frames, seed, fmt, cpi, counts)
        (tmp / "dataset.json").write_text(json.dumps(meta, indent=2) + "\n")
        _replace_dir(tmp, root)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return root


def _check_out(root: Path, overwrite: bool) -> Path:
    """``root`` if a dataset may be written there (absent, empty, or ``overwrite``), else one clear error."""
    if root.exists() and not root.is_dir():
        raise FommError(f"{root} exists and is not a folder; choose another --out")
    if root.is_dir() and any(root.iterdir()) and not overwrite:
        raise FommError(f"{root} already exists and is not empty; choose another --out or pass --overwrite")
    return root


def _cross_rows(category: str, pairs: list, cpi: int) -> list[tuple[str, str, str]]:
    """``(name, source identity's test video, driving test video)`` of each cross-identity pair."""
    return [
        (f"{category}-cross-{k:05d}", video_name(category, "test", a, cpi), video_name(category, "test", b, cpi))
        for k, (a, b) in enumerate(pairs)
    ]


def _metadata(category: str, size: int, num_frames: int, seed: int, fmt: str, cpi: int, counts: dict) -> dict:
    """The ``dataset.json`` content; ``counts``: videos per split (train, test, cross_identity)."""
    return {
        "category": category,
        "size": size,
        "num_frames": num_frames,
        "fps": FPS,
        "seed": seed,
        "format": fmt,
        "clips_per_identity": cpi,
        "counts": {
            **counts,
            "train_identities": math.ceil(counts["train"] / cpi),
            "test_identities": math.ceil(counts["test"] / cpi),
        },
        "keypoint_names": keypoint_names(category),
        "part_names": part_names(category),
        "keypoint_convention": "keypoints_px: pixel centre i is coordinate i; keypoints: 2*x/(size-1)-1",
        "generator": "fomm.data.synthetic",
        "generator_version": GENERATOR_VERSION,
    }


def _run_jobs(jobs: list, workers: int, progress: bool, desc: str) -> None:
    bar = tqdm(total=len(jobs), desc=desc, unit="video", disable=not progress)
    try:
        if workers <= 1 or len(jobs) <= 1:
            for job in jobs:
                _task(job)
                bar.update(1)
            return
        workers = min(workers, len(jobs))
        # Small chunks keep the workers busy to the end; several videos per task amortise the IPC.
        chunk = max(1, min(8, len(jobs) // (4 * workers)))
        pool = get_context("spawn").Pool(processes=workers, initializer=_init_worker)
        try:
            for _ in pool.imap_unordered(_task, jobs, chunksize=chunk):
                bar.update(1)
            pool.close()
        except BaseException:
            pool.terminate()  # Ctrl-C or a failed video: stop the other workers at once
            raise
        finally:
            pool.join()
    finally:
        bar.close()


def _replace_dir(tmp: Path, root: Path) -> None:
    """Move the finished ``tmp`` folder to ``root`` (replacing an existing one last)."""
    if not root.exists():
        os.replace(tmp, root)
        return
    box = make_temp_dir(root)  # the old dataset waits here until the new one is in place
    old = box / root.name
    os.replace(root, old)
    try:
        os.replace(tmp, root)
    except BaseException:
        os.replace(old, root)
        shutil.rmtree(box, ignore_errors=True)
        raise
    shutil.rmtree(box, ignore_errors=True)


# --------------------------------------------------------------------------------------------
# Demo assets
# --------------------------------------------------------------------------------------------
def make_demo_assets(
    out_dir, size: int = 256, category: str = "face", num_frames: int = 48, seed: int = 0
) -> tuple[Path, Path]:
    """Write ``source.png`` (one identity) and ``driving.mp4`` (another identity moving) into
    ``out_dir`` for a quick demo; return their paths. Deterministic; files written atomically."""
    if int(size) % 2:
        raise FommError(f"demo assets need an even size, got {size}; use e.g. 64, 128 or 256")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    src = generate_video(category, "demo", 0, seed, 1, size)
    drv = generate_video(category, "demo", 1, seed, num_frames, size)
    source_path, driving_path = out / "source.png", out / "driving.mp4"
    with atomic_path(source_path) as tmp:
        write_png(tmp, src["frames"][0])
    with atomic_path(driving_path) as tmp:
        write_mp4(tmp, drv["frames"], FPS)
    return source_path, driving_path
