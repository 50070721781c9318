"""The plugin's own wheel and sdist hold exactly the files listed here (as pybind11's tests do): a file added to
the package, the CMake package or the folders the sdist takes shows up here first, to be listed on purpose.

Both are built by hatchling, the build backend, from this checkout without isolation (offline); a wheel
built from the unpacked sdist must equal the checkout's, byte for byte.
"""

from __future__ import annotations

import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

from ort_reduced_build import __version__

from tests.conftest import REPO

PACKAGE = """
__init__.py
__main__.py
_backend_impl.py
_version.py
api.py
backend.py
build/__init__.py
build/deps.py
build/execute.py
build/flags.py
build/protoc.py
build/regfilter.py
build/stamp.py
cli/__init__.py
cli/build.py
cli/cache.py
cli/ci.py
cli/common.py
cli/dropin.py
cli/options.py
cli/reference.py
cli/size.py
cli/verify.py
commands.py
convert_onnx_models_to_ort.py
engine/__init__.py
engine/analyze.py
engine/cache.py
engine/cache_admin.py
engine/config.py
engine/convert.py
engine/discover.py
engine/external_data.py
engine/manifest.py
engine/onnxwire.py
engine/ortwire.py
engine/outputs.py
engine/pipeline.py
engine/replay.py
engine/request.py
engine/tasks.py
engine/workers.py
errors.py
inspect/__init__.py
inspect/check.py
inspect/diff.py
inspect/explain.py
inspect/modelcheck.py
inspect/upgrade.py
py.typed
resources/ort-reduced-build.schema.json
resources/verify_runner.c
settings/__init__.py
settings/model.py
settings/schema.py
settings/sources.py
size/__init__.py
size/graph.py
size/linkmap.py
size/report.py
size/symbols.py
size/xrefs.py
util/__init__.py
util/compiler_cache.py
util/elf.py
util/fileio.py
util/scratch.py
verify/__init__.py
verify/compare.py
verify/inputs.py
verify/runner.py
verify/target.py
verify/wire.py
"""
SDIST_OTHER = """
.gitignore
README.md
benchmarks/bench_backend.py
benchmarks/bench_convert.py
benchmarks/bench_rebuild.py
benchmarks/bench_size.py
benchmarks/no_exceptions_demo.c
docs/architecture.md
docs/benchmarks.md
docs/ci.md
docs/cli.md
docs/cmake.md
docs/cross.md
docs/engine.md
docs/package-an-app.md
docs/rebuild.svg
docs/reference/pyproject.md
docs/reliability.md
docs/runtime-size-parts.svg
docs/runtime-size.svg
docs/verify.md
pyproject.toml
sample_project/.gitignore
sample_project/CMakeLists.txt
sample_project/README.md
sample_project/pyproject.toml
sample_project/src/sample_app/__init__.py
sample_project/src/sample_app/__main__.py
sample_project/src/sample_app/cli.py
sample_project/src/sample_app/models/flower_species.onnx
sample_project/src/sample_app/models/image_classifier.onnx
sample_project/tools/make_models.py
tests/__init__.py
tests/_hardening.py
tests/aarch64-linux-gnu.toolchain.cmake
tests/conftest.py
tests/fuzz/fuzz_config.py
tests/fuzz/fuzz_ort_reader.py
tests/modelgen.py
tests/modelgen_large.py
tests/native/crashing_ops.c
tests/native/ort_standin_kernels.cc
tests/packages/app/CMakeLists.txt
tests/packages/app/run_model.c
tests/packages/app/verify-inputs.toml
tests/packages/config-bad-arguments/CMakeLists.txt
tests/packages/config-find-package/CMakeLists.txt
tests/packages/config-include/CMakeLists.txt
tests/packages/config-include/extra_ops.config
tests/packages/model-outside-package/CMakeLists.txt
tests/packages/model-outside-package/models/README.md
tests/packages/model-outside-package/pyproject.toml
tests/packages/runtime-command-line/CMakeLists.txt
tests/packages/runtime-command-line/ml_and_contrib_ops.config
tests/packages/runtime-command-line/ops.config
tests/packages/runtime-not-an-ort-tree/CMakeLists.txt
tests/packages/runtime-not-an-ort-tree/not-an-ort-tree/README.md
tests/packages/runtime-not-an-ort-tree/ops.config
tests/packages/unknown-key-in-pyproject/CMakeLists.txt
tests/packages/unknown-key-in-pyproject/pyproject.toml
tests/packages/unknown-key-in-pyproject/src/app/__init__.py
tests/test_backend.py
tests/test_build.py
tests/test_cache_verb.py
tests/test_ci_verbs.py
tests/test_cli_reference.py
tests/test_cli_usage.py
tests/test_cmake_package.py
tests/test_compiler_cache.py
tests/test_config.py
tests/test_convert.py
tests/test_coverage.py
tests/test_cross.py
tests/test_dist_contents.py
tests/test_e2e_ort_build.py
tests/test_equivalence.py
tests/test_fileio.py
tests/test_fuzz.py
tests/test_hardening_cache.py
tests/test_hardening_discovery.py
tests/test_hardening_models.py
tests/test_hardening_outputs.py
tests/test_hardening_processes.py
tests/test_hardening_trust.py
tests/test_onnxwire.py
tests/test_regfilter.py
tests/test_settings.py
tests/test_settings_schema.py
tests/test_size.py
tests/test_upgrade.py
tests/test_verify.py
tests/test_zygote.py
"""

