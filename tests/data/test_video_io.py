from __future__ import annotations

import os
import types
import warnings
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from fomm import atomic
from fomm.data import video_io
from fomm.data.image_ops import resize_frame, to_rgb_uint8
from fomm.data.video_io import (
    VideoWriter,
    is_image_path,
    is_video_path,
    iter_frames,
    probe,
    read_frames,
    read_frames_at,
    read_image,
    write_image,
    write_video,
)
from fomm.errors import FommError


def _u8(frames):
    return np.round(np.asarray(frames) * 255).astype(np.uint8)


def _mad(a, b):
    return float(np.mean(np.abs(a.astype(np.float64) - b.astype(np.float64))))


# ------------------------------------------------------------------------------------------
# Round trips


@pytest.mark.parametrize("ext", [".mp4", ".mov", ".mkv"])
def test_container_round_trip(tmp_path, clips, ext):
    frames = clips.smooth(10, 48, 64)
    path = write_video(tmp_path / f"v{ext}", frames, fps=25)
    assert path.exists()
    video, fps = read_frames(path)
    assert video.shape == (10, 48, 64, 3) and video.dtype == np.uint8
    assert fps == pytest.approx(25.0)
    assert _mad(video, _u8(frames)) < 3.0
    info = probe(path)
    assert (info.width, info.height, info.has_audio) == (64, 48, False)
    assert info.num_frames == (None if ext == ".mkv" else 10)  # Matroska has no frame count
    assert info.fps == pytest.approx(25.0)


def test_mp4_keeps_ntsc_and_fractional_fps(tmp_path, clips):
    frames = clips.smooth(6, 32, 32)
    write_video(tmp_path / "ntsc.mp4", frames, fps=30000 / 1001)
    write_video(tmp_path / "slow.mp4", frames, fps=12.5)
    assert probe(tmp_path / "ntsc.mp4").fps == pytest.approx(29.97003, abs=1e-4)
    assert read_frames(tmp_path / "slow.mp4")[1] == pytest.approx(12.5)


def test_read_frames_float32(tmp_path, clips):
    frames = clips.smooth(4, 32, 32)
    write_video(tmp_path / "v.mp4", frames, fps=25)
    video, _ = read_frames(tmp_path / "v.mp4", dtype="float32")
    assert video.dtype == np.float32 and 0.0 <= video.min() and video.max() <= 1.0
    assert float(np.abs(video - frames).mean()) < 3 / 255
    with pytest.raises(FommError, match="dtype"):
        read_frames(tmp_path / "v.mp4", dtype="int16")


def test_gif_round_trip_keeps_fps(tmp_path, clips):
    frames = clips.smooth(8, 32, 40)
    path = write_video(tmp_path / "a.gif", frames, fps=25)
    video, fps = read_frames(path)
    assert video.shape == (8, 32, 40, 3)
    assert fps == pytest.approx(25.0)
    assert _mad(video, _u8(frames)) < 4.0  # 256-colour palette per frame
    assert probe(path).num_frames == 8


def test_png_strip_round_trip_exact(tmp_path, clips):
    frames = _u8(clips.smooth(5, 32, 32))
    path = write_video(tmp_path / "strip.png", frames, fps=25)
    img = cv2.imread(str(path))
    assert img.shape == (32, 160, 3)
    video, fps = read_frames(path)  # square frames: width / height = 5 frames
    np.testing.assert_array_equal(video, frames)
    assert fps == video_io.DEFAULT_FPS
    assert probe(path).num_frames == 5


def test_png_strip_non_square_frames_use_frame_shape(tmp_path, clips):
    frames = _u8(clips.smooth(3, 32, 48))
    path = write_video(tmp_path / "strip.png", frames, fps=25)
    video, _ = read_frames(path, frame_shape=(32, 48))
    np.testing.assert_array_equal(video, frames)
    # without frame_shape the 144x32 strip is split into square frames: 144 / 32 is not whole
    assert read_frames(path)[0].shape == (1, 32, 144, 3)
    # frame_shape with another size but the same aspect: split by aspect, then resized
    assert read_frames(path, frame_shape=(16, 24))[0].shape == (3, 16, 24, 3)


