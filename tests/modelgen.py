"""Real ONNX models for tests, the demo and the benchmark, built with onnx.helper / skl2onnx /
onnxruntime.quantization. Deterministic: fixed seeds, no downloads.

``python -m tests.modelgen DIR [--set demo|bench|verify]`` writes a model set into DIR.
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


def _stable_opsets(model: onnx.ModelProto) -> onnx.ModelProto:
    """skl2onnx lists opset imports in set order; sort them so the file's bytes do not vary between runs."""
    imports = sorted((o.domain, o.version) for o in model.opset_import)
    del model.opset_import[:]
    model.opset_import.extend(helper.make_opsetid(d, v) for d, v in imports)
    return model


def _dense(
    nodes: list[onnx.NodeProto],
    inits: list[onnx.TensorProto],
    rng: np.random.Generator,
    x: str,
    p: str,
    n_in: int,
    n_out: int,
) -> str:
    """A fully connected layer ``x @ {p}w + {p}b`` appended to ``nodes``/``inits``; its output's name."""
    inits.extend([_init(f"{p}w", (n_in, n_out), rng), _init(f"{p}b", (n_out,), rng)])
    nodes.extend(
        [
            helper.make_node("MatMul", [x, f"{p}w"], [f"{p}mm"]),
            helper.make_node("Add", [f"{p}mm", f"{p}b"], [f"{p}out"]),
        ]
    )
    return f"{p}out"


def cnn(
    channels: tuple[int, ...] = (8, 16), size: int = 32, classes: int = 10, seed: int = 0, depth: int = 1
) -> onnx.ModelProto:
    """An image classifier: Conv/BatchNorm/Relu/MaxPool blocks, GlobalAveragePool, Gemm, Softmax."""
    rng = _rng(seed)
    nodes, inits = [], []
    prev, cin = "image", 3
    for i, cout in enumerate(channels):
        for j in range(depth):
            k = f"{i}" if depth == 1 else f"{i}_{j}"
            inits += [_init(f"w{k}", (cout, cin, 3, 3), rng), _init(f"b{k}", (cout,), rng)]
            inits += [
                numpy_helper.from_array(np.ones(cout, np.float32), f"s{k}"),
                numpy_helper.from_array(np.zeros(cout, np.float32), f"o{k}"),
                numpy_helper.from_array(np.zeros(cout, np.float32), f"m{k}"),
                numpy_helper.from_array(np.ones(cout, np.float32), f"v{k}"),
            ]
            nodes += [
                helper.make_node("Conv", [prev, f"w{k}", f"b{k}"], [f"c{k}"], pads=[1, 1, 1, 1]),
                helper.make_node("BatchNormalization", [f"c{k}", f"s{k}", f"o{k}", f"m{k}", f"v{k}"], [f"n{k}"]),
                helper.make_node("Relu", [f"n{k}"], [f"r{k}"]),
            ]
            prev, cin = f"r{k}", cout
        nodes.append(helper.make_node("MaxPool", [prev], [f"p{i}"], kernel_shape=[2, 2], strides=[2, 2]))
        prev = f"p{i}"
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


