"""The build stage: a minimal ONNX Runtime with only the kernels a config names.

``compose`` is the one place that knows ORT's ``tools/ci_build/build.py`` flags: the CLI's ``build``
verb and the CMake function ``ort_reduced_build_add_runtime`` (through the CLI) both come here. It
picks the smallest legal set for the config:

* ``--minimal_build [extended]`` and ``--include_ops_by_config CONFIG``;
* ``--enable_reduced_operator_type_support`` when type reduction is on and the config has types;
* ``--disable_ml_ops`` when no ``ai.onnx.ml`` op is needed; ``--disable_contrib_ops`` when no
  ``com.microsoft*``/``com.ms.*`` op is needed and no ``--use_<EP>`` is asked for (EPs such as XNNPACK
  and NNAPI need ORT's internal NHWC contrib ops);
* ``--build_shared_lib --skip_tests`` plus ``onnxruntime_BUILD_UNIT_TESTS=OFF`` (``--skip_tests``
  alone still builds the tests);
* ``-Wl,-Map`` beside the library (ELF targets): ORT strips minimal builds, the map names their bytes
  for ``size``.

When the config's header records graph types for ops ORT's type reduction leaves whole, ``run`` runs
build.py ``--update``, leaves out their unused typed kernels in the registration tables ORT generated
(``_regfilter``), then ``--build`` (``extra_type_reduction``).

``run`` skips build.py when the build directory holds a build of the same config *content* (comments
ignored) and the same command: the stamp ``ort-reduced-build.json`` is keyed on their sha256. Otherwise it
runs build.py twice, ``--update`` then ``--build``: ORT rewrites every kernel registration source it
generates on each update, and between the two runs the ones whose content did not change get their old
mtime back, so ninja recompiles only what includes a changed one. A ``compiler_cache`` runs the compiles
through ccache or sccache with the environment that lets other build directories reuse them
(``_compiler_cache``).
"""

from __future__ import annotations

import collections
import hashlib
import json
import logging
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from . import _ortdeps, _protoc, _regfilter
from ._compiler_cache import CompilerCache, process_environment
from ._version import onnxruntime_version
from .engine.config import (
    OpKey,
    OpsConfig,
    format_config,
    format_graph_types,
    parse_graph_types,
    read_config_and_value_types,
)
from .errors import BuildError
from .settings.model import ANDROID_ABIS, APPLE_ARCHS, MINIMAL_BUILDS
from .util.fileio import atomic_write, keep_mtimes_of_unchanged

__all__ = [
    "ANDROID_ABIS",
    "APPLE_ARCHS",
    "BUILD_CONFIG",
    "MINIMAL_BUILDS",
    "OWNED_FLAGS",
    "AndroidTarget",
    "AppleTarget",
    "BuildRequest",
    "BuildResult",
    "CompilerCache",
    "Host",
    "check_source",
    "command",
    "compose",
    "default_cmake",
    "describe",
    "library_path",
    "library_size",
    "read_stamp",
    "run",
    "toolchain_emulator",
    "version_warning",
]

log = logging.getLogger("ort_reduced_build")

BUILD_CONFIG = "MinSizeRel"
OWNED_FLAGS = ("--build_dir", "--config", "--include_ops_by_config", "--minimal_build", "--update", "--build")
"""build.py flags ``compose`` sets; extra arguments may not repeat them."""
STAMP = "ort-reduced-build.json"
GENERATED = "op_reduction.generated"
"""The directory of the config's build directory where ORT's reduce_op_kernels.py writes its sources."""
ML_DOMAIN = "ai.onnx.ml"


@dataclass(frozen=True)
class AndroidTarget:
    """Cross-compile for Android (build.py ``--android``; it needs both the NDK and the SDK)."""

    ndk: Path
    sdk: Path
    abi: str = "arm64-v8a"
    api: int = 27
    """Minimum API level (build.py's default is 27)."""
    cpp_shared: bool = False
    """Link libc++ as a shared library (``ANDROID_STL=c++_shared``) instead of statically."""


@dataclass(frozen=True)
class AppleTarget:
    """Cross-compile for iOS (build.py ``--ios``; macOS host with Xcode only)."""

    deploy_target: str
    sysroot: str = "iphoneos"
    """SDK name or path: ``iphoneos`` or ``iphonesimulator``."""
    arch: str = "arm64"


