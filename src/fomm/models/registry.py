"""Checkpoint names: the published FOMM checkpoints (presets, files, mirrors, the download cache)
and the models bundled inside the package.

This is the name -> file lookup that :func:`fomm.models.checkpoint.load_model` uses; it sits in the
model layer so the models import nothing above them (:mod:`fomm.hub` downloads into the cache
named here). It imports neither torch nor the network libraries, so ``fomm models`` (a listing)
starts at once.

Bundled models (``face-64``, ``puppet-64``) are small FOMMs the project trains on its procedural
videos and ships in ``fomm/assets/bundled``: usable by name with no download. The published files
are the original authors' checkpoints; the URLs are **third-party mirrors** (GitHub release assets
and Hugging Face repositories that re-host them), tried in order.

Where a sha256 is given, it is the Git LFS object id that Hugging Face shows for that file (a
sha256 of the whole file). The others are unknown here; a download of those is verified by its
tensor shapes only (every generator and keypoint-detector tensor against the preset).

Environment:
- ``FOMM_HOME``: the cache root; checkpoints go to ``$FOMM_HOME/checkpoints`` (default:
  ``platformdirs.user_cache_dir("fomm")/checkpoints``).
- ``FOMM_MODELS``: a JSON file that adds or replaces entries, e.g.
  ``{"mine": {"preset": "vox-256", "file": "mine.pth.tar", "urls": ["https://..."], "sha256": null}}``.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import platformdirs

from fomm.errors import FommError

# category -> checkpoint file under assets/bundled (our format, config embedded). The name a user
# passes is the file's stem (``face-64``); the first one shipped is the default of ``fomm demo``.
BUNDLED_MODELS = {"face": "face-64.pth", "puppet": "puppet-64.pth"}

# Third-party mirrors of the authors' files (the authors' own links were Google Drive and
# Yandex Disk folders, which cannot be fetched by a script).
HF_MIRROR = "https://huggingface.co/MCMLXXXVII/thinplatesv1/resolve/main/"
GITHUB_MIRROR = "https://github.com/graphemecluster/first-order-model-demo/releases/download/checkpoints/"
HF_SPACE_MIRROR = "https://huggingface.co/spaces/abhishek/first-order-motion-model/resolve/main/weights/"


@dataclass(frozen=True)
class Checkpoint:
    """One named checkpoint: downloadable, or bundled inside the package.

    ``preset``: the config whose tensor shapes the file must have (a preset name or a YAML file;
    None: any preset that fits, for a bare URL). ``sha256``: lower-case hex of the whole file, or
    None when unknown. ``size``: bytes, when known. ``urls``: mirrors, tried in order (none for a
    bundled model). ``bundled``: shipped in ``fomm/assets/bundled`` (nothing to download).
    """

    name: str
    preset: str | None
    file: str
    urls: tuple[str, ...]
    sha256: str | None = None
    size: int | None = None
    # where to fetch it by hand when no script can (``urls`` empty), and the weights' licence
    page: str | None = None
    licence: str | None = None
    bundled: bool = False
    original: str | None = None  # the file's name where ``page`` has it, when not ``file``


def _published(name: str, preset: str, file: str, sha256=None, size=None, extra=()) -> Checkpoint:
    return Checkpoint(name, preset, file, (HF_MIRROR + file, GITHUB_MIRROR + file, *extra), sha256, size)


BUILTIN: dict[str, Checkpoint] = {
    c.name: c
    for c in (
        _published(
            "vox",
            "vox-256",
            "vox-cpk.pth.tar",
            sha256="abb41ab1f279f26326c0d6e4d20702de6658364665aa1313daa7a63e89ea2b23",
        ),
        _published(
            "vox-adv",
            "vox-adv-256",
            "vox-adv-cpk.pth.tar",
            sha256="6792d6810d7f46e3c5c487a1cfec916b96fad8912c3c6cc81baa1fc300c820d3",
            size=750926934,
            extra=(HF_SPACE_MIRROR + "vox-adv-cpk.pth.tar",),
        ),
        _published("taichi", "taichi-256", "taichi-cpk.pth.tar"),
        _published(
            "taichi-adv",
            "taichi-adv-256",
            "taichi-adv-cpk.pth.tar",
            sha256="cf17bbb05bece3a75f353e42699a4c3ddc8152f486065c2c6741f4d1edecda64",
        ),
        _published("fashion", "fashion-256", "fashion.pth.tar"),
        _published("mgif", "mgif-256", "mgif-cpk.pth.tar"),
        _published("bair", "bair-256", "bair-cpk.pth.tar"),
        _published("nemo", "nemo-256", "nemo-cpk.pth.tar"),
    )
}


# The Thin-Plate Spline Motion Model's checkpoints (Zhao and Zhang, CVPR 2022; MIT licence,
# github.com/yoyo-nb/Thin-Plate-Spline-Motion-Model): published only in Google Drive, Yandex Disk and
# Baidu folders, which no script can fetch, and no third-party mirror of them is known here; so
# they are fetched by hand and put in the cache under these names (or passed by path).
TPSMM_PAGE = "https://drive.google.com/drive/folders/1pNDo1ODQIb5HVObRtCmubqJikmR7VVLT"
TPSMM: dict[str, Checkpoint] = {
    c.name: c
    for c in (
        Checkpoint(f"tpsmm-{data}", f"tpsmm-{data}-{size}", f"tpsmm-{data}.pth.tar", (), page=TPSMM_PAGE, licence="MIT")
        for data, size in (("vox", 256), ("taichi", 256), ("mgif", 256), ("ted", 384))
    )
}
BUILTIN.update(TPSMM)

# The community's 512 x 512 FOMM (vox-512: the original architecture, 13 x 13 anti-alias kernels):
# trained by adeptflax on one RTX 3090 for 5 days (95 epochs) and published under CC0 in
# github.com/adeptflax/motion-models, whose README links a MediaFire folder (model, config,
# examples), which no script can fetch; the file is passed around as
# first-order-model-checkpoint-94.pth.tar. Its sha256 is unknown here: checked by tensor shapes.
VOX512_PAGE = "https://www.mediafire.com/folder/e6ikqpr3eegxf/first-order-model"
BUILTIN["vox-512"] = Checkpoint(
    "vox-512",
    "vox-512",
    "vox-512.pth.tar",
    (),
    page=VOX512_PAGE,
    licence="CC0-1.0",
    original="first-order-model-checkpoint-94.pth.tar",
)


def by_hand(entry: Checkpoint, dest: Path) -> str:
    """How to get a checkpoint that no script can fetch, in one sentence."""
    original = entry.original or entry.file.removeprefix("tpsmm-")
    return (
        f"no script can fetch {entry.name}: download {original} by hand from {entry.page} and save it as "
        f"{dest} (or pass its path to --checkpoint)"
    )


def assets_dir() -> Path:
    """The package's data folder (bundled models, demo inputs, landmark data)."""
    return Path(str(resources.files("fomm") / "assets"))