def test_frame_folder_round_trip_exact(tmp_path, clips):
    frames = _u8(clips.smooth(4, 32, 32))
    out = write_video(str(tmp_path / "frames") + "/", frames, fps=10)
    assert sorted(os.listdir(out)) == [f"{i:07d}.png" for i in range(4)]
    video, fps = read_frames(out)
    np.testing.assert_array_equal(video, frames)
    # overwriting a previous frame folder replaces it
    write_video(out, frames[:2], fps=10)
    assert len(os.listdir(out)) == 2
    # but a folder holding other files is refused
    (out / "notes.txt").write_text("mine")
    with pytest.raises(FommError, match="other files"):
        write_video(out, frames, fps=10)
    assert (out / "notes.txt").exists()


def test_frame_folder_natural_order_and_ignores_other_files(tmp_path):
    folder = tmp_path / "clip"
    folder.mkdir()
    for i in (1, 2, 10):  # plain sorting would put 10 before 2
        cv2.imwrite(str(folder / f"f{i}.png"), np.full((8, 8, 3), i * 20, np.uint8))
    (folder / "meta.json").write_text("{}")
    (folder / ".hidden.png").write_bytes(b"junk")
    video, _ = read_frames(folder)
    assert [int(f[0, 0, 0]) for f in video] == [20, 40, 200]


def test_single_image_and_strip_detection(tmp_path):
    rng = np.random.default_rng(1)
    photo = rng.integers(0, 256, (30, 40, 3), dtype=np.uint8)
    write_image(tmp_path / "photo.png", photo)
    np.testing.assert_array_equal(read_image(tmp_path / "photo.png"), photo)
    assert read_frames(tmp_path / "photo.png")[0].shape == (1, 30, 40, 3)

    wide = rng.integers(0, 256, (20, 60, 3), dtype=np.uint8)  # 3 x 20 = 60: a strip
    write_image(tmp_path / "wide.png", wide)
    assert read_image(tmp_path / "wide.png").shape == (20, 60, 3)  # read_image never splits
    video, _ = read_frames(tmp_path / "wide.png")
    assert video.shape == (3, 20, 20, 3)
    np.testing.assert_array_equal(video[1], wide[:, 20:40])
    assert read_frames(tmp_path / "wide.png", as_strip=False)[0].shape == (1, 20, 60, 3)
    with pytest.raises(FommError, match="not a strip"):
        read_frames(tmp_path / "photo.png", as_strip=True)
    assert read_image(tmp_path / "photo.png", frame_shape=(15, 20)).shape == (15, 20, 3)


def test_jpeg_round_trip(tmp_path, clips):
    img = _u8(clips.smooth(1, 32, 32))[0]
    write_image(tmp_path / "a.jpg", img)
    assert _mad(read_image(tmp_path / "a.jpg"), img) < 3.0


def test_iter_frames_streams(tmp_path, clips, monkeypatch):
    path = write_video(tmp_path / "v.mp4", clips.smooth(30, 32, 32), fps=25)
    calls = []
    original = video_io.containers._frame_to_rgb
    monkeypatch.setattr(video_io.containers, "_frame_to_rgb", lambda f: calls.append(1) or original(f))
    it = iter_frames(path)
    assert isinstance(it, types.GeneratorType)
    first = next(it)
    assert first.shape == (32, 32, 3) and first.dtype == np.uint8
    assert len(calls) == 1  # one frame converted, not the whole video
    it.close()
    resized = list(iter_frames(path, frame_shape=(16, 24, 3)))
    assert len(resized) == 30 and resized[0].shape == (16, 24, 3)


def test_read_frames_at(tmp_path):
    frames = np.stack([np.full((16, 16, 3), 10 * i, np.uint8) for i in range(8)])
    folder = write_video(tmp_path / "frames", frames, fps=25)
    mp4 = write_video(tmp_path / "v.mp4", frames, fps=25)
    for src in (folder, mp4):
        got = read_frames_at(src, [5, 1, 5])
        assert got.shape == (3, 16, 16, 3)
        assert [round(float(g.mean()) / 10) for g in got] == [5, 1, 5]
        with pytest.raises(FommError, match="out of range"):
            read_frames_at(src, [8])