def attention(dim: int = 32, heads: int = 4, seq: int = 8, seed: int = 2, layers: int = 1) -> onnx.ModelProto:
    """Transformer encoder blocks: LayerNormalization, Q/K/V MatMuls, Reshape/Transpose, Softmax, Gelu-ish Erf."""
    rng = _rng(seed)
    hd = dim // heads
    inits = [
        numpy_helper.from_array(np.ones(dim, np.float32), "ln_s"),
        numpy_helper.from_array(np.zeros(dim, np.float32), "ln_b"),
        numpy_helper.from_array(np.array([1, seq, heads, hd], np.int64), "split_shape"),
        numpy_helper.from_array(np.array([1, seq, dim], np.int64), "merge_shape"),
        numpy_helper.from_array(np.array(1.0 / np.sqrt(hd), np.float32), "scale"),
        numpy_helper.from_array(np.array(np.sqrt(0.5), np.float32), "rsqrt2"),
        numpy_helper.from_array(np.array(1.0, np.float32), "one"),
        numpy_helper.from_array(np.array(0.5, np.float32), "half"),
    ]
    nodes = []
    x = "x"
    for layer in range(layers):
        p = f"l{layer}_" if layers > 1 else ""
        inits += [_init(f"{p}w{n}", (dim, dim), rng) for n in ("q", "k", "v", "o")]
        nodes.append(helper.make_node("LayerNormalization", [x, "ln_s", "ln_b"], [f"{p}ln"], axis=-1))
        for n in ("q", "k", "v"):
            perm = [0, 2, 1, 3] if n != "k" else [0, 2, 3, 1]
            nodes += [
                helper.make_node("MatMul", [f"{p}ln", f"{p}w{n}"], [f"{p}{n}0"]),
                helper.make_node("Reshape", [f"{p}{n}0", "split_shape"], [f"{p}{n}1"]),
                helper.make_node("Transpose", [f"{p}{n}1"], [f"{p}{n}2"], perm=perm),
            ]
        out = "y" if layer == layers - 1 else f"{p}y"
        nodes += [
            helper.make_node("MatMul", [f"{p}q2", f"{p}k2"], [f"{p}qk"]),
            helper.make_node("Mul", [f"{p}qk", "scale"], [f"{p}qks"]),
            helper.make_node("Softmax", [f"{p}qks"], [f"{p}attn"], axis=-1),
            helper.make_node("MatMul", [f"{p}attn", f"{p}v2"], [f"{p}ctx"]),
            helper.make_node("Transpose", [f"{p}ctx"], [f"{p}ctx_t"], perm=[0, 2, 1, 3]),
            helper.make_node("Reshape", [f"{p}ctx_t", "merge_shape"], [f"{p}ctx_m"]),
            helper.make_node("MatMul", [f"{p}ctx_m", f"{p}wo"], [f"{p}proj"]),
            helper.make_node("Add", [f"{p}proj", x], [f"{p}res"]),
            helper.make_node("Mul", [f"{p}res", "rsqrt2"], [f"{p}g0"]),
            helper.make_node("Erf", [f"{p}g0"], [f"{p}g1"]),
            helper.make_node("Add", [f"{p}g1", "one"], [f"{p}g2"]),
            helper.make_node("Mul", [f"{p}res", f"{p}g2"], [f"{p}g3"]),
            helper.make_node("Mul", [f"{p}g3", "half"], [out]),
        ]
        x = out
    graph = helper.make_graph(
        nodes,
        "attention",
        [helper.make_tensor_value_info("x", F, [1, seq, dim])],
        [helper.make_tensor_value_info("y", F, [1, seq, dim])],
        inits,
    )
    return _model(graph)


def _layer_norm(nodes: list[onnx.NodeProto], inits: list[onnx.TensorProto], x: str, p: str, dim: int) -> str:
    """LayerNorm over the last axis as PyTorch exports it below opset 17 (ReduceMean, Sub, Pow, ... Add); needs the
    constants ``two`` and ``eps`` in the graph. Its output's name."""
    inits.extend(
        [
            numpy_helper.from_array(np.ones(dim, np.float32), f"{p}g"),
            numpy_helper.from_array(np.zeros(dim, np.float32), f"{p}b"),
        ]
    )
    nodes.extend(
        [
            helper.make_node("ReduceMean", [x], [f"{p}mu"], axes=[-1]),
            helper.make_node("Sub", [x, f"{p}mu"], [f"{p}d"]),
            helper.make_node("Pow", [f"{p}d", "two"], [f"{p}sq"]),
            helper.make_node("ReduceMean", [f"{p}sq"], [f"{p}var"], axes=[-1]),
            helper.make_node("Add", [f"{p}var", "eps"], [f"{p}ve"]),
            helper.make_node("Sqrt", [f"{p}ve"], [f"{p}sd"]),
            helper.make_node("Div", [f"{p}d", f"{p}sd"], [f"{p}n"]),
            helper.make_node("Mul", [f"{p}n", f"{p}g"], [f"{p}ng"]),
            helper.make_node("Add", [f"{p}ng", f"{p}b"], [f"{p}out"]),
        ]
    )
    return f"{p}out"


