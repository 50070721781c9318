"""Re-save an older-format ``.ort`` file with the installed onnxruntime.

A full onnxruntime build loads older ORT format versions (ORT 1.32 loads v1 to v6; v4 and older with
"limited support": saved runtime optimizations ignored) and writes the current one. The model is loaded
with graph optimizations disabled, so its nodes (and so its config) stay as they were. Saved runtime
optimizations (``--optimization-style Runtime``) are *not* carried over: ORT does not re-save them from
an ORT-format input. Re-convert from the ``.onnx`` to keep them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..engine.analyze import MINIMAL_BUILD_FORMAT_VERSIONS, read_ort_file, read_ort_header, saved_runtime_optimizations
from ..engine.discover import printable
from ..engine.outputs import check_outputs, writing
from ..errors import OrtReducedBuildError
from ..util.fileio import atomic_copy, replacing
from .modelcheck import check_model

__all__ = ["CURRENT_FORMAT_VERSION", "Upgrade", "upgrade_ort"]

CURRENT_FORMAT_VERSION = max(MINIMAL_BUILD_FORMAT_VERSIONS, key=int)
"""The newest ORT format version a minimal build loads: nothing to upgrade at or above it."""


@dataclass(frozen=True)
class Upgrade:
    """What ``upgrade_ort`` did."""

    source: Path
    output: Path
    old_version: str
    new_version: str
    dropped_runtime_optimizations: int
    """Saved runtime-optimization records in the source; the output has none."""

    @property
    def changed(self) -> bool:
        return self.old_version != self.new_version


def upgrade_ort(source: Path, output: Path, *, force: bool = False) -> Upgrade:
    """Write ``source`` re-saved in the current ORT format to ``output`` (may be ``source``; a directory:
    ``output/<source's name>``), atomically, with the mode a new file gets (``OutputError`` if it cannot be).

    A file already in the current format is copied unchanged unless ``force``: re-saving would drop its
    saved runtime optimizations for nothing.
    """
    data = read_ort_file(source)
    old = read_ort_header(source, data)
    records = len(saved_runtime_optimizations(source, data))
    if output.is_dir():
        output = output / source.name
    check_outputs([(output, printable(str(source)))], [])
    if old == CURRENT_FORMAT_VERSION and not force:
        if output.resolve() != source.resolve():
            with writing(output):
                atomic_copy(source, output)
        return Upgrade(source, output, old, old, 0)
    with writing(output), replacing(output, suffix=".ort") as tmp:  # check_model reads the suffix
        _resave(source, tmp)
        new = read_ort_header(tmp, tmp.read_bytes())
        check_model(tmp)
    return Upgrade(source, output, old, new, records)


def _resave(source: Path, dest: Path) -> None:
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.log_severity_level = 3
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    so.optimized_model_filepath = str(dest)
    so.add_session_config_entry("session.save_model_format", "ORT")
    try:
        ort.InferenceSession(str(source), sess_options=so, providers=["CPUExecutionProvider"])
    except Exception as exc:  # noqa: BLE001 -- onnxruntime raises its own exception types
        text = " ".join(str(exc).split())[:400]
        raise OrtReducedBuildError(
            f"{source}: onnxruntime {ort.__version__} cannot load it: {text}; re-convert it from the .onnx model"
        ) from None
