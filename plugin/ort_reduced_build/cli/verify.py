"""The ``verify`` verb, and the run of the models that ends every ``build``: flags -> ``verify.run``.

A shell: it finds the library, the models (``.onnx`` converted through the cache with the options the
build's config header records) and the toolchain, then prints one line per model and a summary.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import SettingsError, VerifyError
from .common import EXIT_FAILED, EXIT_OK, non_negative_float, say
from .options import listed_path

if TYPE_CHECKING:
    from ..verify import ModelReport, Report, Target

__all__ = ["add_run_options", "add_verify_parser", "ort_models", "runnable"]


def add_verify_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "verify",
        help="run every model on the built library and compare with onnxruntime",
        description="Run every model on a built ONNX Runtime library through its C API (a small C runner, under "
        "the toolchain's emulator for a cross build) and compare every output with onnxruntime (Python). "
        "Exit 0 only when every model is ok.",
    )
    p.add_argument(
        "paths",
        nargs="*",
        type=Path,
        metavar="PATH",
        help=".ort/.onnx files or directories (default with --build-dir: the models its config lists)",
    )
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--build-dir", type=Path, metavar="DIR", help="a directory `build` (or CMake) built")
    where.add_argument("--runtime", type=Path, metavar="LIB", help="an ONNX Runtime shared library built elsewhere")
    p.add_argument("--config", type=Path, help="config whose header gives the conversion options for .onnx models")
    add_run_options(p)
    p.add_argument("--inputs", type=Path, metavar="FILE", help="TOML or JSON: per-model shapes, ranges, values, .npy")
    p.add_argument("--rtol", type=non_negative_float, default=1e-4, help="relative tolerance (default: 1e-4)")
    p.add_argument("--atol", type=non_negative_float, default=1e-5, help="absolute tolerance (default: 1e-5)")
    p.add_argument("--seed", type=int, default=0, help="seed of the generated inputs (default: 0)")
    p.add_argument("--allow-skipped", action="store_true", help="models the reference cannot run do not fail")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=cmd_verify)


def add_run_options(parser: argparse.ArgumentParser) -> None:
    """How runner programs are compiled and started (``verify`` and ``build``)."""
    parser.add_argument(
        "--emulator",
        metavar="CMD",
        help="runs target programs here, e.g. 'qemu-aarch64 -L /usr/aarch64-linux-gnu' (default: the build's "
        "CMAKE_CROSSCOMPILING_EMULATOR)",
    )
    parser.add_argument("--cc", metavar="CMD", help="C compiler for the runner (default: the build's, else cc)")
    parser.add_argument(
        "--reference-runtime",
        type=Path,
        metavar="LIB",
        help="a full ONNX Runtime library for the library's target as the reference, run like the library "
        "(default: this host's onnxruntime; kernels differ per CPU, quantized ones above all)",
    )


def cmd_verify(args: argparse.Namespace) -> int:
    from .. import verify

    inputs = verify.read_inputs_file(args.inputs) if args.inputs else verify.InputsFile()
    if args.build_dir is not None:
        library, config, emulator = _built(args.build_dir)
        target = _target(args, args.build_dir, emulator)
    else:
        if not args.runtime.is_file():
            raise SettingsError(f"{args.runtime}: no such library (--runtime)")
        library, config, target = args.runtime.resolve(), None, _target(args, None)
    config = args.config or config
    reference = _reference_runtime(args)
    with tempfile.TemporaryDirectory(prefix="ort-reduced-build-verify-") as tmp:
        models = ort_models(args.paths, config, Path(tmp))
        request = verify.VerifyRequest(
            models=tuple(models), library=library, target=target, inputs=inputs, seed=args.seed, rtol=args.rtol,
            atol=args.atol, reference_library=reference,
        )  # fmt: skip
        report = verify.run(request, None if args.json or args.quiet else _print_model)
    if args.json:
        print(json.dumps(report.to_json(args.allow_skipped), indent=2))
    for warning in report.warnings:
        say(args, f"warning: {warning}")
    say(args, _summary(report, "verify"))
    return EXIT_OK if report.ok(args.allow_skipped) else EXIT_FAILED


def runnable(
    args: argparse.Namespace, build_dir: Path, emulator: tuple[str, ...], cross: bool
) -> Callable[[Path], list[str]] | str:
    """What ``build`` runs on the library it made: the config's models (or ``--models``), each of which must
    create its session and run; output differences are shown, not failed (the ``verify`` verb is the numeric
    gate, with the user's inputs and tolerances). A string says why nothing can run here."""
    if cross and not emulator and not args.emulator:
        return "the models were not run: a cross build needs an emulator (--emulator, CMAKE_CROSSCOMPILING_EMULATOR)"

    reference = _reference_runtime(args)

    def check(library: Path) -> list[str]:
        from .. import verify

        target = _target(args, build_dir, emulator)
        with tempfile.TemporaryDirectory(prefix="ort-reduced-build-smoke-") as tmp:
            models = ort_models(args.models, args.config, Path(tmp))
            request = verify.VerifyRequest(
                models=tuple(models), library=library, target=target, reference_library=reference
            )
            report = verify.run(request, None if args.quiet else _print_model)
        say(args, _summary(report, "run of the models on"))
        failed = ("missing-kernel", "session-failed", "run-failed")
        return [f"{m.path}: {m.status}: {m.message}" for m in report.models if m.status in failed]

    return check


def _reference_runtime(args: argparse.Namespace) -> Path | None:
    reference: Path | None = args.reference_runtime
    if reference is not None and not reference.is_file():
        raise SettingsError(f"{reference}: no such library (--reference-runtime)")
    return reference.resolve() if reference else None


def _print_model(model: ModelReport) -> None:
    worst = max((o.max_abs_diff for o in model.outputs), default=None)
    detail = model.message or (f"max abs diff {worst:.3g}" if worst is not None else "")
    print(f"{model.status:<15}{model.path}" + (f": {detail}" if detail else ""), file=sys.stderr, flush=True)


def _summary(report: Report, what: str) -> str:
    from ..verify import STATUSES

    counts = {s: sum(m.status == s for m in report.models) for s in STATUSES}
    said = ", ".join(f"{n} {s}" for s, n in counts.items() if n or s == "ok")
    return f"ort-reduced-build: {what} {report.runtime}: {len(report.models)} model(s), {said}"


def _built(build_dir: Path) -> tuple[Path, Path | None, tuple[str, ...]]:
    from ..build import read_stamp

    stamp = read_stamp(build_dir)
    library = Path(str(stamp.get("library", "")))
    if not stamp or not library.is_file():
        raise VerifyError(f"{build_dir}: no library built here by ort-reduced-build (run `ort-reduced-build build`)")
    config = stamp.get("config")
    emulator = stamp.get("emulator")
    recorded = tuple(map(str, emulator)) if isinstance(emulator, list) else ()
    return library, Path(str(config)) if config else None, recorded


def _target(args: argparse.Namespace, build_dir: Path | None, recorded: tuple[str, ...] = ()) -> Target:
    """The build's compiler and emulator (CMake cache, else what ``build`` recorded), unless given."""
    from ..verify import Target, target_from_cmake_cache

    found = target_from_cmake_cache(build_dir) if build_dir is not None else Target()
    compiler = tuple(shlex.split(args.cc)) if args.cc else found.compiler
    emulator = tuple(shlex.split(args.emulator)) if args.emulator else found.emulator or recorded
    return Target(compiler, emulator, found.cross or bool(args.emulator))


def ort_models(paths: Sequence[Path], config: Path | None, work: Path) -> list[tuple[str, Path]]:
    """``(shown path, .ort file)`` for ``paths`` (default: the models ``config`` lists); ``.onnx`` models are
    converted (through the cache) into ``work`` with the options the config's header records."""
    from ..engine.config import HeaderOptions, parse_header
    from ..engine.discover import discover_paths
    from ..engine.pipeline import run
    from ..engine.request import cache_location, convert_options, make_request

    header = HeaderOptions(())
    if config is not None:
        try:
            header = parse_header(config.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError) as exc:
            raise VerifyError(f"{config}: cannot read the config: {exc}") from None
    if not paths:
        if not header.models:
            raise SettingsError("no models to run: give PATH... (the config's header lists none)")
        paths = [listed_path(m, config) for m in header.models]
    models = discover_paths(paths, Path.cwd())
    found = [(m.display, m.path) for m in models if m.is_ort]  # taken as is: the runner reports what is wrong
    sources = tuple(m for m in models if not m.is_ort)
    if sources:
        options = convert_options(header.optimization_level, header.optimization_styles, header.target_platform)
        request = make_request(sources, options, ort_dir=work, cache_dir=cache_location())
        several = len(options.optimization_styles) > 1
        found.extend(
            (f"{r.model.display} ({r.style})" if several else r.model.display, r.ort_path or r.model.path)
            for r in run(request).results
        )
    return sorted(found)
