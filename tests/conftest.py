"""Fixtures shared by every test folder.

- ``parity_dir``: the parity fixture made by the original implementation (tests/fixtures/parity).
- ``tiny_checkpoint``: the seeded random tiny-64 model as a checkpoint file, written once per run.
- ``synthetic_dataset``: a cached ``write_dataset`` (one folder per distinct set of arguments).

The shared files are read-only by convention: a test that needs to change one copies it first.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

_CANDIDATES = [
    os.environ.get("FOMM_PARITY_DIR", ""),
    str(Path(__file__).resolve().parent / "fixtures" / "parity"),
]


def parity_root() -> Path | None:
    for candidate in _CANDIDATES:
        if candidate and (Path(candidate) / "manifest.json").is_file():
            return Path(candidate)
    return None


@pytest.fixture(scope="session")
def parity_dir() -> Path:
    root = parity_root()
    if root is None:
        pytest.fail("the parity fixture (tests/fixtures/parity) was not found; restore it with git checkout")
    return root


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory) -> Path:
    """``random_checkpoint(..., "tiny-64", seed=0)``: the one tiny model the command tests animate with."""
    from fomm.testing import random_checkpoint

    return random_checkpoint(tmp_path_factory.mktemp("tiny-checkpoint") / "tiny.pth.tar", "tiny-64", seed=0)


@pytest.fixture(scope="session")
def synthetic_dataset(tmp_path_factory):
    """``make(category, **write_dataset_args) -> root``: each distinct dataset is generated once per run."""
    from fomm.data.synthetic import write_dataset

    made: dict[tuple, Path] = {}

    def make(category: str = "puppet", **kwargs) -> Path:
        key = (category, tuple(sorted(kwargs.items())))
        if key not in made:
            root = tmp_path_factory.mktemp(f"synthetic-{category}") / category
            made[key] = write_dataset(root, category, progress=False, **kwargs)
        return made[key]

    return make


def write_bomb_png(path: Path, width: int = 40_000, height: int = 40_000) -> Path:
    """A valid 1-bit PNG of ``width`` x ``height`` black pixels that is small on disk (about 200 KB
    for 40,000 x 40,000: 1.6 gigapixels, 4.8 GB as RGB), written chunk by chunk."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    row = bytes(1 + (width + 7) // 8)  # filter byte 0, then the packed bits
    packer = zlib.compressobj(9)
    idat = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)  # 1 bit, grayscale
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b""))
    return path


@pytest.fixture(scope="session")
def bomb_png(tmp_path_factory) -> Path:
    """A 40,000 x 40,000 PNG of about 200 KB (a decompression bomb), written once per run."""
    return write_bomb_png(tmp_path_factory.mktemp("bomb") / "bomb.png")