def _bert_layers(
    nodes: list[onnx.NodeProto], inits: list[onnx.TensorProto], rng: np.random.Generator, x: str, dim: int, layers: int
) -> str:
    """Encoder layers on ``x`` [batch, seq, dim] as PyTorch exports them: attention with a mask, decomposed LayerNorm
    and Gelu, FFN. Needs the constants of ``bert_like`` (eps, two, one, half, sqrt2, scale) and the values
    split_shape, merge_shape, mask_add in the graph. Its output's name."""

    def layer_norm(x: str, p: str) -> str:
        return _layer_norm(nodes, inits, x, p, dim)

    def dense(x: str, p: str, n_in: int, n_out: int) -> str:
        return _dense(nodes, inits, rng, x, p, n_in, n_out)

    for i in range(layers):
        p = f"l{i}_"
        heads_out = {}
        for n in ("q", "k", "v"):
            h = dense(x, f"{p}{n}_", dim, dim)
            perm = [0, 2, 3, 1] if n == "k" else [0, 2, 1, 3]
            nodes.extend(
                [
                    helper.make_node("Reshape", [h, "split_shape"], [f"{p}{n}r"]),
                    helper.make_node("Transpose", [f"{p}{n}r"], [f"{p}{n}t"], perm=perm),
                ]
            )
            heads_out[n] = f"{p}{n}t"
        nodes.extend(
            [
                helper.make_node("MatMul", [heads_out["q"], heads_out["k"]], [f"{p}qk"]),
                helper.make_node("Div", [f"{p}qk", "scale"], [f"{p}qks"]),
                helper.make_node("Add", [f"{p}qks", "mask_add"], [f"{p}qkm"]),
                helper.make_node("Softmax", [f"{p}qkm"], [f"{p}probs"], axis=-1),
                helper.make_node("MatMul", [f"{p}probs", heads_out["v"]], [f"{p}ctx"]),
                helper.make_node("Transpose", [f"{p}ctx"], [f"{p}ctxt"], perm=[0, 2, 1, 3]),
                helper.make_node("Reshape", [f"{p}ctxt", "merge_shape"], [f"{p}ctxm"]),
            ]
        )
        attn = dense(f"{p}ctxm", f"{p}o_", dim, dim)
        nodes.append(helper.make_node("Add", [attn, x], [f"{p}res1"]))
        h1 = layer_norm(f"{p}res1", f"{p}ln1_")
        ff = dense(h1, f"{p}ff1_", dim, 4 * dim)
        nodes.extend(
            [
                helper.make_node("Div", [ff, "sqrt2"], [f"{p}gd"]),
                helper.make_node("Erf", [f"{p}gd"], [f"{p}ge"]),
                helper.make_node("Add", [f"{p}ge", "one"], [f"{p}ga"]),
                helper.make_node("Mul", [ff, f"{p}ga"], [f"{p}gm"]),
                helper.make_node("Mul", [f"{p}gm", "half"], [f"{p}gelu"]),
            ]
        )
        ff2 = dense(f"{p}gelu", f"{p}ff2_", 4 * dim, dim)
        nodes.append(helper.make_node("Add", [ff2, h1], [f"{p}res2"]))
        x = layer_norm(f"{p}res2", f"{p}ln2_")
    return x


