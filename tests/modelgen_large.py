"""The benchmark's second set: a corpus that three ~86 MiB models dominate, beside many small ones.

As a real app corpus of that shape holds them: a BERT-style sentence encoder in fp32 (all-MiniLM-L6-v2's
shape: 30,522-token vocabulary, 6 layers, hidden 384), the same run through ORT's transformer optimizer,
and a TTS model of ~3,600 nodes with int8 weights (dynamic quantization), besides 36 small and mid-sized
models (CNNs, encoders, MLPs, scikit-learn, RNNs, QDQ/QOperator/int8, strings). Deterministic: fixed
seeds, no downloads; generating it takes about a minute.

``python -m tests.modelgen_large DIR`` writes the set into DIR.
"""

from __future__ import annotations

import argparse
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from tests.modelgen import (
    SETS,
    _init,
    _layer_norm,
    _model,
    _rng,
    attention,
    bert_like,
    cnn,
    dynamic_quantized,
    mlp,
    quantized,
    save,
    sklearn_pipeline,
    write_set,
)

F = TensorProto.FLOAT


def sentence_encoder(
    vocab: int = 30522, dim: int = 384, heads: int = 12, layers: int = 6, max_pos: int = 512, seed: int = 41
) -> onnx.ModelProto:
    """``bert_like``'s layers behind BERT embeddings (word, position, token type; LayerNorm): int64
    input_ids/token_type_ids/attention_mask in, last_hidden_state out."""
    model = bert_like(dim, heads, 128, layers, seed)
    graph = model.graph
    rng = _rng(seed + 1)
    inits = [
        _init("word_emb", (vocab, dim), rng),
        _init("pos_emb", (max_pos, dim), rng),
        _init("type_emb", (2, dim), rng),
    ]
    nodes = [
        helper.make_node("Gather", ["word_emb", "input_ids"], ["we"]),
        helper.make_node("Gather", ["type_emb", "token_type_ids"], ["te"]),
        helper.make_node("Shape", ["input_ids"], ["ids_shape"]),
        helper.make_node("Gather", ["ids_shape", "i1"], ["ids_len"], axis=0),
        helper.make_node("Range", ["i0", "ids_len", "i1"], ["positions"]),
        helper.make_node("Gather", ["pos_emb", "positions"], ["pe"]),
        helper.make_node("Add", ["we", "te"], ["emb0"]),
        helper.make_node("Add", ["emb0", "pe"], ["emb"]),
    ]
    emb = _layer_norm(nodes, inits, "emb", "emb_ln_", dim)
    # The mask as transformers exports it (``(1 - mask[:, None, None, :]) * -10000``): the optimizer fuses Attention.
    inits += [
        numpy_helper.from_array(np.array([1], np.int64), "axes1"),
        numpy_helper.from_array(np.array([2], np.int64), "axes2"),
    ]
    nodes += [
        helper.make_node("Unsqueeze", ["attention_mask", "axes1"], ["mask1"]),
        helper.make_node("Unsqueeze", ["mask1", "axes2"], ["mask12"]),
        helper.make_node("Cast", ["mask12"], ["mask_f"], to=F),
        helper.make_node("Sub", ["one", "mask_f"], ["mask_inv"]),
        helper.make_node("Mul", ["mask_inv", "neg"], ["mask_add"]),
    ]
    mask_nodes = {"mask_f", "mask_inv", "mask_add0", "mask_add"}
    kept = [n for n in graph.node if not mask_nodes & set(n.output)]
    renamed = {"x": emb, "y": "last_hidden_state"}
    for node in kept:
        node.input[:] = [renamed.get(name, name) for name in node.input]
        node.output[:] = [renamed.get(name, name) for name in node.output]
    nodes.extend(kept)
    del graph.node[:]
    graph.node.extend(nodes)
    kept_inits = [t for t in graph.initializer if t.name != "axes12"]  # bert_like's mask axes: unused now
    del graph.initializer[:]
    graph.initializer.extend([*kept_inits, *inits])
    ids = ["batch", "seq"]
    del graph.input[:], graph.output[:]
    graph.input.extend(
        helper.make_tensor_value_info(name, TensorProto.INT64, ids)
        for name in ("input_ids", "attention_mask", "token_type_ids")
    )
    graph.output.append(helper.make_tensor_value_info("last_hidden_state", F, [*ids, dim]))
    graph.name = "sentence_encoder"
    return model


