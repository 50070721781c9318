"""The CI verbs of the command line: check, explain, diff, upgrade. Thin: logic lives in ``inspect/``."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from ..engine.config import OpsConfig, read_config
from ..engine.discover import MODEL_SUFFIXES, discover_paths
from ..engine.pipeline import Result, run
from .common import (
    EXIT_FAILED,
    EXIT_OK,
    add_composition_options,
    add_conversion_options,
    build_request,
    report,
    say,
)
from .options import Resolved, listed_path, resolve

if TYPE_CHECKING:
    from ..inspect.explain import Explanation

__all__ = ["add_ci_parsers"]


def _is_config_file(paths: Sequence[Path]) -> bool:
    """One existing file that is not a model: a config file."""
    return len(paths) == 1 and paths[0].is_file() and paths[0].suffix.lower() not in MODEL_SUFFIXES


def _models_config(args: argparse.Namespace, paths: Sequence[Path]) -> tuple[Result, OpsConfig]:
    """Run the pipeline (cached, writing nothing) for ``paths``; the result and its composed config."""
    result = run(build_request(args, discover_paths(paths, Path.cwd())))
    report(args, result)
    return result, result.config


def _resolved(args: argparse.Namespace, config: Path) -> Resolved:
    """The options of ``config``'s header for those not given; a warning per given one that differs (the
    verdict is true for the options given: they are said, not refused)."""
    resolved = resolve(args, config)
    for mismatch in resolved.mismatches:
        say(args, f"warning: {mismatch.line()}")
    return resolved


def _emit(as_json: bool, obj: object, lines: Sequence[str]) -> None:
    """Data to stdout: JSON for machines, lines for humans (none: nothing, not an empty line)."""
    if as_json:
        print(json.dumps(obj, indent=2))
    for line in [] if as_json else lines:
        print(line)


def cmd_check(args: argparse.Namespace) -> int:
    from ..inspect.check import check

    config = read_config(args.config)
    resolved = _resolved(args, args.config)
    report = check(config, str(args.config), build_request(resolved.args, discover_paths(args.paths, Path.cwd())))
    _emit(args.json, report.to_json_obj(), report.lines())
    verdict = "ok" if report.ok else f"{len(report.gaps)} gap(s), {len(report.invalid)} invalid model(s)"
    say(args, f"ort-reduced-build: check {args.config}: {len(report.models)} model(s), {verdict}")
    if report.gaps:  # the models checked and those the config was written from, with its options
        others = [listed_path(m, args.config) for m in resolved.header.models if m not in report.models]
        paths = [*args.paths, *others]
        print(
            f"fix: {resolved.command(paths, args.config)}  (or add the missing lines to an --extra-ops FILE)",
            file=sys.stderr,
        )
    return EXIT_OK if report.ok else EXIT_FAILED


def cmd_explain(args: argparse.Namespace) -> int:
    from ..inspect.check import needs_by_model
    from ..inspect.explain import explain_config, explain_models

    source = " ".join(str(p) for p in args.paths)
    if _is_config_file(args.paths):
        explanation = explain_config(read_config(args.paths[0]), source)
    else:
        explanation = explain_models(needs_by_model(_models_config(args, args.paths)[0].results), source)
    if args.op:
        domain, _, op = args.op.rpartition(":")
        explanation = explanation.only(domain or "ai.onnx", op)
    obj, lines = explanation.to_json_obj(), explanation.lines(detailed=bool(args.op))
    if args.build_dir is not None:
        sizes, more = _sizes(explanation, args.build_dir)
        obj["sizes"] = sizes
        lines += more
    _emit(args.json, obj, lines)
    if args.op and not explanation.ops:
        print(f"ort-reduced-build: nothing in {source} needs {args.op}", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


def _sizes(explanation: Explanation, build_dir: Path) -> tuple[dict[str, object], list[str]]:
    """What each op (and each model's own ops) weighed in the last build in ``build_dir``."""
    from ..size import load_build_sizes

    report, measured, _ = load_build_sizes(build_dir)
    weights = report.op_bytes()
    ops = {u.name: weights.get(u.name) for u in explanation.ops}
    lines = [f"bytes each op's kernels took in the last build ({measured}), what dropping it saves:"]
    lines += [f"  {name}: {f'{b:,}' if b is not None else 'not in that build'}" for name, b in ops.items()]
    models = {}
    for model, only in explanation.single_model_ops().items():
        models[model] = sum(weights.get(name, 0) for name in only)
        lines.append(f"  dropping {model} saves at least {models[model]:,} bytes ({len(only)} op(s) only it needs)")
    return {"measured": measured, "ops": ops, "models": models}, lines


def cmd_diff(args: argparse.Namespace) -> int:
    from ..inspect.diff import diff_configs

    configs = [paths[0] for paths in ([args.old], args.new) if _is_config_file(paths)]
    if len(configs) == 1:  # models against a config: converted and composed with its options
        args = _resolved(args, configs[0]).args
    old, new = (
        read_config(paths[0]) if _is_config_file(paths) else _models_config(args, paths)[1]
        for paths in ([args.old], args.new)
    )
    diff = diff_configs(old, new, str(args.old), " ".join(str(p) for p in args.new))
    _emit(args.json, diff.to_json_obj(), diff.lines())
    return EXIT_FAILED if args.exit_code and not diff.identical else EXIT_OK


def cmd_upgrade(args: argparse.Namespace) -> int:
    from ..inspect.upgrade import upgrade_ort

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


def add_ci_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """check, explain, diff, upgrade: the verbs CI pipelines use."""
    p = sub.add_parser(
        "check",
        help="exit 1 unless FILE covers every op and type the models need",
        description="Check that a config covers every op and type each model needs (.onnx converted through "
        "the cache with the options the config's header records, unless given; .ort validated and used as "
        "is). Reports every gap at once.",
    )
    p.add_argument("paths", nargs="+", type=Path, metavar="PATH", help=".onnx/.ort files or directories")
    p.add_argument("--config", type=Path, required=True, metavar="FILE", help="the config the build uses")
    p.add_argument("--json", action="store_true", help="machine-readable report on stdout")
    add_conversion_options(p, allow_failures=False)  # a model that fails is reported as invalid
    p.set_defaults(func=cmd_check)

    p = sub.add_parser(
        "explain",
        help="which models need which ops",
        description="Show which models need which ops and types, per-model op counts, and the ops only one "
        "model needs. Given one config FILE instead of models: its ops and types.",
    )
    p.add_argument("paths", nargs="+", type=Path, metavar="PATH|FILE", help="models, directories, or one config")
    p.add_argument("--op", metavar="DOMAIN:OP", help="only this op (DOMAIN defaults to ai.onnx), per model")
    p.add_argument(
        "--build-dir",
        type=Path,
        metavar="DIR",
        help="also show what each op's kernels took in the last `build` there (what dropping it or a model saves)",
    )
    p.add_argument("--json", action="store_true", help="machine-readable output on stdout")
    add_conversion_options(p)
    p.set_defaults(func=cmd_explain)

    p = sub.add_parser(
        "diff",
        help="ops and types added/removed between two configs (or a config and models)",
        description="Compare OLD with NEW. Each side is one config file, or model files/directories whose "
        "config is computed through the pipeline (cached) with the options given, else those the header of "
        "the config on the other side records.",
    )
    p.add_argument("old", type=Path, metavar="OLD", help="a config file, or a model file or directory")
    p.add_argument("new", nargs="+", type=Path, metavar="NEW", help="a config file, or model files/directories")
    p.add_argument("--exit-code", action="store_true", help="exit 1 when the configs differ (CI gating)")
    p.add_argument("--json", action="store_true", help="machine-readable diff on stdout")
    add_conversion_options(p)
    add_composition_options(p)
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
