"""The whole run: find the videos, keep this shard's unfinished ones, prepare them on a process
pool with a progress bar, then merge ``prepare.json``.

Each video is prepared by one process from start to end (:func:`fomm.prepare.video.prepare_video`),
so the clips do not depend on the number of workers. A video whose record is there (same clip
options, same split, its clips present) is skipped without being touched.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import multiprocessing
import os
import signal
from concurrent.futures.process import BrokenProcessPool
from dataclasses import asdict
from pathlib import Path

from fomm.errors import FommError
from fomm.prepare import manifest as _manifest
from fomm.prepare import staging
from fomm.prepare.find import find_sources
from fomm.prepare.options import PrepareOptions
from fomm.prepare.split import assign_splits, in_shard
from fomm.prepare.video import STATE, finished, prepare_video, read_record


def _init_worker() -> None:
    # Ctrl-C is the parent's to handle (it cancels the pool); one OpenCV thread per process.
    import cv2

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    cv2.setNumThreads(1)


class Progress:
    """A tqdm bar over this shard's videos with the counts so far."""

    def __init__(self, total: int, skipped: int, enabled: bool):
        from tqdm import tqdm

        self.counts = {"clips": 0, "dropped": 0, "skipped": skipped}
        self.bar = tqdm(total=total, desc="preparing", unit="video", disable=not enabled, initial=skipped)
        self.bar.set_postfix(self.counts)

    def done(self, record: dict) -> None:
        self.counts["clips"] += len(record["clips"])
        self.counts["dropped"] += len(record["dropped"])
        self.bar.set_postfix(self.counts)
        self.bar.update(1)

    def close(self) -> None:
        self.bar.close()


def _run_jobs(jobs: list[dict], workers: int, progress: Progress) -> None:
    if workers <= 1 or len(jobs) <= 1:
        for job in jobs:
            progress.done(prepare_video(job))
        return
    context = multiprocessing.get_context("spawn")  # no inherited locks or threads; torch-free workers
    pool = cf.ProcessPoolExecutor(min(workers, len(jobs)), mp_context=context, initializer=_init_worker)
    try:
        for future in cf.as_completed([pool.submit(prepare_video, job) for job in jobs]):
            progress.done(future.result())
    except BrokenProcessPool:
        pool.shutdown(wait=False, cancel_futures=True)
        raise FommError(
            "a worker process died (out of memory, or a crash in a decoder or the face models); run the "
            "same command again: finished videos are skipped (--workers 1 names the video it stops at)"
        ) from None
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown()


def _remove_own_staging(root: Path) -> None:
    """This process's staging folder, when empty (a video prepared in this process leaves it so)."""
    with contextlib.suppress(OSError):
        staging.folder(root).rmdir()
        (root / "staging").rmdir()  # when no other machine's is there


def prepare(raw: str | os.PathLike, out: str | os.PathLike, options: PrepareOptions | None = None, **kwargs) -> dict:
    """Prepare the raw videos under ``raw`` into the dataset folder ``out``; returns the content
    of ``out/prepare.json``. ``options`` (or keyword arguments): see :class:`PrepareOptions`."""
    opts = (options or PrepareOptions(**kwargs)).checked()
    raw, out = Path(raw), Path(out)
    if out.exists() and not out.is_dir():
        raise FommError(f"--out {out} is a file; pass a folder for the dataset")
    sources, skipped = find_sources(raw, out)
    if not sources and not skipped:
        raise FommError(f"no files found in {raw}; pass the folder that holds the videos (searched recursively)")
    splits = assign_splits([s.rel for s in sources], opts.test_fraction, opts.seed)
    mine = [s for s in sources if in_shard(s.rel, opts.shard)]
    fingerprint = opts.fingerprint()
    todo = [s for s in mine if not finished(read_record(out, s.id), out, fingerprint, splits[s.rel])]
    for split in ("train", "test"):
        (out / split).mkdir(parents=True, exist_ok=True)
    settings = asdict(opts)
    jobs = [
        {"path": str(s.path), "rel": s.rel, "id": s.id, "split": splits[s.rel], "out": str(out), "options": settings}
        for s in todo
    ]
    staging.remove_stale(out / STATE)  # a killed run's unfinished files
    progress = Progress(len(mine), len(mine) - len(todo), opts.progress)
    try:
        _run_jobs(jobs, opts.workers, progress)
    finally:
        progress.close()
        staging.remove_stale(out / STATE)  # the pool's workers have ended
        _remove_own_staging(out / STATE)
    result = _manifest.merge(out, raw, sources, skipped, splits, opts)
    result["this_run"] = {"videos": len(mine), "prepared": len(todo), "skipped": len(mine) - len(todo)}
    return result
