"""The one way a shell (CLI, drop-in, API, backend) turns settings and flags into a pipeline ``Request``.

Every run default lives here or in ``settings``: the optimization level and styles, the worker count, the
cache directory, and the config file name (``settings.config_file_name``). A shell passes what its user
gave (``None`` or empty for "not given") and gets the same request any other shell would build.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, cast

from ..settings import (
    DEFAULT_OPTIMIZATION_LEVEL,
    DEFAULT_OPTIMIZATION_STYLES,
    ConvertOptions,
    OptimizationLevel,
    OptimizationStyle,
    TargetPlatform,
)
from .cache import default_cache_dir
from .convert import default_jobs
from .pipeline import Request

if TYPE_CHECKING:
    from .discover import Model
    from .pipeline import Result

__all__ = ["cache_location", "convert_options", "make_request", "summary_line"]


def convert_options(
    optimization_level: str | None = None,
    optimization_styles: Iterable[str] | None = None,
    target_platform: str | None = None,
    custom_op_libraries: Iterable[str | Path] = (),
    save_optimized_onnx: bool = False,
) -> ConvertOptions:
    """``ConvertOptions`` from what a user gave: unset level and styles take the defaults, duplicate styles
    are dropped, libraries are resolved. ``ConvertOptions`` checks every value (``SettingsError``)."""
    styles = tuple(dict.fromkeys(optimization_styles or ())) or DEFAULT_OPTIMIZATION_STYLES
    return ConvertOptions(
        optimization_level=cast("OptimizationLevel", optimization_level or DEFAULT_OPTIMIZATION_LEVEL),
        optimization_styles=cast("tuple[OptimizationStyle, ...]", styles),
        target_platform=cast("TargetPlatform | None", target_platform),
        custom_op_libraries=tuple(Path(p).resolve() for p in custom_op_libraries),
        save_optimized_onnx=save_optimized_onnx,
    )


def cache_location(
    cache_dir: str | Path | None = None, *, use_cache: bool = True, root: Path | None = None
) -> Path | None:
    """The cache directory of a run: None without a cache; the given one (relative to ``root`` when given,
    then resolved); else ``$ORT_REDUCED_BUILD_CACHE_DIR`` or the user cache directory."""
    if not use_cache:
        return None
    path = Path(cache_dir) if cache_dir else default_cache_dir()
    return (root / path).resolve() if root is not None else path


def make_request(
    models: Sequence[Model],
    options: ConvertOptions,
    *,
    root: Path | None = None,
    cache_dir: Path | None,
    jobs: int | None = None,
    type_reduction: bool = True,
    ort_dir: Path | None = None,
    ort_beside_source: bool = False,
    config_path: Path | None = None,
    extra_configs: Sequence[Path] = (),
    globally_allowed_types: frozenset[str] | None = None,
    timeout: float | None = None,
    allow_failures: bool = False,
    verbose: bool = False,
) -> Request:
    """The pipeline ``Request``; ``cache_dir`` from ``cache_location``, ``jobs`` None: one worker per CPU."""
    return Request(
        models=tuple(models),
        root=root or Path.cwd(),
        options=options,
        type_reduction=type_reduction,
        ort_dir=ort_dir,
        ort_beside_source=ort_beside_source,
        config_path=config_path,
        extra_configs=tuple(extra_configs),
        globally_allowed_types=globally_allowed_types,
        cache_dir=cache_dir,
        jobs=jobs or default_jobs(),
        timeout=timeout,
        allow_failures=allow_failures,
        verbose=verbose,
    )


def summary_line(result: Result, where: object | None = None) -> str:
    """The run's summary line, ``ort-reduced-build: 3 model(s), ... -> <config>``: every shell writes this."""
    return f"ort-reduced-build: {result.summary()}" + (f" -> {where}" if where else "")
