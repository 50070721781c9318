"""End to end: the CMake project tests/packages/app builds a minimal ONNX Runtime from ORT_SOURCE_DIR for
the sample project's models (a CNN and a scikit-learn pipeline: ai.onnx.ml ops, string labels, ZipMap);
its C program, linked to the imported target, runs their .ort files and matches onnxruntime (Python); a
second build has nothing to do; a model with an op outside the config fails with ORT's "Could not find
an implementation".

Runs only when ORT_SOURCE_DIR names an ONNX Runtime source tree: the build takes about 25 minutes on
two cores. Optional: ORT_DEPS_DIR (dependency sources, no network), ORT_REDUCED_BUILD_CMAKE (ORT 1.28
needs CMake 3.28+), ORT_REDUCED_BUILD_JOBS, ORT_REDUCED_BUILD_E2E_DIR (a directory that keeps the
build between runs; default: a temporary one).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from ort_reduced_build.commands import get_cmake_dir

from tests import modelgen

ORT_SOURCE = os.environ.get("ORT_SOURCE_DIR", "")
pytestmark = [
    pytest.mark.skipif(
        not ORT_SOURCE,
        reason="ORT_SOURCE_DIR is not set: no ONNX Runtime source tree to build a minimal runtime from",
    ),
    pytest.mark.slow,
]

SAMPLE_MODELS = Path(__file__).resolve().parent.parent / "sample_project" / "src" / "sample_app" / "models"
INPUT_SHAPES = {"image_classifier.ort": (1, 3, 32, 32), "flower_species.ort": (5, 4)}


def run(argv: list[str], **kw: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, check=False, **kw)  # type: ignore[call-overload]


def checked(argv: list[str]) -> str:
    result = run(argv)
    assert result.returncode == 0, f"{' '.join(argv)} failed:\n{result.stdout[-6000:]}\n{result.stderr[-6000:]}"
    return result.stdout


@pytest.fixture
def project(tmp_path: Path) -> Path:
    work = Path(os.environ.get("ORT_REDUCED_BUILD_E2E_DIR") or tmp_path)
    project = work / "app"
    shutil.copytree(Path(__file__).parent / "packages" / "app", project, dirs_exist_ok=True)
    shutil.copytree(SAMPLE_MODELS, project / "models", dirs_exist_ok=True)
    modelgen.save(modelgen.attention(), project / "outside" / "encoder.onnx")
    return project


def flatten(value: object) -> list[object]:
    """An onnxruntime (Python) output as run_model prints it: tensor values, or (index, key, value) rows."""
    if isinstance(value, list):  # a sequence of maps (ZipMap)
        return [(i, str(k), v) for i, m in enumerate(value) for k, v in m.items()]
    return list(np.asarray(value).ravel())


def parse_outputs(text: str) -> dict[str, list[str]]:
    outputs: dict[str, list[str]] = {}
    for line in text.splitlines():
        if line.startswith("output "):
            rows = outputs[line.split(" ", 1)[1]] = []
        else:
            rows.append(line)
    return outputs


def assert_same(got: list[str], want: list[object]) -> None:
    assert len(got) == len(want)
    for row, expected in zip(got, want, strict=True):
        if isinstance(expected, tuple):
            index, key, value = row.split(" ")
            assert (int(index), key) == expected[:2]
            np.testing.assert_allclose(float(value), expected[2], rtol=1e-4, atol=1e-5)
        elif isinstance(expected, (str, np.str_)):
            assert row == expected
        else:
            np.testing.assert_allclose(float(row), float(expected), rtol=1e-4, atol=1e-5)


def test_minimal_runtime_runs_its_models_and_rejects_others(project: Path, tmp_path: Path) -> None:
    import onnxruntime

    build = project / "build"
    models = ";".join(str(project / "models" / name) for name in ("image_classifier.onnx", "flower_species.onnx"))
    defines = {
        "APP_MODELS": models,
        "ORT_SOURCE_DIR": ORT_SOURCE,
        "OrtReducedBuild_DIR": get_cmake_dir(),
        "ORT_REDUCED_BUILD_PYTHON": sys.executable,
    }
    for name in ("ORT_DEPS_DIR", "ORT_REDUCED_BUILD_CMAKE", "ORT_REDUCED_BUILD_JOBS"):
        if os.environ.get(name):
            defines[name] = os.environ[name]
    if shutil.which("ccache"):
        defines |= {"CMAKE_C_COMPILER_LAUNCHER": "ccache", "CMAKE_CXX_COMPILER_LAUNCHER": "ccache"}
    checked(["cmake", "-S", str(project), "-B", str(build), "-G", "Ninja", *(f"-D{k}={v}" for k, v in defines.items())])
    # A build kept from an earlier run (ORT_REDUCED_BUILD_E2E_DIR): the runtime step runs again, finds the
    # same config and command, and only reports the size.
    (build / "ortrt" / "ort-reduced-build.stamp").unlink(missing_ok=True)
    log = checked(["cmake", "--build", str(build)])
    assert "libonnxruntime" in log  # the size report
    assert "no work to do" in checked(["cmake", "--build", str(build)])

    properties = dict(line.split("=", 1) for line in (build / "app.txt").read_text().splitlines())
    config = Path(properties["config"]).read_text()
    print(config, properties["library"], Path(properties["library"]).stat().st_size, sep="\n")
    rng = np.random.default_rng(0)
    for ort_model in map(Path, properties["models"].split(";")):
        shape = INPUT_SHAPES[ort_model.name]
        x = rng.standard_normal(shape).astype(np.float32)
        x.tofile(tmp_path / "input.bin")
        got = parse_outputs(
            checked([str(build / "run_model"), str(ort_model), str(tmp_path / "input.bin"), *map(str, shape)])
        )
        session = onnxruntime.InferenceSession(str(ort_model), providers=["CPUExecutionProvider"])
        expected = session.run(None, {session.get_inputs()[0].name: x})
        assert list(got) == [o.name for o in session.get_outputs()]
        for rows, want in zip(got.values(), expected, strict=True):
            assert_same(rows, flatten(want))

    # A model with ops outside the config: the reduced runtime has no kernel for them.
    checked([sys.executable, "-m", "ort_reduced_build", "convert", str(project / "outside"), "-o", str(tmp_path / "o")])
    (tmp_path / "seq.bin").write_bytes(np.zeros((1, 8, 32), np.float32).tobytes())
    rejected = run(
        [str(build / "run_model"), str(tmp_path / "o" / "encoder.ort"), str(tmp_path / "seq.bin"), "1", "8", "32"]
    )
    assert rejected.returncode == 2, rejected.stdout + rejected.stderr
    assert "Could not find an implementation" in rejected.stderr
