"""Running build.py: ``run`` builds the config unless the stamp says it is built, then checks the library.

When the config's header records graph types for ops ORT's type reduction leaves whole, ``run`` runs
build.py ``--update``, leaves out their unused typed kernels in the registration tables ORT generated
(``regfilter``), then ``--build`` (``extra_type_reduction``).

It always runs build.py twice, ``--update`` then ``--build``: ORT rewrites every kernel registration
source it generates on each update, and between the two runs the ones whose content did not change get
their old mtime back, so ninja recompiles only what includes a changed one. A ``compiler_cache`` runs
the compiles through ccache or sccache with the environment that lets other build directories reuse
them (``compiler_cache``). An LTO build whose library does not run its models is built again without
LTO (``run``).
"""

from __future__ import annotations

import collections
import logging
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path

from .._version import onnxruntime_version
from ..engine.config import OpKey, OpsConfig, parse_graph_types, read_config_and_value_types
from ..errors import BuildError
from ..util.compiler_cache import process_environment
from ..util.fileio import keep_mtimes_of_unchanged
from . import deps, protoc, regfilter
from .flags import BUILD_CONFIG, BuildRequest, BuildResult, Host, compose, library_path
from .stamp import read_stamp, recorded_int, stamp_key, write_stamp

__all__ = [
    "check_source",
    "command",
    "default_cmake",
    "describe",
    "run",
    "toolchain_emulator",
    "version_warning",
]

log = logging.getLogger("ort_reduced_build")

GENERATED = "op_reduction.generated"
"""The directory of the config's build directory where ORT's reduce_op_kernels.py writes its sources."""


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
        chosen = protoc.choose(request.ort_source, request.deps_dir, request.protoc, request.build_dir)
        request = replace(request, protoc=chosen)
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
    if request.protoc is not None and request.deps_dir and protoc.planned(request.protoc, request.build_dir):
        protoc.ensure(request.protoc, request.ort_source, request.deps_dir, cmake=request.cmake,
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
    key = stamp_key(config, compose(request, config, host, value_types), _extra_types(request, config))
    known = read_stamp(request.build_dir).get("lto_broken")
    return tuple(map(str, known[key])) if isinstance(known, dict) and isinstance(known.get(key), list) else ()


def _remember_broken_lto(build_dir: Path, key: str, problems: Sequence[str]) -> None:
    stamp = read_stamp(build_dir)
    known = stamp.get("lto_broken")
    stamp["lto_broken"] = {**(known if isinstance(known, dict) else {}), key: list(problems)}
    write_stamp(build_dir, stamp)


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
    key = stamp_key(config, argv, extra)
    previous = read_stamp(request.build_dir)
    if previous.get("key") == key and library.is_file():
        log.info("up to date: %s (config content and command unchanged)", library)
        size = library.stat().st_size
        done = tuple(map(str, previous.get("trimmed") or []))  # type: ignore[call-overload]
        return BuildResult(
            tuple(argv),
            library,
            size,
            recorded_int(previous.get("previous_bytes")),
            up_to_date=True,
            key=key,
            trimmed=done,
        )
    _check_cmake(request)
    patched = _patch_deps(request)
    roots = [request.ort_source, request.build_dir, *([request.deps_dir] if request.deps_dir else [])]
    env = process_environment(request.compiler_cache, roots)
    trimmed = _execute_in_two_steps(argv, request, extra, on_output, env)
    if not library.is_file():
        raise BuildError(f"build.py finished but {library} is missing")
    size = library.stat().st_size
    before = recorded_int(previous.get("library_bytes"))
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
    write_stamp(request.build_dir, stamp)
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
        trimmed = tuple(regfilter.filter_build(request.build_dir / BUILD_CONFIG, extra)) if extra else ()
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
    for step in deps.apply_patches(deps.patch_steps(request.ort_source, request.deps_dir, system)):
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
