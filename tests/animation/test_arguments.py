"""fomm.animation.arguments: each option of fomm animate defined once, fomm live picking its share."""

from __future__ import annotations

from fomm.animation import arguments
from fomm.cli import build_parser

# The options fomm live shares with fomm animate (live words some of them for a camera).
SHARED = (
    "--absolute",
    "--no-adapt-scale",
    "--avd",
    "--crop",
    "--no-paste-back",
    "--color-match",
    "--crop-scale",
    "--crop-smoothing",
    "--tracker",
    "--device",
    "--backend",
    "--precision",
)


def options(command: str) -> dict:
    """The command's argparse actions by option name."""
    sub = next(a for a in build_parser([command])._actions if a.dest == "command").choices[command]
    return {name: action for action in sub._actions for name in action.option_strings}


def test_live_takes_animate_s_options_from_one_definition(monkeypatch):
    animate, live = options("animate"), options("live")
    for flag in SHARED:
        a, b = animate[flag], live[flag]
        assert (type(a), a.dest, a.default, a.choices, a.type, a.const, a.metavar) == (
            type(b),
            b.dest,
            b.default,
            b.choices,
            b.type,
            b.const,
            b.metavar,
        ), flag
    assert "--boxes-json" in animate and "--boxes-json" not in live
    assert live["--absolute"].option_strings == ["--absolute", "--no-relative"]  # the name live shows first
    assert animate["--absolute"].option_strings == ["--no-relative", "--absolute"]
    assert live["--precision"].help != animate["--precision"].help  # live's own wording

    # a change to the one definition shows in both commands
    original = arguments._running
    changed = [(names, dict(kw, default="cpu") if names == ("--device",) else kw) for names, kw in original()]
    monkeypatch.setattr(arguments, "_running", lambda: changed)
    assert options("animate")["--device"].default == options("live")["--device"].default == "cpu"
    assert options("app")["--device"].default == "cpu"  # fomm app's --device too


def test_a_picked_name_is_any_of_an_option_s_names():
    import argparse

    parser = argparse.ArgumentParser()
    arguments.add_options(parser, ("--best_frame", "--cpu"), help={"--cpu": "on the CPU"})
    assert parser.parse_args(["--best_frame", "4", "--cpu"]) == argparse.Namespace(best_frame=4, device="cpu")
    action = next(a for a in parser._actions if a.dest == "best_frame")
    assert action.option_strings == ["--best_frame", "--best-frame"]
    assert next(a for a in parser._actions if "--cpu" in a.option_strings).help == "on the CPU"
