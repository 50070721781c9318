"""Real ONNX models for tests, the demo and the benchmark, built with onnx.helper / skl2onnx /
onnxruntime.quantization. Deterministic: fixed seeds, no downloads.

``python -m tests.modelgen DIR [--set demo|bench]`` writes a model set into DIR.
"""

from __future__ import annotations

import argparse
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

F = TensorProto.FLOAT
OPSET = 17


def _rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def _init(name: str, shape: tuple[int, ...], rng: np.random.Generator, dtype: type = np.float32) -> onnx.TensorProto:
    return numpy_helper.from_array((rng.standard_normal(shape) * 0.1).astype(dtype), name)


def _model(graph: onnx.GraphProto, opset: int = OPSET, extra: tuple[tuple[str, int], ...] = ()) -> onnx.ModelProto:
    opsets = [helper.make_opsetid("", opset), *(helper.make_opsetid(d, v) for d, v in extra)]
    model = helper.make_model(graph, opset_imports=opsets)
    model.ir_version = 8
    return model


def cnn(channels: tuple[int, ...] = (8, 16), size: int = 32, classes: int = 10, seed: int = 0) -> onnx.ModelProto:
    """An image classifier: Conv/BatchNorm/Relu/MaxPool blocks, GlobalAveragePool, Gemm, Softmax."""
    rng = _rng(seed)
    nodes, inits = [], []
    prev, cin = "image", 3
    for i, cout in enumerate(channels):
        inits += [_init(f"w{i}", (cout, cin, 3, 3), rng), _init(f"b{i}", (cout,), rng)]
        inits += [
            numpy_helper.from_array(np.ones(cout, np.float32), f"s{i}"),
            numpy_helper.from_array(np.zeros(cout, np.float32), f"o{i}"),
            numpy_helper.from_array(np.zeros(cout, np.float32), f"m{i}"),
            numpy_helper.from_array(np.ones(cout, np.float32), f"v{i}"),
        ]
        nodes += [
            helper.make_node("Conv", [prev, f"w{i}", f"b{i}"], [f"c{i}"], pads=[1, 1, 1, 1]),
            helper.make_node("BatchNormalization", [f"c{i}", f"s{i}", f"o{i}", f"m{i}", f"v{i}"], [f"n{i}"]),
            helper.make_node("Relu", [f"n{i}"], [f"r{i}"]),
            helper.make_node("MaxPool", [f"r{i}"], [f"p{i}"], kernel_shape=[2, 2], strides=[2, 2]),
        ]
        prev, cin = f"p{i}", cout
    inits += [_init("fc_w", (cin, classes), rng), _init("fc_b", (classes,), rng)]
    nodes += [
        helper.make_node("GlobalAveragePool", [prev], ["gap"]),
        helper.make_node("Flatten", ["gap"], ["flat"]),
        helper.make_node("Gemm", ["flat", "fc_w", "fc_b"], ["logits"]),
        helper.make_node("Softmax", ["logits"], ["probabilities"], axis=1),
    ]
    graph = helper.make_graph(
        nodes,
        "cnn",
        [helper.make_tensor_value_info("image", F, [1, 3, size, size])],
        [helper.make_tensor_value_info("probabilities", F, [1, classes])],
        inits,
    )
    return _model(graph)


def mlp(features: int = 16, hidden: int = 32, seed: int = 1) -> onnx.ModelProto:
    """MatMul/Add/Tanh/Sigmoid and an ArgMax + Cast head (int64 output)."""
    rng = _rng(seed)
    inits = [
        _init("w1", (features, hidden), rng),
        _init("b1", (hidden,), rng),
        _init("w2", (hidden, 4), rng),
        _init("b2", (4,), rng),
    ]
    nodes = [
        helper.make_node("MatMul", ["x", "w1"], ["h"]),
        helper.make_node("Add", ["h", "b1"], ["ha"]),
        helper.make_node("Tanh", ["ha"], ["t"]),
        helper.make_node("MatMul", ["t", "w2"], ["o"]),
        helper.make_node("Add", ["o", "b2"], ["oa"]),
        helper.make_node("Sigmoid", ["oa"], ["scores"]),
        helper.make_node("ArgMax", ["scores"], ["label"], axis=1, keepdims=0),
    ]
    graph = helper.make_graph(
        nodes,
        "mlp",
        [helper.make_tensor_value_info("x", F, ["N", features])],
        [
            helper.make_tensor_value_info("scores", F, ["N", 4]),
            helper.make_tensor_value_info("label", TensorProto.INT64, ["N"]),
        ],
        inits,
    )
    return _model(graph)


