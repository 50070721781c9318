"""Coverage and diff semantics on hand-written configs (no conversion): ORT's processors decide types."""

from __future__ import annotations

import json

from ort_reduced_build.engine.config import parse_config
from ort_reduced_build.inspect.check import find_gaps
from ort_reduced_build.inspect.diff import diff_configs
from ort_reduced_build.inspect.explain import explain_config, explain_models

MODEL = """\
ai.onnx;14;Mul{"inputs": {"0": ["float", "int64_t"]}},Add{"inputs": {"0": ["int32_t"]}}
ai.onnx;19;DequantizeLinear{"inputs": {"0": ["int8_t", "uint16_t"]}}
ai.onnx;11;OneHot{"custom": [["int64_t", "int64_t", "float"]]}
ai.onnx;13;Gather{"inputs": {"0": ["float"], "1": ["int64_t"]}}
ai.onnx;13;Cast{"inputs": {"0": ["float"]}, "outputs": {"0": ["int64_t"]}}
ai.onnx;16;If
ai.onnx.ml;3;TreeEnsembleClassifier
"""


def gaps(model: str, config: str) -> list[str]:
    return [g.need.describe() for g in find_gaps({"m.onnx": parse_config(model)}, parse_config(config))]


def test_same_config_covers_itself() -> None:
    assert gaps(MODEL, MODEL) == []


def test_op_without_type_info_allows_all_types() -> None:
    stripped = """\
ai.onnx;14;Mul,Add
ai.onnx;19;DequantizeLinear
ai.onnx;11;OneHot
ai.onnx;13;Gather,Cast
ai.onnx;16;If
ai.onnx.ml;3;TreeEnsembleClassifier
"""
    assert gaps(MODEL, stripped) == []


def test_types_ort_always_keeps_are_covered() -> None:
    # Add/Mul keep int32_t/int64_t and DequantizeLinear int8_t/uint8_t/int32_t (required_input_types).
    config = MODEL.replace('["float", "int64_t"]', '["float"]').replace('["int32_t"]', '["float"]')
    config = config.replace('["int8_t", "uint16_t"]', '["uint16_t"]')
    assert gaps(MODEL, config) == []


def test_missing_types_are_reported_per_argument() -> None:
    config = MODEL.replace('"outputs": {"0": ["int64_t"]}', '"outputs": {"0": ["int32_t"]}')
    config = config.replace('["int8_t", "uint16_t"]', '["uint8_t"]')
    config = config.replace('[["int64_t", "int64_t", "float"]]', '[["int64_t", "int64_t", "int32_t"]]')
    assert gaps(MODEL, config) == [
        "ai.onnx;11;OneHot custom type int64_t,int64_t,float",
        "ai.onnx;13;Cast output 0 type int64_t",
        "ai.onnx;19;DequantizeLinear input 0 type uint16_t",
    ]


def test_unrestricted_argument_allows_all_types() -> None:
    config = MODEL.replace('"inputs": {"0": ["float"], "1": ["int64_t"]}', '"inputs": {"0": ["float"]}')
    assert gaps(MODEL, config) == []


def test_opset_must_match_the_kernel_line() -> None:
    config = MODEL.replace("ai.onnx;16;If", "ai.onnx;11;If")
    result = find_gaps({"a.onnx": parse_config(MODEL), "b.onnx": parse_config(MODEL)}, parse_config(config))
    assert [(g.need.describe(), g.models) for g in result] == [
        ("ai.onnx;16;If (op not in config)", ("a.onnx", "b.onnx"))
    ]
    assert "opset 11" in result[0].hint


def test_globally_allowed_types() -> None:
    ops = "ai.onnx;14;Mul,Add\nai.onnx;19;DequantizeLinear\nai.onnx;11;OneHot\nai.onnx;13;Gather,Cast\n"
    ops += "ai.onnx;16;If\nai.onnx.ml;3;TreeEnsembleClassifier\n"
    assert gaps(MODEL, ops + "!globally_allowed_types;float,int64_t,uint16_t") == []
    assert gaps(MODEL, ops + "!globally_allowed_types;float") == [
        "ai.onnx;11;OneHot custom type int64_t,int64_t,float",
        "ai.onnx;13;Cast output 0 type int64_t",
        "ai.onnx;13;Gather input 1 type int64_t",
        "ai.onnx;19;DequantizeLinear input 0 type uint16_t",
    ]


def test_all_ops_line_covers_everything() -> None:
    assert gaps(MODEL, "!no_ops_specified_means_all_ops_are_required\n") == []


def test_diff_ops_and_types() -> None:
    old = parse_config(MODEL)
    new = parse_config(
        MODEL.replace("ai.onnx;16;If", "ai.onnx;21;If").replace('["float", "int64_t"]', '["double", "int64_t"]')
    )
    diff = diff_configs(old, new, "old.config", "new.config")
    assert not diff.identical
    assert diff.lines() == [
        "--- old.config",
        "+++ new.config",
        "- ai.onnx;16;If",
        "+ ai.onnx;21;If",
        "~ ai.onnx:Mul input 0: +double -float",
    ]
    obj = diff.to_json_obj()
    assert obj["ops_added"] == [{"domain": "ai.onnx", "opset": 21, "op": "If", "types": None}]
    assert obj["types_changed"][0]["added"] == {"input 0": ["double"]}
    assert json.dumps(obj)


def test_diff_ignores_comments_and_order() -> None:
    old = parse_config("# header\n" + MODEL)
    new = parse_config("\n".join(reversed(MODEL.splitlines())))
    assert diff_configs(old, new).identical
    assert diff_configs(old, new).lines()[-1] == "no differences"


def test_diff_type_reduction_off_and_global_types() -> None:
    old = parse_config(MODEL)
    new = old.without_types()
    lines = diff_configs(old, new).lines()
    assert "~ ai.onnx:Cast: input 0 float; output 0 int64_t -> all types" in lines
    glob = parse_config("ai.onnx;16;If\n!globally_allowed_types;float")
    lines = diff_configs(parse_config("ai.onnx;16;If"), glob).lines()
    assert lines[-1] == "~ !globally_allowed_types: (none) -> float"


def test_explain_config_and_models() -> None:
    explanation = explain_config(parse_config(MODEL), "x.config")
    assert [u.name for u in explanation.only("ai.onnx", "Cast").ops] == ["ai.onnx:Cast"]
    assert explanation.to_json_obj()["models"] == []
    models = {"a.onnx": parse_config("ai.onnx;16;If\nai.onnx;13;Abs"), "b.onnx": parse_config("ai.onnx;16;If")}
    explained = explain_models(models, "models")
    assert explained.op_counts() == {"a.onnx": 2, "b.onnx": 1}
    assert explained.single_model_ops() == {"a.onnx": ["ai.onnx:Abs"], "b.onnx": []}
