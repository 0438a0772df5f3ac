"""Atomic file output: write to a temporary file in the target folder, then rename.

A failed or interrupted write (an exception, Ctrl-C) leaves no partial file behind. A write that is
killed outright (SIGKILL, power loss) leaves its hidden temporary file; the next atomic write into
the same folder removes it. Our temporary names carry a mark, the writer's machine (a short hash
of its host name) and process id, ``.<stem>.fomm-<host>-<pid>-<random>.tmp<ext>``, so only our own
files are ever removed, and only when the process that made them is gone (judged on its own
machine only) or they have not changed for :data:`STALE_AFTER_S` seconds. The host mark matters on
folders shared between machines (a cluster's jobs preparing one dataset): a process id says
nothing about another machine's processes.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import socket
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

# A temporary file of ours whose writer still runs is removed only after this long unchanged
# (the process id may have been reused by an unrelated process).
STALE_AFTER_S = 600.0
# A folder is swept at most once per this many seconds per process (writers of many frames into
# one folder would otherwise list it once per frame).
SWEEP_EVERY_S = 60.0
# Names written before the host mark existed (no ``<host>-``) count as this machine's.
_TEMP_NAME = re.compile(r"^\..*\.fomm-(?:(?P<host>[0-9a-f]{8})-)?(?P<pid>[0-9]+)-[A-Za-z0-9_]+\.tmp")
HOST_MARK = hashlib.sha1(socket.gethostname().encode()).hexdigest()[:8]
_last_sweep: dict[str, float] = {}


def temp_prefix(path: str | os.PathLike) -> str:
    """The start of our temporary names for ``path`` (hidden, marked, with this machine and process)."""
    return f".{Path(path).stem}.fomm-{HOST_MARK}-{os.getpid()}-"


def make_temp_dir(path: str | os.PathLike) -> Path:
    """A new hidden temporary folder beside ``path``, named so that :func:`remove_stale_temps`
    recognises it (for outputs that are folders; rename it to ``path`` when complete). It gets
    the mode a folder made with ``mkdir`` would have (``mkdtemp`` makes 0700)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sweep_once(path.parent)
    folder = Path(tempfile.mkdtemp(prefix=temp_prefix(path), suffix=".tmp", dir=path.parent))
    os.chmod(folder, 0o777 & ~_umask())
    return folder


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success rename it to ``path``.

    The temporary name keeps the final extension (``suffix`` overrides it) so that writers that
    pick a format from the extension (PyAV, imageio) still work. On any exception, including
    ``KeyboardInterrupt``, the temporary file is removed and the exception propagates. Stale
    temporary files of killed writers in the same folder are removed first.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sweep_once(path.parent)
    ext = path.suffix if suffix is None else suffix
    fd, tmp = tempfile.mkstemp(prefix=temp_prefix(path), suffix=f".tmp{ext}", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        if tmp_path.is_file():  # mkstemp makes 0600 files: give the result the usual umask mode
            os.chmod(tmp_path, 0o666 & ~_umask())
        os.replace(tmp_path, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()
        raise


def sweep_once(folder: str | os.PathLike) -> None:
    """:func:`remove_stale_temps` on ``folder`` unless this process swept it in the last minute."""
    key, now = str(Path(folder).resolve()), time.monotonic()
    if now - _last_sweep.get(key, -SWEEP_EVERY_S) >= SWEEP_EVERY_S:
        _last_sweep[key] = now
        remove_stale_temps(folder)


def remove_stale_temps(folder: str | os.PathLike, max_age_s: float = STALE_AFTER_S) -> list[Path]:
    """Remove our temporary files and folders in ``folder`` whose writer process is gone, or that
    have not changed for ``max_age_s`` seconds; never another program's files, never this
    process's. Another machine's files are removed only by age. Returns the removed paths."""
    removed = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        match = _TEMP_NAME.match(entry.name)
        if match is None:
            continue
        here, pid = match["host"] in (None, HOST_MARK), int(match["pid"])
        if here and pid == os.getpid():
            continue
        try:
            age = time.time() - entry.stat(follow_symlinks=False).st_mtime
            if (not here or _pid_alive(pid)) and age < max_age_s:
                continue
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path)
            else:
                os.unlink(entry.path)
            removed.append(Path(entry.path))
        except OSError:  # gone meanwhile, or not ours to remove
            continue
    return removed


def _pid_alive(pid: int) -> bool:
    """Whether a process ``pid`` exists on this machine (unknown counts as alive)."""
    if os.name != "posix":
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # e.g. PermissionError: it exists, under another user
        return True
    return True


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())


def same_file(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    """Whether ``b`` exists and is the same file as ``a`` (an output that would overwrite its input)."""
    with contextlib.suppress(OSError):
        return Path(b).exists() and os.path.samefile(a, b)
    return False
