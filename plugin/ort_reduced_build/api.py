"""The Python API: ORT's converter signature on top of the pipeline, and the model check (``modelcheck``)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from .engine.discover import discover_paths
from .engine.pipeline import Result, run
from .engine.request import cache_location, convert_options, make_request
from .inspect.modelcheck import ModelCheck, check_model
from .settings import config_file_name

__all__ = ["ModelCheck", "check_model", "convert_onnx_models_to_ort"]


def convert_onnx_models_to_ort(
    model_path: str | Path,
    output_path: str | Path | None = None,
    optimization_level: str = "all",
    custom_op_library: str | Path | Sequence[str | Path] | None = None,
    *,
    optimization_style: str | Sequence[str] = "Fixed",
    target_platform: str | None = None,
    enable_type_reduction: bool = True,
    save_optimized_onnx_model: bool = False,
    allow_conversion_failures: bool = False,
    jobs: int | None = None,
    cache_dir: str | Path | None = None,
    use_cache: bool = True,
) -> Result:
    """Convert a model file or a directory of models to ORT format and write their config.

    ``output_path``: a directory that mirrors the input tree (default: beside the sources), or, for a
    single model file, the ``.ort`` file to write. The config goes into that directory (or the input
    directory) as ``required_operators_and_types.config``.
    """
    source = Path(model_path)
    libs = [custom_op_library] if isinstance(custom_op_library, (str, Path)) else list(custom_op_library or [])
    styles = (optimization_style,) if isinstance(optimization_style, str) else tuple(optimization_style)
    options = convert_options(optimization_level, styles, target_platform, libs, save_optimized_onnx_model)
    models = tuple(discover_paths([source], Path.cwd(), allow_ort=False))
    out = Path(output_path) if output_path is not None else None
    single_file = out is not None and source.is_file() and out.suffix.lower() == ".ort" and len(styles) == 1
    ort_dir = out.parent if single_file and out else out
    config_dir = ort_dir or (source if source.is_dir() else source.parent)
    result = run(
        make_request(
            models,
            options,
            type_reduction=enable_type_reduction,
            ort_dir=ort_dir,
            ort_beside_source=out is None,
            config_path=config_dir / config_file_name(enable_type_reduction),
            cache_dir=cache_location(cache_dir, use_cache=use_cache),
            jobs=jobs,
            allow_failures=allow_conversion_failures,
        )
    )
    if single_file and out is not None:
        written = result.results[0].ort_path
        if written is not None and written != out:
            written.replace(out)
    return result