CMAKE = ("OrtReducedBuild.cmake", "OrtReducedBuildConfig.cmake", "OrtReducedBuildConfigVersion.cmake")
DIST_INFO = f"ort_reduced_build-{__version__}.dist-info"
WHEEL = {
    *(f"ort_reduced_build/{name}" for name in PACKAGE.split()),
    *(f"ort_reduced_build/cmake/{name}" for name in CMAKE),  # force-included from cmake/
    *(f"{DIST_INFO}/{name}" for name in ("METADATA", "RECORD", "WHEEL", "entry_points.txt")),
}
SDIST = {
    *(f"plugin/ort_reduced_build/{name}" for name in PACKAGE.split()),  # not the checkout's cmake symlink
    *(f"cmake/{name}" for name in CMAKE),
    *SDIST_OTHER.split(),
    "PKG-INFO",
}


def _build(kind: str, source: Path, out: Path) -> Path:
    """``build_wheel``/``build_sdist`` of hatchling run in ``source``, as a frontend without isolation would."""
    code = f"import sys; from hatchling.build import build_{kind}; print(build_{kind}(sys.argv[1]))"
    result = subprocess.run(
        [sys.executable, "-c", code, str(out)], cwd=source, capture_output=True, text=True, check=False, timeout=300
    )
    assert result.returncode == 0, result.stderr
    return out / result.stdout.strip()


def _wheel_files(wheel: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(wheel) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def test_the_wheel_holds_the_package_its_cmake_files_and_its_metadata(tmp_path: Path) -> None:
    wheel = _build("wheel", REPO, tmp_path)
    assert wheel.name == f"ort_reduced_build-{__version__}-py3-none-any.whl"
    assert set(_wheel_files(wheel)) == WHEEL


def test_the_sdist_holds_the_listed_files_and_builds_the_same_wheel(tmp_path: Path) -> None:
    sdist = _build("sdist", REPO, tmp_path / "sdist")
    root = f"ort_reduced_build-{__version__}"
    with tarfile.open(sdist) as archive:
        members = archive.getmembers()
        assert all(m.isfile() for m in members), [m.name for m in members if not m.isfile()]
        assert {m.name.removeprefix(f"{root}/") for m in members} == SDIST
        archive.extractall(tmp_path / "unpacked", filter="data")
    from_sdist = _build("wheel", tmp_path / "unpacked" / root, tmp_path / "from-sdist")
    assert _wheel_files(from_sdist) == _wheel_files(_build("wheel", REPO, tmp_path / "from-checkout"))
