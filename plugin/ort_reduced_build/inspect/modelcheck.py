"""The model check: does a ``.onnx`` or ``.ort`` file load, as a minimal build would need it to.

A stage of its own, used by the API (``check_model``), ``check`` and ``upgrade``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..engine.analyze import MINIMAL_BUILD_FORMAT_VERSIONS, read_ort_header
from ..errors import AnalyzeError, OrtReducedBuildError

__all__ = ["ModelCheck", "check_model"]


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
