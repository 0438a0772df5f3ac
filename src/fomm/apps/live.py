"""``fomm live``: animate a source image with a camera, one frame as it arrives.

Driving frames come from an OpenCV camera (``--camera 0``) or any video file or stream that OpenCV
opens (a path or URL, e.g. as a camera stand-in). A reader thread captures; the main thread
animates at batch 1. When animation falls behind a live source, the newest frame wins: the reader
keeps only the latest frame and counts the ones it overwrote as dropped. A file with
``--no-realtime`` is read as fast as the animation goes and every frame is processed.

Motion is relative to the first frame, or to the frame shown when 'r' is pressed in the window.
The result goes to a window (when a display exists and the OpenCV build has GUI support; the
``opencv-python-headless`` wheel has none), to a video file (``--out``, written atomically) and/or
to a virtual camera (``--virtual-camera``, with ``pyvirtualcam``). Each output frame carries an
fps and latency overlay; at the end the frames processed and dropped and the mean and p95
latency (frame captured -> result ready) are printed.
"""

from __future__ import annotations

import argparse
import os
import queue
import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fomm.data.image_ops import to_float01, to_uint8
from fomm.errors import FommError

EXAMPLES = """examples:
  fomm live --checkpoint vox-cpk.pth.tar --source photo.jpg --camera 0
  fomm live --checkpoint vox-cpk.pth.tar --source photo.jpg --camera talk.mp4 --out live.mp4 --no-realtime
  fomm live --checkpoint vox-cpk.pth.tar --source photo.jpg --camera 0 --virtual-camera --backend onnxruntime

keys (window only): r = measure motion from the current frame, q or Esc = quit
"""


# ----------------------------------------------------------------------------------------------
# Capture
# ----------------------------------------------------------------------------------------------
def open_camera(spec: str):
    """``cv2.VideoCapture`` for a camera index (``"0"``), a video file or a stream URL."""
    import cv2

    is_index = spec.strip().isdigit()
    if not is_index and "://" not in spec and not Path(spec).exists():
        raise FommError(f"camera {spec!r} is neither a camera index nor an existing video; pass e.g. 0 or clip.mp4")
    capture = cv2.VideoCapture(int(spec) if is_index else spec)
    if not capture.isOpened():
        what = f"camera {spec}" if is_index else spec
        raise FommError(f"cannot open {what} with OpenCV; check the index, path or URL")
    return capture


class FrameReader:
    """Reads a capture on a thread. ``realtime``: only the newest frame is kept (older unread ones
    are dropped and counted) and a file is paced at its own fps; otherwise every frame is queued.

    ``get()`` returns ``(rgb_frame (H, W, 3) uint8, arrival_time)`` or None at the end.
    """

    def __init__(self, capture, realtime: bool, fps: float | None = None):
        self.capture = capture
        self.realtime = realtime
        self.fps = fps
        self.dropped = 0
        self.read = 0
        self._queue: queue.Queue = queue.Queue(maxsize=1 if realtime else 4)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="fomm-live-reader", daemon=True)

    def start(self) -> FrameReader:
        self._thread.start()
        return self

    def _loop(self) -> None:
        start = time.perf_counter()
        try:
            while not self._stop.is_set():
                ok, frame = self.capture.read()
                if not ok:
                    break
                if self.realtime and self.fps:  # a file standing in for a camera: its own pace
                    delay = start + self.read / self.fps - time.perf_counter()
                    if delay > 0:
                        time.sleep(delay)
                self.read += 1
                self._put((np.ascontiguousarray(frame[..., ::-1]), time.perf_counter()))
        finally:
            self._put(None)

    def _put(self, item) -> None:
        if not self.realtime or item is None:  # the end marker waits: it never displaces a frame
            while not self._stop.is_set():
                try:
                    self._queue.put(item, timeout=0.1)
                    return
                except queue.Full:
                    continue
            return
        while True:  # newest wins: replace an unread frame
            try:
                self._queue.put_nowait(item)
                return
            except queue.Full:
                try:
                    old = self._queue.get_nowait()
                    if old is not None:
                        self.dropped += 1
                except queue.Empty:
                    pass

    def get(self):
        return self._queue.get()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self.capture.release()