def bundled_entries() -> dict[str, Checkpoint]:
    """The bundled models shipped in this installation, by name (``face-64``), default first."""
    entries = {}
    for file in BUNDLED_MODELS.values():
        if (assets_dir() / "bundled" / file).is_file():
            name = Path(file).stem
            entries[name] = Checkpoint(name, name, file, (), bundled=True)
    return entries


def cache_dir() -> Path:
    """The folder downloaded checkpoints live in (``$FOMM_HOME/checkpoints`` or the user cache)."""
    home = os.environ.get("FOMM_HOME")
    if home:
        return Path(home).expanduser() / "checkpoints"
    return Path(platformdirs.user_cache_dir("fomm")) / "checkpoints"


def registry() -> dict[str, Checkpoint]:
    """The known checkpoints: the bundled ones, the published ones, plus or overridden by the
    ``FOMM_MODELS`` file."""
    entries = {**bundled_entries(), **BUILTIN}
    extra = os.environ.get("FOMM_MODELS")
    if extra:
        entries.update(_read_models_file(Path(extra)))
    return entries


def _read_models_file(path: Path) -> dict[str, Checkpoint]:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise FommError(f"FOMM_MODELS names {path}, which does not exist; fix or unset FOMM_MODELS") from None
    except (OSError, ValueError) as exc:
        raise FommError(f"FOMM_MODELS file {path} is not valid JSON ({exc}); fix or unset FOMM_MODELS") from None
    if not isinstance(data, dict):
        raise FommError(f"FOMM_MODELS file {path} must hold an object of name -> entry; fix or unset FOMM_MODELS")
    out = {}
    for name, item in data.items():
        try:
            urls = item["urls"]
            if isinstance(urls, str) or not all(isinstance(u, str) for u in urls):
                raise TypeError("urls must be a list of strings")
            out[name] = Checkpoint(
                name=str(name),
                preset=item.get("preset"),
                file=str(item["file"]),
                urls=tuple(urls),
                sha256=normalise_sha256(item.get("sha256")),
                size=item.get("size"),
                page=item.get("page"),  # with no urls: where to fetch it by hand
                licence=item.get("licence"),
                original=item.get("original"),
            )
        except (KeyError, TypeError, AttributeError) as exc:
            raise FommError(
                f"FOMM_MODELS file {path}: entry '{name}' is malformed ({exc}); each entry needs "
                f'"file" and "urls" (a list, empty for a file fetched by hand), and may have "preset", "sha256", '
                f'"size", "page", "licence", "original"'
            ) from None
    return out