@dataclass(frozen=True)
class Host:
    """The machine build.py runs on (its flags differ per host OS)."""

    system: str = field(default_factory=platform.system)
    root: bool = field(default_factory=lambda: hasattr(os, "geteuid") and os.geteuid() == 0)
    ninja: bool = field(default_factory=lambda: shutil.which("ninja") is not None)


@dataclass(frozen=True)
class BuildRequest:
    """One minimal ORT build; the shells build it from flags or CMake variables."""

    ort_source: Path
    config: Path
    build_dir: Path
    minimal_build: str = "basic"
    """basic: ORT-format models, no runtime optimizations; extended: also runtime optimizations and
    kernel compilation for EPs (needed for the Runtime optimization style, NNAPI, CoreML, XNNPACK)."""
    type_reduction: bool = True
    """Keep only the types the config lists per op (when it lists any)."""
    extra_type_reduction: bool = True
    """Also for the ops ORT's type reduction leaves whole: drop their typed kernels for types on none of
    their nodes (the config header's ``# graph types``; ``_regfilter``). Needs ``type_reduction``."""
    lto: bool = True
    """Link-time optimization (``--enable_lto``; ORT's CMake drops it with a warning where the compiler
    has none): 17 % smaller with ``--disable_types`` for the sample's models."""
    exceptions: bool = True
    """C++ exceptions in the runtime. False: ``--disable_exceptions``, as ORT's mobile builds: smaller, but an
    error ORT raises (``ORT_THROW``, ``ORT_ENFORCE``: a bad input shape, a missing file) aborts the process
    instead of coming back as an ``OrtStatus``."""
    deps_dir: Path | None = None
    """ORT's dependency sources, one directory per ``cmake/deps.txt`` name (air-gapped builds)."""
    android: AndroidTarget | None = None
    apple: AppleTarget | None = None
    toolchain_file: Path | None = None
    """A CMake toolchain file for another target (a generic cross build, e.g. aarch64 Linux)."""
    protoc: Path | None = None
    """The host ``protoc`` a cross build runs (its version must match ORT's protobuf pin)."""
    emulator: tuple[str, ...] = ()
    """Runs the target's programs here (recorded for ``verify``), e.g. ``qemu-aarch64 -L <sysroot>``."""
    compiler_launchers: tuple[tuple[str, str], ...] = ()
    """``(LANG, tool)`` pairs, e.g. ``("CXX", "ccache")``: ``CMAKE_<LANG>_COMPILER_LAUNCHER``."""
    compiler_cache: CompilerCache | None = None
    """The ccache or sccache the launchers run: build.py gets the environment that shares its results
    across build directories (base directory, remote storage)."""
    cmake: Path | None = None
    """The CMake build.py runs (ORT needs a recent one); None: ``cmake`` on PATH."""
    jobs: int | None = None
    """Parallel compile jobs; None: all CPUs."""
    extra_args: tuple[str, ...] = ()
    """More build.py arguments; ``--cmake_extra_defines`` values are merged with ours."""
    python: str = sys.executable


@dataclass(frozen=True)
class BuildResult:
    """What ``run`` did and the library it left."""

    command: tuple[str, ...]
    library: Path
    size: int
    previous_size: int | None
    """The library's size after the build before this one in the same directory (None: first)."""
    up_to_date: bool
    """True when nothing was built: the stamp matched."""
    key: str = ""
    """The stamp key: the config content and the build.py command."""
    patched: tuple[str, ...] = ()
    problems: tuple[str, ...] = ()
    """The models that did not load or run on the library (``check``); empty when all did or none ran."""
    lto_dropped: tuple[str, ...] = ()
    """Why link-time optimization was left out: the problems of the LTO build of this config (empty: it
    was not, or was never asked for)."""
    trimmed: tuple[str, ...] = ()
    """The typed kernel registrations the extra type reduction left out, e.g.
    ``ai.onnx.ml:TreeEnsembleClassifier(1-2)<double>``."""


def check_source(ort_source: Path) -> str:
    """The ORT version in ``VERSION_NUMBER`` ("" if absent); raises unless ``ort_source`` is an ORT tree."""
    script = ort_source / "tools" / "ci_build" / "build.py"
    if not script.is_file():
        raise BuildError(f"{ort_source}: not an ONNX Runtime source tree (no tools/ci_build/build.py)")
    try:
        return (ort_source / "VERSION_NUMBER").read_text(encoding="utf-8").strip()
    except OSError:
        return ""