def center_crop_resize(frame: np.ndarray, frame_shape: tuple[int, int]) -> np.ndarray:
    """The central part of ``frame`` with the model's aspect ratio, resized to ``frame_shape``
    (:func:`fomm.data.image_ops.fit_aspect` + :func:`~fomm.data.image_ops.resize_frame`)."""
    from fomm.data.image_ops import fit_aspect, resize_frame

    return resize_frame(fit_aspect(frame, frame_shape, "crop"), frame_shape)


# ----------------------------------------------------------------------------------------------
# Outputs
# ----------------------------------------------------------------------------------------------
def display_available() -> bool:
    """A display (DISPLAY / WAYLAND_DISPLAY, or Windows / macOS) and an OpenCV built with GUI."""
    import sys

    import cv2

    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        return False
    match = re.search(r"GUI:\s*(\S+)", cv2.getBuildInformation())
    return bool(match) and match.group(1).upper() != "NONE"


class Window:
    """An OpenCV window; ``poll()`` returns the key pressed (or -1)."""

    name = "fomm live"

    def write(self, frame_rgb: np.ndarray) -> None:
        import cv2

        cv2.imshow(self.name, frame_rgb[..., ::-1])

    def poll(self) -> int:
        import cv2

        return cv2.waitKey(1) & 0xFF

    def close(self) -> None:
        import cv2

        cv2.destroyWindow(self.name)


class VirtualCamera:
    """A ``pyvirtualcam`` camera showing the output frames."""

    def __init__(self, frame_shape: tuple[int, int], fps: float):
        try:
            import pyvirtualcam
        except ImportError:
            raise FommError("--virtual-camera needs pyvirtualcam: pip install pyvirtualcam") from None
        try:
            self.camera = pyvirtualcam.Camera(width=frame_shape[1], height=frame_shape[0], fps=fps)
        except RuntimeError as exc:
            raise FommError(f"no virtual camera device: {exc}") from None

    def write(self, frame_rgb: np.ndarray) -> None:
        self.camera.send(frame_rgb)

    def close(self) -> None:
        self.camera.close()


def draw_overlay(frame: np.ndarray, fps: float, latency_ms: float) -> np.ndarray:
    """Write ``'<fps> fps  <latency> ms'`` in the top-left corner of an RGB uint8 frame."""
    import cv2

    text = f"{fps:.1f} fps  {latency_ms:.0f} ms"
    scale = max(0.3, frame.shape[1] / 640)
    thickness = max(1, round(scale * 2))
    origin = (4, 4 + round(14 * scale))
    cv2.putText(frame, text, origin, cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), thickness + 2, cv2.LINE_AA)
    cv2.putText(frame, text, origin, cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), thickness, cv2.LINE_AA)
    return frame


# ----------------------------------------------------------------------------------------------
# The loop
# ----------------------------------------------------------------------------------------------
@dataclass
class LiveReport:
    """What a live session did: frames processed and dropped, and per-frame latencies (s)."""

    processed: int = 0
    dropped: int = 0
    latencies: list[float] = field(default_factory=list)
    elapsed: float = 0.0

    def summary(self) -> str:
        lat = np.asarray(self.latencies) * 1000 if self.latencies else np.zeros(1)
        fps = self.processed / self.elapsed if self.elapsed > 0 else 0.0
        return (
            f"{self.processed} frames processed, {self.dropped} dropped; latency mean {lat.mean():.1f} ms, "
            f"p95 {np.percentile(lat, 95):.1f} ms; {fps:.1f} fps"
        )


