"""End to end: the CMake project tests/packages/app builds a minimal ONNX Runtime from ORT_SOURCE_DIR for
two models' config; its C program, linked to the imported target, runs their .ort files and matches
onnxruntime (Python); a model with an op outside the config fails with ORT's "Could not find an
implementation".

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

ELEMENT_TYPES = {1: np.float32, 7: np.int64}  # ONNXTensorElementDataType
INPUT_SHAPES = {"classifier.ort": (1, 3, 32, 32), "tabular.ort": (5, 16)}


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
    modelgen.save(modelgen.cnn(), project / "models" / "classifier.onnx")
    modelgen.save(modelgen.mlp(), project / "models" / "tabular.onnx")
    modelgen.save(modelgen.attention(), project / "outside" / "encoder.onnx")
    return project


def test_minimal_runtime_runs_its_models_and_rejects_others(project: Path, tmp_path: Path) -> None:
    import onnxruntime

    build = project / "build"
    models = ";".join(str(project / "models" / n) for n in ("classifier.onnx", "tabular.onnx"))
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
        prefix = tmp_path / f"{ort_model.stem}."
        out = checked(
            [str(build / "run_model"), str(ort_model), str(tmp_path / "input.bin"), str(prefix), *map(str, shape)]
        )
        session = onnxruntime.InferenceSession(str(ort_model), providers=["CPUExecutionProvider"])
        expected = session.run(None, {session.get_inputs()[0].name: x})
        described = [line.split() for line in out.splitlines()]
        assert [d[0] for d in described] == [o.name for o in session.get_outputs()]
        for i, ((_, element_type, count), want) in enumerate(zip(described, expected, strict=True)):
            got = np.fromfile(f"{prefix}{i}.bin", dtype=ELEMENT_TYPES[int(element_type)])
            assert int(count) == want.size
            np.testing.assert_allclose(got, np.asarray(want).ravel(), rtol=1e-4, atol=1e-5)

    # A model with ops outside the config: the reduced runtime has no kernel for them.
    checked([sys.executable, "-m", "ort_reduced_build", "convert", str(project / "outside"), "-o", str(tmp_path / "o")])
    (tmp_path / "seq.bin").write_bytes(np.zeros((1, 8, 32), np.float32).tobytes())
    rejected = run([str(build / "run_model"), str(tmp_path / "o" / "encoder.ort"), str(tmp_path / "seq.bin"),
                    str(tmp_path / "enc."), "1", "8", "32"])  # fmt: skip
    assert rejected.returncode == 2, rejected.stdout + rejected.stderr
    assert "Could not find an implementation" in rejected.stderr
