"""Typed, frozen settings shared by the CLI, the Python API, the backend and CMake."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .errors import SettingsError

__all__ = ["OPTIMIZATION_LEVELS", "OPTIMIZATION_STYLES", "TARGET_PLATFORMS", "ConvertOptions"]

OPTIMIZATION_LEVELS = ("disable", "basic", "extended", "layout", "all")
OPTIMIZATION_STYLES = ("Fixed", "Runtime")
TARGET_PLATFORMS = ("arm", "amd64")


@dataclass(frozen=True)
class ConvertOptions:
    """How each ``.onnx`` model is converted; every field is part of the cache key."""

    optimization_level: str = "all"
    """Graph optimization level: disable, basic, extended, layout or all (ORT's converter default)."""
    optimization_styles: tuple[str, ...] = ("Fixed",)
    """Fixed bakes optimizations in; Runtime saves some to replay at run time. One .ort per style."""
    target_platform: str | None = None
    """arm or amd64: amd64 keeps the NCHWc transformer, arm allows int8 QDQ. None: ORT's default."""
    custom_op_libraries: tuple[Path, ...] = ()
    """Shared libraries with custom-op kernels, registered for every conversion (trusted input)."""
    save_optimized_onnx: bool = False
    """Also write ``<name>.optimized.onnx`` at the same optimization level, for viewing."""

    def __post_init__(self) -> None:
        if self.optimization_level not in OPTIMIZATION_LEVELS:
            raise SettingsError(
                f"optimization level {self.optimization_level!r} is not one of {', '.join(OPTIMIZATION_LEVELS)}"
            )
        if not self.optimization_styles:
            raise SettingsError("at least one optimization style is needed (Fixed or Runtime)")
        for style in self.optimization_styles:
            if style not in OPTIMIZATION_STYLES:
                raise SettingsError(f"optimization style {style!r} is not one of Fixed, Runtime")
        if self.target_platform is not None and self.target_platform not in TARGET_PLATFORMS:
            raise SettingsError(f"target platform {self.target_platform!r} is not one of arm, amd64")
        for lib in self.custom_op_libraries:
            if not lib.is_file():
                raise SettingsError(f"{lib}: custom-op library not found")

    def ort_suffix(self, style: str, suffix: str = ".ort") -> str:
        """ORT's output naming: ``.basic.with_runtime_opt.ort``, ``.ort`` for level all + Fixed."""
        level = f".{self.optimization_level}" if self.optimization_level != "all" else ""
        runtime = ".with_runtime_opt" if style == "Runtime" else ""
        return f"{level}{runtime}{suffix}"
