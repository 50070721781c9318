"""The host ``protoc`` of a cross build, offline.

ORT compiles its ``.proto`` files with a protoc that runs on the build machine; cross-compiling, its CMake
downloads a prebuilt one. In order, we take: the one given (``--protoc``); the deps dir's prebuilt
``protoc_<host>`` (ORT takes it itself); ``protoc`` on PATH when its version is ORT's protobuf pin; else
one built for this host from the deps dir's ``protobuf`` sources, once per build directory. A protoc of
another version is refused naming both versions.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path

from ..errors import BuildError
from . import deps as _ortdeps

log = logging.getLogger(__name__)

BUILT = Path("host-protoc")
"""Where, under the ORT build directory, a protoc built from the deps dir's sources lives."""


def choose(ort_source: Path, deps_dir: Path | None, given: Path | None, build_dir: Path) -> Path | None:
    """The protoc ORT should run (None: ORT takes the deps dir's prebuilt one, or downloads one). A path
    under ``build_dir / BUILT`` may not exist yet: ``ensure`` builds it."""
    if given is None and deps_dir is not None and _ortdeps.has_host_protoc(deps_dir):
        return None
    pin = _ortdeps.protobuf_pin(ort_source)
    found = given or (Path(p) if (p := shutil.which("protoc")) else None)
    version = None if found is None else _version(found)
    if found is not None and (pin is None or version == pin):
        return found.resolve()
    sources = None if deps_dir is None else deps_dir / "protobuf"
    if given is None and pin is not None and sources is not None and (sources / "CMakeLists.txt").is_file():
        if found is not None:
            log.info("%s is protoc %s, not %s: building protoc %s from %s", found, version, pin, pin, sources)
        return (build_dir / BUILT / "protoc").resolve()
    if found is None:
        return None  # ORT downloads its prebuilt protoc (needs the network)
    raise BuildError(
        f"{found} is protoc {version or '(unknown version)'}, but ONNX Runtime's protobuf is {pin}: "
        f"give a protoc {pin} with --protoc (Debian 12: apt install protobuf-compiler), or a deps dir "
        "holding protobuf's sources"
    )


def planned(protoc: Path, build_dir: Path) -> bool:
    """Whether ``protoc`` is the one ``choose`` plans to build in ``build_dir``."""
    return protoc == (build_dir / BUILT / "protoc").resolve()


def _version(protoc: Path) -> str | None:
    try:
        out = subprocess.run([str(protoc), "--version"], capture_output=True, text=True, check=False).stdout
    except OSError as exc:
        raise BuildError(f"{protoc}: cannot run protoc: {exc.strerror}") from None
    return out.strip().removeprefix("libprotoc ").strip() or None


def ensure(
    protoc: Path,
    ort_source: Path,
    deps_dir: Path,
    *,
    cmake: Path | None = None,
    launchers: Sequence[tuple[str, str]] = (),
    jobs: int | None = None,
    on_output: Callable[[str], None] | None = None,
) -> None:
    """Build ``protoc`` (a path ``choose`` planned) for this host from ``deps_dir/protobuf`` unless a protoc
    of ORT's pin is already there. The host's own compiler: no toolchain file, no cross settings."""
    pin = _ortdeps.protobuf_pin(ort_source)
    if protoc.is_file() and _version(protoc) == pin:
        return
    work = protoc.parent
    defines = {
        "CMAKE_BUILD_TYPE": "Release",
        "protobuf_BUILD_TESTS": "OFF",
        "protobuf_BUILD_SHARED_LIBS": "OFF",
        "protobuf_WITH_ZLIB": "OFF",
        "protobuf_INSTALL": "OFF",
        "CMAKE_POLICY_VERSION_MINIMUM": "3.5",  # protobuf 3.x declares an old minimum newer CMakes refuse
    }
    if (deps_dir / "abseil_cpp").is_dir():  # protobuf 22+ builds abseil from the tree next to it
        defines |= {"protobuf_ABSL_PROVIDER": "module", "ABSL_ROOT_DIR": str((deps_dir / "abseil_cpp").resolve())}
    defines |= {f"CMAKE_{lang}_COMPILER_LAUNCHER": tool for lang, tool in launchers}
    cmake_exe = str(cmake or "cmake")
    generator = ["-G", "Ninja"] if shutil.which("ninja") else []
    env = {k: v for k, v in os.environ.items() if k not in ("CC", "CXX", "CFLAGS", "CXXFLAGS", "LDFLAGS")}
    log.info("building the host protoc %s from %s into %s", pin, deps_dir / "protobuf", work)
    configure = [cmake_exe, "-S", str(deps_dir / "protobuf"), "-B", str(work), *generator]
    _step([*configure, *(f"-D{k}={v}" for k, v in defines.items())], env, on_output)
    jobs_arg = str(jobs or os.cpu_count() or 1)
    _step([cmake_exe, "--build", str(work), "--target", "protoc", "-j", jobs_arg], env, on_output)
    version = _version(protoc) if protoc.is_file() else None
    if version != pin:
        raise BuildError(f"{protoc}: the protoc built from {deps_dir / 'protobuf'} is {version}, not {pin}")


def _step(argv: list[str], env: dict[str, str], on_output: Callable[[str], None] | None) -> None:
    proc = subprocess.run(argv, capture_output=True, text=True, errors="replace", env=env, check=False)
    for line in (proc.stdout + proc.stderr).splitlines():
        if on_output is not None:
            on_output(line)
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-30:])
        raise BuildError(f"building the host protoc failed ({proc.returncode})\ncommand: {' '.join(argv)}\n{tail}")
