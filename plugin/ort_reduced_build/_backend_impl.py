"""The work behind the backend hooks: read our settings, convert the models, tell scikit-build-core.

scikit-build-core builds the wheel; we only add config settings to its call:
``cmake.define.ORT_REDUCED_BUILD_CONFIG`` / ``ORT_REDUCED_BUILD_MODELS_DIR`` (absolute paths),
``wheel.force-include`` for the config and each converted model (at its source's package path), and,
for ``bundle = "ort"``, the ``.onnx`` sources appended to ``wheel.exclude``.

The staged outputs live in ``<cache-dir>/stage/<hash of the project path>/`` (a stable path, so a
persistent CMake build dir sees the same defines; locked while a build of the project runs).
"""

from __future__ import annotations

import hashlib
import logging
import os
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, Literal

from .errors import DiscoveryError, SettingsError
from .settings import BackendSettings, read_backend_settings
from .settings.sources import split_config_settings

if TYPE_CHECKING:
    from .engine.discover import Model
    from .engine.pipeline import Request, Result

__all__ = ["hook_config_settings", "wheel_config_settings"]

ConfigSettings = Mapping[str, Any]
_TABLE = "pyproject.toml [tool.ort-reduced-build]"


def _pyproject() -> dict[str, Any]:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover -- Python 3.10
        import tomli as tomllib

    try:
        with Path("pyproject.toml").open("rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        return {}
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"pyproject.toml: not valid TOML: {exc}") from None


def _read(config_settings: ConfigSettings | None) -> tuple[BackendSettings, dict[str, str]]:
    return read_backend_settings(_pyproject(), config_settings, os.environ)


def hook_config_settings(config_settings: ConfigSettings | None) -> dict[str, Any]:
    """Check our settings, then return the config settings without them (every hook but the wheel ones)."""
    _read(config_settings)
    return split_config_settings(config_settings)[1]


@dataclass(frozen=True)
class _Staged:
    """What one conversion produced, and where each file goes in the wheel."""

    config: Path
    models_dir: Path
    files: dict[Path, PurePosixPath]
    """Staged file -> wheel path: the config, and the converted models unless ``bundle = "onnx"``."""
    sources: tuple[PurePosixPath, ...]
    """Wheel paths of the ``.onnx`` sources."""


@contextmanager
def wheel_config_settings(config_settings: ConfigSettings | None, *, editable: bool) -> Iterator[dict[str, Any]]:
    """Convert the models; yield scikit-build-core's config settings for the build, staging locked meanwhile."""
    from filelock import FileLock

    settings, origins = _read(config_settings)
    root = Path.cwd().resolve()
    cache_dir = _cache_dir(settings, root)
    stage = cache_dir / "stage" / hashlib.sha256(os.fsencode(root)).hexdigest()[:16]
    stage.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(stage.with_name(stage.name + ".lock")):
        staged = _convert(settings, origins, root, cache_dir, stage)
        theirs = split_config_settings(config_settings)[1]
        extra: dict[str, Any] = {
            "cmake.define.ORT_REDUCED_BUILD_CONFIG": str(staged.config),
            "cmake.define.ORT_REDUCED_BUILD_MODELS_DIR": str(staged.models_dir),
            "cmake.define.ORT_REDUCED_BUILD_VERIFY": "ON" if settings.verify else "OFF",
            "cmake.define.ORT_REDUCED_BUILD_COMPILER_CACHE": settings.compiler_cache or "",
            "cmake.define.ORT_REDUCED_BUILD_COMPILER_CACHE_REMOTE": settings.compiler_cache_remote or "",
            **{f"wheel.force-include.{src}": dest.as_posix() for src, dest in staged.files.items()},
        }
        if settings.bundle != "ort":
            yield {**theirs, **extra}
            return
        with _wheel_exclude(theirs, staged.sources, "editable" if editable else "wheel") as excluding:
            yield {**excluding, **extra}


def _cache_dir(settings: BackendSettings, root: Path) -> Path:
    from .engine.request import cache_location

    return cache_location(settings.cache_dir, root=root) or root  # never None: the cache is always used


def _convert(
    settings: BackendSettings, origins: Mapping[str, str], root: Path, cache_dir: Path, stage: Path
) -> _Staged:
    from .engine.request import convert_options, make_request
    from .settings import config_file_name

    def where(key: str) -> str:
        return origins.get(key, f"{_TABLE} {key}")

    models, wheel_paths = _discover(settings, root, where("models"))
    first_package = next(iter(wheel_paths.values())).parts[0]
    config = PurePosixPath(settings.config or f"{first_package}/{config_file_name(settings.type_reduction)}")
    options = convert_options(
        settings.optimization_level,
        settings.optimization_style,
        settings.target_platform,
        _existing(root, settings.custom_op_libraries, where("custom-op-libraries")),
    )
    request = make_request(
        models,
        options,
        root=root,
        type_reduction=settings.type_reduction,
        ort_dir=stage / "models",
        config_path=stage / config.name,
        extra_configs=_existing(root, settings.extra_ops, where("extra-ops")),
        cache_dir=cache_dir,
        jobs=settings.jobs,
    )
    result = _run_logged(request)
    (stage / config.name).chmod(0o644)  # written through a private temp file (0600); the wheel keeps modes
    _remove_stale(stage, {stage / config.name, *(r.ort_path for r in result.results if r.ort_path)})
    files: dict[Path, PurePosixPath] = {stage / config.name: config}
    if settings.bundle != "onnx":
        for r in result.results:
            if r.ort_path is not None:
                files[r.ort_path] = wheel_paths[r.model.path].with_name(r.ort_path.name)
    _report(result, f"{config} (wheel), {stage / config.name} (ORT_REDUCED_BUILD_CONFIG)")
    return _Staged(stage / config.name, stage / "models", files, tuple(wheel_paths.values()))