@pytest.mark.skipif(
    not hasattr(av.video.stream.VideoStream, "set_display_rotation"), reason="PyAV too old to write rotation"
)
def test_rotation_metadata_is_applied(tmp_path, clips):
    path = clips.av_video(tmp_path / "rot.mp4", num_frames=3, size=(32, 48), audio_codec=None, rotation=-90)
    info = probe(path)
    assert (info.width, info.height) == (32, 48)
    frame = next(iter_frames(path))
    assert frame.shape == (48, 32, 3)
    # stored: red grows to the right; rotated 90 degrees clockwise it grows downwards
    assert frame[-1, :, 0].mean() > frame[0, :, 0].mean() + 100


# ------------------------------------------------------------------------------------------
# Odd sizes and conversions


def test_odd_size_mp4_is_padded_to_even(tmp_path, clips):
    frames = _u8(clips.smooth(5, 31, 47))
    with pytest.warns(UserWarning, match="padded to 48x32"):
        write_video(tmp_path / "odd.mp4", frames, fps=25)
    video, _ = read_frames(tmp_path / "odd.mp4")
    assert video.shape == (5, 32, 48, 3)
    assert _mad(video[:, :31, :47], frames) < 3.0
    assert _mad(video[:, 31, :47], frames[:, 30]) < 4.0  # the padding repeats the last row


def test_odd_size_png_and_folder_are_exact(tmp_path, clips):
    frames = _u8(clips.smooth(2, 31, 47))
    write_video(tmp_path / "f", frames, fps=25)
    np.testing.assert_array_equal(read_frames(tmp_path / "f")[0], frames)


def test_to_rgb_uint8_conversions():
    gray = np.arange(12, dtype=np.uint8).reshape(3, 4)
    with pytest.warns(UserWarning, match="grayscale"):
        out = to_rgb_uint8(gray)
    assert out.shape == (3, 4, 3) and (out[..., 2] == gray).all()
    assert to_rgb_uint8(gray[..., None]).shape == (3, 4, 3)
    np.testing.assert_array_equal(to_rgb_uint8(np.ones((2, 2, 3), bool))[0, 0], [255, 255, 255])
    np.testing.assert_array_equal(to_rgb_uint8(np.full((2, 2, 3), 0.5, np.float32))[0, 0], [128, 128, 128])
    with pytest.warns(UserWarning, match="16-bit"):
        np.testing.assert_array_equal(to_rgb_uint8(np.full((2, 2, 3), 65535, np.uint16))[0, 0], [255] * 3)
    rgba = np.zeros((2, 2, 4), np.uint8)
    rgba[..., 0] = 200
    rgba[0, 0, 3] = 255  # opaque red pixel, the others transparent
    with pytest.warns(UserWarning, match="white"):
        out = to_rgb_uint8(rgba)
    np.testing.assert_array_equal(out[0, 0], [200, 0, 0])
    np.testing.assert_array_equal(out[1, 1], [255, 255, 255])
    opaque = rgba.copy()
    opaque[..., 3] = 255
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_array_equal(to_rgb_uint8(opaque), opaque[..., :3])  # silently dropped
    assert to_rgb_uint8(np.full((2, 2, 3), 7, np.int64)).dtype == np.uint8


@pytest.mark.parametrize(
    "array, message",
    [
        (np.full((4, 4, 3), 200.0), "divide by 255"),
        (np.full((4, 4, 3), np.nan), "NaN"),
        (np.full((4, 4, 3), 300, np.int32), "outside"),
        (np.zeros((3, 8, 8), np.uint8), "transpose"),
        (np.zeros((0, 4, 3), np.uint8), "empty"),
    ],
)
def test_to_rgb_uint8_rejects(array, message):
    with pytest.raises(FommError, match=message):
        to_rgb_uint8(array)


def test_resize_frame():
    img = np.zeros((8, 8, 3), np.uint8)
    img[:, 4:] = 200
    small = resize_frame(img, (4, 4))
    assert small.dtype == np.uint8 and small.shape == (4, 4, 3)
    assert small[:, :2].max() == 0 and small[:, 2:].min() == 200  # area averaging
    big = resize_frame(img.astype(np.float32) / 255, (16, 12))
    assert big.dtype == np.float32 and big.shape == (16, 12, 3) and big.max() <= 200 / 255 + 1e-6
    assert resize_frame(np.ones((4, 4), bool), (8, 8)).dtype == np.bool_
    assert resize_frame(np.zeros((4, 4, 1), np.uint16), (2, 2)).shape == (2, 2, 1)
    assert resize_frame(img, (8, 8)) is img


