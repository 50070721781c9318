"""What a model file may make us do: be read, converted or refused. Never write elsewhere, never load code."""

from __future__ import annotations

import copy
import os
import shutil
from pathlib import Path

import onnx
import onnxruntime as ort
import pytest
from ort_reduced_build.engine.analyze import analyze_ort

from tests import modelgen
from tests._hardening import one_node_model, ort_metadata_model, tiny_mlp, write
from tests.conftest import Cli

_MLP = modelgen.mlp(features=4, hidden=4, seed=7)


def _with_external_data(directory: Path, location: str) -> Path:
    """The MLP with its weights as external data, then pointed at ``location`` (the weights file removed)."""
    directory.mkdir(parents=True)
    model = copy.deepcopy(_MLP)
    path = directory / "model.onnx"
    onnx.save(model, path, save_as_external_data=True, location="weights.bin", size_threshold=0)
    proto = onnx.load(str(path), load_external_data=False)
    for tensor in proto.graph.initializer:
        for entry in tensor.external_data:
            if entry.key == "location":
                entry.value = location
    onnx.save(proto, path)
    if location != "weights.bin":
        (directory / "weights.bin").rename(directory.parent / f"{directory.name}.weights.bin")
    return path


@pytest.fixture
def external(tmp_path: Path) -> tuple[Path, Path]:
    """Models whose external data point where they must not (named after the failure), and a good one."""
    models = tmp_path / "project/models"
    outside = write(tmp_path / "project/outside.bin", b"a file outside every model directory")
    _with_external_data(models / "good", "weights.bin")
    _with_external_data(models / "absolute_location", str(outside))
    _with_external_data(models / "dotdot_location", "../../outside.bin")
    _with_external_data(models / "absolute_dev_zero", "/dev/zero")
    _with_external_data(models / "symlink_to_outside", "link.bin")
    (models / "symlink_to_outside/link.bin").symlink_to(outside)
    _with_external_data(models / "symlink_to_dev_zero", "zero.bin")
    (models / "symlink_to_dev_zero/zero.bin").symlink_to("/dev/zero")
    _with_external_data(models / "fifo_location", "fifo.bin")
    os.mkfifo(models / "fifo_location/fifo.bin")
    _with_external_data(models / "directory_location", "adir")
    (models / "directory_location/adir").mkdir()
    return tmp_path / "project", outside


def test_external_data_is_only_read_inside_the_model_directory(external: tuple[Path, Path], cli: Cli) -> None:
    project, outside = external
    before = (outside.read_bytes(), outside.stat().st_mtime_ns)
    listing = sorted(p.relative_to(project).as_posix() for p in project.rglob("*"))
    r = cli("config", "models", "-o", "c.config", "--allow-conversion-failures", cwd=project)
    assert r.returncode == 1, r.stderr
    assert "Traceback" not in r.stderr, r.stderr
    failed = {line.split(" (Fixed): ")[0].removeprefix("failed: "): line for line in r.stderr.splitlines()}
    expected = {
        "absolute_location": "is an absolute path",
        "dotdot_location": "leads outside the model's directory (through '..')",
        "absolute_dev_zero": "external data location '/dev/zero' is an absolute path",
        "symlink_to_outside": "leads outside the model's directory (through a symlink",
        "symlink_to_dev_zero": "leads outside the model's directory (through a symlink, to /dev/zero)",
        "fifo_location": "not a regular file (a FIFO)",
        "directory_location": "not a regular file (a directory)",
    }
    for name, cause in expected.items():
        assert cause in failed.pop(f"models/{name}/model.onnx"), r.stderr
    assert "7 failed" in r.stderr
    assert "- models/good/model.onnx" in (project / "c.config").read_text()
    assert (outside.read_bytes(), outside.stat().st_mtime_ns) == before
    assert sorted(p.relative_to(project).as_posix() for p in project.rglob("*")) == sorted([*listing, "c.config"])


def test_onnxruntime_refuses_the_same_locations(external: tuple[Path, Path]) -> None:
    """The rule we apply before hashing is onnxruntime's own (checked against the installed version)."""
    project, _ = external
    so = ort.SessionOptions()
    so.log_severity_level = 4
    for name in ("absolute_location", "dotdot_location", "symlink_to_outside"):
        with pytest.raises(Exception, match=r"Absolute path not allowed|escapes model directory"):
            ort.InferenceSession(str(project / f"models/{name}/model.onnx"), so, providers=["CPUExecutionProvider"])


def test_a_model_cannot_set_session_options_or_write_files(tmp_path: Path, cli: Cli) -> None:
    """With ORT_LOAD_CONFIG_FROM_MODEL=1 in the environment, onnxruntime applies a model's ``ort_config``:
    profiling (a file written into the working directory) and another optimization level."""
    project = tmp_path / "project"
    steer = {"session_options": {"enable_profiling": 1, "graph_optimization_level": 0}}
    modelgen.save(ort_metadata_model(steer), project / "models/steering/m.onnx")
    modelgen.save(ort_metadata_model({}), project / "models/plain/m.onnx")
    before = sorted(p.name for p in project.rglob("*"))
    r = cli("convert", "models", "-o", "out", env={"ORT_LOAD_CONFIG_FROM_MODEL": "1"}, cwd=project)
    assert r.returncode == 0, r.stderr
    assert not list(tmp_path.rglob("onnxruntime_profile_*")), "a model turned profiling on"
    assert analyze_ort(project / "out/steering/m.ort").config == analyze_ort(project / "out/plain/m.ort").config
    assert sorted(p.name for p in project.rglob("*") if "out" not in p.parts) == before


def test_custom_op_libraries_load_only_when_the_user_names_them(
    tmp_path: Path, cli: Cli, custom_op_library: Path
) -> None:
    project = tmp_path / "project"
    for op in ("Ok", "Segv"):
        model = onnx.load_from_string(one_node_model(op, "test.crash", (("", 17), ("test.crash", 1))))
        onnx.helper.set_model_props(model, {"custom_op_library": "libcrashing_ops.so"})  # nothing reads this
        modelgen.save(model, project / f"models/{op.lower()}.onnx")
    shutil.copy(custom_op_library, project / "models/libcrashing_ops.so")  # beside the models: never loaded
    write(project / "models/mlp.onnx", tiny_mlp(4))
    named = cli(
        "config", "models", "-o", "c.config", "--custom-op-library", custom_op_library, "--allow-conversion-failures",
        cwd=project,
    )  # fmt: skip
    assert "failed: models/segv.onnx (Fixed): conversion crashed (SIGSEGV)" in named.stderr, named.stderr
    assert "3 model(s), 3 conversion(s) (2 converted" in named.stderr

    unnamed = cli("config", "models", "-o", "c.config", "--allow-conversion-failures", cwd=project)
    assert "crashed" not in unnamed.stderr, unnamed.stderr  # the library was not loaded: nothing to crash
    for op in ("ok", "segv"):
        assert f"failed: models/{op}.onnx (Fixed): " in unnamed.stderr
        assert "is not a registered function/op" in unnamed.stderr
    # No entry made with the library is reused without it (the libraries' bytes are part of every key).
    assert "3 model(s), 3 conversion(s) (1 converted, 0 cached), 2 failed" in unnamed.stderr