def bert_like(dim: int = 256, heads: int = 4, seq: int = 128, layers: int = 4, seed: int = 11) -> onnx.ModelProto:
    """A transformer encoder as PyTorch exports it: decomposed LayerNorm and Gelu, FFN, attention mask,
    shape arithmetic (Shape/Gather/Unsqueeze/Concat) feeding Reshape. ORT's optimizer fuses much of it."""
    rng = _rng(seed)
    hd = dim // heads
    c: dict[str, np.ndarray] = {
        "eps": np.array(1e-12, np.float32),
        "two": np.array(2.0, np.float32),
        "one": np.array(1.0, np.float32),
        "half": np.array(0.5, np.float32),
        "sqrt2": np.array(np.sqrt(2.0), np.float32),
        "scale": np.array(np.sqrt(hd), np.float32),
        "i0": np.array(0, np.int64),
        "i1": np.array(1, np.int64),
        "heads": np.array([heads], np.int64),
        "hd": np.array([hd], np.int64),
        "dim": np.array([dim], np.int64),
        "axes0": np.array([0], np.int64),
        "neg": np.array(-10000.0, np.float32),
    }
    inits = [numpy_helper.from_array(v, k) for k, v in c.items()]
    nodes = [
        helper.make_node("Shape", ["x"], ["shape"]),
        helper.make_node("Gather", ["shape", "i0"], ["batch"], axis=0),
        helper.make_node("Gather", ["shape", "i1"], ["seqlen"], axis=0),
        helper.make_node("Unsqueeze", ["batch", "axes0"], ["batch1"]),
        helper.make_node("Unsqueeze", ["seqlen", "axes0"], ["seq1"]),
        helper.make_node("Concat", ["batch1", "seq1", "heads", "hd"], ["split_shape"], axis=0),
        helper.make_node("Concat", ["batch1", "seq1", "dim"], ["merge_shape"], axis=0),
        helper.make_node("Cast", ["mask"], ["mask_f"], to=F),
        helper.make_node("Sub", ["one", "mask_f"], ["mask_inv"]),
        helper.make_node("Mul", ["mask_inv", "neg"], ["mask_add0"]),
        helper.make_node("Unsqueeze", ["mask_add0", "axes12"], ["mask_add"]),
    ]
    inits.append(numpy_helper.from_array(np.array([1, 2], np.int64), "axes12"))

    x = _bert_layers(nodes, inits, rng, "x", dim, layers)
    nodes.append(helper.make_node("Identity", [x], ["y"]))
    graph = helper.make_graph(
        nodes,
        "bert_like",
        [
            helper.make_tensor_value_info("x", F, ["batch", seq, dim]),
            helper.make_tensor_value_info("mask", TensorProto.INT64, ["batch", seq]),
        ],
        [helper.make_tensor_value_info("y", F, ["batch", seq, dim])],
        inits,
    )
    return _model(graph, opset=OPSET)


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


def sklearn_pipeline(seed: int = 0, trees: int = 3, depth: int = 3) -> onnx.ModelProto:
    """StandardScaler + RandomForest (ai.onnx.ml: Scaler, TreeEnsembleClassifier, ZipMap, string labels)."""
    from skl2onnx import to_onnx
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    rng = _rng(seed)
    x = rng.standard_normal((max(60, trees * 20), 4)).astype(np.float32)
    y = np.array(["setosa", "versicolor", "virginica"])[(x[:, 0] > 0).astype(int) + (x[:, 1] > 0.5).astype(int)]
    pipe = make_pipeline(
        StandardScaler(), RandomForestClassifier(n_estimators=trees, max_depth=depth, random_state=seed)
    )
    pipe.fit(x, y)
    model: onnx.ModelProto = to_onnx(pipe, x[:1], target_opset={"": OPSET, "ai.onnx.ml": 3})
    return _stable_opsets(model)


