"""The platform the built library runs on: how the runner is compiled for it and run (``Target``), read
from a CMake build directory (``target_from_cmake_cache``)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Target", "target_from_cmake_cache"]


@dataclass(frozen=True)
class Target:
    """How programs for the library's platform are compiled and run."""

    compiler: tuple[str, ...] = ("cc",)
    """The C compiler and its target flags (e.g. ``aarch64-linux-gnu-gcc``, or clang ``--target=...``)."""
    emulator: tuple[str, ...] = ()
    """Runs a target program on this host (``qemu-aarch64 -L /usr/aarch64-linux-gnu``); empty: natively."""
    cross: bool = False
    """The library is for another platform than this host."""


def target_from_cmake_cache(build_dir: Path) -> Target:
    """The C compiler (with its target and sysroot flags), the emulator and whether it cross-compiles, of
    the CMake build directory ``build_dir`` or the one configuration directory below it."""
    caches = [c for c in [build_dir / "CMakeCache.txt", *sorted(build_dir.glob("*/CMakeCache.txt"))] if c.is_file()]
    if not caches:
        return Target()
    directory = caches[0].parent
    entries = _cmake_sets(caches[0], r"^([A-Za-z_]+):[A-Z]+=(.*)$")
    for name in ("CMakeCCompiler.cmake", "CMakeSystem.cmake"):
        for found in directory.glob(f"CMakeFiles/*/{name}"):
            entries |= _cmake_sets(found, r'^set\(([A-Za-z_]+) "(.*)"\)$')
    compiler = [entries.get("CMAKE_C_COMPILER") or "cc"]
    if entries.get("CMAKE_C_COMPILER_TARGET"):
        compiler.append(f"--target={entries['CMAKE_C_COMPILER_TARGET']}")
    if entries.get("CMAKE_SYSROOT"):
        compiler.append(f"--sysroot={entries['CMAKE_SYSROOT']}")
    emulator = tuple(part for part in entries.get("CMAKE_CROSSCOMPILING_EMULATOR", "").split(";") if part)
    return Target(tuple(compiler), emulator, entries.get("CMAKE_CROSSCOMPILING") == "TRUE")


def _cmake_sets(path: Path, pattern: str) -> dict[str, str]:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return {}
    return {m[1]: m[2] for m in re.finditer(pattern, text, re.MULTILINE) if m[2]}