def version_warning(source_version: str) -> str | None:
    """A warning when the ORT sources differ (major.minor) from the onnxruntime that converted the models."""
    try:
        converter = onnxruntime_version()
    except ImportError:  # importlib.metadata.PackageNotFoundError: no onnxruntime installed
        return None
    if not source_version or _minor(source_version) == _minor(converter):
        return None
    return (
        f"ONNX Runtime sources are {source_version} but models are converted with onnxruntime {converter}: "
        f"kernel opsets in the config may not match; convert with onnxruntime=={_minor(source_version)}.*"
    )


def _minor(version: str) -> str:
    return ".".join(version.split(".")[:2])


def compose(
    request: BuildRequest, config: OpsConfig, host: Host | None = None, value_types: frozenset[str] | None = None
) -> list[str]:
    """build.py's command line for ``request``, the parsed ``config`` and the value types its header records."""
    host = host or Host()
    extra, user_defines = _split_defines(request.extra_args)
    argv = [request.python, str(request.ort_source / "tools" / "ci_build" / "build.py")]
    argv += ["--build_dir", str(request.build_dir), "--config", BUILD_CONFIG, "--update", "--build"]
    argv += ["--minimal_build", *(["extended"] if request.minimal_build == "extended" else [])]
    argv += ["--include_ops_by_config", str(request.config)]
    if request.type_reduction and (config.types or config.globally_allowed_types is not None):
        argv.append("--enable_reduced_operator_type_support")
    argv += _op_flags(config, extra)
    argv += _type_flags(config, value_types, extra, request.ort_source)
    if request.lto and "--enable_lto" not in extra:
        argv.append("--enable_lto")
    if not request.exceptions and "--disable_exceptions" not in extra:
        argv.append("--disable_exceptions")
    argv += ["--build_shared_lib", "--skip_tests", "--skip_submodule_sync", "--compile_no_warning_as_error"]
    argv += ["--parallel", *([str(request.jobs)] if request.jobs else [])]
    if request.cmake is not None:
        argv += ["--cmake_path", str(request.cmake)]
    if request.apple is None and host.ninja and "--cmake_generator" not in extra:
        argv += ["--cmake_generator", "Ninja"]
    if host.system == "Linux" and host.root:
        argv.append("--allow_running_as_root")  # build.py refuses root otherwise (containers, CI)
    argv += _target_flags(request)
    if request.deps_dir is not None:
        argv += _ortdeps.leave_out_flags(request.ort_source, request.deps_dir, extra)
    argv += extra
    defines = ["onnxruntime_BUILD_UNIT_TESTS=OFF"]
    defines += [f"CMAKE_{lang}_COMPILER_LAUNCHER={tool}" for lang, tool in request.compiler_launchers]
    if request.toolchain_file is not None:
        defines.append(f"CMAKE_TOOLCHAIN_FILE={request.toolchain_file}")
    if request.protoc is not None:
        defines.append(f"ONNX_CUSTOM_PROTOC_EXECUTABLE={request.protoc}")
    if request.deps_dir is not None:
        defines += _ortdeps.fetchcontent_defines(request.ort_source, request.deps_dir)
    defines, user_defines = _link_map_define(request, host, defines, user_defines)
    return [*argv, "--cmake_extra_defines", *defines, *user_defines]


def _link_map_define(
    request: BuildRequest, host: Host, defines: list[str], user_defines: list[str]
) -> tuple[list[str], list[str]]:
    """Ask the linker for a map beside the library (ELF targets): ORT strips minimal builds, and the map
    is what names the library's bytes for ``size``. A user's own shared-library linker flags keep it."""
    if request.apple is not None or (host.system in ("Darwin", "Windows") and request.android is None):
        return defines, user_defines
    flag = f"-Wl,-Map={library_path(request, host)}.map"
    prefix = "CMAKE_SHARED_LINKER_FLAGS="
    theirs = [d for d in user_defines if d.startswith(prefix)]
    if theirs:
        return defines, [f"{d} {flag}" if d == theirs[-1] else d for d in user_defines]
    return [*defines, prefix + flag], user_defines


