"""Cross builds with a generic CMake toolchain file: the build.py command, the host protoc choice (found,
given, mismatched, the deps dir's), and the toolchain plumbing verify uses, proven with a real aarch64 cross
compiler and qemu-user where they are installed (.ci/run installs them).
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest
from ort_reduced_build import verify
from ort_reduced_build.build import toolchain_emulator
from ort_reduced_build.cli import main
from ort_reduced_build.util.elf import machine

TOOLCHAIN = (Path(__file__).parent / "aarch64-linux-gnu.toolchain.cmake").read_text()


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A stand-in ORT tree (its build.py builds nothing) pinning protobuf v21.12, a config and a toolchain."""
    ort = tmp_path / "ort"
    (ort / "tools" / "ci_build").mkdir(parents=True)
    (ort / "tools" / "ci_build" / "build.py").write_text('raise SystemExit("stub ORT tree: builds nothing")\n')
    (ort / "cmake").mkdir()
    (ort / "cmake" / "deps.txt").write_text(
        "protobuf;https://github.com/protocolbuffers/protobuf/archive/refs/tags/v21.12.zip;0\n"
        "protoc_linux_x64;https://x/protoc-21.12-linux-x86_64.zip;0\n"
    )
    (ort / "VERSION_NUMBER").write_text("1.28.0\n")
    (tmp_path / "ops.config").write_text("ai.onnx;13;Relu\n")
    (tmp_path / "aarch64.cmake").write_text(TOOLCHAIN)
    return tmp_path


def protoc(directory: Path, version: str) -> Path:
    """A stand-in for a protoc binary of ``version`` (only ``--version`` is asked of it here)."""
    path = directory / f"protoc-{version}"
    path.write_text(f"#!/bin/sh\necho 'libprotoc {version}'\n")
    path.chmod(0o755)
    return path


def dry_run(tree: Path, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, list[str], str]:
    base = ["build", "--ort-source", str(tree / "ort"), "--config", str(tree / "ops.config")]
    code = main([*base, "--build-dir", str(tree / "b"), "--toolchain-file", str(tree / "aarch64.cmake"), *args])
    out, err = capsys.readouterr()
    return code, shlex.split(out) if code == 0 else [], err


