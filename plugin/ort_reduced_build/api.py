"""The Python API: ORT's converter signature on top of the pipeline, and a model check."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ._request import cache_location, convert_options, make_request
from .analyze import MINIMAL_BUILD_FORMAT_VERSIONS, read_ort_header
from .discover import discover_paths
from .errors import AnalyzeError, OrtReducedBuildError
from .pipeline import Result, run
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


@dataclass(frozen=True)
class ModelCheck:
    """What ``check_model`` found."""

    path: Path
    kind: str
    """``onnx`` or ``ort``."""
    ort_format_version: str | None = None


def check_model(path: str | Path) -> ModelCheck:
    """Check that a model loads; raise ``OrtReducedBuildError`` naming the file and the cause.

    ``.ort``: the ``ORTM`` identifier, a format version a minimal build loads (5 or 6), and a real load
    with onnxruntime. ``.onnx``: the ONNX checker (full, with shape inference) and a real load.
    """
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise AnalyzeError(f"{p}: cannot read: {exc.strerror}") from None
    if p.suffix.lower() == ".ort":
        version = read_ort_header(p, data)
        if version not in MINIMAL_BUILD_FORMAT_VERSIONS:
            raise AnalyzeError(
                f"{p}: ORT format version {version or '?'} cannot be loaded by a minimal build (needs "
                f"{' or '.join(sorted(MINIMAL_BUILD_FORMAT_VERSIONS))}); re-create it: ort-reduced-build upgrade"
            )
        _load(p)
        return ModelCheck(p, "ort", version)
    import onnx

    try:
        onnx.checker.check_model(str(p), full_check=True)
    except Exception as exc:  # noqa: BLE001 -- onnx raises ValidationError, DecodeError, InferenceError ...
        raise AnalyzeError(f"{p}: invalid ONNX model: {' '.join(str(exc).split())[:400]}") from None
    _load(p)
    return ModelCheck(p, "onnx")


def _load(path: Path) -> None:
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.log_severity_level = 3
    try:
        ort.InferenceSession(str(path), sess_options=so, providers=["CPUExecutionProvider"])
    except Exception as exc:  # noqa: BLE001 -- onnxruntime raises its own exception types
        raise OrtReducedBuildError(f"{path}: onnxruntime cannot load it: {' '.join(str(exc).split())[:400]}") from None