def test_image_files_gray_16bit_alpha(tmp_path):
    gray = np.arange(64, dtype=np.uint8).reshape(8, 8) * 4
    cv2.imwrite(str(tmp_path / "gray.png"), gray)
    with pytest.warns(UserWarning, match="grayscale"):
        out = read_image(tmp_path / "gray.png")
    assert out.shape == (8, 8, 3) and (out[..., 1] == gray).all()

    deep = (np.arange(64, dtype=np.uint16).reshape(8, 8) * 1000)[..., None].repeat(3, 2)
    cv2.imwrite(str(tmp_path / "deep.png"), deep)
    with pytest.warns(UserWarning, match="16-bit"):
        out = read_image(tmp_path / "deep.png")
    assert out.dtype == np.uint8
    np.testing.assert_array_equal(out[..., 0], np.round(deep[..., 0] / 257).astype(np.uint8))

    bgra = np.zeros((8, 8, 4), np.uint8)
    bgra[..., 2] = 255  # red
    bgra[:4, :, 3] = 255  # top half opaque, bottom half transparent
    cv2.imwrite(str(tmp_path / "alpha.png"), bgra)
    with pytest.warns(UserWarning, match="white"):
        out = read_image(tmp_path / "alpha.png")
    np.testing.assert_array_equal(out[0, 0], [255, 0, 0])
    np.testing.assert_array_equal(out[7, 0], [255, 255, 255])
    # the same rules for frame folders
    folder = tmp_path / "folder"
    folder.mkdir()
    cv2.imwrite(str(folder / "0.png"), bgra)
    cv2.imwrite(str(folder / "1.png"), bgra)
    assert read_frames(folder)[0].shape == (2, 8, 8, 3)


def test_path_helpers(tmp_path):
    assert is_video_path("a.MP4") and is_video_path("a.gif") and is_video_path(tmp_path)
    assert not is_video_path("a.png") and is_image_path("a.JPG") and not is_image_path("a.mp4")


# ------------------------------------------------------------------------------------------
# Audio


def _decoded_audio(path):
    with av.open(str(path)) as c:
        if not c.streams.audio:
            return None, None, None
        stream = c.streams.audio[0]
        codec = stream.codec_context.name
        rate = stream.codec_context.sample_rate
        samples = np.concatenate([f.to_ndarray()[0] for f in c.decode(stream)])
    return codec, rate, samples


@pytest.mark.parametrize("source_name, codec", [("src.mp4", "aac"), ("src.mov", "pcm_s16le")])
def test_audio_is_copied_and_trimmed(tmp_path, clips, source_name, codec):
    src = clips.av_video(tmp_path / source_name, num_frames=10, audio_codec=codec, audio_seconds=2.0)
    assert probe(src).has_audio
    frames, fps = read_frames(src)
    out = write_video(tmp_path / "out.mp4", frames, fps=fps, audio_from=src)  # 10 frames = 0.4 s
    info = probe(out)
    assert info.has_audio and info.num_frames == 10
    out_codec, rate, samples = _decoded_audio(out)
    assert out_codec == "aac"  # copied (aac) or re-encoded (pcm) to AAC
    assert abs(len(samples) / rate - 0.4) < 0.1  # cut at the end of the video, not 2 s
    spectrum = np.abs(np.fft.rfft(samples))
    assert abs(np.argmax(spectrum) * rate / len(samples) - 440.0) < 5.0


def test_audio_stream_copy_keeps_packets(tmp_path, clips):
    src = clips.av_video(tmp_path / "src.mp4", num_frames=25, audio_codec="aac")
    write_video(tmp_path / "out.mp4", read_frames(src)[0], fps=25, audio_from=src)
    with av.open(str(src)) as a, av.open(str(tmp_path / "out.mp4")) as b:
        first_in = [bytes(p) for p in a.demux(a.streams.audio[0]) if p.size][:5]
        first_out = [bytes(p) for p in b.demux(b.streams.audio[0]) if p.size][:5]
    assert first_in == first_out  # a stream copy, not a re-encode


def test_audio_from_without_audio_gives_silent_video(tmp_path, clips):
    src = clips.av_video(tmp_path / "mute.mp4", num_frames=5, audio_codec=None)
    out = write_video(tmp_path / "out.mp4", read_frames(src)[0], fps=25, audio_from=src)
    assert not probe(out).has_audio
    with pytest.raises(FommError, match="does not exist"):
        write_video(tmp_path / "out2.mp4", read_frames(src)[0], fps=25, audio_from=tmp_path / "none.mp4")
    assert not (tmp_path / "out2.mp4").exists()


