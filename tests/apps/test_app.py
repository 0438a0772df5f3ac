"""``fomm app``: the request handler, its errors, the command line, and the page in a real browser.

Inputs are made here: a 64x64 source PNG and an 8-frame 64x64 driving clip; the model is the
bundled face-64 (the default), so nothing is downloaded. The browser test drives Debian's headless Chromium
with the system chromedriver on a server this test starts on 127.0.0.1, and checks that the page
requested nothing from anywhere else and shows its place in the queue while another user's
request runs.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import struct
import sys
import threading
import urllib.parse
import urllib.request
import zlib
from pathlib import Path

import numpy as np
import pytest

from fomm.apps import animator as animator_module
from fomm.apps import app
from fomm.apps.app import BUNDLED_CHOICE, Animator, Options, parse_best_frame
from fomm.cli import main
from fomm.data import video_io
from fomm.errors import FommError

FRAMES, FPS, SIZE = 8, 10, 64
CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
LOCAL_HOSTS = {"127.0.0.1", "localhost"}


def frame(i: int) -> np.ndarray:
    """A yellow disc moving right over a dark gradient."""
    yy, xx = np.mgrid[:SIZE, :SIZE]
    img = np.stack([20 + xx, 20 + yy, np.full_like(xx, 60)], -1).astype(np.uint8)
    disc = (xx - 20 - 3 * i) ** 2 + (yy - 32) ** 2 < 12**2
    img[disc] = (230, 190, 60)
    return img


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("app-inputs")
    source = video_io.write_image(folder / "source.png", frame(0))
    driving = video_io.write_video(folder / "driving.mp4", [frame(i) for i in range(FRAMES)], FPS)
    return Path(source), Path(driving)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# ------------------------------------------------------------------------------------------------
# The request handler
# ------------------------------------------------------------------------------------------------
def test_parse_best_frame():
    assert parse_best_frame("first frame", 5) is None
    assert parse_best_frame("auto", None) == "auto"
    assert parse_best_frame("frame number", 3.0) == 3
    for bad in (-1, 2.5, None):
        with pytest.raises(FommError, match="whole number >= 0"):
            parse_best_frame("frame number", bad)


def test_options_from_the_page():
    values = dict(crop=True, paste_back=False, color_match=True, relative=False, adapt=False, side=True)
    values.update(best_mode="frame number", best_index=4.0, precision="fast", keypoints=True, driving_fit="pad")
    assert app.options_from(values) == Options(
        crop=True,
        paste_back=False,
        color_match=False,  # "match colours when pasting back": nothing is pasted back
        relative=False,
        adapt_movement_scale=False,
        best_frame=4,
        precision="fast",
        layout="side-by-side",
        show_keypoints=True,
        driving_fit="pad",
    )


def test_one_line_messages():
    assert app.one_line(FommError("bad\nthing; fix it")) == "bad thing; fix it"
    text = app.one_line(ValueError("boom\n  more"))
    assert text.startswith("unexpected error (ValueError): boom more") and "\n" not in text


def test_summary_line_says_one_frame():
    stats = dict(frames=1, size=(64, 64), fps=25.0, frames_per_second=3.0)
    assert animator_module.summary_line(stats, []) == "1 frame, 64x64, 25 fps; 3.0 frames/s"


def test_model_menu_and_resolution(tmp_path):
    from fomm.bundled import bundled_checkpoint_path

    choices = app.checkpoint_choices()
    assert choices[:2] == [
        ("bundled: face-64 (no download)", BUNDLED_CHOICE),  # the default of fomm demo, first
        ("bundled: puppet-64 (no download)", "bundled:puppet"),
    ]
    assert len({value for _, value in choices}) == len(choices)
    assert app.resolve_checkpoint(BUNDLED_CHOICE, None) == bundled_checkpoint_path("face")
    assert app.resolve_checkpoint("bundled:puppet", None) == bundled_checkpoint_path("puppet")
    with pytest.raises(FommError, match="no bundled model for category 'cat'"):
        app.resolve_checkpoint("bundled:cat", None)
    upload = tmp_path / "mine.pth"
    assert app.resolve_checkpoint(BUNDLED_CHOICE, str(upload)) == upload  # an upload wins
    with pytest.raises(FommError, match="unknown model 'nope'"):
        app.resolve_checkpoint("nope", None)


@pytest.mark.slow
def test_animator_writes_the_result_reports_progress_and_reuses_the_model(inputs, tmp_path):
    source, driving = inputs
    animator = Animator(device="cpu", workdir=tmp_path)
    calls = []
    out, text = animator.animate(str(source), str(driving), Options(), progress=lambda *a: calls.append(a))
    frames, fps = video_io.read_frames(out)
    assert frames.shape == (FRAMES, SIZE, SIZE, 3) and fps == pytest.approx(FPS)
    assert out.suffix == ".mp4" and text.startswith(f"{FRAMES} frames, {SIZE}x{SIZE}, {FPS} fps")
    assert calls and calls[-1][0] == FRAMES  # fomm.animation.pipeline reports progress through the callback
    model = next(iter(animator.models.models.values()))
    options = Options(layout="side-by-side", best_frame=2, precision="fast")
    side, text = animator.animate(str(source), str(driving), options)
    info = video_io.probe(side)  # three panels (enlarged and labelled by fomm.animation.pipeline)
    assert info.num_frames == FRAMES and info.width % 3 == 0 and info.width >= 3 * SIZE
    assert "motion from frame 2" in text
    assert list(animator.models.models.values()) == [model]  # loaded once, shared by both precisions
    other = tmp_path / "copy.pth"
    shutil.copy(app.resolve_checkpoint(BUNDLED_CHOICE, None), other)
    assert animator.models.get(other) is not model and len(animator.models.models) == 2  # by file


@pytest.mark.slow
def test_crop_pastes_back_into_the_photo(tmp_path):
    """A real face (scikit-image's astronaut) through the app with crop: the result has the photo's size."""
    import cv2

    face_clips = pytest.importorskip("face_clips")
    photo = cv2.resize(face_clips.astronaut(), (250, 250), interpolation=cv2.INTER_AREA)
    source = video_io.write_image(tmp_path / "astronaut.png", photo)
    driving = video_io.write_video(tmp_path / "face.mp4", face_clips.moving_clip(4)[0], FPS)
    out, text = Animator(device="cpu", workdir=tmp_path / "work").animate(source, driving, Options(crop=True))
    info = video_io.probe(out)
    assert (info.width, info.height, info.num_frames) == (250, 250, 4)
    assert "pasted back into the photo" in text
    assert "face found by dlib landmarks" in text or "face found by OpenCV Haar cascade" in text


@pytest.mark.slow
def test_animator_errors_are_one_line_and_leave_nothing(inputs, tmp_path, monkeypatch):
    source, driving = inputs
    released = []
    monkeypatch.setattr(animator_module, "release_memory", lambda: released.append(1) or True)
    animator = Animator(device="cpu", workdir=tmp_path / "work")
    with pytest.raises(FommError, match="no source photo"):
        animator.animate(None, str(driving), Options())
    with pytest.raises(FommError, match="no driving video"):
        animator.animate(str(source), None, Options())
    cases = [
        ({"uploaded": str(source)}, Options()),  # a PNG uploaded as the checkpoint
        ({}, Options(best_frame=99)),  # a frame past the end
    ]
    for kwargs, options in cases:
        with pytest.raises(FommError) as info:
            animator.animate(str(source), str(driving), options, **kwargs)
        assert "\n" not in str(info.value) and app.one_line(info.value) == str(info.value)
    assert list((tmp_path / "work").rglob("*")) == []
    assert len(released) == 1  # the job that reached the pipeline gave its memory back, failed or not
    animator.animate(str(source), str(driving), Options())
    assert len(released) == 2


def bomb_png(path: Path, width: int = 20000, height: int = 10000) -> Path:
    """A 1-bit black PNG of ``width`` x ``height`` (200 megapixels: over Pillow's decompression-bomb
    error at 179) in about 25 KB, written with zlib: no decoder is asked to make it."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    row = b"\x00" * (1 + (width + 7) // 8)  # filter byte + the bits of one row
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)  # 1 bit, grey
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(row * height, 9))
        + chunk(b"IEND", b"")
    )
    return path