def _op_flags(config: OpsConfig, extra: Sequence[str]) -> list[str]:
    if config.all_ops_if_empty and not config.ops:
        return []
    domains = set(config.ops)
    flags = []
    if ML_DOMAIN not in domains and "--disable_ml_ops" not in extra:
        flags.append("--disable_ml_ops")
    contrib = any(d.startswith(("com.microsoft", "com.ms.")) for d in domains)
    uses_ep = any(a.startswith("--use_") for a in extra)
    if not contrib and not uses_ep and "--disable_contrib_ops" not in extra:
        flags.append("--disable_contrib_ops")
    return flags


_DISABLE_TYPES = {
    "float4": {"float4e2m1"},
    "float8": {"float8e4m3fn", "float8e4m3fnuz", "float8e5m2", "float8e5m2fnuz"},
    "optional": set(),  # the ORT format cannot describe optional values (they read as "unknown")
    "sparsetensor": {"sparse_tensor"},
    "string": {"string"},
}
"""build.py's ``--disable_types`` choices and the value types each one takes out of the runtime."""


def _type_flags(
    config: OpsConfig, value_types: frozenset[str] | None, extra: Sequence[str], ort_source: Path
) -> list[str]:
    """``--disable_types`` for the type support no model needs, when the config's header says which types
    the models hold (a config without that record, or with a value of unknown type, disables nothing)."""
    if value_types is None or "unknown" in value_types or "--disable_types" in extra:
        return []
    ops = {op for opsets in config.ops.values() for names in opsets.values() for op in names}
    choices = [
        choice
        for choice, types in _DISABLE_TYPES.items()
        if choice in _disable_types_choices(ort_source)
        and not types & value_types
        and not (choice == "optional" and any(op.startswith("Optional") for op in ops))
    ]
    return ["--disable_types", *choices] if choices else []


def _disable_types_choices(ort_source: Path) -> frozenset[str]:
    """The ``--disable_types`` choices this ORT's build.py accepts (none if it has no such flag)."""
    for text in _ortdeps.build_script_texts(ort_source):
        found = re.search(r'"--disable_types".*?choices=\[([^\]]*)\]', text, re.DOTALL)
        if found:
            return frozenset(re.findall(r'"([a-z0-9_]+)"', found[1]))
    return frozenset()


def _target_flags(request: BuildRequest) -> list[str]:
    if request.android is not None:
        a = request.android
        flags = ["--android", "--android_ndk_path", str(a.ndk), "--android_sdk_path", str(a.sdk)]
        flags += ["--android_abi", a.abi, "--android_api", str(a.api)]
        return [*flags, "--android_cpp_shared"] if a.cpp_shared else flags
    if request.apple is not None:
        i = request.apple
        # build.py requires the Xcode generator for iOS.
        flags = ["--ios", "--use_xcode", "--apple_sysroot", i.sysroot, "--osx_arch", i.arch]
        return [*flags, "--apple_deploy_target", i.deploy_target]
    return []


def _split_defines(args: Sequence[str]) -> tuple[list[str], list[str]]:
    """Pull ``--cmake_extra_defines`` values out: build.py versions before 1.2x keep only the last such flag."""
    rest: list[str] = []
    defines: list[str] = []
    taking = False
    for arg in args:
        if arg == "--cmake_extra_defines":
            taking = True
        elif taking and not arg.startswith("--"):
            defines.append(arg)
        else:
            taking = False
            rest.append(arg)
    return rest, defines


def library_path(request: BuildRequest, host: Host | None = None) -> Path:
    """Where build.py leaves the shared library for ``request``."""
    system = (host or Host()).system
    out = request.build_dir / BUILD_CONFIG
    if request.apple is not None:
        sdk = "iphonesimulator" if "simulator" in Path(request.apple.sysroot).name.lower() else "iphoneos"
        products = out / f"{BUILD_CONFIG}-{sdk}"  # the Xcode generator's per-SDK output directory
        if "--build_apple_framework" in request.extra_args:
            return products / "onnxruntime.framework" / "onnxruntime"
        return products / "libonnxruntime.dylib"
    if request.android is not None or system not in ("Darwin", "Windows"):
        return out / "libonnxruntime.so"
    if system == "Darwin":
        return out / "libonnxruntime.dylib"
    return out / BUILD_CONFIG / "onnxruntime.dll"