# ------------------------------------------------------------------------------------------
# Atomic writes


@pytest.mark.parametrize("name", ["v.mp4", "v.gif", "v.png", "frames"])
@pytest.mark.parametrize("error", [RuntimeError, KeyboardInterrupt])
def test_failure_mid_write_leaves_nothing(tmp_path, clips, name, error):
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    frames = clips.smooth(6, 32, 32)
    with pytest.raises(error):
        with VideoWriter(out_dir / name, fps=25) as writer:
            for i, frame in enumerate(frames):
                if i == 3:
                    raise error("boom")
                writer.write(frame)
    assert os.listdir(out_dir) == []


def test_failing_frame_source_leaves_nothing(tmp_path, clips):
    def frames():
        yield from clips.smooth(3, 32, 32)
        raise ValueError("decoder died")

    with pytest.raises(ValueError):
        write_video(tmp_path / "v.mp4", frames(), fps=25, audio_from=None)
    assert os.listdir(tmp_path) == []


def test_write_errors(tmp_path, clips):
    frames = clips.smooth(2, 32, 32)
    with pytest.raises(FommError, match="no frames"):
        write_video(tmp_path / "empty.mp4", [], fps=25)
    with pytest.raises(FommError, match="first frame"):
        write_video(tmp_path / "sizes.mp4", [frames[0], frames[1][:16]], fps=25)
    with pytest.raises(FommError, match="frame rate"):
        write_video(tmp_path / "fps.mp4", frames, fps=0)
    with pytest.raises(FommError, match="unsupported extension"):
        write_video(tmp_path / "v.avi", frames, fps=25)
    with pytest.raises(FommError, match="image extension"):
        write_image(tmp_path / "x.mp4", frames[0])
    assert os.listdir(tmp_path) == []