def file_sha256(path: str | os.PathLike) -> str:
    """The sha256 of a file, read in 1 MiB blocks (checkpoints are hundreds of megabytes)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def normalise_sha256(value: str | None) -> str | None:
    """Lower-case 64-digit hex, or None; anything else is a FommError."""
    if value is None:
        return None
    text = str(value).strip().lower()
    if len(text) != 64 or any(c not in "0123456789abcdef" for c in text):
        raise FommError(f"--sha256 {value!r} is not a sha256 (64 hex digits); copy it again or leave it out")
    return text


def cached_path(entry: Checkpoint) -> Path:
    """Where ``entry`` is (or would be) stored: the cache, or the package for a bundled model."""
    if entry.bundled:
        return assets_dir() / "bundled" / entry.file
    return cache_dir() / entry.file


def is_cached(entry: Checkpoint) -> bool:
    return cached_path(entry).is_file()


def missing_hint() -> str:
    """What a checkpoint may be, for the messages about a missing or unknown one (one line)."""
    bundled = ", ".join(bundled_entries()) or "none installed"
    return (
        f"--checkpoint takes a checkpoint file, a bundled model ({bundled}; no download) or a name that "
        f"fomm models lists (e.g. fomm download vox, then --checkpoint vox)"
    )


def resolve_checkpoint(arg):
    """A ``--checkpoint`` value: an existing path stays as it is; a known name becomes its file.

    A published name that is not downloaded yet is a FommError telling the user to run
    ``fomm download NAME``. Anything else (a dict, an unknown name) is returned unchanged.
    """
    if not isinstance(arg, (str, os.PathLike)) or Path(arg).exists():
        return arg
    entry = registry().get(os.fspath(arg))
    if entry is None:
        return arg
    path = cached_path(entry)
    if not path.is_file() and not entry.urls:
        raise FommError(f"checkpoint '{entry.name}' is not here; {by_hand(entry, path)}")
    if not path.is_file():
        raise FommError(f"checkpoint '{entry.name}' is not downloaded; run: fomm download {entry.name}")
    return path
