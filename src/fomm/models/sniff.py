"""What a file holds, from its first bytes, before anything is unpickled.

A checkpoint given where something else was meant (a YAML config, an image, an HTML error page
saved by a failed download, a Git LFS pointer, an archive) is named as such, with the fix. This
module imports no torch and nothing of fomm but the errors, so the config reader and the download
command can use it without pulling in the models.
"""

from __future__ import annotations

import io
import re
import zipfile
from pathlib import Path

from fomm.errors import FommError


def unreadable(path: Path, exc: OSError) -> FommError:
    """The one-line error for a checkpoint file the OS will not let us read."""
    return FommError(f"cannot read checkpoint {path} ({exc.strerror or exc}); check its permissions")


# (magic bytes, offset, what the file looks like); checked in order
_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", 0, "a PNG image"),
    (b"\xff\xd8\xff", 0, "a JPEG image"),
    (b"GIF8", 0, "a GIF image"),
    (b"WEBP", 8, "a WebP image"),
    (b"II*\x00", 0, "a TIFF image"),
    (b"MM\x00*", 0, "a TIFF image"),
    (b"ftyp", 4, "an MP4/MOV video"),
    (b"\x1a\x45\xdf\xa3", 0, "a Matroska/WebM video"),
    (b"AVI ", 8, "an AVI video"),
    (b"WAVE", 8, "a WAV audio file"),
    (b"%PDF", 0, "a PDF document"),
    (b"\x1f\x8b", 0, "a gzip archive"),
    (b"BZh", 0, "a bzip2 archive"),
    (b"\xfd7zXZ\x00", 0, "an xz archive"),
    (b"7z\xbc\xaf\x27\x1c", 0, "a 7-Zip archive"),
    (b"Rar!", 0, "a RAR archive"),
    (b"ustar", 257, "a tar archive"),
    (b"\x89HDF\r\n\x1a\n", 0, "an HDF5 file (Keras/TensorFlow weights?)"),
    (b"\x93NUMPY", 0, "a NumPy .npy array"),
)
# what torch.save's legacy (pre-1.6, e.g. the original vox-cpk.pth.tar) format pickles first
_LEGACY_TORCH_MAGIC = b"\x8a\nl\xfc\x9cF\xf9 j\xa8P\x19"


def sniff_checkpoint(path: str | Path, raw: bytes | None = None) -> str:
    """What a file holds, from its first bytes: ``'torch'`` (torch.save, zip or legacy format),
    ``'pickle'`` (a plain Python pickle), ``'empty'``, or ``'it looks like ...'`` (the kind of file).
    ``raw``: the file's bytes when already read (then the file is not opened again)."""
    path = Path(path)
    if raw is None:
        try:
            with open(path, "rb") as fh:
                head = fh.read(4096)
        except OSError as exc:
            raise unreadable(path, exc) from None
    else:
        head = raw[:4096]
    if not head:
        return "empty"
    if head[:4] in (b"PK\x03\x04", b"PK\x05\x06"):
        return _sniff_zip(path if raw is None else io.BytesIO(raw))
    if head[:1] == b"\x80" and 2 <= head[1:2][0] <= 5:
        return "torch" if head[2:].startswith(_LEGACY_TORCH_MAGIC) else "pickle"
    for magic, offset, kind in _MAGIC:
        if head[offset : offset + len(magic)] == magic:
            return f"it looks like {kind}"
    size = path.stat().st_size if raw is None else len(raw)
    if len(head) > 8 and head[8:9] == b"{" and int.from_bytes(head[:8], "little") < size:
        return "it looks like a safetensors file"
    return _sniff_text(head)


def _sniff_zip(path: Path | io.BytesIO) -> str:
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except (zipfile.BadZipFile, OSError):
        return "torch"  # a damaged zip: torch.load says how
    if any(n.endswith("data.pkl") for n in names):
        return "torch"
    if names and all(n.endswith(".npy") for n in names):
        return "it looks like a NumPy .npz archive"
    shown = ", ".join(names[:3]) if names else "nothing"
    return f"it looks like a ZIP archive of other files ({shown})"


def _sniff_text(head: bytes) -> str:
    if b"\x00" in head:
        return "its first bytes match no known format"
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(head) - 3:  # not a character cut at the end of the 4 KiB read
            return "its first bytes match no known format"
        text = head[: exc.start].decode("utf-8")
    text = text.lstrip().lower()
    if text.startswith(("<!doctype html", "<html")) or "<html" in text[:512]:
        return "it looks like an HTML page"
    if text.startswith("version https://git-lfs"):
        return "it looks like a Git LFS pointer"
    if re.search(r"^model_params:", text, re.MULTILINE):
        return "it looks like a FOMM YAML config"
    return "it looks like a text file"


def fix_for(kind: str) -> str:
    """The fix to suggest for a file that is not a checkpoint."""
    if "HTML" in kind:
        return "a download that returned a web page instead of the file; download the checkpoint again"
    if "Git LFS" in kind:
        return "fetch the real file with git lfs pull"
    if "YAML config" in kind:
        return "pass it with --config and the .pth/.pth.tar file with --checkpoint"
    if "archive" in kind and "NumPy" not in kind:
        return "extract the .pth/.pth.tar checkpoint from it and pass that"
    return "pass a .pth/.pth.tar file saved with torch.save (e.g. vox-cpk.pth.tar)"