def _discover(settings: BackendSettings, root: Path, where: str) -> tuple[list[Model], dict[Path, PurePosixPath]]:
    """The models, and each one's wheel path."""
    from .engine.discover import discover_globs

    if not settings.models:
        raise SettingsError(f'{where}: no models to convert; e.g. models = ["src/app/models/*.onnx"]')
    try:
        models = discover_globs(settings.models, root, settings.exclude)
    except DiscoveryError as exc:
        raise SettingsError(f"{where}: {exc}") from None
    wheel_paths = {m.path: _wheel_path(root, m.relative) for m in models}
    seen: dict[PurePosixPath, str] = {}
    for m in models:
        dest = wheel_paths[m.path].with_suffix("")
        if dest in seen:
            raise DiscoveryError(f"{m.display} and {seen[dest]} would both ship as {dest}.*: rename one")
        seen[dest] = m.display
    return models, wheel_paths


def _report(result: Result, where: str) -> None:
    from .engine.request import summary_line

    for w in result.warnings:
        print(f"ort-reduced-build: warning: {w}", file=sys.stderr)
    print(summary_line(result, where), file=sys.stderr)


def _wheel_path(root: Path, relative: PurePosixPath) -> PurePosixPath:
    """The path below the directory holding the model's top-level package (the highest ``__init__.py``)."""
    parts = relative.parts
    for i in range(len(parts) - 1):
        if root.joinpath(*parts[: i + 1], "__init__.py").is_file():
            return PurePosixPath(*parts[i:])
    raise DiscoveryError(
        f"{relative}: not inside a Python package (no __init__.py in its directories); the wheel ships each "
        "model at its package path, so move it into the package"
    )


def _existing(root: Path, paths: tuple[str, ...], where: str) -> tuple[Path, ...]:
    resolved = tuple((root / p).resolve() for p in paths)
    for given, path in zip(paths, resolved, strict=True):
        if not path.is_file():
            raise SettingsError(f"{where}: {given}: no such file (paths are relative to {root})")
    return resolved


def _run_logged(request: Request) -> Result:
    """Run the pipeline with its per-model lines (converted/cached/failed) on stderr."""
    from .engine.pipeline import run

    log = logging.getLogger("ort_reduced_build")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("ort-reduced-build: %(message)s"))
    previous = log.level
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    try:
        return run(request)
    finally:
        log.removeHandler(handler)
        log.setLevel(previous)


def _remove_stale(stage: Path, keep: set[Path]) -> None:
    """Delete staged files of models (or configs) that this build no longer has."""
    for path in sorted(stage.rglob("*"), reverse=True):
        if path.is_file() and path not in keep:
            path.unlink()
        elif path.is_dir() and not any(path.iterdir()):
            path.rmdir()


@contextmanager
def _wheel_exclude(
    theirs: dict[str, Any], sources: tuple[PurePosixPath, ...], state: Literal["wheel", "editable"]
) -> Iterator[dict[str, Any]]:
    """``theirs`` with the ``.onnx`` sources added to the project's effective ``wheel.exclude``.

    Lists from a higher-precedence source replace lower ones in scikit-build-core, so the effective list
    (pyproject, overrides, ``-C``, ``SKBUILD_WHEEL_EXCLUDE``) is read first and passed back extended.
    """
    from scikit_build_core.settings.skbuild_read_settings import SettingsReader

    current = SettingsReader(_pyproject(), theirs, state=state).settings.wheel.exclude
    merged = [*current, *(_gitignore_escape(p.as_posix()) for p in sources)]
    rest = {k: v for k, v in theirs.items() if k not in ("wheel.exclude", "skbuild.wheel.exclude")}
    env_value = os.environ.get("SKBUILD_WHEEL_EXCLUDE")
    if env_value is None:
        yield {**rest, "skbuild.wheel.exclude": merged}
        return
    os.environ["SKBUILD_WHEEL_EXCLUDE"] = ";".join(merged)  # the environment outranks config settings
    try:
        yield rest
    finally:
        os.environ["SKBUILD_WHEEL_EXCLUDE"] = env_value


def _gitignore_escape(path: str) -> str:
    """An exact, root-anchored gitignore pattern for ``path``."""
    escaped = "".join(f"\\{c}" if c in "\\*?[]!#" else c for c in path)
    return "/" + escaped