def test_a_toolchain_file_and_a_matching_protoc_reach_orts_cmake(
    tree: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    given = protoc(tree, "3.21.12")
    code, argv, err = dry_run(tree, capsys, "--protoc", str(given), "--dry-run")
    assert code == 0, err
    defines = argv[argv.index("--cmake_extra_defines") + 1 :]
    assert f"CMAKE_TOOLCHAIN_FILE={tree / 'aarch64.cmake'}" in defines
    assert f"ONNX_CUSTOM_PROTOC_EXECUTABLE={given}" in defines


def test_a_protoc_of_another_version_is_refused_naming_both(tree: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = dry_run(tree, capsys, "--protoc", str(protoc(tree, "3.12.4")), "--dry-run")
    assert code == 1
    assert err.strip() == (
        f"error: {tree / 'protoc-3.12.4'} is protoc 3.12.4, but ONNX Runtime's protobuf is 3.21.12: "
        "give a protoc 3.21.12 with --protoc (Debian 12: apt install protobuf-compiler), or a deps dir holding "
        "protobuf's sources"
    )


def test_protoc_on_path_is_found_and_checked(
    tree: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    bin_dir = tree / "bin"
    bin_dir.mkdir()
    protoc(bin_dir, "3.21.12").rename(bin_dir / "protoc")
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    code, argv, err = dry_run(tree, capsys, "--dry-run")
    assert code == 0, err
    assert f"ONNX_CUSTOM_PROTOC_EXECUTABLE={bin_dir / 'protoc'}" in argv


def test_the_deps_dirs_prebuilt_protoc_is_left_to_ort(
    tree: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import platform

    if (platform.system(), platform.machine()) != ("Linux", "x86_64"):
        pytest.skip("the stand-in deps dir holds the x86-64 Linux protoc")
    (tree / "deps" / "protoc_linux_x64").mkdir(parents=True)
    monkeypatch.setenv("PATH", "/nonexistent")
    code, argv, err = dry_run(tree, capsys, "--deps-dir", str(tree / "deps"), "--dry-run")
    assert code == 0, err
    assert not any(a.startswith("ONNX_CUSTOM_PROTOC_EXECUTABLE=") for a in argv)
    assert f"FETCHCONTENT_SOURCE_DIR_PROTOC_BINARY={tree / 'deps' / 'protoc_linux_x64'}" in argv


def protobuf_sources(deps: Path, version: str) -> Path:
    """A stand-in for protobuf's source tree (the real one cannot be downloaded here): a CMake project whose
    ``protoc`` target is a C program answering ``--version`` with ``version``."""
    src = deps / "protobuf"
    src.mkdir(parents=True)
    (src / "protoc.c").write_text(f'#include <stdio.h>\nint main(void){{puts("libprotoc {version}");return 0;}}\n')
    (src / "CMakeLists.txt").write_text(
        "cmake_minimum_required(VERSION 3.20)\nproject(protobuf C)\nadd_executable(protoc protoc.c)\n"
    )
    return src


def test_without_a_matching_protoc_one_is_built_from_the_deps_dirs_protobuf_sources(
    tree: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from ort_reduced_build.build import protoc as _protoc

    bin_dir = tree / "bin"
    bin_dir.mkdir()
    protoc(bin_dir, "3.12.4").rename(bin_dir / "protoc")  # PATH's is another version
    monkeypatch.setenv("PATH", f"{bin_dir}:{Path(shutil.which('cmake') or 'cmake').parent}:/usr/bin:/bin")
    protobuf_sources(tree / "deps", "3.21.12")
    code, argv, err = dry_run(tree, capsys, "--deps-dir", str(tree / "deps"), "--dry-run")
    assert code == 0, err
    planned = (tree / "b" / "host-protoc" / "protoc").resolve()
    assert f"ONNX_CUSTOM_PROTOC_EXECUTABLE={planned}" in argv
    assert not planned.exists()  # a dry run builds nothing

    _protoc.ensure(planned, tree / "ort", tree / "deps")
    out = subprocess.run([str(planned), "--version"], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "libprotoc 3.21.12"
    before = planned.stat().st_mtime_ns
    _protoc.ensure(planned, tree / "ort", tree / "deps")  # built once per build directory
    assert planned.stat().st_mtime_ns == before


def test_a_protoc_built_from_sources_of_another_version_is_refused(tree: Path) -> None:
    from ort_reduced_build.build import protoc as _protoc
    from ort_reduced_build.errors import BuildError

    protobuf_sources(tree / "deps", "3.20.0")
    planned = tree / "b" / "host-protoc" / "protoc"
    with pytest.raises(BuildError, match=r"the protoc built from .*protobuf is 3\.20\.0, not 3\.21\.12"):
        _protoc.ensure(planned, tree / "ort", tree / "deps")


@pytest.mark.skipif(
    not os.environ.get("ORT_DEPS_DIR") or not os.environ.get("ORT_SOURCE_DIR"),
    reason="ORT_SOURCE_DIR and ORT_DEPS_DIR are not set: no real protobuf sources to build protoc from",
)
@pytest.mark.slow
def test_the_real_protobuf_sources_give_the_pinned_protoc(tmp_path: Path) -> None:
    from ort_reduced_build.build import deps as _ortdeps
    from ort_reduced_build.build import protoc as _protoc

    ort, deps = Path(os.environ["ORT_SOURCE_DIR"]), Path(os.environ["ORT_DEPS_DIR"])
    planned = tmp_path / "host-protoc" / "protoc"
    launchers = (("C", "ccache"), ("CXX", "ccache")) if shutil.which("ccache") else ()
    _protoc.ensure(planned, ort, deps, launchers=launchers)
    out = subprocess.run([str(planned), "--version"], capture_output=True, text=True, check=True).stdout
    assert out.strip() == f"libprotoc {_ortdeps.protobuf_pin(ort)}"


CROSS_TOOLS = ("aarch64-linux-gnu-gcc", "qemu-aarch64-static", "cmake")


@pytest.mark.skipif(
    any(shutil.which(t) is None for t in CROSS_TOOLS),
    reason=f"needs {', '.join(CROSS_TOOLS)} (.ci/run installs the cross compiler and qemu-user)",
)
def test_the_toolchain_files_compiler_and_emulator_build_and_run_a_target_program(tree: Path) -> None:
    """The plumbing verify uses on a cross build directory: CMake configured with the toolchain file, the
    compiler and emulator read back from its cache, a C program built with them and run under qemu."""
    project = tree / "hello"
    project.mkdir()
    (project / "CMakeLists.txt").write_text("cmake_minimum_required(VERSION 3.20)\nproject(hello C)\n")
    build_dir = tree / "hello-build"
    configure = ["cmake", "-S", str(project), "-B", str(build_dir / "MinSizeRel")]
    toolchain = f"-DCMAKE_TOOLCHAIN_FILE={tree / 'aarch64.cmake'}"
    result = subprocess.run([*configure, toolchain], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    target = verify.target_from_cmake_cache(build_dir)
    assert target.cross
    assert Path(target.compiler[0]).name == "aarch64-linux-gnu-gcc"
    emulator = toolchain_emulator(tree / "aarch64.cmake")  # what `build` records for verify
    assert emulator == ("qemu-aarch64-static", "-L", "/usr/aarch64-linux-gnu")
    runner = verify.compile_runner(target, tree / "runner")
    assert machine(runner) == "aarch64"
    ran = subprocess.run([*emulator, str(runner)], capture_output=True, text=True, check=False)
    assert ran.returncode == 5  # its usage error: it ran, on an emulated aarch64
    assert "usage: verify_runner LIBRARY MODEL INPUTS OUTPUTS" in ran.stderr