def run_live(engine, reader: FrameReader, sinks: list, window: Window | None = None, overlay: bool = True):
    """Animate every frame ``reader`` hands over and write it to ``sinks``; returns a :class:`LiveReport`.

    ``engine`` is an :class:`~fomm.animation.engine.AnimationEngine` with its source set.
    """
    report = LiveReport()
    frame_shape = tuple(engine.model.frame_shape)
    recent: list[float] = []
    start = time.perf_counter()
    while (item := reader.get()) is not None:
        frame, arrival = item
        driving = to_float01(center_crop_resize(frame, frame_shape))[None]
        prediction = engine.animate_batch(driving)["prediction"][0]
        out = np.ascontiguousarray(to_uint8(prediction.permute(1, 2, 0)))  # cv2 draws on C-order arrays
        done = time.perf_counter()
        report.latencies.append(done - arrival)
        recent = [t for t in (*recent, done) if done - t < 1.0]
        if overlay:
            fps = (len(recent) - 1) / (recent[-1] - recent[0]) if len(recent) > 1 else 0.0
            draw_overlay(out, fps, 1000 * (done - arrival))
        for sink in sinks:
            sink.write(out)
        report.processed += 1
        if window is not None:
            key = window.poll()
            if key == ord("r"):
                engine.reset_initial()  # the next frame becomes the reference
            elif key in (ord("q"), 27):
                break
    report.elapsed = time.perf_counter() - start
    report.dropped = reader.dropped
    return report


# ----------------------------------------------------------------------------------------------
# Command line
# ----------------------------------------------------------------------------------------------
DESCRIPTION = """\
Animate a source photo live with the motion of a camera (an index such as 0), a video file or
a stream URL. When animation falls behind a live source, the newest frame wins (the others are
counted as dropped). Motion is relative to the first frame, or to the frame shown when r is
pressed in the window. The result goes to a window (when there is a display), to a video file
(--out) and/or to a virtual camera (--virtual-camera); each frame shows the fps and latency,
and at the end the frames processed and dropped and the mean and p95 latency are printed."""


def register(subparsers) -> None:
    from fomm.cli_args import summary

    p = subparsers.add_parser("live", help=summary("live"), description=DESCRIPTION, epilog=EXAMPLES)
    io = p.add_argument_group("inputs and output")
    io.add_argument("--source", required=True, metavar="IMAGE", help="the photo to animate")
    io.add_argument(
        "--camera", required=True, metavar="INDEX_OR_VIDEO", help="camera index (0, 1, ...), video file or stream URL"
    )
    io.add_argument(
        "--checkpoint",
        required=True,
        metavar="PATH_OR_NAME",
        help="model checkpoint (e.g. vox-cpk.pth.tar), or a published name downloaded with fomm download",
    )
    io.add_argument(
        "--config",
        metavar="NAME_OR_YAML",
        help="model config: a preset (e.g. vox-256) or a YAML file; needed only when the "
        "checkpoint fits no bundled preset",
    )
    io.add_argument(
        "--out",
        metavar="PATH",
        help="also write the result to this video file (.mp4, .gif, ...; written atomically; "
        "missing folders are created)",
    )
    io.add_argument("--virtual-camera", action="store_true", help="also send the result to a virtual camera")
    motion = p.add_argument_group("motion")
    motion.add_argument(
        "--absolute",
        "--no-relative",
        dest="relative",
        action="store_false",
        help="use the camera's keypoints as they are (absolute motion) instead of relative to the first frame",
    )
    motion.add_argument(
        "--no-adapt-scale",
        dest="adapt_scale",
        action="store_false",
        help="do not scale the motion by the source/driving keypoint hull ratio",
    )
    motion.add_argument(
        "--avd",
        action="store_true",
        help="Thin-Plate Spline Motion Model checkpoints: animation via disentanglement (for other identities)",
    )
    _live_running_arguments(p)
    _live_display_arguments(p)
    p.set_defaults(func=run)


