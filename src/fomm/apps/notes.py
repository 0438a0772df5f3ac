"""The warnings of one ``fomm app`` request, for its page: :func:`collect_notes`.

The pipeline says what it changed or dropped (a source enlarged, a driving video cropped, an
audio track dropped) with ``warnings.warn`` (``UserWarning``); the app shows these notes under
the request's result. ``warnings.catch_warnings`` cannot collect them per request: it swaps the
process-wide filters and ``warnings.showwarning`` and restores them on exit, so two requests at
once catch each other's warnings, and the one that ends last restores the other's catcher for
good (every later warning of the process then vanishes into a finished request's list).

Here the process-wide part is set once, the first time, and never undone: a ``showwarning``
that hands a user warning to the request running in the calling thread (thread-local), and
anything else to the ``showwarning`` it replaced; and a filter that shows fomm's user warnings
every time (Python's default shows each only once per line of code, so a second request would
not be told). The notes fomm gives once per process (:func:`fomm.data.image_ops.warn_once`) are
given once per request inside :func:`collect_notes`. A request runs in one thread (Gradio's
worker), the whole pipeline with it.
"""

from __future__ import annotations

import contextlib
import threading
import warnings
from collections.abc import Iterator

from fomm.data.image_ops import warn_once_scope

_MODULE = r"fomm\b"  # the modules whose user warnings are shown every time
_local = threading.local()  # .notes: the list of the request running in this thread, or None
_lock = threading.Lock()


class _Router:
    """``warnings.showwarning``: a user warning to this thread's request, if one collects."""

    def __init__(self, previous):
        self.previous = previous

    def __call__(self, message, category, filename, lineno, file=None, line=None):
        notes = getattr(_local, "notes", None)
        if notes is not None and issubclass(category, UserWarning):
            notes.append(message)
        else:
            self.previous(message, category, filename, lineno, file, line)


def _install() -> None:
    """The router and the filter, unless they are there (a ``catch_warnings`` that began before
    they were installed removes them when it ends: they are put back for the next request)."""
    with _lock:
        if not isinstance(warnings.showwarning, _Router):
            warnings.showwarning = _Router(warnings.showwarning)
        if not any(_is_ours(f) for f in warnings.filters):
            warnings.filterwarnings("always", category=UserWarning, module=_MODULE)


def _is_ours(entry) -> bool:
    action, _message, category, module, _lineno = entry
    return action == "always" and category is UserWarning and module is not None and module.pattern == _MODULE


@contextlib.contextmanager
def collect_notes() -> Iterator[list]:
    """The user warnings raised in this thread inside the block, as a list of their messages
    (fomm's in every request, not only the first, one-time notes included); other threads'
    warnings, and other categories, are shown as they would be without it."""
    _install()
    outer = getattr(_local, "notes", None)
    _local.notes = notes = []
    try:
        with warn_once_scope():
            yield notes
    finally:
        _local.notes = outer
