"""The build backend through real ``pip wheel`` runs of the sample project and of tests/packages/<case>/.

Most builds use ``--no-build-isolation`` (this environment has the plugin, scikit-build-core, CMake
and Ninja); one builds with isolation, the plugin coming from a local wheel directory.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
import zipfile
from datetime import datetime, timezone
from pathlib import Path

import pytest
import scikit_build_core.build
from ort_reduced_build import __version__, backend

from tests import modelgen
from tests._hardening import one_node_model, write
from tests.conftest import REPO, run_cli

SAMPLE = REPO / "sample_project"
EPOCH = 1700000000
MODELS = "src/sample_app/models"
SAMPLE_WHEEL = {
    "sample_app/__init__.py",
    "sample_app/__main__.py",
    "sample_app/cli.py",
    "sample_app/models/flower_species.ort",
    "sample_app/models/image_classifier.ort",
    "sample_app/required_operators_and_types.config",
    "sample_app-1.0.0.dist-info/METADATA",
    "sample_app-1.0.0.dist-info/WHEEL",
    "sample_app-1.0.0.dist-info/entry_points.txt",
    "sample_app-1.0.0.dist-info/RECORD",
}

pytestmark = [
    pytest.mark.skipif(not (shutil.which("cmake") and shutil.which("ninja")), reason="needs cmake and ninja"),
    pytest.mark.slow,
]


def pip_wheel(
    project: Path, out: Path, *args: str, cache: Path, env: dict[str, str] | None = None, isolated: bool = False
) -> subprocess.CompletedProcess[str]:
    """``pip wheel`` of ``project`` into ``out``, verbose (the backend's output is shown), never raising."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("ORT_REDUCED_BUILD_", "SKBUILD_"))}
    full_env = {**clean, "ORT_REDUCED_BUILD_CACHE_DIR": str(cache), "SOURCE_DATE_EPOCH": str(EPOCH), **(env or {})}
    isolation = [] if isolated else ["--no-build-isolation"]
    cmd = [sys.executable, "-m", "pip", "wheel", "--no-deps", "-v", *isolation, "-w", str(out), *args, str(project)]
    return subprocess.run(cmd, env=full_env, capture_output=True, text=True, timeout=600, check=False)


def log(result: subprocess.CompletedProcess[str]) -> str:
    return result.stdout + result.stderr


def built(result: subprocess.CompletedProcess[str], out: Path) -> Path:
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-3000:]
    (wheel,) = out.glob("*.whl")
    return wheel


def summary(result: subprocess.CompletedProcess[str]) -> str:
    (line,) = re.findall(r"ort-reduced-build: \d+ model\(s\).*", log(result))
    return str(line)


@pytest.fixture
def sample(tmp_path: Path) -> Path:
    """A copy of sample_project/ without build outputs."""
    return Path(shutil.copytree(SAMPLE, tmp_path / "sample", ignore=shutil.ignore_patterns("build", "dist")))


