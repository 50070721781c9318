"""Typed, frozen settings shared by the CLI, the Python API, the backend and CMake."""

from __future__ import annotations

import typing
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path, PurePosixPath
from typing import Any, Literal

from ..errors import SettingsError
from .sources import merge_sources, split_config_settings

__all__ = [
    "BUNDLES",
    "DEFAULT_OPTIMIZATION_LEVEL",
    "DEFAULT_OPTIMIZATION_STYLES",
    "OPTIMIZATION_LEVELS",
    "OPTIMIZATION_STYLES",
    "TARGET_PLATFORMS",
    "BackendSettings",
    "ConvertOptions",
    "OptimizationLevel",
    "OptimizationStyle",
    "TargetPlatform",
    "config_file_name",
    "read_backend_settings",
    "setting_key",
]

# The vocabulary, listed once: each tuple is read off its Literal type.
OptimizationLevel = Literal["disable", "basic", "extended", "layout", "all"]
OptimizationStyle = Literal["Fixed", "Runtime"]
TargetPlatform = Literal["arm", "amd64"]
Bundle = Literal["ort", "onnx", "both"]
OPTIMIZATION_LEVELS: tuple[OptimizationLevel, ...] = typing.get_args(OptimizationLevel)
OPTIMIZATION_STYLES: tuple[OptimizationStyle, ...] = typing.get_args(OptimizationStyle)
TARGET_PLATFORMS: tuple[TargetPlatform, ...] = typing.get_args(TargetPlatform)
BUNDLES: tuple[Bundle, ...] = typing.get_args(Bundle)
DEFAULT_OPTIMIZATION_LEVEL: OptimizationLevel = "all"
"""ORT's converter default."""
DEFAULT_OPTIMIZATION_STYLES: tuple[OptimizationStyle, ...] = ("Fixed",)
"""Ours (ORT's drop-in converts both)."""
MINIMAL_BUILDS = ("basic", "extended")
ANDROID_ABIS = ("arm64-v8a", "armeabi-v7a", "x86", "x86_64")
APPLE_ARCHS = ("arm64", "arm64e", "x86_64")


@dataclass(frozen=True)
class ConvertOptions:
    """How each ``.onnx`` model is converted; every field is part of the cache key."""

    optimization_level: OptimizationLevel = DEFAULT_OPTIMIZATION_LEVEL
    """Graph optimization level: disable, basic, extended, layout or all (ORT's converter default)."""
    optimization_styles: tuple[OptimizationStyle, ...] = DEFAULT_OPTIMIZATION_STYLES
    """Fixed bakes optimizations in; Runtime saves some to replay at run time. One .ort per style."""
    target_platform: TargetPlatform | None = None
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


@dataclass(frozen=True)
class BackendSettings:
    """``[tool.ort-reduced-build]``: what the build backend converts and ships in the wheel.

    Each field is a key (``_`` written ``-``), also settable as ``-C ort-reduced-build.KEY=V`` and as the
    environment variable ``ORT_REDUCED_BUILD_KEY``. Lists are TOML arrays, or ``;``-separated text.
    """

    models: tuple[str, ...] = ()
    """Globs of the ``.onnx`` models to convert, relative to the project root (``**`` allowed). Each model
    must lie inside a Python package of the project: its wheel path is its path below the directory that
    holds its top-level package (``src/app/models/a.onnx`` ships as ``app/models/a.ort``)."""
    exclude: tuple[str, ...] = ()
    """Globs of models to leave out, matched against paths relative to the project root."""
    optimization_level: OptimizationLevel = DEFAULT_OPTIMIZATION_LEVEL
    """Graph optimization level the models are saved at (ORT's converter default: ``all``)."""
    optimization_style: tuple[OptimizationStyle, ...] = DEFAULT_OPTIMIZATION_STYLES
    """``Fixed`` bakes optimizations in; ``Runtime`` saves some to replay at run time and writes
    ``<name>.with_runtime_opt.ort``. Both: one file per style, one config covering both."""
    target_platform: TargetPlatform | None = None
    """``amd64`` keeps the NCHWc layout optimizer, ``arm`` allows int8 QDQ; unset: ORT's default."""
    type_reduction: bool = True
    """Record the types each op uses, for ``--enable_reduced_operator_type_support``; off writes
    ``required_operators.config`` with ops only."""
    custom_op_libraries: tuple[str, ...] = ()
    """Shared libraries with custom-op kernels, relative to the project root, registered for every
    conversion (trusted code: they are loaded into the converter)."""
    extra_ops: tuple[str, ...] = ()
    """Config files (ORT's grammar) merged into the result, relative to the project root: ops that no
    model names, e.g. ``MemcpyFromHost`` for other execution providers, or ops inside custom ops."""
    bundle: Bundle = "ort"
    """What the wheel ships for each model: the converted ``.ort`` (at the source's package path), the
    ``.onnx`` source, or both. The config is shipped in every case."""
    config: str | None = None
    """Wheel path of the config, e.g. ``app/ops.config``. Default:
    ``<package of the first model>/required_operators_and_types.config`` (``required_operators.config``
    without type reduction)."""
    jobs: int | None = None
    """Conversion worker processes (default: the CPUs this build may use)."""
    cache_dir: str | None = None
    """Conversion cache, shared with the CLI (default: ``$ORT_REDUCED_BUILD_CACHE_DIR``, else the user
    cache directory). Relative paths are relative to the project root."""
    verify: bool = False
    """When the project's CMake builds a runtime (``ort_reduced_build_add_runtime``), also run
    ``ort-reduced-build verify`` on it as part of the build: every model's outputs must match
    onnxruntime's (every build already checks that each model loads and runs)."""
    compiler_cache: Literal["ccache", "sccache", "none"] | None = None
    """The compiler cache of the runtime the project's CMake builds (``ort_reduced_build_add_runtime``
    ``COMPILER_CACHE``); unset: ccache when installed."""
    compiler_cache_remote: str | None = None
    """The compiler cache's remote storage, shared by several machines (``COMPILER_CACHE_REMOTE``), e.g.
    ``redis://cache:6379``; it is written into the build's command line, so keep passwords out of it."""


