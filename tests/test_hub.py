"""``fomm models`` / ``fomm download``: end to end against an HTTP server on 127.0.0.1.

The server (http.server in a thread) honours ``Range`` and can cut a response after N bytes.
Checkpoints are tiny random-weight ``tiny-64`` models registered under test names through
``FOMM_MODELS``; nothing touches the internet and no published weights are used.
"""

from __future__ import annotations

import hashlib
import io
import json
import socket
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import torch

from fomm.config import load_preset
from fomm.errors import FommError
from fomm.hub.fetch import download
from fomm.models.first_order_model import FirstOrderModel


class FileServer:
    """Serves ``files`` (path -> bytes) with Range support; ``cut[path] = [n, ...]`` makes the next
    responses for ``path`` stop after n body bytes (one entry used per request); ``requests``
    records ``(path, Range header or None)``."""

    def __init__(self):
        self.files: dict[str, bytes] = {}
        self.cut: dict[str, list[int]] = {}
        self.requests: list[tuple[str, str | None]] = []
        self.ignore_range = False  # answer every GET with the whole file (200), as some servers do
        self.redirects: dict[str, str] = {}  # path -> path answered with a 302, as mirrors do to their CDN
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{path}"

    def _handler(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep the test output quiet
                pass

            def do_GET(self):
                rng = self.headers.get("Range")
                server.requests.append((self.path, rng))
                rng = None if server.ignore_range else rng
                if self.path in server.redirects:
                    self.send_response(302)
                    self.send_header("Location", server.redirects[self.path])
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                body = server.files.get(self.path)
                if body is None:
                    self.send_error(404)
                    return
                start = int(rng.split("=")[1].split("-")[0]) if rng else 0
                if start >= len(body):
                    self.send_response(416)
                    self.send_header("Content-Range", f"bytes */{len(body)}")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(206 if rng else 200)
                if rng:
                    self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
                self.send_header("Content-Length", str(len(body) - start))
                self.end_headers()
                cuts = server.cut.get(self.path)
                stop = start + cuts.pop(0) if cuts else len(body)
                self.wfile.write(body[start:stop])
                self.wfile.flush()
                if stop < len(body):
                    self.close_connection = True

        return Handler

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def checkpoint_bytes(preset: str = "tiny-64", seed: int = 0, **common) -> bytes:
    """An original-format checkpoint (generator + kp_detector state dicts) with random weights."""
    cfg = load_preset(preset)
    for key, value in common.items():
        setattr(cfg.model_params.common_params, key, value)
    torch.manual_seed(seed)
    model = FirstOrderModel(cfg)
    buf = io.BytesIO()
    state = {"generator": model.generator.state_dict(), "kp_detector": model.kp_detector.state_dict(), "epoch": 1}
    torch.save(state, buf)
    return buf.getvalue()


@pytest.fixture(scope="module")
def tiny_ckpt() -> bytes:
    return checkpoint_bytes()


@pytest.fixture
def server():
    srv = FileServer()
    yield srv
    srv.close()


@pytest.fixture
def hub(tmp_path, monkeypatch, server, tiny_ckpt):
    """FOMM_HOME in tmp_path and a registry entry 'tinytest' (preset tiny-64) served by ``server``."""
    server.files["/tiny/tinytest-cpk.pth.tar"] = tiny_ckpt
    models = {
        "tinytest": {
            "preset": "tiny-64",
            "file": "tinytest-cpk.pth.tar",
            "urls": [server.url("/tiny/tinytest-cpk.pth.tar")],
        }
    }
    (tmp_path / "models.json").write_text(json.dumps(models))
    monkeypatch.setenv("FOMM_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("FOMM_MODELS", str(tmp_path / "models.json"))
    return tmp_path / "home" / "checkpoints"


def register(tmp_path: Path, name: str, **entry) -> None:
    path = tmp_path / "models.json"
    data = json.loads(path.read_text())
    data[name] = entry
    path.write_text(json.dumps(data))


def partials(cache: Path) -> list[Path]:
    return sorted((cache / ".partial").glob("*.part"))


def test_interrupted_download_resumes_with_range(hub, server, tiny_ckpt):
    server.cut["/tiny/tinytest-cpk.pth.tar"] = [150_000]
    with pytest.raises(FommError) as err:
        download("tinytest", progress=False, retries=0)
    message = str(err.value)
    assert "\n" not in message and "running the same command resumes" in message
    assert not (hub / "tinytest-cpk.pth.tar").exists()  # never a partial file at the final path
    [part] = partials(hub)
    kept = part.stat().st_size  # whole chunks received before the cut
    assert 0 < kept <= 150_000

    result = download("tinytest", progress=False, retries=0)
    assert server.requests[-1] == ("/tiny/tinytest-cpk.pth.tar", f"bytes={kept}-")
    assert result.path == hub / "tinytest-cpk.pth.tar"
    assert result.path.read_bytes() == tiny_ckpt
    assert result.sha256 == hashlib.sha256(tiny_ckpt).hexdigest() and result.preset == "tiny-64"
    assert partials(hub) == []


def test_resume_through_a_redirect(hub, server, tmp_path, tiny_ckpt):
    server.redirects["/mirror/tinytest-cpk.pth.tar"] = "/tiny/tinytest-cpk.pth.tar"
    server.cut["/tiny/tinytest-cpk.pth.tar"] = [100_000]
    url = server.url("/mirror/tinytest-cpk.pth.tar")
    register(tmp_path, "tinytest", preset="tiny-64", file="tinytest-cpk.pth.tar", urls=[url])
    result = download("tinytest", progress=False, retries=1)
    ranges = [(path, r) for path, r in server.requests]
    assert ranges[2][0] == "/mirror/tinytest-cpk.pth.tar" and ranges[3][0] == "/tiny/tinytest-cpk.pth.tar"
    assert ranges[2][1] == ranges[3][1] and ranges[3][1].startswith("bytes=")  # the Range survives the 302
    assert result.path.read_bytes() == tiny_ckpt


def test_broken_connection_resumes_within_one_call(hub, server, tiny_ckpt):
    server.cut["/tiny/tinytest-cpk.pth.tar"] = [100_000, 100_000]
    result = download("tinytest", progress=False, retries=3)
    ranges = [r for _, r in server.requests]
    assert len(ranges) == 3 and ranges[0] is None
    starts = [int(r.removeprefix("bytes=").rstrip("-")) for r in ranges[1:]]
    assert 0 < starts[0] < starts[1] < len(tiny_ckpt)
    assert result.path.read_bytes() == tiny_ckpt


def partial_path(cache: Path, url: str, file: str) -> Path:
    return cache / ".partial" / f"{hashlib.sha1(url.encode()).hexdigest()[:10]}-{file}.part"


def test_server_ignoring_range_restarts_from_zero(hub, server, tiny_ckpt):
    part = partial_path(hub, server.url("/tiny/tinytest-cpk.pth.tar"), "tinytest-cpk.pth.tar")
    part.parent.mkdir(parents=True)
    part.write_bytes(b"x" * 1000)  # stale bytes that must not stay in front of the file
    server.ignore_range = True
    result = download("tinytest", progress=False)
    assert server.requests == [("/tiny/tinytest-cpk.pth.tar", "bytes=1000-")]
    assert result.path.read_bytes() == tiny_ckpt


def test_whole_partial_file_is_verified_without_refetching(hub, server, tiny_ckpt):
    part = partial_path(hub, server.url("/tiny/tinytest-cpk.pth.tar"), "tinytest-cpk.pth.tar")
    part.parent.mkdir(parents=True)
    part.write_bytes(tiny_ckpt)  # e.g. interrupted while it was being checked
    result = download("tinytest", progress=False)
    assert server.requests == [("/tiny/tinytest-cpk.pth.tar", f"bytes={len(tiny_ckpt)}-")]  # answered 416
    assert result.path.read_bytes() == tiny_ckpt


def test_wrong_hash_is_one_line_and_removes_the_file(hub, server):
    with pytest.raises(FommError) as err:
        download("tinytest", sha256="ab" * 32, progress=False)
    message = str(err.value)
    assert "\n" not in message and "sha256" in message and "removed" in message
    assert not (hub / "tinytest-cpk.pth.tar").exists() and partials(hub) == []


def test_html_page_is_not_a_checkpoint(hub, server, tmp_path):
    server.files["/page/quota-cpk.pth.tar"] = b"<!DOCTYPE html>\n<html><body>Quota exceeded</body></html>\n"
    register(
        tmp_path, "quota", preset="tiny-64", file="quota-cpk.pth.tar", urls=[server.url("/page/quota-cpk.pth.tar")]
    )
    with pytest.raises(FommError, match="HTML page") as err:
        download("quota", progress=False)
    assert "\n" not in str(err.value) and "removed" in str(err.value)
    assert not (hub / "quota-cpk.pth.tar").exists() and partials(hub) == []


def test_wrong_shapes_are_refused(hub, server, tmp_path):
    server.files["/five/five-cpk.pth.tar"] = checkpoint_bytes(num_kp=5)  # tiny-64 has 10 keypoints
    register(tmp_path, "five", preset="tiny-64", file="five-cpk.pth.tar", urls=[server.url("/five/five-cpk.pth.tar")])
    with pytest.raises(FommError, match=r"five-cpk.pth.tar does not fit config 'tiny-64' .*shape") as err:
        download("five", progress=False)
    assert "\n" not in str(err.value)
    assert not (hub / "five-cpk.pth.tar").exists() and partials(hub) == []


def test_checkpoint_by_name_after_download(hub, tiny_ckpt):
    from fomm.models.checkpoint import load_model

    with pytest.raises(FommError, match=r"checkpoint 'tinytest' is not downloaded; run: fomm download tinytest"):
        load_model("tinytest")
    download("tinytest", progress=False)
    model = load_model("tinytest")
    expected = torch.load(io.BytesIO(tiny_ckpt), weights_only=True)["kp_detector"]
    for key, value in model.kp_detector.state_dict().items():
        assert torch.equal(value, expected[key]), key


def test_offline_names_the_url_and_the_exact_cache_path(hub, tmp_path):
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}/x/gone-cpk.pth.tar"
    register(tmp_path, "gone", preset="tiny-64", file="gone-cpk.pth.tar", urls=[url])
    with pytest.raises(FommError) as err:
        download("gone", progress=False, timeout=5)
    message = str(err.value)
    assert "\n" not in message
    assert f"fetch it by hand from {url} and save it as {hub / 'gone-cpk.pth.tar'}" in message


def test_second_mirror_used_when_the_first_fails(hub, server, tmp_path, tiny_ckpt):
    register(
        tmp_path,
        "mirrored",
        preset="tiny-64",
        file="mirrored-cpk.pth.tar",
        urls=[server.url("/missing/mirrored-cpk.pth.tar"), server.url("/tiny/tinytest-cpk.pth.tar")],
        sha256=hashlib.sha256(tiny_ckpt).hexdigest(),
    )
    result = download("mirrored", progress=False)
    assert result.url.endswith("/tiny/tinytest-cpk.pth.tar") and result.path.read_bytes() == tiny_ckpt


def test_concurrent_downloads_fetch_once(hub, server, tiny_ckpt):
    results, errors = [], []

    def worker():
        try:
            results.append(download("tinytest", progress=False))
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == [] and len(results) == 2
    assert len(server.requests) == 1  # the second waited for the lock and found the file in place
    assert sorted(r.url is None for r in results) == [False, True]
    assert (hub / "tinytest-cpk.pth.tar").read_bytes() == tiny_ckpt


def test_cli_download_url_and_errors(hub, server, tmp_path, capsys, tiny_ckpt):
    from fomm.cli import main

    url = server.url("/tiny/tinytest-cpk.pth.tar")
    out = tmp_path / "mine"
    out.mkdir()
    assert main(["download", url, "--out", str(out), "--no-progress"]) == 0
    assert (out / "tinytest-cpk.pth.tar").read_bytes() == tiny_ckpt
    assert "tensor shapes fit tiny-64" in capsys.readouterr().out

    assert main(["download", url, "--out", str(tmp_path / "x.pth.tar"), "--sha256", "0" * 64, "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "sha256" in err and not (tmp_path / "x.pth.tar").exists()

    assert main(["download", "voxx"]) == 2
    assert "did you mean 'vox'" in capsys.readouterr().err


def test_models_lists_all_and_imports_no_torch(hub):
    code = (
        "import sys; from fomm.cli import main; main(['models', '--urls']); "
        "assert 'torch' not in sys.modules, 'torch imported'"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    for name in ("vox", "vox-adv", "taichi", "taichi-adv", "fashion", "mgif", "bair", "nemo", "tinytest"):
        assert f"\n{name} " in run.stdout
    for name in ("face-64", "puppet-64"):  # the bundled models, first, marked
        line = next(x for x in run.stdout.splitlines() if x.startswith(f"{name} "))
        assert line.endswith("bundled (no download)") and "face-64" in run.stdout.splitlines()[1]
    assert "vox-adv-cpk.pth.tar" in run.stdout and "huggingface.co" in run.stdout
    assert str(hub) in run.stdout


def test_help_has_examples(capsys):
    from fomm.cli import main

    for command in ("models", "download"):
        with pytest.raises(SystemExit) as done:
            main([command, "--help"])
        assert done.value.code == 0
        text = capsys.readouterr().out
        assert "examples:" in text and f"fomm {command}" in text


def test_download_preset_takes_a_name_or_a_yaml_file(hub, tmp_path, tiny_ckpt):
    from fomm.config import load_preset

    yaml_file = tmp_path / "my-tiny.yaml"
    load_preset("tiny-64").to_yaml(yaml_file)
    result = download("tinytest", progress=False, preset=str(yaml_file))
    assert result.preset == "my-tiny" and result.path.read_bytes() == tiny_ckpt
    with pytest.raises(FommError, match="unknown preset 'tiny-65'; did you mean tiny-64"):
        download("tinytest", progress=False, preset="tiny-65")
    with pytest.raises(FommError, match="config file not found"):
        download("tinytest", progress=False, preset=str(tmp_path / "nope.yaml"))


def test_bundled_models_need_no_download(hub, capsys):
    from fomm.cli import main

    assert main(["download", "face-64"]) == 2
    err = capsys.readouterr().err.strip()
    assert (
        err
        == "fomm download: error: 'face-64' is bundled with fomm: nothing to download; use it by name: --checkpoint face-64"
    )
