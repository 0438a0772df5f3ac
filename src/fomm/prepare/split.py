"""Which split each source goes to, and which shard prepares it: pure functions of the paths.

Both depend only on the sources' relative paths (and the seed), never on the order of discovery,
the number of workers or which machine runs: every shard computes the same answer on its own.

* **Split**: each source gets a key, the SHA-1 of ``"<seed>/<relative path>"``; the
  ``round(test_fraction * n)`` sources with the smallest keys (at least one when there are two or
  more sources and the fraction is above 0) are the test split, the others train. A source's key
  does not change when videos are added, so adding videos moves few sources between splits.
* **Shard**: shard ``I`` of ``N`` (0-based) prepares the sources whose SHA-1 of the relative path,
  as a number, is ``I`` modulo ``N``: disjoint parts of nearly equal size.
"""

from __future__ import annotations

import hashlib
import os

from fomm.errors import FommError


def _key(text: str) -> int:
    return int(hashlib.sha1(text.encode("utf-8")).hexdigest(), 16)


def num_test(n: int, test_fraction: float) -> int:
    """How many of ``n`` sources are the test split."""
    if n < 2 or test_fraction <= 0:
        return 0
    return min(n - 1, max(1, round(test_fraction * n)))


def assign_splits(rels: list[str], test_fraction: float, seed: int) -> dict[str, str]:
    """``{relative path: "train" | "test"}`` (see the module docstring)."""
    ranked = sorted(rels, key=lambda rel: (_key(f"{seed}/{rel}"), rel))
    test = set(ranked[: num_test(len(rels), test_fraction)])
    return {rel: "test" if rel in test else "train" for rel in rels}


def in_shard(rel: str, shard: tuple[int, int]) -> bool:
    index, count = shard
    return _key(rel) % count == index


def parse_shard(text: str | None, environ: dict | None = None) -> tuple[int, int]:
    """``(I, N)`` from ``"I/N"``; without it from ``SLURM_ARRAY_TASK_ID`` and
    ``SLURM_ARRAY_TASK_COUNT`` (the ID counted from ``SLURM_ARRAY_TASK_MIN``, 0 when unset);
    ``(0, 1)`` when neither is given."""
    env = os.environ if environ is None else environ
    if text is None:
        if "SLURM_ARRAY_TASK_ID" not in env or "SLURM_ARRAY_TASK_COUNT" not in env:
            return (0, 1)
        try:
            index = int(env["SLURM_ARRAY_TASK_ID"]) - int(env.get("SLURM_ARRAY_TASK_MIN", "0") or 0)
            count = int(env["SLURM_ARRAY_TASK_COUNT"])
        except ValueError:
            raise FommError(
                "SLURM_ARRAY_TASK_ID / SLURM_ARRAY_TASK_COUNT are not whole numbers; pass --shard I/N"
            ) from None
        where = "SLURM_ARRAY_TASK_ID/SLURM_ARRAY_TASK_COUNT"
    else:
        try:
            index, count = (int(part) for part in text.split("/"))
        except ValueError:
            raise FommError(f"--shard {text!r} is not I/N; use e.g. --shard 0/4 (the first of 4 parts)") from None
        where = f"--shard {text}"
    if count < 1 or not 0 <= index < count:
        raise FommError(f"{where} gives part {index} of {count}; parts are numbered 0 to N-1, e.g. --shard 0/4")
    return (index, count)
