"""Images: the one decoder every picture goes through (with its pixel limit), strips, writing.

Every image fomm reads (a source photo, an app upload, many sources, dataset frames, an image as a
driving video, ``fomm crop``'s input) is decoded by :func:`decode_image`. It reads the size from the
file's header first and refuses an image over the pixel limit with one line naming its size and the
fix, before any pixel is decoded: a PNG of a few kilobytes can claim 40,000 x 40,000 pixels (a
"decompression bomb", 4.8 GB once decoded). The limit is :data:`DEFAULT_MAX_IMAGE_PIXELS` (100
megapixels: a 12,000 x 8,000 photo passes), or the environment variable ``FOMM_MAX_IMAGE_PIXELS``,
or the ``max_pixels`` argument of :func:`decode_image` and :func:`~fomm.data.video_io.read_image`.
Decoding changes no process-wide setting (Pillow's ``Image.MAX_IMAGE_PIXELS``, OpenCV's log
level): those belong to the program fomm runs in, whose other threads decode too.
"""

from __future__ import annotations

import io
import os
import struct
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError
from PIL.Image import DecompressionBombError

from fomm.atomic import atomic_path
from fomm.data.image_ops import normalize_frame_shape, resize_frame, to_rgb_uint8
from fomm.data.video_io.paths import IMAGE_EXTENSIONS, make_public, source_kind
from fomm.errors import FommError

#: The largest image decoded, in pixels (width x height), unless changed: 100 megapixels.
DEFAULT_MAX_IMAGE_PIXELS = 100_000_000
#: The environment variable that changes the limit for a whole process (a number of pixels).
MAX_PIXELS_ENV = "FOMM_MAX_IMAGE_PIXELS"

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# The exceptions with which a Pillow plugin says "not my format" (Image.open then tries the next).
_NOT_THIS_FORMAT = (SyntaxError, IndexError, TypeError, struct.error)


def pillow_open(source: Path | bytes, label=None) -> Image.Image:
    """Pillow's lazy open (the header, no pixels) of a file or of encoded bytes, without Pillow's
    own bomb check.

    ``Image.open`` checks the size against ``Image.MAX_IMAGE_PIXELS``, a process-wide setting that
    belongs to the program fomm runs in; switching it off around our opens would leave the
    program's other threads unprotected meanwhile. So this walks Pillow's registered formats as
    ``Image.open`` does, minus that check, and never touches the setting: the caller checks the size
    against fomm's own limit (:func:`check_image_pixels`) before decoding. A few formats check
    Pillow's limit in their header already (GIMP brushes): their refusal is one line (``label``:
    what it calls the image).
    """
    if isinstance(source, bytes):
        prefix, name = source[:16], ""
    else:
        with open(source, "rb") as f:
            prefix, name = f.read(16), str(source)
    Image.preinit()  # the common formats first, then every other, as Image.open tries them
    Image.init()
    for fmt in list(Image.ID):
        factory, accept = Image.OPEN[fmt]
        found = accept(prefix) if accept else True
        if not found or isinstance(found, str):  # a string: "this format, but unsupported"
            continue
        try:  # Pillow opens a path itself, and closes it with the image
            return factory(io.BytesIO(source) if isinstance(source, bytes) else source, name)
        except _NOT_THIS_FORMAT:
            continue
        except DecompressionBombError as exc:
            raise pillow_refused(label or name or "image", exc) from None
    raise UnidentifiedImageError(f"cannot identify image file {name or '(in memory)'}")


def pillow_refused(path, exc: Exception) -> FommError:
    """Pillow's own limit (``Image.MAX_IMAGE_PIXELS``, checked again by some formats while
    decoding: GIF frames, TIFF tiles) refused an image that fomm's limit let through."""
    return FommError(
        f"Pillow refuses to decode {path} ({exc}); this program's PIL.Image.MAX_IMAGE_PIXELS is lower "
        "than fomm's limit: raise it, or shrink the image"
    )


def max_image_pixels(max_pixels: int | None = None) -> int:
    """The pixel limit in force: ``max_pixels`` if given, else ``$FOMM_MAX_IMAGE_PIXELS``, else
    :data:`DEFAULT_MAX_IMAGE_PIXELS`."""
    if max_pixels is None:
        text = os.environ.get(MAX_PIXELS_ENV, "").strip()
        if not text:
            return DEFAULT_MAX_IMAGE_PIXELS
        try:
            max_pixels = int(text.replace("_", ""))
        except ValueError:
            max_pixels = -1
        if max_pixels <= 0:
            raise FommError(
                f"{MAX_PIXELS_ENV}={text!r} is not a positive whole number of pixels; "
                f"set it to e.g. 200000000, or unset it for the default {DEFAULT_MAX_IMAGE_PIXELS}"
            )
    if isinstance(max_pixels, bool) or not isinstance(max_pixels, (int, np.integer)) or max_pixels <= 0:
        raise FommError(f"max_pixels={max_pixels!r} is not a positive whole number of pixels; pass e.g. 200_000_000")
    return int(max_pixels)


