"""Datasets in the original FOMM layout: ``FramesDataset``, ``DatasetRepeater``, ``PairedDataset``.

Layout: ``root/train/<video>`` and ``root/test/<video>``, where each ``<video>`` is a video file
(.mp4 .mov .avi .webm .mkv .gif), an image strip (.png/.jpg, frames side by side, see
:mod:`fomm.data.video_io`) or a folder of frames. Other files (``<video>.npz`` keypoints, notes,
hidden files) are ignored. Without ``train``/``test`` folders, the videos directly in ``root`` are
split 80/20 as the original did with scikit-learn's ``train_test_split(random_state=seed,
test_size=0.2)``, applied to the sorted names (the original used the file system's order).

Items:

* training: two different frames of one video, chosen at random (the earlier one is the source,
  unless a time flip swaps them), augmented together: ``{'driving': float32 (3, H, W), 'source':
  float32 (3, H, W), 'name': str}``.
* test: the whole video, ``{'video': float32 (3, T, H, W), 'name': str}``.

``id_sampling``: video names are ``<identity>#...``; the dataset has one item per identity (the
name before the first ``#``), and each training item picks one of that identity's videos.

Frames whose size differs from ``frame_shape`` are resized when loaded (warned once per dataset).

Randomness (which video of an identity, which frames, which augmentation) comes from a
``numpy.random.Generator`` made for each item:

* after ``set_epoch(epoch)``: seeded by ``(random_seed, epoch, index, repeat)`` only, so the
  same epoch gives the same items whatever the number of DataLoader workers or the order;
* before any ``set_epoch`` call: seeded by ``(random_seed, index, repeat)`` plus one number
  drawn from torch's global generator, so results are reproducible after ``torch.manual_seed``
  with ``num_workers=0``, and with workers too for a fixed worker count (PyTorch seeds each
  worker from the main process's generator), and differ between epochs.

``repeat`` is the round of :class:`DatasetRepeater` (0 otherwise). With persistent DataLoader
workers a later ``set_epoch`` does not reach the workers; call it before creating the iterator.

Loading is cheap where it can be: for a frame folder only the two chosen frames are decoded; a
video file is decoded up to the later chosen frame, or decoded once and kept in a small
per-process LRU cache when it is short (``cache_bytes``, 128 MiB by default; 0 disables it).
"""

from __future__ import annotations

import csv
import math
import os
import warnings
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from fomm.data.augment import AllAugmentationTransform
from fomm.data.image_ops import normalize_frame_shape, to_float01
from fomm.data.video_io import (
    IMAGE_EXTENSIONS,
    VIDEO_EXTENSIONS,
    list_frame_files,
    probe,
    read_frames,
    read_frames_at,
)
from fomm.errors import FommError, plural

__all__ = ["FramesDataset", "DatasetRepeater", "PairedDataset", "identity_of"]


def identity_of(name: str) -> str:
    """The identity of a video named ``<identity>#...`` (the whole name when it has no '#')."""
    return os.path.basename(name).split("#")[0]


@dataclass
class _Entry:
    name: str
    path: Path
    kind: str  # 'folder' or 'file'
    num_frames: int | None
    width: int
    height: int


def _candidates(folder: Path) -> list[str]:
    """Names in ``folder`` that may be videos (no probing yet), sorted."""
    names = []
    for e in os.scandir(folder):
        if e.name.startswith("."):
            continue
        if e.is_dir():
            names.append(e.name)
        elif Path(e.name).suffix.lower() in VIDEO_EXTENSIONS | IMAGE_EXTENSIONS:
            names.append(e.name)
    return sorted(names)


def _split_80_20(names: list[str], seed: int) -> tuple[list[str], list[str]]:
    """scikit-learn's ``train_test_split(names, test_size=0.2, random_state=seed)``, sorted back."""
    n = len(names)
    n_test = math.ceil(0.2 * n)
    perm = np.random.RandomState(seed).permutation(n)
    test = sorted(names[i] for i in perm[:n_test])
    train = sorted(names[i] for i in perm[n_test:])
    return train, test


def _summary(items: list[str], limit: int = 3) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")


def _video_names(root: Path, is_train: bool, seed: int) -> tuple[Path, list[str]]:
    """The folder holding the split's videos and their names: ``root/train`` or ``root/test`` when
    either exists, else ``root`` itself split 80/20 with ``seed``."""
    if (root / "train").is_dir() or (root / "test").is_dir():
        folder = root / ("train" if is_train else "test")
        if not folder.is_dir():
            raise FommError(
                f"{root} has no '{folder.name}' folder; create {folder} with the "
                f"{'training' if is_train else 'test'} videos"
            )
        return folder, _candidates(folder)
    train, test = _split_80_20(_candidates(root), seed)
    return root, train if is_train else test


