"""One request of ``fomm app``, without the page: the model menu, the loaded models, the animator.

:class:`Animator` runs a request: it resolves the model (the menu's choice or an upload), calls
the one animation pipeline (:func:`fomm.animation.pipeline.animate_video`) and writes the result
into a folder of its own (a random name: no other request writes there). Loaded models are kept
between requests (the last :data:`MODEL_CACHE_SIZE`, by checkpoint file; both precisions share
one). A problem with the inputs is a one-line :class:`fomm.errors.FommError`. The page and the
server are :mod:`fomm.apps.app`.
"""

from __future__ import annotations

import collections
import shutil
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path

from fomm.animation.options import AnimateOptions
from fomm.apps.notes import collect_notes
from fomm.cpu import release_memory
from fomm.errors import FommError, plural
from fomm.models.registry import cached_path, registry

BUNDLED_CHOICE = "bundled"  # the default bundled model; "bundled:<category>" picks another
GIVEN_CHOICE = "given"  # the model of ``fomm app --checkpoint`` (the default when given)
BEST_FRAME_MODES = ("first frame", "auto", "frame number")
MODEL_CACHE_SIZE = 2
RESULTS_KEPT = 8

# progress(done, total, desc): the pipeline's progress callback
ProgressFn = Callable[[int, "int | None", str], None]


# ----------------------------------------------------------------------------------------------
# One request
# ----------------------------------------------------------------------------------------------
# The options of one request: fomm animate's (the page sets some; progress is per request).
Options = AnimateOptions


def parse_best_frame(mode: str, index) -> str | int | None:
    """The pipeline's ``best_frame`` from the app's choice: None, ``'auto'`` or an index >= 0."""
    if mode == "first frame":
        return None
    if mode == "auto":
        return "auto"
    if mode != "frame number":
        raise FommError(f"unknown best-frame choice '{mode}'; use one of {', '.join(BEST_FRAME_MODES)}")
    if index is None or float(index) != int(float(index)) or int(float(index)) < 0:
        raise FommError(f"best frame number {index!r} is not a whole number >= 0; enter e.g. 0")
    return int(float(index))


def one_line(exc: BaseException) -> str:
    """An exception as one line for the error box: FommError as it is, others with their type."""
    text = " ".join(str(exc).split())
    if isinstance(exc, FommError):
        return text
    return f"unexpected error ({type(exc).__name__}): {text or 'no message'}; see the server's console"


# ----------------------------------------------------------------------------------------------
# Checkpoints
# ----------------------------------------------------------------------------------------------
def checkpoint_choices() -> list[tuple[str, str]]:
    """The model menu as (label, value): the bundled models first (the default one first, as
    ``bundled``; the others as ``bundled:<category>``), then the published checkpoints
    (:mod:`fomm.models.registry`), each marked when it still has to be downloaded."""
    choices = bundled_choices()
    for name, entry in registry().items():
        if entry.bundled:
            continue
        preset = f" ({entry.preset})" if entry.preset else ""
        todo = "" if cached_path(entry).is_file() else f": not downloaded, run fomm download {name}"
        if todo and not entry.urls:  # e.g. TPSMM's: fetched by hand
            todo = f": not here, fetch it by hand (fomm download {name} says from where)"
        choices.append((f"{name}{preset}{todo}", name))
    return choices


def bundled_choices() -> list[tuple[str, str]]:
    """(label, value) of each bundled model in this installation, the default first."""
    from fomm.bundled import BUNDLED_MODELS, bundled_categories

    return [
        (
            f"bundled: {Path(BUNDLED_MODELS[category]).stem} (no download)",
            BUNDLED_CHOICE if i == 0 else f"{BUNDLED_CHOICE}:{category}",
        )
        for i, category in enumerate(bundled_categories())
    ]


def choice_name(choice: str | None) -> str:
    """The checkpoint name a menu value stands for (``bundled:puppet`` -> ``puppet-64``)."""
    if not choice or choice == BUNDLED_CHOICE or choice.startswith(f"{BUNDLED_CHOICE}:"):
        from fomm.bundled import bundled_name

        return bundled_name((choice or "").partition(":")[2] or None)  # "" for the default model
    if choice not in registry():
        raise FommError(f"unknown model '{choice}'; pick one from the list or upload a checkpoint file")
    return choice


def resolve_checkpoint(choice: str | None, uploaded: str | None) -> Path:
    """The checkpoint to use: an uploaded file wins over the menu's choice (a name, whose file
    :func:`fomm.models.checkpoint_io.locate` finds).

    The app downloads nothing: a published checkpoint must be in the cache (``fomm download``).
    """
    if uploaded:
        return Path(uploaded)
    from fomm.models.checkpoint_io import locate

    return locate(choice_name(choice))


