"""verify on real parts: the C runner, compiled here, drives the full libonnxruntime that the onnxruntime wheel
ships (the only ONNX Runtime library CI has) through its C API, and every output is compared with
onnxruntime (Python). The models cover every input and output kind (modelgen's "verify" set).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import tarfile
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime
import ort_reduced_build
import pytest
from ort_reduced_build import verify
from ort_reduced_build.cli.verify import ort_models, runnable

from tests import modelgen
from tests.conftest import run_cli

WHEEL_LIBRARY = next((Path(onnxruntime.__file__).parent / "capi").glob("libonnxruntime.so*"), None)
pytestmark = pytest.mark.skipif(
    WHEEL_LIBRARY is None or shutil.which("cc") is None,
    reason="needs the onnxruntime wheel's libonnxruntime.so (Linux) and a C compiler (cc)",
)
RUNNER = Path(ort_reduced_build.__file__).parent / "resources" / "verify_runner.c"
Json = dict[str, Any]  # a --json report


def wheel_library() -> Path:
    """The wheel's library (the module is skipped without one)."""
    assert WHEEL_LIBRARY is not None
    return WHEEL_LIBRARY


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The "verify" set converted to .ort (Fixed style) in ``out/``, sources in ``src/``."""
    root = tmp_path_factory.mktemp("verify")
    modelgen.write_set("verify", root / "src")
    result = run_cli("convert", root / "src", "-o", root / "out", "--no-cache")
    assert result.returncode == 0, result.stderr
    return root


def verify_cli(*args: str | Path, cwd: Path, library: Path | None = None) -> tuple[int, Json, str]:
    result = run_cli("verify", "--runtime", str(library or wheel_library()), "--json", *map(str, args), cwd=cwd)
    return result.returncode, json.loads(result.stdout) if result.stdout else {}, result.stderr


def statuses(report: Json) -> dict[str, str]:
    return {m["path"]: m["status"] for m in report["models"]}


def test_every_input_and_output_kind_runs_bit_exactly_on_the_full_library(models: Path) -> None:
    code, report, stderr = verify_cli("out", "--inputs", write_inputs(models), cwd=models)
    assert code == 0, stderr
    assert report["ok"] is True
    assert report["reference"] == onnxruntime.__version__
    assert report["warnings"] == []  # the same library as the reference
    assert f"(onnxruntime {onnxruntime.__version__})" in str(report["runtime"])
    names = sorted(statuses(report))
    assert names == sorted(p.relative_to(models).as_posix() for p in (models / "out").rglob("*.ort"))
    assert len(names) == 10
    assert set(statuses(report).values()) == {"ok"}
    for model in report["models"]:
        assert model["outputs"], model
        assert all(o["max_abs_diff"] == 0.0 for o in model["outputs"]), model
    assert "10 model(s), 10 ok" in stderr


def write_inputs(models: Path) -> Path:
    """An inputs file exercising every kind of entry (shape, range, value, npy, dims, tolerances)."""
    np.save(models / "ids.npy", np.arange(12, dtype=np.int64).reshape(2, 6) % 100)
    path = models / "inputs.toml"
    path.write_text(
        """