def bert_encoder(vocab: int = 100, dim: int = 32, heads: int = 2, max_seq: int = 64, seed: int = 21) -> onnx.ModelProto:
    """Int64 input_ids/attention_mask/token_type_ids [batch, seq]: Gather embeddings, Range positions, one layer."""
    rng = _rng(seed)
    hd = dim // heads
    c: dict[str, np.ndarray] = {
        "i0": np.array(0, np.int64),
        "i1": np.array(1, np.int64),
        "one": np.array(1.0, np.float32),
        "half": np.array(0.5, np.float32),
        "sqrt2": np.array(np.sqrt(2.0), np.float32),
        "neg": np.array(-10000.0, np.float32),
        "scale": np.array(1.0 / np.sqrt(hd), np.float32),
        "axes12": np.array([1, 2], np.int64),
        "split_shape": np.array([0, 0, heads, hd], np.int64),  # 0: copy batch/seq from the input
        "merge_shape": np.array([0, 0, dim], np.int64),
    }
    inits = [numpy_helper.from_array(v, k) for k, v in c.items()]
    inits += [
        _init("word_emb", (vocab, dim), rng),
        _init("pos_emb", (max_seq, dim), rng),
        _init("type_emb", (2, dim), rng),
    ]
    nodes = [
        helper.make_node("Gather", ["word_emb", "input_ids"], ["we"]),
        helper.make_node("Gather", ["type_emb", "token_type_ids"], ["te"]),
        helper.make_node("Shape", ["input_ids"], ["shape"]),
        helper.make_node("Gather", ["shape", "i1"], ["seqlen"], axis=0),
        helper.make_node("Range", ["i0", "seqlen", "i1"], ["positions"]),
        helper.make_node("Gather", ["pos_emb", "positions"], ["pe"]),
        helper.make_node("Add", ["we", "te"], ["emb0"]),
        helper.make_node("Add", ["emb0", "pe"], ["emb"]),
        helper.make_node("Cast", ["attention_mask"], ["mask_f"], to=F),
        helper.make_node("Sub", ["one", "mask_f"], ["mask_inv"]),
        helper.make_node("Mul", ["mask_inv", "neg"], ["mask_add0"]),
        helper.make_node("Unsqueeze", ["mask_add0", "axes12"], ["mask_add"]),
    ]

    def layer_norm(x: str, p: str) -> str:
        inits.extend(
            [
                numpy_helper.from_array(np.ones(dim, np.float32), f"{p}g"),
                numpy_helper.from_array(np.zeros(dim, np.float32), f"{p}b"),
            ]
        )
        nodes.append(helper.make_node("LayerNormalization", [x, f"{p}g", f"{p}b"], [f"{p}out"], axis=-1))
        return f"{p}out"

    def dense(x: str, p: str, n_in: int, n_out: int) -> str:
        return _dense(nodes, inits, rng, x, p, n_in, n_out)

    h0 = layer_norm("emb", "ln0_")
    qkv = {}
    for n in ("q", "k", "v"):
        perm = [0, 2, 3, 1] if n == "k" else [0, 2, 1, 3]
        nodes.extend(
            [
                helper.make_node("Reshape", [dense(h0, f"{n}_", dim, dim), "split_shape"], [f"{n}r"]),
                helper.make_node("Transpose", [f"{n}r"], [f"{n}t"], perm=perm),
            ]
        )
        qkv[n] = f"{n}t"
    nodes.extend(
        [
            helper.make_node("MatMul", [qkv["q"], qkv["k"]], ["qk"]),
            helper.make_node("Mul", ["qk", "scale"], ["qks"]),
            helper.make_node("Add", ["qks", "mask_add"], ["qkm"]),
            helper.make_node("Softmax", ["qkm"], ["probs"], axis=-1),
            helper.make_node("MatMul", ["probs", qkv["v"]], ["ctx"]),
            helper.make_node("Transpose", ["ctx"], ["ctxt"], perm=[0, 2, 1, 3]),
            helper.make_node("Reshape", ["ctxt", "merge_shape"], ["ctxm"]),
        ]
    )
    nodes.append(helper.make_node("Add", [dense("ctxm", "o_", dim, dim), h0], ["res1"]))
    h1 = layer_norm("res1", "ln1_")
    ff = dense(h1, "ff1_", dim, 2 * dim)
    nodes.extend(
        [
            helper.make_node("Div", [ff, "sqrt2"], ["gd"]),
            helper.make_node("Erf", ["gd"], ["ge"]),
            helper.make_node("Add", ["ge", "one"], ["ga"]),
            helper.make_node("Mul", [ff, "ga"], ["gm"]),
            helper.make_node("Mul", ["gm", "half"], ["gelu"]),
        ]
    )
    nodes.append(helper.make_node("Add", [dense("gelu", "ff2_", 2 * dim, dim), h1], ["res2"]))
    nodes.append(helper.make_node("Identity", [layer_norm("res2", "ln2_")], ["last_hidden_state"]))
    ids = ["batch", "seq"]
    graph = helper.make_graph(
        nodes,
        "bert_encoder",
        [
            helper.make_tensor_value_info("input_ids", TensorProto.INT64, ids),
            helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ids),
            helper.make_tensor_value_info("token_type_ids", TensorProto.INT64, ids),
        ],
        [helper.make_tensor_value_info("last_hidden_state", F, [*ids, dim])],
        inits,
    )
    return _model(graph)


