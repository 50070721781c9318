"""Our config equals what ORT's own ``convert_onnx_models_to_ort`` writes for the same models and options.

Both files are read twice: with our parser (ops and per-op types) and with ORT's own
``reduced_build_config_parser.parse_config`` (required ops and the C++ type-control lines it generates
for the build), ignoring ``#`` lines.
"""

from __future__ import annotations

import re
from pathlib import Path

import onnx
import pytest
from onnx import TensorProto, helper
from onnxruntime.tools.reduced_build_config_parser import parse_config as ort_parse_config
from ort_reduced_build.engine.config import parse_config

from tests.conftest import Cli, copy_models, ort_convert, ort_unsupported_type_codes, uses_types


def _ort_view(path: Path) -> tuple[object, list[str]]:
    required, type_filter = ort_parse_config(str(path), enable_type_reduction=True)
    return required, sorted(type_filter.get_cpp_entries()) if type_filter else []


def assert_same_config(ours: Path, reference: Path) -> None:
    a = parse_config(ours.read_text(), str(ours))
    b = parse_config(reference.read_text(), str(reference))
    for domain in sorted(set(a.ops) | set(b.ops)):
        assert a.ops.get(domain) == b.ops.get(domain), f"ops differ in {domain}"
    differing = {k for k in set(a.types) | set(b.types) if a.types.get(k) != b.types.get(k)}
    assert not differing, f"types differ for {sorted(differing)}"
    assert _ort_view(ours) == _ort_view(reference)


def _failed(text: str, pattern: str) -> set[str]:
    return {Path(m).stem for m in re.findall(pattern, text)}


def _reference_name(style: str, types: bool, level: str = "all") -> str:
    base = "required_operators_and_types" if types else "required_operators"
    return (
        base + (f".{level}" if level != "all" else "") + (".with_runtime_opt" if style == "Runtime" else "") + ".config"
    )


@pytest.mark.parametrize("model_set", ["node_models", "app_models"])
@pytest.mark.parametrize("style", ["Fixed", "Runtime"])
def test_config_equals_ort_converter(
    model_set: str, style: str, request: pytest.FixtureRequest, tmp_path: Path, cli: Cli
) -> None:
    src: Path = request.getfixturevalue(model_set)
    unsupported = ort_unsupported_type_codes()
    models = tmp_path / "models"
    kept = copy_models(src, models, keep=lambda p: not uses_types(p, unsupported))
    assert len(kept) > (1500 if model_set == "node_models" else 7)

    ref_dir = tmp_path / "ort"
    ref = ort_convert(
        models,
        "--output_dir",
        ref_dir,
        "--optimization_style",
        style,
        "--enable_type_reduction",
        "--allow_conversion_failures",
    )
    assert ref.returncode == 0, ref.stdout[-3000:] + ref.stderr[-3000:]
    ours_path = tmp_path / "ours.config"
    ours = cli("config", models, "-o", ours_path, "--optimization-style", style, "--allow-conversion-failures")
    ref_failed = _failed(ref.stdout, r"Error converting (\S+):")
    assert ours.returncode == (1 if ref_failed else 0), ours.stderr[-3000:]  # 1: some failed, as ORT's
    assert_same_config(ours_path, ref_dir / _reference_name(style, types=True))
    assert _failed(ours.stderr, r"failed: (\S+) \(") == ref_failed

    # Type reduction off: the same ops and no type information, as ORT writes without the flag.
    plain = tmp_path / "ours_plain.config"
    assert cli(
        "config",
        models,
        "-o",
        plain,
        "--optimization-style",
        style,
        "--no-type-reduction",
        "--allow-conversion-failures",
    ).returncode == (1 if ref_failed else 0)
    if model_set == "app_models":
        ref_plain = ort_convert(
            models, "--output_dir", ref_dir, "--optimization_style", style, "--allow_conversion_failures"
        )
        assert ref_plain.returncode == 0
        assert_same_config(plain, ref_dir / _reference_name(style, types=False))
    else:
        assert parse_config(plain.read_text()).ops == parse_config(ours_path.read_text()).ops
    assert "{" not in plain.read_text()


@pytest.mark.parametrize(
    ("flags", "ours_flags", "level"),
    [
        (["--target_platform", "arm"], ["--target-platform", "arm"], "all"),
        (["--target_platform", "amd64"], ["--target-platform", "amd64"], "all"),
        ([], ["--optimization-level", "basic"], "basic"),
        ([], ["--optimization-level", "disable"], "disable"),
    ],
)
def test_options_match_ort_converter(
    app_models: Path, flags: list[str], ours_flags: list[str], level: str, tmp_path: Path, cli: Cli
) -> None:
    models = tmp_path / "models"
    copy_models(app_models, models)
    ref_dir = tmp_path / "ort"
    env = {"ORT_CONVERT_ONNX_MODELS_TO_ORT_OPTIMIZATION_LEVEL": level}
    ref = ort_convert(
        models, "--output_dir", ref_dir, "--optimization_style", "Fixed", "--enable_type_reduction", *flags, env=env
    )
    assert ref.returncode == 0, ref.stderr[-3000:]
    ours = tmp_path / "ours.config"
    result = cli("config", models, "-o", ours, *ours_flags)
    assert result.returncode == 0, result.stderr
    assert_same_config(ours, ref_dir / _reference_name("Fixed", True, level))


def test_types_ort_cannot_name_keep_the_op_unrestricted(node_models: Path, tmp_path: Path, cli: Cli) -> None:
    """ORT's converter dies with KeyError on int4/uint4/int2/uint2/float8e8m0; we finish and keep the op whole."""
    models = tmp_path / "models"
    copy_models(node_models, models, keep=lambda p: p.stem in {"test_cast_FLOAT_to_INT4", "test_abs"})
    q = helper.make_graph(
        [helper.make_node("DequantizeLinear", ["q", "scale"], ["y"])],
        "int4_dq",
        [helper.make_tensor_value_info("q", TensorProto.INT4, [4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4])],
        [helper.make_tensor("scale", TensorProto.FLOAT, [], [0.5])],
    )
    onnx.save(helper.make_model(q, opset_imports=[helper.make_opsetid("", 21)]), models / "int4_dq.onnx")
    ref = ort_convert(
        models, "--output_dir", tmp_path / "ort", "--optimization_style", "Fixed", "--enable_type_reduction"
    )
    assert ref.returncode != 0
    assert "KeyError" in ref.stderr

    out = tmp_path / "ours.config"
    result = cli("config", models, "-o", out)
    assert result.returncode == 0, result.stderr
    assert "warning: models/test_cast_FLOAT_to_INT4.onnx: ai.onnx:Cast: element type INT4" in result.stderr
    assert "models/int4_dq.onnx: ai.onnx:DequantizeLinear: element type INT4" in result.stderr
    config = parse_config(out.read_text())
    assert ("ai.onnx", "Cast") not in config.types  # every Cast type kernel stays
    assert ("ai.onnx", "DequantizeLinear") not in config.types
    assert config.types[("ai.onnx", "Abs")].inputs == {0: frozenset({"float"})}
    assert {"Cast", "DequantizeLinear", "Abs"} <= {op for _, op in config.op_keys()}
