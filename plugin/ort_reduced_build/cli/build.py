"""The ``build`` verb of the command line: flags -> ``BuildRequest`` -> ``build.run``, then the size report.

A shell like ``cli``: it validates flags, prints, and leaves every build.py decision to ``build``.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import BuildError, SettingsError
from ..settings.model import ANDROID_ABIS, APPLE_ARCHS, MINIMAL_BUILDS
from .common import positive_int
from .verify import add_run_options, runnable

if TYPE_CHECKING:
    from ..build import BuildRequest, BuildResult
    from ..size import SizeReport
    from ..util.compiler_cache import CompilerCache

__all__ = ["add_build_parser"]

EXIT_OK = 0


def _path(value: str) -> Path | None:
    """A path flag; an empty value (e.g. an unset variable in a script) means "not given"."""
    return Path(value) if value else None


def _env_path(*names: str) -> Path | None:
    value = next((os.environ[n] for n in names if os.environ.get(n)), None)
    return Path(value) if value else None


def add_build_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The ``build`` verb: a minimal ONNX Runtime for a config (logic in ``build.py``)."""
    p = sub.add_parser(
        "build",
        help="build a minimal ONNX Runtime with only the config's kernels",
        description="Run ONNX Runtime's tools/ci_build/build.py for a minimal, reduced-operator build of the "
        "config, then report the library size. Arguments after -- go to build.py.",
    )
    p.add_argument(
        "--ort-source",
        type=_path,
        default=_env_path("ORT_SOURCE_DIR"),
        metavar="DIR",
        help="ONNX Runtime source tree (default: $ORT_SOURCE_DIR)",
    )
    p.add_argument("--config", type=_path, required=True, help="the operator config to build for")
    p.add_argument(
        "--build-dir",
        type=_path,
        default=Path("build", "ort-minimal"),
        metavar="DIR",
        help="build directory (default: build/ort-minimal)",
    )
    p.add_argument(
        "--deps-dir",
        type=_path,
        default=_env_path("ORT_DEPS_DIR"),
        metavar="DIR",
        help="ORT dependency sources named as in its cmake/deps.txt, for air-gapped builds (default: $ORT_DEPS_DIR)",
    )
    p.add_argument(
        "--minimal-build",
        choices=MINIMAL_BUILDS,
        default="basic",
        help="extended adds runtime optimizations and EP kernel compilation (default: basic)",
    )
    p.add_argument(
        "--type-reduction",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="keep only the types the config lists per op (default: on)",
    )
    p.add_argument(
        "--extra-type-reduction",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also leave out the typed kernels of ops ORT's type reduction keeps whole (ai.onnx.ml, most contrib "
        "ops) for types on none of their nodes, as the config's '# graph types' lines record them (default: on)",
    )
    p.add_argument(
        "--lto",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="link-time optimization, for a smaller library (default: on)",
    )
    p.add_argument(
        "--no-exceptions",
        dest="exceptions",
        action="store_false",
        help="build.py --disable_exceptions, as ORT's mobile builds: smaller, but ORT's errors abort the process "
        "instead of returning an OrtStatus",
    )
    p.add_argument("-j", "--jobs", type=positive_int, help="parallel compile jobs (default: all CPUs)")
    p.add_argument("--cmake", type=_path, help="CMake for ORT (default: the one beside this Python, else PATH)")
    _add_cache_options(p)
    p.add_argument("--baseline", type=_path, metavar="LIB|DIR", help="library or build dir to compare the size with")
    p.add_argument(
        "--models",
        nargs="+",
        type=Path,
        default=[],
        metavar="PATH",
        help="models to run on the built library (default: those the config's header lists)",
    )
    p.add_argument(
        "--no-verify",
        dest="verify",
        action="store_false",
        help="do not run the models on the built library (the build is then reported as not run)",
    )
    add_run_options(p)
    _add_cross_options(p)
    m = p.add_mutually_exclusive_group()
    m.add_argument("--dry-run", action="store_true", help="print the build.py command line and stop")
    m.add_argument("--describe", action="store_true", help="print library path and headers as JSON (for CMake)")
    p.add_argument("build_args", nargs="*", metavar="-- BUILD_PY_ARG", help="more build.py arguments")
    p.set_defaults(func=cmd_build)


