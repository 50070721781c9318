"""The config grammar: parse, merge, format — and agreement with ORT's own parser."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from onnxruntime.tools.ort_format_model.operator_type_usage_processors import (
    DefaultTypeUsageProcessor,
    _create_operator_type_usage_processors,
)
from onnxruntime.tools.ort_format_model.types import FbsTypeInfo
from onnxruntime.tools.reduced_build_config_parser import parse_config as ort_parse_config
from ort_reduced_build.engine.config import OpsConfig, TypeUsage, format_config, merge, parse_config
from ort_reduced_build.errors import ConfigError

CAST_A = 'ai.onnx;13;Cast{"inputs": {"0": ["float"]}, "outputs": {"0": ["int64_t"]}}'
CAST_B = 'ai.onnx;13;Cast{"inputs": {"0": ["int32_t"]}, "outputs": {"0": ["float"]}}'


def test_merge_is_a_union_per_argument_index_not_last_wins(tmp_path: Path) -> None:
    merged = merge([parse_config(CAST_A), parse_config(CAST_B)])
    usage = merged.types[("ai.onnx", "Cast")]
    assert usage.inputs == {0: {"float", "int32_t"}}
    assert usage.outputs == {0: {"float", "int64_t"}}
    # Concatenating the two files is what goes wrong: ORT's parser keeps only the last entry.
    concatenated = tmp_path / "cat.config"
    concatenated.write_text(CAST_A + "\n" + CAST_B + "\n")
    _, ort_filter = ort_parse_config(str(concatenated), True)
    assert "float, int64_t" not in " ".join(ort_filter.get_cpp_entries())
    ours = tmp_path / "ours.config"
    ours.write_text(format_config(merged))
    _, ort_filter = ort_parse_config(str(ours), True)
    entries = " ".join(ort_filter.get_cpp_entries())
    assert "Input, 0, float, int32_t" in entries
    assert "Output, 0, float, int64_t" in entries


def test_an_op_without_types_in_one_config_stays_unrestricted() -> None:
    merged = merge([parse_config(CAST_A), parse_config("ai.onnx;13;Cast")])
    assert ("ai.onnx", "Cast") not in merged.types
    assert format_config(merged).strip().endswith("ai.onnx;13;Cast")


def test_format_is_sorted_and_deterministic() -> None:
    text = "com.microsoft;1;FusedConv\nai.onnx;14;Mul,Add\nai.onnx;13;Softmax\n!globally_allowed_types;int64_t,float\n"
    with pytest.raises(ConfigError, match="exclusive"):
        parse_config(text + 'ai.onnx;13;Abs{"inputs": {"0": ["float"]}}\n')
    out = format_config(parse_config(text), ["header"])
    assert out == (
        "# header\nai.onnx;13;Softmax\nai.onnx;14;Add,Mul\ncom.microsoft;1;FusedConv\n"
        "!globally_allowed_types;float,int64_t\n"
    )


def test_multi_opset_lines_and_custom_type_info() -> None:
    cfg = parse_config('ai.onnx;11,13;OneHot{"custom": [["float", "int64_t", "int64_t"]]},Relu')
    assert cfg.ops["ai.onnx"] == {11: {"OneHot", "Relu"}, 13: {"OneHot", "Relu"}}
    assert cfg.types[("ai.onnx", "OneHot")].custom == {("float", "int64_t", "int64_t")}
    assert 'OneHot{"custom": [["float", "int64_t", "int64_t"]]}' in format_config(cfg)


@pytest.mark.parametrize(
    ("text", "cause"),
    [
        ("ai.onnx;13", "expected 'domain;opset;ops'"),
        ("ai.onnx;x;Relu", "invalid opset"),
        ("ai onnx;13;Relu", "invalid domain"),
        ("ai.onnx;13;Re lu", "expected ','"),
        ('ai.onnx;13;Cast{"inputs": {"0": ["float"]}', "malformed type info"),
        ('ai.onnx;13;Cast{"inputs": {"zero": ["float"]}}', "argument index"),
        ('ai.onnx;13;Cast{"weird": 1}', "inputs/outputs/custom"),
        ("!globally_allowed_types;float\n!globally_allowed_types;float", "already specified"),
        ('ai.onnx;13;Cast{"inputs": ' + "[" * 100_000, "nested too deeply"),  # was a RecursionError
    ],
)
def test_parse_errors_name_the_source_line_and_cause(text: str, cause: str) -> None:
    with pytest.raises(ConfigError, match=cause) as info:
        parse_config("# ok\n" + text, "my.config")
    assert str(info.value).startswith("my.config:")


@pytest.mark.parametrize("name", ["Re;lu", "Re,lu", "Re{lu", "Re\nlu", ""])
def test_names_that_could_inject_lines_are_refused(name: str) -> None:
    with pytest.raises(ConfigError):
        format_config(OpsConfig({"ai.onnx": {13: frozenset({name})}}))
    with pytest.raises(ConfigError):
        format_config(OpsConfig({name: {1: frozenset({"Relu"})}}))


# -- properties ------------------------------------------------------------------------------------

names = st.from_regex(r"[A-Za-z][A-Za-z0-9_.]{0,8}", fullmatch=True)
types = st.sampled_from(["float", "double", "int8_t", "uint8_t", "int32_t", "int64_t", "bool", "MLFloat16"])
type_sets = st.frozensets(types, min_size=1, max_size=3)
usages = st.builds(
    TypeUsage,
    inputs=st.dictionaries(st.integers(0, 3), type_sets, max_size=2),
    outputs=st.dictionaries(st.integers(0, 2), type_sets, max_size=2),
)


@st.composite
def configs(draw: st.DrawFn) -> OpsConfig:
    ops = draw(
        st.dictionaries(
            names,
            st.dictionaries(st.integers(1, 25), st.frozensets(names, min_size=1, max_size=4), min_size=1, max_size=3),
            max_size=3,
        )
    )
    keys = sorted({(d, op) for d, opsets in ops.items() for v in opsets.values() for op in v})
    restricted = draw(st.lists(st.sampled_from(keys), unique=True)) if keys else []
    return OpsConfig(ops, {k: draw(usages) for k in restricted}, all_ops_if_empty=draw(st.booleans()))


@settings(max_examples=150, deadline=None)
@given(configs())
def test_parse_of_format_is_identity(cfg: OpsConfig) -> None:
    assert parse_config(format_config(cfg)) == merge([cfg])


@settings(max_examples=150, deadline=None)
@given(configs(), configs(), configs())
def test_merge_is_commutative_associative_idempotent(a: OpsConfig, b: OpsConfig, c: OpsConfig) -> None:
    assert merge([a, b]) == merge([b, a])
    assert merge([merge([a, b]), c]) == merge([a, merge([b, c])])
    assert merge([a, a]) == merge([a])


@settings(max_examples=60, deadline=None)
@given(configs())
def test_ort_parser_reads_what_we_write(tmp_path_factory: pytest.TempPathFactory, cfg: OpsConfig) -> None:
    path = tmp_path_factory.mktemp("prop") / "c.config"
    path.write_text(format_config(cfg, ["property test"]))
    required, _ = ort_parse_config(str(path), True)
    expected = {d: {v: set(n) for v, n in opsets.items() if n} for d, opsets in cfg.ops.items()}
    assert (required or {}) == {d: o for d, o in expected.items() if o}


# ORT's own reading of what we write: ops *and* types. ORT keeps type info only for ops it has a type-usage
# processor for (and reads "custom" only for OneHot), so these configs use those ops.
_ORT_PROCESSORS = {
    tuple(key.split(":")): processor
    for key, processor in _create_operator_type_usage_processors().items()
    if isinstance(processor, DefaultTypeUsageProcessor)
}
ort_types = st.sampled_from(sorted(set(FbsTypeInfo.tensordatatype_to_string.values())))
ort_usages = st.builds(
    TypeUsage,
    inputs=st.dictionaries(st.integers(0, 3), st.frozensets(ort_types, min_size=1, max_size=3), max_size=2),
    outputs=st.dictionaries(st.integers(0, 2), st.frozensets(ort_types, min_size=1, max_size=3), max_size=2),
)


@st.composite
def ort_typed_configs(draw: st.DrawFn) -> OpsConfig:
    keys = draw(st.lists(st.sampled_from(sorted(_ORT_PROCESSORS)), min_size=1, max_size=6, unique=True))
    ops: dict[str, dict[int, frozenset[str]]] = {}
    for domain, op in keys:
        for opset in draw(st.sets(st.integers(1, 21), min_size=1, max_size=2)):
            ops.setdefault(domain, {})[opset] = ops.get(domain, {}).get(opset, frozenset()) | {op}
    restricted = draw(st.lists(st.sampled_from(keys), unique=True))
    return OpsConfig(ops, {k: draw(ort_usages) for k in restricted})


@settings(max_examples=60, deadline=None)
@given(ort_typed_configs())
def test_ort_parser_gets_the_same_types(tmp_path_factory: pytest.TempPathFactory, cfg: OpsConfig) -> None:
    path = tmp_path_factory.mktemp("prop") / "c.config"
    path.write_text(format_config(cfg))
    required, type_filter = ort_parse_config(str(path), True)
    assert required == {d: {v: set(n) for v, n in opsets.items()} for d, opsets in cfg.ops.items()}
    manager = type_filter._manager if type_filter is not None else None  # ORT's OperatorTypeUsageManager
    for domain, op in cfg.op_keys():
        ours = cfg.types.get((domain, op))
        theirs = manager.get_config_entry(domain, op) if manager is not None else None
        if ours is None or not (ours.inputs or ours.outputs):
            assert theirs is None  # unrestricted (or restricted to nothing: ORT drops the empty entry)
        else:
            assert theirs is not None, (domain, op)
            assert TypeUsage.from_json_obj(json.loads(theirs)) == ours


@settings(max_examples=40, deadline=None)
@given(st.frozensets(ort_types, min_size=1), configs())
def test_ort_parser_gets_the_same_globally_allowed_types(
    tmp_path_factory: pytest.TempPathFactory, allowed: frozenset[str], cfg: OpsConfig
) -> None:
    cfg = merge([cfg.without_types(), OpsConfig(globally_allowed_types=allowed)])
    path = tmp_path_factory.mktemp("prop") / "c.config"
    path.write_text(format_config(cfg))
    assert parse_config(path.read_text()) == cfg
    _, type_filter = ort_parse_config(str(path), True)
    assert type_filter.global_type_list() == set(allowed)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from('ai.onx;,{}[]":0123456789 _!#\n\tfloatinputsoutcmRelu'), max_size=80))
def test_any_text_parses_or_fails_with_a_config_error_and_reformats_stably(text: str) -> None:
    try:
        cfg = parse_config(text, "fuzz.config")
    except ConfigError as exc:  # either outcome is the property: parsed, or this error
        assert str(exc).startswith("fuzz.config")  # noqa: PT017
        return
    formatted = format_config(cfg)
    assert parse_config(formatted) == cfg
    assert format_config(parse_config(formatted)) == formatted
