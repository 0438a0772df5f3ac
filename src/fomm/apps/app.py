"""``fomm app``: a local web app (Gradio) around the one animation pipeline.

Upload a source photo and a driving video, pick a model (the bundled one works with no download;
the published checkpoints known to :mod:`fomm.hub` are listed when it is installed; any
checkpoint file can be uploaded), set the options of ``fomm animate`` and get the result video
(H.264 .mp4 with the driving audio). A problem with the inputs is shown as the one-line
:class:`fomm.errors.FommError` message, never as a traceback.

The app works offline: Gradio's analytics are off (``GRADIO_ANALYTICS_ENABLED=False`` is set
before Gradio is imported), the theme uses the system's fonts (no web fonts), and server-side
rendering and share links are not used, so the page requests nothing but the local server.
Requests are served one at a time; the others wait in Gradio's queue, which shows each waiting
page its place. :mod:`fomm.apps.animator` runs each request (the model menu, the loaded models, a
result folder per request); :mod:`fomm.apps.access` has the password and upload-size options.
"""

from __future__ import annotations

import argparse
import contextlib
import inspect
import io
import logging
import os
import socket
import sys
import time
import warnings

from fomm.animation.arguments import add_options
from fomm.animation.options import DRIVING_FITS, PRECISIONS, AnimateOptions
from fomm.apps.access import (
    DEFAULT_MAX_UPLOAD,
    credentials,
    exposure_warning,
    format_size,
    parse_size,
    size_argument,
)
from fomm.apps.animator import (  # noqa: F401 (some only for callers of fomm.apps.app)
    BEST_FRAME_MODES,
    BUNDLED_CHOICE,
    GIVEN_CHOICE,
    Animator,
    ModelCache,
    Options,
    checkpoint_choices,
    one_line,
    parse_best_frame,
    resolve_checkpoint,
)
from fomm.errors import FommError, plural

DEFAULT_PORT = 7860
MAX_QUEUE = 20  # requests that may wait for their turn; more are told the queue is full
SYSTEM_FONTS = ("ui-sans-serif", "system-ui", "-apple-system", "Segoe UI", "Roboto", "sans-serif")
MONO_FONTS = ("ui-monospace", "SFMono-Regular", "Consolas", "monospace")

log = logging.getLogger(__name__)


# ----------------------------------------------------------------------------------------------
# The page
# ----------------------------------------------------------------------------------------------
def _gradio():
    """Gradio, imported with its analytics off (set before the import: it is read then)."""
    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
    try:
        import gradio
    except ImportError:
        raise FommError("fomm app needs Gradio, which is not installed; run: pip install 'fomm[app]'") from None
    return gradio


def _theme_on_launch() -> bool:
    """Gradio 6 takes the theme in ``launch()``; Gradio 5 in ``Blocks()``."""
    return "theme" in inspect.signature(_gradio().Blocks.launch).parameters


def theme():
    """Gradio's default look with the system's fonts: no web font is fetched."""
    gr = _gradio()
    return gr.themes.Default(font=list(SYSTEM_FONTS), font_mono=list(MONO_FONTS))


INTRO = (
    "# fomm: animate a photo\n"
    "Upload a **source photo** and a **driving video**; the photo moves as the video does "
    "(First Order Motion Model). The default model, the bundled face-64, is a small 64x64 face model "
    "that needs no download (so is puppet-64, for puppets); for photos of faces at 256x256, pick or "
    "upload a vox checkpoint and tick *crop*."
)