@pytest.mark.slow
def test_uploads_reach_fomm_s_decoder_and_a_decompression_bomb_gets_its_one_line(inputs, tmp_path, monkeypatch):
    """Through Gradio's own request processing (uploads moved into its cache and checked, then
    the app's handler): the photo reaches fomm's decoder unopened, so a decompression bomb gets
    fomm's one line in the error box (before, Gradio opened it with Pillow first and failed with
    DecompressionBombError); a good photo is animated as before."""
    import asyncio

    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path / "gradio"))  # where Gradio keeps uploads
    uploads = tmp_path / "gradio" / "upload"
    uploads.mkdir(parents=True)
    source, driving = (Path(shutil.copy(path, uploads)) for path in inputs)
    bomb = bomb_png(uploads / "bomb.png")
    blocks = app.build_app(Animator(device="cpu", workdir=tmp_path / "work"))
    fn = next(f for f in blocks.fns.values() if f.api_name == "animate")

    def request(photo: Path) -> list:
        values = dict(page_defaults(), source=file_payload(photo), driving=file_payload(driving))
        reply = blocks.process_api(block_fn=fn, inputs=[values[n] for n in app.INPUT_NAMES], state=None)
        return asyncio.run(reply)["data"]

    result, status, error = request(source)
    assert status.startswith(f"{FRAMES} frames, {SIZE}x{SIZE}") and not error["visible"]
    assert video_io.probe(result["path"]).num_frames == FRAMES
    result, status, error = request(bomb)
    assert result is None and status == ""
    assert error["visible"] and error["value"] == (
        f"image {bomb.name} is 20000x10000 pixels (200 megapixels), over the limit of 100 megapixels; shrink it "
        "(e.g. to 4096 pixels on its longer side), or if you trust the file raise the limit: "
        "FOMM_MAX_IMAGE_PIXELS=200000000"
    )