[defaults]
dims = { batch = 2 }
[models."bert_encoder"]
atol = 0.0
rtol = 0.0
[models."bert_encoder".inputs.input_ids]
npy = "ids.npy"
[models."bert_encoder".inputs.token_type_ids]
shape = [2, 6]
value = 1
[models."bert_encoder".inputs.attention_mask]
shape = [2, 6]
range = [1, 2]
[models."out/rnn/lstm_state.ort".dims]
seq = 5
"""
    )
    return path


def test_a_wrong_reference_is_a_mismatch_with_its_size(models: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A stand-in for what cannot be had here: a reference that is wrong. onnxruntime's run is wrapped to
    # add 0.5 to every float output; the runner, on the real library, still computes the right values.
    real_run = onnxruntime.InferenceSession.run

    def perturbed(self: onnxruntime.InferenceSession, *args: object, **kwargs: object) -> list[object]:
        values = real_run(self, *args, **kwargs)
        return [v + np.float32(0.5) if isinstance(v, np.ndarray) and v.dtype == np.float32 else v for v in values]

    monkeypatch.setattr(onnxruntime.InferenceSession, "run", perturbed)
    ort = models / "out" / "rnn" / "gru.ort"
    report = verify.run(verify.VerifyRequest(models=(("gru", ort),), library=wheel_library()))
    [model] = report.models
    assert model.status == "mismatch"
    assert [o.name for o in model.outputs] == ["Y", "Y_h"]
    assert all(o.max_abs_diff == pytest.approx(0.5) and not o.ok for o in model.outputs)
    assert "Y: max abs diff 0.5" in model.message
    assert not report.ok()


def test_inputs_the_reference_cannot_run_are_skipped_and_fail_unless_allowed(models: Path) -> None:
    inputs = models / "bad_types.json"
    bad = {"inputs": {"token_type_ids": {"range": [5, 6]}}}  # the type table has 2 rows
    inputs.write_text(json.dumps({"models": {"bert_encoder.ort": bad}}))
    ort = "out/text/bert_encoder.ort"
    code, report, _ = verify_cli(ort, "--inputs", inputs, cwd=models)
    assert code == 1
    [model] = report["models"]
    assert model["status"] == "skipped"
    assert "session created" in model["message"]
    assert "set inputs input_ids, attention_mask, token_type_ids in --inputs" in model["message"]
    code, report, _ = verify_cli(ort, "--inputs", inputs, "--allow-skipped", cwd=models)
    assert (code, report["ok"]) == (0, True)


def test_a_model_that_cannot_load_is_session_failed_with_orts_message(models: Path) -> None:
    broken = models / "broken" / "truncated.ort"
    broken.parent.mkdir(exist_ok=True)
    broken.write_bytes((models / "out" / "rnn" / "gru.ort").read_bytes()[:200])
    code, report, stderr = verify_cli(broken, cwd=models)
    assert code == 1
    [model] = report["models"]
    assert model["status"] == "session-failed"
    assert model["message"].startswith("session: ")
    assert "1 session-failed" in stderr


def test_onnx_models_are_converted_with_the_options_the_config_header_records(
    models: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "basic.config"
    result = run_cli("config", models / "src" / "rnn", "-o", config, "--optimization-level", "basic", cwd=models)
    assert result.returncode == 0, result.stderr
    assert "optimization level basic" in config.read_text()
    monkeypatch.chdir(models)  # header paths are relative to where the config was written
    found = ort_models([], config, tmp_path / "work")  # no PATH: the models the header lists
    assert [shown for shown, _ in found] == ["src/rnn/gru.onnx", "src/rnn/lstm_state.onnx"]
    for _, ort in found:
        assert ort.is_relative_to(tmp_path / "work")
        assert ort.suffix == ".ort"
    report = verify.run(verify.VerifyRequest(models=tuple(found), library=wheel_library()))
    assert [m.status for m in report.models] == ["ok", "ok"]


def test_the_run_that_ends_a_build_reports_models_that_do_not_run(
    models: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What ``build`` runs on the library it made (the config's models, or --models): here on the full
    library, once with every model running and once with a model that cannot load."""
    config = tmp_path / "c.config"
    assert run_cli("config", models / "src" / "misc", "-o", config, cwd=models).returncode == 0
    monkeypatch.chdir(models)  # the header lists models relative to where the config was written
    args = argparse.Namespace(models=[], emulator=None, cc=None, reference_runtime=None, quiet=True, config=config)
    check = runnable(args, tmp_path, (), cross=False)
    assert callable(check)
    assert check(wheel_library()) == []
    broken = tmp_path / "broken.ort"
    broken.write_bytes(b"not a model")
    args.models = [broken]
    check = runnable(args, tmp_path, (), cross=False)
    assert callable(check)
    problems = check(wheel_library())
    assert len(problems) == 1
    assert problems[0].startswith(f"{broken}: session-failed: session: ")
    assert runnable(args, tmp_path, (), cross=True) == (
        "the models were not run: a cross build needs an emulator (--emulator, CMAKE_CROSSCOMPILING_EMULATOR)"
    )


def test_a_bad_inputs_file_is_one_line_naming_the_file_and_the_entry(models: Path) -> None:
    bad = models / "bad.toml"
    bad.write_text('[models."x".inputs.a]\nshape = "1,2"\n')
    code, _, stderr = verify_cli("out/rnn", "--inputs", bad, cwd=models)
    assert code == 1
    assert stderr.strip() == f"error: {bad}: models.x.inputs.a.shape must be a list of non-negative integers"


@pytest.mark.skipif(not os.environ.get("ORT_SOURCE_DIR"), reason="ORT_SOURCE_DIR is not set: no C API header to read")
def test_runner_slots_match_the_c_api_header() -> None:
    """The runner calls OrtApi functions by position: each API_<name> must be that function's index in ORT's
    own header (OrtApi only ever grows at its end, so one header proves every later version)."""
    header = Path(os.environ["ORT_SOURCE_DIR"], "include/onnxruntime/core/session/onnxruntime_c_api.h").read_text()
    names = orts_api_order(header)
    slots = dict(re.findall(r"API_(\w+) = (\d+)", RUNNER.read_text()))
    assert slots, "no API_ slots in the runner"
    for name, index in slots.items():
        assert names.index(name) == int(index), name


def orts_api_order(header: str) -> list[str]:
    """The member names of ``struct OrtApi``, in order, from ORT's header."""
    body = header[header.index("struct OrtApi {") :]
    body = body[: body.index("\n};")]
    body = re.sub(r"/\*.*?\*/|//[^\n]*", "", body, flags=re.DOTALL)
    pattern = (
        r"ORT_API2_STATUS\(\s*(\w+)|ORT_CLASS_RELEASE2?\(\s*(\w+)|ORT_API_T\([^,]*,\s*(\w+)"
        r"|\(ORT_API_CALL\s*\*\s*(\w+)\)"
    )
    names = []
    for status, release, typed, pointer in re.findall(pattern, body):
        names.append(status or (f"Release{release}" if release else typed or pointer))
    return names