class ModelCache:
    """The last ``size`` loaded models, by checkpoint file (path, size, mtime), each with the notes
    its loading gave (e.g. which preset was used): every request with the model shows them, not
    only the request that loaded it.

    Precision is not part of the key: the pipeline prepares each request's inference copy
    (BatchNorm folded; bf16 or int8 for ``fast``) from the one loaded model without changing it,
    so both precisions share it and a checkpoint is held in memory once.
    """

    def __init__(self, device: str = "cpu", size: int = MODEL_CACHE_SIZE, backend: str = "torch"):
        self.device, self.backend = device, backend
        self.size = size
        self.models: collections.OrderedDict = collections.OrderedDict()
        self.notes: dict[tuple, list] = {}  # the loading notes of each model, by the same key
        self.lock = threading.Lock()

    @staticmethod
    def key(path: Path) -> tuple:
        stat = Path(path).stat()
        return (str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns)

    def get(self, path: Path, config=None):
        """The model of checkpoint ``path`` (+ ``config``), loaded once (a FommError for a bad file)."""
        return self.get_with_notes(path, config)[0]

    def get_with_notes(self, path: Path, config=None) -> tuple[object, list]:
        """``(model, the notes of its loading)``; see :meth:`get`."""
        from fomm.models.checkpoint import load_model, locate

        key = (*self.key(locate(path)), str(config))
        with self.lock:
            if key in self.models:
                self.models.move_to_end(key)
                return self.models[key], self.notes[key]
            with collect_notes() as notes:
                model = load_model(path, config=config, device=self.device, backend=self.backend)
            self.models[key], self.notes[key] = model, notes
            while len(self.models) > self.size:
                self.notes.pop(self.models.popitem(last=False)[0], None)
            return model, notes


# ----------------------------------------------------------------------------------------------
# The pipeline
# ----------------------------------------------------------------------------------------------
class Animator:
    """Runs requests: resolves the model, calls the pipeline, keeps the last results on disk."""

    def __init__(
        self, device: str = "cpu", workdir: str | Path | None = None, checkpoint=None, config=None, backend="torch"
    ):
        """``checkpoint`` (+ ``config``): the model of :data:`GIVEN_CHOICE` (``fomm app --checkpoint``:
        a file, a name, or for ``backend='onnxruntime'`` an ONNX export folder); ``backend`` runs
        every request."""
        self.models = ModelCache(device, backend=backend)
        self.given, self.config, self.backend = checkpoint, config, backend
        self.own_workdir = workdir is None
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="fomm-app-"))
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.results: collections.deque = collections.deque()
        self.lock = threading.Lock()

    def menu(self) -> tuple[list[tuple[str, str]], str]:
        """The model menu and its default: the ``--checkpoint`` model first when one was given."""
        choices = checkpoint_choices()
        if self.given is None:
            return choices, BUNDLED_CHOICE
        return [(f"given: {Path(str(self.given)).name} (fomm app --checkpoint)", GIVEN_CHOICE), *choices], GIVEN_CHOICE

    def close(self) -> None:
        """Remove the results folder (when this animator made it)."""
        if self.own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def _result_path(self, driving: Path) -> Path:
        """A new folder of its own for this request's result (a random name: no other request
        writes there, and none can guess it); the oldest beyond :data:`RESULTS_KEPT` are removed
        (by then Gradio has copied each result into its own cache, under a hash of its content)."""
        folder = Path(tempfile.mkdtemp(prefix="result-", dir=self.workdir))
        with self.lock:
            self.results.append(folder)
            old = [self.results.popleft() for _ in range(len(self.results) - RESULTS_KEPT)]
        for path in old:
            shutil.rmtree(path, ignore_errors=True)
        return folder / f"{Path(driving).stem or 'driving'}-animated.mp4"

    def animate(
        self,
        source,
        driving,
        options: AnimateOptions,
        choice: str | None = BUNDLED_CHOICE,
        uploaded: str | None = None,
        progress: ProgressFn | None = None,
    ) -> tuple[Path, str]:
        """Animate ``source`` (image path) with ``driving`` (video path); the result and a summary.

        Raises FommError for bad inputs, before anything is written.
        """
        if not source:
            raise FommError("no source photo; upload the photo to animate")
        if not driving:
            raise FommError("no driving video; upload the video whose motion to copy")
        given = choice == GIVEN_CHOICE and self.given is not None and not uploaded
        checkpoint = self.given if given else resolve_checkpoint(choice, uploaded)
        model, load_notes = self.models.get_with_notes(checkpoint, self.config if given else None)
        options = options if options.backend == self.backend else options.replace(backend=self.backend)
        from fomm.animation.pipeline import animate_video

        out = self._result_path(Path(driving))
        try:
            with collect_notes() as notes:  # this request's notes only, whatever else runs at once
                stats = animate_video(
                    source, driving, out=out, model=model, options=options, progress=progress or False
                )
        except BaseException:
            shutil.rmtree(out.parent, ignore_errors=True)
            raise
        finally:
            release_memory()  # the app lives on between jobs: give this job's frames back to the OS
        return Path(stats["out"]), summary_line(stats, [*load_notes, *notes])


def summary_line(stats: dict, notes: list) -> str:
    """What was made, plus the pipeline's warnings (each once)."""
    w, h = stats["size"]
    text = f"{plural(stats['frames'], 'frame')}, {w}x{h}, {stats['fps']:g} fps"
    if stats.get("best_frame") is not None:
        text += f", motion from frame {stats['best_frame']}"
        method = stats.get("best_frame_method")
        text += f" (chosen by {'face landmarks' if method == 'landmarks' else 'keypoints'})" if method else ""
    if stats.get("tracker"):
        text += f", face found by {stats['tracker']['driving']}"
    text += ", pasted back into the photo" if stats.get("pasted_back") else ""
    text += ", with audio" if stats.get("audio") else ""
    text += f"; {stats['frames_per_second']:.1f} frames/s"
    unique = dict.fromkeys(" ".join(str(n).split()) for n in notes)
    return "\n".join([text, *(f"note: {n}" for n in unique)])
