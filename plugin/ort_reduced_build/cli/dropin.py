"""The argument parser of the drop-in ``python -m ort_reduced_build.convert_onnx_models_to_ort``: ORT's flags.

Apart from the drop-in module, so that reading it (``cli.reference``) does not import that module into the
package: the import would bind ``ort_reduced_build.convert_onnx_models_to_ort`` to the module, hiding the
API function of that name.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from ..settings import OPTIMIZATION_LEVELS, OPTIMIZATION_STYLES

__all__ = ["make_parser"]


def make_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m ort_reduced_build.convert_onnx_models_to_ort",
        description="Convert ONNX models to ORT format and write the required-operators config "
        "(ORT's convert_onnx_models_to_ort flags).",
    )
    p.add_argument("model_path_or_dir", type=Path)
    p.add_argument("--output_dir", type=Path)
    p.add_argument("--optimization_style", nargs="+", choices=OPTIMIZATION_STYLES, default=list(OPTIMIZATION_STYLES))
    p.add_argument(
        "--optimization_level",
        choices=OPTIMIZATION_LEVELS,
        default=os.environ.get("ORT_CONVERT_ONNX_MODELS_TO_ORT_OPTIMIZATION_LEVEL", "all"),
    )
    p.add_argument("--enable_type_reduction", action="store_true")
    p.add_argument("--custom_op_library", type=Path)
    p.add_argument("--save_optimized_onnx_model", action="store_true")
    p.add_argument("--allow_conversion_failures", action="store_true")
    p.add_argument("--target_platform", choices=["arm", "amd64"])
    p.add_argument("--jobs", type=int)
    p.add_argument("--no_cache", action="store_true")
    p.add_argument("-v", "--verbose", action="count", default=0)
    return p