def _inputs(gr, menu: tuple[list, str]) -> dict:
    """The input components (left column), by the name of the request field they fill; ``menu``:
    the model menu and its default (:meth:`Animator.menu`)."""
    c = {}
    with gr.Row():
        c["source"] = gr.Image(
            label="Source photo",
            type="filepath",
            image_mode=None,
            format="png",
            sources=["upload", "clipboard"],
            height=260,
            elem_id="source",
        )
        c["driving"] = gr.Video(label="Driving video", sources=["upload"], height=260, elem_id="driving")
    with gr.Row(equal_height=True):
        c["choice"] = gr.Dropdown(menu[0], value=menu[1], label="Model", elem_id="model")
        c["uploaded"] = gr.File(
            label="...or a checkpoint file (used instead)",
            file_types=[".pth", ".tar", ".pt", ".ckpt"],
            elem_id="checkpoint",
        )
    with gr.Accordion("Options", open=True):
        with gr.Row():
            c["crop"] = gr.Checkbox(False, label="crop around the face", elem_id="crop")
            c["paste_back"] = gr.Checkbox(True, label="paste back into the photo (with crop)", elem_id="paste-back")
            c["color_match"] = gr.Checkbox(False, label="match colours when pasting back", elem_id="color-match")
        with gr.Row():
            c["side"] = gr.Checkbox(False, label="side by side: source | driving | result", elem_id="side-by-side")
            c["keypoints"] = gr.Checkbox(False, label="draw keypoints", elem_id="keypoints")
            c["driving_fit"] = gr.Radio(
                list(DRIVING_FITS), value="crop", label="non-square driving video", elem_id="driving-fit"
            )
        with gr.Row():
            c["relative"] = gr.Checkbox(True, label="relative motion", elem_id="relative")
            c["adapt"] = gr.Checkbox(True, label="adapt movement scale", elem_id="adapt-scale")
            c["avd"] = gr.Checkbox(False, label="AVD (TPSMM checkpoints: other identities)", elem_id="avd")
            c["precision"] = gr.Radio(
                list(PRECISIONS), value="exact", label="precision (fast: bf16 / int8)", elem_id="precision"
            )
        with gr.Row():
            c["best_mode"] = gr.Radio(
                list(BEST_FRAME_MODES), value="first frame", label="motion measured from", elem_id="best-frame"
            )
            c["best_index"] = gr.Number(
                0, label="frame number", precision=0, minimum=0, visible=False, elem_id="best-index"
            )
    c["best_mode"].change(
        lambda mode: gr.Number(visible=mode == "frame number"), c["best_mode"], c["best_index"], queue=False
    )
    return c


# The page's inputs, in the order the ``/animate`` API takes them.
INPUT_NAMES = (
    "source",
    "driving",
    "choice",
    "uploaded",
    "crop",
    "paste_back",
    "color_match",
    "side",
    "keypoints",
    "driving_fit",
    "relative",
    "adapt",
    "precision",
    "best_mode",
    "best_index",
    "avd",
)


# The inputs whose value is an uploaded file.
FILE_INPUTS = ("source", "driving", "uploaded")


def request_values(values) -> dict:
    """The page's values (in ``INPUT_NAMES`` order) by input name, each upload as its file's path.

    The request runs with Gradio's preprocessing off (``preprocess=False``): ``gr.Image`` would
    open the photo with Pillow first, so a decompression bomb got Pillow's error (a traceback in
    the console, "Error" on the page) before fomm's one decoder (header check, pixel limit,
    ``FOMM_MAX_IMAGE_PIXELS``: :func:`fomm.data.video_io.decode_image`) could say its one line.
    Gradio still moves each upload into its cache and refuses paths that are not uploads; an
    upload then arrives as its ``FileData`` dict."""
    v = dict(zip(INPUT_NAMES, values))
    for name in FILE_INPUTS:
        v[name] = v[name].get("path") if isinstance(v[name], dict) else v[name]
    return v


def upload_names(values) -> dict[str, str]:
    """Each upload's path in Gradio's cache -> the name the user's file had (for messages)."""
    v = dict(zip(INPUT_NAMES, values))
    files = (v[name] for name in FILE_INPUTS if isinstance(v[name], dict))
    return {f["path"]: f["orig_name"] for f in files if f.get("path") and f.get("orig_name")}


def user_words(text: str, names: dict[str, str]) -> str:
    """``text`` with each upload's cache path replaced by the user's file name."""
    for path, name in names.items():
        text = text.replace(path, name)
    return text


def options_from(v: dict) -> AnimateOptions:
    """The request's :class:`~fomm.animation.options.AnimateOptions` from the page's values (by input name)."""
    crop, paste_back = bool(v["crop"]), bool(v["paste_back"])
    return AnimateOptions(
        crop=crop,
        paste_back=paste_back,
        color_match=bool(v["color_match"]) and crop and paste_back,  # the box says "when pasting back"
        relative=bool(v["relative"]),
        adapt_movement_scale=bool(v["adapt"]),
        avd=bool(v.get("avd", False)),  # TPSMM's animation via disentanglement
        best_frame=parse_best_frame(v["best_mode"], v["best_index"]),
        precision=v["precision"],
        layout="side-by-side" if v["side"] else "result",
        show_keypoints=bool(v["keypoints"]),
        driving_fit=v["driving_fit"],
    )