ARM64_TOOLS = ("aarch64-linux-gnu-gcc", "qemu-aarch64-static", "npm", "unshare")


@pytest.fixture(scope="module")
def arm64_library(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The full linux-arm64 libonnxruntime that npm's onnxruntime-node ships (the only arm64 ONNX Runtime
    these machines can fetch), kept between runs in ~/.cache."""
    missing = [tool for tool in ARM64_TOOLS if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"cross-compiled runner under qemu: {', '.join(missing)} not installed (.ci/run installs them)")
    version = "1.30.0"
    cache = Path.home() / ".cache" / "ort-reduced-build-tests" / f"onnxruntime-node-{version}"
    library = cache / "package" / "bin" / "napi-v6" / "linux" / "arm64" / "libonnxruntime.so.1"
    if not library.is_file():
        work = tmp_path_factory.mktemp("npm")
        packed = subprocess.run(
            ["npm", "pack", f"onnxruntime-node@{version}"], cwd=work, capture_output=True, text=True, check=False
        )
        if packed.returncode != 0:
            pytest.skip(f"npm pack onnxruntime-node@{version} failed: {packed.stderr.strip()[-300:]}")
        cache.mkdir(parents=True, exist_ok=True)
        member = library.relative_to(cache).as_posix()
        with tarfile.open(work / f"onnxruntime-node-{version}.tgz") as tar:
            tar.extract(member, cache, filter="data")
    return library


def test_a_cross_compiled_runner_runs_an_arm64_library_under_qemu(models: Path, arm64_library: Path) -> None:
    """The cross path end to end: the runner compiled with the aarch64 cross compiler, run by qemu-user (in a
    mount namespace showing an ARM /proc/cpuinfo), drives onnxruntime-node's arm64 library; outputs are
    compared with onnxruntime on this x86-64 host."""
    emulator = "qemu-aarch64-static -L /usr/aarch64-linux-gnu"
    argv = ["--cc", "aarch64-linux-gnu-gcc", "--emulator", emulator]
    code, report, stderr = verify_cli(*argv, "out/rnn", "out/tabular", "out/misc", cwd=models, library=arm64_library)
    assert code == 0, stderr
    assert "(onnxruntime 1.30.0)" in str(report["runtime"])
    assert set(statuses(report).values()) == {"ok"}, report
    if not onnxruntime.__version__.startswith("1.30."):  # the reference is this host's onnxruntime
        assert report["warnings"] == [
            (
                f"the reference is onnxruntime {onnxruntime.__version__} but the library is 1.30.0: outputs may "
                "differ where kernels changed; compare with onnxruntime==1.30.*"
            )
        ]
        assert f"warning: the reference is onnxruntime {onnxruntime.__version__}" in stderr
    assert len(statuses(report)) == 6


def test_a_full_runtime_for_the_target_is_the_reference_when_given(models: Path, arm64_library: Path) -> None:
    """Seen on an aarch64 reduced build: a dynamically quantized encoder differs from x86-64 onnxruntime by
    up to 1.06 (the CPUs' integer kernels differ), though it matches the full aarch64 library exactly. With
    --reference-runtime the reference runs on that library, through the same runner and emulator."""
    emulator = "qemu-aarch64-static -L /usr/aarch64-linux-gnu"
    argv = ["--cc", "aarch64-linux-gnu-gcc", "--emulator", emulator, "--reference-runtime", str(arm64_library)]
    code, report, stderr = verify_cli(*argv, "out/rnn", "out/tabular", cwd=models, library=arm64_library)
    assert code == 0, stderr
    assert report["reference"] == "1.30.0"  # the runner's library, not this host's onnxruntime
    assert report["warnings"] == []
    assert set(statuses(report).values()) == {"ok"}, report
    for model in report["models"]:
        assert model["outputs"], model
        assert all(o["max_abs_diff"] == 0.0 for o in model["outputs"]), model


def test_a_reference_runtime_that_cannot_run_the_model_skips_it_naming_the_library(models: Path) -> None:
    not_a_library = models / "not-a-library.so"
    not_a_library.write_text("not an ELF file\n")
    code, report, _ = verify_cli("out/rnn/gru.ort", "--reference-runtime", not_a_library, cwd=models)
    assert code == 1
    [model] = report["models"]
    assert model["status"] == "skipped"
    assert f"the reference runtime {not_a_library} cannot run it" in model["message"]
    code, _, stderr = verify_cli("out/rnn/gru.ort", "--reference-runtime", models / "absent.so", cwd=models)
    assert (code, stderr.strip()) == (1, f"error: {models / 'absent.so'}: no such library (--reference-runtime)")