def page_defaults() -> dict:
    """The page's values, by input name, before the user changes anything (no files)."""
    values = dict(source=None, driving=None, choice=BUNDLED_CHOICE, uploaded=None, crop=False, paste_back=True)
    values.update(color_match=False, side=False, keypoints=False, driving_fit="crop", relative=True, adapt=True)
    values.update(precision="exact", best_mode="first frame", best_index=0, avd=False)
    return values


def test_messages_name_uploads_by_the_user_s_file_name():
    values = [dict(page_defaults(), source=file_payload(Path("/cache/ab12/me.png")))[n] for n in app.INPUT_NAMES]
    names = app.upload_names(values)
    assert names == {"/cache/ab12/me.png": "me.png"}
    assert app.user_words("image /cache/ab12/me.png is corrupt", names) == "image me.png is corrupt"


def file_payload(path: Path) -> dict:
    """An uploaded file as the page sends it to the server."""
    return {"path": str(path), "orig_name": path.name, "meta": {"_type": "gradio.FileData"}}


def test_concurrent_requests_get_their_own_notes_and_leave_warnings_working(inputs, tmp_path, monkeypatch):
    """Two requests at once (threads), each inside the other's: each page gets its own notes, and
    afterwards a warning elsewhere in the process still reaches the console's showwarning (with
    warnings.catch_warnings per request, both notes went to one request and the request that
    ended last left its catcher installed for good). A repeated fomm warning is a note again."""
    import warnings

    import fomm.animation.pipeline

    shown = []
    monkeypatch.setattr(warnings, "showwarning", lambda message, *a, **k: shown.append(str(message)))
    first_in, both_in, first_done = threading.Event(), threading.Barrier(2, timeout=60), threading.Event()

    def fake_pipeline(source, driving, out, **kwargs):
        name = Path(source).stem
        if name == "first":
            first_in.set()
        both_in.wait()  # both requests are collecting now, the first having begun first
        warnings.warn(f"note of {name}", UserWarning, stacklevel=1)
        if name == "second":
            first_done.wait(60)  # the first request ends while this one still runs
            warnings.warn(f"late note of {name}", UserWarning, stacklevel=1)
        return dict(out=out, frames=2, size=(64, 64), fps=25.0, frames_per_second=1.0)

    monkeypatch.setattr(fomm.animation.pipeline, "animate_video", fake_pipeline)
    animator = Animator(device="cpu", workdir=tmp_path / "work")
    texts = {}

    def request(name: str) -> None:
        texts[name] = animator.animate(f"{name}.png", str(inputs[1]), Options())[1]
        if name == "first":
            first_done.set()

    threads = [threading.Thread(target=request, args=(name,)) for name in ("first", "second")]
    threads[0].start()
    assert first_in.wait(60)
    threads[1].start()
    for thread in threads:
        thread.join(60)
    assert texts["first"].splitlines()[1:] == ["note: note of first"]
    assert texts["second"].splitlines()[1:] == ["note: note of second", "note: late note of second"]
    warnings.warn("a warning outside any request", UserWarning, stacklevel=1)
    assert shown == ["a warning outside any request"]
    monkeypatch.setattr(fomm.animation.pipeline, "animate_video", warns_from_fomm)
    for _ in range(2):  # the same fomm warning, from the same line, in two requests: a note in each
        text = animator.animate("third.png", str(inputs[1]), Options())[1]
        assert text.splitlines()[1].startswith("note: the photo is 8x8, far smaller than the model's 64x64")


