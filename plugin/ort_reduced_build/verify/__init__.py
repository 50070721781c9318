"""The verify stage: run every model on a built ONNX Runtime library and compare with onnxruntime (full).

``runner`` compiles the C runner and runs the models on it and on the reference, ``compare`` compares
their outputs, ``target`` says how to compile and run for the library's platform, ``inputs`` makes the
models' inputs (or reads an inputs file), ``wire`` is the byte format between Python and the runner.
``ort_reduced_build.verify`` is a public import path: it keeps the names of ``runner``.
"""

from __future__ import annotations

from .compare import OutputDiff
from .inputs import InputsFile, InputSpec, ModelSpec, read_inputs_file
from .runner import STATUSES, ModelReport, Report, VerifyRequest, compile_runner, run
from .target import Target, target_from_cmake_cache

__all__ = [
    "STATUSES",
    "InputSpec",
    "InputsFile",
    "ModelReport",
    "ModelSpec",
    "OutputDiff",
    "Report",
    "Target",
    "VerifyRequest",
    "compile_runner",
    "read_inputs_file",
    "run",
    "target_from_cmake_cache",
]
