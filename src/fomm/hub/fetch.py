"""Download a checkpoint: resumable HTTP, verification, and an atomic move into place.

What the libraries do, and what is written here:
- ``pooch.HTTPDownloader`` streams the response into a file object and drives the progress bar.
  It has no resume: given a path it opens it with ``"w+b"`` and it never sends a ``Range``
  header. So it gets a file opened for appending, a ``Range`` header for the bytes already on
  disk, and a ``requests`` response hook (:class:`_Answer`) that checks the server's answer: a
  206 must start where the partial file ends; a 200 means the server ignored the ``Range``, so
  the partial file is emptied and the download starts over.
- ``pooch.file_hash`` computes the sha256; ``filelock`` keeps two downloads of one file apart;
  :func:`fomm.atomic.atomic_path` moves the verified file to its final path in one rename.
- The file is always loaded the one way weights are loaded (:func:`fomm.models.checkpoint.load_model`:
  ``torch.load(weights_only=True)``, every generator and keypoint-detector tensor shape compared
  with the preset).

Partial downloads are kept in ``<cache>/.partial`` (one per URL), so running the same command
again resumes where the connection broke.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import os
import re
import shutil
import sys
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import unquote, urlparse

import pooch
import requests
from filelock import FileLock, Timeout
from tqdm import tqdm

from fomm.atomic import atomic_path
from fomm.config import resolve_config
from fomm.errors import FommError
from fomm.models.checkpoint import load_model, read_checkpoint
from fomm.models.registry import Checkpoint, by_hand, cache_dir, cached_path, normalise_sha256, registry
from fomm.models.shapes import AmbiguousPreset
from fomm.models.sniff import sniff_checkpoint
from fomm.models.tpsmm.config import is_tpsmm_config, resolve_tpsmm_config

CHUNK = 1 << 16  # bytes per write and progress step (a broken connection loses at most one)
DEFAULT_RETRIES = 3  # automatic resumes within one call when a connection breaks mid-file
DEFAULT_TIMEOUT = 30.0  # seconds without an answer (connect, or between two chunks)


@dataclasses.dataclass
class Result:
    """A checkpoint in place: its path, sha256, size in bytes, the config its shapes fit, and the
    URL it came from (None when it was already there)."""

    path: Path
    sha256: str
    size: int
    preset: str
    url: str | None


class _Failure(Exception):
    """One mirror failed: ``kind`` 'network' (the partial file is kept) or 'bad' (it was removed)."""

    def __init__(self, kind: str, reason: str, kept: int = 0):
        super().__init__(reason)
        self.kind, self.reason, self.kept = kind, reason, kept


class _StartOver(requests.exceptions.ConnectionError):
    """The partial file cannot be continued; it was emptied and the next attempt starts at byte 0."""


class _Incomplete(requests.exceptions.ConnectionError):
    """The server closed the connection before the whole file arrived."""


def download(
    name_or_url: str,
    out: str | os.PathLike | None = None,
    sha256: str | None = None,
    preset: str | None = None,
    progress: bool = True,
    retries: int = DEFAULT_RETRIES,
    timeout: float = DEFAULT_TIMEOUT,
) -> Result:
    """Fetch a known checkpoint (``'vox'``) or a URL, verify it and store it.

    ``out``: a file or folder (default: the cache, where ``--checkpoint NAME`` finds it).
    ``sha256``: expected hash (default: the registry's, when known). ``preset``: the config whose
    tensor shapes the file must have, a preset name or a YAML file (default: the registry's; for a
    URL, the config stored in the file or any preset that fits).
    ``retries``: automatic resumes when a connection breaks mid-file. Every failure is a
    one-line :class:`FommError`; the final path never holds a partial or unverified file.
    """
    entry = resolve_entry(name_or_url, preset)
    expected = normalise_sha256(sha256) or entry.sha256
    dest = destination(entry, out)
    part_dir = cache_dir() / ".partial"
    with _locked(part_dir / f"{entry.file}.lock", entry.file):
        if dest.is_file():
            return _existing(dest, entry, expected)
        if not entry.urls:
            raise FommError(by_hand(entry, dest))
        return _fetch_any(entry, dest, expected, part_dir, progress, retries, timeout)


def resolve_entry(name_or_url: str, preset: str | None = None) -> Checkpoint:
    """The registry entry for a name, or an ad-hoc entry for an http(s) URL."""
    if preset is not None and is_tpsmm_config(preset):  # a preset name or a YAML file, checked before any download
        resolve_tpsmm_config(preset)
    elif preset is not None:
        resolve_config(preset)
    text = str(name_or_url).strip()
    if text.startswith(("http://", "https://")):
        file = unquote(Path(urlparse(text).path).name)
        if not file:
            raise FommError(f"cannot tell a file name from the URL {text}; use a URL that ends in the file name")
        return Checkpoint(name=file, preset=preset, file=file, urls=(text,))
    known = registry()
    entry = known.get(text)
    if entry is None:
        close = difflib.get_close_matches(text, list(known), n=1)
        hint = f"did you mean '{close[0]}'? " if close else ""
        raise FommError(
            f"unknown checkpoint '{text}'; {hint}known: {', '.join(known)} (fomm models lists them), or pass an http(s) URL"
        )
    if entry.bundled:
        raise FommError(f"'{text}' is bundled with fomm: nothing to download; use it by name: --checkpoint {text}")
    return dataclasses.replace(entry, preset=preset) if preset else entry


def destination(entry: Checkpoint, out: str | os.PathLike | None) -> Path:
    """The final path: ``out`` (a file, or a folder to put ``entry.file`` in) or the cache."""
    if out is None:
        return cached_path(entry)
    path = Path(out).expanduser()
    if path.is_dir() or str(out).endswith(("/", os.sep)):
        return path / entry.file
    return path


@contextmanager
def _locked(lock_path: Path, label: str):
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(lock_path))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        print(f"fomm download: waiting for another download of {label} to finish ...", file=sys.stderr)
        lock.acquire()
    try:
        yield
    finally:
        lock.release()


def _existing(dest: Path, entry: Checkpoint, expected: str | None) -> Result:
    try:
        digest, preset = verify(dest, entry.preset, expected, entry.size, entry.file)
    except _Failure as exc:
        raise FommError(f"{dest} already exists but {exc.reason}; delete it or choose another --out") from None
    return Result(dest, digest, dest.stat().st_size, preset, None)


def _fetch_any(entry, dest, expected, part_dir, progress, retries, timeout) -> Result:
    failures: list[tuple[str, _Failure]] = []
    for url in entry.urls:
        part = part_dir / f"{hashlib.sha1(url.encode()).hexdigest()[:10]}-{entry.file}.part"
        try:
            fetch(url, part, progress=progress, retries=retries, timeout=timeout, label=entry.file)
            digest, preset = _verify_or_remove(part, entry, expected)
        except _Failure as exc:
            failures.append((url, exc))
            continue
        size = part.stat().st_size
        install(part, dest)
        return Result(dest, digest, size, preset, url)
    raise FommError(failure_message(entry, dest, failures))


def _verify_or_remove(part: Path, entry: Checkpoint, expected: str | None) -> tuple[str, str]:
    try:
        return verify(part, entry.preset, expected, entry.size, entry.file)
    except _Failure:
        part.unlink(missing_ok=True)
        raise


def failure_message(entry: Checkpoint, dest: Path, failures: list[tuple[str, _Failure]]) -> str:
    """One line: what failed, and which URL to fetch by hand to which exact path."""
    kept = max(f.kept for _, f in failures)
    resume = f"; the {_mb(kept)} received are kept and running the same command resumes" if kept else ""
    by_hand = f"fetch it by hand from {entry.urls[0]} and save it as {dest}"
    if len(failures) == 1:
        url, f = failures[0]
        if f.kind == "bad":
            return f"{url} did not give a valid {entry.file}: {f.reason}; the downloaded file was removed"
        return f"could not download {entry.file} from {url} ({f.reason}){resume}; {by_hand}"
    each = "; ".join(f"{url}: {f.reason}" + (" (file removed)" if f.kind == "bad" else "") for url, f in failures)
    return f"could not get {entry.file} from any of its {len(failures)} mirrors ({each}){resume}; {by_hand}"


def _mb(n: int) -> str:
    return f"{n / 1e6:.1f} MB"


# ------------------------------------------------------------------------------------------------
# The transfer
# ------------------------------------------------------------------------------------------------


def fetch(url: str, part: Path, progress: bool, retries: int, timeout: float, label: str) -> None:
    """Bring ``part`` to the whole file at ``url``, continuing from the bytes it already holds.

    A connection that breaks after some bytes arrived is resumed up to ``retries`` times; other
    failures raise :class:`_Failure` ('network'), with the partial file kept for a later resume.
    """
    part.parent.mkdir(parents=True, exist_ok=True)
    attempt = 0
    while True:
        before = _size(part)
        try:
            _get(url, part, before, progress, timeout, label)
            return
        except requests.exceptions.RequestException as exc:
            moved_on = _size(part) > before or isinstance(exc, _StartOver)
            if moved_on and attempt < retries:
                attempt += 1
                continue
            kept = _size(part)
            if not kept:
                part.unlink(missing_ok=True)
            raise _Failure("network", short_reason(exc, timeout), kept) from None


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def _get(url: str, part: Path, offset: int, progress: bool, timeout: float, label: str) -> None:
    """One HTTP GET through pooch, appending to ``part`` from byte ``offset``."""
    answer = _Answer(offset)
    headers = {"Accept-Encoding": "identity"}  # byte ranges of the file itself, never of a gzip stream
    if offset:
        headers["Range"] = f"bytes={offset}-"
    with open(part, "ab") as fh, _Bar(label, answer, progress) as bar:
        answer.fh = fh
        downloader = pooch.HTTPDownloader(
            progressbar=bar, chunk_size=CHUNK, timeout=timeout, headers=headers, hooks={"response": answer.check}
        )
        try:
            downloader(url, fh, None)
        except requests.exceptions.HTTPError:
            if not answer.complete:
                raise
    got = _size(part)
    if answer.total is not None and got != answer.total:
        raise _Incomplete(f"the connection closed after {got} of {answer.total} bytes")


class _Answer:
    """A ``requests`` response hook: checks the server's answer to a (ranged) GET before pooch
    writes anything, and learns the whole file's size."""

    def __init__(self, offset: int):
        self.offset = offset
        self.total: int | None = None  # bytes of the whole file, when the server says
        self.complete = False  # a 416 whose Content-Range says the partial file is already whole
        self.fh = None

    def check(self, response, *args, **kwargs):
        if response.is_redirect:  # mirrors redirect to a CDN; the Range header goes along
            return response
        status = response.status_code
        if status == 206:
            start, total = _content_range(response.headers.get("Content-Range", ""))
            if start != self.offset:
                self._empty()
                raise _StartOver(f"the server resumed at byte {start}, not {self.offset}; starting over")
            self.total = total
        elif status == 416 and self.offset:
            _, total = _content_range(response.headers.get("Content-Range", ""))
            if total == self.offset:
                self.complete, self.total = True, total
            else:
                self._empty()
                raise _StartOver("the partial file does not match the server's file; starting over")
        elif response.ok:
            if self.offset:  # the server ignored the Range header and sends the whole file
                self._empty()
            length = response.headers.get("Content-Length")
            self.total = int(length) if length and length.isdigit() else None
        return response

    def _empty(self) -> None:
        self.fh.seek(0)
        self.fh.truncate()
        self.offset = 0


def _content_range(value: str) -> tuple[int | None, int | None]:
    """``'bytes 100-199/200'`` -> (100, 200); ``'bytes */200'`` -> (None, 200)."""
    match = re.match(r"\s*bytes\s+(?:(\d+)-\d+|\*)/(\d+|\*)", value or "")
    if not match:
        return None, None
    start = int(match.group(1)) if match.group(1) else None
    total = int(match.group(2)) if match.group(2).isdigit() else None
    return start, total


class _Bar:
    """The progress protocol pooch drives (``total``, ``update``, ``reset``, ``close``) over a tqdm
    bar that counts the bytes already on disk, so a resumed download shows its true progress."""

    def __init__(self, label: str, answer: _Answer, enabled: bool):
        self.answer, self.label, self.enabled = answer, label, enabled
        self.filling = False
        self.bar = None  # made when the server has answered, so a failed connection draws nothing

    def __bool__(self) -> bool:
        return True

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def total(self):
        return self.bar.total if self.bar is not None else None

    @total.setter
    def total(self, remaining: int) -> None:  # pooch sets the response's Content-Length
        offset = self.answer.offset  # 0 again when the server ignored the Range
        self.bar = tqdm(
            desc=self.label,
            initial=offset,
            total=offset + remaining if remaining else None,
            unit="B",
            unit_scale=True,
            unit_divisor=1024,
            disable=not self.enabled,
            dynamic_ncols=True,
        )

    def update(self, n: int) -> None:
        if self.bar is None:
            return
        if self.filling:  # pooch's final reset() + update(total): show the bar full
            self.bar.n = self.bar.total or self.bar.n
            self.bar.refresh()
            return
        if self.bar.total:
            n = min(n, self.bar.total - self.bar.n)  # pooch counts whole chunks, the last may be short
        self.bar.update(n)

    def reset(self) -> None:
        self.filling = True

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def short_reason(exc: Exception, timeout: float) -> str:
    """A few words for a requests error (its own text can run to several hundred characters)."""
    if isinstance(exc, requests.exceptions.HTTPError) and exc.response is not None:
        return f"HTTP {exc.response.status_code} {exc.response.reason or ''}".strip()
    if isinstance(exc, requests.exceptions.Timeout):
        return f"no answer within {timeout:g} s"
    if isinstance(exc, (_Incomplete, _StartOver)):
        return str(exc)
    text = str(exc)
    errno = re.search(r"\[Errno -?\d+\] ([^'\")\]]+)", text)
    if errno:
        return f"cannot connect: {errno.group(1).strip()}"
    if isinstance(exc, requests.exceptions.ChunkedEncodingError):
        return "the connection broke during the transfer"
    first = text.splitlines()[0] if text else type(exc).__name__
    return first if len(first) <= 120 else first[:117] + "..."


# ------------------------------------------------------------------------------------------------
# Verification and installation
# ------------------------------------------------------------------------------------------------


def verify(
    path: Path, preset: str | None, sha256: str | None, size: int | None = None, label: str | None = None
) -> tuple[str, str]:
    """Check a file: size and sha256 (when known), a PyTorch checkpoint loadable with
    ``weights_only=True``, and every generator / kp_detector tensor shape against ``preset`` (for
    None: the config stored in the file, else any bundled preset that fits).

    Returns ``(sha256, config name)``; raises :class:`_Failure` ('bad') with a short reason.
    """
    actual = path.stat().st_size
    if size is not None and actual != size:
        raise _Failure("bad", f"it has {actual} bytes, expected {size}")
    digest = pooch.file_hash(str(path), alg="sha256")
    if sha256 and digest != sha256:
        raise _Failure("bad", f"its sha256 is {digest}, expected {sha256}")
    check_format(path)
    return digest, check_shapes(path, preset, label)


def check_format(path: Path) -> None:
    """Refuse, from its first bytes, a file that is no PyTorch checkpoint (an HTML error page, a Git
    LFS pointer, an image, a plain pickle ...) before anything is unpickled."""
    kind = sniff_checkpoint(path)
    if kind == "pickle":
        raise _Failure("bad", "it is a plain Python pickle, not a PyTorch checkpoint")
    if kind != "torch":
        extra = " (an error, login or quota page)" if "HTML" in kind else ""
        raise _Failure("bad", f"{kind}, not a checkpoint{extra}")


def check_shapes(path: Path, preset: str | None, label: str | None = None) -> str:
    """Load the file as every command will (``weights_only=True``, every inference tensor shape
    against ``preset``, or the stored config, or the preset that fits); returns the config name.
    ``label``: what messages call the file (default: its name)."""
    try:
        model = load_model(read_checkpoint(path), config=preset, name=label or path.name)
    except AmbiguousPreset as exc:  # it fits (e.g. vox-256 and vox-512 alike): --config tells which
        return " or ".join(exc.presets)
    except FommError as exc:
        raise _Failure("bad", str(exc)) from None
    return model.config.name or str(preset)


def install(part: Path, dest: Path) -> None:
    """Move a verified file to ``dest`` in one rename (copy first when across file systems)."""
    with atomic_path(dest) as tmp:
        try:
            os.replace(part, tmp)
        except OSError:
            shutil.copyfile(part, tmp)
    part.unlink(missing_ok=True)
