"""User-facing errors.

Every problem caused by the user's input (a missing file, a checkpoint that fits no config, an
image of the wrong shape) is raised as :class:`FommError`. Its message is one line that names the
problem and the fix; the command-line interface prints it without a traceback and exits with
status 2.
"""


class FommError(Exception):
    """A problem with the user's input, explained in one line."""

    def __init__(self, message: str):
        super().__init__(" ".join(str(message).split("\n")))
