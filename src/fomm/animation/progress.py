"""Progress of the pipeline's long steps: a tqdm bar, a callback, or nothing."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from fomm.animation.options import Progress


class ProgressReporter:
    """One task's progress: a tqdm bar (``progress=True``), ``progress(done, total, desc)`` after
    each step (a callable), or nothing (``False``). A context manager."""

    def __init__(self, progress: Progress, total: int | None, desc: str, unit: str = "frame", leave: bool = True):
        self.callback = progress if callable(progress) else None
        self.total, self.desc, self.done = total, desc, 0
        self.bar = None
        if progress is True:
            from tqdm import tqdm

            self.bar = tqdm(total=total, desc=desc, unit=unit, dynamic_ncols=True, leave=leave)
        if self.callback is not None:
            self.callback(0, total, desc)

    def update(self, n: int = 1) -> None:
        self.done += n
        if self.bar is not None:
            self.bar.update(n)
        if self.callback is not None:
            self.callback(self.done, self.total, self.desc)

    def wrap(self, items: Iterable) -> Iterator:
        for item in items:
            yield item
            self.update(1)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def __enter__(self) -> ProgressReporter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