def attention(dim: int = 32, heads: int = 4, seq: int = 8, seed: int = 2) -> onnx.ModelProto:
    """A transformer encoder block: LayerNormalization, Q/K/V MatMuls, Reshape/Transpose, Softmax, Gelu-ish Erf."""
    rng = _rng(seed)
    hd = dim // heads
    inits = [_init(n, (dim, dim), rng) for n in ("wq", "wk", "wv", "wo")]
    inits += [
        numpy_helper.from_array(np.ones(dim, np.float32), "ln_s"),
        numpy_helper.from_array(np.zeros(dim, np.float32), "ln_b"),
        numpy_helper.from_array(np.array([1, seq, heads, hd], np.int64), "split_shape"),
        numpy_helper.from_array(np.array([1, seq, dim], np.int64), "merge_shape"),
        numpy_helper.from_array(np.array(1.0 / np.sqrt(hd), np.float32), "scale"),
        numpy_helper.from_array(np.array(np.sqrt(0.5), np.float32), "rsqrt2"),
        numpy_helper.from_array(np.array(1.0, np.float32), "one"),
        numpy_helper.from_array(np.array(0.5, np.float32), "half"),
    ]
    nodes = [helper.make_node("LayerNormalization", ["x", "ln_s", "ln_b"], ["ln"], axis=-1)]
    for n in ("q", "k", "v"):
        nodes += [
            helper.make_node("MatMul", ["ln", f"w{n}"], [f"{n}0"]),
            helper.make_node("Reshape", [f"{n}0", "split_shape"], [f"{n}1"]),
            helper.make_node("Transpose", [f"{n}1"], [f"{n}2"], perm=[0, 2, 1, 3] if n != "k" else [0, 2, 3, 1]),
        ]
    nodes += [
        helper.make_node("MatMul", ["q2", "k2"], ["qk"]),
        helper.make_node("Mul", ["qk", "scale"], ["qks"]),
        helper.make_node("Softmax", ["qks"], ["attn"], axis=-1),
        helper.make_node("MatMul", ["attn", "v2"], ["ctx"]),
        helper.make_node("Transpose", ["ctx"], ["ctx_t"], perm=[0, 2, 1, 3]),
        helper.make_node("Reshape", ["ctx_t", "merge_shape"], ["ctx_m"]),
        helper.make_node("MatMul", ["ctx_m", "wo"], ["proj"]),
        helper.make_node("Add", ["proj", "x"], ["res"]),
        helper.make_node("Mul", ["res", "rsqrt2"], ["g0"]),
        helper.make_node("Erf", ["g0"], ["g1"]),
        helper.make_node("Add", ["g1", "one"], ["g2"]),
        helper.make_node("Mul", ["res", "g2"], ["g3"]),
        helper.make_node("Mul", ["g3", "half"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes,
        "attention",
        [helper.make_tensor_value_info("x", F, [1, seq, dim])],
        [helper.make_tensor_value_info("y", F, [1, seq, dim])],
        inits,
    )
    return _model(graph)


def control_flow() -> onnx.ModelProto:
    """If, Loop and Scan with subgraph-only ops (Abs, Neg, Sub, Sqrt, Mul) and int64/bool types."""
    then_g = helper.make_graph(
        [helper.make_node("Abs", ["x"], ["t"])], "then", [], [helper.make_tensor_value_info("t", F, [2])]
    )
    else_g = helper.make_graph(
        [helper.make_node("Neg", ["x"], ["e"])], "else", [], [helper.make_tensor_value_info("e", F, [2])]
    )
    loop_body = helper.make_graph(
        [helper.make_node("Identity", ["cond_in"], ["cond_out"]), helper.make_node("Sub", ["acc", "one"], ["acc_out"])],
        "body",
        [
            helper.make_tensor_value_info("i", TensorProto.INT64, []),
            helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
            helper.make_tensor_value_info("acc", F, [2]),
        ],
        [
            helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
            helper.make_tensor_value_info("acc_out", F, [2]),
        ],
    )
    scan_body = helper.make_graph(
        [helper.make_node("Mul", ["s_in", "elem"], ["s_out"]), helper.make_node("Sqrt", ["s_out"], ["scan_y"])],
        "scan_body",
        [helper.make_tensor_value_info("s_in", F, [2]), helper.make_tensor_value_info("elem", F, [2])],
        [helper.make_tensor_value_info("s_out", F, [2]), helper.make_tensor_value_info("scan_y", F, [2])],
    )
    nodes = [
        helper.make_node("ReduceSum", ["x"], ["sum"], keepdims=0),
        helper.make_node("Greater", ["sum", "zero"], ["cond"]),
        helper.make_node("If", ["cond"], ["branch"], then_branch=then_g, else_branch=else_g),
        helper.make_node("Loop", ["trip", "true", "branch"], ["looped"], body=loop_body),
        helper.make_node("Scan", ["looped", "seq"], ["scanned", "scan_out"], body=scan_body, num_scan_inputs=1),
    ]
    inits = [
        numpy_helper.from_array(np.array(0.0, np.float32), "zero"),
        numpy_helper.from_array(np.array(3, np.int64), "trip"),
        numpy_helper.from_array(np.array(True), "true"),
        numpy_helper.from_array(np.array(1.0, np.float32), "one"),
    ]
    graph = helper.make_graph(
        nodes,
        "control_flow",
        [helper.make_tensor_value_info("x", F, [2]), helper.make_tensor_value_info("seq", F, [3, 2])],
        [helper.make_tensor_value_info("scanned", F, [2]), helper.make_tensor_value_info("scan_out", F, [3, 2])],
        inits,
    )
    return _model(graph)


def sklearn_pipeline(seed: int = 0) -> onnx.ModelProto:
    """StandardScaler + RandomForest (ai.onnx.ml: Scaler, TreeEnsembleClassifier, ZipMap, string labels)."""
    from skl2onnx import to_onnx
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    rng = _rng(seed)
    x = rng.standard_normal((60, 4)).astype(np.float32)
    y = np.array(["setosa", "versicolor", "virginica"])[(x[:, 0] > 0).astype(int) + (x[:, 1] > 0.5).astype(int)]
    pipe = make_pipeline(StandardScaler(), RandomForestClassifier(n_estimators=3, max_depth=3, random_state=seed))
    pipe.fit(x, y)
    return to_onnx(pipe, x[:1], target_opset={"": OPSET, "ai.onnx.ml": 3})


def quantized(model: onnx.ModelProto, out: Path, fmt: str = "QDQ") -> None:
    """Static-quantize ``model`` (QDQ or QOperator) with a tiny calibration set, into ``out``."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, quantize_static

    inp = model.graph.input[0]
    shape = [d.dim_value or 1 for d in inp.type.tensor_type.shape.dim]

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            rng = _rng(3)
            self.data = iter([{inp.name: rng.standard_normal(shape).astype(np.float32)} for _ in range(4)])

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self.data, None)

    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "float.onnx"
        onnx.save(model, src)
        fmt_enum = QuantFormat.QDQ if fmt == "QDQ" else QuantFormat.QOperator
        quantize_static(str(src), str(out), Reader(), quant_format=fmt_enum)


def save(model: onnx.ModelProto, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, path)
    return path


SETS: dict[str, dict[str, Callable[[], onnx.ModelProto]]] = {
    "demo": {
        "vision/classifier.onnx": cnn,
        "text/encoder.onnx": attention,
        "tabular/mlp.onnx": mlp,
    },
    "bench": {
        "vision/cnn_small.onnx": lambda: cnn((16, 32), 64),
        "vision/cnn_wide.onnx": lambda: cnn((32, 64, 128), 96, seed=5),
        "vision/cnn_deep.onnx": lambda: cnn((16, 16, 32, 32, 64, 64), 128, seed=6),
        "text/encoder_small.onnx": attention,
        "text/encoder_large.onnx": lambda: attention(256, 8, 64, seed=7),
        "tabular/mlp.onnx": mlp,
        "tabular/mlp_wide.onnx": lambda: mlp(256, 1024, seed=8),
        "misc/control_flow.onnx": control_flow,
        "tabular/forest.onnx": sklearn_pipeline,
    },
}


def write_set(name: str, out: Path) -> list[Path]:
    paths = [save(build(), out / rel) for rel, build in SETS[name].items()]
    if name == "bench":
        paths.append(out / "vision/cnn_small.qdq.onnx")
        quantized(cnn((16, 32), 64), paths[-1], "QDQ")
    return paths


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("out", type=Path)
    parser.add_argument("--set", default="demo", choices=sorted(SETS))
    args = parser.parse_args()
    for p in write_set(args.set, args.out):
        print(p)