def describe(request: BuildRequest, host: Host | None = None) -> dict[str, object]:
    """What a CMake consumer needs at configure time: library, headers, version, compiler cache, warnings (no
    config read)."""
    version = check_source(request.ort_source)
    warning = version_warning(version)
    return {
        "library": library_path(request, host).as_posix(),
        "include_dirs": [(request.ort_source / "include" / "onnxruntime" / "core" / "session").as_posix()],
        "ort_version": version,
        "compiler_cache": request.compiler_cache.tool if request.compiler_cache else "none",
        "warnings": [warning] if warning else [],
    }


def library_size(path: Path) -> int:
    """Bytes of a library file, or of the library a build directory's stamp records."""
    if path.is_dir():
        try:
            return int(json.loads((path / STAMP).read_text())["library_bytes"])
        except (OSError, ValueError, KeyError, TypeError):
            raise BuildError(f"{path}: no ort-reduced-build build here ({STAMP} missing or unreadable)") from None
    try:
        return path.stat().st_size
    except OSError as exc:
        raise BuildError(f"{path}: cannot read library size: {exc.strerror}") from None


def default_cmake() -> Path | None:
    """The ``cmake`` beside this Python (``pip install cmake`` in the same environment), if any."""
    candidate = Path(sys.executable).parent / ("cmake.exe" if os.name == "nt" else "cmake")
    return candidate if candidate.is_file() else None


def command(request: BuildRequest, host: Host | None = None) -> list[str]:
    """The build.py command ``run`` would issue (``--dry-run``)."""
    check_source(request.ort_source)
    config, value_types = read_config_and_value_types(request.config)
    return compose(_resolved(request), config, host, value_types)


def _resolved(request: BuildRequest) -> BuildRequest:
    if request.cmake is None and (cmake := default_cmake()) is not None:
        request = replace(request, cmake=cmake)
    if (toolchain := request.toolchain_file) is not None:
        protoc = _protoc.choose(request.ort_source, request.deps_dir, request.protoc, request.build_dir)
        request = replace(request, protoc=protoc)
        if not request.emulator:
            request = replace(request, emulator=toolchain_emulator(toolchain, request.cmake))
    return request


def toolchain_emulator(toolchain_file: Path, cmake: Path | None = None) -> tuple[str, ...]:
    """The ``CMAKE_CROSSCOMPILING_EMULATOR`` a toolchain file sets (empty if none), read by CMake itself."""
    script = f'include("{toolchain_file.as_posix()}")\nmessage("${{CMAKE_CROSSCOMPILING_EMULATOR}}")\n'
    with tempfile.TemporaryDirectory() as tmp:
        probe = Path(tmp, "emulator.cmake")
        probe.write_text(script, encoding="utf-8")
        try:
            out = subprocess.run(
                [str(cmake or "cmake"), "-P", str(probe)], capture_output=True, text=True, check=False, cwd=tmp
            )
        except OSError:
            return ()
    lines = out.stderr.strip().splitlines()
    return tuple(p for p in lines[-1].split(";") if p) if out.returncode == 0 and lines else ()


Output = Callable[[str], None] | None
"""Gets each line build.py prints."""
Check = Callable[[Path], list[str]]
"""Runs the models on a built library; returns the problems (empty: every model loaded and ran)."""


def run(
    request: BuildRequest,
    on_output: Callable[[str], None] | None = None,
    host: Host | None = None,
    check: Check | None = None,
) -> BuildResult:
    """Build unless the stamp says this config content and command were built, then ``check`` the library;
    raises ``BuildError``.

    Link-time optimization is the one default that can break the runtime: GCC's whole-program link has made
    ORT libraries whose sessions fail for configs that pull in some kernels (e.g. com.microsoft Tokenizer,
    with GCC 12), though the same objects linked without it run. So when an LTO build does not run its
    models, the same config is built again without LTO, and the stamp remembers it: the next build of that
    config and command goes straight to the working one. An LTO asked for in the build.py arguments is
    never dropped."""
    host = host or Host()
    request = _resolved(request)
    if request.protoc is not None and request.deps_dir and _protoc.planned(request.protoc, request.build_dir):
        _protoc.ensure(request.protoc, request.ort_source, request.deps_dir, cmake=request.cmake,
                       launchers=request.compiler_launchers, jobs=request.jobs, on_output=on_output)  # fmt: skip
    broken = _broken_lto(request, host)
    result = _build(replace(request, lto=False) if broken else request, on_output, host)
    if check is None:
        return replace(result, lto_dropped=broken)
    problems = tuple(check(result.library))
    if not problems or broken or not _lto_droppable(request):
        return replace(result, problems=problems, lto_dropped=broken)
    log.warning("the LTO build of this config does not run its models; building it again without LTO")
    _remember_broken_lto(request.build_dir, result.key, problems)
    result = _build(replace(request, lto=False), on_output, host)
    return replace(result, problems=tuple(check(result.library)), lto_dropped=problems)


