"""The options section of docs/cli.md, generated from the argparse definitions of the command line.

``docs/cli.md`` explains the verbs in prose; its last section lists every verb's options as the parsers
define them (the drop-in's too). Regenerate it after changing an option::

    python -m ort_reduced_build.cli.reference --write

``tests/test_cli_reference.py`` fails when the committed section drifts from the parsers, and when the
prose names an option no parser has.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from pathlib import Path

__all__ = ["DOCS_PAGE", "MARKER", "markdown", "parsers"]

DOCS_PAGE = "docs/cli.md"
MARKER = "## Every option (generated)"


def parsers() -> Iterator[tuple[str, argparse.ArgumentParser]]:
    """Every command line and verb, as its usage names it: ``ort-reduced-build cache prune`` ..."""
    from . import make_parser
    from .dropin import make_parser as make_dropin_parser

    def walk(parser: argparse.ArgumentParser) -> Iterator[tuple[str, argparse.ArgumentParser]]:
        yield parser.prog, parser
        for action in _actions(parser):
            if isinstance(action, argparse._SubParsersAction):
                for sub in dict.fromkeys(action.choices.values()):  # an alias maps to the same parser
                    yield from walk(sub)

    yield from walk(make_parser())
    yield from walk(make_dropin_parser())


def markdown() -> str:
    """The generated section: from ``MARKER`` to the end of the page."""
    lines = [
        MARKER,
        "",
        "<!-- Generated from the argparse definitions by `python -m ort_reduced_build.cli.reference --write`;",
        "     tests/test_cli_reference.py checks it. -->",
        "",
        "What `--help` lists for every verb (each also takes `-h`, `--help`); the sections above say what the",
        "options do together.",
    ]
    for prog, parser in parsers():
        lines += ["", f"### `{prog}`", "", f"`{_usage(prog, parser)}`", ""]
        lines += ["| option | value | help |", "|---|---|---|"]
        for action in _actions(parser):
            if action.option_strings and not isinstance(action, argparse._HelpAction):
                names = ", ".join(f"`{name}`" for name in action.option_strings)
                lines.append(f"| {names} | {_value(action)} | {_help(action, prog)} |")
    return "\n".join(lines) + "\n"


def _actions(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    return parser._actions


def _usage(prog: str, parser: argparse.ArgumentParser) -> str:
    words = [prog, "[options]"]
    for action in _actions(parser):
        if action.option_strings:
            continue
        name = str(action.metavar or action.dest)
        if isinstance(action, argparse._SubParsersAction):
            words.append(f"{name} ...")
        elif action.nargs == "+":
            words.append(f"{name} [{name} ...]")
        elif action.nargs == "*":
            words.append(f"[{name} ...]")
        elif action.nargs == "?":
            words.append(f"[{name}]")
        else:
            words.append(name)
    return " ".join(words)


def _value(action: argparse.Action) -> str:
    """What the option takes: its choices or metavar (``VALUE ...`` for several), empty for a flag."""
    if action.nargs == 0:
        return ""
    if action.choices is not None:
        shown = "|".join(map(str, action.choices))
    else:
        shown = str(action.metavar or action.dest.upper())
    shown = "`" + shown.replace("|", "\\|") + "`" + (" ..." if action.nargs in ("+", "*") else "")
    return shown + (" (repeatable)" if isinstance(action, argparse._AppendAction) else "")


def _help(action: argparse.Action, prog: str) -> str:
    text = " ".join((action.help or "").split())
    if "%(" in text:  # argparse's own expansion: %(default)s, %(prog)s ...
        text %= {**vars(action), "prog": prog}
    return text.replace("|", "\\|")


def _write(root: Path) -> Path:
    page = root / DOCS_PAGE
    prose = page.read_text(encoding="utf-8").split(MARKER)[0].rstrip("\n")
    page.write_text(f"{prose}\n\n{markdown()}", encoding="utf-8")
    return page


if __name__ == "__main__":
    cli = argparse.ArgumentParser(description=f"Regenerate the options section of {DOCS_PAGE}.")
    cli.add_argument("--write", action="store_true", help="rewrite the section in this checkout")
    if cli.parse_args().write:
        print(_write(Path(__file__).resolve().parents[3]))
    else:
        print(markdown(), end="")
