"""upgrade on real older-format files: written by onnxruntime 1.15.1 (ORT format v5) in its own venv.

The venv is cached under the temp dir between runs. When pip cannot install the old release (no
network), the tests that need it are skipped with the reason.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import tempfile
import venv
from pathlib import Path

import numpy as np
import pytest
from filelock import FileLock
from ort_reduced_build.api import check_model
from ort_reduced_build.cli import main
from ort_reduced_build.engine.analyze import analyze_ort, read_ort_header, saved_runtime_optimizations
from ort_reduced_build.engine.config import format_config

from tests import modelgen
from tests.test_ci_verbs import relabel

OLD_ORT = "1.15.1"
"""The last onnxruntime release writing ORT format v5 (1.16 writes v6) with a wheel for Python 3.11."""

SAVE = """
import sys, onnxruntime as ort
src, dst, style = sys.argv[1:4]
so = ort.SessionOptions()
so.optimized_model_filepath = dst
so.add_session_config_entry("session.save_model_format", "ORT")
if style == "Runtime":
    so.add_session_config_entry("optimization.minimal_build_optimizations", "save")
ort.InferenceSession(src, so, providers=["CPUExecutionProvider"])
"""


def _old_python() -> Path:
    base = Path(tempfile.gettempdir()) / "ort-reduced-build-tests" / f"onnxruntime-{OLD_ORT}"
    python = base / "bin" / "python"
    base.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(base) + ".lock"):
        if (base / ".complete").exists():
            return python
        venv.create(base, clear=True, with_pip=True)
        # Only numpy is needed to save a model; --no-deps keeps the install small and offline-cacheable.
        cmd = [str(python), "-m", "pip", "install", "-q", "--no-deps", f"onnxruntime=={OLD_ORT}", "numpy<2"]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False)
        if proc.returncode != 0:
            tail = (proc.stdout + proc.stderr).strip().splitlines()[-3:]
            reason = f"cannot install onnxruntime=={OLD_ORT} into a venv: {' | '.join(tail)}"
            print(reason, file=sys.stderr)
            pytest.skip(reason)
        (base / ".complete").touch()
    return python


@pytest.fixture(scope="module")
def old_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """mlp.ort (Fixed) and qdq.ort (Runtime, with saved runtime optimizations) in ORT format v5."""
    python = _old_python()
    out = tmp_path_factory.mktemp("old-ort")
    modelgen.save(modelgen.mlp(), out / "mlp.onnx")
    modelgen.quantized(modelgen.cnn((4, 8), 16), out / "qdq.onnx")
    files = {}
    for name, style in (("mlp", "Fixed"), ("qdq", "Runtime")):
        files[name] = out / f"{name}.ort"
        cmd = [str(python), "-c", SAVE, str(out / f"{name}.onnx"), str(files[name]), style]
        subprocess.run(cmd, check=True, capture_output=True, timeout=300)
    return files


def _run(path: Path, feed: dict[str, np.ndarray]) -> list[np.ndarray]:
    import onnxruntime as ort

    outputs: list[np.ndarray] = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, feed)
    return outputs


def test_old_release_writes_v5_and_current_onnxruntime_loads_it(old_files: dict[str, Path]) -> None:
    for path in old_files.values():
        assert read_ort_header(path, path.read_bytes()) == "5"
        assert check_model(path).ort_format_version == "5"  # a minimal build loads v5 too
    assert len(saved_runtime_optimizations(old_files["qdq"])) > 0


def test_upgrade_resaves_v5_as_v6(
    old_files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = old_files["mlp"]
    dst = tmp_path / "mlp.v6.ort"
    assert main(["upgrade", str(src), "-o", str(dst)]) == 0
    captured = capsys.readouterr()
    assert f"(ORT format v5) -> {dst} (v6)" in captured.out
    assert "saved runtime optimizations are dropped (0 in the source)" in captured.err
    assert read_ort_header(dst, dst.read_bytes()) == "6"
    assert format_config(analyze_ort(dst).config) == format_config(analyze_ort(src).config)
    feed = {"x": np.random.default_rng(0).standard_normal((3, 16)).astype(np.float32)}
    for before, after in zip(_run(src, feed), _run(dst, feed), strict=True):
        np.testing.assert_array_equal(before, after)
    assert main(["upgrade", str(dst), "-o", str(tmp_path / "again.ort")]) == 0
    assert "already ORT format v6; copied unchanged" in capsys.readouterr().out
    assert (tmp_path / "again.ort").read_bytes() == dst.read_bytes()


def test_upgrade_says_runtime_optimizations_are_dropped(
    old_files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = old_files["qdq"]
    records = len(saved_runtime_optimizations(src))
    dst = tmp_path / "qdq.ort"
    assert main(["upgrade", str(src), "-o", str(dst)]) == 0
    assert f"saved runtime optimizations are dropped ({records} in the source)" in capsys.readouterr().err
    assert saved_runtime_optimizations(dst) == ()
    assert read_ort_header(dst, dst.read_bytes()) == "6"


def test_upgrade_in_place_of_a_v4_labelled_file(old_files: dict[str, Path], tmp_path: Path) -> None:
    """Synthetic v4 (a v5 file relabelled): onnxruntime still loads it in a full build; upgrade fixes it."""
    config = tmp_path / "mlp.config"
    config.write_text(format_config(analyze_ort(old_files["mlp"]).config))
    assert main(["check", str(old_files["mlp"]), "--config", str(config)]) == 0
    path = tmp_path / "old.ort"
    path.write_bytes(relabel(old_files["mlp"].read_bytes(), "4"))
    assert main(["check", str(path), "--config", str(config)]) == 1
    assert main(["upgrade", str(path), "-o", str(path)]) == 0
    assert check_model(path).ort_format_version == "6"
    assert main(["check", str(path), "--config", str(config)]) == 0


@pytest.fixture
def v4_file(tmp_path: Path) -> Path:
    """A model saved by this onnxruntime, relabelled ORT format v4: a file ``upgrade`` re-saves."""
    import onnxruntime as ort

    modelgen.save(modelgen.mlp(), tmp_path / "mlp.onnx")
    so = ort.SessionOptions()
    so.optimized_model_filepath = str(tmp_path / "mlp.v6.ort")
    so.add_session_config_entry("session.save_model_format", "ORT")
    ort.InferenceSession(str(tmp_path / "mlp.onnx"), so, providers=["CPUExecutionProvider"])
    path = tmp_path / "src" / "old.ort"
    path.parent.mkdir()
    path.write_bytes(relabel((tmp_path / "mlp.v6.ort").read_bytes(), "4"))
    return path


def test_upgrade_into_an_existing_directory_ends_in_a_traceback(
    v4_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    assert main(["upgrade", str(v4_file), "-o", str(out)]) == 0
    assert f"-> {out / 'old.ort'} (v6)" in capsys.readouterr().out
    assert check_model(out / "old.ort").ort_format_version == "6"
    assert sorted(p.name for p in out.iterdir()) == ["old.ort"]  # no temp file left
    (out / "blocked.ort").mkdir()  # DIR/<name>.ort is a directory: said, not a traceback
    blocked = v4_file.with_name("blocked.ort")
    blocked.write_bytes(v4_file.read_bytes())
    assert main(["upgrade", str(blocked), "-o", str(out)]) == 1
    expected = f"error: {out / 'blocked.ort'}: is a directory; {blocked} would be written there\n"
    assert capsys.readouterr().err == expected


def test_upgraded_file_gets_mode_0600(v4_file: Path, tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        assert main(["upgrade", str(v4_file), "-o", str(tmp_path / "new.ort")]) == 0
        assert main(["upgrade", str(v4_file), "-o", str(v4_file)]) == 0  # in place
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "new.ort").stat().st_mode) == 0o644
    assert stat.S_IMODE(v4_file.stat().st_mode) == 0o644