def _add_cache_options(parser: argparse.ArgumentParser) -> None:
    c = parser.add_argument_group("Compiler cache")
    c.add_argument(
        "--compiler-cache",
        choices=("ccache", "sccache", "none"),
        help="run the compiles through this cache, set up so other build directories reuse its objects "
        "(default: ccache when installed)",
    )
    c.add_argument(
        "--compiler-cache-remote",
        metavar="URL",
        help="the cache's remote storage, shared by several machines: redis://HOST:PORT, http://HOST/PATH, ...",
    )
    c.add_argument(
        "--compiler-launcher",
        action="append",
        default=[],
        metavar="[LANG=]TOOL",
        help="the compiler launcher of C and CXX, or of one language (repeatable; overrides --compiler-cache's)",
    )


def _add_cross_options(parser: argparse.ArgumentParser) -> None:
    """A generic toolchain file, Android and iOS: build.py's cross-compiling flags, with the usual defaults."""
    t = parser.add_argument_group("Other targets (a CMake toolchain file)")
    t.add_argument("--toolchain-file", type=_path, metavar="FILE", help="CMake toolchain file, e.g. for aarch64 Linux")
    t.add_argument(
        "--protoc",
        type=_path,
        metavar="PATH",
        help="host protoc for the cross build, matching ORT's protobuf (default: the deps dir's, else PATH's)",
    )
    a = parser.add_argument_group("Android")
    a.add_argument("--android", action="store_true", help="cross-compile for Android")
    a.add_argument(
        "--android-ndk",
        type=_path,
        default=_env_path("ANDROID_NDK_HOME", "ANDROID_NDK_ROOT"),
        help="NDK (default: $ANDROID_NDK_HOME or $ANDROID_NDK_ROOT)",
    )
    a.add_argument(
        "--android-sdk",
        type=_path,
        default=_env_path("ANDROID_SDK_ROOT", "ANDROID_HOME"),
        help="SDK (default: $ANDROID_SDK_ROOT or $ANDROID_HOME)",
    )
    a.add_argument("--android-abi", choices=ANDROID_ABIS, default="arm64-v8a")
    a.add_argument("--android-api", type=positive_int, default=27, help="minimum API level (default: 27)")
    a.add_argument("--android-cpp-shared", action="store_true", help="link libc++ shared (c++_shared)")
    i = parser.add_argument_group("iOS (macOS host)")
    i.add_argument("--ios", action="store_true", help="cross-compile for iOS")
    i.add_argument("--apple-sysroot", default="iphoneos", help="iphoneos or iphonesimulator (default: iphoneos)")
    i.add_argument("--osx-arch", choices=APPLE_ARCHS, default="arm64")
    i.add_argument("--apple-deploy-target", metavar="VERSION", help="minimum iOS version (required with --ios)")