def _recurrent(op: str, gates: int, states: tuple[str, ...], seed: int, **attrs: int) -> onnx.ModelProto:
    """One ONNX ``op`` (LSTM: 4 gates, GRU: 3) with initial-state inputs ``states`` and every output;
    input size 8, hidden size 16, dynamic seq and batch."""
    inputs, hidden = 8, 16
    rng = _rng(seed)
    inits = [
        _init("W", (1, gates * hidden, inputs), rng),
        _init("R", (1, gates * hidden, hidden), rng),
        _init("B", (1, 2 * gates * hidden), rng),
    ]
    outputs = ["Y", *(f"Y_{s.removeprefix('initial_')}" for s in states)]
    node = helper.make_node(op, ["x", "W", "R", "B", "", *states], outputs)
    node.attribute.extend(helper.make_attribute(k, v) for k, v in sorted({"hidden_size": hidden, **attrs}.items()))
    state: list[str | int] = [1, "batch", hidden]
    graph = helper.make_graph(
        [node],
        f"{op.lower()}_state" if op == "LSTM" else op.lower(),
        [
            helper.make_tensor_value_info("x", F, ["seq", "batch", inputs]),
            *(helper.make_tensor_value_info(s, F, state) for s in states),
        ],
        [
            helper.make_tensor_value_info("Y", F, ["seq", 1, "batch", hidden]),
            *(helper.make_tensor_value_info(o, F, state) for o in outputs[1:]),
        ],
        inits,
    )
    return _model(graph)


def lstm_state() -> onnx.ModelProto:
    """LSTM with initial_h/initial_c inputs and all three outputs Y, Y_h, Y_c; dynamic seq and batch."""
    return _recurrent("LSTM", 4, ("initial_h", "initial_c"), seed=22)


def gru() -> onnx.ModelProto:
    """GRU (linear_before_reset, as PyTorch exports it) with an initial_h input; outputs Y, Y_h; dynamic seq/batch."""
    return _recurrent("GRU", 3, ("initial_h",), seed=23, linear_before_reset=1)


def float16_mlp(features: int = 8, hidden: int = 16, seed: int = 24) -> onnx.ModelProto:
    """Float16 end to end: a float16 input through MatMul/Add/Relu/MatMul to a float16 output."""
    rng = _rng(seed)
    inits = [
        _init("w1", (features, hidden), rng, np.float16),
        _init("b1", (hidden,), rng, np.float16),
        _init("w2", (hidden, 4), rng, np.float16),
    ]
    nodes = [
        helper.make_node("MatMul", ["x", "w1"], ["h"]),
        helper.make_node("Add", ["h", "b1"], ["ha"]),
        helper.make_node("Relu", ["ha"], ["r"]),
        helper.make_node("MatMul", ["r", "w2"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes,
        "float16",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT16, ["N", features])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT16, ["N", 4])],
        inits,
    )
    return _model(graph)


def mixed_types(width: int = 4) -> onnx.ModelProto:
    """Bool/double/(u)int8/int32/uint16/uint32 inputs; Cast, Sum, Not, And, Where, Neg, Clip; outputs of 7 types."""
    T = TensorProto  # noqa: N806 -- short, for the tables below
    inputs = {
        "flag": T.BOOL,
        "d": T.DOUBLE,
        "i8": T.INT8,
        "u8": T.UINT8,
        "i32": T.INT32,
        "u16": T.UINT16,
        "u32": T.UINT32,
    }
    inits = [
        numpy_helper.from_array(np.array(0.0, np.float64), "zero_d"),
        numpy_helper.from_array(np.array(2, np.uint8), "u8_lo"),
        numpy_helper.from_array(np.array(7, np.uint8), "u8_hi"),
    ]
    nodes = [helper.make_node("Cast", [n], [f"{n}_f"], to=F) for n in ("i8", "u8", "i32", "u16", "u32")]
    nodes += [
        helper.make_node("Sum", ["i8_f", "u8_f", "i32_f", "u16_f", "u32_f"], ["total"]),
        helper.make_node("Not", ["flag"], ["not_flag"]),
        helper.make_node("Greater", ["d", "zero_d"], ["d_pos"]),
        helper.make_node("And", ["not_flag", "d_pos"], ["flags"]),
        helper.make_node("Cast", ["total"], ["total_d"], to=T.DOUBLE),
        helper.make_node("Where", ["flag", "d", "total_d"], ["mixed"]),
        helper.make_node("Cast", ["u8"], ["u8_i32"], to=T.INT32),
        helper.make_node("Add", ["i32", "u8_i32"], ["isum"]),
        helper.make_node("Cast", ["u16"], ["u16_u32"], to=T.UINT32),
        helper.make_node("Add", ["u32", "u16_u32"], ["usum"]),
        helper.make_node("Neg", ["i8"], ["i8_neg"]),
        helper.make_node("Clip", ["u8", "u8_lo", "u8_hi"], ["u8_clip"]),
    ]
    outputs = {
        "total": F,
        "flags": T.BOOL,
        "mixed": T.DOUBLE,
        "isum": T.INT32,
        "usum": T.UINT32,
        "i8_neg": T.INT8,
        "u8_clip": T.UINT8,
    }
    graph = helper.make_graph(
        nodes,
        "types",
        [helper.make_tensor_value_info(n, t, ["N", width]) for n, t in inputs.items()],
        [helper.make_tensor_value_info(n, t, ["N", width]) for n, t in outputs.items()],
        inits,
    )
    return _model(graph)


