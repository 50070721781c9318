"""The build stage: a minimal ONNX Runtime with only the kernels a config names.

``flags`` composes build.py's command line, ``execute`` runs it (two steps, LTO fallback), ``stamp``
records what a build directory holds; ``deps``, ``protoc`` and ``regfilter`` serve them (the compiler
cache is ``util.compiler_cache``: settings validate its URLs too). ``ort_reduced_build.build`` is a
public import path (docs/cmake.md): it keeps the names below.
"""

from __future__ import annotations

from ..settings.model import ANDROID_ABIS, APPLE_ARCHS, MINIMAL_BUILDS
from ..util.compiler_cache import CompilerCache
from .execute import check_source, command, default_cmake, describe, run, toolchain_emulator, version_warning
from .flags import (
    BUILD_CONFIG,
    OWNED_FLAGS,
    AndroidTarget,
    AppleTarget,
    BuildRequest,
    BuildResult,
    Host,
    compose,
    library_path,
)
from .stamp import library_size, read_stamp

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