def _build_request(args: argparse.Namespace) -> BuildRequest:
    from ..build import OWNED_FLAGS, AndroidTarget, AppleTarget, BuildRequest  # imported by this verb only

    if args.ort_source is None:
        raise SettingsError("--ort-source is required (or set ORT_SOURCE_DIR)")
    if args.config is None:
        raise SettingsError("--config is required")
    owned = sorted(set(args.build_args) & set(OWNED_FLAGS))
    if owned:
        raise SettingsError(f"build.py arguments {', '.join(owned)} are set by ort-reduced-build; drop them")
    if sum(map(bool, (args.android, args.ios, args.toolchain_file))) > 1:
        raise SettingsError("--android, --ios and --toolchain-file are exclusive")
    for flag, path in (("--toolchain-file", args.toolchain_file), ("--protoc", args.protoc)):
        if path is not None and not path.is_file():
            raise SettingsError(f"{path}: no such file ({flag})")
    android = apple = None
    if args.android:
        if args.android_ndk is None or args.android_sdk is None:
            what = (
                "--android-ndk (or ANDROID_NDK_HOME)"
                if args.android_ndk is None
                else "--android-sdk (or ANDROID_SDK_ROOT)"
            )
            raise SettingsError(f"--android needs {what}: ONNX Runtime's build.py requires the NDK and the SDK")
        for path in (args.android_ndk, args.android_sdk):
            if not path.is_dir():
                raise SettingsError(f"{path}: no such directory (Android NDK/SDK)")
        android = AndroidTarget(
            args.android_ndk.resolve(),
            args.android_sdk.resolve(),
            args.android_abi,
            args.android_api,
            args.android_cpp_shared,
        )
    if args.ios:
        if not args.apple_deploy_target:
            raise SettingsError("--ios needs --apple-deploy-target (the minimum iOS version, e.g. 15.1)")
        apple = AppleTarget(args.apple_deploy_target, args.apple_sysroot, args.osx_arch)
    if args.deps_dir is not None and not args.deps_dir.is_dir():
        raise SettingsError(f"{args.deps_dir}: dependency directory not found (--deps-dir / ORT_DEPS_DIR)")
    launchers, cache = _compiler_cache(args)
    return BuildRequest(
        ort_source=args.ort_source.resolve(),
        config=args.config.resolve(),
        build_dir=args.build_dir.resolve(),
        minimal_build=args.minimal_build,
        type_reduction=args.type_reduction,
        extra_type_reduction=args.extra_type_reduction,
        lto=args.lto,
        exceptions=args.exceptions,
        deps_dir=args.deps_dir.resolve() if args.deps_dir else None,
        android=android,
        apple=apple,
        toolchain_file=args.toolchain_file.resolve() if args.toolchain_file else None,
        protoc=args.protoc.resolve() if args.protoc else None,
        emulator=tuple(shlex.split(args.emulator)) if args.emulator else (),
        compiler_launchers=launchers,
        compiler_cache=cache,
        cmake=args.cmake.resolve() if args.cmake else None,
        jobs=args.jobs,
        extra_args=tuple(args.build_args),
    )


def _compiler_cache(args: argparse.Namespace) -> tuple[tuple[tuple[str, str], ...], CompilerCache | None]:
    """The launchers and the cache: ``--compiler-cache`` (default: ccache if installed, unless launchers are
    given) for C and CXX, each ``--compiler-launcher`` over it; a launcher that names ccache or sccache
    picks that cache."""
    from ..util.compiler_cache import CompilerCache, find, named_tool, remote_problem

    explicit = _launchers(args.compiler_launcher)
    named = sorted({tool for launcher in explicit.values() if (tool := named_tool(launcher))})
    choice = args.compiler_cache
    if len(named) > 1:
        raise SettingsError("--compiler-launcher names both ccache and sccache: one compiler cache per build")
    if named and choice not in (None, "none", named[0]):
        raise SettingsError(f"--compiler-launcher names {named[0]} but --compiler-cache is {choice}")
    if choice is None:
        choice = named[0] if named else "none" if explicit or find("ccache") is None else "ccache"
    remote = args.compiler_cache_remote or None
    if remote and choice == "none":
        raise SettingsError("--compiler-cache-remote needs a compiler cache: --compiler-cache ccache or sccache")
    if remote and (problem := remote_problem(choice, remote)):
        raise SettingsError(f"--compiler-cache-remote: {problem}")
    launchers: dict[str, str] = {}
    if choice != "none" and not named:
        executable = find(choice)
        if executable is None:
            raise SettingsError(
                f"--compiler-cache {choice}: {choice} is not installed (not on PATH nor beside {sys.executable}): "
                f"pip install 'ort-reduced-build[{choice}]', or --compiler-cache none"
            )
        launchers = {"C": str(executable), "CXX": str(executable)}
    cache = None if choice == "none" else CompilerCache(choice, remote)
    return tuple(sorted((launchers | explicit).items())), cache


