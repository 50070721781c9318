"""check, explain, diff on real converted models (converted once per session, then from the cache)."""

from __future__ import annotations

import json
import shlex
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import onnx
import pytest
from ort_reduced_build.cli import main, make_parser
from ort_reduced_build.engine.config import parse_config

from tests import modelgen

MODELS: dict[str, Callable[[], onnx.ModelProto]] = {
    "models/misc/control_flow.onnx": modelgen.control_flow,
    "models/tabular/mlp.onnx": modelgen.mlp,
    "models/tabular/mlp_wide.onnx": lambda: modelgen.mlp(24, 48, seed=4),
    "models/vision/cnn.onnx": lambda: modelgen.cnn((4, 8), 16),
}
CONTROL_FLOW = "models/misc/control_flow.onnx"
MLPS = ["models/tabular/mlp.onnx", "models/tabular/mlp_wide.onnx"]
ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Project:
    root: Path
    cache: Path
    config: Path
    """The full config of all models, written by ``config``."""

    def run(self, *argv: str) -> int:
        return main([*argv, "--cache-dir", str(self.cache)])

    def edited(self, name: str, *replacements: tuple[str, str]) -> Path:
        text = self.config.read_text()
        for old, new in replacements:
            assert old in text, old
            text = text.replace(old, new)
        path = self.root / name
        path.write_text(text)
        return path


@pytest.fixture(scope="session")
def project(tmp_path_factory: pytest.TempPathFactory) -> Project:
    root = tmp_path_factory.mktemp("ci-verbs")
    for rel, build in MODELS.items():
        modelgen.save(build(), root / rel)
    proj = Project(root, root / "cache", root / "required_operators_and_types.config")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        assert proj.run("config", "models", "-o", proj.config.name, "-j", "2") == 0
    return proj


@pytest.fixture
def in_project(project: Project, monkeypatch: pytest.MonkeyPatch) -> Project:
    monkeypatch.chdir(project.root)
    return project