def _probe_entries(folder: Path, names: list[str], frame_shape: tuple) -> list[_Entry]:
    """Probe each video in ``folder``; skip frame-less folders silently and unreadable videos with
    one warning."""
    entries, unreadable = [], []
    for name in names:
        path = folder / name
        try:
            if path.is_dir() and not list_frame_files(path):
                continue  # a folder without frames is not a video (e.g. a notes folder)
            info = probe(path, frame_shape)
        except FommError as exc:
            unreadable.append(f"{name} ({exc})")
            continue
        entries.append(
            _Entry(name, path, "folder" if path.is_dir() else "file", info.num_frames, info.width, info.height)
        )
    if unreadable:
        warnings.warn(
            f"skipped {plural(len(unreadable), 'unreadable video')} in {folder}: {_summary(unreadable, 2)}; fix or remove them",
            UserWarning,
            stacklevel=3,
        )
    return entries


def _drop_short(entries: list[_Entry], folder: Path) -> list[_Entry]:
    """``entries`` without the videos of fewer than 2 frames (with a warning naming them)."""
    short = [e.name for e in entries if e.num_frames is not None and e.num_frames < 2]
    if not short:
        return entries
    warnings.warn(
        f"skipped {plural(len(short), 'video')} with fewer than 2 frames in {folder} "
        f"(training needs two different frames): {_summary(short)}",
        UserWarning,
        stacklevel=3,
    )
    return [e for e in entries if e.num_frames is None or e.num_frames >= 2]


def _warn_other_sizes(entries: list[_Entry], folder: Path, hw: tuple) -> None:
    """Warn once when some videos' frames are not ``hw`` = ``(H, W)`` (they are resized when loaded)."""
    h, w = hw
    other = [e for e in entries if (e.height, e.width) != (h, w)]
    if other:
        e = other[0]
        warnings.warn(
            f"{len(other)} of {plural(len(entries), 'video')} in {folder} have frames of another size than "
            f"frame_shape {w}x{h} (width x height; e.g. {e.name}: {e.width}x{e.height}); they are resized when loaded",
            UserWarning,
            stacklevel=3,
        )