def split_sequence(features: int = 6) -> onnx.ModelProto:
    """A sequence-of-tensors output (SplitToSequence into unequal parts) and a 0-d int64 SequenceLength output."""
    nodes = [
        helper.make_node("Relu", ["x"], ["r"]),
        helper.make_node("SplitToSequence", ["r", "split"], ["parts"], axis=1),
        helper.make_node("SequenceLength", ["parts"], ["count"]),
    ]
    graph = helper.make_graph(
        nodes,
        "sequence",
        [helper.make_tensor_value_info("x", F, ["N", features])],
        [
            helper.make_tensor_sequence_value_info("parts", F, ["N", None]),
            helper.make_tensor_value_info("count", TensorProto.INT64, []),
        ],
        [numpy_helper.from_array(np.array([2, features - 2], np.int64), "split")],
    )
    return _model(graph)


def strings_onehot(seed: int = 25) -> onnx.ModelProto:
    """String + float inputs: ColumnTransformer(OneHotEncoder, StandardScaler) + a tree with string labels (ZipMap)."""
    from skl2onnx import to_onnx
    from skl2onnx.common.data_types import FloatTensorType, StringTensorType
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler
    from sklearn.tree import DecisionTreeClassifier

    rng = _rng(seed)
    colors = rng.choice(np.array(["a", "b", "c"]), 60)
    nums = rng.standard_normal((60, 2))
    x = np.concatenate([colors[:, None].astype(object), nums.astype(object)], axis=1)
    y = np.where((colors == "a") | (nums[:, 0] > 0.5), "yes", "no")
    pipe = make_pipeline(
        ColumnTransformer([("cat", OneHotEncoder(handle_unknown="ignore"), [0]), ("num", StandardScaler(), [1, 2])]),
        DecisionTreeClassifier(max_depth=3, random_state=seed),
    )
    pipe.fit(x, y)
    types = [("color", StringTensorType([None, 1])), ("nums", FloatTensorType([None, 2]))]
    return _stable_opsets(to_onnx(pipe, initial_types=types, target_opset={"": OPSET, "ai.onnx.ml": 3}))


def tfidf(seed: int = 26) -> onnx.ModelProto:
    """TfidfVectorizer + LogisticRegression, string input [None, 1]: StringNormalizer, Tokenizer, TfIdfVectorizer."""
    from skl2onnx import to_onnx
    from skl2onnx.common.data_types import StringTensorType
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    rng = _rng(seed)
    words = np.array(["red", "green", "blue", "cat", "dog", "fish", "a", "b", "fast", "slow"])
    docs = [" ".join(rng.choice(words, 4)) for _ in range(40)]
    y = np.array([sum(w in ("cat", "dog", "fish") for w in d.split()) % 3 for d in docs], np.int64)
    pipe = make_pipeline(TfidfVectorizer(), LogisticRegression(max_iter=200))
    pipe.fit(docs, y)
    types = [("text", StringTensorType([None, 1]))]
    return _stable_opsets(to_onnx(pipe, initial_types=types, target_opset={"": OPSET, "ai.onnx.ml": 3}))


