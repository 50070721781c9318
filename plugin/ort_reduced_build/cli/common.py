"""What the command-line verbs share: the conversion options and the request built from them."""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Sequence
from pathlib import Path

from ..engine.discover import Model
from ..engine.pipeline import Request, Result
from ..engine.request import cache_location, convert_options, make_request, summary_line
from ..errors import SettingsError
from ..settings import OPTIMIZATION_LEVELS, OPTIMIZATION_STYLES, TARGET_PLATFORMS

__all__ = [
    "EXIT_FAILED",
    "EXIT_OK",
    "EXIT_USAGE",
    "add_composition_options",
    "add_conversion_options",
    "add_verbosity_options",
    "build_request",
    "non_negative_float",
    "positive_float",
    "positive_int",
    "report",
    "say",
    "summary",
]

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def positive_int(text: str) -> int:
    """``type=`` of a count such as ``--jobs``: a bad value is a usage error (exit 2), named by argparse."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: must be at least 1")
    return value


def positive_float(text: str) -> float:
    """``type=`` of a duration such as ``--timeout``: a finite number above 0."""
    value = _number(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text!r}: must be a number above 0")
    return value


def non_negative_float(text: str) -> float:
    """``type=`` of a tolerance: a finite number, 0 or more."""
    value = _number(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"{text!r}: must be a non-negative number")
    return value


def _number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r}: must be a finite number")
    return value


def add_verbosity_options(parser: argparse.ArgumentParser, *, suffix: str = "") -> None:
    """``-v``/``-q``, taken before the verb (``suffix=""``) and after it (their own ``dest``s, added up by
    ``main``): a subparser's defaults would otherwise overwrite what was given before the verb."""
    parser.add_argument(
        "-v",
        "--verbose",
        dest=f"verbose{suffix}",
        action="count",
        default=0,
        help="more output: per-model lines (-vv: debug output and tracebacks)",
    )
    parser.add_argument(
        "-q", "--quiet", dest=f"quiet{suffix}", action="store_true", help="errors only: no progress, no summary"
    )


class _Styles(argparse.Action):
    """``--optimization-style``: space-separated (ORT's converter), repeated, or ``;``-separated (the
    backend's list form); every value is checked, duplicates are dropped."""

    def __call__(
        self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: object, _: object = None
    ) -> None:
        styles = list(getattr(namespace, self.dest, None) or [])
        choices = ", ".join(OPTIMIZATION_STYLES)
        for value in values if isinstance(values, list) else [values]:
            for style in filter(None, (s.strip() for s in str(value).split(";"))):
                if style not in OPTIMIZATION_STYLES:
                    parser.error(f"argument --optimization-style: invalid choice: {style!r} (choose from {choices})")
                styles.append(style)
        setattr(namespace, self.dest, list(dict.fromkeys(styles)))


def add_conversion_options(parser: argparse.ArgumentParser, *, allow_failures: bool = True) -> None:
    """What every verb that converts ``.onnx`` models (through the cache) takes: how a model is converted,
    and how the conversions run. ``allow_failures=False`` for a verb that always reports failures itself."""
    g = parser.add_argument_group("conversion")
    g.add_argument(
        "--optimization-level",
        choices=OPTIMIZATION_LEVELS,
        help="graph optimization level (default: all; check, diff and config --check: the config's)",
    )
    g.add_argument(
        "--optimization-style",
        action=_Styles,
        nargs="+",
        dest="styles",
        metavar="{Fixed,Runtime}",
        help="Fixed (default) and/or Runtime: 'Fixed Runtime', repeated, or 'Fixed;Runtime'",
    )
    g.add_argument(
        "--target-platform",
        choices=TARGET_PLATFORMS,
        help="amd64 keeps the NCHWc layout optimizer; arm allows int8 QDQ",
    )
    g.add_argument(
        "--custom-op-library",
        type=Path,
        action="append",
        default=[],
        metavar="LIB",
        help="shared library with custom-op kernels (repeatable; trusted code)",
    )
    r = parser.add_argument_group("execution")
    r.add_argument("-j", "--jobs", type=positive_int, help="worker processes (default: CPU count)")
    r.add_argument("--timeout", type=positive_float, metavar="SECONDS", help="per-model conversion time limit")
    r.add_argument(
        "--cache-dir",
        type=Path,
        help="cache directory (default: $ORT_REDUCED_BUILD_CACHE_DIR or the user cache dir)",
    )
    r.add_argument("--no-cache", action="store_true", help="convert everything, store nothing")
    if allow_failures:
        r.add_argument(
            "--allow-conversion-failures",
            action="store_true",
            help="finish, list failures and write the config for the other models",
        )


