"""End to end with a real ONNX Runtime tree: the CMake project tests/packages/app builds a minimal runtime with
the default flags for the sample's models and a richer set (a BERT-like encoder with three int64 inputs and
its int8 version, LSTM/GRU with state inputs, a QDQ CNN, scikit-learn pipelines with string inputs and
ZipMap outputs, the Tokenizer text pipeline, float16, bool/double/int8..uint32, a sequence output). The
build's own run of the models passes; ctest's ortrt-verify and `verify --json` find every model `ok`; a
model with an op outside the config is `missing-kernel`, naming the op; a second build has nothing to do.

Runs only when ORT_SOURCE_DIR names an ONNX Runtime source tree, with the onnxruntime release of that tree
installed (the models must be converted by it): the build takes 20-45 minutes on two cores. Optional:
ORT_DEPS_DIR (dependency sources, no network), ORT_REDUCED_BUILD_CMAKE (ORT 1.28 needs CMake 3.28+),
ORT_REDUCED_BUILD_JOBS, ORT_REDUCED_BUILD_E2E_DIR (a directory that keeps the build between runs; default:
a temporary one), ORT_REDUCED_BUILD_E2E_ARGS (more ort_reduced_build_add_runtime arguments, e.g. NO_LTO).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from ort_reduced_build.commands import get_cmake_dir

from tests import modelgen
from tests.conftest import PACKAGES

ORT_SOURCE = os.environ.get("ORT_SOURCE_DIR", "")
pytestmark = [
    pytest.mark.skipif(
        not ORT_SOURCE,
        reason="ORT_SOURCE_DIR is not set: no ONNX Runtime source tree to build a minimal runtime from",
    ),
    pytest.mark.slow,
]

SAMPLE_MODELS = Path(__file__).resolve().parent.parent / "sample_project" / "src" / "sample_app" / "models"


def run(argv: list[str], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, check=False, cwd=cwd)


def checked(argv: list[str], cwd: Path | None = None) -> str:
    result = run(argv, cwd)
    assert result.returncode == 0, f"{' '.join(argv)} failed:\n{result.stdout[-6000:]}\n{result.stderr[-6000:]}"
    return result.stdout + result.stderr


def app_project(work: Path, tmp_path: Path, skip: tuple[str, ...] = ()) -> Path:
    """tests/packages/app in ``work`` with the sample's models, the verify set (less ``skip``) and a model
    whose ops are outside the config."""
    project = work / "app"
    shutil.copytree(PACKAGES / "app", project, dirs_exist_ok=True)
    shutil.copytree(SAMPLE_MODELS, project / "models", dirs_exist_ok=True)
    for path in modelgen.write_set("verify", tmp_path / "verify"):
        if path.name not in skip:
            shutil.copy(path, project / "models" / path.name)
    modelgen.save(modelgen.attention(), project / "outside" / "encoder.onnx")
    return project


def check_converter() -> None:
    import onnxruntime

    tree = (Path(ORT_SOURCE) / "VERSION_NUMBER").read_text().strip()
    if tree.split(".")[:2] != onnxruntime.__version__.split(".")[:2]:
        pytest.skip(f"the tree is ONNX Runtime {tree} but onnxruntime {onnxruntime.__version__} converts the models")


@pytest.fixture
def project(tmp_path: Path) -> Path:
    check_converter()
    return app_project(Path(os.environ.get("ORT_REDUCED_BUILD_E2E_DIR") or tmp_path), tmp_path)


def configure(project: Path, *extra: str, runtime_args: tuple[str, ...] = ()) -> Path:
    build = project / "build"
    models = ";".join(str(p) for p in sorted((project / "models").glob("*.onnx")))
    args = [*os.environ.get("ORT_REDUCED_BUILD_E2E_ARGS", "").split(), *runtime_args]
    defines = {
        "APP_MODELS": models,
        "ORT_SOURCE_DIR": ORT_SOURCE,
        "OrtReducedBuild_DIR": get_cmake_dir(),
        "ORT_REDUCED_BUILD_PYTHON": sys.executable,
        "APP_RUNTIME_ARGS": ";".join(args),
    }
    for name in ("ORT_DEPS_DIR", "ORT_REDUCED_BUILD_CMAKE", "ORT_REDUCED_BUILD_JOBS"):
        if os.environ.get(name):
            defines[name] = os.environ[name]
    if shutil.which("ccache"):
        defines |= {"CMAKE_C_COMPILER_LAUNCHER": "ccache", "CMAKE_CXX_COMPILER_LAUNCHER": "ccache"}
    argv = ["cmake", "-S", str(project), "-B", str(build), "-G", "Ninja", *extra]
    checked([*argv, *(f"-D{k}={v}" for k, v in defines.items())])
    return build


def build_and_verify(project: Path, build: Path, *verify_args: str) -> dict[str, Any]:
    """Build (the runtime step runs its models), check nothing is left to do, run ctest and verify --json."""
    models = sorted((project / "models").glob("*.onnx"))
    # A build kept from an earlier run (ORT_REDUCED_BUILD_E2E_DIR): the runtime step runs again, finds the
    # same config and command, reports the size and runs the models again.
    (build / "ortrt" / "ort-reduced-build.stamp").unlink(missing_ok=True)
    log = checked(["cmake", "--build", str(build)])
    print(log[-4000:])
    assert "libonnxruntime" in log  # the size report
    assert f"{len(models)} model(s), {len(models)} ok" in log  # the build's own run
    assert "no work to do" in checked(["cmake", "--build", str(build)])
    tested = checked(["ctest", "--output-on-failure"], cwd=build)
    assert "ortrt-verify" in tested
    assert "100% tests passed" in tested

    properties = dict(line.split("=", 1) for line in (build / "app.txt").read_text().splitlines())
    print(Path(properties["config"]).read_text(), properties["library"], Path(properties["library"]).stat().st_size)
    inputs = project / "verify-inputs.toml"
    result = run([sys.executable, "-m", "ort_reduced_build", "verify", "--build-dir", str(build / "ortrt"),
                  *properties["models"].split(";"), "--inputs", str(inputs), "--json", *verify_args])  # fmt: skip
    report: dict[str, Any] = json.loads(result.stdout)
    print(report["runtime"])
    for model in report["models"]:
        worst = max((o["max_abs_diff"] for o in model["outputs"]), default=0.0)
        print(f"{model['status']:<15} {Path(model['path']).name:<28} max abs diff {worst:.3g} {model['message']}")
    assert result.returncode == 0, result.stderr
    assert {m["status"] for m in report["models"]} == {"ok"}
    assert len(report["models"]) == len(models)
    return report


def test_minimal_runtime_runs_every_model_and_rejects_others(project: Path) -> None:
    build = configure(project)
    build_and_verify(project, build)

    # A model with ops outside the config: the reduced runtime has no kernel for them, and says which.
    outside = run([sys.executable, "-m", "ort_reduced_build", "verify", "--build-dir", str(build / "ortrt"),
                   str(project / "outside"), "--json"])  # fmt: skip
    assert outside.returncode == 1
    [model] = json.loads(outside.stdout)["models"]
    assert model["status"] == "missing-kernel", model
    assert "Could not find an implementation for" in model["message"]


def aarch64_reference(tmp_path: Path) -> Path:
    """The full aarch64 libonnxruntime of the tree's release, from PyPI's manylinux wheel (kept in ~/.cache):
    the reference for the cross-built runtime. Quantized kernels differ between x86-64 and aarch64, so this
    host's onnxruntime is no fair reference (a dynamically quantized encoder differs by up to 1.06)."""
    version = (Path(ORT_SOURCE) / "VERSION_NUMBER").read_text().strip()
    cache = Path.home() / ".cache" / "ort-reduced-build-tests" / f"onnxruntime-{version}-aarch64"
    found = min(cache.glob("onnxruntime/capi/libonnxruntime.so.*"), default=None)
    if found is not None:
        return found
    pip = [sys.executable, "-m", "pip", "download", f"onnxruntime=={version}", "--no-deps", "--only-binary=:all:"]
    pip += ["--platform", "manylinux_2_28_aarch64", "--python-version", "3.11", "-d", str(tmp_path / "wheel")]
    got = run(pip)
    if got.returncode != 0:
        pytest.skip(f"no aarch64 onnxruntime {version} wheel to compare with: {got.stderr.strip()[-300:]}")
    import zipfile

    with zipfile.ZipFile(next((tmp_path / "wheel").glob("*.whl"))) as wheel:
        members = [n for n in wheel.namelist() if n.startswith("onnxruntime/capi/libonnxruntime.so")]
        wheel.extractall(cache, members)
    return min(cache.glob("onnxruntime/capi/libonnxruntime.so.*"))