def _live_running_arguments(p: argparse.ArgumentParser) -> None:
    from fomm.animation.options import BACKENDS, DEVICES, PRECISIONS

    group = p.add_argument_group("running")
    group.add_argument(
        "--device",
        choices=DEVICES,
        default="auto",
        help="where to run the model (default: auto: CUDA, then MPS, then CPU)",
    )
    group.add_argument(
        "--backend",
        choices=BACKENDS,
        default="torch",
        help="run the networks in torch (default) or in ONNX Runtime (exported on the fly, cached)",
    )
    group.add_argument(
        "--precision",
        choices=PRECISIONS,
        default="exact",
        help="exact: float32 (default); fast: bf16/fp16 on GPUs and CPUs with bf16 units, int8 on other x86 CPUs",
    )
    group.add_argument(
        "--realtime",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="a file as camera: play it at its fps, the newest frame winning (default), or "
        "--no-realtime: process every frame as fast as possible (cameras are always real time)",
    )


def _live_display_arguments(p: argparse.ArgumentParser) -> None:
    group = p.add_argument_group("display")
    group.add_argument("--no-overlay", action="store_true", help="no fps / latency text on the frames")
    group.add_argument("--no-window", action="store_true", help="do not open a window even when a display exists")


def _open_outputs(args, frame_shape, fps):
    """(sinks to write, window or None); a window when possible, else --out / --virtual-camera."""
    from fomm.data.video_io import VideoWriter

    window = Window() if (not args.no_window and display_available()) else None
    if window is None and not args.out and not args.virtual_camera:
        raise FommError("no display to show the result here; pass --out result.mp4 or --virtual-camera")
    sinks: list = [window] if window is not None else []
    if args.out:
        sinks.append(VideoWriter(args.out, fps).__enter__())
    if args.virtual_camera:
        sinks.append(VirtualCamera(frame_shape, fps))
    return sinks, window


def _close(sinks: list, exc: BaseException | None) -> None:
    """Close every output; a video writer is finished on success and discarded after ``exc``."""
    for sink in sinks:
        if hasattr(sink, "__exit__"):
            sink.__exit__(None if exc is None else type(exc), exc, None)
        else:
            sink.close()


def run(args) -> int:
    import cv2

    from fomm.animation.engine import AnimationEngine
    from fomm.animation.options import AnimateOptions
    from fomm.data.video_io import read_image
    from fomm.models.checkpoint import load_model, resolve_device

    is_index = args.camera.strip().isdigit()
    realtime = True if is_index else (args.realtime is not False)
    options = AnimateOptions.from_args(args, batch_size=1, progress=False)
    model = load_model(args.checkpoint, config=args.config, device=resolve_device(options.device))
    source = read_image(args.source)
    engine = AnimationEngine(
        model,
        relative=options.relative,
        adapt_movement_scale=options.adapt_movement_scale,
        batch_size=options.batch_size,
        precision=options.precision,
        backend=options.backend,
        avd=options.avd,
    )
    engine.set_source(source)
    capture = open_camera(args.camera)
    fps = capture.get(cv2.CAP_PROP_FPS) or 25.0
    fps = fps if 0 < fps < 1000 else 25.0
    sinks, window = _open_outputs(args, model.frame_shape, fps)
    reader = FrameReader(capture, realtime=realtime, fps=None if is_index else fps).start()
    try:
        report = run_live(engine, reader, sinks, window=window, overlay=not args.no_overlay)
    except BaseException as exc:  # Ctrl-C or an error: no partial --out file
        _close(sinks, exc)
        raise
    finally:
        reader.stop()
    _close(sinks, None)
    if report.processed == 0:
        raise FommError(f"no frames came from {args.camera}; check the camera or video")
    print(f"live: {report.summary()}" + (f"; wrote {args.out}" if args.out else ""))
    return 0
