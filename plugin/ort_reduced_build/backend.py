"""PEP 517 backend ``ort_reduced_build.backend``: scikit-build-core's hooks, with the models converted first.

Hooks only: each strips our ``-C ort-reduced-build.*`` settings (scikit-build-core rejects unknown keys)
and forwards to ``scikit_build_core.build``; ``build_wheel``/``build_editable`` also convert the models
and pass the results on (see ``_backend_impl``). A hook exists here only if scikit-build-core has it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import Any

import scikit_build_core.build as _inner

__all__ = [name for name in _inner.__all__ if hasattr(_inner, name)]

ConfigSettings = Mapping[str, Any] | None


@contextlib.contextmanager
def _errors() -> Iterator[None]:
    """Expected failures become ``ort-reduced-build: error: ...`` lines and exit status 1, no traceback."""
    from .errors import ConversionError, OrtReducedBuildError

    try:
        yield
    except ConversionError as exc:
        lines = [f"ort-reduced-build: error: {path}: {cause}" for path, cause in exc.failures]
        raise SystemExit("\n".join(lines)) from None
    except OrtReducedBuildError as exc:
        raise SystemExit("\n".join(f"ort-reduced-build: error: {line}" for line in str(exc).splitlines())) from None


def _theirs(config_settings: ConfigSettings) -> dict[str, Any]:
    from ._backend_impl import hook_config_settings

    with _errors():
        return hook_config_settings(config_settings)


def build_wheel(
    wheel_directory: str, config_settings: ConfigSettings = None, metadata_directory: str | None = None
) -> str:
    from ._backend_impl import wheel_config_settings

    with _errors(), wheel_config_settings(config_settings, editable=False) as settings:
        return _inner.build_wheel(wheel_directory, settings, metadata_directory)


def build_sdist(sdist_directory: str, config_settings: ConfigSettings = None) -> str:
    return _inner.build_sdist(sdist_directory, _theirs(config_settings))


if hasattr(_inner, "build_editable"):

    def build_editable(
        wheel_directory: str, config_settings: ConfigSettings = None, metadata_directory: str | None = None
    ) -> str:
        from ._backend_impl import wheel_config_settings

        with _errors(), wheel_config_settings(config_settings, editable=True) as settings:
            return _inner.build_editable(wheel_directory, settings, metadata_directory)


if hasattr(_inner, "get_requires_for_build_wheel"):

    def get_requires_for_build_wheel(config_settings: ConfigSettings = None) -> list[str]:
        return _inner.get_requires_for_build_wheel(_theirs(config_settings))


if hasattr(_inner, "get_requires_for_build_sdist"):

    def get_requires_for_build_sdist(config_settings: ConfigSettings = None) -> list[str]:
        return _inner.get_requires_for_build_sdist(_theirs(config_settings))


if hasattr(_inner, "get_requires_for_build_editable"):

    def get_requires_for_build_editable(config_settings: ConfigSettings = None) -> list[str]:
        return _inner.get_requires_for_build_editable(_theirs(config_settings))


if hasattr(_inner, "prepare_metadata_for_build_wheel"):

    def prepare_metadata_for_build_wheel(metadata_directory: str, config_settings: ConfigSettings = None) -> str:
        return _inner.prepare_metadata_for_build_wheel(metadata_directory, _theirs(config_settings))


if hasattr(_inner, "prepare_metadata_for_build_editable"):

    def prepare_metadata_for_build_editable(metadata_directory: str, config_settings: ConfigSettings = None) -> str:
        return _inner.prepare_metadata_for_build_editable(metadata_directory, _theirs(config_settings))
