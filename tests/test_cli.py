"""The fomm command line: the sub-command table, lazy imports and every command's --help."""

import re
import subprocess
import sys

import pytest

from fomm.cli import COMMANDS, build_parser, main


def test_top_level_help_lists_every_command_without_importing_torch():
    code = (
        "import sys\nfrom fomm.cli import main\ntry:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "print('TORCH' if 'torch' in sys.modules else 'NO-TORCH')"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().endswith("NO-TORCH")
    for name, _, _ in COMMANDS:
        assert name in out


@pytest.mark.parametrize("name", [c[0] for c in COMMANDS])
def test_every_command_has_help_with_an_example(name, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([name, "--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    assert f"usage: fomm {name}" in text
    assert "fomm " + name in text.split("usage:", 1)[1].split("\n", 1)[1]  # an example line beyond the usage


def test_only_the_chosen_command_is_built_in_full():
    parser = build_parser(["synth", "--help"])
    sub = next(a for a in parser._actions if a.dest == "command")
    assert set(sub.choices) == {c[0] for c in COMMANDS}
    assert any(a.dest == "category" for a in sub.choices["synth"]._actions)
    assert [a.dest for a in sub.choices["animate"]._actions] == ["help"]  # listed only


def test_version(capsys):
    from importlib import metadata

    import fomm

    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    try:
        expected = metadata.version("fomm")  # the installed distribution
    except metadata.PackageNotFoundError:  # a source tree on sys.path
        expected = fomm.__version__
    assert capsys.readouterr().out.strip() == f"fomm {expected}"


def test_sub_commands_do_not_import_the_dispatcher():
    """Each command's module takes its table and argparse helpers from fomm.cli_args."""
    import importlib
    import inspect

    for module_name in {module for _, module, _ in COMMANDS}:
        source = inspect.getsource(importlib.import_module(module_name))
        body = source.split('if __name__ == "__main__"')[0]
        assert "from fomm.cli import" not in body and "import fomm.cli\n" not in body, module_name


def test_warnings_print_as_one_line_without_source(capsys):
    import argparse
    import warnings

    from fomm import cli

    def func(args):
        warnings.warn("something was squashed", UserWarning, stacklevel=1)
        return 0

    parser = argparse.ArgumentParser()
    parser.set_defaults(func=func, command="x")
    original = cli.build_parser
    try:
        cli.build_parser = lambda argv=None: parser
        assert cli.main([]) == 0
    finally:
        cli.build_parser = original
    assert capsys.readouterr().err == "fomm: warning: something was squashed\n"


def _help(argv, capsys, monkeypatch, columns: int) -> str:
    monkeypatch.setenv("COLUMNS", str(columns))  # argparse wraps to the terminal's width
    with pytest.raises(SystemExit):
        main([*argv, "--help"])
    return capsys.readouterr().out


@pytest.mark.parametrize("columns", [60, 100])
@pytest.mark.parametrize("name", ["", *dict.fromkeys(c[0] for c in COMMANDS)])
def test_help_has_one_style_that_can_be_copied(name, columns, capsys, monkeypatch):
    """No word broken at a hyphen (``vox-`` / ``cpk.pth.tar``), no reStructuredText markup, no
    argparse "(default: None)" after text that states the default; every --out says it creates folders."""
    text = _help([name] if name else [], capsys, monkeypatch, columns)
    broken = [line for line in text.splitlines() if line.rstrip()[-2:-1].isalnum() and line.rstrip().endswith("-")]
    assert not broken, broken
    assert "``" not in text and "(default: None)" not in text
    assert not re.search(r"\((\S+)\) \(default: \1\)", text)  # a default said twice
    if name in ("animate", "live", "demo", "crop", "train", "export", "evaluate", "download", "prepare"):
        entry = re.search(r"^  --out\b.*?(?=^  -|\n\n)", text, re.M | re.S)  # --out's help, to the next option
        assert entry and "created" in " ".join(entry[0].split()), entry


def test_examples_stay_on_one_line(capsys, monkeypatch):
    assert "--checkpoint vox-cpk.pth.tar --out result.mp4" in _help([], capsys, monkeypatch, 60)
    text = _help(["animate"], capsys, monkeypatch, 60)
    assert "  fomm animate --source 'photos/*.jpg' --driving talk.mp4 --checkpoint vox --out results/\n" in text
    assert "fomm demo --category puppet --out puppet-demo\n" in _help(["demo"], capsys, monkeypatch, 60)


def test_live_options_are_grouped_like_animate_and_default_to_auto(capsys, monkeypatch):
    text = _help(["live"], capsys, monkeypatch, 100)
    animate = _help(["animate"], capsys, monkeypatch, 100)
    for group in ("inputs and output:", "motion:", "running:"):
        assert group in text and group in animate
    args = build_parser(["live"]).parse_args(["live", "--source", "a.png", "--camera", "0", "--checkpoint", "m.pt"])
    assert args.device == "auto" and args.relative and args.adapt_scale


def test_opencv_s_log_lines_are_off_while_a_command_runs_unless_asked_for(monkeypatch):
    """The command's process is the CLI's: OpenCV's own lines are off during it (each problem is
    one line of ours) and the level comes back after; ``OPENCV_LOG_LEVEL`` keeps the user's."""
    import argparse

    import cv2

    from fomm import cli

    levels = []
    parser = argparse.ArgumentParser()
    parser.set_defaults(func=lambda args: levels.append(cv2.utils.logging.getLogLevel()), command="x")
    monkeypatch.setattr(cli, "build_parser", lambda argv=None: parser)
    before = cv2.utils.logging.getLogLevel()
    monkeypatch.delenv("OPENCV_LOG_LEVEL", raising=False)
    assert cli.main([]) == 0 and cv2.utils.logging.getLogLevel() == before
    monkeypatch.setenv("OPENCV_LOG_LEVEL", "WARNING")
    assert cli.main([]) == 0
    assert levels == [cv2.utils.logging.LOG_LEVEL_SILENT, before] and before != levels[0]
