"""The build stage: build.py flags chosen from the config, cross-compiling flags, dependency overrides and
patches, the content-hash rebuild rule and the size report. No ONNX Runtime is built here: the tree
in ``stub_ort`` has a build.py that refuses to run, and ``run`` gets a stand-in for the subprocess.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import pytest
from ort_reduced_build import build
from ort_reduced_build.build import AndroidTarget, AppleTarget, BuildRequest, Host, execute
from ort_reduced_build.build.deps import PatchStep, apply_patch, apply_patches, fetchcontent_defines, patch_steps
from ort_reduced_build.cli import main
from ort_reduced_build.engine.config import parse_config
from ort_reduced_build.errors import BuildError

from tests.conftest import run_cli

LINUX = Host(system="Linux", root=False, ninja=False)
TYPED = parse_config('ai.onnx;13;Add{"inputs": {"0": ["float"]}},Relu\n')


@pytest.fixture
def stub_ort(tmp_path: Path) -> Path:
    """A directory shaped like an ORT source tree whose build.py cannot build anything."""
    ort = tmp_path / "ort"
    (ort / "tools" / "ci_build").mkdir(parents=True)
    (ort / "tools" / "ci_build" / "build.py").write_text('raise SystemExit("stub ORT tree: builds nothing")\n')
    (ort / "cmake" / "patches" / "date").mkdir(parents=True)
    (ort / "cmake" / "CMakeLists.txt").write_text("cmake_minimum_required(VERSION 3.5)\n")
    (ort / "cmake" / "deps.txt").write_text(
        "#Name;Url;SHA1\nabseil_cpp;https://x/a.zip;0\ndate;https://x/d.zip;0\neigen;https://x/e.zip;0\n"
        "protoc_linux_x64;https://x/p.zip;0\nfp16;https://x/f.zip;0\n"
    )
    (ort / "VERSION_NUMBER").write_text("1.28.0\n")
    return ort


def request(stub_ort: Path, **kw: object) -> BuildRequest:
    config = stub_ort.parent / "ops.config"
    if not config.exists():
        config.write_text('ai.onnx;13;Add{"inputs": {"0": ["float"]}},Relu\n')
    return BuildRequest(stub_ort, config, stub_ort.parent / "b", python="py", **kw)  # type: ignore[arg-type]


def test_compose_smallest_flags_for_a_typed_onnx_only_config(stub_ort: Path) -> None:
    req = request(stub_ort, jobs=2)
    assert build.compose(req, TYPED, LINUX) == [
        "py", f"{stub_ort}/tools/ci_build/build.py",
        "--build_dir", str(req.build_dir), "--config", "MinSizeRel", "--update", "--build",
        "--minimal_build", "--include_ops_by_config", str(req.config),
        "--enable_reduced_operator_type_support", "--disable_ml_ops", "--disable_contrib_ops",
        "--enable_lto", "--build_shared_lib", "--skip_tests", "--skip_submodule_sync", "--compile_no_warning_as_error",
        "--parallel", "2",
        "--cmake_extra_defines", "onnxruntime_BUILD_UNIT_TESTS=OFF",
        f"CMAKE_SHARED_LINKER_FLAGS=-Wl,-Map={req.build_dir}/MinSizeRel/libonnxruntime.so.map",
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("text", "kept", "dropped"),
    [
        ("ai.onnx.ml;1;Scaler\n", ["--disable_contrib_ops"], ["--disable_ml_ops", "--enable_reduced"]),
        ("com.microsoft;1;FusedConv\n", ["--disable_ml_ops"], ["--disable_contrib_ops"]),
        ("com.microsoft.nchwc;1;Conv\n", [], ["--disable_contrib_ops"]),
        ("!globally_allowed_types;float\nai.onnx;13;Add\n", ["--enable_reduced_operator_type_support"], []),
        ("!no_ops_specified_means_all_ops_are_required\n", [], ["--disable_ml_ops", "--disable_contrib_ops"]),
    ],
)
def test_compose_keeps_what_the_config_needs(stub_ort: Path, text: str, kept: list[str], dropped: list[str]) -> None:
    argv = build.compose(request(stub_ort), parse_config(text), LINUX)
    for flag in kept:
        assert flag in argv
    for flag in dropped:
        assert not any(a.startswith(flag) for a in argv)


def test_compose_options_extra_args_and_host(stub_ort: Path) -> None:
    req = request(
        stub_ort,
        minimal_build="extended",
        type_reduction=False,
        compiler_launchers=(("C", "ccache"), ("CXX", "ccache")),
        cmake=Path("/opt/cmake/bin/cmake"),
        extra_args=("--use_xnnpack", "--cmake_extra_defines", "A=1", "B=2", "--disable_rtti"),
    )
    argv = build.compose(req, TYPED, Host(system="Linux", root=True, ninja=True))
    assert argv[argv.index("--minimal_build") + 1] == "extended"
    assert "--enable_reduced_operator_type_support" not in argv
    assert "--disable_contrib_ops" not in argv  # XNNPACK needs ORT's internal NHWC contrib ops
    assert argv[argv.index("--cmake_path") + 1] == "/opt/cmake/bin/cmake"
    assert {"--cmake_generator", "Ninja", "--allow_running_as_root", "--use_xnnpack", "--disable_rtti"} <= set(argv)
    assert argv.count("--cmake_extra_defines") == 1  # old build.py versions keep only the last one
    assert argv[argv.index("--cmake_extra_defines") :] == [
        "--cmake_extra_defines", "onnxruntime_BUILD_UNIT_TESTS=OFF",
        "CMAKE_C_COMPILER_LAUNCHER=ccache", "CMAKE_CXX_COMPILER_LAUNCHER=ccache",
        f"CMAKE_SHARED_LINKER_FLAGS=-Wl,-Map={req.build_dir}/MinSizeRel/libonnxruntime.so.map", "A=1", "B=2",
    ]  # fmt: skip


def test_the_linker_writes_a_map_beside_an_elf_library(stub_ort: Path) -> None:
    """ORT strips minimal builds; the link map is what names the library's bytes for ``size``."""
    theirs = request(stub_ort, extra_args=("--cmake_extra_defines", "CMAKE_SHARED_LINKER_FLAGS=-Wl,-z,now"))
    argv = build.compose(theirs, TYPED, LINUX)
    flags = [a for a in argv if a.startswith("CMAKE_SHARED_LINKER_FLAGS=")]
    link_map = theirs.build_dir / "MinSizeRel" / "libonnxruntime.so.map"
    assert flags == [f"CMAKE_SHARED_LINKER_FLAGS=-Wl,-z,now -Wl,-Map={link_map}"]
    ios = build.compose(request(stub_ort, apple=AppleTarget("15.1")), TYPED, Host("Darwin", False, True))
    assert not any("-Map=" in a for a in ios)  # Apple's linker writes no GNU map


