"""Drop-in for ``python -m onnxruntime.tools.convert_onnx_models_to_ort``: ORT's flags and file names,
our engine (parallel workers, cache, safe merge, deterministic config).

As ORT's tool: both styles by default, one config per style named like ORT's
(``required_operators[_and_types][.<level>][.with_runtime_opt].config``) in the output directory, the
model directory, or beside a single model file.
"""

from __future__ import annotations

import argparse
import sys
import types
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .cli import run_verb
from .cli.dropin import make_parser
from .engine.discover import discover_paths
from .engine.pipeline import run
from .engine.request import cache_location, convert_options, make_request
from .settings import ConvertOptions

if TYPE_CHECKING:
    from .engine.pipeline import Result

__all__ = ["main"]


def _config_path(source: Path, output_dir: Path | None, options: ConvertOptions, style: str, types: bool) -> Path:
    name = ("required_operators_and_types" if types else "required_operators") + options.ort_suffix(style, ".config")
    if source.is_dir():
        return (output_dir or source) / name
    if output_dir is not None:
        return output_dir / f"{source.stem}.{name}"
    return source.with_name(f"{source.stem}.{name}")


def _convert(args: argparse.Namespace) -> int:
    source: Path = args.model_path_or_dir
    libs = [args.custom_op_library] if args.custom_op_library else []
    models = tuple(discover_paths([source], Path.cwd(), allow_ort=False))

    for style in dict.fromkeys(args.optimization_style):
        options = convert_options(
            args.optimization_level, [style], args.target_platform, libs, args.save_optimized_onnx_model
        )
        request = make_request(
            models,
            options,
            type_reduction=args.enable_type_reduction,
            ort_dir=args.output_dir,
            ort_beside_source=args.output_dir is None,
            config_path=_config_path(source, args.output_dir, options, style, args.enable_type_reduction),
            cache_dir=cache_location(use_cache=not args.no_cache),
            jobs=args.jobs,
            allow_failures=args.allow_conversion_failures,
            verbose=args.verbose > 0,
        )
        result = run(request)
        for r in result.failed:
            print(f"Error converting {r.model.display}: {r.error}", file=sys.stderr)

        print(
            f"Converted {len(models) - len(result.failed)}/{len(models)} models successfully "
            f"({style}); config: {request.config_path}",
            file=sys.stderr,
        )
    return 0  # failures raise unless allowed, as in ORT's tool


def main(argv: Sequence[str] | None = None) -> int:
    args = make_parser().parse_args(argv)
    return run_verb(_convert, args)


class _DropInModule(types.ModuleType):
    """Importing this module binds ``ort_reduced_build.convert_onnx_models_to_ort`` to it, where the package
    exports the API function of that name: so the module, called, is that function (both names are contracts)."""

    def __call__(self, *args: Any, **kwargs: Any) -> Result:
        from .api import convert_onnx_models_to_ort

        return convert_onnx_models_to_ort(*args, **kwargs)


if (_module := sys.modules.get(__name__)) is not None and vars(_module) is globals():
    _module.__class__ = _DropInModule

if __name__ == "__main__":
    raise SystemExit(main())