def build_app(animator: Animator):
    """The Gradio page (a ``gr.Blocks``), calling ``animator`` for each request."""
    gr = _gradio()

    tracker = gr.Progress(track_tqdm=False)  # fomm.animation.pipeline reports through the callback below

    def run(*values, progress=tracker):
        def report(done: int, total: int | None, desc: str) -> None:
            progress((done, total), desc=desc, unit="frames")

        try:
            v = request_values(values)  # this request's values only: nothing is shared between requests
            options = options_from(v)
            out, text = animator.animate(v["source"], v["driving"], options, v["choice"], v["uploaded"], report)
        except Exception as exc:  # shown in the error box; the console keeps the traceback
            if not isinstance(exc, FommError):
                log.exception("fomm app: request failed")
            message = user_words(one_line(exc), upload_names(values))  # "photo.png", not Gradio's cache path
            return {result: None, status: "", error: gr.Textbox(value=message, visible=True)}
        return {result: str(out), status: text, error: gr.Textbox(value="", visible=False)}

    look = {} if _theme_on_launch() else {"theme": theme()}
    with gr.Blocks(title="fomm: animate a photo", delete_cache=(600, 3600), **look) as blocks:
        gr.Markdown(INTRO)
        with gr.Row():
            with gr.Column(scale=3):
                c = _inputs(gr, animator.menu())
                button = gr.Button("Animate", variant="primary", elem_id="run")
            with gr.Column(scale=2):
                error = gr.Textbox(label="Error", visible=False, interactive=False, elem_id="error")
                result = gr.Video(label="Result", interactive=False, height=400, elem_id="result")
                status = gr.Textbox(label="Result details", interactive=False, lines=2, elem_id="status")
        # inputs in a fixed order: the API (``/animate``) takes them by position, as ``INPUT_NAMES``
        inputs = [c[name] for name in INPUT_NAMES]
        # preprocess=False: the uploads reach fomm's decoder unopened (see request_values)
        button.click(run, inputs, [result, status, error], api_name="animate", concurrency_limit=1, preprocess=False)
    return blocks


# ----------------------------------------------------------------------------------------------
# Serving
# ----------------------------------------------------------------------------------------------
def _check_port(host: str, port: int) -> None:
    """A FommError when ``host:port`` cannot be bound (in use, or not this machine's address)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError as exc:
            raise FommError(
                f"cannot serve on {host}:{port} ({exc.strerror or exc}); pass another --port "
                f"(e.g. --port {port + 1}) or --host"
            ) from None


def launch(
    host: str = "127.0.0.1",
    port: int = DEFAULT_PORT,
    device: str = "cpu",
    workdir=None,
    *,
    auth: list[tuple[str, str]] | None = None,
    max_upload: int | str = DEFAULT_MAX_UPLOAD,
    max_queue: int = MAX_QUEUE,
    checkpoint=None,
    config=None,
    backend: str = "torch",
):
    """Start the app in the background; returns ``(blocks, url, animator)``. Stop with ``blocks.close()``.

    ``checkpoint`` (+ ``config``): a model to offer first (see :class:`Animator`), loaded before
    the page is served, so a bad one is one line at start; ``backend``: ``torch`` or ``onnxruntime``.
    ``auth``: ``(user, password)`` pairs that may log in (None: no login); ``max_upload``: the
    largest file one upload may be (bytes or e.g. ``"200MB"``; larger ones are refused with a
    413 and one line); ``max_queue``: requests that may wait (more are told the queue is full).
    """
    _check_port(host, port)
    max_upload = parse_size(max_upload)
    animator = Animator(device=device, workdir=workdir, checkpoint=checkpoint, config=config, backend=backend)
    if checkpoint is not None:  # its loading notes: on the console now, and on each request's page
        for note in animator.models.get_with_notes(checkpoint, config)[1]:
            warnings.warn(str(note), UserWarning, stacklevel=2)
    blocks = build_app(animator)
    # one animation at a time (concurrency 1 on the button): the others wait in Gradio's queue,
    # whose page shows each waiting user their place ("queue: 2/3") and an estimated time
    blocks.queue(max_size=max_queue, default_concurrency_limit=1)
    _, url, _ = blocks.launch(
        server_name=host,
        server_port=port,
        share=False,
        prevent_thread_lock=True,
        quiet=True,
        ssr_mode=False,
        allowed_paths=[str(animator.workdir)],
        show_error=False,
        auth=auth or None,
        auth_message="fomm: log in with the user name and password you were given" if auth else None,
        max_file_size=max_upload,
        **({"theme": theme()} if _theme_on_launch() else {}),
    )
    return blocks, url, animator


DESCRIPTION = """\
Serve a web page to animate photos: upload a source photo and a driving video,
pick a model (the bundled one needs no download) and options, get the result video.
Runs offline: the page loads nothing from the internet. Stop it with Ctrl-C.