def test_compose_android_and_ios(stub_ort: Path, tmp_path: Path) -> None:
    android = AndroidTarget(tmp_path / "ndk", tmp_path / "sdk", "armeabi-v7a", 24, cpp_shared=True)
    argv = build.compose(request(stub_ort, android=android), TYPED, LINUX)
    start = argv.index("--android")
    assert argv[start : start + 10] == [
        "--android", "--android_ndk_path", str(tmp_path / "ndk"), "--android_sdk_path", str(tmp_path / "sdk"),
        "--android_abi", "armeabi-v7a", "--android_api", "24", "--android_cpp_shared",
    ]  # fmt: skip
    ios = AppleTarget("15.1", "iphonesimulator", "x86_64")
    argv = build.compose(request(stub_ort, apple=ios), TYPED, Host(system="Darwin", root=False, ninja=True))
    start = argv.index("--ios")
    assert argv[start : start + 8] == [
        "--ios", "--use_xcode", "--apple_sysroot", "iphonesimulator", "--osx_arch", "x86_64",
        "--apple_deploy_target", "15.1",
    ]  # fmt: skip
    assert "--cmake_generator" not in argv  # iOS: Xcode, not Ninja


def test_library_path_per_target(stub_ort: Path, tmp_path: Path) -> None:
    out = stub_ort.parent / "b" / "MinSizeRel"
    assert build.library_path(request(stub_ort), LINUX) == out / "libonnxruntime.so"
    assert build.library_path(request(stub_ort), Host("Darwin", False, True)) == out / "libonnxruntime.dylib"
    ios = request(stub_ort, apple=AppleTarget("15.1"))
    assert build.library_path(ios, LINUX) == out / "MinSizeRel-iphoneos" / "libonnxruntime.dylib"
    android = request(stub_ort, android=AndroidTarget(tmp_path, tmp_path))
    assert build.library_path(android, Host("Darwin", False, True)) == out / "libonnxruntime.so"


