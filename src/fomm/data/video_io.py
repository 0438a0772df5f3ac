"""Reading and writing videos, frame folders, image strips and images.

Frames are always uint8 ``(H, W, 3)`` RGB arrays (or float32 in [0, 1] where asked for).

Sources understood by the readers (:func:`probe`, :func:`iter_frames`, :func:`read_frames`):

* video files ``.mp4 .m4v .mov .avi .webm .mkv``, decoded by PyAV one frame at a time; the frame
  rate is the stream's average rate. A rotation stored in the file (phone videos) is applied.
  A file that stops decoding early (truncated download) gives the frames that decode and a
  warning saying how many were read.
* ``.gif``, decoded by Pillow (the library imageio uses for GIFs) one frame at a time; the frame
  rate comes from the frame delays (10 fps when the file has none).
* a folder of frames: its image files in natural order (``2.png`` before ``10.png``; the same as
  plain sorting for zero-padded names); other files are ignored. Frame rate: :data:`DEFAULT_FPS`.
* a single image, as a one-frame video, or an image *strip* as written by the original FOMM
  (frames side by side along the width). Rule: the frame width is the image height (square
  frames) or, with ``frame_shape=(H, W)``, ``round(image_height * W / H)``; the image is a strip
  when its width is an integer multiple, at least 2, of that frame width. So a 256x768 PNG is
  three 256x256 frames, a 256x300 photo is one frame. Pass ``as_strip=False`` (or use
  :func:`read_image`, which never splits) to read a wide image as one frame.

Images are converted with :func:`fomm.data.image_ops.to_rgb_uint8`: grayscale is replicated,
16-bit is scaled to 8 bits, an alpha channel is composited over white (each warned once).

Writers (:class:`VideoWriter`, :func:`write_video`, :func:`write_image`) write atomically (a
temporary file beside the target, renamed at the end; nothing is left behind on an error or
Ctrl-C) and pick the format from the path:

* ``.mp4 .m4v .mov .mkv``: H.264 (libx264, yuv420p, ``crf`` 18 by default, ``+faststart``).
  H.264 in yuv420p needs even sizes: odd heights/widths are *padded* by one row/column that
  repeats the last one (warned once), so reading the file back gives the padded size.
  ``audio_from=<media file>`` copies its first audio stream, cut at the end of the video: packets
  are copied unchanged when the codec fits the container (AAC, MP3, ...), otherwise re-encoded
  to AAC. A file without audio gives a video without audio.
* ``.gif``: Pillow, 256-colour palette per frame, looping. GIF delays are in 1/100 s, so the
  frame rate is rounded (25 fps is exact, 30 fps becomes 33.3 fps) and Pillow merges identical
  consecutive frames into one longer frame.
* ``.png``: one image strip (frames side by side), the original FOMM's format.
* a path without extension, or ending in ``/``: a folder of frames ``0000000.png, 0000001.png,
  ...``. An existing folder is replaced only if it holds nothing but such frames.

User errors (missing file, not a video, no frames, corrupt data) raise
:class:`fomm.errors.FommError` with a one-line message naming the problem and the fix.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
import warnings
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
from av.video.reformatter import Interpolation
from PIL import Image, ImageSequence, UnidentifiedImageError

from fomm.atomic import atomic_path, make_temp_dir
from fomm.data.image_ops import (
    normalize_frame_shape,
    resize_frame,
    to_float01,
    to_rgb_uint8,
    warn_once,
)
from fomm.errors import FommError

__all__ = [
    "DEFAULT_FPS",
    "VideoInfo",
    "VideoWriter",
    "is_image_path",
    "is_video_path",
    "iter_frames",
    "list_frame_files",
    "probe",
    "read_frames",
    "read_frames_at",
    "read_image",
    "resize_frame",
    "to_rgb_uint8",
    "write_image",
    "write_video",
]

logger = logging.getLogger(__name__)

#: Frame rate reported for sources that have none (frame folders, images, strips).
DEFAULT_FPS = 25.0
#: Frame rate of a GIF whose frames have no delay.
GIF_DEFAULT_FPS = 10.0

CONTAINER_EXTENSIONS = frozenset({".mp4", ".m4v", ".mov", ".avi", ".webm", ".mkv"})
GIF_EXTENSIONS = frozenset({".gif"})
VIDEO_EXTENSIONS = CONTAINER_EXTENSIONS | GIF_EXTENSIONS
IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff"})

_WRITE_CONTAINERS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska"}
# Audio codecs that may be stream-copied into each output container.
_AUDIO_COPY_OK = {
    "mp4": frozenset({"aac", "mp3", "alac", "ac3", "eac3"}),
    "mov": frozenset({"aac", "mp3", "alac", "ac3", "eac3", "pcm_s16le"}),
    "matroska": frozenset({"aac", "mp3", "alac", "ac3", "eac3", "opus", "vorbis", "flac", "pcm_s16le"}),
}

_SUPPORTED = "a video (.mp4 .mov .avi .webm .mkv), a .gif, an image (.png .jpg) or a folder of frames"


@dataclass
class VideoInfo:
    """What :func:`probe` learns about a source without decoding it all.

    ``num_frames`` is ``None`` when the container does not say (e.g. some .webm/.mkv files).
    ``width``/``height`` are those of the frames :func:`iter_frames` yields without resizing.
    """

    path: Path
    fps: float
    num_frames: int | None
    width: int
    height: int
    has_audio: bool


# --------------------------------------------------------------------------------------------
# Paths


def is_video_path(path: str | os.PathLike) -> bool:
    """True for a video or GIF extension, or an existing folder (a folder of frames)."""
    p = Path(path)
    return p.suffix.lower() in VIDEO_EXTENSIONS or p.is_dir()


def is_image_path(path: str | os.PathLike) -> bool:
    """True for an image extension (.png .jpg .jpeg .bmp .webp .tif .tiff)."""
    return Path(path).suffix.lower() in IMAGE_EXTENSIONS


def _natural_key(name: str):
    parts = re.split(r"(\d+)", name)
    return [int(p) if i % 2 else p.lower() for i, p in enumerate(parts)], name


def list_frame_files(folder: str | os.PathLike) -> list[Path]:
    """The image files of ``folder`` in natural order (hidden files and non-images ignored)."""
    folder = Path(folder)
    try:
        names = [
            e.name
            for e in os.scandir(folder)
            if not e.name.startswith(".") and Path(e.name).suffix.lower() in IMAGE_EXTENSIONS and e.is_file()
        ]
    except OSError as exc:
        raise FommError(
            f"cannot list frame folder {folder} ({exc.strerror}); check the path and its permissions"
        ) from None
    return [folder / n for n in sorted(names, key=_natural_key)]


def _source_kind(path: str | os.PathLike) -> tuple[Path, str]:
    """Return ``(path, kind)`` with kind in 'folder', 'container', 'gif', 'image'."""
    p = Path(path)
    if not p.exists():
        raise FommError(f"{p} does not exist; check the path (expected {_SUPPORTED})")
    if p.is_dir():
        return p, "folder"
    ext = p.suffix.lower()
    if ext in CONTAINER_EXTENSIONS:
        return p, "container"
    if ext in GIF_EXTENSIONS:
        return p, "gif"
    if ext in IMAGE_EXTENSIONS:
        return p, "image"
    raise FommError(f"{p} has an unsupported file type '{ext or '(none)'}'; pass {_SUPPORTED}")


# --------------------------------------------------------------------------------------------
# Images


def _decode_image(path: Path) -> np.ndarray:
    """Decode an image file to an RGB(A)/gray array of its own dtype (no conversion)."""
    try:
        data = np.fromfile(str(path), dtype=np.uint8)
    except OSError as exc:
        raise FommError(f"cannot read image {path} ({exc.strerror}); check the path and its permissions") from None
    if data.size == 0:
        raise FommError(f"image {path} is an empty file; re-export or re-download it")
    jpeg = path.suffix.lower() in (".jpg", ".jpeg")
    # IMREAD_COLOR applies the EXIF orientation of JPEGs; UNCHANGED keeps 16 bits and alpha.
    img = cv2.imdecode(data, cv2.IMREAD_COLOR if jpeg else cv2.IMREAD_UNCHANGED)
    if img is None:
        try:  # formats or variants OpenCV does not read
            with Image.open(path) as im:
                img = np.asarray(im.convert("RGBA") if im.mode in ("P", "PA", "LA", "RGBA") else im.convert("RGB"))
            return img
        except (UnidentifiedImageError, OSError, ValueError):
            raise FommError(
                f"cannot decode image {path} (corrupt, truncated or not an image); re-export or re-download it"
            ) from None
    if img.ndim == 3 and img.shape[2] == 3:
        img = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    elif img.ndim == 3 and img.shape[2] == 4:
        img = cv2.cvtColor(img, cv2.COLOR_BGRA2RGBA)
    return img


def _image_size(path: Path) -> tuple[int, int]:
    """``(width, height)`` read from the header when possible."""
    try:
        with Image.open(path) as im:
            w, h = im.size
        if path.suffix.lower() in (".jpg", ".jpeg"):  # EXIF rotation may swap the sides
            with Image.open(path) as im:
                orientation = im.getexif().get(0x0112, 1)
            if orientation in (5, 6, 7, 8):
                w, h = h, w
        return int(w), int(h)
    except (UnidentifiedImageError, OSError, ValueError):
        img = _decode_image(path)
        return img.shape[1], img.shape[0]


def _strip_layout(path: Path, width: int, height: int, frame_shape, as_strip) -> tuple[int, int]:
    """``(num_frames, frame_width)`` of an image, following the strip rule of the module doc."""
    if as_strip is False:
        return 1, width
    if frame_shape is None:
        frame_w = height
    else:
        frame_w = max(1, int(round(height * frame_shape[1] / frame_shape[0])))
    count = width // frame_w if width % frame_w == 0 else 0
    if count >= 2:
        return count, frame_w
    if as_strip and count != 1:
        raise FommError(
            f"{path} is {width}x{height} pixels, not a strip of frames {frame_w} pixels wide; "
            "pass a strip whose width is a multiple of the frame width, or as_strip=False"
        )
    return 1, width


def read_image(path: str | os.PathLike, frame_shape: Sequence[int] | None = None) -> np.ndarray:
    """Read one image file as uint8 ``(H, W, 3)`` RGB (never split as a strip).

    ``frame_shape=(H, W)`` resizes it. Grayscale, 16-bit and alpha images are converted (see
    :func:`to_rgb_uint8`).
    """
    shape = normalize_frame_shape(frame_shape)
    p, kind = _source_kind(path)
    if kind != "image":
        raise FommError(
            f"{p} is a {'folder' if kind == 'folder' else 'video'}, not an image; pass an image file "
            "(.png .jpg ...) or read it with read_frames"
        )
    img = to_rgb_uint8(_decode_image(p), f"image {p}")
    return resize_frame(img, shape) if shape is not None else img


def write_image(path: str | os.PathLike, frame) -> Path:
    """Write ``frame`` (uint8, or float in [0, 1]; gray/RGB/RGBA) to an image file, atomically."""
    p = Path(path)
    ext = p.suffix.lower()
    if ext not in IMAGE_EXTENSIONS:
        raise FommError(f"cannot write an image to {p}: unknown image extension '{ext or '(none)'}'; use .png or .jpg")
    rgb = to_rgb_uint8(frame)
    params = [cv2.IMWRITE_JPEG_QUALITY, 95] if ext in (".jpg", ".jpeg") else []
    ok, buf = cv2.imencode(ext, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), params)
    if not ok:
        raise FommError(f"OpenCV cannot encode {ext} images; write a .png instead")
    try:
        with atomic_path(p) as tmp:
            _make_public(tmp)
            tmp.write_bytes(buf.tobytes())
    except OSError as exc:
        raise FommError(f"cannot write {p} ({exc.strerror or exc}); choose a folder you can write to") from None
    return p


# --------------------------------------------------------------------------------------------
# Containers (PyAV)


def _av_reason(exc: BaseException) -> str:
    reason = getattr(exc, "strerror", None) or str(exc)
    return str(reason).strip().rstrip(".")


def _open_container(path: Path):
    with contextlib.suppress(OSError):
        if path.stat().st_size == 0:
            raise FommError(f"{path} is an empty file; re-export or re-download it")
    try:
        return av.open(str(path), mode="r", metadata_errors="ignore")
    except av.FFmpegError as exc:
        raise FommError(
            f"cannot read {path} as a video ({_av_reason(exc)}): it is corrupt, truncated or not "
            "a video; re-export or re-download it"
        ) from None


def _video_stream(container, path: Path):
    if container.streams.video:
        return container.streams.video[0]
    if _shorter_than_header(path):
        raise _truncated(path, "it ends before its header says; no readable video stream")
    if container.streams.audio:
        raise FommError(f"{path} has no video stream, only audio; pass a file that contains video")
    if not container.streams and not _is_mp4(path):  # a complete MP4 may hold no streams
        raise _truncated(path, "no readable stream")
    raise FommError(f"{path} has no video stream; pass a file that contains video")


def _is_mp4(path: Path) -> bool:
    try:
        with open(path, "rb") as fh:
            return fh.read(8)[4:8] == b"ftyp"
    except OSError:
        return False


def _truncated(path: Path, why: str) -> FommError:
    return FommError(f"{path} is truncated or corrupt ({why}); re-export or re-download it")


def _shorter_than_header(path: Path) -> bool:
    """Whether an MP4/MOV file ends inside one of its top-level boxes, or before its ``moov``
    box (the index without which nothing decodes): the file is shorter than its header says."""
    try:
        size = path.stat().st_size
        if not _is_mp4(path):
            return False
        with open(path, "rb") as fh:
            offset, seen_moov = 0, False
            while offset + 8 <= size:
                fh.seek(offset)
                head = fh.read(16)
                box, kind = int.from_bytes(head[:4], "big"), head[4:8]
                if box == 1 and len(head) == 16:  # 64-bit size follows the type
                    box = int.from_bytes(head[8:16], "big")
                elif box == 0:  # the box runs to the end of the file
                    box = size - offset
                if box < 8 or offset + box > size:
                    return True
                seen_moov |= kind == b"moov"
                offset += box
            return offset != size or not seen_moov
    except OSError:
        return False


def _stream_fps(stream) -> float:
    for rate in (stream.average_rate, stream.guessed_rate, stream.base_rate):
        try:
            value = float(rate) if rate is not None else 0.0
        except (ZeroDivisionError, TypeError, ValueError):
            value = 0.0
        if 0.0 < value < 10000.0:
            return value
    return DEFAULT_FPS


# swscale's default YUV->RGB path rounds down (about -1.3 levels on average, MAD ~2 on smooth
# content); accurate rounding with full chroma interpolation is unbiased (MAD ~0.3) and still cheap.
# (Older PyAV without these flags: its default conversion.)
try:
    _DECODE_FLAGS = Interpolation.BILINEAR | Interpolation.ACCURATE_RND | Interpolation.FULL_CHR_H_INT
    _ENCODE_FLAGS = Interpolation.BICUBIC | Interpolation.ACCURATE_RND | Interpolation.FULL_CHR_H_INP
except AttributeError:  # pragma: no cover - depends on the PyAV version
    _DECODE_FLAGS = _ENCODE_FLAGS = None


def _frame_to_rgb(frame) -> np.ndarray:
    arr = frame.to_ndarray(format="rgb24", interpolation=_DECODE_FLAGS)
    try:
        rotation = frame.rotation or 0
    except Exception:  # side data that PyAV cannot parse: show the frame as stored
        rotation = 0
    k = int(round(rotation / 90.0)) % 4
    if k:
        arr = np.ascontiguousarray(np.rot90(arr, k))
    return arr


def _iter_container(path: Path) -> Iterator[np.ndarray]:
    container = _open_container(path)
    try:
        stream = _video_stream(container, path)
        stream.thread_type = "AUTO"  # frame and slice threads
        expected = stream.frames or None
        decoder = container.decode(stream)
        count = 0
        error: BaseException | None = None
        while True:
            try:
                frame = next(decoder)
            except StopIteration:
                break
            except av.FFmpegError as exc:
                error = exc
                break
            count += 1
            yield _frame_to_rgb(frame)
        if count == 0:
            why = f": {_av_reason(error)}" if error is not None else ""
            raise _truncated(path, f"no decodable video frames{why}")
        # A little slack: edit lists and decoder delay may legitimately drop a frame or two.
        if error is not None or (expected is not None and count < expected - 2):
            of = f" of {expected}" if expected else ""
            why = f" ({_av_reason(error)})" if error is not None else ""
            warnings.warn(
                f"{path}: read {count}{of} frames, the rest did not decode{why}; the file seems "
                "truncated or corrupt, re-export or re-download it to use all frames",
                UserWarning,
                stacklevel=3,
            )
    finally:
        container.close()


def _probe_container(path: Path) -> VideoInfo:
    container = _open_container(path)
    try:
        stream = _video_stream(container, path)
        fps = _stream_fps(stream)
        num_frames = stream.frames or None
        has_audio = len(container.streams.audio) > 0
        try:  # decode one frame: validates the file and gives the displayed size
            first = next(container.decode(stream))
        except StopIteration:
            if num_frames or _shorter_than_header(path):  # the header promised frames
                raise _truncated(path, "no decodable video frames") from None
            raise FommError(f"{path} contains no video frames; pass a video with at least one frame") from None
        except av.FFmpegError as exc:
            raise _truncated(path, f"cannot decode its first frame: {_av_reason(exc)}") from None
        height, width = _frame_to_rgb(first).shape[:2]
    finally:
        container.close()
    return VideoInfo(path=path, fps=fps, num_frames=num_frames, width=width, height=height, has_audio=has_audio)


# --------------------------------------------------------------------------------------------
# GIF (Pillow)


def _open_gif(path: Path) -> Image.Image:
    try:
        return Image.open(path)
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise FommError(f"cannot read {path} as a GIF ({exc}); re-export or re-download it") from None


def _iter_gif(path: Path) -> Iterator[np.ndarray]:
    im = _open_gif(path)
    count = 0
    try:
        frames = ImageSequence.Iterator(im)
        while True:
            try:
                frame = next(frames)
                arr = np.asarray(frame.convert("RGBA"))
            except StopIteration:
                break
            except (OSError, ValueError, EOFError) as exc:
                if count == 0:
                    raise FommError(f"cannot decode {path} ({exc}); re-export or re-download it") from None
                warnings.warn(
                    f"{path}: read {count} frames, the rest did not decode ({exc}); the file seems "
                    "truncated or corrupt, re-export or re-download it to use all frames",
                    UserWarning,
                    stacklevel=3,
                )
                break
            count += 1
            yield to_rgb_uint8(arr)
    finally:
        im.close()
    if count == 0:
        raise FommError(f"{path} contains no frames; pass a GIF with at least one frame")


def _probe_gif(path: Path) -> VideoInfo:
    im = _open_gif(path)
    try:
        width, height = im.size
        durations = []
        count = 0
        try:
            for frame in ImageSequence.Iterator(im):
                count += 1
                durations.append(float(frame.info.get("duration") or 0.0))
        except (OSError, ValueError, EOFError):
            pass
    finally:
        im.close()
    if count == 0:
        raise FommError(f"{path} contains no frames; pass a GIF with at least one frame")
    positive = [d for d in durations if d > 0]
    fps = 1000.0 * len(positive) / sum(positive) if positive else GIF_DEFAULT_FPS
    return VideoInfo(path=path, fps=fps, num_frames=count, width=width, height=height, has_audio=False)


# --------------------------------------------------------------------------------------------
# Generic reading


def probe(
    path: str | os.PathLike,
    frame_shape: Sequence[int] | None = None,
    *,
    as_strip: bool | None = None,
) -> VideoInfo:
    """Describe a source (see the module doc) without decoding it all.

    ``frame_shape`` only matters for image strips (it sets the frame width, see the strip rule);
    the reported width/height are the frames' own size, before any resizing.
    """
    shape = normalize_frame_shape(frame_shape)
    p, kind = _source_kind(path)
    if kind == "container":
        return _probe_container(p)
    if kind == "gif":
        return _probe_gif(p)
    if kind == "folder":
        files = list_frame_files(p)
        if not files:
            raise FommError(
                f"folder {p} contains no image frames; put the frames there as .png/.jpg files or pass a video file"
            )
        w, h = _image_size(files[0])
        return VideoInfo(path=p, fps=DEFAULT_FPS, num_frames=len(files), width=w, height=h, has_audio=False)
    w, h = _image_size(p)
    count, frame_w = _strip_layout(p, w, h, shape, as_strip)
    return VideoInfo(path=p, fps=DEFAULT_FPS, num_frames=count, width=frame_w, height=h, has_audio=False)


def _iter_raw(p: Path, kind: str, shape, as_strip) -> Iterator[np.ndarray]:
    """Frames at their own size (RGB uint8), before size normalisation."""
    if kind == "container":
        yield from _iter_container(p)
    elif kind == "gif":
        yield from _iter_gif(p)
    elif kind == "folder":
        files = list_frame_files(p)
        if not files:
            raise FommError(
                f"folder {p} contains no image frames; put the frames there as .png/.jpg files or pass a video file"
            )
        for f in files:
            yield to_rgb_uint8(_decode_image(f), f"frame {f}")
    else:
        img = to_rgb_uint8(_decode_image(p), f"image {p}")
        count, frame_w = _strip_layout(p, img.shape[1], img.shape[0], shape, as_strip)
        if count == 1:
            yield img
        else:
            for i in range(count):
                yield np.ascontiguousarray(img[:, i * frame_w : (i + 1) * frame_w])


def iter_frames(
    path: str | os.PathLike,
    frame_shape: Sequence[int] | None = None,
    *,
    as_strip: bool | None = None,
) -> Iterator[np.ndarray]:
    """Yield the frames of a source one at a time as uint8 ``(H, W, 3)`` RGB.

    Never holds the whole video in memory (except an image strip, which is one image).
    ``frame_shape=(H, W)`` (or ``(H, W, 3)``) resizes every frame (a plain resize that does not
    keep the aspect ratio: crop first to keep it). Without it, a frame whose size
    differs from the first one is resized to the first one's size (warned once).
    """
    shape = normalize_frame_shape(frame_shape)
    p, kind = _source_kind(path)
    first: tuple[int, int] | None = None
    for frame in _iter_raw(p, kind, shape, as_strip):
        if shape is not None:
            frame = resize_frame(frame, shape)
        elif first is None:
            first = frame.shape[:2]
        elif frame.shape[:2] != first:
            warn_once(
                f"size-change:{p}",
                f"{p}: frames have different sizes ({frame.shape[1]}x{frame.shape[0]} after "
                f"{first[1]}x{first[0]}); they were resized to the first frame's size",
            )
            frame = resize_frame(frame, first)
        yield frame


def _parse_dtype(dtype) -> str:
    try:
        name = np.dtype(dtype).name
    except TypeError:
        name = repr(dtype)
    if name not in ("uint8", "float32"):
        raise FommError(f"dtype {dtype!r} is not supported; use 'uint8' or 'float32'")
    return name


def read_frames(
    path: str | os.PathLike,
    frame_shape: Sequence[int] | None = None,
    dtype="uint8",
    *,
    as_strip: bool | None = None,
) -> tuple[np.ndarray, float]:
    """Read all frames: ``(frames (T, H, W, 3), fps)``; uint8, or float32 in [0, 1]."""
    kind = _parse_dtype(dtype)
    shape = normalize_frame_shape(frame_shape)
    info = probe(path, shape, as_strip=as_strip)
    h, w = shape if shape is not None else (info.height, info.width)
    # Fill a preallocated array when the frame count is known (no list + stack copy).
    video = np.empty((info.num_frames or 0, h, w, 3), dtype=np.dtype(kind))
    extra = []
    count = 0
    for frame in iter_frames(path, shape, as_strip=as_strip):
        if frame.shape[:2] != (h, w):
            frame = resize_frame(frame, (h, w))
        if count < len(video):
            video[count] = to_float01(frame) if kind == "float32" else frame
        else:
            extra.append(to_float01(frame) if kind == "float32" else frame)
        count += 1
    if extra:
        video = np.concatenate([video, np.stack(extra)])
    elif count < len(video):
        video = video[:count].copy()
    return video, info.fps


def read_frames_at(
    path: str | os.PathLike,
    indices: Sequence[int],
    frame_shape: Sequence[int] | None = None,
    *,
    as_strip: bool | None = None,
) -> np.ndarray:
    """Read only the frames at ``indices`` (in that order, repeats allowed) as uint8 ``(K, H, W, 3)``.

    A frame folder decodes only those files; a video decodes up to the last index and stops.
    """
    shape = normalize_frame_shape(frame_shape)
    idx = [int(i) for i in indices]
    if not idx:
        raise FommError("no frame indices given; pass at least one index")
    if min(idx) < 0:
        raise FommError(f"frame index {min(idx)} is negative; pass indices counted from 0")
    p, kind = _source_kind(path)
    if kind == "folder":
        files = list_frame_files(p)
        if max(idx) >= len(files):
            raise FommError(
                f"{p} has {len(files)} frames; frame index {max(idx)} is out of range, pass indices below {len(files)}"
            )
        frames = {i: to_rgb_uint8(_decode_image(files[i]), f"frame {files[i]}") for i in set(idx)}
    else:
        wanted = set(idx)
        last = max(idx)
        frames = {}
        count = 0
        source = _iter_raw(p, kind, shape, as_strip)
        try:
            for i, frame in enumerate(source):
                count = i + 1
                if i in wanted:
                    frames[i] = frame
                if i >= last:
                    break
        finally:
            source.close()
        if last >= count:
            raise FommError(f"{p} has {count} frames; frame index {last} is out of range, pass indices below {count}")
    target = shape if shape is not None else frames[idx[0]].shape[:2]
    out = [resize_frame(frames[i], target) for i in idx]
    return np.stack(out)


# --------------------------------------------------------------------------------------------
# Writing


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


def _umask() -> int:
    """The process umask, read without changing it (Linux); 0o022 elsewhere."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    return 0o022


