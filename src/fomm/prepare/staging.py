"""Writing into a dataset folder that shards on other machines write into at the same time.

:mod:`fomm.atomic` writes a file as a hidden temporary file beside it, and before writing into a
folder removes the temporaries left there by processes that are gone. On a folder shared between
machines a process of another machine looks gone (its process id means nothing here), so its
temporary file could be removed while it is being written. Each process of ``fomm prepare``
therefore makes its files (clips, thumbnails, records) in its own staging folder,
``DATA/.prepare/staging/<host>-<pid>/``, atomically as usual, and then moves each finished file
to its place with one rename (atomic on one file system). No temporary file of ours is ever
beside the clips, so no other machine's sweep can meet one.

A killed process leaves its staging folder behind; the next run on the same machine removes the
folders of its machine's processes that are gone.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
from pathlib import Path

from fomm.atomic import _pid_alive


def _host() -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", socket.gethostname()) or "host"


def folder(root: Path) -> Path:
    """This process's staging folder under ``root`` (``DATA/.prepare``), created."""
    path = root / "staging" / f"{_host()}-{os.getpid()}"
    path.mkdir(parents=True, exist_ok=True)
    return path


def publish(staged: Path, final: Path) -> None:
    """Move the finished ``staged`` file or folder to ``final`` (replacing what is there)."""
    final.parent.mkdir(parents=True, exist_ok=True)
    if staged.is_dir() and final.is_dir():
        shutil.rmtree(final)  # a folder cannot be renamed over a full one
    os.replace(staged, final)


def remove_stale(root: Path) -> list[Path]:
    """Remove the staging folders of this machine's processes that are gone; returns them."""
    removed = []
    prefix = f"{_host()}-"
    try:
        entries = list(os.scandir(root / "staging"))
    except OSError:
        return removed
    for entry in entries:
        pid = entry.name[len(prefix) :]
        if entry.name.startswith(prefix) and pid.isdigit() and not _pid_alive(int(pid)):
            shutil.rmtree(entry.path, ignore_errors=True)
            removed.append(Path(entry.path))
    return removed