def _lto_droppable(request: BuildRequest) -> bool:
    return request.lto and "--enable_lto" not in request.extra_args


def _broken_lto(request: BuildRequest, host: Host) -> tuple[str, ...]:
    """The problems an earlier LTO build of this exact config and command had (empty: none known)."""
    if not _lto_droppable(request):
        return ()
    config, value_types = read_config_and_value_types(request.config)
    key = _key(config, compose(request, config, host, value_types), _extra_types(request, config))
    known = read_stamp(request.build_dir).get("lto_broken")
    return tuple(map(str, known[key])) if isinstance(known, dict) and isinstance(known.get(key), list) else ()


def _remember_broken_lto(build_dir: Path, key: str, problems: Sequence[str]) -> None:
    stamp = read_stamp(build_dir)
    known = stamp.get("lto_broken")
    stamp["lto_broken"] = {**(known if isinstance(known, dict) else {}), key: list(problems)}
    atomic_write(build_dir / STAMP, json.dumps(stamp, indent=1).encode())


def _build(request: BuildRequest, on_output: Callable[[str], None] | None, host: Host) -> BuildResult:
    source_version = check_source(request.ort_source)
    config, value_types = read_config_and_value_types(request.config)
    argv = compose(request, config, host, value_types)
    if (warning := version_warning(source_version)) is not None:
        log.warning("%s", warning)
    if request.apple is not None and host.system != "Darwin":
        raise BuildError("iOS builds run on a macOS host with Xcode (build.py has no --ios elsewhere)")
    library = library_path(request, host)
    extra = _extra_types(request, config)
    key = _key(config, argv, extra)
    previous = read_stamp(request.build_dir)
    if previous.get("key") == key and library.is_file():
        log.info("up to date: %s (config content and command unchanged)", library)
        size = library.stat().st_size
        done = tuple(map(str, previous.get("trimmed") or []))  # type: ignore[call-overload]
        return BuildResult(
            tuple(argv), library, size, _int(previous.get("previous_bytes")), up_to_date=True, key=key, trimmed=done
        )
    _check_cmake(request)
    patched = _patch_deps(request)
    roots = [request.ort_source, request.build_dir, *([request.deps_dir] if request.deps_dir else [])]
    env = process_environment(request.compiler_cache, roots)
    trimmed = _execute_in_two_steps(argv, request, extra, on_output, env)
    if not library.is_file():
        raise BuildError(f"build.py finished but {library} is missing")
    size = library.stat().st_size
    before = _int(previous.get("library_bytes"))
    stamp = {
        "key": key,
        "library": str(library),
        "library_bytes": size,
        "previous_bytes": before,
        "config": str(request.config),
        "emulator": list(request.emulator),
        "lto_broken": previous.get("lto_broken", {}),
        "trimmed": list(trimmed),
    }
    atomic_write(request.build_dir / STAMP, json.dumps(stamp, indent=1).encode())
    return BuildResult(
        tuple(argv), library, size, before, up_to_date=False, patched=tuple(patched), key=key, trimmed=trimmed
    )


def _execute_in_two_steps(
    argv: list[str],
    request: BuildRequest,
    extra: Mapping[OpKey, frozenset[str]],
    on_output: Callable[[str], None] | None,
    env: dict[str, str] | None,
) -> tuple[str, ...]:
    """build.py in two steps, as ORT's CI runs it: ``--update`` (CMake, and ``reduce_op_kernels.py``
    rewriting every registration table), the extra type reduction on those tables, then ``--build``. A
    table whose content did not change keeps its old mtime, so ninja recompiles only what a change touches."""
    with keep_mtimes_of_unchanged(request.build_dir / BUILD_CONFIG / GENERATED):
        _execute([a for a in argv if a != "--build"], on_output, env)
        trimmed = tuple(_regfilter.filter_build(request.build_dir / BUILD_CONFIG, extra)) if extra else ()
    for line in trimmed:
        log.info("extra type reduction: left out %s", line)
    _execute([a for a in argv if a != "--update"], on_output, env)
    return trimmed


