"""The ``ort-reduced-build`` command line: a thin shell over the pipeline. Only this module prints."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from ._version import __version__
from .cache import default_cache_dir
from .config import OpsConfig, read_config
from .discover import MODEL_SUFFIXES, Model, discover_paths
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


def _is_config_file(paths: Sequence[Path]) -> bool:
    """One existing file that is not a model: a config file."""
    return len(paths) == 1 and paths[0].is_file() and paths[0].suffix.lower() not in MODEL_SUFFIXES


def _models_config(args: argparse.Namespace, paths: Sequence[Path]) -> tuple[Result, OpsConfig]:
    """Run the pipeline (cached, writing nothing) for ``paths``; the result and its composed config."""
    result = run(build_request(args, discover_paths(paths, Path.cwd())))
    _report(result)
    return result, result.config


def _emit(as_json: bool, obj: object, lines: Sequence[str]) -> None:
    """Data to stdout: JSON for machines, lines for humans."""
    print(json.dumps(obj, indent=2) if as_json else "\n".join(lines))


def cmd_check(args: argparse.Namespace) -> int:
    from .coverage import check

    config = read_config(args.config)
    report = check(config, str(args.config), build_request(args, discover_paths(args.paths, Path.cwd())))
    _emit(args.json, report.to_json_obj(), report.lines())
    verdict = "ok" if report.ok else f"{len(report.gaps)} gap(s), {len(report.invalid)} invalid model(s)"
    print(f"ort-reduced-build: check {args.config}: {len(report.models)} model(s), {verdict}", file=sys.stderr)
    if report.gaps:
        print(f"fix: ort-reduced-build config PATH... -o {args.config} (or --extra-ops FILE)", file=sys.stderr)
    return EXIT_OK if report.ok else EXIT_FAILED


def cmd_explain(args: argparse.Namespace) -> int:
    from .coverage import explain_config, explain_models, needs_by_model

    source = " ".join(str(p) for p in args.paths)
    if _is_config_file(args.paths):
        explanation = explain_config(read_config(args.paths[0]), source)
    else:
        explanation = explain_models(needs_by_model(_models_config(args, args.paths)[0].results), source)
    if args.op:
        domain, _, op = args.op.rpartition(":")
        explanation = explanation.only(domain or "ai.onnx", op)
    _emit(args.json, explanation.to_json_obj(), explanation.lines(detailed=bool(args.op)))
    if args.op and not explanation.ops:
        print(f"ort-reduced-build: nothing in {source} needs {args.op}", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


def cmd_diff(args: argparse.Namespace) -> int:
    from .compare import diff_configs

    old, new = (
        read_config(paths[0]) if _is_config_file(paths) else _models_config(args, paths)[1]
        for paths in ([args.old], args.new)
    )
    diff = diff_configs(old, new, str(args.old), " ".join(str(p) for p in args.new))
    _emit(args.json, diff.to_json_obj(), diff.lines())
    return EXIT_FAILED if args.exit_code and not diff.identical else EXIT_OK


def cmd_upgrade(args: argparse.Namespace) -> int:
    from .upgrade import upgrade_ort

    done = upgrade_ort(args.source, args.output, force=args.force)
    if not done.changed and not args.force:
        print(f"ort-reduced-build: {done.source} is already ORT format v{done.old_version}; copied unchanged")
        return EXIT_OK
    print(f"ort-reduced-build: {done.source} (ORT format v{done.old_version}) -> {done.output} (v{done.new_version})")
    print(
        f"note: saved runtime optimizations are dropped ({done.dropped_runtime_optimizations} in the source); "
        "re-convert from the .onnx with --optimization-style Runtime to keep them",
        file=sys.stderr,
    )
    return EXIT_OK


def _add_ci_verbs(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """check, explain, diff, upgrade: the verbs CI pipelines use."""
    p = sub.add_parser(
        "check",
        help="exit 1 unless FILE covers every op and type the models need",
        description="Check that a config covers every op and type each model needs (.onnx converted through "
        "the cache with the same options; .ort validated and used as is). Reports every gap at once.",
    )
    p.add_argument("paths", nargs="+", type=Path, metavar="PATH", help=".onnx/.ort files or directories")
    p.add_argument("--config", type=Path, required=True, metavar="FILE", help="the config the build uses")
    p.add_argument("--json", action="store_true", help="machine-readable report on stdout")
    add_convert_options(p)
    p.set_defaults(func=cmd_check)

    p = sub.add_parser(
        "explain",
        help="which models need which ops",
        description="Show which models need which ops and types, per-model op counts, and the ops only one "
        "model needs. Given one config FILE instead of models: its ops and types.",
    )
    p.add_argument("paths", nargs="+", type=Path, metavar="PATH|FILE", help="models, directories, or one config")
    p.add_argument("--op", metavar="DOMAIN:OP", help="only this op (DOMAIN defaults to ai.onnx), per model")
    p.add_argument("--json", action="store_true", help="machine-readable output on stdout")
    add_convert_options(p)
    p.set_defaults(func=cmd_explain)

    p = sub.add_parser(
        "diff",
        help="ops and types added/removed between two configs (or a config and models)",
        description="Compare OLD with NEW. Each side is one config file, or model files/directories whose "
        "config is computed through the pipeline (cached) with the conversion options given.",
    )
    p.add_argument("old", type=Path, metavar="OLD", help="a config file, or a model file or directory")
    p.add_argument("new", nargs="+", type=Path, metavar="NEW", help="a config file, or model files/directories")
    p.add_argument("--exit-code", action="store_true", help="exit 1 when the configs differ (CI gating)")
    p.add_argument("--json", action="store_true", help="machine-readable diff on stdout")
    add_convert_options(p)
    p.set_defaults(func=cmd_diff)

    p = sub.add_parser(
        "upgrade",
        help="re-save an old-format .ort with the installed onnxruntime",
        description="Re-save an older-format .ort file in the current ORT format. Saved runtime "
        "optimizations are dropped; re-convert from the .onnx to keep them.",
    )
    p.add_argument("source", type=Path, metavar="OLD.ort")
    p.add_argument("-o", "--output", type=Path, required=True, metavar="NEW.ort", help="may equal OLD.ort")
    p.add_argument("--force", action="store_true", help="re-save even a file already in the current format")
    p.set_defaults(func=cmd_upgrade)


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ort-reduced-build",
        description="Convert ONNX models to ORT format and write the operator config for a reduced ORT build.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
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
    _add_ci_verbs(sub)
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
    except BrokenPipeError:  # stdout closed early, e.g. piped into head
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_FAILED


def main(argv: Sequence[str] | None = None) -> int:
    parser = make_parser()
    args = parser.parse_args(argv)
    level = logging.ERROR if args.quiet else logging.INFO if args.verbose else logging.WARNING
    logging.basicConfig(level=level, format="%(message)s", stream=sys.stderr)
    if args.verb is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    return run_verb(args.func, args)
