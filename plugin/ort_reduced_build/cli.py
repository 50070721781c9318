"""The ``ort-reduced-build`` command line: a thin shell over the pipeline. Only this module prints."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from ._cli_build import add_build_parser
from ._version import __version__
from .cache import default_cache_dir
from .discover import Model, discover_paths
from .errors import ConversionError, OrtReducedBuildError, SettingsError
from .pipeline import Request, Result, config_file_name, run
from .settings import OPTIMIZATION_LEVELS, OPTIMIZATION_STYLES, TARGET_PLATFORMS, ConvertOptions

__all__ = ["main"]

log = logging.getLogger("ort_reduced_build")
EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def add_convert_options(parser: argparse.ArgumentParser) -> None:
    """Options shared by every verb that converts models."""
    g = parser.add_argument_group("conversion")
    g.add_argument(
        "--optimization-level",
        choices=OPTIMIZATION_LEVELS,
        default="all",
        help="graph optimization level (default: all)",
    )
    g.add_argument(
        "--optimization-style",
        choices=OPTIMIZATION_STYLES,
        action="append",
        dest="styles",
        help="Fixed (default) and/or Runtime; repeat for both",
    )
    g.add_argument(
        "--target-platform",
        choices=TARGET_PLATFORMS,
        help="amd64 keeps the NCHWc layout optimizer; arm allows int8 QDQ",
    )
    g.add_argument(
        "--custom-op-library",
        type=Path,
        action="append",
        default=[],
        metavar="LIB",
        help="shared library with custom-op kernels (repeatable; trusted code)",
    )
    g.add_argument(
        "--type-reduction",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="record per-op types in the config (default: on)",
    )
    g.add_argument(
        "--extra-ops",
        type=Path,
        action="append",
        default=[],
        metavar="FILE",
        help="config lines to add, e.g. ops inside custom ops or Memcpy for other EPs",
    )
    g.add_argument(
        "--merge",
        type=Path,
        action="append",
        default=[],
        metavar="CONFIG",
        help="another config to compose into the result",
    )
    g.add_argument(
        "--globally-allowed-types", metavar="T,...", help="one type list for every op instead of per-op types"
    )
    g.add_argument(
        "--save-optimized-onnx",
        action="store_true",
        help="also write <name>.optimized.onnx at the same optimization level",
    )
    r = parser.add_argument_group("execution")
    r.add_argument("-j", "--jobs", type=int, help="worker processes (default: CPU count)")
    r.add_argument("--timeout", type=float, metavar="SECONDS", help="per-model conversion time limit")
    r.add_argument(
        "--cache-dir",
        type=Path,
        help="cache directory (default: $ORT_REDUCED_BUILD_CACHE_DIR or the user cache dir)",
    )
    r.add_argument("--no-cache", action="store_true", help="convert everything, store nothing")
    r.add_argument(
        "--allow-conversion-failures",
        action="store_true",
        help="finish, list failures and write the config for the other models",
    )


def build_request(args: argparse.Namespace, models: Sequence[Model], **outputs: object) -> Request:
    """A pipeline ``Request`` from parsed arguments."""
    if args.globally_allowed_types and args.type_reduction:
        raise SettingsError("--globally-allowed-types and --type-reduction are mutually exclusive")
    global_types = None
    if args.globally_allowed_types:
        global_types = frozenset(t.strip() for t in args.globally_allowed_types.split(",") if t.strip())
        _check_global_types(global_types)
    if args.jobs is not None and args.jobs < 1:
        raise SettingsError("--jobs must be at least 1")
    options = ConvertOptions(
        optimization_level=args.optimization_level,
        optimization_styles=tuple(dict.fromkeys(args.styles or ["Fixed"])),
        target_platform=args.target_platform,
        custom_op_libraries=tuple(p.resolve() for p in args.custom_op_library),
        save_optimized_onnx=args.save_optimized_onnx,
    )
    extra: dict[str, object] = {"jobs": args.jobs} if args.jobs else {}
    return Request(
        models=tuple(models),
        root=Path.cwd(),
        options=options,
        type_reduction=args.type_reduction is not False and global_types is None,
        extra_configs=tuple(args.extra_ops + args.merge),
        globally_allowed_types=global_types,
        cache_dir=None if args.no_cache else (args.cache_dir or default_cache_dir()),
        timeout=args.timeout,
        allow_failures=args.allow_conversion_failures,
        verbose=args.verbose > 0,
        **outputs,  # type: ignore[arg-type]
        **extra,  # type: ignore[arg-type]
    )


def _check_global_types(types: frozenset[str]) -> None:
    from onnxruntime.tools.ort_format_model.types import FbsTypeInfo  # type: ignore[import-untyped]

    valid = set(FbsTypeInfo.tensordatatype_to_string.values())
    if not types or not types <= valid:
        bad = ", ".join(sorted(types - valid)) or "(empty)"
        raise SettingsError(f"--globally-allowed-types: unknown type(s) {bad}; valid: {', '.join(sorted(valid))}")


def _summary(result: Result, config_path: Path | None) -> str:
    models = len({r.model.path for r in result.results})
    where = f" -> {config_path}" if config_path else ""
    return (
        f"ort-reduced-build: {models} model(s), {result.converted} converted, {result.cached} cached, "
        f"{len(result.failed)} failed, {result.config.op_count()} ops{where}"
    )


def _report(result: Result) -> None:
    for r in result.failed:
        print(f"failed: {r.model.display} ({r.style}): {r.error}", file=sys.stderr)
    for w in result.warnings:
        print(f"warning: {w}", file=sys.stderr)


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
    _report(result)
    print(_summary(result, config_path), file=sys.stderr)
    return EXIT_FAILED if result.failed else EXIT_OK


def cmd_config(args: argparse.Namespace) -> int:
    models = discover_paths(args.paths, Path.cwd())
    request = build_request(args, models, config_path=None if args.check else args.output)
    result = run(request)
    _report(result)
    if args.check:
        try:
            current = args.output.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            current = None
        if current != result.config_text:
            print(
                f"stale: {args.output} differs from what the models give; "
                f"run: ort-reduced-build config ... -o {args.output}",
                file=sys.stderr,
            )
            return EXIT_FAILED
        print(f"ort-reduced-build: {args.output} is up to date", file=sys.stderr)
        return EXIT_OK
    print(_summary(result, args.output), file=sys.stderr)
    return EXIT_FAILED if result.failed else EXIT_OK


class _PrintCmakeDir(argparse.Action):
    def __call__(self, parser: argparse.ArgumentParser, *_: object) -> None:
        from .commands import get_cmake_dir

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
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more output (-vv: tracebacks)")
    parser.add_argument("-q", "--quiet", action="store_true", help="errors only")
    sub = parser.add_subparsers(dest="verb", metavar="VERB")

    p = sub.add_parser(
        "convert",
        help=".onnx -> .ort (+ config)",
        description="Convert models to ORT format and write the merged config.",
    )
    p.add_argument("paths", nargs="+", metavar="PATH", help=".onnx files or directories (walked)")
    p.add_argument("-o", "--output-dir", type=Path, help="mirror the input tree here (default: beside sources)")
    p.add_argument("--config", type=Path, help="config path (default: DIR/required_operators_and_types.config)")
    add_convert_options(p)
    p.set_defaults(func=cmd_convert)

    p = sub.add_parser(
        "config",
        help="write the config only (cached)",
        description="Write the merged operator/type config for the models, without writing .ort files.",
    )
    p.add_argument("paths", nargs="+", metavar="PATH", help=".onnx/.ort files or directories")
    p.add_argument("-o", "--output", type=Path, required=True, help="config file to write")
    p.add_argument("--check", action="store_true", help="write nothing; exit 1 if the file is stale")
    add_convert_options(p)
    p.set_defaults(func=cmd_config)
    add_build_parser(sub)
    return parser


def run_verb(func: Callable[[argparse.Namespace], int], args: argparse.Namespace) -> int:
    """Run one verb, turning expected failures into ``error:`` lines and exit codes."""
    try:
        return func(args)
    except ConversionError as exc:
        for path, cause in exc.failures:
            print(f"error: {path}: {cause}", file=sys.stderr)
        return EXIT_FAILED
    except OrtReducedBuildError as exc:
        if args.verbose > 1:
            raise
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130


def main(argv: Sequence[str] | None = None) -> int:
    parser = make_parser()
    args = parser.parse_args(argv)
    level = logging.ERROR if args.quiet else logging.INFO if args.verbose else logging.WARNING
    logging.basicConfig(level=level, format="%(message)s", stream=sys.stderr)
    if args.verb is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    return run_verb(args.func, args)