def config_file_name(type_reduction: bool) -> str:
    """ORT's default config name."""
    return "required_operators_and_types.config" if type_reduction else "required_operators.config"


def setting_key(field_name: str) -> str:
    """The user-facing key of a ``BackendSettings`` field: ``optimization-level``."""
    return field_name.replace("_", "-")


def read_backend_settings(
    pyproject: Mapping[str, object],
    config_settings: Mapping[str, object] | None,
    env: Mapping[str, str],
) -> tuple[BackendSettings, dict[str, str]]:
    """The settings and, per key that a source set, where it came from; ``SettingsError`` lists every problem."""
    ours, _ = split_config_settings(config_settings)
    hints = typing.get_type_hints(BackendSettings)
    keys = {setting_key(f.name): f.name for f in fields(BackendSettings)}
    raw, errors = merge_sources(keys, pyproject, ours, env)
    values: dict[str, Any] = {}  # each converted to its field's annotation by ``_convert``
    for key, given in raw.items():
        try:
            value = _convert(given.value, hints[keys[key]], given.textual)
            _check(key, value)
        except ValueError as exc:
            errors.append(f"{given.origin}: {exc}")
            continue
        values[keys[key]] = value
    if errors:
        raise SettingsError("\n".join(errors))
    return BackendSettings(**values), {key: given.origin for key, given in raw.items()}


def _convert(value: object, hint: object, textual: bool) -> object:
    """``value`` as type ``hint``; ``textual`` values are strings (or repeated ``-C`` lists) to parse."""
    args = typing.get_args(hint)
    if typing.get_origin(hint) is tuple:
        if textual:
            items = value if isinstance(value, list) else [value]
            parts = [p.strip() for item in items for p in str(item).split(";")]
            return tuple(_convert(p, args[0], textual) for p in parts if p)
        if not isinstance(value, list):
            raise ValueError(f"expected an array, got {_show(value)}")
        return tuple(_convert(v, args[0], textual) for v in value)
    if textual and isinstance(value, list):
        raise ValueError(f"given {len(value)} times; give it once")
    if type(None) in args:  # X | None: the value is never None here
        return _convert(value, next(a for a in args if a is not type(None)), textual)
    if typing.get_origin(hint) is Literal:
        if value not in args:
            raise ValueError(f"{_show(value)} is not one of {', '.join(map(str, args))}")
        return value
    if hint is bool:
        return _boolean(value, textual)
    if hint is int:
        if textual:
            try:
                return int(str(value))
            except ValueError:
                raise ValueError(f"expected an integer, got {_show(value)}") from None
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"expected an integer, got {_show(value)}")
        return value
    if not isinstance(value, str):
        raise ValueError(f"expected a string, got {_show(value)}")
    return value


def _boolean(value: object, textual: bool) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower() if textual else None
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"expected true or false, got {_show(value)}")


def _check(key: str, value: object) -> None:
    if key == "optimization-style" and not value:
        raise ValueError("give at least one of Fixed, Runtime")
    if key == "compiler-cache-remote" and isinstance(value, str) and (problem := _remote_problem(value)):
        raise ValueError(problem)
    if key == "jobs" and isinstance(value, int) and value < 1:
        raise ValueError(f"must be at least 1, got {value}")
    if key == "config" and isinstance(value, str):
        path = PurePosixPath(value)
        if path.is_absolute() or ".." in path.parts or "\\" in value or not path.name:
            raise ValueError(f"{value!r} must be a relative path inside the wheel, e.g. 'app/ops.config'")


def _remote_problem(url: str) -> str | None:
    from ..util.compiler_cache import remote_problem

    # Either tool may run it (the cache is chosen separately): a URL neither takes is wrong for both.
    problems = [remote_problem(tool, url) for tool in ("ccache", "sccache")]
    return problems[0] if all(problems) else None


def _show(value: object) -> str:
    return repr(value) if isinstance(value, str) else f"{type(value).__name__} {value!r}"
