"""Shared fixtures: real model sets, real CLI runs (subprocesses), ORT's own converter as the reference."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import onnx
import pytest

from tests import modelgen

REPO = Path(__file__).resolve().parent.parent
PACKAGES = REPO / "tests" / "packages"


def run_cli(
    *args: str | Path,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    module: str = "ort_reduced_build",
    timeout: float = 600,
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m <module> args`` as a user would; never raises on a non-zero exit."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", module, *map(str, args)],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


class Cli(Protocol):
    """The ``cli`` fixture: ``run_cli`` with a private cache and the test's directory as default cwd."""

    def __call__(
        self, *args: str | Path, cwd: Path | None = None, env: dict[str, str] | None = None, module: str = ...
    ) -> subprocess.CompletedProcess[str]: ...


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    """``cli(*args, cwd=...)`` with a private cache dir per test."""
    cache = tmp_path / "cache"

    def call(
        *args: str | Path, cwd: Path | None = None, env: dict[str, str] | None = None, module: str = "ort_reduced_build"
    ) -> subprocess.CompletedProcess[str]:
        return run_cli(
            *args, cwd=cwd or tmp_path, env={"ORT_REDUCED_BUILD_CACHE_DIR": str(cache), **(env or {})}, module=module
        )

    return call


@pytest.fixture
def package(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    """A fresh copy of the project ``tests/packages/<param>``, for tests that parametrize it indirectly:
    ``@pytest.mark.parametrize("package", ["app"], indirect=True)``."""
    return Path(shutil.copytree(PACKAGES / request.param, tmp_path / request.param))


@pytest.fixture(scope="session")
def node_models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every node-level test model the ``onnx`` package ships (about 1,900)."""
    from onnx.backend.test.case.node import collect_testcases

    out = tmp_path_factory.mktemp("node_models")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cases = collect_testcases(None)
    for case in cases:
        assert case.model is not None, case.name  # node cases always carry their model
        onnx.save(case.model, out / f"{case.name}.onnx")
    return out


@pytest.fixture(scope="session")
def app_models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Hand-built models: CNN, attention, MLP, control flow (If/Loop/Scan), scikit-learn, QDQ/QOperator."""
    out = tmp_path_factory.mktemp("app_models")
    modelgen.save(modelgen.cnn(), out / "vision/cnn.onnx")
    modelgen.save(modelgen.attention(), out / "text/encoder.onnx")
    modelgen.save(modelgen.mlp(), out / "tabular/mlp.onnx")
    modelgen.save(modelgen.control_flow(), out / "misc/control_flow.onnx")
    modelgen.save(modelgen.sklearn_pipeline(), out / "tabular/forest.onnx")
    modelgen.quantized(modelgen.cnn(), out / "quant/cnn_qdq.onnx", "QDQ")
    modelgen.quantized(modelgen.cnn(seed=4), out / "quant/cnn_qop.onnx", "QOperator")
    modelgen.quantized(modelgen.mlp(), out / "quant/mlp_qdq.onnx", "QDQ")
    return out


def ort_unsupported_type_codes() -> set[int]:
    """Element types ORT's type-reduction table lacks (its converter dies with KeyError on them)."""
    from onnxruntime.tools.ort_format_model.types import FbsTypeInfo

    return set(onnx.TensorProto.DataType.values()) - set(FbsTypeInfo.tensordatatype_to_string) - {0}


def uses_types(path: Path, codes: set[int]) -> bool:
    """Whether any value of the model (after shape inference, subgraphs included) has one of ``codes``."""
    model = onnx.load(str(path))
    with contextlib.suppress(Exception):
        model = onnx.shape_inference.infer_shapes(model)
    found: set[int] = set()

    def visit(graph: onnx.GraphProto) -> None:
        for vi in [*graph.input, *graph.output, *graph.value_info]:
            found.add(vi.type.tensor_type.elem_type)
            found.add(vi.type.sequence_type.elem_type.tensor_type.elem_type)
        found.update(t.data_type for t in graph.initializer)
        for node in graph.node:
            for attr in node.attribute:
                if attr.name in ("to", "dtype", "output_dtype"):
                    found.add(attr.i)
                if attr.HasField("t"):
                    found.add(attr.t.data_type)
                for g in [attr.g] if attr.HasField("g") else []:
                    visit(g)
                for g in attr.graphs:
                    visit(g)

    visit(model.graph)
    return bool(found & codes)


def copy_models(src: Path, dst: Path, keep: Callable[[Path], bool] = lambda _: True) -> list[Path]:
    """Copy the ``.onnx`` files of ``src`` that ``keep`` accepts into ``dst`` (same relative paths)."""
    kept = []
    for p in sorted(src.rglob("*.onnx")):
        if keep(p):
            target = dst / p.relative_to(src)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(p, target)
            kept.append(target)
    return kept


def ort_convert(
    models: Path, *flags: str | Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """ORT's own ``convert_onnx_models_to_ort`` on ``models`` (writes beside them)."""
    return run_cli(models, *flags, module="onnxruntime.tools.convert_onnx_models_to_ort", env=env)


@pytest.fixture(scope="session")
def custom_op_library(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny custom-op library compiled here (see tests/native/crashing_ops.c)."""
    if shutil.which("cc") is None:
        pytest.skip("no C compiler (cc) on this machine: cannot build the crashing custom-op library")
    out = tmp_path_factory.mktemp("native") / "libcrashing_ops.so"
    subprocess.run(
        ["cc", "-shared", "-fPIC", "-O1", "-o", str(out), str(REPO / "tests/native/crashing_ops.c")], check=True
    )
    return out
