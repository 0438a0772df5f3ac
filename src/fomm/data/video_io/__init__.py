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

Every image (and GIF) is decoded by :func:`decode_image`, which refuses one over the pixel limit
(100 megapixels by default; ``FOMM_MAX_IMAGE_PIXELS`` or ``max_pixels=`` change it) with one line
naming its size, before decoding it: a few-kilobyte PNG can claim 40,000 x 40,000 pixels.

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

The package's modules, one concern each: :mod:`.paths` (source kinds, frame folders),
:mod:`.images` (the one image decoder and its pixel limit), :mod:`.containers` (PyAV reading),
:mod:`.gif`, :mod:`.reading` (any source), :mod:`.writing` and :mod:`.audio` (outputs).
"""

from __future__ import annotations

from fomm.data.image_ops import resize_frame, to_rgb_uint8
from fomm.data.video_io.images import (
    DEFAULT_MAX_IMAGE_PIXELS,
    MAX_PIXELS_ENV,
    decode_image,
    max_image_pixels,
    read_image,
    write_image,
)
from fomm.data.video_io.paths import (
    CONTAINER_EXTENSIONS,
    DEFAULT_FPS,
    GIF_DEFAULT_FPS,
    GIF_EXTENSIONS,
    IMAGE_EXTENSIONS,
    VIDEO_EXTENSIONS,
    VideoInfo,
    is_image_path,
    is_video_path,
    list_frame_files,
)
from fomm.data.video_io.reading import iter_frames, probe, read_frames, read_frames_at
from fomm.data.video_io.writing import VideoWriter, write_video

__all__ = [
    "CONTAINER_EXTENSIONS",
    "DEFAULT_FPS",
    "DEFAULT_MAX_IMAGE_PIXELS",
    "MAX_PIXELS_ENV",
    "decode_image",
    "max_image_pixels",
    "GIF_DEFAULT_FPS",
    "GIF_EXTENSIONS",
    "IMAGE_EXTENSIONS",
    "VIDEO_EXTENSIONS",
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