AARCH64_TOOLS = ("aarch64-linux-gnu-gcc", "aarch64-linux-gnu-g++", "qemu-aarch64-static")
AARCH64_TOOLCHAIN = Path(__file__).parent / "aarch64-linux-gnu.toolchain.cmake"


@pytest.mark.skipif(
    any(shutil.which(t) is None for t in AARCH64_TOOLS), reason=f"the aarch64 cross build needs {AARCH64_TOOLS}"
)
def test_aarch64_runtime_cross_built_and_verified_under_qemu(tmp_path: Path) -> None:
    """The same project configured with an aarch64 Linux toolchain file: ORT is cross-built with it, its
    models run under qemu-user at the end of the build, and ctest/verify compare them with onnxruntime on
    this host. The Tokenizer model is left out to keep to one build: with it, GCC 12's LTO link breaks the
    runtime and the build runs again without LTO (the host test covers that)."""
    check_converter()
    reference = str(aarch64_reference(tmp_path))
    work = Path(os.environ.get("ORT_REDUCED_BUILD_E2E_AARCH64_DIR") or tmp_path)
    project = app_project(work, tmp_path, skip=("tfidf.onnx",))
    toolchain = f"-DCMAKE_TOOLCHAIN_FILE={AARCH64_TOOLCHAIN}"
    build = configure(project, toolchain, runtime_args=("REFERENCE_RUNTIME", reference))
    report = build_and_verify(project, build, "--reference-runtime", reference)
    library = Path(str(report["runtime"]).split(" (")[0])
    from ort_reduced_build.util.elf import machine

    assert machine(library) == "aarch64"
