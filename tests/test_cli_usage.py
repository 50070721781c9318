"""The command line's own contract, on real CLI runs of real models: where -v/-q go and what they show,
usage errors (exit 2), the forms of --optimization-style, the options each verb takes, errors as JSON,
and summaries that count each thing once. Each test is named after the failure it guards."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests import modelgen
from tests._hardening import one_node_model, write
from tests.conftest import Cli

CONFIG = "required_operators_and_types.config"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """Two good models under ``models/``; one model ORT rejects (an unknown op) under ``bad/``."""
    root = tmp_path / "project"
    modelgen.save(modelgen.mlp(features=4, hidden=4), root / "models/mlp.onnx")
    modelgen.save(modelgen.mlp(features=6, hidden=4, seed=3), root / "models/nested/mlp_b.onnx")
    write(root / "bad/good.onnx", one_node_model("Relu"))
    write(root / "bad/unknown_op.onnx", one_node_model("NoSuchOp"))
    return root


def test_quiet_after_the_verb_is_not_refused_and_prints_no_summary(project: Path, cli: Cli) -> None:
    r = cli("convert", "models", "-o", "out", "-q", cwd=project)
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""  # errors only: no per-model lines, no summary
    assert (project / "out/mlp.ort").is_file()
    before = cli("-q", "config", "models", "-o", "c.config", cwd=project)
    assert (before.returncode, before.stderr) == (0, "")


def test_quiet_still_prints_the_errors(project: Path, cli: Cli) -> None:
    r = cli("config", "bad", "-o", "c.config", "--allow-conversion-failures", "-q", cwd=project)
    assert r.returncode == 1
    assert r.stderr.startswith("failed: bad/unknown_op.onnx (Fixed): ")
    assert len(r.stderr.splitlines()) == 1, r.stderr


def test_verbose_after_the_verb_shows_per_model_lines(project: Path, cli: Cli) -> None:
    r = cli("config", "models", "-o", "c.config", "-v", cwd=project)
    assert r.returncode == 0, r.stderr
    assert "converted  models/mlp.onnx (Fixed)" in r.stderr
    assert "converted  models/nested/mlp_b.onnx (Fixed)" in r.stderr


def test_failed_conversion_shows_no_traceback_with_vv(project: Path, cli: Cli) -> None:
    plain = cli("config", "bad", "-o", "c.config", cwd=project)
    assert plain.returncode == 1
    assert "Traceback" not in plain.stderr
    for flags in (["-vv"], ["-v", "-v"]):
        r = cli("-v", "config", "bad", "-o", "c.config", *flags, cwd=project)  # -v before and after add up
        assert r.returncode == 1
        assert "Traceback (most recent call last):" in r.stderr
        assert "No Op registered for NoSuchOp" in r.stderr


@pytest.mark.parametrize("flags", [[], ["-v"], ["-v", "--allow-conversion-failures"]])
def test_failed_model_is_printed_twice(project: Path, cli: Cli, flags: list[str]) -> None:
    r = cli(*flags[:1], "config", "bad", "-o", "c.config", *flags[1:], cwd=project)
    assert r.returncode == 1
    said = [line for line in r.stderr.splitlines() if "bad/unknown_op.onnx" in line]
    assert len(said) == 1, r.stderr


def test_check_prints_a_stray_empty_line_on_success(project: Path, cli: Cli) -> None:
    assert cli("convert", "models", "-o", "out", cwd=project).returncode == 0
    r = cli("check", "models", "--config", f"out/{CONFIG}", cwd=project)
    assert r.returncode == 0, r.stderr
    assert r.stdout == ""
    assert "ok" in r.stderr


@pytest.mark.parametrize(
    "argv",
    [
        ["convert", "models", "-j", "0"],
        ["convert", "models", "-j", "two"],
        ["config", "models", "-o", "c.config", "--jobs", "-3"],
        ["check", "models", "--config", "c.config", "--timeout", "-1"],
        ["convert", "models", "--timeout", "0"],
        ["convert", "models", "--timeout", "nan"],
        ["diff", "a.config", "models", "--timeout", "inf"],
        ["build", "--config", "c.config", "--ort-source", ".", "-j", "0"],
        ["build", "--config", "c.config", "--ort-source", ".", "--android-api", "0"],
        ["verify", "models", "--runtime", "lib.so", "--rtol", "-1"],
        ["verify", "models", "--runtime", "lib.so", "--atol", "nan"],
    ],
    ids=" ".join,
)
def test_invalid_number_is_not_a_usage_error(project: Path, cli: Cli, argv: list[str]) -> None:
    r = cli(*argv, cwd=project)
    assert r.returncode == 2, r.stderr
    assert "usage: " in r.stderr
    assert "Traceback" not in r.stderr
    assert not (project / "models/mlp.ort").exists()  # refused before anything ran


def test_space_separated_optimization_styles_are_read_as_a_path(project: Path, cli: Cli) -> None:
    configs = []
    for i, styles in enumerate(
        (
            ["--optimization-style", "Fixed", "Runtime"],  # ORT's converter's habit
            ["--optimization-style", "Fixed", "--optimization-style", "Runtime"],
            ["--optimization-style", "Fixed;Runtime"],  # the backend's list form
            ["--optimization-style", "Fixed", "Runtime", "--optimization-style", "Runtime"],  # duplicates dropped
        )
    ):
        r = cli("convert", "models", "-o", f"out{i}", *styles, cwd=project)
        assert r.returncode == 0, r.stderr
        assert "2 model(s), 4 conversion(s)" in r.stderr
        assert (project / f"out{i}/mlp.ort").is_file()
        assert (project / f"out{i}/mlp.with_runtime_opt.ort").is_file()
        configs.append((project / f"out{i}" / CONFIG).read_bytes())
    assert len(set(configs)) == 1
    r = cli("convert", "models", "--optimization-style", "Fixed", "Runtimes", cwd=project)
    assert r.returncode == 2
    assert "invalid choice: 'Runtimes'" in r.stderr


@pytest.mark.parametrize(
    "argv",
    [
        ["config", "models", "-o", "c.config", "--save-optimized-onnx"],
        ["check", "models", "--config", "c.config", "--save-optimized-onnx"],
        ["explain", "models", "--save-optimized-onnx"],
        ["diff", "c.config", "models", "--save-optimized-onnx"],
        ["check", "models", "--config", "c.config", "--allow-conversion-failures"],  # check reports them all
        ["check", "models", "--config", "c.config", "--extra-ops", "c.config"],  # no config is composed
        ["check", "models", "--config", "c.config", "--no-type-reduction"],
        ["explain", "models", "--merge", "c.config"],
        ["explain", "models", "--globally-allowed-types", "float"],
    ],
    ids=" ".join,
)
def test_option_a_verb_ignores_is_accepted_silently(project: Path, cli: Cli, argv: list[str]) -> None:
    (project / "c.config").write_text("ai.onnx;13;Relu\n")
    r = cli(*argv, cwd=project)
    assert r.returncode == 2, r.stderr
    option = [a for a in argv if a.startswith("--")][-1]
    assert f"unrecognized arguments: {option}" in r.stderr


def test_save_optimized_onnx_still_works_for_convert(project: Path, cli: Cli) -> None:
    r = cli("convert", "models", "-o", "out", "--save-optimized-onnx", cwd=project)
    assert r.returncode == 0, r.stderr
    assert (project / "out/mlp.optimized.onnx").is_file()


@pytest.mark.parametrize(
    "argv",
    [
        ["check", "models", "--config", "missing.config"],
        ["explain", "missing.config"],
        ["diff", "missing.config", "models"],
        ["verify", "models", "--runtime", "missing.so"],
    ],
    ids=lambda argv: argv[0],
)
def test_json_prints_nothing_on_an_expected_error(project: Path, cli: Cli, argv: list[str]) -> None:
    r = cli(*argv, "--json", cwd=project)
    assert r.returncode == 1
    out = json.loads(r.stdout)
    assert out["ok"] is False
    assert "missing" in out["error"]
    assert f"error: {out['error']}" in r.stderr  # the same message for people


def test_json_prints_nothing_on_a_failed_conversion(project: Path, cli: Cli) -> None:
    r = cli("explain", "bad", "--json", cwd=project)
    assert r.returncode == 1
    out = json.loads(r.stdout)
    assert out["ok"] is False
    assert out["error"].startswith("bad/unknown_op.onnx: ")
    [failure] = out["failures"]
    assert failure["model"] == "bad/unknown_op.onnx"
    assert "NoSuchOp" in failure["error"]


def test_summary_mixes_models_and_conversions(project: Path, cli: Cli) -> None:
    styles = ["--optimization-style", "Fixed", "--optimization-style", "Runtime"]
    r = cli("config", "models", "-o", "c.config", *styles, cwd=project)
    assert r.returncode == 0, r.stderr
    assert "ort-reduced-build: 2 model(s), 4 conversion(s) (4 converted, 0 cached), 0 failed, " in r.stderr
    r = cli("config", "models", "bad", "-o", "c.config", *styles, "--allow-conversion-failures", cwd=project)
    assert r.returncode == 1
    # 4 models, 8 conversions: 2 new (bad/good.onnx), 4 cached, 2 failed (bad/unknown_op.onnx in each style)
    assert "ort-reduced-build: 4 model(s), 8 conversion(s) (2 converted, 4 cached), 2 failed, " in r.stderr
    assert len([line for line in r.stderr.splitlines() if line.startswith("failed: ")]) == 2
