"""The ``cache`` verb of the command line: ``info``, ``prune``, ``clear``. Thin: logic lives in ``cache_admin``."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path

from ..engine.cache import default_cache_dir
from .common import EXIT_OK, add_verbosity_options, say

__all__ = ["add_cache_parser"]


def _root(args: argparse.Namespace) -> Path:
    return args.cache_dir or default_cache_dir()


def _waiting(args: argparse.Namespace) -> None:
    say(args, f"ort-reduced-build: waiting for the runs using {_root(args)} to end")


def cmd_cache_info(args: argparse.Namespace) -> int:
    from ..engine.cache_admin import info

    found = info(_root(args))
    print(json.dumps(found.to_json_obj(), indent=2) if args.json else "\n".join(found.lines()))
    return EXIT_OK


def cmd_cache_prune(args: argparse.Namespace) -> int:
    from ..engine.cache_admin import prune

    if args.max_size is None and args.older_than is None:
        args.parser.error("give --max-size, --older-than or both")
    removed = prune(_root(args), args.max_size, args.older_than, lambda: _waiting(args))
    if args.json:
        print(json.dumps(removed.to_json_obj(), indent=2))
    say(args, f"ort-reduced-build: cache prune: {removed.summary()}")
    return EXIT_OK


def cmd_cache_clear(args: argparse.Namespace) -> int:
    from ..engine.cache_admin import clear

    removed = clear(_root(args), lambda: _waiting(args))
    if args.json:
        print(json.dumps(removed.to_json_obj(), indent=2))
    say(args, f"ort-reduced-build: cache clear: {removed.summary()}")
    return EXIT_OK


def _typed(parse: Callable[[str], object], what: str) -> Callable[[str], object]:
    """An argparse ``type=`` from a ``cache_admin`` parser: a bad value is a usage error (exit 2)."""

    def convert(text: str) -> object:
        try:
            return parse(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    convert.__name__ = what
    return convert


def add_cache_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``cache info|prune|clear``: the conversion cache, as ``pip cache``."""
    from ..engine.cache_admin import parse_age, parse_size

    p = sub.add_parser(
        "cache",
        help="show, trim or empty the conversion cache",
        description="The conversion cache: what it holds, trimming it, emptying it. Safe while other runs use "
        "it: prune and clear wait for them to end.",
    )
    actions = p.add_subparsers(dest="cache_action", metavar="ACTION", required=True)
    for name, helptext, func in (
        ("info", "the cache dir, its entries, size, and oldest and newest use", cmd_cache_info),
        ("prune", "remove the least recently used entries", cmd_cache_prune),
        ("clear", "remove every entry", cmd_cache_clear),
    ):
        a = actions.add_parser(name, help=helptext, description=helptext[:1].upper() + helptext[1:] + ".")
        a.add_argument(
            "--cache-dir",
            type=Path,
            metavar="DIR",
            help="cache directory (default: $ORT_REDUCED_BUILD_CACHE_DIR or the user cache dir)",
        )
        a.add_argument("--json", action="store_true", help="machine-readable output on stdout")
        add_verbosity_options(a, suffix="_after_action")
        a.set_defaults(func=func, parser=a)
        if name == "prune":
            a.add_argument(
                "--max-size",
                type=_typed(parse_size, "size"),
                metavar="SIZE",
                help="remove the least recently used entries until the cache holds at most SIZE (500M, 2G, 1GiB)",
            )
            a.add_argument(
                "--older-than",
                type=_typed(parse_age, "age"),
                metavar="AGE",
                help="remove what was last used more than AGE ago (30d, 12h, 2w)",
            )
