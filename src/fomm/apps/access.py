"""Who may use ``fomm app`` and how much they may send it: passwords, upload sizes, the address.

The app runs models on the machine that serves it, so whoever reaches its port spends that
machine's time and memory. On 127.0.0.1 (the default) that is only this machine's users; on any
other address it is everyone on the network unless ``--auth`` asks for a password. Passwords go
over plain HTTP: beyond a trusted network, put the app behind an HTTPS reverse proxy.
"""

from __future__ import annotations

import argparse
import ipaddress
import re
from pathlib import Path

from fomm.errors import FommError, plural

DEFAULT_MAX_UPLOAD = "200MB"  # photos and driving clips fit; a 700 MB vox-cpk.pth.tar does not
_UNITS = {"": 1, "k": 1000, "m": 1000**2, "g": 1000**3}


def parse_credential(text: str, where: str = "--auth") -> tuple[str, str]:
    """``(user, password)`` from ``USER:PASSWORD`` (the password may contain ':'; neither may be
    empty). Errors never repeat the password."""
    user, sep, password = text.partition(":")
    if not sep or not user.strip() or not password:
        raise FommError(f"{where}: expected USER:PASSWORD with both parts non-empty; e.g. --auth alice:s3cret")
    return user.strip(), password


def read_auth_file(path: str | Path) -> list[tuple[str, str]]:
    """The ``USER:PASSWORD`` lines of ``path`` (blank lines and lines starting with '#' skipped)."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise FommError(f"cannot read --auth-file {path} ({exc.strerror or exc}); pass a readable file") from None
    found = [
        parse_credential(line.strip(), f"--auth-file {path} line {number}")
        for number, line in enumerate(lines, 1)
        if line.strip() and not line.lstrip().startswith("#")
    ]
    if not found:
        raise FommError(f"--auth-file {path} has no USER:PASSWORD line; add one per user")
    return found


def credentials(auth: list[str] | None, auth_file: str | Path | None) -> list[tuple[str, str]] | None:
    """Every ``(user, password)`` from ``--auth`` and ``--auth-file``; None when neither was given.
    A user named twice is an error (which password would count is not obvious)."""
    pairs = [parse_credential(text) for text in auth or []]
    if auth_file:
        pairs += read_auth_file(auth_file)
    users = [user for user, _ in pairs]
    twice = sorted({user for user in users if users.count(user) > 1})
    if twice:
        raise FommError(f"user {twice[0]!r} is given more than once in --auth / --auth-file; keep one password each")
    return pairs or None


def parse_size(text: str | int) -> int:
    """Bytes from ``200MB``, ``1.5GB``, ``500kb``, ``1000`` (bytes); 1 KB = 1000 bytes."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kmg]?b?)\s*", str(text).lower())
    if not match or float(match[1]) <= 0:
        raise FommError(f"--max-upload {text!r} is not a size; use e.g. --max-upload {DEFAULT_MAX_UPLOAD} or 1GB")
    return int(float(match[1]) * _UNITS[match[2].rstrip("b")])


def size_argument(text: str) -> int:
    """:func:`parse_size` for argparse (its error becomes argparse's one line)."""
    try:
        return parse_size(text)
    except FommError as exc:
        raise argparse.ArgumentTypeError(str(exc).partition(": ")[2] or str(exc)) from None


def format_size(size: int) -> str:
    """``200000000`` -> ``'200 MB'``, ``1500000000`` -> ``'1.5 GB'`` (3 significant digits)."""
    for unit, factor in (("GB", 1000**3), ("MB", 1000**2), ("KB", 1000)):
        if size >= factor:
            return f"{size / factor:.3g} {unit}"
    return plural(size, "byte")


def is_loopback(host: str) -> bool:
    """Whether ``host`` only reaches this machine (127.x, ::1, localhost)."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: assume it reaches the network


def exposure_warning(host: str, port: int, auth) -> str | None:
    """The one-line warning for serving beyond this machine without a password, else None."""
    if auth or is_loopback(host):
        return None
    return (
        f"fomm app: warning: listening on {host}:{port} without --auth: anyone who can reach this port "
        "can use this machine; add --auth USER:PASSWORD or --auth-file FILE"
    )