def _launchers(values: Sequence[str]) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for value in values:
        lang, sep, tool = value.partition("=")
        if not sep:
            pairs.update({"C": value, "CXX": value})
        elif lang in ("C", "CXX", "ASM", "OBJC", "OBJCXX", "CUDA") and tool:
            pairs[lang] = tool
        else:
            raise SettingsError(f"--compiler-launcher {value!r}: expected TOOL or LANG=TOOL (LANG: C, CXX, ...)")
    return pairs


def cmd_build(args: argparse.Namespace) -> int:
    from .. import build

    request = _build_request(args)
    if args.describe:
        print(json.dumps(build.describe(request)))
        return EXIT_OK
    if args.dry_run:
        print(shlex.join(build.command(request)))
        return EXIT_OK
    if not args.config.is_file():
        raise SettingsError(f"{args.config}: config not found")
    baseline = (args.baseline, build.library_size(args.baseline)) if args.baseline else None
    echo = None if args.quiet else (lambda line: print(line, file=sys.stderr, flush=True))
    check: Callable[[Path], list[str]] | None = None
    if args.verify:
        cross = bool(request.android or request.apple or request.toolchain_file)
        runner = runnable(args, request.build_dir, request.emulator, cross)
        if isinstance(runner, str):
            print(f"warning: {runner}", file=sys.stderr)
        else:
            check = runner
    result = build.run(request, echo, check=check)
    for patched in result.patched:
        print(f"patched: {patched}", file=sys.stderr)
    sizes = None if result.problems else _sizes(request, result)
    for line in _size_report(result, baseline, sizes):
        print(line)
    if result.lto_dropped:
        print(
            "warning: built without link-time optimization: with it, the runtime did not run its models "
            f"({result.lto_dropped[0]})",
            file=sys.stderr,
        )
    if not args.verify:
        print(
            f"warning: {result.library} was not run (--no-verify): nothing proves it runs the models", file=sys.stderr
        )
    if result.problems:
        raise BuildError(f"{result.library} was built but does not run its models:\n" + "\n".join(result.problems))
    return EXIT_OK


def _sizes(request: BuildRequest, result: BuildResult) -> SizeReport | None:
    """The library's bytes per operator and part, measured and left in the build directory (``explain
    --build-dir`` reads them); None, with a warning, when they cannot be measured."""
    from ..build import check_source
    from ..errors import SizeError
    from ..size import load_build_sizes, save_build_sizes
    from .size import measure_build_dir

    try:
        if result.up_to_date:
            report, _, key = load_build_sizes(request.build_dir)
            if key == result.key:
                return report
    except SizeError:
        pass
    try:
        report = measure_build_dir(request.build_dir)
    except SizeError as exc:
        print(f"warning: the library's size per operator is not known: {exc}", file=sys.stderr)
        return None
    save_build_sizes(request.build_dir, report, result.key, check_source(request.ort_source))
    return report


def _size_report(result: BuildResult, baseline: tuple[Path, int] | None, sizes: SizeReport | None) -> list[str]:
    from ..util.elf import machine

    state = "up to date" if result.up_to_date else "built"
    arch = machine(result.library)
    lines = [f"{result.library}: {result.size:,} bytes ({state}{f', {arch}' if arch else ''})"]
    comparisons = [("the previous build", result.previous_size)]
    if baseline is not None:
        comparisons.append((str(baseline[0]), baseline[1]))
    for what, size in comparisons:
        if size:
            delta = result.size - size
            lines.append(f"  {delta:+,} bytes ({delta / size:+.1%}) against {what} ({size:,} bytes)")
    if result.trimmed:
        left_out = ", ".join(result.trimmed)
        lines.append(f"  extra type reduction left out {len(result.trimmed)} typed kernel(s): {left_out}")
    if sizes is not None and sizes.ops:
        largest = ", ".join(f"{o.op} {o.bytes:,}" for o in sizes.ops[:5])
        lines.append(f"  what dropping an operator saves (bytes): {largest}; all: ort-reduced-build size --build-dir")
    return lines