def _make_public(path: Path, folder: bool = False) -> None:
    """Give a temporary output the permissions a normally created file would have.

    ``tempfile`` creates files 0600 and folders 0700; outputs should follow the umask instead.
    """
    with contextlib.suppress(OSError):
        os.chmod(path, (0o777 if folder else 0o666) & ~_umask())


def _check_output_folder(p: Path) -> None:
    if not p.exists():
        return
    if not p.is_dir():
        raise FommError(f"{p} exists and is not a folder; choose another output path")
    others = [e.name for e in os.scandir(p) if not _FRAME_NAME.fullmatch(e.name)]
    if others:
        raise FommError(f"output folder {p} already holds other files (e.g. {others[0]}); choose a new or empty folder")


class _AudioTrack:
    """Copies (or re-encodes to AAC) the first audio stream of a file into an output container."""

    def __init__(self, source: Path, output, container_format: str):
        self.active = False
        self._done = False
        self._pending = None
        self._input = _open_container(source)
        if not self._input.streams.audio:
            logger.info("%s has no audio stream; the output has no audio", source)
            self._input.close()
            return
        self._in_stream = self._input.streams.audio[0]
        codec = self._in_stream.codec_context.name
        self._copy = codec in _AUDIO_COPY_OK[container_format]
        try:
            if self._copy:
                if hasattr(output, "add_stream_from_template"):
                    self._out_stream = output.add_stream_from_template(self._in_stream)
                else:  # pragma: no cover - PyAV < 13
                    self._out_stream = output.add_stream(template=self._in_stream)
            else:
                rate = self._in_stream.codec_context.sample_rate or 48000
                self._out_stream = output.add_stream("aac", rate=rate)
                layout = self._in_stream.codec_context.layout
                if layout is not None and layout.nb_channels in (1, 2):
                    self._out_stream.codec_context.layout = layout.name
        except (av.FFmpegError, ValueError) as exc:
            self._input.close()
            raise FommError(
                f"cannot use the audio of {source} ({_av_reason(exc)}); convert it to AAC or omit audio_from"
            ) from None
        self._packets = self._input.demux(self._in_stream)
        self._output = output
        self._limit = float("inf")
        self.active = True

    def _next_packet(self):
        try:
            return next(self._packets)
        except StopIteration:
            return None
        except av.FFmpegError as exc:
            warnings.warn(f"audio ends early, the rest did not decode ({_av_reason(exc)})", UserWarning, stacklevel=4)
            return None

    def _emit(self, packet) -> None:
        if self._copy:
            if packet.dts is None or packet.size == 0:
                return
            packet.stream = self._out_stream
            self._output.mux(packet)
            return
        for frame in self._in_stream.codec_context.decode(packet):
            if frame.time is not None and frame.time >= self._limit:
                continue
            frame.pts = None
            for out_packet in self._out_stream.encode(frame):
                self._output.mux(out_packet)

    def pump(self, until: float) -> None:
        """Mux the audio packets that start before ``until`` seconds."""
        self._limit = until
        while self.active and not self._done:
            packet = self._pending if self._pending is not None else self._next_packet()
            self._pending = None
            if packet is None:
                self._done = True
                break
            stamp = packet.pts if packet.pts is not None else packet.dts
            if stamp is not None and packet.time_base is not None:
                if float(stamp * packet.time_base) >= until:
                    self._pending = packet
                    return
            self._emit(packet)

    def finish(self, duration: float) -> None:
        if not self.active:
            return
        self.pump(duration)
        self._done = True
        if not self._copy:
            for out_packet in self._out_stream.encode(None):
                self._output.mux(out_packet)
        self.close()

    def close(self) -> None:
        if self.active:
            self.active = False
            with contextlib.suppress(Exception):
                self._input.close()


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
                _open_container(audio_path).close()  # fail now, not at the first frame
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
        self._audio: _AudioTrack | None = None
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
                _make_public(self._tmp)
        except OSError as exc:
            self._closed = True
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
                f"cannot start writing {self.path} ({_av_reason(exc)}); check the path and free disk space"
            ) from None
        if self._audio_from is not None:
            self._audio = _AudioTrack(self._audio_from, self._output, fmt)

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
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            frame = frame.reformat(format="yuv420p", interpolation=_ENCODE_FLAGS)
            self._mux(self._stream.encode(frame))
        except av.FFmpegError as exc:
            raise FommError(f"writing {self.path} failed ({_av_reason(exc)}); check free disk space") from None

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
                    raise FommError(
                        f"finishing {self.path} failed ({_av_reason(exc)}); check free disk space"
                    ) from None
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
