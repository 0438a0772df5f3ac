"""Writing videos, GIFs, PNG strips and frame folders, one frame at a time and atomically."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import warnings
from collections.abc import Iterable
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
from PIL import Image

from fomm.atomic import atomic_path, make_temp_dir
from fomm.data.image_ops import to_rgb_uint8, warn_once
from fomm.data.video_io.audio import AudioTrack
from fomm.data.video_io.containers import ENCODE_FLAGS, av_reason, open_container, swscale
from fomm.data.video_io.paths import file_in_the_way, make_public
from fomm.errors import FommError

_WRITE_CONTAINERS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska"}


def _writer_kind(path) -> tuple[Path, str]:
    raw = os.fspath(path)
    p = Path(raw)
    if raw.endswith(("/", os.sep)) or (p.exists() and p.is_dir()) or p.suffix == "":
        return p, "folder"
    ext = p.suffix.lower()
    if ext in _WRITE_CONTAINERS:
        return p, "container"
    if ext == ".gif":
        return p, "gif"
    if ext == ".png":
        return p, "strip"
    raise FommError(
        f"cannot write a video to {p}: unsupported extension '{ext}'; use .mp4 (or .mov/.mkv), "
        ".gif, .png (an image strip) or a folder path without extension"
    )


def _fps_fraction(fps) -> Fraction:
    try:
        value = float(fps)
    except (TypeError, ValueError):
        value = float("nan")
    if not (0.0 < value < 10000.0):
        raise FommError(f"frame rate {fps!r} is not a positive number; pass fps such as 25 or 30")
    return Fraction(value).limit_denominator(1001)


_FRAME_NAME = re.compile(r"\d+\.png")


def _check_output_folder(p: Path) -> None:
    if not p.exists():
        return
    if not p.is_dir():
        raise FommError(f"{p} exists and is not a folder; choose another output path")
    others = [e.name for e in os.scandir(p) if not _FRAME_NAME.fullmatch(e.name)]
    if others:
        raise FommError(f"output folder {p} already holds other files (e.g. {others[0]}); choose a new or empty folder")


class VideoWriter:
    """Write frames one at a time to a video, GIF, PNG strip or frame folder (module doc).

    Use as a context manager; the output appears (atomically) only when :meth:`close` succeeds,
    and an exception inside the ``with`` block leaves nothing behind. Frames are uint8 or float
    in [0, 1], ``(H, W, 3)`` (gray and RGBA are converted); the first frame fixes the size.
    ``crf`` (0-51, lower is better) and ``preset`` set the H.264 quality and speed. A writer
    dropped without :meth:`close` (or the ``with`` block) writes nothing. GIF and PNG-strip
    frames are kept in memory until :meth:`close`; videos and frame folders are streamed.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        fps: float,
        audio_from: str | os.PathLike | None = None,
        crf: int = 18,
        *,
        preset: str = "medium",
    ):
        self.path, self._kind = _writer_kind(path)
        self._rate = _fps_fraction(fps)
        self.fps = float(self._rate)
        if not (isinstance(crf, (int, np.integer)) and 0 <= int(crf) <= 51):
            raise FommError(f"crf {crf!r} is not an integer in 0..51; pass e.g. 18 (high quality) or 23")
        self._crf = int(crf)
        self._preset = str(preset)
        self._audio_from: Path | None = None
        if audio_from is not None:
            audio_path = Path(audio_from)
            if not audio_path.is_file():
                raise FommError(f"audio source {audio_path} does not exist; check the path or omit audio_from")
            if self._kind == "container":
                open_container(audio_path).close()  # fail now, not at the first frame
                self._audio_from = audio_path
            else:
                warnings.warn(
                    f"{self.path}: {self._kind} outputs have no audio; audio_from={audio_path} is ignored",
                    UserWarning,
                    stacklevel=2,
                )
        self.num_frames = 0
        self._size: tuple[int, int] | None = None
        self._padded: tuple[int, int] | None = None
        self._frames: list = []
        self._output = None
        self._stream = None
        self._audio: AudioTrack | None = None
        self._closed = False
        self._atomic = None
        self._tmp: Path | None = None
        try:
            if self._kind == "folder":
                _check_output_folder(self.path)
                self._tmp = make_temp_dir(self.path)  # a killed writer's folder: removed by the next write
            else:
                atomic = atomic_path(self.path)
                self._tmp = atomic.__enter__()
                self._atomic = atomic
                make_public(self._tmp)
        except OSError as exc:
            self._closed = True
            blocker = file_in_the_way(self.path)
            if blocker is not None:
                raise FommError(
                    f"cannot create {self.path}: {blocker} is a file, not a folder; choose another output path"
                ) from None
            raise FommError(
                f"cannot create {self.path} ({exc.strerror or exc}); choose a folder you can write to"
            ) from None

    # -- context manager
    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc_type is None:
            self.close()
        else:
            self._abort(exc_type, exc, tb)
        return False

    def __del__(self):  # an unclosed writer leaves no temporary file behind
        if not getattr(self, "_closed", True):
            with contextlib.suppress(Exception):
                self._abort(None, None, None)

    # -- writing
    def write(self, frame) -> None:
        """Append one frame."""
        if self._closed:
            raise FommError(f"VideoWriter for {self.path} is closed; create a new writer to write more frames")
        rgb = to_rgb_uint8(frame)
        if self._size is None:
            self._size = rgb.shape[:2]
        elif rgb.shape[:2] != self._size:
            h, w = self._size
            raise FommError(
                f"frame {self.num_frames} is {rgb.shape[1]}x{rgb.shape[0]} but the first frame was "
                f"{w}x{h}; resize all frames to one size before writing (resize_frame)"
            )
        if self._kind == "container":
            self._write_container(rgb)
        elif self._kind == "folder":
            self._write_png(self._tmp / f"{self.num_frames:07d}.png", rgb)
        elif self._kind == "gif":
            self._frames.append(Image.fromarray(rgb).convert("P", palette=Image.Palette.ADAPTIVE, colors=256))
        else:
            self._frames.append(rgb)
        self.num_frames += 1

    def _write_png(self, path: Path, rgb: np.ndarray) -> None:
        ok, buf = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
        if not ok:
            raise FommError(f"cannot encode frame {path.name} as PNG; check the frame data")
        try:
            buf.tofile(str(path))
        except OSError as exc:
            raise FommError(f"writing {self.path} failed ({exc.strerror or exc}); check free disk space") from None

    def _start_container(self, h: int, w: int) -> None:
        ph, pw = h + h % 2, w + w % 2
        if (ph, pw) != (h, w):
            warn_once(
                "pad-even",
                f"H.264 needs even frame sizes: {w}x{h} frames were padded to {pw}x{ph} by "
                "repeating the last column/row",
            )
        self._padded = (ph, pw)
        fmt = _WRITE_CONTAINERS[self.path.suffix.lower()]
        options = {"movflags": "+faststart"} if fmt in ("mp4", "mov") else {}
        try:
            self._output = av.open(str(self._tmp), mode="w", format=fmt, container_options=options)
            stream = self._output.add_stream("libx264", rate=self._rate)
            stream.width, stream.height = pw, ph
            stream.pix_fmt = "yuv420p"
            stream.options = {"crf": str(self._crf), "preset": self._preset}
            self._stream = stream
        except (av.FFmpegError, ValueError) as exc:
            raise FommError(
                f"cannot start writing {self.path} ({av_reason(exc)}); check the path and free disk space"
            ) from None
        if self._audio_from is not None:
            self._audio = AudioTrack(self._audio_from, self._output, fmt)

    def _mux(self, packets) -> None:
        for packet in packets:
            self._output.mux(packet)

    def _write_container(self, rgb: np.ndarray) -> None:
        if self._output is None:
            self._start_container(*rgb.shape[:2])
        ph, pw = self._padded
        if rgb.shape[:2] != (ph, pw):
            rgb = np.pad(rgb, ((0, ph - rgb.shape[0]), (0, pw - rgb.shape[1]), (0, 0)), mode="edge")
        try:
            if self._audio is not None:
                self._audio.pump(self.num_frames / float(self._rate))
            frame = swscale(
                av.VideoFrame.from_ndarray(rgb, format="rgb24"), format="yuv420p", interpolation=ENCODE_FLAGS
            )
            self._mux(self._stream.encode(frame))
        except av.FFmpegError as exc:
            raise FommError(f"writing {self.path} failed ({av_reason(exc)}); check free disk space") from None

    # -- finishing
    def close(self) -> Path:
        """Finish the file and move it into place; returns the output path."""
        if self._closed:
            return self.path
        if self.num_frames == 0:
            err = FommError(f"no frames were written to {self.path}; the input produced no frames")
            self._abort(FommError, err, None)
            raise err
        try:
            if self._kind == "container":
                try:
                    self._mux(self._stream.encode(None))
                    if self._audio is not None:
                        self._audio.finish(self.num_frames / float(self._rate))
                    self._output.close()
                except av.FFmpegError as exc:
                    raise FommError(f"finishing {self.path} failed ({av_reason(exc)}); check free disk space") from None
                finally:
                    self._output = None
            elif self._kind == "gif":
                duration = max(10, int(round(100.0 / self.fps)) * 10)  # GIF delays are in 1/100 s
                first, rest = self._frames[0], self._frames[1:]
                first.save(self._tmp, format="GIF", save_all=True, append_images=rest, duration=duration, loop=0)
                self._frames = []
            elif self._kind == "strip":
                strip = np.concatenate(self._frames, axis=1)
                self._frames = []
                ok, buf = cv2.imencode(".png", cv2.cvtColor(strip, cv2.COLOR_RGB2BGR))
                if not ok:
                    raise FommError(f"cannot encode {self.path} as PNG; write a video or a frame folder instead")
                self._tmp.write_bytes(buf.tobytes())
        except OSError as exc:
            self._abort(type(exc), exc, exc.__traceback__)
            raise FommError(f"writing {self.path} failed ({exc.strerror or exc}); check free disk space") from None
        except BaseException as exc:
            self._abort(type(exc), exc, exc.__traceback__)
            raise
        self._closed = True
        if self._kind == "folder":
            self._install_folder()
        else:
            self._atomic.__exit__(None, None, None)
        return self.path

    def _install_folder(self) -> None:
        try:
            _check_output_folder(self.path)
            old = None
            if self.path.exists():
                old = make_temp_dir(self.path)
                os.replace(self.path, old / "frames")
            os.replace(self._tmp, self.path)
            if old is not None:
                shutil.rmtree(old, ignore_errors=True)
        except BaseException:
            shutil.rmtree(self._tmp, ignore_errors=True)
            raise

    def _abort(self, exc_type, exc, tb) -> None:
        if self._closed:
            return
        self._closed = True
        if self._audio is not None:
            self._audio.close()
        if self._output is not None:
            with contextlib.suppress(Exception):
                self._output.close()
            self._output = None
        self._frames = []
        if self._kind == "folder":
            if self._tmp is not None:
                shutil.rmtree(self._tmp, ignore_errors=True)
        elif self._atomic is not None:
            if exc is None:
                exc_type, exc = RuntimeError, RuntimeError("writer discarded")
            self._atomic.__exit__(exc_type, exc, tb)


def write_video(
    path: str | os.PathLike,
    frames: Iterable,
    fps: float,
    audio_from: str | os.PathLike | None = None,
    crf: int = 18,
) -> Path:
    """Write ``frames`` (an iterable of ``(H, W, 3)`` frames, or a ``(T, H, W, 3)`` array)."""
    with VideoWriter(path, fps, audio_from=audio_from, crf=crf) as writer:
        for frame in frames:
            writer.write(frame)
    return writer.path