@pytest.fixture(scope="session")
def plugin_wheels(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory with ort-reduced-build's own wheel, built once per session."""
    out = tmp_path_factory.mktemp("plugin_wheels")
    cmd = [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(out), str(REPO)]
    subprocess.run(cmd, check=True, capture_output=True, timeout=300)
    return out


def test_wheel_ships_converted_models_and_the_cli_config(sample: Path, tmp_path: Path) -> None:
    result = pip_wheel(sample, tmp_path / "dist", cache=tmp_path / "cache")
    wheel = zipfile.ZipFile(built(result, tmp_path / "dist"))
    assert set(wheel.namelist()) == SAMPLE_WHEEL
    for name in ("flower_species", "image_classifier"):
        assert wheel.read(f"sample_app/models/{name}.ort")[4:8] == b"ORTM"
    config = wheel.read("sample_app/required_operators_and_types.config").decode()
    cli = run_cli(
        "config",
        MODELS,
        "-o",
        tmp_path / "cli.config",
        cwd=sample,
        env={"ORT_REDUCED_BUILD_CACHE_DIR": str(tmp_path / "cache")},
    )
    assert cli.returncode == 0, cli.stderr
    assert config == (tmp_path / "cli.config").read_text(encoding="utf-8")
    assert "ai.onnx.ml;1;Scaler,TreeEnsembleClassifier,ZipMap" in config
    assert f"# - {MODELS}/image_classifier.onnx" in config
    # find_package(OrtReducedBuild CONFIG REQUIRED) found the package with no hints; the defines arrived.
    (defined,) = re.findall(r"sample-app: operator config (\S+)", log(result))
    assert Path(defined).is_absolute()
    assert Path(defined).read_text(encoding="utf-8") == config
    (models_dir,) = re.findall(r"sample-app: converted models in (\S+)", log(result))
    assert sorted(p.name for p in Path(models_dir, MODELS).iterdir()) == ["flower_species.ort", "image_classifier.ort"]
    assert "shipping the models and the config only" in log(result)


def test_rebuild_hits_the_cache_and_gives_identical_bytes(sample: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    first = built(pip_wheel(sample, tmp_path / "one", cache=cache), tmp_path / "one")
    assert (sample / "build").is_dir()  # the sample's persistent scikit-build-core build-dir
    again = pip_wheel(sample, tmp_path / "two", cache=cache)
    second = built(again, tmp_path / "two")
    assert "2 model(s), 2 conversion(s) (0 converted, 2 cached), 0 failed" in summary(again)
    assert re.findall(r"ort-reduced-build: cached\s+(\S+)", log(again)) == [
        f"{MODELS}/image_classifier.onnx",  # largest first
        f"{MODELS}/flower_species.onnx",
    ]
    assert first.read_bytes() == second.read_bytes()
    moved = Path(shutil.copytree(sample, tmp_path / "elsewhere", ignore=shutil.ignore_patterns("build")))
    third = built(pip_wheel(moved, tmp_path / "three", cache=cache), tmp_path / "three")
    assert third.read_bytes() == first.read_bytes()
    stamp = datetime.fromtimestamp(EPOCH, timezone.utc).timetuple()[:6]
    assert {info.date_time for info in zipfile.ZipFile(first).infolist()} == {stamp}


def test_c_and_environment_settings_override_pyproject(sample: Path, tmp_path: Path) -> None:
    result = pip_wheel(
        sample,
        tmp_path / "dist",
        "-Cort-reduced-build.bundle=onnx",
        "-Cort-reduced-build.config=sample_app/ops/minimal.config",
        "-Cort-reduced-build.optimization-style=Fixed;Runtime",
        cache=tmp_path / "cache",
        env={"ORT_REDUCED_BUILD_BUNDLE": "both", "ORT_REDUCED_BUILD_TYPE_REDUCTION": "false"},
    )
    wheel = zipfile.ZipFile(built(result, tmp_path / "dist"))
    shipped = {n for n in wheel.namelist() if "/models/" in n or n.endswith(".config")}
    assert shipped == {
        f"sample_app/models/{name}{suffix}"
        for name in ("flower_species", "image_classifier")
        for suffix in (".onnx", ".ort", ".with_runtime_opt.ort")
    } | {"sample_app/ops/minimal.config"}
    config = wheel.read("sample_app/ops/minimal.config").decode()
    assert "style Fixed+Runtime, type reduction off" in config
    assert '{"inputs"' not in config


def test_isolated_build_gets_the_plugin_from_a_local_wheel_directory(
    sample: Path, tmp_path: Path, plugin_wheels: Path
) -> None:
    result = pip_wheel(
        sample, tmp_path / "dist", "--find-links", str(plugin_wheels), cache=tmp_path / "c", isolated=True
    )
    wheel = zipfile.ZipFile(built(result, tmp_path / "dist"))
    assert set(wheel.namelist()) == SAMPLE_WHEEL
    assert re.search(r"Successfully installed .*ort-reduced-build-" + re.escape(__version__), log(result))
    assert "2 model(s), 2 conversion(s) (2 converted" in summary(result)


@pytest.mark.parametrize("package", ["unknown-key-in-pyproject"], indirect=True)
def test_unknown_keys_fail_once_naming_each_source_with_suggestions(package: Path, tmp_path: Path) -> None:
    result = pip_wheel(
        package,
        tmp_path / "dist",
        "-Cort-reduced-build.bundel=ort",
        cache=tmp_path / "c",
        env={"ORT_REDUCED_BUILD_JOB": "2"},
    )
    assert result.returncode != 0
    output = log(result)
    for line in (
        (
            "pyproject.toml [tool.ort-reduced-build] optimisation-level: unknown setting; "
            "did you mean 'optimization-level' or 'optimization-style'?"
        ),
        "-C ort-reduced-build.bundel: unknown setting; did you mean 'ort-reduced-build.bundle'?",
        "environment ORT_REDUCED_BUILD_JOB: unknown setting; did you mean 'ORT_REDUCED_BUILD_JOBS'?",
    ):
        assert f"ort-reduced-build: error: {line}\n" in output
    assert "Traceback" not in output


def test_a_failed_model_is_printed_twice(sample: Path, tmp_path: Path) -> None:
    """Once as ``failed`` by the pipeline's progress lines, once more as ``error`` by the backend."""
    write(sample / MODELS / "unknown_op.onnx", one_node_model("NoSuchOp"))
    result = pip_wheel(sample, tmp_path / "dist", cache=tmp_path / "c")
    assert result.returncode != 0
    said = [line for line in log(result).splitlines() if "unknown_op.onnx" in line]
    assert len(said) == 1, said
    assert said[0].strip().startswith(f"ort-reduced-build: error: {MODELS}/unknown_op.onnx: ")
    assert "No Op registered for NoSuchOp" in said[0]


@pytest.mark.parametrize("package", ["model-outside-package"], indirect=True)
def test_a_model_outside_a_package_is_named(package: Path, tmp_path: Path) -> None:
    modelgen.save(modelgen.mlp(), package / "models/tabular.onnx")
    result = pip_wheel(package, tmp_path / "dist", cache=tmp_path / "c")
    assert result.returncode != 0
    assert "ort-reduced-build: error: models/tabular.onnx: not inside a Python package" in log(result)
    assert "Traceback" not in log(result)


def test_backend_has_exactly_scikit_build_cores_hooks() -> None:
    hooks = {n for n in dir(scikit_build_core.build) if n.startswith(("build_", "get_requires_", "prepare_metadata_"))}
    assert {n for n in dir(backend) if n.startswith(("build_", "get_requires_", "prepare_metadata_"))} == hooks
    assert set(backend.__all__) == set(scikit_build_core.build.__all__)


HOOKS = textwrap.dedent(
    """
    import json, sys, tarfile, zipfile
    from ort_reduced_build import backend
    ours = {"ort-reduced-build.bundle": "both", "ort-reduced-build.jobs": "1"}
    out = {
        "requires": backend.get_requires_for_build_wheel(ours),
        "sdist_requires": backend.get_requires_for_build_sdist(ours),
        "metadata": backend.prepare_metadata_for_build_wheel(sys.argv[1], ours),
        "sdist": tarfile.open(sys.argv[1] + "/" + backend.build_sdist(sys.argv[1], ours)).getnames(),
        "editable": zipfile.ZipFile(sys.argv[1] + "/" + backend.build_editable(sys.argv[1], ours)).namelist(),
    }
    print(json.dumps(out))
    """
)


def test_every_hook_strips_our_settings_and_the_sdist_ships_sources(sample: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    env = {**os.environ, "ORT_REDUCED_BUILD_CACHE_DIR": str(tmp_path / "c")}
    result = subprocess.run(
        [sys.executable, "-c", HOOKS, str(out)], cwd=sample, env=env, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr[-4000:]
    hooks = json.loads(result.stdout.splitlines()[-1])
    assert hooks["metadata"] == "sample_app-1.0.0.dist-info"
    assert {n.split("/", 1)[1] for n in hooks["sdist"]} == {
        ".gitignore",
        "CMakeLists.txt",
        "PKG-INFO",
        "README.md",
        "pyproject.toml",
        "src/sample_app/__init__.py",
        "src/sample_app/__main__.py",
        "src/sample_app/cli.py",
        f"{MODELS}/flower_species.onnx",
        f"{MODELS}/image_classifier.onnx",
        "tools/make_models.py",
    }
    assert {"sample_app/models/flower_species.ort", "sample_app/models/image_classifier.ort"} <= set(hooks["editable"])


def test_cmake_version_file_matches_the_package() -> None:
    text = (REPO / "cmake/OrtReducedBuildConfigVersion.cmake").read_text(encoding="utf-8")
    assert f'set(PACKAGE_VERSION "{__version__}")' in text
