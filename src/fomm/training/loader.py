"""Training data for ``fomm train``: the repeated dataset and a resumable, sharded batch order.

Each epoch's shuffle comes from ``seed + epoch`` (a :class:`DistributedSampler`, one shard per
process), each item's frames and augmentation from ``(seed, epoch, index)``
(``FramesDataset.set_epoch``), and a resumed epoch skips the batches already done: the batches of
a run do not depend on where it was stopped.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Sampler

from fomm.config import Config
from fomm.data.datasets import DatasetRepeater, FramesDataset
from fomm.errors import FommError


class _ListSampler(Sampler):
    def __init__(self, indices: list[int]):
        self.indices = indices

    def __iter__(self):
        return iter(self.indices)

    def __len__(self) -> int:
        return len(self.indices)


def _collate(items: list[dict]) -> dict:
    return {
        "source": torch.from_numpy(np.stack([it["source"] for it in items])),
        "driving": torch.from_numpy(np.stack([it["driving"] for it in items])),
        "name": [it.get("name", "") for it in items],
    }


def build_dataset(cfg: Config, seed: int, allow_resize: bool) -> tuple[Dataset, dict]:
    """The training dataset of ``cfg.dataset_params`` (repeated), and facts for ``run.json``."""
    dp = cfg.dataset_params
    if not dp.root_dir:
        raise FommError("no training data: pass --data DIR (or set dataset_params.root_dir in the config)")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        base = FramesDataset(
            dp.root_dir,
            frame_shape=tuple(dp.frame_shape),
            id_sampling=dp.id_sampling,
            is_train=True,
            random_seed=int(seed),
            augmentation_params=dp.augmentation_params or None,
        )
    h, w = cfg.frame_shape
    entries = base.entries
    other = [e for e in entries if (getattr(e, "height", h), getattr(e, "width", w)) != (h, w)]
    if other and not allow_resize:
        raise FommError(_size_message(other, len(entries), base.root_dir, dp.root_dir, (h, w)))
    for wmsg in caught:
        if other and allow_resize or "another size" not in str(wmsg.message):
            warnings.warn(wmsg.message, wmsg.category, stacklevel=2)
    repeats = int(cfg.train_params.num_repeats)
    dataset = DatasetRepeater(base, repeats)
    info = {
        "root_dir": str(dp.root_dir),
        "train_folder": str(base.root_dir),
        "num_videos": len(entries),
        "num_items": len(base),
        "frame_shape": list(dp.frame_shape),
        "id_sampling": bool(dp.id_sampling),
        "augmentation_params": dp.augmentation_params,
        "num_repeats": repeats,
        "resized_videos": len(other),
        "split": split_rule(dp.root_dir, base.root_dir, int(seed)),
    }
    return dataset, info


def split_rule(root, train_folder, seed: int) -> str:
    """How the training videos were chosen: the ``train`` folder, or the 80/20 rule of a folder
    without ``train``/``test`` folders (said at the start of a run: it is easy to miss)."""
    if Path(train_folder) != Path(root):
        return f"training videos: {train_folder}"
    return (
        f"{root} has no train/ and test/ folders: its videos are split 80/20 (sorted names, shuffled with "
        f"seed {seed}; the 20 % are kept for fomm evaluate); make train/ and test/ folders, as fomm prepare "
        "does, to choose"
    )


def _size_message(other: list, total: int, train_folder, root, hw: tuple[int, int]) -> str:
    """The error for videos whose frames are not the config's size: raw (non-square) videos are
    pointed to ``fomm prepare``, which crops the subject; ``--allow-resize`` would squash them."""
    h, w = hw
    e = other[0]
    what = (
        f"{len(other)} of {total} training videos in {train_folder} have frames of another size than the "
        f"config's frame_shape {w}x{h} (width x height; e.g. {e.name}: {e.width}x{e.height})"
    )
    if any(getattr(v, "height", h) != getattr(v, "width", w) for v in other):
        return (
            f"{what}; for raw videos make square clips of the subject with fomm prepare {root} --out DATA "
            f"--size {h} and train on DATA (--allow-resize would squash them to {w}x{h})"
        )
    return f"{what}; resize them to {w}x{h} (fomm prepare --size {h} does) or pass --allow-resize to resize frames when loading"


def epoch_loader(
    dataset: Dataset,
    *,
    epoch: int,
    skip_batches: int,
    seed: int,
    rank: int,
    world_size: int,
    batch_per_rank: int,
    steps_per_epoch: int,
    workers: int,
    pin_memory: bool,
) -> DataLoader:
    """The batches of this process for ``epoch``, without the first ``skip_batches`` (a resume)."""
    if hasattr(dataset, "set_epoch"):
        dataset.set_epoch(epoch)
    sampler = DistributedSampler(
        dataset, num_replicas=world_size, rank=rank, shuffle=True, seed=int(seed), drop_last=True
    )
    sampler.set_epoch(epoch)
    indices = list(sampler)[: steps_per_epoch * batch_per_rank]
    indices = indices[skip_batches * batch_per_rank :]
    return DataLoader(
        dataset,
        batch_size=batch_per_rank,
        sampler=_ListSampler(indices),
        num_workers=int(workers),
        drop_last=True,
        collate_fn=_collate,
        pin_memory=pin_memory,
        generator=torch.Generator().manual_seed(int(seed) + epoch),
        persistent_workers=False,
    )
