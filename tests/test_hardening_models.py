"""Bad models fail alone, in one line each, and never change a previous config (real files, real CLI runs)."""

from __future__ import annotations

import random
from pathlib import Path

import onnxruntime as ort
import pytest
from ort_reduced_build.engine.analyze import analyze_ort
from ort_reduced_build.errors import AnalyzeError

from tests import modelgen
from tests._hardening import one_node_model, tiny_mlp, write
from tests.conftest import Cli

_GOOD = modelgen.mlp(features=4, hidden=4, seed=1).SerializeToString()

# Each fixture is named after the failure it causes; the value is (bytes, a piece of the expected cause).
BAD_MODELS: dict[str, tuple[bytes, str]] = {
    "empty.onnx": (b"", "No graph was found"),
    "random_bytes.onnx": (bytes(range(256)) * 4, "Protobuf parsing failed"),
    "truncated_protobuf.onnx": (_GOOD[: len(_GOOD) // 2], "Protobuf parsing failed"),
    "text_file.onnx": (b"not a model; its external data location is nowhere\n", "Protobuf parsing failed"),
    "unknown_op.onnx": (one_node_model("NoSuchOp"), "No Op registered for NoSuchOp"),
    "unknown_domain.onnx": (
        one_node_model("Relu", "no.such.domain", (("", 17), ("no.such.domain", 1))),
        "no.such.domain:Relu(-1) is not a registered function/op",
    ),
    "opset_beyond_ort.onnx": (one_node_model("Relu", "", (("", 1000),)), "opset 1000"),
    "op_with_semicolon_in_custom_domain.onnx": (
        one_node_model("Re;lu", "evil.domain", (("", 17), ("evil.domain", 1))),
        "Re;lu",
    ),
    "op_with_comma.onnx": (one_node_model("Re,lu"), "No Op registered for Re,lu"),
    "op_with_brace.onnx": (one_node_model("Re{lu"), "No Op registered for Re{lu"),
    "op_with_newline.onnx": (one_node_model("Re\nlu"), "No Op registered for Re lu"),
    "domain_with_semicolon.onnx": (one_node_model("Relu", "ev;il", (("", 17), ("ev;il", 1))), "ev;il:Relu"),
    "domain_with_newline.onnx": (one_node_model("Relu", "ev\nil", (("", 17), ("ev\nil", 1))), "ev il:Relu"),
}


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    write(root / "models/good_a.onnx", tiny_mlp(1))
    write(root / "models/nested/good_b.onnx", tiny_mlp(2))
    return root


def test_bad_models_fail_in_one_line_each_and_leave_the_previous_config(project: Path, cli: Cli) -> None:
    good_only = project / "good_only.config"
    assert cli("config", "models", "-o", good_only, cwd=project).returncode == 0
    config = project / "c.config"
    config.write_bytes(good_only.read_bytes())
    for name, (data, _) in BAD_MODELS.items():
        write(project / "models/bad" / name, data)

    r = cli("config", "models", "-o", config, cwd=project)
    assert r.returncode == 1
    assert "Traceback" not in r.stderr
    lines = r.stderr.splitlines()
    assert len(lines) == len(BAD_MODELS), r.stderr  # one line per bad model, nothing else
    for name, (_, cause) in BAD_MODELS.items():
        [line] = [x for x in lines if x.startswith(f"error: models/bad/{name}: ")]
        assert cause.lower() in line.lower(), line
    assert config.read_bytes() == good_only.read_bytes()

    r = cli("config", "models", "-o", config, "--allow-conversion-failures", cwd=project)
    assert r.returncode == 1
    assert "Traceback" not in r.stderr
    n = len(BAD_MODELS) + 2
    assert f"{n} model(s), {n} conversion(s) (0 converted, 2 cached), {len(BAD_MODELS)} failed" in r.stderr
    for name in BAD_MODELS:
        assert f"failed: models/bad/{name} (Fixed): " in r.stderr
    assert config.read_bytes() == good_only.read_bytes()  # the config of the good models alone


def _saved_ort(path: Path, op: str = "Relu", domain: str = "") -> Path:
    """A real .ort of a one-node model, saved by onnxruntime in this process."""
    opsets = (("", 17), (domain, 1)) if domain else (("", 17),)
    src = write(path.with_suffix(".onnx"), one_node_model(op, domain, opsets))
    so = ort.SessionOptions()
    so.optimized_model_filepath = str(path)
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    so.log_severity_level = 3
    so.add_session_config_entry("session.save_model_format", "ORT")
    ort.InferenceSession(str(src), so, providers=["CPUExecutionProvider"])
    src.unlink()
    return path


@pytest.mark.parametrize(
    ("fixture", "op", "domain", "old", "new"),
    [
        ("ort_op_with_semicolon.ort", "Relu", "", b"Relu", b"R;lu"),
        ("ort_op_with_brace.ort", "Relu", "", b"Relu", b"R{lu"),
        ("ort_op_with_newline.ort", "Relu", "", b"Relu", b"R\nlu"),
        # the node's domain string (flatbuffer strings are length-prefixed: 13 = len("com.microsoft"))
        ("ort_domain_with_semicolon.ort", "Gelu", "com.microsoft", b"\r\0\0\0com.microsoft", b"\r\0\0\0com;microsoft"),
        ("ort_domain_with_comma.ort", "Gelu", "com.microsoft", b"\r\0\0\0com.microsoft", b"\r\0\0\0com,microsoft"),
    ],
)
def test_names_read_from_ort_files_cannot_inject_config_lines(
    tmp_path: Path, fixture: str, op: str, domain: str, old: bytes, new: bytes
) -> None:
    """onnxruntime only saves names it has kernels for; a hand-edited .ort is stopped by our reader."""
    path = _saved_ort(tmp_path / fixture, op, domain)
    data = path.read_bytes()
    assert old in data
    path.write_bytes(data.replace(old, new))  # same length: the flatbuffer stays well-formed
    with pytest.raises(AnalyzeError) as info:
        analyze_ort(path)
    assert str(info.value) == f"{path}: invalid operator or domain name {new.decode().lstrip(chr(13) + chr(0))!r}"


def test_a_bad_ort_among_good_models_is_reported_by_name(project: Path, cli: Cli) -> None:
    bad = _saved_ort(project / "models/ort_op_with_semicolon.ort")
    bad.write_bytes(bad.read_bytes().replace(b"Relu", b"R;lu"))
    r = cli("config", "models", "models/ort_op_with_semicolon.ort", "-o", "c.config", cwd=project)
    assert r.returncode == 1
    assert "Traceback" not in r.stderr
    assert r.stderr.strip().splitlines() == [
        "error: models/ort_op_with_semicolon.ort: invalid operator or domain name 'R;lu'"
    ], r.stderr
    assert not (project / "c.config").exists()


def test_corrupted_ort_files_raise_only_analyze_errors(tmp_path: Path) -> None:
    """A deterministic little fuzz of real .ort files (the atheris target in tests/fuzz/ goes further):
    every single-byte corruption and truncation ends in a result or an AnalyzeError, in bounded time."""
    from ort_reduced_build.engine.analyze import saved_runtime_optimizations

    source = write(tmp_path / "cnn.onnx", modelgen.cnn((4,), 8).SerializeToString())
    seed = tmp_path / "seed.ort"
    so = ort.SessionOptions()
    so.optimized_model_filepath = str(seed)
    so.log_severity_level = 3
    so.add_session_config_entry("session.save_model_format", "ORT")
    so.add_session_config_entry("optimization.minimal_build_optimizations", "save")  # runtime records too
    ort.InferenceSession(str(source), so, providers=["CPUExecutionProvider"])
    data = seed.read_bytes()
    rng = random.Random(3)
    path = tmp_path / "corrupt.ort"
    variants = [data[:n] for n in rng.sample(range(len(data)), 40)]
    variants.extend(
        data[:pos] + bytes([rng.choice([0x00, 0x7F, 0x80, 0xFF])]) + data[pos + 1 :]
        for pos in rng.sample(range(len(data)), 160)
    )
    for variant in variants:
        path.write_bytes(variant)
        for read in (analyze_ort, saved_runtime_optimizations):
            try:
                read(path)
            except AnalyzeError as exc:  # a variant may still be readable; an error must be one line
                assert str(exc).startswith(f"{path}: ")  # noqa: PT017
                assert "\n" not in str(exc)  # noqa: PT017