def add_composition_options(parser: argparse.ArgumentParser) -> None:
    """What the verbs that compose a config from the models take (``convert``, ``config``, ``diff``)."""
    g = parser.add_argument_group("config")
    g.add_argument(
        "--type-reduction",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="record per-op types in the config (default: on)",
    )
    g.add_argument(
        "--extra-ops",
        type=Path,
        action="append",
        default=[],
        metavar="FILE",
        help="config lines to add, e.g. ops inside custom ops or Memcpy for other EPs",
    )
    g.add_argument(
        "--merge",
        type=Path,
        action="append",
        default=[],
        metavar="CONFIG",
        help="another config to compose into the result",
    )
    g.add_argument(
        "--globally-allowed-types", metavar="T,...", help="one type list for every op instead of per-op types"
    )


def build_request(
    args: argparse.Namespace,
    models: Sequence[Model],
    *,
    ort_dir: Path | None = None,
    ort_beside_source: bool = False,
    config_path: Path | None = None,
) -> Request:
    """A pipeline ``Request`` from parsed arguments; options a verb does not take have their defaults."""
    given = vars(args)
    globally_allowed_types, type_reduction = given.get("globally_allowed_types"), given.get("type_reduction")
    if globally_allowed_types and type_reduction:
        raise SettingsError("--globally-allowed-types and --type-reduction are mutually exclusive")
    global_types = None
    if globally_allowed_types:
        global_types = frozenset(t.strip() for t in globally_allowed_types.split(",") if t.strip())
        _check_global_types(global_types)
    options = convert_options(
        args.optimization_level,
        args.styles,
        args.target_platform,
        args.custom_op_library,
        given.get("save_optimized_onnx", False),
    )
    return make_request(
        models,
        options,
        type_reduction=type_reduction is not False and global_types is None,
        extra_configs=given.get("extra_ops", []) + given.get("merge", []),
        globally_allowed_types=global_types,
        cache_dir=cache_location(args.cache_dir, use_cache=not args.no_cache),
        jobs=args.jobs,
        timeout=args.timeout,
        allow_failures=given.get("allow_conversion_failures", False),
        verbose=args.verbose > 0,
        ort_dir=ort_dir,
        ort_beside_source=ort_beside_source,
        config_path=config_path,
    )


def _check_global_types(types: frozenset[str]) -> None:
    from onnxruntime.tools.ort_format_model.types import FbsTypeInfo

    valid = set(FbsTypeInfo.tensordatatype_to_string.values())
    if not types or not types <= valid:
        bad = ", ".join(sorted(types - valid)) or "(empty)"
        raise SettingsError(f"--globally-allowed-types: unknown type(s) {bad}; valid: {', '.join(sorted(valid))}")


def say(args: argparse.Namespace, line: str) -> None:
    """A progress or summary line on stderr; ``-q`` keeps only errors."""
    if not args.quiet:
        print(line, file=sys.stderr)


def summary(result: Result, config_path: Path | None) -> str:
    return summary_line(result, config_path)


def report(args: argparse.Namespace, result: Result) -> None:
    """One ``failed:`` line per failed conversion (errors: shown even with ``-q``), then the warnings."""
    for r in result.failed:
        print(f"failed: {r.model.display} ({r.style}): {r.error}", file=sys.stderr)
    for w in result.warnings:
        say(args, f"warning: {w}")
