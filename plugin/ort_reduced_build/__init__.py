"""ort-reduced-build: the smallest ONNX Runtime that still runs exactly your models.

Stages (one module each): ``discover`` -> ``convert`` (+ ``cache``) -> ``analyze`` -> ``config`` ->
``build``. The shells are ``cli``, ``backend`` and ``cmake/``; the Python API is in ``api``.
"""

from __future__ import annotations

from ._version import __version__
from .api import check_model, convert_onnx_models_to_ort
from .config import OpsConfig, TypeUsage, format_config, merge, parse_config
from .errors import OrtReducedBuildError
from .settings import ConvertOptions

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