def quantized(model: onnx.ModelProto, out: Path, fmt: str = "QDQ") -> None:
    """Static-quantize ``model`` (QDQ or QOperator) with a tiny calibration set, into ``out``."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, quantize_static

    inp = model.graph.input[0]
    shape = [d.dim_value or 1 for d in inp.type.tensor_type.shape.dim]

    class Reader(CalibrationDataReader):  # type: ignore[misc]  # onnxruntime is untyped: its classes are Any
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


def dynamic_quantized(model: onnx.ModelProto, out: Path) -> None:
    """Dynamic-quantize ``model`` (int8 weights: DynamicQuantizeLinear, MatMulInteger and friends), into ``out``."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    out.parent.mkdir(parents=True, exist_ok=True)
    quantize_dynamic(model, out, weight_type=QuantType.QInt8)


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
    "bench": {  # an app bundle: several mid-sized models, as apps ship them
        "vision/resnet_like.onnx": lambda: cnn((64, 128, 256, 512), 224, 1000, seed=5, depth=2),
        "vision/mobile_like.onnx": lambda: cnn((32, 64, 128, 256), 160, 1000, seed=6, depth=2),
        "vision/detector_like.onnx": lambda: cnn((32, 64, 128, 256, 256), 320, 100, seed=9, depth=2),
        "vision/segmenter_like.onnx": lambda: cnn((32, 64, 128, 256, 384), 256, 21, seed=14, depth=2),
        "vision/cnn_small.onnx": lambda: cnn((16, 32), 64),
        "audio/keyword_like.onnx": lambda: cnn((16, 32, 64), 64, 12, seed=15, depth=2),
        "text/bert_base_like.onnx": lambda: bert_like(512, 8, 128, layers=6, seed=7),
        "text/bert_medium_like.onnx": lambda: bert_like(384, 6, 128, layers=6, seed=13),
        "text/bert_small_like.onnx": lambda: bert_like(256, 4, 128, layers=6, seed=10),
        "text/bert_tiny_like.onnx": lambda: bert_like(128, 2, 64, layers=4, seed=12),
        "text/encoder_small.onnx": lambda: attention(384, 6, 128, seed=8, layers=6),
        "text/encoder_medium.onnx": lambda: attention(512, 8, 128, seed=16, layers=6),
        "tabular/mlp.onnx": mlp,
        "tabular/mlp_wide.onnx": lambda: mlp(1024, 4096, seed=8),
        "misc/control_flow.onnx": control_flow,
        "tabular/forest.onnx": lambda: sklearn_pipeline(trees=100, depth=10),
    },
    "verify": {  # small models covering every input/output kind a run-and-compare tool meets
        "text/bert_encoder.onnx": bert_encoder,
        "rnn/lstm_state.onnx": lstm_state,
        "rnn/gru.onnx": gru,
        "tabular/strings_onehot.onnx": strings_onehot,
        "text/tfidf.onnx": tfidf,
        "misc/float16.onnx": float16_mlp,
        "misc/types.onnx": mixed_types,
        "misc/sequence.onnx": split_sequence,
    },
}


def write_set(name: str, out: Path) -> list[Path]:
    paths = [save(build(), out / rel) for rel, build in SETS[name].items()]
    if name == "bench":
        paths.append(out / "vision/mobile_like.qdq.onnx")
        quantized(SETS[name]["vision/mobile_like.onnx"](), paths[-1], "QDQ")
        paths.append(out / "vision/cnn_small.qop.onnx")
        quantized(cnn((16, 32), 64), paths[-1], "QOperator")
    if name == "verify":
        paths.append(out / "text/bert_encoder.int8.onnx")
        dynamic_quantized(bert_encoder(), paths[-1])
        paths.append(out / "vision/cnn_qdq.onnx")
        quantized(cnn(), paths[-1], "QDQ")
    return paths


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("out", type=Path)
    parser.add_argument("--set", default="demo", choices=sorted(SETS))
    args = parser.parse_args()
    for p in write_set(args.set, args.out):
        print(p)
