"""The README and docs/*.md hold together: every relative link (and its #anchor) leads somewhere,
every repository path they name in backticks exists, and every ``fomm`` command they show is a
real command whose options exist; whole command lines in code blocks parse (nothing runs)."""

from __future__ import annotations

import contextlib
import importlib
import io
import re
import shlex
from functools import cache
from pathlib import Path

import pytest

from fomm.cli import build_parser
from fomm.cli_args import COMMANDS

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
NAMES = {name for name, *_ in COMMANDS}
# Backticked paths under these repository folders must exist (the root `training/` is now `experiments/`).
REPO_FOLDERS = ("experiments/", "benchmarks/", "docs/", "tests/", "src/", ".ci/")


def _ids(pages):
    return [str(p.relative_to(ROOT)) for p in pages]


def _links(text: str) -> list[str]:
    """Markdown link targets that are not URLs (``[a](docs/x.md#y)`` -> ``docs/x.md#y``)."""
    return [t for t in re.findall(r"\]\(([^)\s]+)\)", text) if not re.match(r"[a-z][a-z0-9+.-]*:", t)]


def _anchors(page: Path) -> set[str]:
    """GitHub's anchors of a page's headings: lower case, punctuation dropped, spaces to '-'."""
    headings = re.findall(r"^#+\s+(.*?)\s*$", _without_code(page.read_text()), flags=re.M)
    return {re.sub(r"[^\w\- ]", "", h.lower()).replace(" ", "-") for h in headings}


def _fences(text: str) -> tuple[list[tuple[str, list[str]]], str]:
    """The fenced code blocks as ``(language, lines)`` and the text outside them."""
    blocks: list[tuple[str, list[str]]] = []
    prose: list[str] = []
    for line in text.splitlines():
        fence = re.match(r"\s*```(\w*)", line)
        if fence and (not blocks or blocks[-1][0] != "open"):
            blocks.append(("open", [fence.group(1)]))
        elif fence:
            language, *body = blocks[-1][1]
            blocks[-1] = (language, body)
        elif blocks and blocks[-1][0] == "open":
            blocks[-1][1].append(line)
        else:
            prose.append(line)
    return [b for b in blocks if b[0] != "open"], "\n".join(prose)


def _without_code(text: str) -> str:
    return _fences(text)[1]


def _code_lines(text: str) -> list[str]:
    """Lines of the shell code blocks (no language, bash, sh, shell or console)."""
    shell = "\n".join(
        "\n".join(body) for lang, body in _fences(text)[0] if lang in ("", "bash", "sh", "shell", "console")
    )
    return [line.strip() for line in shell.replace("\\\n", " ").splitlines()]  # continued lines joined


def _command_lines(text: str) -> list[list[str]]:
    """Shell lines that run fomm (``fomm X ...``, ``torchrun ... -m fomm.cli X ...``, ``... && fomm X``),
    as argv for the ``fomm`` parser; a printed message (``fomm train: error: ...``) is not one."""
    found = []
    for line in _code_lines(text):
        if not re.search(r"\bfomm(\.cli)?\s", line):
            continue
        words = shlex.split(line.removeprefix("$ "), comments=True)
        segment: list[str] = []
        for word in [*words, "&&"]:
            if word not in ("&&", ";", "||"):
                segment.append(word)
                continue
            argv = _fomm_argv(segment)
            if argv and not argv[0].endswith(":"):
                found.append(argv)
            segment = []
    return found


def _fomm_argv(words: list[str]) -> list[str]:
    if words[:1] == ["fomm"]:
        return words[1:]
    if words[:1] in (["torchrun"], ["python"]) and "fomm.cli" in words:
        return words[words.index("fomm.cli") + 1 :]
    return []


def _spans(text: str) -> list[list[str]]:
    """Inline code naming a command (``fomm animate --crop``), split into words."""
    spans = re.findall(r"`(fomm [a-z][^`]*)`", _without_code(text))
    return [span.split()[1:] for span in spans if not span.split()[1].endswith(":")]  # not a printed message


@cache
def _options(command: str) -> frozenset[str]:
    parser = build_parser([command])
    sub = next(a for a in parser._actions if a.dest == "command")
    return frozenset(s for a in sub.choices[command]._actions for s in a.option_strings)


