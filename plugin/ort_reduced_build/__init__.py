"""ort-reduced-build: the smallest ONNX Runtime that still runs exactly your models.

Folders by layer (docs/architecture.md): ``util/`` and ``settings/``; ``engine/`` (``discover`` ->
``convert`` (+ ``cache``) -> ``analyze`` -> ``config``); ``inspect/``, ``build/``, ``size/``, ``verify/``.
The shells are ``cli/``, ``backend`` and ``cmake/``; the Python API is in ``api``.

The public names below are imported on first use, so that worker processes and the warm path load
only the stages they run.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._version import __version__

if TYPE_CHECKING:
    from .api import check_model, convert_onnx_models_to_ort
    from .engine.config import OpsConfig, TypeUsage, format_config, merge, parse_config
    from .errors import OrtReducedBuildError
    from .settings import ConvertOptions

_EXPORTS = {
    "ConvertOptions": "settings",
    "OpsConfig": "engine.config",
    "OrtReducedBuildError": "errors",
    "TypeUsage": "engine.config",
    "check_model": "api",
    "convert_onnx_models_to_ort": "api",
    "format_config": "engine.config",
    "merge": "engine.config",
    "parse_config": "engine.config",
}

__all__ = [
    "ConvertOptions",
    "OpsConfig",
    "OrtReducedBuildError",
    "TypeUsage",
    "__version__",
    "check_model",
    "convert_onnx_models_to_ort",
    "format_config",
    "merge",
    "parse_config",
]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