def test_deps_dir_maps_deps_txt_names_to_fetchcontent(
    stub_ort: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr("platform.system", lambda: "Linux")
    monkeypatch.setattr("platform.machine", lambda: "x86_64")
    deps = tmp_path / "deps"
    for name in ("abseil_cpp", "eigen", "fp16", "protoc_linux_x64", "not_a_dep"):
        (deps / name).mkdir(parents=True)
    assert fetchcontent_defines(stub_ort, deps) == [
        "FETCHCONTENT_FULLY_DISCONNECTED=ON",
        "FETCHCONTENT_TRY_FIND_PACKAGE_MODE=NEVER",
        f"FETCHCONTENT_SOURCE_DIR_ABSEIL_CPP={deps.as_posix()}/abseil_cpp",
        f"FETCHCONTENT_SOURCE_DIR_EIGEN3={deps.as_posix()}/eigen",
        f"FETCHCONTENT_SOURCE_DIR_FP16={deps.as_posix()}/fp16",
        f"FETCHCONTENT_SOURCE_DIR_PROTOC_BINARY={deps.as_posix()}/protoc_linux_x64",
    ]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings[0] == f"{deps / 'not_a_dep'}: not a dependency in ORT's cmake/deps.txt; ignored"
    assert warnings[1].startswith(f"{deps} lacks date, flatbuffers, ")
    assert len(warnings) == 2


def test_the_cli_prints_a_logged_warning_with_its_kind(stub_ort: Path, tmp_path: Path) -> None:
    """Code logs the message alone at WARNING; the command line prints it as every warning: ``warning: ...``."""
    (tmp_path / "deps" / "not_a_dep").mkdir(parents=True)
    config = tmp_path / "ops.config"
    config.write_text("ai.onnx;13;Relu\n")
    argv: list[str | Path] = [
        "build",
        "--ort-source",
        stub_ort,
        "--config",
        config,
        "--deps-dir",
        tmp_path / "deps",
        "--dry-run",
    ]
    result = run_cli(*argv, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = result.stderr.splitlines()
    assert lines[0] == f"warning: {tmp_path / 'deps' / 'not_a_dep'}: not a dependency in ORT's cmake/deps.txt; ignored"
    assert lines[1].startswith(f"warning: {tmp_path / 'deps'} lacks abseil_cpp, date, eigen, ")
    assert len(lines) == 2


def test_an_optional_dependency_the_deps_dir_lacks_is_left_out_not_downloaded(stub_ort: Path, tmp_path: Path) -> None:
    """Seen on an aarch64 cross build: ORT enables KleidiAI for arm64 and, fully disconnected, compiles MLAS
    against an empty kleidiai tree ("kai/ukernels/...: No such file"). Without it in the deps dir, the build
    leaves it out with build.py's own flag; with it, or when build.py has no such flag, nothing changes."""
    with (stub_ort / "cmake" / "deps.txt").open("a") as f:
        f.write("kleidiai;https://x/k.tar.gz;0\n")
    deps = tmp_path / "deps"
    deps.mkdir()
    req = request(stub_ort, deps_dir=deps)
    assert "--no_kleidiai" not in build.compose(req, TYPED, LINUX)  # this build.py has no such flag
    args = stub_ort / "tools" / "ci_build" / "build_args.py"
    args.write_text('parser.add_argument("--no_kleidiai", action="store_true")\n')
    assert "--no_kleidiai" in build.compose(req, TYPED, LINUX)
    (deps / "kleidiai").mkdir()
    argv = build.compose(req, TYPED, LINUX)
    assert "--no_kleidiai" not in argv
    assert f"FETCHCONTENT_SOURCE_DIR_KLEIDIAI={deps.as_posix()}/kleidiai" in argv


def test_patches_apply_once(stub_ort: Path, tmp_path: Path) -> None:
    date = tmp_path / "deps" / "date"
    (date / "include").mkdir(parents=True)
    (date / "include" / "date.h").write_text("int a;\nint b;\n")
    (stub_ort / "cmake" / "patches" / "date" / "date.patch").write_text(
        "--- a/include/date.h\n+++ b/include/date.h\n@@ -1,2 +1,2 @@\n int a;\n-int b;\n+int patched;\n"
    )
    steps = patch_steps(stub_ort, tmp_path / "deps", "Linux")
    assert steps == [PatchStep(date, stub_ort / "cmake" / "patches" / "date" / "date.patch")]
    assert apply_patch(steps[0]) is True
    assert apply_patch(steps[0]) is False  # already in: left alone
    assert (date / "include" / "date.h").read_text() == "int a;\nint patched;\n"
    (date / "include" / "date.h").write_text("something else\n")
    with pytest.raises(BuildError, match=r"date.patch does not apply to .*date"):
        apply_patch(steps[0])


def test_check_source_and_version_warning(stub_ort: Path, tmp_path: Path) -> None:
    assert build.check_source(stub_ort) == "1.28.0"
    with pytest.raises(BuildError, match="not an ONNX Runtime source tree"):
        build.check_source(tmp_path / "empty")
    from importlib.metadata import version

    installed = version("onnxruntime")
    assert build.version_warning(installed) is None
    warning = build.version_warning("0.1.0")
    assert warning is not None
    assert f"onnxruntime {installed}" in warning
    assert "onnxruntime==0.1.*" in warning


def test_run_rebuilds_only_when_config_content_or_command_changes(
    stub_ort: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runs: list[list[str]] = []
    sizes = iter([3000, 2000, 2500])

    def fake_build_py(argv: list[str], _on_output: object, _env: object) -> None:
        if "--build" not in argv:
            return  # the --update run
        runs.append(argv)
        lib = Path(argv[argv.index("--build_dir") + 1]) / "MinSizeRel" / "libonnxruntime.so"
        lib.parent.mkdir(parents=True, exist_ok=True)
        lib.write_bytes(b"\0" * next(sizes))

    monkeypatch.setattr(execute, "_execute", fake_build_py)
    monkeypatch.setattr(execute, "default_cmake", lambda: None)
    req = request(stub_ort)
    first = build.run(req, host=LINUX)
    assert (len(runs), first.up_to_date, first.size, first.previous_size) == (1, False, 3000, None)

    # Same content, new comments and a new mtime: no build.
    req.config.write_text('# models: a, b, c\nai.onnx;13;Relu,Add{"inputs": {"0": ["float"]}}\n')
    again = build.run(req, host=LINUX)
    assert (len(runs), again.up_to_date, again.size) == (1, True, 3000)

    req.config.write_text("ai.onnx;13;Relu\n")  # content changed: rebuild
    second = build.run(req, host=LINUX)
    assert (len(runs), second.up_to_date, second.size, second.previous_size) == (2, False, 2000, 3000)

    third = build.run(request(stub_ort, minimal_build="extended"), host=LINUX)  # command changed
    assert (len(runs), third.previous_size) == (3, 2000)
    stamp = json.loads((req.build_dir / "ort-reduced-build.json").read_text())
    assert stamp["library_bytes"] == 2500


def test_an_lto_build_that_does_not_run_its_models_is_built_again_without_lto(
    stub_ort: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """GCC's LTO link can make a runtime whose sessions fail (issue 18): the check after the build sees it,
    the config is built again without LTO, and the next build of the same config goes straight there."""
    built: list[bool] = []

    def fake_build_py(argv: list[str], _on_output: object, _env: object) -> None:  # a stand-in for ORT's build.py
        if "--build" not in argv:
            return  # the --update run
        built.append("--enable_lto" in argv)
        lib = Path(argv[argv.index("--build_dir") + 1]) / "MinSizeRel" / "libonnxruntime.so"
        lib.parent.mkdir(parents=True, exist_ok=True)
        lib.write_bytes(b"lto" if built[-1] else b"no lto")

    def check(library: Path) -> list[str]:  # a stand-in for running the models on the library
        return ["m.ort: session-failed: Failed to find op_id: :MaxPool:12"] if library.read_bytes() == b"lto" else []

    monkeypatch.setattr(execute, "_execute", fake_build_py)
    monkeypatch.setattr(execute, "default_cmake", lambda: None)
    result = build.run(request(stub_ort), host=LINUX, check=check)
    assert built == [True, False]
    assert "--enable_lto" not in result.command
    assert result.problems == ()
    assert result.lto_dropped == ("m.ort: session-failed: Failed to find op_id: :MaxPool:12",)
    said = [(r.levelno, r.getMessage()) for r in caplog.records if "LTO" in r.getMessage()]
    assert said == [
        (logging.WARNING, "the LTO build of this config does not run its models; building it again without LTO")
    ]

    again = build.run(request(stub_ort), host=LINUX, check=check)  # remembered: no LTO build this time
    assert (built, again.up_to_date, again.lto_dropped) == ([True, False], True, result.lto_dropped)

    (stub_ort.parent / "ops.config").write_text("ai.onnx;13;Relu\n")  # another config: LTO is tried again
    other = build.run(request(stub_ort), host=LINUX, check=lambda _: [])
    assert (built[2:], other.lto_dropped) == ([True], ())

    forced = request(stub_ort, extra_args=("--enable_lto",))  # asked for in build.py's arguments: kept
    (stub_ort.parent / "ops.config").write_text('ai.onnx;13;Add{"inputs": {"0": ["float"]}},Relu\n')
    kept = build.run(forced, host=LINUX, check=check)
    assert built[3:] == [True]
    assert kept.problems == ("m.ort: session-failed: Failed to find op_id: :MaxPool:12",)
    assert (kept.lto_dropped, "--enable_lto" in kept.command) == ((), True)


def test_run_reports_build_py_failure(stub_ort: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(execute, "default_cmake", lambda: None)
    req = request(stub_ort)
    req = BuildRequest(req.ort_source, req.config, req.build_dir, python=sys.executable)
    lines: list[str] = []
    with pytest.raises(BuildError) as info:
        build.run(req, lines.append, host=LINUX)
    message = str(info.value)
    assert "exit code 1" in message
    assert "command: " in message
    assert "stub ORT tree: builds nothing" in message
    assert lines == ["stub ORT tree: builds nothing"]


def test_run_refuses_old_cmake(stub_ort: Path, tmp_path: Path) -> None:
    (stub_ort / "cmake" / "CMakeLists.txt").write_text("cmake_minimum_required(VERSION 99.1)\n")
    fake = tmp_path / "cmake"
    fake.write_text("#!/bin/sh\necho 'cmake version 3.25.1'\n")
    fake.chmod(0o755)
    with pytest.raises(BuildError, match=r"CMake 3.25.1; ONNX Runtime needs 99.1 or newer"):
        build.run(request(stub_ort, cmake=fake), host=LINUX)
    with pytest.raises(BuildError, match=r"no such CMake \(--cmake / ORT_REDUCED_BUILD_CMAKE\)"):
        build.run(request(stub_ort, cmake=tmp_path / "missing"), host=LINUX)


def test_cli_build_dry_run_describe_and_errors(
    stub_ort: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "ops.config"
    config.write_text("ai.onnx.ml;1;Scaler\n")
    base = ["build", "--ort-source", str(stub_ort), "--config", str(config), "--build-dir", str(tmp_path / "b")]
    assert main([*base, "--dry-run", "--compiler-launcher", "sccache", "--", "--use_nnapi"]) == 0
    argv = capsys.readouterr().out.split()
    assert argv[1] == f"{stub_ort}/tools/ci_build/build.py"
    assert "--disable_ml_ops" not in argv
    assert argv[-4:-1] == ["onnxruntime_BUILD_UNIT_TESTS=OFF", "CMAKE_C_COMPILER_LAUNCHER=sccache",
                           "CMAKE_CXX_COMPILER_LAUNCHER=sccache"]  # fmt: skip
    assert argv[-1] == f"CMAKE_SHARED_LINKER_FLAGS=-Wl,-Map={tmp_path.resolve()}/b/MinSizeRel/libonnxruntime.so.map"
    assert "--use_nnapi" in argv

    assert main([*base, "--describe", "--android", "--android-ndk", str(tmp_path), "--android-sdk", str(tmp_path)]) == 0
    described = json.loads(capsys.readouterr().out)
    assert described["library"] == f"{(tmp_path / 'b').as_posix()}/MinSizeRel/libonnxruntime.so"
    assert described["include_dirs"] == [f"{stub_ort.as_posix()}/include/onnxruntime/core/session"]

    assert main([*base, "--dry-run", "--", "--minimal_build"]) == 1
    assert "--minimal_build are set by ort-reduced-build" in capsys.readouterr().err
    assert main([*base, "--dry-run", "--ios"]) == 1
    assert "--ios needs --apple-deploy-target" in capsys.readouterr().err
    assert main([*base, "--dry-run", "--android", "--android-ndk", str(tmp_path), "--android-sdk", ""]) == 1
    assert "--android needs --android-sdk" in capsys.readouterr().err
    assert main(["build", "--ort-source", str(tmp_path), "--config", str(config), "--dry-run"]) == 1
    assert "not an ONNX Runtime source tree" in capsys.readouterr().err


def test_size_report(tmp_path: Path) -> None:
    from ort_reduced_build.cli.build import _size_report

    lib = tmp_path / "libonnxruntime.so"
    result = build.BuildResult(("py",), lib, 1_500_000, 2_000_000, up_to_date=False)
    baseline = tmp_path / "full.so"
    baseline.write_bytes(b"\0" * 3_000_000)
    assert _size_report(result, (baseline, build.library_size(baseline)), None) == [
        f"{lib}: 1,500,000 bytes (built)",
        "  -500,000 bytes (-25.0%) against the previous build (2,000,000 bytes)",
        f"  -1,500,000 bytes (-50.0%) against {baseline} (3,000,000 bytes)",
    ]
    (tmp_path / "ort-reduced-build.json").write_text('{"library_bytes": 1234}')
    assert build.library_size(tmp_path) == 1234  # a build directory: its stamp
    (tmp_path / "b").mkdir()
    with pytest.raises(BuildError, match="no ort-reduced-build build here"):
        build.library_size(tmp_path / "b")
    with pytest.raises(BuildError, match="cannot read library size"):
        build.library_size(tmp_path / "missing.so")


def test_a_chain_of_patches_already_applied_is_recognised(stub_ort: Path, tmp_path: Path) -> None:
    """eigen's two s390x patches edit the same lines: once both are in, the first no longer reverses."""
    eigen = tmp_path / "deps" / "eigen"
    eigen.mkdir(parents=True)
    (eigen / "m.h").write_text("x = 1;\n")
    patches = stub_ort / "cmake" / "patches" / "eigen"
    patches.mkdir(parents=True, exist_ok=True)
    (patches / "s390x-build.patch").write_text("--- a/m.h\n+++ b/m.h\n@@ -1 +1 @@\n-x = 1;\n+x = 2;\n")
    (patches / "s390x-build-werror.patch").write_text("--- a/m.h\n+++ b/m.h\n@@ -1 +1 @@\n-x = 2;\n+x = 3;\n")
    steps = [s for s in patch_steps(stub_ort, tmp_path / "deps", "Linux") if s.directory == eigen]
    assert [s.patch.name for s in apply_patches(steps)] == ["s390x-build.patch", "s390x-build-werror.patch"]
    assert (eigen / "m.h").read_text() == "x = 3;\n"
    assert apply_patches(steps) == []  # both in: nothing applied, no error
    assert (eigen / "m.h").read_text() == "x = 3;\n"


def test_a_git_format_patch_series_is_applied_mail_by_mail(stub_ort: Path, tmp_path: Path) -> None:
    """eigen's s390x-build.patch holds six commits, later ones editing lines earlier ones wrote: a dry run
    of the whole file fails on a pristine tree, so each mail is checked and applied in turn."""
    eigen = tmp_path / "deps" / "eigen"
    eigen.mkdir(parents=True)
    (eigen / "m.h").write_text("x = 1;\n")
    patches = stub_ort / "cmake" / "patches" / "eigen"
    patches.mkdir(parents=True, exist_ok=True)
    mail = (
        "From {sha} Mon Sep 17 00:00:00 2001\nSubject: [PATCH {n}/2]\n---\n"
        "--- a/m.h\n+++ b/m.h\n@@ -1 +1 @@\n-{old}\n+{new}\n"
    )
    (patches / "s390x-build.patch").write_text(
        mail.format(sha="1" * 40, n=1, old="x = 1;", new="x = 2;")
        + mail.format(sha="2" * 40, n=2, old="x = 2;", new="x = 3;")
    )
    steps = [s for s in patch_steps(stub_ort, tmp_path / "deps", "Linux") if s.directory == eigen]
    assert [s.name for s in steps] == ["s390x-build.patch [1/2]", "s390x-build.patch [2/2]"]
    assert [s.name for s in apply_patches(steps)] == ["s390x-build.patch [1/2]", "s390x-build.patch [2/2]"]
    assert (eigen / "m.h").read_text() == "x = 3;\n"
    assert apply_patches(steps) == []
    assert (eigen / "m.h").read_text() == "x = 3;\n"


_DISABLE_TYPES_ARG = """
    parser.add_argument(
        "--disable_types",
        nargs="+",
        default=[],
        choices=["float4", "float8", "optional", "sparsetensor", "string"],
        help="Disable selected data types.",
    )
"""
"""The shape of the argument in ORT 1.28's tools/ci_build/build_args.py (the stub tree's stand-in)."""


@pytest.mark.parametrize(
    ("value_types", "text", "disabled"),
    [
        ("float,int64", "ai.onnx;13;Add\n", ["float4", "float8", "optional", "sparsetensor", "string"]),
        ("float,string", "ai.onnx.ml;1;ZipMap\n", ["float4", "float8", "optional", "sparsetensor"]),
        ("float,float8e4m3fn,sparse_tensor", "ai.onnx;19;Cast\n", ["float4", "optional", "string"]),
        ("float", "ai.onnx;18;OptionalHasElement\n", ["float4", "float8", "sparsetensor", "string"]),
        ("float,unknown", "ai.onnx;13;Add\n", []),  # a value of unknown type: nothing can be ruled out
        (None, "ai.onnx;13;Add\n", []),  # no record (a hand-written or merged config)
    ],
)
def test_type_support_no_model_needs_is_left_out(
    stub_ort: Path, value_types: str | None, text: str, disabled: list[str]
) -> None:
    (stub_ort / "tools" / "ci_build" / "build_args.py").write_text(_DISABLE_TYPES_ARG)
    config = stub_ort.parent / "ops.config"
    config.write_text((f"# value types: {value_types}\n" if value_types is not None else "") + text)
    argv = build.command(request(stub_ort))
    flags = argv[argv.index("--disable_types") + 1 : argv.index("--enable_lto")] if disabled else []
    assert flags == disabled
    assert ("--disable_types" in argv) == bool(disabled)


def test_disable_types_only_with_choices_this_ort_has(stub_ort: Path) -> None:
    config = stub_ort.parent / "ops.config"
    config.write_text("# value types: float\nai.onnx;13;Add\n")
    assert "--disable_types" not in build.command(request(stub_ort))  # no build_args.py: an older build.py
    (stub_ort / "tools" / "ci_build" / "build_args.py").write_text(_DISABLE_TYPES_ARG.replace(', "string"', ""))
    argv = build.command(request(stub_ort))
    assert argv[argv.index("--disable_types") + 1 : argv.index("--enable_lto")] == [
        "float4", "float8", "optional", "sparsetensor"
    ]  # fmt: skip
    given = build.command(request(stub_ort, extra_args=("--disable_types", "float8")))
    assert given.count("--disable_types") == 1  # the user's choice, not ours


def test_lto_is_on_unless_turned_off(stub_ort: Path) -> None:
    assert "--enable_lto" in build.compose(request(stub_ort), TYPED, LINUX)
    assert "--enable_lto" not in build.compose(request(stub_ort, lto=False), TYPED, LINUX)
    given = build.compose(request(stub_ort, extra_args=("--enable_lto",)), TYPED, LINUX)
    assert given.count("--enable_lto") == 1


def test_no_exceptions_is_build_py_disable_exceptions_once(stub_ort: Path) -> None:
    argv = build.compose(request(stub_ort, exceptions=False), TYPED, LINUX)
    assert argv.count("--disable_exceptions") == 1
    assert "--disable_exceptions" not in build.compose(request(stub_ort), TYPED, LINUX)
    given = request(stub_ort, exceptions=False, extra_args=("--disable_exceptions",))
    assert build.compose(given, TYPED, LINUX).count("--disable_exceptions") == 1
