"""The ``ort-reduced-build`` command line: a thin shell over the pipeline. Only this module prints."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from .._version import __version__
from ..engine.discover import discover_paths
from ..engine.pipeline import config_file_name, run
from ..errors import ConversionError, OrtReducedBuildError
from .build import add_build_parser
from .cache import add_cache_parser
from .ci import add_ci_parsers
from .common import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    add_composition_options,
    add_conversion_options,
    add_verbosity_options,
    build_request,
    report,
    say,
    summary,
)
from .options import resolve
from .size import add_size_parser
from .verify import add_verify_parser

__all__ = ["main"]

log = logging.getLogger("ort_reduced_build")


def cmd_convert(args: argparse.Namespace) -> int:
    models = discover_paths(args.paths, Path.cwd())
    type_reduction = args.type_reduction is not False and not args.globally_allowed_types
    config_path = args.config
    if config_path is None:
        only = Path(args.paths[0]) if len(args.paths) == 1 else None
        base = args.output_dir or (only if only is not None and only.is_dir() else Path.cwd())
        config_path = base / config_file_name(type_reduction)
    request = build_request(
        args,
        models,
        ort_dir=args.output_dir,
        ort_beside_source=args.output_dir is None,
        config_path=config_path,
    )
    result = run(request)
    report(args, result)
    say(args, summary(result, config_path))
    return EXIT_FAILED if result.failed else EXIT_OK


def cmd_config(args: argparse.Namespace) -> int:
    if args.check:
        return _check_config(args)
    models = discover_paths(args.paths, Path.cwd())
    result = run(build_request(args, models, config_path=args.output))
    report(args, result)
    say(args, summary(result, args.output))
    return EXIT_FAILED if result.failed else EXIT_OK


def _check_config(args: argparse.Namespace) -> int:
    """``config --check``: compare FILE with what the models give under its header's options (those given
    win); when stale, say which given option differs from the header and the command that rewrites it."""
    resolved = resolve(args, args.output)
    models = discover_paths(args.paths, Path.cwd())
    result = run(build_request(resolved.args, models))
    report(args, result)
    try:
        current = args.output.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        current = None
    if current == result.config_text:
        say(args, f"ort-reduced-build: {args.output} is up to date")
        return EXIT_OK
    for mismatch in resolved.mismatches:
        print(f"stale: {mismatch.line()}", file=sys.stderr)
    print(
        f"stale: {args.output} differs from what the models give; run: {resolved.command(args.paths, args.output)}",
        file=sys.stderr,
    )
    return EXIT_FAILED


class _PrintCmakeDir(argparse.Action):
    def __call__(self, parser: argparse.ArgumentParser, *_: object) -> None:
        from ..commands import get_cmake_dir

        try:
            print(get_cmake_dir())
        except ImportError as exc:
            parser.exit(EXIT_FAILED, f"error: {exc}\n")
        parser.exit(EXIT_OK)


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ort-reduced-build",
        description="Convert ONNX models to ORT format and write the operator config for a reduced ORT build.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument(
        "--cmakedir",
        action=_PrintCmakeDir,
        nargs=0,
        help="print the directory holding OrtReducedBuildConfig.cmake and exit",
    )
    add_verbosity_options(parser)
    sub = parser.add_subparsers(dest="verb", metavar="VERB")

    p = sub.add_parser(
        "convert",
        help=".onnx -> .ort (+ config)",
        description="Convert models to ORT format and write the merged config.",
    )
    p.add_argument("paths", nargs="+", metavar="PATH", help=".onnx files or directories (walked)")
    p.add_argument("-o", "--output-dir", type=Path, help="mirror the input tree here (default: beside sources)")
    p.add_argument("--config", type=Path, help="config path (default: DIR/required_operators_and_types.config)")
    add_conversion_options(p)
    add_composition_options(p)
    p.add_argument_group("output").add_argument(
        "--save-optimized-onnx",
        action="store_true",
        help="also write <name>.optimized.onnx at the same optimization level",
    )
    p.set_defaults(func=cmd_convert)

    p = sub.add_parser(
        "config",
        help="write the config only (cached)",
        description="Write the merged operator/type config for the models, without writing .ort files.",
    )
    p.add_argument("paths", nargs="+", metavar="PATH", help=".onnx/.ort files or directories")
    p.add_argument("-o", "--output", type=Path, required=True, help="config file to write")
    p.add_argument(
        "--check",
        action="store_true",
        help="write nothing; exit 1 if the file is stale (options not given: its header's)",
    )
    add_conversion_options(p)
    add_composition_options(p)
    p.set_defaults(func=cmd_config)
    add_ci_parsers(sub)
    add_build_parser(sub)
    add_verify_parser(sub)
    add_cache_parser(sub)
    add_size_parser(sub)
    for verb in sub.choices.values():  # -v/-q after the verb too, as pip takes them
        add_verbosity_options(verb, suffix="_after_verb")
    return parser


def run_verb(func: Callable[[argparse.Namespace], int], args: argparse.Namespace) -> int:
    """Run one verb, turning expected failures into ``error:`` lines (and, with ``--json``, an
    ``{"ok": false, "error": ...}`` object on stdout) and exit codes."""
    try:
        return func(args)
    except ConversionError as exc:
        for path, cause in exc.failures:
            print(f"error: {path}: {cause}", file=sys.stderr)
        failures = [{"model": path, "error": cause} for path, cause in exc.failures]
        _json_error(args, str(exc), failures=failures)
        return EXIT_FAILED
    except OrtReducedBuildError as exc:
        if args.verbose > 1:
            raise
        print(f"error: {exc}", file=sys.stderr)
        _json_error(args, str(exc))
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # stdout closed early, e.g. piped into head
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_FAILED


def _json_error(args: argparse.Namespace, message: str, **fields: object) -> None:
    """For a verb run with ``--json``: the error as the JSON a machine reads instead of the verb's report."""
    if getattr(args, "json", False):
        print(json.dumps({"ok": False, "error": message, **fields}, indent=2))


_KINDS = {logging.WARNING: "warning: ", logging.ERROR: "error: ", logging.CRITICAL: "error: "}


class KindFormatter(logging.Formatter):
    """A log record as the CLI prints every message: ``warning: ``/``error: `` from the record's level (code
    logs the message alone; its kind is the level)."""

    def format(self, record: logging.LogRecord) -> str:
        return _KINDS.get(record.levelno, "") + super().format(record)


def main(argv: Sequence[str] | None = None) -> int:
    parser = make_parser()
    args = parser.parse_args(argv)
    for where in ("_after_verb", "_after_action"):  # -v before and after the verb (and its action) add up
        args.verbose += vars(args).pop(f"verbose{where}", 0)
        args.quiet = vars(args).pop(f"quiet{where}", False) or args.quiet
    levels = {0: logging.WARNING, 1: logging.INFO}  # -vv: debug output, e.g. a failed conversion's traceback
    level = logging.ERROR if args.quiet else levels.get(args.verbose, logging.DEBUG)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(KindFormatter("%(message)s"))
    logging.basicConfig(level=max(level, logging.WARNING), handlers=[handler])
    log.setLevel(level)  # debug output of this package only, not of every library
    if args.verb is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    return run_verb(args.func, args)
