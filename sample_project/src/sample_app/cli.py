"""``sample-app``: run the bundled ORT-format models on sample inputs and print their predictions.

``sample-app --ops`` prints the operator config the wheel ships: the ops a minimal ONNX Runtime
needs to run these models.
"""

from __future__ import annotations

import argparse
from importlib import resources

import numpy as np
import onnxruntime as ort

CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
CONFIG = "required_operators_and_types.config"


def session(name: str) -> ort.InferenceSession:
    """An inference session for a bundled ``.ort`` model (ORT format: no graph optimizations to redo)."""
    with resources.as_file(resources.files("sample_app") / "models" / name) as path:
        return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def sample_image() -> np.ndarray:
    """A deterministic 32x32 RGB test pattern: a diagonal gradient with a bright square."""
    y, x = np.mgrid[0:32, 0:32].astype(np.float32) / 31.0
    image = np.stack([x, y, (x + y) / 2]) - 0.5
    image[:, 10:20, 10:20] = 1.0
    return image[np.newaxis]


def classify_image() -> str:
    (probabilities,) = session("image_classifier.ort").run(None, {"image": sample_image()})
    top = np.argsort(probabilities[0])[::-1][:3]
    return "image classifier: " + ", ".join(f"{CLASSES[i]} {probabilities[0][i]:.3f}" for i in top)


def classify_flowers() -> list[str]:
    measurements = np.array([[-1.2, -0.4, 0.3, 0.1], [0.8, 0.2, -0.5, 1.0], [1.1, 1.7, 0.4, -0.2]], np.float32)
    labels, probabilities = session("flower_species.ort").run(None, {"X": measurements})
    return [
        f"flower species: [{', '.join(f'{v:g}' for v in row)}] -> {label} ({probs[label]:.2f})"
        for row, label, probs in zip(measurements, labels, probabilities, strict=True)
    ]


def op_names(ops: str) -> list[str]:
    """``Conv{"inputs": {"0": ["float"]}},Relu`` -> ``["Conv", "Relu"]`` (type info skipped)."""
    names, depth, name = [], 0, ""
    for char in ops + ",":
        depth += {"{": 1, "}": -1}.get(char, 0)
        if depth == 0 and char == ",":
            names.append(name.strip())
            name = ""
        elif depth == 0 and char != "}":
            name += char
    return [n for n in names if n]


def ops_summary() -> str:
    """The bundled config, and one line per domain with the number of ops."""
    text = (resources.files("sample_app") / CONFIG).read_text(encoding="utf-8")
    counts: dict[str, int] = {}
    for line in text.splitlines():
        if line and not line.startswith(("#", "!")):
            domain, _, ops = line.split(";", 2)
            counts[domain] = counts.get(domain, 0) + len(op_names(ops))
    summary = [f"{domain}: {count} op(s)" for domain, count in sorted(counts.items())]
    return f"{text.rstrip()}\n\n{CONFIG}: " + "; ".join(summary)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="sample-app", description=__doc__.splitlines()[0])
    parser.add_argument("--ops", action="store_true", help="print the bundled operator config and a summary")
    args = parser.parse_args(argv)
    if args.ops:
        print(ops_summary())
        return 0
    print(f"onnxruntime {ort.__version__}")
    print(classify_image())
    for line in classify_flowers():
        print(line)
    return 0
