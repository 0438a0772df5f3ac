"""fomm.data.video_io.images: decoding leaves the program's Pillow and OpenCV settings alone.

Pillow's ``Image.MAX_IMAGE_PIXELS`` and OpenCV's log level are process-wide: a program fomm runs in
(e.g. a Gradio app serving other users in other threads) owns them. Headers that claim a huge size
are made here by patching a tiny file's size fields (a few hundred bytes each).
"""

from __future__ import annotations

import threading
import warnings
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from fomm.data import video_io
from fomm.data.video_io.images import pillow_open
from fomm.errors import FommError

IMG = np.random.default_rng(0).integers(0, 256, (30, 40, 3), dtype=np.uint8)


def claimed_size(path: Path, width: int, height: int) -> Path:
    """``path`` rewritten so that its header claims ``width`` x ``height`` (its pixels unchanged)."""
    data = bytearray(path.read_bytes())
    kind = path.suffix.lower()
    if kind == ".gif":  # the logical screen, little-endian 16-bit
        data[6:10] = width.to_bytes(2, "little") + height.to_bytes(2, "little")
    elif kind == ".bmp":  # BITMAPINFOHEADER, little-endian 32-bit
        data[18:26] = width.to_bytes(4, "little") + height.to_bytes(4, "little")
    else:  # JPEG: the SOF0 segment, big-endian 16-bit height then width
        at = data.index(b"\xff\xc0") + 5
        data[at : at + 4] = height.to_bytes(2, "big") + width.to_bytes(2, "big")
    out = path.with_name(f"bomb{kind}")
    out.write_bytes(bytes(data))
    return out


@pytest.fixture
def observed(monkeypatch):
    """What another thread of the program sees of Pillow's limit and OpenCV's log level while a
    decode is under way: a thread is started and joined inside each Pillow format's opener and
    inside ``cv2.imdecode``, i.e. in the middle of our decode."""
    Image.init()  # every format registered before the openers are wrapped
    seen = []

    def look() -> None:
        seen.append((Image.MAX_IMAGE_PIXELS, cv2.utils.logging.getLogLevel()))

    def during(fn):
        def wrapped(*args, **kwargs):
            other = threading.Thread(target=look)
            other.start()
            other.join()
            return fn(*args, **kwargs)

        return wrapped

    for fmt in ("JPEG", "GIF", "BMP", "PNG"):
        factory, accept = Image.OPEN[fmt]
        monkeypatch.setitem(Image.OPEN, fmt, (during(factory), accept))
    monkeypatch.setattr(cv2, "imdecode", during(cv2.imdecode))
    return seen


def test_decoding_never_changes_pillow_s_limit_or_opencv_s_log_level(tmp_path, observed):
    before = (Image.MAX_IMAGE_PIXELS, cv2.utils.logging.getLogLevel())
    small = {ext: video_io.write_image(tmp_path / f"a{ext}", IMG) for ext in (".jpg", ".bmp", ".png")}
    Image.fromarray(IMG).save(tmp_path / "a.gif")
    small[".gif"] = tmp_path / "a.gif"
    (tmp_path / "cut.png").write_bytes(small[".png"].read_bytes()[:200])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for ext in (".jpg", ".gif", ".bmp"):
            bomb = claimed_size(small[ext], 40000, 40000)
            for reader in (video_io.decode_image, video_io.probe):
                with pytest.raises(FommError) as exc:
                    reader(bomb)
                assert "bomb" in str(exc.value) and "40000x40000 pixels (1600 megapixels)" in str(exc.value)
                assert "over the limit of 100 megapixels" in str(exc.value) and "\n" not in str(exc.value)
            assert video_io.decode_image(small[ext]).shape[:2] == (30, 40)
        assert video_io.read_frames(small[".gif"])[0].shape == (1, 30, 40, 3)
        with pytest.raises(FommError, match="cut.png .*corrupt, truncated"):
            video_io.decode_image(tmp_path / "cut.png")
    assert len(observed) >= 10 and set(observed) == {before}
    assert not [w for w in caught if issubclass(w.category, Image.DecompressionBombWarning)]


def test_the_program_s_own_pillow_limit_is_left_to_it(tmp_path, monkeypatch):
    """A program that lowered Pillow's limit: fomm's limit decides what fomm decodes; where Pillow
    checks its own again while decoding (GIF frames), its refusal is one line naming the setting."""
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 500)  # 40x30 = 1200 pixels: over twice that
    jpg = video_io.write_image(tmp_path / "a.jpg", IMG)
    assert video_io.read_image(jpg).shape == (30, 40, 3)
    with pytest.raises(FommError, match=r"40x30 pixels .* over the limit of 0\.001 megapixels"):
        video_io.read_image(jpg, max_pixels=1000)
    with pillow_open(jpg) as im:
        assert im.size == (40, 30) and Image.MAX_IMAGE_PIXELS == 500
    frames = [IMG, IMG[::-1].copy()]
    gif = video_io.write_video(tmp_path / "b.gif", frames, fps=10)
    for reader in (video_io.probe, video_io.read_frames):
        with pytest.raises(FommError) as exc:
            reader(gif)
        message = str(exc.value)
        assert message.startswith(f"Pillow refuses to decode {gif}") and "PIL.Image.MAX_IMAGE_PIXELS" in message


def test_a_format_whose_header_pillow_refuses_is_one_line(tmp_path):
    """A GIMP brush checks Pillow's own limit while its header is read (before ours can)."""
    import struct

    header = struct.pack(">IIIII", 30, 2, 40000, 40000, 1) + b"GIMP" + struct.pack(">I", 0) + b"b\0"
    path = tmp_path / "brush.png"  # named as an image, as an upload may be
    path.write_bytes(header + bytes(64))
    for reader in (video_io.decode_image, video_io.read_image):
        with pytest.raises(FommError) as exc:
            reader(path)
        assert str(exc.value).startswith(f"Pillow refuses to decode {path} (Image size (1600000000 pixels)")


def test_pillow_open_reads_the_header_of_files_and_bytes_as_image_open_does(tmp_path):
    for ext in (".png", ".jpg", ".bmp", ".webp", ".tif", ".gif", ".ppm"):
        path = tmp_path / f"a{ext}"
        Image.fromarray(IMG).save(path)
        with Image.open(path) as ref, pillow_open(path) as a, pillow_open(path.read_bytes()) as b:
            assert (a.format, a.size, b.format, b.size) == (ref.format, ref.size, ref.format, ref.size)
            assert np.array_equal(np.asarray(b.convert("RGB")), np.asarray(ref.convert("RGB")))
    with pytest.raises(Image.UnidentifiedImageError):
        pillow_open(b"not an image at all")
