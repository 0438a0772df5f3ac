"""``fomm app`` serving several users on 127.0.0.1: login, the upload cap, the queue, isolation, memory.

The server runs in this process (``fomm.apps.app.launch``), on 127.0.0.1 only; the clients are
plain HTTP (httpx) and ``gradio_client``. The model is the bundled face-64 and the inputs are
64x64, 6 to 10 frames, so nothing is downloaded and a request takes about a second.
"""

from __future__ import annotations

import gc
import socket
import time
from pathlib import Path

import numpy as np
import pytest

from fomm.apps import app
from fomm.data import video_io

SIZE, FPS = 64, 10
USER = ("alice", "pa55:word")
COLOURS = [(230, 40, 40), (40, 230, 40), (40, 40, 230)]  # one per user: red, green, blue photos


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def rss_mb() -> float:
    """This process's resident memory (the server runs in it), MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    pytest.skip("no /proc/self/status on this system")


@pytest.fixture
def server(tmp_path, monkeypatch):
    """A server with one user and a 20 KB upload cap; yields its URL."""
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path / "gradio"))
    blocks, url, animator = app.launch(
        "127.0.0.1", free_port(), device="cpu", workdir=tmp_path / "work", auth=[USER], max_upload="20KB"
    )
    try:
        yield url, animator
    finally:
        blocks.close()
        animator.close()


@pytest.mark.slow
def test_login_is_required_and_uploads_are_capped(server):
    import httpx

    url, _ = server
    small, large = b"x" * 1000, b"x" * 30_000
    with httpx.Client(base_url=url, timeout=30) as client:
        assert client.get("/config").status_code == 401
        refused = client.post("/gradio_api/upload", files={"files": ("a.png", small)})
        assert refused.status_code == 401  # the API too, not only the page
        assert client.post("/login", data={"username": "alice", "password": "wrong"}).status_code == 400
        assert client.post("/login", data={"username": USER[0], "password": USER[1]}).status_code == 200
        assert client.get("/config").status_code == 200
        ok = client.post("/gradio_api/upload", files={"files": ("a.png", small)})
        assert ok.status_code == 200 and Path(ok.json()[0]).read_bytes() == small
        too_big = client.post("/gradio_api/upload", files={"files": ("b.png", large)})
        assert too_big.status_code == 413
        assert too_big.text == "File size exceeded maximum allowed size of 20000 bytes."  # one line
        served = f"/gradio_api/file={ok.json()[0]}"
        assert client.get(served).content == small
    with httpx.Client(base_url=url, timeout=30) as stranger:  # files too need the login, even by name
        assert stranger.get(served).status_code == 401


def inputs_for(folder: Path, user: int) -> tuple[Path, Path]:
    """User ``user``'s inputs: a photo all in their colour, a driving clip of 6 + 2 * user frames."""
    yy, xx = np.mgrid[:SIZE, :SIZE]
    frames = []
    for i in range(6 + 2 * user):
        img = np.stack([20 + xx, 20 + yy, np.full_like(xx, 60)], -1).astype(np.uint8)
        img[(xx - 20 - 3 * i) ** 2 + (yy - 32) ** 2 < 12**2] = 200
        frames.append(img)
    source = video_io.write_image(folder / f"photo-{user}.png", np.full((SIZE, SIZE, 3), COLOURS[user], np.uint8))
    return Path(source), Path(video_io.write_video(folder / f"driving-{user}.mp4", frames, FPS))


def submit(client, source: Path, driving: Path):
    """The page's Animate button, through the ``/animate`` API (values in app.INPUT_NAMES order)."""
    from gradio_client import handle_file

    values = dict(
        source=handle_file(str(source)),
        driving=handle_file(str(driving)),
        choice=app.BUNDLED_CHOICE,
        uploaded=None,
        crop=False,
        paste_back=True,
        color_match=False,
        side=False,
        keypoints=False,
        driving_fit="crop",
        relative=True,
        adapt=True,
        precision="exact",
        best_mode="first frame",
        best_index=0,
        avd=False,
    )
    return client.submit(*(values[name] for name in app.INPUT_NAMES), api_name="/animate")


def watch(jobs: list, seconds: float) -> list[set]:
    """Poll each job's status until all are done (at most ``seconds``); the (code, rank, queue
    size) each one reported."""
    seen: list[set] = [set() for _ in jobs]
    deadline = time.monotonic() + seconds
    while not all(job.done() for job in jobs) and time.monotonic() < deadline:
        for job, statuses in zip(jobs, seen):
            status = job.status()
            statuses.add((status.code.name, status.rank, status.queue_size))
        time.sleep(0.02)
    assert all(job.done() for job in jobs), f"the queue did not drain in {seconds} s"
    return seen


@pytest.mark.slow
def test_three_users_at_once_get_their_own_results_in_turn(server, tmp_path):
    from gradio_client import Client

    url, animator = server
    users = [inputs_for(tmp_path, user) for user in range(3)]
    clients = [Client(url, auth=USER, verbose=False, download_files=str(tmp_path / f"user-{i}")) for i in range(3)]
    submit(clients[0], *users[0]).result(timeout=120)  # loads the model: memory is measured from here
    gc.collect()
    start = rss_mb()
    for _ in range(2):  # two rounds: memory must not grow with each
        jobs = [submit(client, *inputs) for client, inputs in zip(clients, users)]
        seen = watch(jobs, seconds=180)
        # one runs, the others wait, each told its place: someone was second of two in the queue
        waiting = [(rank, size) for statuses in seen for code, rank, size in statuses if code == "IN_QUEUE"]
        assert (1, 2) in waiting or (0, 2) in waiting, seen
        results = [job.result(timeout=10) for job in jobs]
        for user, (video, details, error) in enumerate(results):
            assert error["visible"] is False, error
            frames, fps = video_io.read_frames(video)
            assert frames.shape == (6 + 2 * user, SIZE, SIZE, 3) and fps == pytest.approx(FPS)
            assert details.startswith(f"{6 + 2 * user} frames, {SIZE}x{SIZE}")
            assert int(np.argmax(frames.reshape(-1, 3).mean(0))) == user  # red, green, blue: their photo
            assert Path(video).is_relative_to(tmp_path / f"user-{user}")  # downloaded by that user's client
        assert len({Path(result[0]).parent.name for result in results}) == 3  # three different files on the server
    folders = sorted(p.parent for p in (tmp_path / "work").rglob("*.mp4"))
    assert len(folders) == len(set(folders)) == 7  # one folder per request, never shared
    gc.collect()
    assert rss_mb() - start < 150, (start, rss_mb())  # the queue drained: memory back near its start