class FramesDataset(Dataset):
    """Videos of ``root_dir`` in the original FOMM layout (see the module doc)."""

    def __init__(
        self,
        root_dir,
        frame_shape=(256, 256, 3),
        id_sampling: bool = False,
        is_train: bool = True,
        random_seed: int = 0,
        pairs_list=None,
        augmentation_params: Mapping | None = None,
        *,
        cache_bytes: int = 128 * 2**20,
    ):
        root = Path(root_dir)
        if not root.is_dir():
            raise FommError(f"dataset folder {root} does not exist or is not a folder; check root_dir in the config")
        self.frame_shape = tuple(normalize_frame_shape(frame_shape)) + (3,)
        if isinstance(random_seed, bool) or not isinstance(random_seed, (int, np.integer)) or random_seed < 0:
            raise FommError(f"random_seed {random_seed!r} is not an integer >= 0; use e.g. 0")
        self.random_seed = int(random_seed)
        self.id_sampling = bool(id_sampling)
        self.is_train = bool(is_train)
        self.pairs_list = pairs_list
        self.cache_bytes = max(0, int(cache_bytes))
        self._epoch: int | None = None
        self._cache: OrderedDict | None = None

        folder, names = _video_names(root, self.is_train, self.random_seed)
        self.root_dir = folder
        entries = _probe_entries(folder, names, self.frame_shape)
        if self.is_train:
            entries = _drop_short(entries, folder)
        if not entries:
            what = "training videos with at least 2 frames" if self.is_train else "videos"
            raise FommError(
                f"no {what} found in {folder}; put videos (.mp4 .gif ...), image strips or frame "
                "folders there (layout: root/train/<video>, root/test/<video>)"
            )
        _warn_other_sizes(entries, folder, self.frame_shape[:2])
        self._entries = entries

        if self.is_train and self.id_sampling:
            by_id: dict[str, list[int]] = {}
            for i, e in enumerate(entries):
                by_id.setdefault(identity_of(e.name), []).append(i)
            self.videos = sorted(by_id)
            self._by_id = [by_id[v] for v in self.videos]
        else:
            self.videos = [e.name for e in entries]
            self._by_id = None

        self.transform = None
        if self.is_train and augmentation_params:
            self.transform = AllAugmentationTransform(**augmentation_params)

    @property
    def entries(self) -> list:
        """The videos found, in order: each has ``name``, ``height`` and ``width``."""
        return list(self._entries)

    # -- pickling (DataLoader workers): the cache stays in each process

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_cache"] = None
        return state

    def set_epoch(self, epoch: int) -> None:
        """Make item randomness depend only on ``(random_seed, epoch, index)`` (module doc)."""
        self._epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.videos)

    def __getitem__(self, idx: int) -> dict:
        return self.get_item(idx)

    def _rng(self, idx: int, repeat: int) -> np.random.Generator:
        if self._epoch is None:
            extra = int(torch.randint(0, 2**62, (1,)).item())
            return np.random.default_rng([self.random_seed, 0, idx, repeat, extra])
        return np.random.default_rng([self.random_seed, 1, self._epoch, idx, repeat])

    def get_item(self, idx: int, repeat: int = 0) -> dict:
        """Item ``idx``; ``repeat`` (the :class:`DatasetRepeater` round) varies the random draws."""
        n = len(self)
        idx = int(idx)
        if idx < 0:
            idx += n
        if not 0 <= idx < n:
            raise IndexError(f"index {idx} is out of range for a dataset of {plural(n, 'item')}")
        rng = self._rng(idx, int(repeat))
        if not self.is_train:
            entry = self._entries[idx]
            video = to_float01(self._load_video(entry))
            return {"video": np.ascontiguousarray(video.transpose(3, 0, 1, 2)), "name": entry.name}
        if self._by_id is not None:
            choices = self._by_id[idx]
            entry = self._entries[choices[int(rng.integers(len(choices)))]]
        else:
            entry = self._entries[idx]
        clip = to_float01(self._load_pair(entry, rng))
        if self.transform is not None:
            clip = self.transform(clip, rng)
        return {
            "driving": np.ascontiguousarray(clip[1].transpose(2, 0, 1)),
            "source": np.ascontiguousarray(clip[0].transpose(2, 0, 1)),
            "name": entry.name,
        }

    # -- loading
    def _frame_bytes(self) -> int:
        return self.frame_shape[0] * self.frame_shape[1] * 3

    def _cache_get(self, path: Path):
        if self._cache is None or path not in self._cache:
            return None
        self._cache.move_to_end(path)
        return self._cache[path]

    def _cache_put(self, path: Path, video: np.ndarray) -> None:
        if self.cache_bytes <= 0 or video.nbytes > self.cache_bytes // 4:
            return
        if self._cache is None:
            self._cache = OrderedDict()
        self._cache[path] = video
        total = sum(v.nbytes for v in self._cache.values())
        while total > self.cache_bytes and len(self._cache) > 1:
            _, old = self._cache.popitem(last=False)
            total -= old.nbytes

    def _load_video(self, entry: _Entry) -> np.ndarray:
        """All frames of ``entry`` as uint8 ``(T, H, W, 3)`` at ``frame_shape``."""
        video = self._cache_get(entry.path)
        if video is None:
            video = read_frames(entry.path, self.frame_shape[:2])[0]
            self._cache_put(entry.path, video)
        return video

    def _load_pair(self, entry: _Entry, rng: np.random.Generator) -> np.ndarray:
        """Two different frames (earlier first) of ``entry`` as uint8 ``(2, H, W, 3)``."""
        shape = self.frame_shape[:2]
        count = entry.num_frames
        video = self._cache_get(entry.path)
        if video is None and entry.kind == "file":
            small = count is not None and count * self._frame_bytes() <= self.cache_bytes // 4
            if count is None or small:
                video = self._load_video(entry)
        if video is not None:
            count = len(video)
        if count < 2:
            raise FommError(f"{entry.path} has {plural(count, 'frame')}; training needs videos with at least 2 frames")
        idx = np.sort(rng.choice(count, size=2, replace=False))
        if video is not None:
            return video[idx]
        try:
            return read_frames_at(entry.path, idx, shape)
        except FommError:
            # The container (or folder) holds fewer frames than it said: use the real count.
            video = read_frames(entry.path, shape)[0]
            if len(video) < 2:
                raise FommError(
                    f"{entry.path} has {plural(len(video), 'frame')}; training needs videos with at least 2 frames"
                ) from None
            if idx[1] >= len(video):
                idx = np.sort(rng.choice(len(video), size=2, replace=False))
            return video[idx]


