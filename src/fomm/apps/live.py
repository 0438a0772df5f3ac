"""``fomm live``: animate a source image with a camera, one frame as it arrives.

Driving frames come from an OpenCV camera (``--camera 0``) or any video file or stream that OpenCV
opens (a path or URL, e.g. as a camera stand-in). A reader thread captures; the main thread
animates at batch 1. When animation falls behind a live source, the newest frame wins: the reader
keeps only the latest frame and counts the ones it overwrote as dropped. A file with
``--no-realtime`` is read as fast as the animation goes and every frame is processed.

With ``--crop`` the face is followed and cropped as in ``fomm animate --crop``, but causally (each
box from the frames so far: :class:`fomm.faces.follow.FaceFollower`), and the animated face is
pasted back into the source photo (``--no-paste-back``: the animated crop only).

Motion is relative to the first frame, or to the frame shown when 'r' is pressed in the window.
The result goes to a window (when a display exists and the OpenCV build has GUI support; the
``opencv-python-headless`` wheel has none), to a video file (``--out``, written atomically) and/or
to a virtual camera (``--virtual-camera``, with ``pyvirtualcam``). Each output frame carries an
fps and latency overlay sized to fit the frame; at the end the frames processed and dropped, the
mean and p95 latency (frame captured -> result written) and the mean time of each stage (capture,
crop, keypoints, generator, output) are printed.
"""

from __future__ import annotations

import argparse
import os
import queue
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fomm.data.image_ops import to_float01, to_uint8
from fomm.errors import FommError, plural

EXAMPLES = """examples:
  fomm live --checkpoint vox-cpk.pth.tar --source photo.jpg --camera 0
  fomm live --checkpoint vox-cpk.pth.tar --source photo.jpg --camera talk.mp4 --out live.mp4 --no-realtime
  fomm live --checkpoint vox-cpk.pth.tar --source photo.jpg --camera 0 --virtual-camera --backend onnxruntime
  fomm live --checkpoint vox-cpk.pth.tar --source portrait.jpg --camera 0 --crop   # follow the face, paste back

keys (window only): r = measure motion from the current frame, q or Esc = quit
"""


# ----------------------------------------------------------------------------------------------
# Capture
# ----------------------------------------------------------------------------------------------
def check_camera(spec: str) -> None:
    """A FommError (one line) for a ``--camera`` that names no index, URL or readable video."""
    from fomm.data import video_io

    if spec.strip().isdigit() or "://" in spec:
        return
    if not Path(spec).exists():
        raise FommError(f"camera {spec!r} is neither a camera index nor an existing video; pass e.g. 0 or clip.mp4")
    if video_io.is_video_path(spec):  # a corrupt file: our reader's reason, not FFmpeg's log lines
        video_io.probe(spec)


def open_camera(spec: str):
    """``cv2.VideoCapture`` for a camera index (``"0"``), a video file or a stream URL."""
    import cv2

    is_index = spec.strip().isdigit()
    check_camera(spec)
    capture = cv2.VideoCapture(int(spec) if is_index else spec)  # its log lines: fomm.cli.opencv_logs_off
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
                captured = time.perf_counter()  # latency counts from here (the colour conversion is capture)
                self.read += 1
                self._put((np.ascontiguousarray(frame[..., ::-1]), captured))
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


OVERLAY_HEIGHT = 0.05  # text height as a fraction of the frame height (at most)
OVERLAY_MIN_PX = 12  # the text is at least this high where the frame is wide enough


