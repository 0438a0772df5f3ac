"""``fomm prepare`` speed on 720p face videos: seconds of source video prepared per second.

Makes ``--videos`` H.264 clips of 1280x720 at ``--fps`` (scikit-image's astronaut photo gliding
over a background, with a scene cut in the middle: the face is followed, lost at the cut and
found again), then times ``fomm.prepare.prepare`` on them with ``--workers`` processes (the time
to make the videos is not counted). Above 1.0x is faster than real time.

    python benchmarks/prepare_benchmark.py                       # 2 videos of 10 s, 2 workers
    python benchmarks/prepare_benchmark.py --videos 4 --seconds 20 --workers 2 --tracker haar

Prints the source duration, the wall time, the ratio, the clips made, and the CPU (model, flags,
load average: on a busy machine the ratio is lower). Also the CPU time of the run (this process
and its workers) and the ratio it gives when each worker has a core to itself: the figure to
trust on a shared machine. Each worker loads the face models once (about 2 s), so short runs
understate the speed of long ones.
"""

from __future__ import annotations

import argparse
import json
import resource
import tempfile
import time
from pathlib import Path

import av
import cv2
import numpy as np

FACE_CENTRE = (225.0, 118.0)  # in the astronaut photo


def face_frames(n: int, seed: int) -> list[np.ndarray]:
    from skimage.data import astronaut

    from fomm.testing import place

    photo = astronaut()
    rng = np.random.default_rng(seed)
    frames = []
    for shot in range(2):
        small = rng.integers(0, 256, (45, 80, 3)).astype(np.uint8)
        bg = cv2.GaussianBlur(cv2.resize(small, (1280, 720), interpolation=cv2.INTER_CUBIC), (0, 0), 6)
        m_shot = n // 2 if shot == 0 else n - n // 2
        for t in range(m_shot):
            a = t / max(m_shot - 1, 1)
            cx, cy = (420 + 200 * a, 330 + 30 * np.sin(4 * np.pi * a)) if shot == 0 else (820 - 150 * a, 380)
            frames.append(place(photo, bg, FACE_CENTRE, (cx, cy), 1.6 + 0.3 * shot, 6 * np.sin(3 * np.pi * a)))
    return frames


def write(path: Path, frames: list[np.ndarray], fps: int) -> None:
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = 1280, 720, "yuv420p"
        stream.options = {"preset": "veryfast", "crf": "20"}
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)


def cpu_seconds() -> float:
    """User + system CPU time of this process and its finished children (the pool's workers)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--videos", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--fps", type=int, default=30)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--tracker", default="auto", choices=("auto", "landmarks", "haar"))
    parser.add_argument("--size", type=int, default=256)
    args = parser.parse_args()

    from fomm.cpu import describe_cpu
    from fomm.prepare import PrepareOptions, prepare

    n = int(round(args.seconds * args.fps))
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "raw"
        raw.mkdir()
        for k in range(args.videos):
            write(raw / f"face{k}.mp4", face_frames(n, k), args.fps)
        opts = PrepareOptions(workers=args.workers, tracker=args.tracker, size=args.size, progress=False)
        cpu0, start = cpu_seconds(), time.perf_counter()
        manifest = prepare(raw, Path(tmp) / "data", opts)
        wall, cpu = time.perf_counter() - start, cpu_seconds() - cpu0
    duration = args.videos * n / args.fps
    result = {
        "videos": args.videos,
        "source_seconds": round(duration, 2),
        "frames": args.videos * n,
        "resolution": "1280x720",
        "fps": args.fps,
        "workers": args.workers,
        "tracker": args.tracker,
        "wall_seconds": round(wall, 2),
        "realtime_ratio": round(duration / wall, 2),
        "cpu_seconds": round(cpu, 2),
        # what the same CPU work gives when the workers have their cores to themselves
        "realtime_ratio_if_idle": round(duration / (cpu / args.workers), 2),
        "source_frames_per_second": round(args.videos * n / wall, 1),
        "clips": manifest["counts"]["clips"],
        "dropped": manifest["counts"]["dropped"],
        "cpu": describe_cpu(),
    }
    print(json.dumps(result, indent=1))
    print(f"prepare: {duration:.1f} s of 720p video in {wall:.1f} s = {duration / wall:.2f}x real time")
    print(
        f"CPU time {cpu:.1f} s over {args.workers} workers: {duration / (cpu / args.workers):.2f}x real time "
        f"on {args.workers} otherwise idle cores (load average now {result['cpu']['load_average']})"
    )


if __name__ == "__main__":
    main()