class DatasetRepeater(Dataset):
    """Pass over ``dataset`` ``num_repeats`` times per epoch (fewer, longer epochs).

    Round ``k`` of item ``i`` calls ``dataset.get_item(i, repeat=k)`` when the dataset has it, so
    each round draws different frames.
    """

    def __init__(self, dataset, num_repeats: int = 100):
        if isinstance(num_repeats, bool) or not isinstance(num_repeats, (int, np.integer)) or num_repeats < 1:
            raise FommError(f"num_repeats {num_repeats!r} is not an integer >= 1; use e.g. 100 (config: num_repeats)")
        self.dataset = dataset
        self.num_repeats = int(num_repeats)

    def set_epoch(self, epoch: int) -> None:
        if hasattr(self.dataset, "set_epoch"):
            self.dataset.set_epoch(epoch)

    def __len__(self) -> int:
        return self.num_repeats * len(self.dataset)

    def __getitem__(self, idx: int):
        n = len(self.dataset)
        idx = int(idx)
        if idx < 0:
            idx += len(self)
        if not 0 <= idx < len(self):
            raise IndexError(f"index {idx} is out of range for a dataset of {plural(len(self), 'item')}")
        if hasattr(self.dataset, "get_item"):
            return self.dataset.get_item(idx % n, repeat=idx // n)
        return self.dataset[idx % n]


def _read_pairs_csv(path, videos: list[str]) -> tuple[list[tuple[str, str]], int]:
    """``([(source, driving), ...] of known videos, number of rows skipped)``."""
    p = Path(path)
    if not p.is_file():
        raise FommError(f"pairs list {p} does not exist; check pairs_list in the config")
    try:
        with open(p, newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            fields = [f.strip() for f in (reader.fieldnames or [])]
            if "source" not in fields or "driving" not in fields:
                raise FommError(
                    f"pairs list {p} has columns {fields}, not 'source' and 'driving'; add a header "
                    "line 'source,driving' (one pair of video names per line)"
                )
            rows = [{(k or "").strip(): (v or "").strip() for k, v in row.items()} for row in reader]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise FommError(f"cannot read pairs list {p} ({exc}); pass a CSV file with columns source,driving") from None
    known = {}
    for v in videos:  # match full names, and names without extension
        known.setdefault(v, v)
        known.setdefault(os.path.splitext(v)[0], v)
    pairs, skipped = [], 0
    for row in rows:
        s, d = known.get(row["source"]), known.get(row["driving"])
        if s is None or d is None:
            skipped += 1
        else:
            pairs.append((s, d))
    return pairs, skipped


class PairedDataset(Dataset):
    """Pairs of test videos for animation: ``{'driving_video', 'driving_name', 'source_video',
    'source_name'}``, each video float32 ``(3, T, H, W)``.

    With ``initial_dataset.pairs_list`` (a CSV file with ``source,driving`` columns of video
    names; rows naming unknown videos are skipped, warned), its first ``number_of_pairs`` rows;
    otherwise, as the original, ``number_of_pairs`` distinct random ``(driving, source)`` index
    pairs among the first ``min(number_of_pairs, len(dataset))`` videos, seeded by ``seed``.
    """

    def __init__(self, initial_dataset, number_of_pairs: int, seed: int = 0):
        if (
            isinstance(number_of_pairs, bool)
            or not isinstance(number_of_pairs, (int, np.integer))
            or number_of_pairs < 1
        ):
            raise FommError(f"number_of_pairs {number_of_pairs!r} is not an integer >= 1; use e.g. 50")
        self.initial_dataset = initial_dataset
        pairs_list = getattr(initial_dataset, "pairs_list", None)
        if pairs_list is None:
            max_idx = min(int(number_of_pairs), len(initial_dataset))
            grid = np.mgrid[:max_idx, :max_idx].reshape(2, -1).T
            count = min(len(grid), int(number_of_pairs))
            chosen = np.random.RandomState(seed).choice(len(grid), count, replace=False)
            self.pairs = [(int(a), int(b)) for a, b in grid[chosen]]
        else:
            videos = list(initial_dataset.videos)
            named, skipped = _read_pairs_csv(pairs_list, videos)
            if skipped:
                warnings.warn(
                    f"{plural(skipped, 'row')} of pairs list {pairs_list} name videos that are not in the dataset; "
                    "they were skipped",
                    UserWarning,
                    stacklevel=2,
                )
            if not named:
                raise FommError(
                    f"no row of pairs list {pairs_list} names two videos of the dataset; check the names "
                    f"(e.g. {videos[0]!r})"
                )
            index = {name: i for i, name in enumerate(videos)}
            self.pairs = [(index[d], index[s]) for s, d in named[: int(number_of_pairs)]]

    def set_epoch(self, epoch: int) -> None:
        if hasattr(self.initial_dataset, "set_epoch"):
            self.initial_dataset.set_epoch(epoch)

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, idx: int) -> dict:
        driving_idx, source_idx = self.pairs[idx]
        first = self.initial_dataset[driving_idx]
        second = self.initial_dataset[source_idx]
        out = {"driving_" + k: v for k, v in first.items()}
        out.update({"source_" + k: v for k, v in second.items()})
        return out
