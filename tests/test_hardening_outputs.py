"""Outputs never silently wrong: no two models written to one file, no input overwritten, errors named right."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests._hardening import CLI, full_tmpfs, mount_namespace, one_node_model, read_only, shell_fill, tiny_mlp, write
from tests.conftest import Cli


def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_two_roots_with_one_model_name_are_refused_not_overwritten(tmp_path: Path, cli: Cli) -> None:
    write(tmp_path / "a/model.onnx", tiny_mlp(1))
    write(tmp_path / "b/model.onnx", tiny_mlp(2))
    r = cli("convert", "a", "b", "-o", "out")
    assert r.returncode == 1, r.stderr
    lines = [line for line in r.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, r.stderr
    assert "a/model.onnx and b/model.onnx would both be written to out/model.ort" in lines[0]
    assert not (tmp_path / "out").exists()  # nothing written, not even the config


def test_names_equal_but_for_case_collide(tmp_path: Path, cli: Cli) -> None:
    write(tmp_path / "m/y.onnx", tiny_mlp(1))
    write(tmp_path / "m/y.ONNX", tiny_mlp(2))
    r = cli("convert", "m", "-o", "out")
    assert r.returncode == 1, r.stderr
    assert "m/y.ONNX and m/y.onnx would both be written to out/y.ort" in r.stderr
    assert not (tmp_path / "out").exists()
    # beside the sources, too (on a case-insensitive filesystem they would be one file)
    before = _tree(tmp_path / "m")
    r = cli("convert", "m")
    assert r.returncode == 1, r.stderr
    assert "would both be written to" in r.stderr, r.stderr
    assert _tree(tmp_path / "m") == before


def test_distinct_names_in_two_roots_still_convert(tmp_path: Path, cli: Cli) -> None:
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
def test_an_output_that_is_an_input_is_refused(tmp_path: Path, cli: Cli, args: tuple[str, ...]) -> None:
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


def test_an_error_for_a_copy_of_a_bad_model_names_its_own_file(tmp_path: Path, cli: Cli) -> None:
    bad = one_node_model("NoSuchOp")
    write(tmp_path / "m/a.onnx", bad)
    write(tmp_path / "m/b.onnx", bad)
    r = cli("config", "m", "-o", "c.config")
    assert r.returncode == 1, r.stderr
    for name, other in (("a", "b"), ("b", "a")):
        line = next(line for line in r.stderr.splitlines() if f"m/{name}.onnx" in line and "NoSuchOp" in line)
        assert f"{other}.onnx" not in line, r.stderr


def _errors(stderr: str) -> list[str]:
    assert "Traceback" not in stderr, stderr
    return [line for line in stderr.splitlines() if line.startswith("error:")]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("convert", "m", "-o", "afile"), "error: afile: not a directory, so afile/z.ort cannot be written"),
        (("config", "m", "-o", "afile/c.config"), "error: afile: not a directory, so afile/c.config cannot be written"),
        (("config", "m", "-o", "adir"), "error: adir: is a directory; the config would be written there"),
        (("convert", "m", "-o", "out"), "error: out/z.ort: is a directory; m/z.onnx would be written there"),
        (("convert", "m", "--config", "adir"), "error: adir: is a directory; the config would be written there"),
    ],
    ids=["o-names-a-file", "config-below-a-file", "config-is-a-directory", "ort-is-a-directory", "convert-config-dir"],
)
def test_an_output_path_that_cannot_be_a_file_ends_in_a_traceback(
    tmp_path: Path, cli: Cli, args: tuple[str, ...], expected: str
) -> None:
    write(tmp_path / "m/z.onnx", tiny_mlp(1))
    write(tmp_path / "afile", b"not a directory\n")
    (tmp_path / "adir").mkdir()
    (tmp_path / "out/z.ort").mkdir(parents=True)
    before = _tree(tmp_path)
    r = cli(*args)
    assert r.returncode == 1, r.stderr
    assert _errors(r.stderr) == [expected], r.stderr
    assert _tree(tmp_path) == before  # refused before anything converts: not even the cache was written


def test_a_read_only_output_dir_ends_in_a_traceback(tmp_path: Path) -> None:
    write(tmp_path / "m/z.onnx", tiny_mlp(1))
    write(tmp_path / "ro/old.config", b"# an earlier config\n")
    env = {**os.environ, "ORT_REDUCED_BUILD_CACHE_DIR": str(tmp_path / "cache")}
    convert, config = [*CLI, "convert", "m", "-o", "ro/out"], [*CLI, "config", "m", "-o", "ro/old.config"]
    results = mount_namespace(tmp_path, env, [read_only(tmp_path / "ro")], convert, config)
    for r, path in zip(results, ("ro/out/z.ort", "ro/old.config"), strict=True):
        assert r.returncode == 1, r.stderr
        assert _errors(r.stderr) == [f"error: ro: read-only file system; cannot write {path}"], r.stderr
    assert (tmp_path / "ro/old.config").read_bytes() == b"# an earlier config\n"
    assert not (tmp_path / "cache").exists()  # refused before anything converts


def test_a_full_disk_ends_in_a_traceback_and_leaves_earlier_outputs_whole(tmp_path: Path) -> None:
    """Only the outputs' file system is full (the cache is elsewhere): no check can see that coming."""
    write(tmp_path / "m/z.onnx", tiny_mlp(1))
    write(tmp_path / "m2/y.onnx", tiny_mlp(2))
    env = {**os.environ, "ORT_REDUCED_BUILD_CACHE_DIR": str(tmp_path / "cache")}
    disk = tmp_path / "disk"
    results = mount_namespace(
        tmp_path,
        env,
        [full_tmpfs(disk, fill=False)],
        [*CLI, "convert", "m", "-o", disk],
        ["sh", "-c", f"cp -a {disk} before && {shell_fill(disk)}"],
        [*CLI, "convert", "m", "m2", "-o", disk],
        ["sh", "-c", f"rm {disk}/.fill && cp -a {disk} after"],  # the tmpfs ends with the namespace
    )
    assert [r.returncode for r in results] == [0, 0, 1, 0], results
    assert _errors(results[2].stderr) == [f"error: {disk}/y.ort: no space left on device"], results[2].stderr
    # The earlier outputs are whole and unchanged (the config was not rewritten); no temp file is left.
    assert _tree(tmp_path / "after") == _tree(tmp_path / "before")
    assert set(_tree(tmp_path / "before")) == {"required_operators_and_types.config", "z.ort"}