def test_every_request_gets_the_notes_that_apply_to_it(inputs, tmp_path, monkeypatch):
    """A note fomm gives once per process (warn_once: a gray photo made RGB) and the notes of
    loading a model (loaded once, by the first request) reach every request, not only the first;
    outside a request (the command line) the one-time note is still given once."""
    import warnings

    import fomm.animation.pipeline
    import fomm.models.checkpoint
    from fomm.data import image_ops

    gray = "grayscale image was converted to RGB by replicating its channel"
    loads = []

    def fake_load(path, **kwargs):
        loads.append(path)
        warnings.warn("model.pth looks like a taichi-256 checkpoint", UserWarning, stacklevel=1)
        return object()

    def gray_pipeline(source, driving, out, **kwargs):
        image_ops.to_rgb_uint8(np.zeros((4, 4), np.uint8))
        return dict(out=out, frames=2, size=(64, 64), fps=25.0, frames_per_second=1.0)

    image_ops.reset_warn_once()
    monkeypatch.setattr(fomm.models.checkpoint, "load_model", fake_load)
    monkeypatch.setattr(fomm.animation.pipeline, "animate_video", gray_pipeline)
    upload = tmp_path / "model.pth"
    upload.write_bytes(b"weights")
    animator = Animator(device="cpu", workdir=tmp_path / "work")
    for _ in range(2):
        text = animator.animate("a.png", str(inputs[1]), Options(), uploaded=str(upload))[1]
        assert text.splitlines()[1:] == ["note: model.pth looks like a taichi-256 checkpoint", f"note: {gray}"]
    assert len(loads) == 1
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(2):
            image_ops.to_rgb_uint8(np.zeros((4, 4), np.uint8))
    assert [str(w.message) for w in caught] == [gray]
    image_ops.reset_warn_once()


def warns_from_fomm(source, driving, out, **kwargs):
    """A pipeline that only warns, from fomm's code, that its source is small."""
    from fomm.animation.sources import source_notes

    source_notes((8, 8), (64, 64), "the photo")
    return dict(out=out, frames=2, size=(64, 64), fps=25.0, frames_per_second=1.0)


