"""User-facing errors (and :func:`plural`, for the counts in their messages).

Every problem caused by the user's input (a missing file, a checkpoint that fits no config, an
image of the wrong shape) is raised as :class:`FommError`. Its message is one line that names the
problem and the fix; the command-line interface prints it without a traceback and exits with
status 2.
"""


class FommError(Exception):
    """A problem with the user's input, explained in one line."""

    def __init__(self, message: str):
        super().__init__(" ".join(str(message).split("\n")))


def plural(count: int, word: str, words: str | None = None) -> str:
    """``count`` and the noun that agrees with it, for messages: ``plural(1, "frame")`` is
    ``"1 frame"``, ``plural(2, "frame")`` ``"2 frames"``; ``words``: an irregular plural."""
    return f"{count} {word if count == 1 else words or word + 's'}"


def format_warning_line(message, prog: str = "fomm") -> str:
    """``'<prog>: warning: <message>'`` on one line (no file name, line number or source line)."""
    return f"{prog}: warning: {' '.join(str(message).split())}"


def install_cli_warning_format(prog: str = "fomm") -> None:
    """Print every warning as one line ``fomm: warning: <message>`` on stderr, above any tqdm
    progress bar, instead of Python's default, which ends with a line of our source code.
    Meant for the command line (``fomm.cli.main`` calls it); idempotent."""
    import sys
    import warnings

    def show(message, category, filename, lineno, file=None, line=None):
        stream = file if file is not None else sys.stderr
        if stream is None:  # pythonw: no console
            return
        text = format_warning_line(message, prog)
        try:
            from tqdm import tqdm

            tqdm.write(text, file=stream)
        except Exception:  # noqa: BLE001 - a warning must never fail the command
            stream.write(text + "\n")

    warnings.showwarning = show
