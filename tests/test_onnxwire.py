"""The wire-format look at a model that spares parsing it when it has no external data."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper, numpy_helper
from onnx.external_data_helper import convert_model_to_external_data
from ort_reduced_build.engine.external_data import external_data_locations
from ort_reduced_build.engine.onnxwire import may_have_external_data

from tests import modelgen


def _external(model: onnx.ModelProto, path: Path) -> Path:
    """Every tensor of the model, subgraphs' attribute tensors included, moved to ``w.bin``."""
    convert_model_to_external_data(model, location="w.bin", size_threshold=0, convert_attribute=True)
    onnx.save_model(model, path)
    return path


def _in_subgraph_constant() -> onnx.ModelProto:
    """The only external tensor is a Constant's value inside an If branch."""
    value = numpy_helper.from_array(np.arange(64, dtype=np.float32), "c")
    branch = helper.make_graph(
        [helper.make_node("Constant", [], ["y"], value=value)], "b", [], [helper.make_tensor_value_info("y", 1, [64])]
    )
    graph = helper.make_graph(
        [helper.make_node("If", ["cond"], ["out"], then_branch=branch, else_branch=branch)],
        "g",
        [helper.make_tensor_value_info("cond", TensorProto.BOOL, [])],
        [helper.make_tensor_value_info("out", 1, [64])],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _many_nodes(n: int) -> onnx.ModelProto:
    """More graph fields than the walk's budget for a file this small: it falls back to searching."""
    nodes = [helper.make_node("Relu", [f"x{i}"], [f"x{i + 1}"]) for i in range(n)]
    weight = numpy_helper.from_array(np.ones(16, np.float32), "w")
    nodes.append(helper.make_node("Add", [f"x{n}", "w"], ["y"]))
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x0", 1, [16])],
        [helper.make_tensor_value_info("y", 1, [16])],
        [weight],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


@pytest.mark.parametrize(
    "build",
    [modelgen.cnn, modelgen.control_flow, _in_subgraph_constant, lambda: _many_nodes(3000)],
    ids=["initializers", "subgraphs", "constant-in-subgraph", "over-budget"],
)
def test_external_data_is_always_seen(build: Callable[[], onnx.ModelProto], tmp_path: Path) -> None:
    model = build()
    plain = tmp_path / "plain.onnx"
    onnx.save_model(model, plain)
    assert not may_have_external_data(plain.read_bytes())
    assert external_data_locations(plain) == []
    external = _external(model, tmp_path / "external.onnx")
    assert may_have_external_data(external.read_bytes())
    assert external_data_locations(external) == ["w.bin"]


def test_raw_data_is_skipped_not_searched(tmp_path: Path) -> None:
    """Weights that happen to hold the bytes b"location" do not cost a parse."""
    raw = np.frombuffer(b"location" * 1000, dtype=np.float32)
    weight = numpy_helper.from_array(raw.copy(), "w")
    graph = helper.make_graph(
        [helper.make_node("Add", ["x", "w"], ["y"])],
        "g",
        [helper.make_tensor_value_info("x", 1, [raw.size])],
        [helper.make_tensor_value_info("y", 1, [raw.size])],
        [weight],
    )
    data = helper.make_model(graph).SerializeToString()
    assert b"location" in data
    assert not may_have_external_data(data)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=512))
def test_any_bytes_give_an_answer(data: bytes) -> None:
    """Malformed input never raises: it is searched, and a yes is settled by the full parse."""
    assert may_have_external_data(data) in (True, False)
