"""Outputs never silently wrong: no two models written to one file, no input overwritten, errors named right."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests._hardening import one_node_model, tiny_mlp, write


def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_two_roots_with_one_model_name_are_refused_not_overwritten(tmp_path: Path, cli) -> None:
    write(tmp_path / "a/model.onnx", tiny_mlp(1))
    write(tmp_path / "b/model.onnx", tiny_mlp(2))
    r = cli("convert", "a", "b", "-o", "out")
    assert r.returncode == 1, r.stderr
    lines = [line for line in r.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, r.stderr
    assert "a/model.onnx and b/model.onnx would both be written to out/model.ort" in lines[0]
    assert not (tmp_path / "out").exists()  # nothing written, not even the config


def test_names_equal_but_for_case_collide(tmp_path: Path, cli) -> None:
    write(tmp_path / "m/y.onnx", tiny_mlp(1))
    write(tmp_path / "m/y.ONNX", tiny_mlp(2))
    r = cli("convert", "m", "-o", "out")
    assert r.returncode == 1, r.stderr
    assert "m/y.ONNX and m/y.onnx would both be written to out/y.ort" in r.stderr
    assert not (tmp_path / "out").exists()
    # beside the sources, too (on a case-insensitive filesystem they would be one file)
    before = _tree(tmp_path / "m")
    r = cli("convert", "m")
    assert r.returncode == 1 and "would both be written to" in r.stderr, r.stderr
    assert _tree(tmp_path / "m") == before


def test_distinct_names_in_two_roots_still_convert(tmp_path: Path, cli) -> None:
    write(tmp_path / "a/one.onnx", tiny_mlp(1))
    write(tmp_path / "b/two.onnx", tiny_mlp(2))
    r = cli("convert", "a", "b", "-o", "out")
    assert r.returncode == 0, r.stderr
    assert {"one.ort", "two.ort"} <= set(_tree(tmp_path / "out"))


@pytest.mark.parametrize(
    "args",
    [
        ("config", "m/z.onnx", "-o", "m/z.onnx"),
        ("config", "m/z.onnx", "-o", "link.onnx"),  # a symlink to the input
        ("convert", "m/z.onnx", "m/z.ort"),
        ("convert", "m/z.onnx", "m/given.ort", "-o", "m", "--config", "m/given.ort"),
        ("convert", "m/z.onnx", "m/z.optimized.onnx", "--save-optimized-onnx"),
        ("config", "m/z.onnx", "-o", "extra.config", "--extra-ops", "extra.config"),
    ],
    ids=[
        "config-is-the-model",
        "config-is-a-symlink-to-the-model",
        "ort-is-an-input",
        "config-is-an-input-ort",
        "optimized-onnx-is-an-input",
        "config-is-the-extra-ops-file",
    ],
)
def test_an_output_that_is_an_input_is_refused(tmp_path: Path, cli, args: tuple[str, ...]) -> None:
    write(tmp_path / "m/z.onnx", one_node_model("Relu"))
    write(tmp_path / "m/z.optimized.onnx", one_node_model("Sigmoid"))
    (tmp_path / "link.onnx").symlink_to(tmp_path / "m/z.onnx")
    write(tmp_path / "extra.config", b"ai.onnx;17;Relu\n")
    r = cli("convert", "m/z.onnx", "-o", "ref")  # a real .ort to give as an input
    assert r.returncode == 0, r.stderr
    for name in ("z.ort", "given.ort"):
        write(tmp_path / "m" / name, (tmp_path / "ref/z.ort").read_bytes())
    before = _tree(tmp_path)
    r = cli(*args)
    assert r.returncode == 1, r.stderr
    assert [line for line in r.stderr.splitlines() if line.startswith("error:")] == [
        next(line for line in r.stderr.splitlines() if "refusing to overwrite it" in line)
    ], r.stderr
    after = _tree(tmp_path)
    assert {k: v for k, v in after.items() if not k.startswith("cache/")} == {
        k: v for k, v in before.items() if not k.startswith("cache/")
    }


def test_an_error_for_a_copy_of_a_bad_model_names_its_own_file(tmp_path: Path, cli) -> None:
    bad = one_node_model("NoSuchOp")
    write(tmp_path / "m/a.onnx", bad)
    write(tmp_path / "m/b.onnx", bad)
    r = cli("config", "m", "-o", "c.config")
    assert r.returncode == 1, r.stderr
    for name, other in (("a", "b"), ("b", "a")):
        line = next(line for line in r.stderr.splitlines() if f"m/{name}.onnx" in line and "NoSuchOp" in line)
        assert f"{other}.onnx" not in line, r.stderr