Access: without --auth anyone who can reach the port can use this machine (its CPU or
GPU, memory and disk). The default --host 127.0.0.1 reaches only this machine; with
another --host, pass --auth (a warning says so otherwise). Passwords travel as plain
HTTP: beyond a trusted network, serve through an HTTPS reverse proxy.

Several users: one animation runs at a time; the others wait in a queue (at most
{max_queue} requests) and each waiting page shows its place in it. Each request has a
folder of its own, so users never see each other's results."""


def register(subparsers) -> argparse.ArgumentParser:
    from fomm.cli_args import summary

    parser = subparsers.add_parser(
        "app",
        help=summary("app"),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=DESCRIPTION.format(max_queue=MAX_QUEUE),
        epilog="examples:\n"
        "  fomm app                      # then open the printed URL (http://127.0.0.1:7860)\n"
        "  fomm app --port 8080 --device cuda\n"
        "  fomm app --checkpoint vox             # a downloaded model first in the menu\n"
        "  fomm app --checkpoint vox-onnx/ --backend onnxruntime   # a fomm export --format onnx folder\n"
        "  fomm app --host 0.0.0.0 --auth alice:s3cret --auth bob:pa55   # the local network, with passwords\n"
        "  fomm app --host 0.0.0.0 --auth-file users.txt --max-upload 1GB",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1, this machine)")
    parser.add_argument("--port", type=_port, default=DEFAULT_PORT, help=f"port (default: {DEFAULT_PORT})")
    add_options(parser, ("--device",))  # fomm animate's
    _model_arguments(parser)
    access = parser.add_argument_group("access")
    access.add_argument(
        "--auth",
        action="append",
        metavar="USER:PASSWORD",
        help="ask for this user and password before the page opens; repeat for more users "
        "(without it, anyone who can reach the port can use this machine)",
    )
    access.add_argument(
        "--auth-file",
        metavar="FILE",
        help="users from a file, one USER:PASSWORD per line ('#' starts a comment line); with --auth, both count",
    )
    access.add_argument(
        "--max-upload",
        type=size_argument,
        default=parse_size(DEFAULT_MAX_UPLOAD),
        metavar="SIZE",
        help=f"largest file one upload may be, e.g. 200MB, 1.5GB (default: {DEFAULT_MAX_UPLOAD}); larger "
        "ones are refused. Uploaded checkpoints count too: raise it to upload a 700 MB vox-cpk.pth.tar",
    )
    parser.set_defaults(func=run)
    return parser


def _model_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("model")
    group.add_argument(
        "--checkpoint",
        metavar="PATH_OR_NAME",
        help="a model to offer first in the menu: a checkpoint file, a bundled model (face-64, puppet-64), a "
        "name that fomm models lists, or with --backend onnxruntime a folder written by fomm export --format onnx",
    )
    group.add_argument("--config", metavar="NAME_OR_YAML", help="its config: a preset or a YAML file (rarely needed)")
    add_options(group, ("--backend",), help={"--backend": "run the networks in torch (default) or ONNX Runtime"})


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"port must be 1..65535, got {value}")
    return value


def wait_forever() -> None:
    """Sleep until Ctrl-C (the server runs in its own threads)."""
    while True:
        time.sleep(0.5)


def run(args: argparse.Namespace) -> int:
    auth = credentials(args.auth, args.auth_file)
    model = {"checkpoint": args.checkpoint, "config": args.config, "backend": args.backend}
    blocks, url, animator = launch(
        args.host, args.port, device=args.device, auth=auth, max_upload=args.max_upload, **model
    )
    shown = url.replace("0.0.0.0", "127.0.0.1") if args.host == "0.0.0.0" else url
    login = f", {plural(len(auth), 'user')} may log in" if auth else ""
    print(
        f"fomm app: serving on {shown} (uploads up to {format_size(args.max_upload)}{login}; Ctrl-C to stop)",
        flush=True,
    )
    warning = exposure_warning(args.host, args.port, auth)
    if warning:
        print(warning, file=sys.stderr, flush=True)
    try:
        wait_forever()
    except KeyboardInterrupt:
        print("fomm app: stopped", file=sys.stderr)
    finally:
        with contextlib.suppress(Exception), contextlib.redirect_stdout(io.StringIO()):
            blocks.close()  # (Gradio prints "Closing server ..."; "stopped" has said it)
        animator.close()
    return 0


if __name__ == "__main__":  # pragma: no cover
    from fomm.cli import main

    sys.exit(main(["app", *sys.argv[1:]]))