def transformer_optimized(model: onnx.ModelProto, out: Path, heads: int = 12, dim: int = 384) -> None:
    """``model`` through ORT's transformer optimizer (``optimize_model``, model_type bert), into ``out``."""
    from onnxruntime.transformers.optimizer import optimize_model

    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "model.onnx"
        onnx.save(model, src)
        optimized = optimize_model(str(src), model_type="bert", num_heads=heads, hidden_size=dim, opt_level=0)
        out.parent.mkdir(parents=True, exist_ok=True)
        onnx.save(optimized.model, out)


class _Graph:
    """A graph under construction: nodes with one output each, named in order, and random weights."""

    def __init__(self, seed: int) -> None:
        self.rng = _rng(seed)
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []

    def op(self, op: str, *inputs: str, **attrs: Any) -> str:
        out = f"{op.lower()}_{len(self.nodes)}"
        self.nodes.append(helper.make_node(op, list(inputs), [out], **attrs))
        return out

    def const(self, value: np.ndarray) -> str:
        name = f"c{len(self.inits)}"
        self.inits.append(numpy_helper.from_array(value, name))
        return name

    def weight(self, *shape: int) -> str:
        name = f"w{len(self.inits)}"
        self.inits.append(_init(name, shape, self.rng))
        return name

    def linear(self, x: str, n_in: int, n_out: int) -> str:
        return self.op("Add", self.op("MatMul", x, self.weight(n_in, n_out)), self.weight(n_out))

    def conv(self, x: str, c_in: int, c_out: int, k: int, dilation: int = 1) -> str:
        pad = dilation * (k - 1) // 2
        w, b = self.weight(c_out, c_in, k), self.weight(c_out)
        return self.op("Conv", x, w, b, dilations=[dilation], pads=[pad, pad], kernel_shape=[k])

    def snake(self, x: str, c: int) -> str:
        """x + sin(a x)^2 / a with a per-channel a (BigVGAN's activation)."""
        alpha = self.const(np.full((1, c, 1), 1.0, np.float32) + self.rng.random((1, c, 1), np.float32))
        sin2 = self.op("Pow", self.op("Sin", self.op("Mul", x, alpha)), self.const(np.array(2.0, np.float32)))
        return self.op("Add", x, self.op("Div", sin2, alpha))

    def adain(self, x: str, style: str, c: int, style_dim: int) -> str:
        """Instance norm scaled and shifted by (1 + gamma, beta) computed from the style vector."""
        norm = self.op(
            "InstanceNormalization", x, self.const(np.ones(c, np.float32)), self.const(np.zeros(c, np.float32))
        )
        h = self.op("Reshape", self.linear(style, style_dim, 2 * c), self.const(np.array([1, 2 * c, 1], np.int64)))
        gamma = self.op("Slice", h, *(self.const(np.array([v], np.int64)) for v in (0, c, 1)))
        beta = self.op("Slice", h, *(self.const(np.array([v], np.int64)) for v in (c, 2 * c, 1)))
        one = self.const(np.array(1.0, np.float32))
        return self.op("Add", self.op("Mul", norm, self.op("Add", gamma, one)), beta)

    def adain_block(self, x: str, style: str, c: int, style_dim: int) -> str:
        """Two AdaIN/LeakyRelu/conv steps and a scaled residual connection."""
        y = x
        for _ in range(2):
            y = self.conv(self.op("LeakyRelu", self.adain(y, style, c, style_dim), alpha=0.2), c, c, 3)
        return self.op("Mul", self.op("Add", x, y), self.const(np.array(0.7071, np.float32)))

    def resblock(self, x: str, style: str, c: int, style_dim: int, kernel: int) -> str:
        """HiFi-GAN's resblock with AdaIN and Snake: three dilations, each two convs and a residual add."""
        for dilation in (1, 3, 5):
            t = self.conv(self.snake(self.adain(x, style, c, style_dim), c), c, c, kernel, dilation)
            t = self.conv(self.snake(self.adain(t, style, c, style_dim), c), c, c, kernel)
            x = self.op("Add", x, t)
        return x

    def albert(self, x: str, c: int, dim: int = 768, passes: int = 12) -> str:
        """An ALBERT-like encoder on [1, T, c]: one layer's weights, run ``passes`` times (ALBERT shares them)."""
        h = self.linear(x, c, dim)
        shared = [self.weight(dim, dim) for _ in range(4)] + [self.weight(dim, 2048), self.weight(2048, dim)]
        split = self.const(np.array([1, -1, 12, dim // 12], np.int64))
        merge = self.const(np.array([1, -1, dim], np.int64))
        ones, zeros = self.const(np.ones(dim, np.float32)), self.const(np.zeros(dim, np.float32))
        for _ in range(passes):
            q, k, v = (self.op("Reshape", self.op("MatMul", h, w), split) for w in shared[:3])
            qk = self.op(
                "MatMul", self.op("Transpose", q, perm=[0, 2, 1, 3]), self.op("Transpose", k, perm=[0, 2, 3, 1])
            )
            scores = self.op("Softmax", qk, axis=-1)
            ctx = self.op("MatMul", scores, self.op("Transpose", v, perm=[0, 2, 1, 3]))
            ctx = self.op("Reshape", self.op("Transpose", ctx, perm=[0, 2, 1, 3]), merge)
            h = self.op("LayerNormalization", self.op("Add", h, self.op("MatMul", ctx, shared[3])), ones, zeros)
            ff = self.op("MatMul", h, shared[4])
            gelu = self.op("Mul", ff, self.op("Sigmoid", self.op("Mul", ff, self.const(np.array(1.702, np.float32)))))
            h = self.op("LayerNormalization", self.op("Add", h, self.op("MatMul", gelu, shared[5])), ones, zeros)
        return h

    def bilstm(self, x: str, c_in: int, hidden: int) -> str:
        """A bidirectional LSTM over [1, C, T]: [1, 2 * hidden, T]."""
        seq = self.op("Transpose", x, perm=[2, 0, 1])
        w, r = self.weight(2, 4 * hidden, c_in), self.weight(2, 4 * hidden, hidden)
        y = self.op("LSTM", seq, w, r, self.weight(2, 8 * hidden), direction="bidirectional", hidden_size=hidden)
        y = self.op("Transpose", y, perm=[2, 1, 3, 0])
        return self.op("Reshape", y, self.const(np.array([1, 2 * hidden, -1], np.int64)))


def tts_like(seed: int = 51) -> onnx.ModelProto:
    """A TTS acoustic model and vocoder in the manner of StyleTTS2/Kokoro: token embedding, conv text
    encoder, BiLSTMs, a weight-shared ALBERT-like encoder run 12 times, style-conditioned (AdaIN) conv
    blocks, Snake-activated HiFi-GAN-style resblocks behind ConvTranspose upsampling, and a conv head."""
    g = _Graph(seed)
    c, sd = 512, 128
    style_a = g.op("Slice", "style", *(g.const(np.array([v], np.int64)) for v in (0, sd, 1)))
    style_b = g.op("Slice", "style", *(g.const(np.array([v], np.int64)) for v in (sd, 2 * sd, 1)))
    # Text encoder: embedding, three conv/LayerNorm/LeakyRelu blocks, a BiLSTM.
    x = g.op("Transpose", g.op("Gather", g.weight(178, c), "tokens"), perm=[0, 2, 1])
    for _ in range(3):
        x = g.op("Transpose", g.conv(x, c, c, 5), perm=[0, 2, 1])
        x = g.op("LayerNormalization", x, g.const(np.ones(c, np.float32)), g.const(np.zeros(c, np.float32)))
        x = g.op("LeakyRelu", g.op("Transpose", x, perm=[0, 2, 1]), alpha=0.2)
    text = g.bilstm(x, c, c // 2)
    h = g.albert(g.op("Transpose", text, perm=[0, 2, 1]), c)
    x = g.op("Add", text, g.op("Transpose", g.linear(h, 768, c), perm=[0, 2, 1]))
    # Prosody: BiLSTMs with AdaIN, then upsampled in time (a fixed x2 stands in for the durations).
    for _ in range(3):
        x = g.adain(g.bilstm(x, c, c // 2), style_b, c, sd)
    x = g.op("Resize", x, "", g.const(np.array([1.0, 1.0, 2.0], np.float32)), mode="nearest")
    # Pitch and energy: AdaIN residual blocks on the prosody features, each down to one channel.
    curves = []
    for _ in range(2):
        y = x
        for _ in range(3):
            y = g.adain_block(y, style_b, c, sd)
        curves.append(g.conv(y, c, 1, 1))
    # Decoder: AdaIN residual conv blocks at 2c channels.
    x = g.conv(g.op("Concat", x, *curves, axis=1), c + 2, 2 * c, 1)
    for _ in range(6):
        x = g.adain_block(x, style_a, 2 * c, sd)
    x = g.conv(x, 2 * c, c, 1)
    # Vocoder: ConvTranspose upsamplings, each followed by Snake/AdaIN resblocks and a resblock on a
    # sine source made from the pitch curve, brought to the stage's length.
    ch, scale, source = c, 1.0, g.op("Sin", curves[0])
    for rate in (5, 3, 2, 2):
        up = g.weight(ch, ch // 2, 2 * rate)
        pads = [rate // 2, rate - rate // 2]
        x = g.op("ConvTranspose", g.snake(x, ch), up, g.weight(ch // 2), strides=[rate], pads=pads)
        ch, scale = ch // 2, scale * rate
        stage_source = g.op("Resize", source, "", g.const(np.array([1.0, 1.0, scale], np.float32)), mode="nearest")
        total = g.resblock(g.conv(stage_source, 1, ch, 1), style_a, ch, sd, 7)
        for kernel in (3, 5, 7):
            total = g.op("Add", total, g.resblock(x, style_a, ch, sd, kernel))
        x = g.op("Div", total, g.const(np.array(4.0, np.float32)))
    spec = g.conv(g.op("LeakyRelu", x, alpha=0.01), ch, 22, 7)
    mag = g.op("Exp", g.op("Slice", spec, *(g.const(np.array([v], np.int64)) for v in (0, 11, 1))))
    phase = g.op("Sin", g.op("Slice", spec, *(g.const(np.array([v], np.int64)) for v in (11, 22, 1))))
    wave = g.op("ConvTranspose", g.op("Mul", mag, phase), g.weight(11, 1, 16), strides=[4], pads=[6, 6])
    g.nodes.append(helper.make_node("Tanh", [g.op("Reshape", wave, g.const(np.array([1, -1], np.int64)))], ["audio"]))
    graph = helper.make_graph(
        g.nodes,
        "tts_like",
        [
            helper.make_tensor_value_info("tokens", TensorProto.INT64, [1, "tokens"]),
            helper.make_tensor_value_info("style", F, [1, 2 * sd]),
        ],
        [helper.make_tensor_value_info("audio", F, [1, "samples"])],
        g.inits,
    )
    return _model(graph)


_LEFT_OUT = {"text/bert_base_like.onnx", "text/bert_medium_like.onnx"}
"""The bench set's two mid-sized encoders: here the three large models dominate."""
EXTRA: dict[str, Callable[[], onnx.ModelProto]] = {
    "extra/tabular/forest_small.onnx": sklearn_pipeline,
    "extra/tabular/mlp_medium.onnx": lambda: mlp(256, 1024, seed=3),
    "extra/text/attention_tiny.onnx": lambda: attention(64, 4, 16, seed=4, layers=2),
    "extra/text/bert_mini_like.onnx": lambda: bert_like(128, 2, 32, layers=2, seed=17),
    "extra/vision/classifier.onnx": lambda: cnn((8, 16, 32), 96, 10, seed=18),
    "extra/tabular/forest_medium.onnx": lambda: sklearn_pipeline(seed=2, trees=30, depth=6),
    "extra/tabular/mlp_small.onnx": lambda: mlp(64, 128, seed=5),
}


def write_large(out: Path) -> list[Path]:
    """The set: the three large models, then the small ones (bench less two, verify, extras); no two alike."""
    encoder = sentence_encoder()
    paths = [save(encoder, out / "text/sentence_encoder.onnx"), out / "text/sentence_encoder_opt.onnx"]
    transformer_optimized(encoder, paths[-1])
    paths.append(out / "audio/tts.int8.onnx")
    dynamic_quantized(tts_like(), paths[-1])
    paths += [save(build(), out / "app" / rel) for rel, build in SETS["bench"].items() if rel not in _LEFT_OUT]
    for rel, model, fmt in [
        ("app/vision/mobile_like.qdq.onnx", SETS["bench"]["vision/mobile_like.onnx"](), "QDQ"),
        ("app/vision/cnn_small.qop.onnx", cnn((16, 32), 64), "QOperator"),
        ("extra/audio/keyword_like.qdq.onnx", SETS["bench"]["audio/keyword_like.onnx"](), "QDQ"),
    ]:
        paths.append(out / rel)
        quantized(model, paths[-1], fmt)
    for name in ("bert_small_like", "bert_tiny_like"):
        paths.append(out / f"extra/text/{name}.int8.onnx")
        dynamic_quantized(SETS["bench"][f"text/{name}.onnx"](), paths[-1])
    paths += write_set("verify", out / "verify")
    return paths + [save(build(), out / rel) for rel, build in EXTRA.items()]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("out", type=Path)
    for p in write_large(parser.parse_args().out):
        print(p)
