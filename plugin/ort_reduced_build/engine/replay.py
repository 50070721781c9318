"""What a given ``.ort`` needs, saved runtime optimizations (``--optimization-style Runtime``) included.

The file holds the graph before a minimal build replays its saved optimizations, and per record the ops
the replay adds, but not the types the rewritten nodes then use (a QDQ ``drop`` makes MaxPool run on
int8_t; a ``Gemm`` record makes a QGemm). ORT's converter learns them by converting the ``.onnx`` a second
time with ``optimization.minimal_build_optimizations=apply``. From the ``.ort`` alone ``rederive`` does the
same, in a worker: the installed onnxruntime re-saves the file's graph as ONNX (optimizations off), which
is then converted in Runtime style as an ``.onnx`` is. Where the records that conversion saves equal the
file's, its ``apply`` graph is the replay's, so the needs are exact: the file's own nodes (in case nothing
is replayed) and the ``apply`` graph's. A record the installed onnxruntime does not make again (another
ORT version or target platform) keeps the ops it adds or rewrites with all their types, and a warning
says so; so does a file onnxruntime cannot re-save (``given_ort_usage``, the fallback).
"""

from __future__ import annotations

import dataclasses
import tempfile
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

from .analyze import (
    ModelUsage,
    SavedOptimization,
    analyze_ort,
    merge_graph_types,
    read_ort_file,
    saved_runtime_optimizations,
)
from .config import OpsConfig, merge
from .convert import Converted, ConvertTask, convert_one

__all__ = ["GIVEN_ORT", "given_ort_usage", "rederive"]

GIVEN_ORT = "ort"
"""The style of a given ``.ort`` file: taken as is, never written anywhere."""


def given_ort_usage(path: Path) -> tuple[ModelUsage, bool]:
    """The file's own needs, with every op its saved optimizations add or rewrite kept with all types; and
    whether it has saved optimizations (then ``rederive`` can make their types exact)."""
    data = read_ort_file(path)
    usage = analyze_ort(path, data)
    records = saved_runtime_optimizations(path, data)
    if not records:
        return usage, False
    # A replay rewrites nodes into values this file does not describe: their types are unknown.
    config = merge([usage.config, *_unrestricted(records)])
    # Ops a replay adds have no graph types recorded: their kernels stay whole.
    return ModelUsage(config, usage.warnings, usage.value_types | {"unknown"}, usage.graph_types), True


def rederive(task: ConvertTask) -> Converted:
    """(In a worker.) ``task.model``'s needs with its replayed optimizations' exact types where the installed
    onnxruntime makes the same records again; ``task.staging`` gets that conversion's ``model.ort``."""
    import onnxruntime as ort

    data = read_ort_file(task.model)
    own = analyze_ort(task.model, data)
    records = saved_runtime_optimizations(task.model, data)
    with tempfile.TemporaryDirectory(prefix="given-ort-", dir=task.staging.parent) as tmp:
        source = Path(tmp) / "model.onnx"
        so = ort.SessionOptions()
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL  # the graph as the file has it
        so.optimized_model_filepath = str(source)
        so.log_severity_level = task.log_severity
        for lib in task.options.custom_op_libraries:
            so.register_custom_ops_library(str(lib))
        session = ort.InferenceSession(str(task.model), sess_options=so, providers=["CPUExecutionProvider"])
        del session
        again = convert_one(dataclasses.replace(task, model=source, style="Runtime"))
    missing = list((Counter(records) - Counter(saved_runtime_optimizations(task.staging / "model.ort"))).elements())
    warnings = {*own.warnings, *again.usage.warnings}
    if missing:
        warnings.add(
            f"{len(missing)} of its {len(records)} saved runtime optimization(s) are not made again by this "
            "onnxruntime with these options (another ORT version or --target-platform?): the ops they add or "
            "rewrite are kept with all their types"
        )
    config = merge([own.config, again.usage.config, *_unrestricted(missing)])
    value_types = own.value_types | again.usage.value_types | ({"unknown"} if missing else set())
    graph_types = merge_graph_types([own, again.usage])
    return Converted(ModelUsage(config, tuple(sorted(warnings)), value_types, graph_types), again.files)


def _unrestricted(records: Iterable[SavedOptimization]) -> list[OpsConfig]:
    """The ops ``records`` add or rewrite, each with all its types."""
    return [OpsConfig({d: {v: frozenset({op})}}) for r in records for d, op, v in (*r.produced_ops, *r.touched_ops)]