def _extra_types(request: BuildRequest, config: OpsConfig) -> dict[OpKey, frozenset[str]]:
    """The graph types the config's header records for its ops without types, when the extra type
    reduction applies (empty: it does not, or nothing is recorded)."""
    if not (request.type_reduction and request.extra_type_reduction) or config.globally_allowed_types is not None:
        return {}
    try:
        recorded = parse_graph_types(request.config.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError):
        return {}
    untyped = config.op_keys() - set(config.types)
    return {key: types for key, types in recorded.items() if key in untyped}


def _key(config: OpsConfig, argv: Sequence[str], extra: Mapping[OpKey, frozenset[str]]) -> str:
    # Comments (the model list) do not change the kernels: only the formatted content counts, and the
    # graph types when the extra type reduction uses them.
    material: dict[str, object] = {"config": format_config(config), "command": list(argv[1:])}
    if extra:
        material["graph_types"] = format_graph_types(extra)
    return hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()


def read_stamp(build_dir: Path) -> dict[str, object]:
    """What the last build in ``build_dir`` recorded (empty when none)."""
    try:
        data = json.loads((build_dir / STAMP).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _int(value: object) -> int | None:
    """A size the stamp records; None when it records none (or not a number)."""
    return value if isinstance(value, int) else None


def _check_cmake(request: BuildRequest) -> None:
    """Fail early, with the fix, when the CMake build.py would run is older than ORT requires."""
    if request.cmake is not None and not request.cmake.is_file():
        raise BuildError(f"{request.cmake}: no such CMake (--cmake / ORT_REDUCED_BUILD_CMAKE)")
    try:
        text = (request.ort_source / "cmake" / "CMakeLists.txt").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return  # build.py reports a broken tree better than we can
    match = re.search(r"cmake_minimum_required\s*\(\s*VERSION\s+([0-9.]+)", text)
    cmake = str(request.cmake) if request.cmake else shutil.which("cmake")
    if match is None or cmake is None:
        return
    try:
        out = subprocess.run([cmake, "--version"], capture_output=True, text=True, check=False).stdout
    except OSError:
        return
    found = re.search(r"version\s+([0-9.]+)", out)
    need = tuple(int(p) for p in match.group(1).split("."))
    if found and tuple(int(p) for p in found.group(1).split(".")[: len(need)]) < need:
        raise BuildError(
            f"{cmake} is CMake {found.group(1)}; ONNX Runtime needs {match.group(1)} or newer: "
            "pip install cmake in this environment, or pass --cmake (ORT_REDUCED_BUILD_CMAKE in CMake)"
        )


def _patch_deps(request: BuildRequest) -> list[str]:
    if request.deps_dir is None:
        return []
    system = "Android" if request.android else "iOS" if request.apple else platform.system()
    applied = []
    for step in _ortdeps.apply_patches(_ortdeps.patch_steps(request.ort_source, request.deps_dir, system)):
        applied.append(f"{step.name} -> {step.directory}")
        log.info("patched %s with %s", step.directory, step.name)
    return applied


def _execute(argv: list[str], on_output: Callable[[str], None] | None, env: dict[str, str] | None) -> None:
    tail: collections.deque[str] = collections.deque(maxlen=40)
    log.info("running %s", " ".join(argv))
    try:
        proc = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace", env=env
        )
    except OSError as exc:
        raise BuildError(f"cannot run {argv[0]}: {exc.strerror}") from None
    assert proc.stdout is not None
    with proc:
        for line in proc.stdout:
            tail.append(line.rstrip("\n"))
            if on_output is not None:
                on_output(line.rstrip("\n"))
    if proc.returncode != 0:
        output = "\n".join(tail)
        raise BuildError(f"build.py failed with exit code {proc.returncode}\ncommand: {' '.join(argv)}\n{output}")
