"""Settings: the typed options every shell shares (``model``), the ``[tool.ort-reduced-build]`` schema
(``schema``) and the sources settings are read from (``sources``). ``ort_reduced_build.settings`` is a
public import path: it keeps the names of ``model``."""

from __future__ import annotations

from .model import (
    BUNDLES,
    DEFAULT_OPTIMIZATION_LEVEL,
    DEFAULT_OPTIMIZATION_STYLES,
    OPTIMIZATION_LEVELS,
    OPTIMIZATION_STYLES,
    TARGET_PLATFORMS,
    BackendSettings,
    ConvertOptions,
    OptimizationLevel,
    OptimizationStyle,
    TargetPlatform,
    config_file_name,
    read_backend_settings,
    setting_key,
)

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
