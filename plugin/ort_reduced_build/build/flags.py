"""build.py's command line: ``compose`` is the one place that knows ORT's ``tools/ci_build/build.py`` flags.

The CLI's ``build`` verb and the CMake function ``ort_reduced_build_add_runtime`` (through the CLI) both
come here. It picks the smallest legal set for the config:

* ``--minimal_build [extended]`` and ``--include_ops_by_config CONFIG``;
* ``--enable_reduced_operator_type_support`` when type reduction is on and the config has types;
* ``--disable_ml_ops`` when no ``ai.onnx.ml`` op is needed; ``--disable_contrib_ops`` when no
  ``com.microsoft*``/``com.ms.*`` op is needed and no ``--use_<EP>`` is asked for (EPs such as XNNPACK
  and NNAPI need ORT's internal NHWC contrib ops);
* ``--build_shared_lib --skip_tests`` plus ``onnxruntime_BUILD_UNIT_TESTS=OFF`` (``--skip_tests``
  alone still builds the tests);
* ``-Wl,-Map`` beside the library (ELF targets): ORT strips minimal builds, the map names their bytes
  for ``size``.

The build's types (``BuildRequest``, its targets, ``Host``, ``BuildResult``) live here too.
"""

from __future__ import annotations

import os
import platform
import re
import shutil
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..engine.config import OpsConfig
from ..util.compiler_cache import CompilerCache
from . import deps

__all__ = [
    "BUILD_CONFIG",
    "OWNED_FLAGS",
    "AndroidTarget",
    "AppleTarget",
    "BuildRequest",
    "BuildResult",
    "Host",
    "compose",
    "library_path",
]

BUILD_CONFIG = "MinSizeRel"
OWNED_FLAGS = ("--build_dir", "--config", "--include_ops_by_config", "--minimal_build", "--update", "--build")
"""build.py flags ``compose`` sets; extra arguments may not repeat them."""
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
    their nodes (the config header's ``# graph types``; ``regfilter``). Needs ``type_reduction``."""
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
        argv += deps.leave_out_flags(request.ort_source, request.deps_dir, extra)
    argv += extra
    defines = ["onnxruntime_BUILD_UNIT_TESTS=OFF"]
    defines += [f"CMAKE_{lang}_COMPILER_LAUNCHER={tool}" for lang, tool in request.compiler_launchers]
    if request.toolchain_file is not None:
        defines.append(f"CMAKE_TOOLCHAIN_FILE={request.toolchain_file}")
    if request.protoc is not None:
        defines.append(f"ONNX_CUSTOM_PROTOC_EXECUTABLE={request.protoc}")
    if request.deps_dir is not None:
        defines += deps.fetchcontent_defines(request.ort_source, request.deps_dir)
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
    for text in deps.build_script_texts(ort_source):
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