def _header_size(data: np.ndarray, path: Path) -> tuple[int, int] | None:
    """``(width, height)`` from an encoded image's header, without decoding pixels; None when the
    header cannot be read (the decoder then reports the file as corrupt)."""
    head = data[:24].tobytes()
    if head[:8] == _PNG_SIGNATURE and head[12:16] == b"IHDR":  # the common case, read directly
        return int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")
    try:
        with pillow_open(data.tobytes(), path) as im:
            return int(im.size[0]), int(im.size[1])
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        return None


def check_image_pixels(path, width: int, height: int, max_pixels: int | None = None) -> None:
    """Refuse an image of ``width`` x ``height`` over the limit (:func:`max_image_pixels`)."""
    limit = max_image_pixels(max_pixels)
    if width * height > limit:
        raise FommError(
            f"image {path} is {width}x{height} pixels ({width * height / 1e6:.4g} megapixels), over the "
            f"limit of {limit / 1e6:.4g} megapixels; shrink it (e.g. to 4096 pixels on its longer side), or "
            f"if you trust the file raise the limit: {MAX_PIXELS_ENV}={width * height}"
        )


def decode_image(path: str | os.PathLike, max_pixels: int | None = None) -> np.ndarray:
    """Decode an image file to an RGB(A)/gray array of its own dtype (no conversion), after
    checking its header size against the pixel limit (module doc)."""
    path = Path(path)
    try:
        data = np.fromfile(str(path), dtype=np.uint8)
    except OSError as exc:
        raise FommError(f"cannot read image {path} ({exc.strerror}); check the path and its permissions") from None
    if data.size == 0:
        raise FommError(f"image {path} is an empty file; re-export or re-download it")
    size = _header_size(data, path)
    if size is not None:
        check_image_pixels(path, *size, max_pixels=max_pixels)
    jpeg = path.suffix.lower() in (".jpg", ".jpeg")
    try:  # IMREAD_COLOR applies the EXIF orientation of JPEGs; UNCHANGED keeps 16 bits and alpha.
        img = cv2.imdecode(data, cv2.IMREAD_COLOR if jpeg else cv2.IMREAD_UNCHANGED)
    except cv2.error:  # e.g. OpenCV's own size limit, for a header Pillow could not read
        img = None
    if img is None:
        return _decode_with_pillow(path, data)
    if img.ndim == 3 and img.shape[2] == 3:
        img = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    elif img.ndim == 3 and img.shape[2] == 4:
        img = cv2.cvtColor(img, cv2.COLOR_BGRA2RGBA)
    return img


def _decode_with_pillow(path: Path, data: np.ndarray) -> np.ndarray:
    """Formats or variants OpenCV does not read (the size was checked by the caller)."""
    try:
        with pillow_open(data.tobytes(), path) as im:
            return np.asarray(im.convert("RGBA") if im.mode in ("P", "PA", "LA", "RGBA") else im.convert("RGB"))
    except DecompressionBombError as exc:
        raise pillow_refused(path, exc) from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        raise FommError(
            f"cannot decode image {path} (corrupt, truncated or not an image); re-export or re-download it"
        ) from None


def image_size(path: Path) -> tuple[int, int]:
    """``(width, height)`` read from the header when possible (refused over the pixel limit)."""
    try:
        with pillow_open(path) as im:
            w, h = im.size
            # EXIF rotation (JPEG) may swap the sides
            if path.suffix.lower() in (".jpg", ".jpeg") and im.getexif().get(0x0112, 1) in (5, 6, 7, 8):
                w, h = h, w
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        img = decode_image(path)
        return img.shape[1], img.shape[0]
    check_image_pixels(path, w, h)
    return int(w), int(h)


def strip_layout(path: Path, width: int, height: int, frame_shape, as_strip) -> tuple[int, int]:
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


def read_image(
    path: str | os.PathLike, frame_shape: Sequence[int] | None = None, *, max_pixels: int | None = None
) -> np.ndarray:
    """Read one image file as uint8 ``(H, W, 3)`` RGB (never split as a strip).

    ``frame_shape=(H, W)`` resizes it. Grayscale, 16-bit and alpha images are converted (see
    :func:`to_rgb_uint8`). An image over ``max_pixels`` (default: :func:`max_image_pixels`) is
    refused before it is decoded.
    """
    shape = normalize_frame_shape(frame_shape)
    p, kind = source_kind(path)
    if kind != "image":
        raise FommError(
            f"{p} is a {'folder' if kind == 'folder' else 'video'}, not an image; pass an image file "
            "(.png .jpg ...) or read it with read_frames"
        )
    img = to_rgb_uint8(decode_image(p, max_pixels), f"image {p}")
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
            make_public(tmp)
            tmp.write_bytes(buf.tobytes())
    except OSError as exc:
        raise FommError(f"cannot write {p} ({exc.strerror or exc}); choose a folder you can write to") from None
    return p