def overlay_layout(text: str, frame_hw: tuple[int, int]) -> tuple[float, int, tuple[int, int]]:
    """``(font scale, thickness, origin)`` that fit ``text`` with its outline inside a frame of
    ``frame_hw``, top-left, a small margin from the edges: about 5% of the height high (at least
    12 px), shrunk where the width is too small for that."""
    import cv2

    h, w = frame_hw
    margin = max(1, round(0.02 * min(h, w)))
    (unit_w, unit_h), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, 1.0, 1)
    scale = max(OVERLAY_HEIGHT * h, min(OVERLAY_MIN_PX, 0.25 * h)) / unit_h
    for _ in range(4):  # the outline grows with the scale: settle the size in a few steps
        thickness = max(1, round(scale * 1.5))
        (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness + 2)
        fit = min((w - 2 * margin - 2) / tw, (h - 2 * margin - 2) / (th + base))
        if fit >= 1:
            break
        scale *= fit
    return scale, thickness, (margin + thickness, margin + th + thickness // 2)


def draw_overlay(frame: np.ndarray, fps: float, latency_ms: float) -> np.ndarray:
    """Write ``'<fps> fps  <latency> ms'`` in the top-left corner of an RGB uint8 frame, white on a
    black outline, sized to fit the frame (:func:`overlay_layout`)."""
    import cv2

    text = f"{fps:.1f} fps  {latency_ms:.0f} ms"
    scale, thickness, origin = overlay_layout(text, frame.shape[:2])
    font = cv2.FONT_HERSHEY_SIMPLEX
    cv2.putText(frame, text, origin, font, scale, (0, 0, 0), thickness + 2, cv2.LINE_AA)
    cv2.putText(frame, text, origin, font, scale, (255, 255, 255), thickness, cv2.LINE_AA)
    return frame


# ----------------------------------------------------------------------------------------------
# The loop
# ----------------------------------------------------------------------------------------------
STAGES = ("capture", "crop", "keypoints", "generator", "output")


@dataclass
class LiveReport:
    """What a live session did: frames processed and dropped, per-frame latencies (s) and the
    time of each stage of each frame (s, by :data:`STAGES` name): ``capture`` (colour conversion
    and the wait for the animation loop), ``crop`` (the face crop or the centre crop, resized to
    the model), ``keypoints`` (the keypoint detector on the driving frame), ``generator``
    (relative motion and the generator), ``output`` (to an image, paste-back, overlay, every
    output written). A frame's latency is the sum of its stages."""

    processed: int = 0
    dropped: int = 0
    latencies: list[float] = field(default_factory=list)
    stages: dict[str, list[float]] = field(default_factory=lambda: {name: [] for name in STAGES})
    elapsed: float = 0.0

    def add(self, clock: StageClock) -> None:
        for name, seconds in clock.laps.items():
            self.stages.setdefault(name, []).append(seconds)
        self.latencies.append(clock.total)
        self.processed += 1

    def summary(self) -> str:
        lat = np.asarray(self.latencies) * 1000 if self.latencies else np.zeros(1)
        fps = self.processed / self.elapsed if self.elapsed > 0 else 0.0
        stages = ", ".join(f"{name} {1000 * np.mean(t):.1f}" for name, t in self.stages.items() if t)
        return (
            f"{plural(self.processed, 'frame')} processed, {self.dropped} dropped; latency mean {lat.mean():.1f} ms, "
            f"p95 {np.percentile(lat, 95):.1f} ms; {fps:.1f} fps" + (f"; stages (mean ms): {stages}" if stages else "")
        )


class StageClock:
    """The stages of one frame: ``lap(name)`` ends stage ``name`` (the time since the last lap,
    or since ``start``, the moment the frame was captured). ``device``: a CUDA or MPS device is
    synchronised first, so that queued GPU work counts in the stage that queued it."""

    def __init__(self, start: float, device=None):
        self.start = self.last = start
        self.device = device
        self.laps: dict[str, float] = {}

    def lap(self, name: str) -> float:
        _synchronize(self.device)
        now = time.perf_counter()
        self.laps[name], self.last = now - self.last, now
        return now

    @property
    def total(self) -> float:
        return self.last - self.start


def _synchronize(device) -> None:
    if device is None:
        return
    import torch

    kind = torch.device(device).type
    if kind == "cuda":
        torch.cuda.synchronize(device)
    elif kind == "mps":
        torch.mps.synchronize()


def run_live(
    engine,
    reader: FrameReader,
    sinks: list,
    window: Window | None = None,
    overlay: bool = True,
    crop: Callable[[np.ndarray], np.ndarray] | None = None,
    paste: Callable[[np.ndarray], np.ndarray] | None = None,
) -> LiveReport:
    """Animate every frame ``reader`` hands over and write it to ``sinks``; returns a :class:`LiveReport`.

    ``engine`` is an :class:`~fomm.animation.engine.AnimationEngine` with its source set (the same
    engine as ``fomm animate``'s, at batch 1). ``crop``: camera frame -> model-sized RGB uint8
    frame (default: the centre, :func:`center_crop_resize`; a
    :class:`fomm.faces.follow.FaceFollower` follows the face); ``paste``: animated frame -> output
    frame (e.g. a :class:`fomm.faces.paste_back.PasteBack` into the source photo).
    """
    report = LiveReport()
    frame_shape = tuple(engine.model.frame_shape)
    crop = crop or (lambda frame: center_crop_resize(frame, frame_shape))
    device = getattr(engine, "device", None)
    recent: list[float] = []
    start = time.perf_counter()
    while (item := reader.get()) is not None:
        frame, captured = item
        clock = StageClock(captured, device)
        clock.lap("capture")
        driving = to_float01(crop(frame))[None]
        clock.lap("crop")
        kp_driving = engine.keypoints(driving)
        clock.lap("keypoints")
        prediction = engine.animate_keypoints(kp_driving)["prediction"][0]
        out = np.ascontiguousarray(to_uint8(prediction.permute(1, 2, 0)))  # cv2 draws on C-order arrays
        clock.lap("generator")
        out = np.ascontiguousarray(paste(out)) if paste is not None else out
        if overlay:
            now = time.perf_counter()
            recent = [t for t in (*recent, now) if now - t < 1.0]
            fps = (len(recent) - 1) / (recent[-1] - recent[0]) if len(recent) > 1 else 0.0
            draw_overlay(out, fps, 1000 * (now - captured))
        for sink in sinks:
            sink.write(out)
        clock.lap("output")
        report.add(clock)
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
and at the end the frames processed and dropped, the mean and p95 latency and the mean time
of each stage (capture, crop, keypoints, generator, output) are printed. With --crop the face
is followed and cropped as by fomm animate --crop, from past frames only (no look-ahead), and
pasted back into the photo."""


def register(subparsers) -> None:
    from fomm.animation.arguments import CROP, add_options
    from fomm.cli_args import add_model_arguments, summary

    p = subparsers.add_parser("live", help=summary("live"), description=DESCRIPTION, epilog=EXAMPLES)
    io = p.add_argument_group("inputs and output")
    io.add_argument("--source", required=True, metavar="IMAGE", help="the photo to animate")
    io.add_argument(
        "--camera", required=True, metavar="INDEX_OR_VIDEO", help="camera index (0, 1, ...), video file or stream URL"
    )
    add_model_arguments(io)
    io.add_argument(
        "--out",
        metavar="PATH",
        help="also write the result to this video file (.mp4, .gif, ...; written atomically; "
        "missing folders are created)",
    )
    io.add_argument("--virtual-camera", action="store_true", help="also send the result to a virtual camera")
    # fomm animate's options (fomm.animation.arguments), worded for a camera where they differ
    add_options(p.add_argument_group("motion"), ("--absolute", "--no-adapt-scale", "--avd"), help=_MOTION_HELP)
    add_options(p.add_argument_group("face crop (--crop)"), CROP[:-1], help=_crop_help())  # no --boxes-json
    running = p.add_argument_group("running")
    add_options(running, ("--device", "--backend", "--precision"), help=_RUNNING_HELP)
    running.add_argument(
        "--realtime",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="a file as camera: play it at its fps, the newest frame winning (default), or "
        "--no-realtime: process every frame as fast as possible (cameras are always real time)",
    )
    _live_display_arguments(p)
    p.set_defaults(func=run)


_MOTION_HELP = {
    "--absolute": "use the camera's keypoints as they are (absolute motion) instead of relative to the first frame",
    "--avd": "Thin-Plate Spline Motion Model checkpoints: animation via disentanglement (for other identities)",
}


def _crop_help() -> dict:
    from fomm.faces.plan import SCALE  # OpenCV: imported when the command is built, not for fomm --help
    from fomm.faces.track import SMOOTHING

    return {
        "--crop": "follow the face in the camera and crop around it (the photo too: error if it has no face); "
        "the animated face is pasted back into the full photo",
        "--no-paste-back": "with --crop: show the animated crop only, not the full photo",
        "--color-match": "with --crop: match the animated face's colours to the photo",
        "--crop-scale": f"crop side = S x face size (default: {SCALE})",
        "--crop-smoothing": f"time scale in frames of the box smoother (default: {SMOOTHING:g}; 0 follows every "
        "detection; larger is steadier but, live, follows a moving head later)",
        "--tracker": "face tracker: dlib landmarks (pip install 'fomm[faces]') or OpenCV's Haar cascade; "
        "auto = landmarks when installed (default: auto)",
    }


_RUNNING_HELP = {
    "--precision": "exact: float32 (default); fast: bf16/fp16 on GPUs and CPUs with bf16 units, int8 on other x86 CPUs",
}


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

    from fomm.animation.engine import engine_for
    from fomm.animation.options import AnimateOptions
    from fomm.data.video_io import read_image
    from fomm.models.checkpoint import load_model
    from fomm.models.registry import missing_hint

    if not args.checkpoint:
        raise FommError(f"no model given; {missing_hint()}")
    check_camera(args.camera)  # before the model loads: a mistake is said at once
    is_index = args.camera.strip().isdigit()
    realtime = True if is_index else (args.realtime is not False)
    options = AnimateOptions.from_args(args, batch_size=1, progress=False)
    model = load_model(args.checkpoint, config=args.config, device=options.device, backend=options.backend)
    source = read_image(args.source)
    engine = engine_for(model, options)
    source, follower, paste, out_hw = face_crop(options, source, tuple(model.frame_shape))
    engine.set_source(source)
    capture = open_camera(args.camera)
    fps = capture.get(cv2.CAP_PROP_FPS) or 25.0
    fps = fps if 0 < fps < 1000 else 25.0
    sinks, window = _open_outputs(args, out_hw, fps)
    reader = FrameReader(capture, realtime=realtime, fps=None if is_index else fps).start()
    try:
        report = run_live(engine, reader, sinks, window=window, overlay=not args.no_overlay, crop=follower, paste=paste)
    except BaseException as exc:  # Ctrl-C or an error: no partial --out file
        _close(sinks, exc)
        raise
    finally:
        reader.stop()
    _close(sinks, None)
    if report.processed == 0:
        raise FommError(f"no frames came from {args.camera}; check the camera or video")
    face = (
        f"; face found on {follower.found} of {plural(report.processed, 'frame')} ({follower.name})" if follower else ""
    )
    print(f"live: {report.summary()}{face}" + (f"; wrote {args.out}" if args.out else ""))
    return 0


def face_crop(options, photo: np.ndarray, frame_shape: tuple[int, int]):
    """With ``options.crop``: the photo cropped around its face (a FommError without one), a
    :class:`~fomm.faces.follow.FaceFollower` for the camera frames and, with ``paste_back``, a
    :class:`~fomm.faces.paste_back.PasteBack` into the photo. Returns ``(source, follower or
    None, paste or None, output (H, W))``; without crop ``(photo, None, None, frame_shape)``."""
    if not options.crop:
        return photo, None, None, frame_shape
    from fomm.faces.follow import FaceFollower
    from fomm.faces.paste_back import PasteBack
    from fomm.faces.plan import crop_image, plan_options

    opts = plan_options(dict(options.crop_options))
    found = dict(scale=opts["scale"], tracker=opts["tracker"], shift_up=opts["shift_up"])
    source, box = crop_image(photo, int(frame_shape[0]), **found, required=True, name="the source photo")
    follower = FaceFollower(frame_shape, **found, smoothing=opts["smoothing"])
    if not options.paste_back:
        return source, follower, None, frame_shape
    paste = PasteBack(photo, box, color_match=options.color_match)
    return source, follower, paste, paste.out_hw