# ------------------------------------------------------------------------------------------------
# Command line
# ------------------------------------------------------------------------------------------------
def test_cli_help_and_no_share(capsys):
    with pytest.raises(SystemExit) as info:
        main(["app", "--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert "fomm app --port 8080" in out and "--share" not in out
    with pytest.raises(SystemExit) as info:
        main(["app", "--share"])
    assert info.value.code == 2


def test_without_gradio_says_what_to_install(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "gradio", None)  # import gradio -> ImportError
    with pytest.raises(FommError, match=r"pip install 'fomm\[app\]'"):
        app.build_app(Animator(device="cpu", workdir=tmp_path))


def test_cli_port_in_use_is_one_line(capsys):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert main(["app", "--port", str(port)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"fomm app: error: cannot serve on 127.0.0.1:{port}") and "\n" not in err


@pytest.mark.slow
def test_cli_serves_the_page_and_prints_the_url(monkeypatch, capsys):
    port = free_port()
    pages = []

    def fetch_then_stop():  # stands in for the wait loop: read the page, then "Ctrl-C"
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=30) as response:
            pages.append(response.read().decode())
        raise KeyboardInterrupt

    monkeypatch.setattr(app, "wait_forever", fetch_then_stop)
    assert main(["app", "--port", str(port), "--device", "cpu"]) == 0
    captured = capsys.readouterr()
    assert f"fomm app: serving on http://127.0.0.1:{port}/" in captured.out
    assert "stopped" in captured.err
    assert "fomm: animate a photo" in pages[0] and "googleapis" not in pages[0]
    assert os.environ["GRADIO_ANALYTICS_ENABLED"] == "False"
    with pytest.raises(OSError):  # the server is gone
        urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5)


def test_cli_prints_the_loading_notes_of_the_given_checkpoint(monkeypatch, capsys, tmp_path):
    """``fomm app --checkpoint``: loaded before serving; its notes on the console as well as on
    every request's page (:class:`ModelCache` keeps them)."""
    import warnings

    import fomm.models.checkpoint

    def fake_load(path, **kwargs):
        warnings.warn("model.pth looks like a taichi-256 checkpoint", UserWarning, stacklevel=1)
        return object()

    def stop():
        raise KeyboardInterrupt

    monkeypatch.setattr(fomm.models.checkpoint, "load_model", fake_load)
    monkeypatch.setattr(app, "wait_forever", stop)
    (tmp_path / "model.pth").write_bytes(b"weights")
    argv = ["app", "--port", str(free_port()), "--device", "cpu", "--checkpoint", str(tmp_path / "model.pth")]
    assert main(argv) == 0
    assert "fomm: warning: model.pth looks like a taichi-256 checkpoint\n" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------------
# The page, in a real headless Chromium
# ------------------------------------------------------------------------------------------------
def chrome(tmp_path: Path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--no-first-run",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'chrome-profile'}",
        "--window-size=1400,1100",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    return webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)


def requested_urls(driver) -> list[str]:
    """Every URL the page asked for: the network log (all requests, failed ones too) and the
    page's resource timing entries."""
    urls = [e["name"] for e in driver.execute_script("return performance.getEntriesByType('resource')")]
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            urls.append(message["params"]["request"]["url"])
        elif message["method"] == "Network.webSocketCreated":
            urls.append(message["params"]["url"])
    return urls


def leaving_machine(urls: list[str]) -> list[str]:
    """The URLs that go over the network to anything but this machine."""
    web = [u for u in urls if urllib.parse.urlsplit(u).scheme in ("http", "https", "ws", "wss")]
    return [u for u in web if urllib.parse.urlsplit(u).hostname not in LOCAL_HOSTS]


def hold_first_request(animator: Animator, monkeypatch) -> tuple[threading.Event, threading.Event]:
    """Make ``animator``'s next request wait (at most a minute) until ``release`` is set;
    ``started`` is set when it begins."""
    started, release = threading.Event(), threading.Event()
    animate = animator.animate

    def held(*args, **kwargs):
        if not started.is_set():
            started.set()
            release.wait(60)
        return animate(*args, **kwargs)

    monkeypatch.setattr(animator, "animate", held)
    return started, release


def other_user(url: str, tmp_path: Path):
    from gradio_client import Client

    return Client(url, verbose=False, download_files=str(tmp_path / "other-user"))


def api_values(source: Path, driving: Path) -> list:
    """The ``/animate`` API's inputs (app.INPUT_NAMES) for the defaults of the page."""
    from gradio_client import handle_file

    values = dict(page_defaults(), source=handle_file(str(source)), driving=handle_file(str(driving)))
    return [values[name] for name in app.INPUT_NAMES]


@pytest.mark.skipif(
    not (os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)),
    reason=f"needs Debian's chromium and chromium-driver ({CHROMIUM}, {CHROMEDRIVER}); .ci/run installs them",
)
@pytest.mark.slow
def test_browser_end_to_end(inputs, tmp_path, monkeypatch):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    monkeypatch.setenv("SE_OFFLINE", "true")  # Selenium Manager: never look for a driver online
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path / "gradio"))  # uploads and results stay in tmp_path
    source, driving = inputs
    blocks, url, animator = app.launch(
        "127.0.0.1", free_port(), device="cpu", workdir=tmp_path / "work", max_upload="100KB"
    )
    noise = np.random.default_rng(0).integers(0, 256, (256, 256, 3), dtype=np.uint8)
    too_big = Path(video_io.write_image(tmp_path / "too-big.png", noise))  # about 200 KB: over the cap
    driver = chrome(tmp_path)
    try:
        driver.get(url)
        wait = WebDriverWait(driver, 120)
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#run"))
        # no inputs: the error box shows the one-line message
        driver.find_element(By.CSS_SELECTOR, "#run").click()
        box = wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#error textarea"))[0]
        wait.until(lambda d: box.get_attribute("value"))
        assert box.get_attribute("value") == "no source photo; upload the photo to animate"
        # a file over --max-upload: refused with one line, nothing uploaded
        driver.find_element(By.CSS_SELECTOR, "#source input[type=file]").send_keys(str(too_big))
        wait.until(lambda d: "exceed the maximum allowed size" in d.find_element(By.TAG_NAME, "body").text)
        line = next(t for t in driver.find_element(By.TAG_NAME, "body").text.splitlines() if "exceed" in t)
        assert line == 'File(s) exceed the maximum allowed size of 97.7 Kb: "too-big.png"'
        assert not driver.find_elements(By.CSS_SELECTOR, "#source img")
        # upload both inputs, animate, wait for the result video
        driver.find_element(By.CSS_SELECTOR, "#source input[type=file]").send_keys(str(source))
        driver.find_element(By.CSS_SELECTOR, "#driving input[type=file]").send_keys(str(driving))
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#source img, #driving video"))
        wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#source img, #driving video")) == 2)
        # another user's request is running: this page waits, shown its place in the queue
        started, release = hold_first_request(animator, monkeypatch)
        other = other_user(url, tmp_path).submit(*api_values(source, driving), api_name="/animate")
        assert started.wait(60)
        driver.find_element(By.CSS_SELECTOR, "#run").click()
        wait.until(lambda d: "queue: 1/1" in d.find_element(By.CSS_SELECTOR, "#result").text)
        release.set()
        assert other.result(timeout=60)[0]
        video = wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#result video[src]"))[0]
        assert not driver.find_elements(By.CSS_SELECTOR, "#error textarea")  # hidden again
        status = driver.find_element(By.CSS_SELECTOR, "#status textarea").get_attribute("value")
        assert status.startswith(f"{FRAMES} frames, {SIZE}x{SIZE}")
        result = tmp_path / "downloaded.mp4"
        with urllib.request.urlopen(video.get_attribute("src"), timeout=30) as response:
            result.write_bytes(response.read())
        frames, fps = video_io.read_frames(result)
        assert frames.shape == (FRAMES, SIZE, SIZE, 3) and fps == pytest.approx(FPS)
        urls = requested_urls(driver)
        assert any(u.startswith(url) for u in urls)
        assert leaving_machine(urls) == []
        if os.environ.get("FOMM_APP_SCREENSHOT"):  # for a look at the page: FOMM_APP_SCREENSHOT=/tmp/app.png
            driver.execute_script("window.scrollTo(0, 0)")
            driver.save_screenshot(os.environ["FOMM_APP_SCREENSHOT"])
    finally:
        driver.quit()
        blocks.close()
        animator.close()
    shutil.rmtree(tmp_path / "chrome-profile", ignore_errors=True)


def test_the_page_names_the_default_bundled_model():
    from fomm.bundled import default_category

    intro = " ".join(app.INTRO.split())
    assert f"default model, the bundled {default_category()}-64" in intro