def json_out(capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    report: dict[str, Any] = json.loads(capsys.readouterr().out)
    return report


def test_check_passes_on_the_full_config(in_project: Project, capsys: pytest.CaptureFixture[str]) -> None:
    assert in_project.run("check", "models", "--config", in_project.config.name) == 0
    assert "4 model(s), ok" in capsys.readouterr().err


def test_check_names_the_models_needing_a_removed_op(in_project: Project, capsys: pytest.CaptureFixture[str]) -> None:
    text = in_project.config.read_text()
    assert "ArgMax" in text
    assert "Abs" in text
    bad = in_project.edited(
        "no-argmax.config",
        ('ArgMax{"inputs": {"0": ["float"]}},', ""),
        ('Abs{"inputs": {"0": ["float"]}},', ""),
    )
    assert in_project.run("check", "models", "--config", bad.name) == 1
    out = capsys.readouterr().out
    assert f"ai.onnx;13;ArgMax (op not in config)  needed by: {', '.join(MLPS)}" in out
    assert f"ai.onnx;13;Abs (op not in config)  needed by: {CONTROL_FLOW}" in out  # an op inside If


def test_check_fix_hint_keeps_the_other_models_the_config_lists(
    in_project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    """Checking one model of four: the fix command names it and the three others the header lists, so
    running it gives back the whole config, not one for a single model."""
    bad = in_project.edited("no-argmax-fix.config", ('ArgMax{"inputs": {"0": ["float"]}},', ""))
    assert in_project.run("check", MLPS[0], "--config", bad.name) == 1
    fix = capsys.readouterr().err.split("fix: ", 1)[1].split("  (or ", 1)[0]
    others = sorted(set(MODELS) - {MLPS[0]})
    assert fix == shlex.join(["ort-reduced-build", "config", MLPS[0], *others, "-o", bad.name])
    assert in_project.run(*shlex.split(fix)[1:]) == 0
    assert bad.read_text() == in_project.config.read_text()


def test_check_finds_a_removed_type_and_reports_all_gaps_as_json(
    in_project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = in_project.edited(
        "no-float-sqrt.config",
        ('Sqrt{"inputs": {"0": ["float"]}}', 'Sqrt{"inputs": {"0": ["double"]}}'),
        ('Gemm{"inputs": {"0": ["float"]}},', ""),
    )
    assert in_project.run("check", "models", "--config", bad.name, "--json") == 1
    report = json_out(capsys)
    assert not report["ok"]
    assert [(g["op"], g["arg"], g["type"], g["models"]) for g in report["gaps"]] == [
        ("Gemm", "", "", ["models/vision/cnn.onnx"]),
        ("Sqrt", "input 0", "float", [CONTROL_FLOW]),
    ]


def test_check_validates_ort_files(in_project: Project, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert in_project.run("convert", "models/tabular/mlp.onnx", "-o", str(tmp_path / "ort")) == 0
    good = tmp_path / "ort" / "mlp.ort"
    old = tmp_path / "old.ort"
    old.write_bytes(relabel(good.read_bytes(), "4"))
    junk = tmp_path / "junk.ort"
    junk.write_bytes(b"\0" * 64)
    capsys.readouterr()
    assert in_project.run("check", str(good), "--config", in_project.config.name) == 0
    assert in_project.run("check", str(good), str(old), str(junk), "--config", in_project.config.name) == 1
    out = capsys.readouterr().out
    assert f"invalid: {old}: ORT format version 4 cannot be loaded by a minimal build" in out
    assert "ort-reduced-build upgrade" in out
    assert f"invalid: {junk}: not an ORT format model (no 'ORTM' identifier)" in out


def test_explain_names_the_models_with_an_op(in_project: Project, capsys: pytest.CaptureFixture[str]) -> None:
    assert in_project.run("explain", "models", "--op", "ai.onnx:Abs") == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].startswith(f"ai.onnx:Abs opset 13  [input 0: float]  1 model(s): {CONTROL_FLOW}")
    assert in_project.run("explain", "models", "--op", "ArgMax", "--json") == 0
    obj = json_out(capsys)
    assert [m["model"] for m in obj["ops"][0]["models"]] == MLPS
    assert in_project.run("explain", "models", "--op", "ai.onnx:LSTM") == 1


def test_explain_counts_and_single_model_ops(in_project: Project, capsys: pytest.CaptureFixture[str]) -> None:
    assert in_project.run("explain", "models", "--json") == 0
    models = {m["model"]: m for m in json_out(capsys)["models"]}
    assert set(models) == set(MODELS)
    assert models[MLPS[0]]["only_here"] == []  # both MLPs need the same ops
    assert "ai.onnx:Abs" in models[CONTROL_FLOW]["only_here"]
    assert in_project.run("explain", "models") == 0
    assert "per model" in capsys.readouterr().out


def test_explain_a_config_file(in_project: Project, capsys: pytest.CaptureFixture[str]) -> None:
    assert in_project.run("explain", in_project.config.name, "--op", "Sqrt") == 0
    assert capsys.readouterr().out.startswith("ai.onnx:Sqrt opset 13  [input 0: float]")


def test_diff_config_against_models(in_project: Project, capsys: pytest.CaptureFixture[str]) -> None:
    name = in_project.config.name
    assert in_project.run("diff", name, "models", "--exit-code") == 0
    assert capsys.readouterr().out.splitlines()[-1] == "no differences"
    bad = in_project.edited(
        "stale.config",
        ('Abs{"inputs": {"0": ["float"]}},', ""),
        ('Sqrt{"inputs": {"0": ["float"]}}', 'Sqrt{"inputs": {"0": ["double"]}}'),
    )
    assert in_project.run("diff", bad.name, "models") == 0  # no --exit-code: differences are not a failure
    assert in_project.run("diff", bad.name, "models", "--exit-code") == 1
    out = capsys.readouterr().out
    assert '+ ai.onnx;13;Abs{"inputs": {"0": ["float"]}}' in out
    assert "~ ai.onnx:Sqrt input 0: +float -double" in out
    assert in_project.run("diff", name, bad.name, "--json", "--exit-code") == 1
    obj = json_out(capsys)
    assert [c["op"] for c in obj["ops_removed"]] == ["Abs"]
    assert obj["types_changed"][0]["removed"] == {"input 0": ["float"]}


def test_precommit_hooks_parse() -> None:
    text = (ROOT / ".pre-commit-hooks.yaml").read_text()
    entries = [line.split(":", 1)[1].strip() for line in text.splitlines() if line.strip().startswith("entry:")]
    assert "ort-reduced-build config --check" in entries
    for entry in entries:
        argv = [*entry.split()[1:], "models", "-o", "x.config"]
        if argv[0] == "check":
            argv = [*entry.split()[1:], "models", "--config", "x.config"]
        assert make_parser().parse_args(argv).func


def relabel(data: bytes, version: str) -> bytes:
    """Rewrite the ``ort_version`` string of an ORT file in place (same length): a synthetic old format."""
    from onnxruntime.tools.ort_format_model.ort_model_processor import fbs

    session = fbs.InferenceSession.InferenceSession.GetRootAsInferenceSession(data, 0)
    tab = session._tab
    field = tab.Pos + tab.Offset(4)
    start = field + int.from_bytes(data[field : field + 4], "little")
    length = int.from_bytes(data[start : start + 4], "little")
    assert data[start + 4 : start + 4 + length] == session.OrtVersion()
    assert len(version) == length
    return data[: start + 4] + version.encode() + data[start + 4 + length :]


def test_directories_of_ort_files_are_checked(
    in_project: Project, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A converted tree is walked for .ort files; a folder mixing .onnx and a foreign .ort is checked whole,
    and an .ort beside the .onnx it was converted from is that model, not a second one."""
    out = tmp_path / "out"
    assert in_project.run("convert", "models", "-o", str(out)) == 0
    capsys.readouterr()
    assert in_project.run("check", str(out), "--config", in_project.config.name) == 0
    assert "4 model(s), ok" in capsys.readouterr().err

    mixed = tmp_path / "mixed"
    mixed.mkdir()
    (mixed / "mlp.onnx").write_bytes((in_project.root / "models/tabular/mlp.onnx").read_bytes())
    (mixed / "mlp.ort").write_bytes((out / "tabular" / "mlp.ort").read_bytes())  # its own conversion
    (mixed / "MLP.basic.with_runtime_opt.ORT").write_bytes((out / "tabular" / "mlp.ort").read_bytes())
    (mixed / "cnn.ort").write_bytes((out / "vision" / "cnn.ort").read_bytes())  # a model of its own
    only_mlps = in_project.edited("mlps.config", ('Gemm{"inputs": {"0": ["float"]}},', ""))
    assert in_project.run("check", str(mixed), "--config", only_mlps.name, "--json") == 1
    report = json_out(capsys)
    assert sorted(report["models"]) == [f"{mixed}/cnn.ort", f"{mixed}/mlp.onnx"]
    assert [(g["op"], g["models"]) for g in report["gaps"]] == [("Gemm", [f"{mixed}/cnn.ort"])]


@pytest.fixture(scope="session")
def qdq_models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A statically quantized (QDQ) CNN: Runtime style saves its QDQ fusions as runtime optimizations."""
    models = tmp_path_factory.mktemp("qdq") / "models"
    modelgen.quantized(modelgen.cnn(), models / "cnn_qdq.onnx", "QDQ")
    return models


def _quantized_maxpool_type(config: Path) -> str:
    """The one non-float type the config lets MaxPool take: the type the QDQ fusion makes it run on."""
    types = parse_config(config.read_text()).types["ai.onnx", "MaxPool"].inputs[0] - {"float"}
    assert len(types) == 1, types
    return next(iter(types))


@pytest.mark.parametrize("style", ["Fixed", "Runtime"])
def test_converted_ort_files_pass_check_against_the_config_convert_wrote_with_them(
    qdq_models: Path, style: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A Runtime-style .ort failed check against its own config ("all types" gaps): the types its replayed
    QDQ fusions use were unknown. ORT's converter writes the same config (test_equivalence), so the check
    was too strict; the needs of a given .ort now include its replayed graph's exact types."""
    monkeypatch.chdir(tmp_path)
    cache = ["--cache-dir", str(tmp_path / "cache")]
    assert main(["convert", str(qdq_models), "-o", "out", "--optimization-style", style, *cache]) == 0
    config = Path("out/required_operators_and_types.config")
    ort_file = next(Path("out").glob("*.ort"))
    assert (".with_runtime_opt" in ort_file.name) == (style == "Runtime")
    capsys.readouterr()
    assert main(["check", str(qdq_models), "--config", str(config), "--optimization-style", style, *cache]) == 0
    assert main(["check", "out", "--config", str(config), *cache]) == 0, capsys.readouterr().out
    # The config of the .ort alone is the one convert wrote from the .onnx: nothing kept with all types.
    assert main(["config", "out", "-o", "from_ort.config", *cache]) == 0
    assert parse_config(Path("from_ort.config").read_text()) == parse_config(config.read_text())

    quantized = _quantized_maxpool_type(config)
    lacking = Path("lacking.config")
    lacking.write_text(config.read_text().replace(f'"{quantized}"', '"float"'))
    capsys.readouterr()
    for models in (str(qdq_models), "out"):
        assert main(["check", models, "--config", str(lacking), "--optimization-style", style, *cache]) == 1
        out = capsys.readouterr().out
        assert f"ai.onnx;12;MaxPool input 0 type {quantized}  needed by: " in out
        assert "all types" not in out


def test_saved_optimizations_this_onnxruntime_does_not_make_again_keep_all_their_types(
    qdq_models: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Records saved for another target (int8 QDQ fusions on arm) are not re-derived with the default one:
    the ops they add or rewrite keep all their types, and a warning says so."""
    monkeypatch.chdir(tmp_path)
    cache = ["--cache-dir", str(tmp_path / "cache")]
    argv = ["convert", str(qdq_models), "-o", "out", "--optimization-style", "Runtime", "--target-platform", "arm"]
    assert main([*argv, *cache]) == 0
    capsys.readouterr()
    assert main(["config", "out", "-o", "default.config", *cache]) == 0
    assert "saved runtime optimization(s) are not made again by this onnxruntime" in capsys.readouterr().err
    assert ("ai.onnx", "QuantizeLinear") not in parse_config(Path("default.config").read_text()).types
    assert main(["config", "out", "-o", "arm.config", "--target-platform", "arm", *cache]) == 0
    assert "not made again" not in capsys.readouterr().err
    exact = parse_config(Path("arm.config").read_text())
    assert exact == parse_config(Path("out/required_operators_and_types.config").read_text())


def test_a_given_ort_whose_replay_cannot_be_derived_keeps_all_types_and_says_why(
    qdq_models: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The derivation runs in a worker like a conversion; one that fails (here: past --timeout) leaves the
    file's own needs with its replayed ops unrestricted, never a narrower config."""
    monkeypatch.chdir(tmp_path)
    assert main(["convert", str(qdq_models), "-o", "out", "--optimization-style", "Runtime", "--no-cache"]) == 0
    capsys.readouterr()
    assert main(["config", "out", "-o", "x.config", "--no-cache", "--timeout", "0.001"]) == 0
    err = capsys.readouterr().err
    assert "could not be derived again (conversion timed out after 0.001s)" in err
    types = parse_config(Path("x.config").read_text()).types
    assert ("ai.onnx", "MaxPool") not in types
    assert ("ai.onnx", "Conv") in types


@pytest.fixture
def qdq_project(
    qdq_models: Path, tmp_path_factory: pytest.TempPathFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> list[str]:
    """The QDQ model copied to ``models/`` in a fresh working directory; the cache flags (one cache per session)."""
    shutil.copytree(qdq_models, tmp_path / "models")
    monkeypatch.chdir(tmp_path)
    return ["--cache-dir", str(tmp_path_factory.getbasetemp() / "qdq-cache")]


def _hook(hook_id: str) -> list[str]:
    """The argv (after the program) of a hook in .pre-commit-hooks.yaml."""
    text = (ROOT / ".pre-commit-hooks.yaml").read_text()
    hook = text[text.index(f"- id: {hook_id}\n") :]
    entry = next(line for line in hook.splitlines() if line.strip().startswith("entry:"))
    return entry.split(":", 1)[1].split()[1:]


@pytest.mark.parametrize(
    "options",
    [["--optimization-level", "basic"], ["--optimization-style", "Runtime", "--target-platform", "arm"]],
    ids=["basic", "runtime-arm"],
)
def test_gates_use_the_options_the_config_was_written_with(
    qdq_project: list[str], options: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    """check, diff and config --check (the pre-commit hooks as written, no options) converted at level all
    with style Fixed: false gaps, a false "stale", and a fix command that switched the config to level all."""
    assert main(["convert", "models", "-o", "out", "--config", "written.config", *options, *qdq_project]) == 0
    written = Path("written.config").read_bytes()
    capsys.readouterr()
    assert main([*_hook("ort-reduced-build-config"), "models", "-o", "written.config", *qdq_project]) == 0
    assert main([*_hook("ort-reduced-build-check"), "models", "--config", "written.config", *qdq_project]) == 0
    assert main(["check", "out", "--config", "written.config", *qdq_project]) == 0  # the .ort files, replayed
    assert main(["diff", "written.config", "models", "--exit-code", *qdq_project]) == 0
    assert main(["diff", "models", "written.config", "--exit-code", *qdq_project]) == 0
    assert "warning" not in capsys.readouterr().err
    assert Path("written.config").read_bytes() == written


def test_an_option_given_that_differs_from_the_header_is_said_in_one_line(
    qdq_project: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    """Given explicitly, an option wins: check and diff answer for it and warn (their verdict is true for the
    options given); config --check calls the file stale, since those options write another file."""
    assert main(["config", "models", "-o", "basic.config", "--optimization-level", "basic", *qdq_project]) == 0
    capsys.readouterr()
    said = "basic.config: written with --optimization-level basic, but --optimization-level all was given"
    assert main(["check", "models", "--config", "basic.config", "--optimization-level", "all", *qdq_project]) == 1
    assert f"warning: {said}\n" in capsys.readouterr().err  # at level all the QDQ fusions need more ops
    assert main(["diff", "basic.config", "models", "--optimization-level", "all", *qdq_project]) == 0
    assert f"warning: {said}\n" in capsys.readouterr().err
    assert main(["config", "models", "-o", "basic.config", "--check", "--optimization-level", "all", *qdq_project]) == 1
    err = capsys.readouterr().err
    assert f"stale: {said}\n" in err
    assert "run: ort-reduced-build config models -o basic.config --optimization-level all\n" in err
    # At level basic arm fuses nothing more: covered, and still said.
    assert main(["check", "models", "--config", "basic.config", "--target-platform", "arm", *qdq_project]) == 0
    err = capsys.readouterr().err
    assert "warning: basic.config: written with no --target-platform, but --target-platform arm was given\n" in err


@pytest.mark.parametrize(
    "options",
    [
        ["--optimization-level", "extended", "--optimization-style", "Runtime", "Fixed", "--target-platform", "arm"],
        ["--no-type-reduction", "--extra-ops", "extra.config"],
        ["--globally-allowed-types", "int8_t,float", "--optimization-level", "basic"],
    ],
    ids=["conversion", "composition", "global-types"],
)
def test_a_fix_hint_is_the_command_that_writes_the_same_file(
    qdq_project: list[str], options: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    """The stale hint said `config ... -o FILE` (rewriting with the defaults); check's said `config PATH...`.
    Both now print a command that, run as printed, writes the file byte for byte."""
    Path("extra.config").write_text("ai.onnx;13;Abs\n")
    assert main(["config", "models", "-o", "c.config", *options, *qdq_project]) == 0
    good = Path("c.config").read_text()
    op_lines = [line for line in good.splitlines() if not line.startswith("#")]
    Path("c.config").write_text(good.replace(op_lines[0] + "\n", ""))  # stale, and missing an op
    capsys.readouterr()
    assert main(["config", "models", "-o", "c.config", "--check", *qdq_project]) == 1
    run = capsys.readouterr().err.split("run: ", 1)[1].splitlines()[0]
    assert main(["check", "models", "--config", "c.config", *qdq_project]) == 1
    fix = capsys.readouterr().err.split("fix: ", 1)[1].split("  (or ", 1)[0]
    for command in (run, fix):
        Path("c.config").write_text("stale\n")
        argv = shlex.split(command)
        assert argv[:2] == ["ort-reduced-build", "config"], command
        assert main([*argv[1:], *qdq_project]) == 0
        assert Path("c.config").read_text() == good, command