@pytest.mark.parametrize("page", PAGES, ids=_ids(PAGES))
def test_every_relative_link_leads_to_a_file_or_folder(page):
    broken = []
    for target in _links(page.read_text()):
        path, _, anchor = target.partition("#")
        dest = (page.parent / path).resolve() if path else page
        if not dest.exists():
            broken.append(f"{target} (no {dest.relative_to(ROOT) if dest.is_relative_to(ROOT) else dest})")
        elif anchor and dest.suffix == ".md" and anchor not in _anchors(dest):
            broken.append(f"{target} (no heading #{anchor} in {dest.name})")
    assert not broken, broken


@pytest.mark.parametrize("page", PAGES, ids=_ids(PAGES))
def test_every_repository_path_in_backticks_exists(page):
    spans = re.findall(r"`([^`\s]+)`", _without_code(page.read_text()))
    paths = [s.split("::")[0] for s in spans if s.startswith(REPO_FOLDERS) and not re.search(r"[*<>{}]", s)]
    missing = [p for p in paths if not (ROOT / p).exists()]
    assert not missing, missing
    assert not [s for s in spans if s.startswith("training/")], "the root training/ folder is experiments/ now"


@pytest.mark.parametrize("page", PAGES, ids=_ids(PAGES))
def test_every_fomm_command_shown_exists_with_its_options(page):
    text = page.read_text()
    shown = _command_lines(text) + _spans(text)
    unknown = [" ".join(argv) for argv in shown if argv[0] not in NAMES and argv[0] != "--version"]
    assert not unknown, unknown
    bad = [
        f"fomm {' '.join(argv)}: {flag}"
        for argv in shown
        if argv[0] in NAMES
        for flag in (w.split("=")[0] for w in argv[1:])
        if flag.startswith("--") and flag not in _options(argv[0])
    ]
    assert not bad, bad


@pytest.mark.parametrize("page", PAGES, ids=_ids(PAGES))
def test_every_command_line_in_a_code_block_parses(page):
    failures = []
    for argv in _command_lines(page.read_text()):
        if any("$" in word for word in argv):  # a shell variable's value is not known here
            continue
        err = io.StringIO()
        try:
            with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
                build_parser(argv).parse_args(argv)
        except SystemExit as exc:
            if exc.code:
                failures.append(f"fomm {shlex.join(argv)}: {err.getvalue().strip()}")
    assert not failures, failures


def test_the_checks_see_the_readme_commands():
    """The scanners find what they should (a regex that matched nothing would pass everything)."""
    text = (ROOT / "README.md").read_text()
    commands = {argv[0] for argv in _command_lines(text)}
    assert {"demo", "models", "animate", "live", "export", "train", "synth", "evaluate", "prepare"} <= commands
    assert any(argv[:2] == ["train", "--config"] for argv in _command_lines(text))  # the torchrun line too
    assert "docs/models.md" in _links(text)


def _resolves(dotted: str) -> bool:
    """``fomm.a.b.C`` names a module, or an attribute reached from the longest importable module."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for name in parts[cut:]:
            if not hasattr(obj, name):
                return False
            obj = getattr(obj, name)
        return True
    return False


@pytest.mark.parametrize("page", PAGES, ids=_ids(PAGES))
def test_every_python_name_shown_exists(page):
    """``fomm.animation.options.AnimateOptions`` and the like still exist after the moves."""
    names = set(re.findall(r"\b(fomm(?:\.[A-Za-z_]\w*)+)", page.read_text()))
    missing = sorted(name for name in names if not _resolves(name))
    assert not missing, missing


def test_the_readme_layout_names_files_and_folders_that_exist():
    """The README's Layout block: every ``name.py`` is a module of the package, every ``name/`` a
    folder of the package or of the repository (moves leave no stale names behind)."""
    block = (ROOT / "README.md").read_text().split("## Layout", 1)[1].split("```", 2)[1]
    package = ROOT / "src" / "fomm"
    modules = {p.name for p in package.rglob("*.py")}
    folders = {p.name for p in package.rglob("*") if p.is_dir()} | {p.name for p in ROOT.iterdir() if p.is_dir()}
    named_modules = set(re.findall(r"(?<![\w/.])([A-Za-z_]\w*\.py)\b", block))
    named_folders = set(re.findall(r"(?<![\w/.-])([A-Za-z_][\w-]*)/", block))
    assert named_modules and named_folders
    assert named_modules <= modules, sorted(named_modules - modules)
    assert named_folders <= folders, sorted(named_folders - folders)
