"""Reading GIFs with Pillow, one frame at a time; the frame rate comes from the frame delays."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image, ImageSequence, UnidentifiedImageError
from PIL.Image import DecompressionBombError

from fomm.data.image_ops import to_rgb_uint8
from fomm.data.video_io.images import check_image_pixels, pillow_open, pillow_refused
from fomm.data.video_io.paths import GIF_DEFAULT_FPS, VideoInfo
from fomm.errors import FommError, plural


def _open_gif(path: Path) -> Image.Image:
    """The GIF, opened lazily; refused over the image pixel limit before any frame is decoded."""
    try:
        im = pillow_open(path)
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise FommError(f"cannot read {path} as a GIF ({exc}); re-export or re-download it") from None
    try:
        check_image_pixels(path, *im.size)
    except FommError:
        im.close()
        raise
    return im


def iter_gif(path: Path) -> Iterator[np.ndarray]:
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
            except DecompressionBombError as exc:  # Pillow's own limit, checked again per frame
                raise pillow_refused(path, exc) from None
            except (OSError, ValueError, EOFError) as exc:
                if count == 0:
                    raise FommError(f"cannot decode {path} ({exc}); re-export or re-download it") from None
                warnings.warn(
                    f"{path}: read {plural(count, 'frame')}, the rest did not decode ({exc}); the file seems "
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


def probe_gif(path: Path) -> VideoInfo:
    im = _open_gif(path)
    try:
        width, height = im.size
        durations = []
        count = 0
        try:
            for frame in ImageSequence.Iterator(im):
                count += 1
                durations.append(float(frame.info.get("duration") or 0.0))
        except DecompressionBombError as exc:
            raise pillow_refused(path, exc) from None
        except (OSError, ValueError, EOFError):
            pass
    finally:
        im.close()
    if count == 0:
        raise FommError(f"{path} contains no frames; pass a GIF with at least one frame")
    positive = [d for d in durations if d > 0]
    fps = 1000.0 * len(positive) / sum(positive) if positive else GIF_DEFAULT_FPS
    return VideoInfo(path=path, fps=fps, num_frames=count, width=width, height=height, has_audio=False)