_KILLED_FOLDER_WRITER = """
import os, signal, sys
import numpy as np
from fomm.data.video_io import VideoWriter
writer = VideoWriter(sys.argv[1], fps=25)
writer.write(np.zeros((8, 8, 3), np.uint8))
print(os.getpid(), writer._tmp, flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""


@pytest.mark.skipif(os.name != "posix", reason="SIGKILL")
def test_killed_folder_write_is_removed_by_the_next_write(tmp_path):
    import subprocess
    import sys

    proc = subprocess.run(
        [sys.executable, "-c", _KILLED_FOLDER_WRITER, str(tmp_path / "frames")], capture_output=True, text=True
    )
    assert proc.returncode == -9
    pid, folder = proc.stdout.split()
    left = list(tmp_path.iterdir())
    assert (
        left == [Path(folder)]
        and left[0].is_dir()
        and left[0].name.startswith(f".frames.fomm-{atomic.HOST_MARK}-{pid}-")
    )
    out = write_video(tmp_path / "other", [np.zeros((8, 8, 3), np.uint8)], fps=25)  # a folder output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other"] and len(os.listdir(out)) == 1


def test_folder_output_replaces_an_old_one_and_follows_umask(tmp_path):
    old = os.umask(0o022)
    try:
        write_video(tmp_path / "frames", [np.zeros((8, 8, 3), np.uint8)] * 3, fps=25)
        out = write_video(tmp_path / "frames", [np.full((8, 8, 3), 9, np.uint8)] * 2, fps=25)
    finally:
        os.umask(old)
    assert sorted(os.listdir(out)) == ["0000000.png", "0000001.png"] and os.listdir(tmp_path) == ["frames"]
    assert out.stat().st_mode & 0o777 == 0o755


def test_outputs_follow_umask(tmp_path, clips):
    old = os.umask(0o022)
    try:
        path = write_video(tmp_path / "v.mp4", clips.smooth(2, 32, 32), fps=25)
        img = write_image(tmp_path / "a.png", np.zeros((4, 4, 3), np.uint8))
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o644
    assert img.stat().st_mode & 0o777 == 0o644


# ------------------------------------------------------------------------------------------
# Bad input


def test_missing_and_unsupported(tmp_path):
    with pytest.raises(FommError, match="does not exist"):
        read_frames(tmp_path / "nope.mp4")
    (tmp_path / "notes.txt").write_text("hi")
    with pytest.raises(FommError, match="unsupported file type"):
        probe(tmp_path / "notes.txt")
    with pytest.raises(FommError, match="not an image"):
        read_image(tmp_path)


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("text.mp4", b"this is not a video at all", "not a video"),
        ("empty.mp4", b"", "empty file"),
        ("bad.png", b"\x89PNG\r\n\x1a\n garbage", "cannot decode image"),
        ("bad.gif", b"GIF89a nonsense", "GIF"),
    ],
)
def test_not_a_video(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(FommError, match=message):
        read_frames(path)


def test_audio_only_and_zero_frames(tmp_path, clips):
    audio_only = clips.av_video(tmp_path / "audio.mp4", video=False)
    with pytest.raises(FommError, match="has no video stream, only audio; pass a file that contains video"):
        probe(audio_only)
    for ext in (".mp4", ".mkv"):  # a video stream without frames: the demuxers drop or reject it
        empty = clips.av_video(tmp_path / f"zero{ext}", num_frames=0, audio_codec=None)
        with pytest.raises(FommError, match="no video stream|not a video"):
            read_frames(empty)
    folder = tmp_path / "empty_folder"
    folder.mkdir()
    with pytest.raises(FommError, match="no image frames"):
        read_frames(folder)


def test_truncated_mp4_reads_what_decodes(tmp_path):
    rng = np.random.default_rng(0)
    noisy = rng.integers(0, 256, (30, 32, 32, 3), dtype=np.uint8)  # big frames: cut in the middle
    path = write_video(tmp_path / "full.mp4", noisy, fps=25, crf=10)  # +faststart: index first
    data = path.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) * 6 // 10])
    with pytest.warns(UserWarning, match=r"read \d+ of 30 frames"):
        video, _ = read_frames(cut)
    assert 5 <= len(video) < 30


def test_truncated_mp4_without_index_is_an_error(tmp_path, clips):
    path = clips.av_video(tmp_path / "plain.mp4", num_frames=20, audio_codec=None)  # index at the end
    data = path.read_bytes()
    (tmp_path / "cut.mp4").write_bytes(data[: len(data) // 2])
    with pytest.raises(FommError, match="truncated"):
        read_frames(tmp_path / "cut.mp4")


@pytest.mark.parametrize("keep", [100, 200, 1000])
def test_truncated_mp4_says_truncated_not_audio_only(tmp_path, keep):
    noisy = np.random.default_rng(0).integers(0, 256, (10, 32, 32, 3), dtype=np.uint8)
    data = write_video(tmp_path / "ok.mp4", noisy, fps=25).read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[:keep])
    for read in (probe, read_frames):
        with pytest.raises(FommError, match=r"cut.mp4 is truncated or corrupt \(.*\); re-export or re-download it$"):
            read(cut)
    assert not video_io.containers._shorter_than_header(tmp_path / "ok.mp4")
    assert video_io.containers._shorter_than_header(cut)


def test_shorter_than_header(tmp_path, clips):
    plain = clips.av_video(tmp_path / "plain.mp4", num_frames=4, audio_codec=None)  # index at the end
    data = plain.read_bytes()
    (tmp_path / "cut.mp4").write_bytes(data[: len(data) - 10])
    (tmp_path / "extra.mp4").write_bytes(data + b"\0\0\0")  # junk after the last box
    (tmp_path / "text.mp4").write_bytes(b"not a video")
    assert not video_io.containers._shorter_than_header(plain)
    assert video_io.containers._shorter_than_header(tmp_path / "cut.mp4")
    assert video_io.containers._shorter_than_header(tmp_path / "extra.mp4")
    assert not video_io.containers._shorter_than_header(tmp_path / "text.mp4")  # not MP4: not judged here


def test_corrupt_video_data(tmp_path):
    noisy = np.random.default_rng(0).integers(0, 256, (10, 32, 32, 3), dtype=np.uint8)
    data = bytearray(write_video(tmp_path / "ok.mp4", noisy, fps=25).read_bytes())
    start = data.find(b"mdat") + 4
    data[start:] = bytes(len(data) - start)  # the index is intact, the frames are zeros
    (tmp_path / "zeroed.mp4").write_bytes(bytes(data))
    with pytest.raises(FommError, match="corrupt"):
        read_frames(tmp_path / "zeroed.mp4")


# --------------------------------------------------------------------------------------------
# The image pixel limit (decompression bombs are refused by their header)
# --------------------------------------------------------------------------------------------
def test_a_decompression_bomb_is_refused_by_every_reader_before_decoding(bomb_png, tmp_path):
    assert bomb_png.stat().st_size < 300_000  # 1.6 gigapixels on disk in about 200 KB
    readers = [
        video_io.decode_image,
        read_image,
        probe,
        read_frames,
        lambda p: next(iter_frames(p)),
        lambda p: read_frames_at(p, [0]),
    ]
    for reader in readers:
        with pytest.raises(FommError) as exc:
            reader(bomb_png)
        message = str(exc.value)
        assert "40000x40000 pixels (1600 megapixels)" in message and "limit of 100 megapixels" in message
        assert "FOMM_MAX_IMAGE_PIXELS=1600000000" in message and "\n" not in message
    folder = tmp_path / "frames"  # a frame folder (datasets, driving frames) goes through the same decoder
    folder.mkdir()
    (folder / "0000.png").write_bytes(bomb_png.read_bytes())
    with pytest.raises(FommError, match="40000x40000 pixels"):
        read_frames(folder)


def test_the_pixel_limit_can_be_changed_by_argument_and_environment(tmp_path, monkeypatch):
    img = np.zeros((48, 64, 3), np.uint8)
    path = write_image(tmp_path / "small.png", img)
    assert video_io.max_image_pixels() == video_io.DEFAULT_MAX_IMAGE_PIXELS == 100_000_000
    assert read_image(path, max_pixels=64 * 48).shape == (48, 64, 3)
    with pytest.raises(
        FommError, match=r"64x48 pixels \(0\.003072 megapixels\), over the limit of 0\.003071 megapixels"
    ):
        read_image(path, max_pixels=64 * 48 - 1)
    monkeypatch.setenv("FOMM_MAX_IMAGE_PIXELS", "3000")
    assert video_io.max_image_pixels() == 3000 and video_io.max_image_pixels(5000) == 5000
    for reader in (read_image, probe, read_frames, video_io.decode_image):
        with pytest.raises(FommError, match="64x48 pixels"):
            reader(path)
    assert read_image(path, max_pixels=5000).shape == (48, 64, 3)  # the argument wins over the environment
    for bad in ("lots", "-5", "0"):
        monkeypatch.setenv("FOMM_MAX_IMAGE_PIXELS", bad)
        with pytest.raises(FommError, match="FOMM_MAX_IMAGE_PIXELS=.* is not a positive whole number"):
            read_image(path)
    monkeypatch.delenv("FOMM_MAX_IMAGE_PIXELS")
    with pytest.raises(FommError, match="max_pixels=0 is not a positive"):
        read_image(path, max_pixels=0)


def test_the_limit_covers_jpeg_webp_and_gif_headers(tmp_path, monkeypatch):
    img = np.full((30, 40, 3), 128, np.uint8)
    for name in ("a.jpg", "a.webp", "a.bmp", "a.tif"):
        path = write_image(tmp_path / name, img)
        with pytest.raises(FommError, match="40x30 pixels"):
            read_image(path, max_pixels=1000)
    gif = write_video(tmp_path / "a.gif", [img, img], fps=10)
    monkeypatch.setenv("FOMM_MAX_IMAGE_PIXELS", "1000")
    for reader in (probe, read_frames):
        with pytest.raises(FommError, match="40x30 pixels"):
            reader(gif)


def test_a_file_where_a_folder_should_be_is_named(tmp_path):
    """``--out photo.png/result.mp4``: the message names the file in the way, not 'File exists'."""
    (tmp_path / "photo.png").write_bytes(b"x")
    assert video_io.paths.file_in_the_way(tmp_path / "photo.png" / "sub" / "r.mp4") == tmp_path / "photo.png"
    assert video_io.paths.file_in_the_way(tmp_path / "new" / "r.mp4") is None
    for out in ("r.mp4", "frames/"):
        with pytest.raises(FommError, match=r"photo.png is a file, not a folder; choose another output path"):
            video_io.VideoWriter(str(tmp_path / "photo.png" / out), fps=25)
    assert [p.name for p in tmp_path.iterdir()] == ["photo.png"]
