"""ONNX Runtime's dependency sources for air-gapped builds: deps.txt names -> FetchContent overrides + patches.

ORT declares each dependency with FetchContent, under a name that is not always its ``cmake/deps.txt``
name (``protobuf`` -> ``Protobuf``, ``eigen`` -> ``Eigen3``, ``json`` -> ``nlohmann_json``,
``microsoft_gsl`` -> ``GSL``). ``FETCHCONTENT_SOURCE_DIR_<NAME>`` points FetchContent at a local tree;
FetchContent then skips the download *and the patch step*, so the patches ORT applies after a
download are applied here, each at most once (one that is already in is detected and skipped).
The table below was checked against ORT 1.28's ``cmake/external/*.cmake``; a deps.txt name it lacks
maps to itself with no patches, and a listed patch missing from the source tree is skipped.
"""

from __future__ import annotations

import logging
import platform
import re
import subprocess
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..errors import BuildError

__all__ = [
    "Dep",
    "PatchStep",
    "apply_patch",
    "apply_patches",
    "build_script_texts",
    "deps_txt_names",
    "fetchcontent_defines",
    "has_host_protoc",
    "leave_out_flags",
    "patch_steps",
    "protobuf_pin",
    "split_series",
]

log = logging.getLogger("ort_reduced_build")


@dataclass(frozen=True)
class Dep:
    """How ORT's CMake takes in one dependency."""

    fetchcontent: str
    """The name given to ``onnxruntime_fetchcontent_declare`` (its upper case names the override)."""
    patches: tuple[str, ...] = ()
    """Patches under ``cmake/patches/`` ORT applies on every target, in order."""
    linux_patches: tuple[str, ...] = ()
    """Patches ORT applies only when ``CMAKE_SYSTEM_NAME`` is ``Linux`` (not Android)."""


DEPS: dict[str, Dep] = {
    "abseil_cpp": Dep("abseil_cpp", ("abseil/absl_cuda_warnings.patch",)),
    "date": Dep("date", ("date/date.patch",)),
    "eigen": Dep("Eigen3", ("eigen/s390x-build.patch", "eigen/s390x-build-werror.patch")),
    "flatbuffers": Dep("flatbuffers", ("flatbuffers/flatbuffers.patch",)),
    "json": Dep("nlohmann_json"),
    "microsoft_gsl": Dep("GSL", ("gsl/1213.patch",)),
    "mp11": Dep("mp11"),
    "onnx": Dep("onnx", ("onnx/onnx.patch",)),
    "protobuf": Dep(
        "Protobuf",
        ("protobuf/protobuf_cmake.patch", "protobuf/protobuf_android_log.patch", "protobuf/protobuf_s390x.patch"),
    ),
    "pytorch_cpuinfo": Dep("pytorch_cpuinfo", linux_patches=("cpuinfo/fix_missing_sysfs_fallback.patch",)),
    "re2": Dep("re2"),
    "safeint": Dep("safeint"),
}
"""The dependencies of a minimal CPU build (unit tests off); others map to their own name."""

OPTIONAL = {"kleidiai": "--no_kleidiai"}
"""Dependencies a build can go without, and the build.py flag that leaves each out: KleidiAI (Arm's
micro-kernels in MLAS, built only for arm64 targets and downloaded then)."""


def leave_out_flags(ort_source: Path, deps_dir: Path, extra: Sequence[str]) -> list[str]:
    """build.py flags leaving out the optional dependencies ``deps_dir`` lacks, which ORT would download."""
    known = set(deps_txt_names(ort_source))
    flags = []
    for name, flag in sorted(OPTIONAL.items()):
        if name in known and not (deps_dir / name).is_dir() and flag not in extra and _accepts(ort_source, flag):
            log.info("%s has no %s: building without it (%s)", deps_dir, name, flag)
            flags.append(flag)
    return flags


def _accepts(ort_source: Path, flag: str) -> bool:
    """Whether ORT's build.py (or its build_args.py) defines ``flag``."""
    return any(f'"{flag}"' in text for text in build_script_texts(ort_source))


def build_script_texts(ort_source: Path) -> Iterator[str]:
    """The text of ORT's ``tools/ci_build/build_args.py`` (where newer ORTs define build.py's flags), then of
    ``build.py``; a file that cannot be read is left out."""
    for name in ("build_args.py", "build.py"):
        try:
            yield (ort_source / "tools" / "ci_build" / name).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue


_PROTOC = {
    ("Linux", "x86_64"): "protoc_linux_x64",
    ("Linux", "aarch64"): "protoc_linux_aarch64",
    ("Darwin", "arm64"): "protoc_mac_universal",
    ("Darwin", "x86_64"): "protoc_mac_universal",
    ("Windows", "AMD64"): "protoc_win64",
}
"""The prebuilt protoc ORT fetches (as ``protoc_binary``) when cross-compiling, per host."""


def deps_txt_names(ort_source: Path) -> list[str]:
    """The dependency names in ORT's ``cmake/deps.txt`` (first ``;`` field of each non-comment line)."""
    path = ort_source / "cmake" / "deps.txt"
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise BuildError(f"{path}: cannot read ORT's dependency list: {exc.strerror}") from None
    return [line.split(";", 1)[0].strip() for line in lines if line.strip() and not line.startswith("#")]


def has_host_protoc(deps_dir: Path) -> bool:
    """Whether ``deps_dir`` holds the prebuilt protoc ORT would fetch for this host."""
    name = _PROTOC.get((platform.system(), platform.machine()))
    return name is not None and (deps_dir / name).is_dir()


def protobuf_pin(ort_source: Path) -> str | None:
    """The protoc version matching ORT's protobuf pin (``v21.12`` -> ``3.21.12``; ``v25.1`` -> ``25.1``)."""
    try:
        text = (ort_source / "cmake" / "deps.txt").read_text(encoding="utf-8")
    except OSError:
        return None
    found = re.search(r"^protobuf;[^;]*/v(\d+)\.(\d+)(?:\.(\d+))?\.zip", text, re.MULTILINE)
    if found is None:
        return None
    major, minor, patch = found.groups()
    version = f"{major}.{minor}" + (f".{patch}" if patch else "")
    return f"3.{version}" if int(major) < 22 else version


def fetchcontent_defines(ort_source: Path, deps_dir: Path) -> list[str]:
    """``FETCHCONTENT_*`` defines that make ORT's CMake use the sources in ``deps_dir``, fully disconnected."""
    known = deps_txt_names(ort_source)
    host_protoc = _PROTOC.get((platform.system(), platform.machine()))
    # NEVER: the dependency trees given are used, never whatever find_package() finds on this machine.
    defines = ["FETCHCONTENT_FULLY_DISCONNECTED=ON", "FETCHCONTENT_TRY_FIND_PACKAGE_MODE=NEVER"]
    for name in sorted(p.name for p in deps_dir.iterdir() if p.is_dir()):
        if name not in known:
            log.warning("%s: not a dependency in ORT's cmake/deps.txt; ignored", deps_dir / name)
            continue
        if name.startswith("protoc_"):
            if name != host_protoc:
                continue
            fc_name = "protoc_binary"
        else:
            fc_name = DEPS[name].fetchcontent if name in DEPS else name
        defines.append(f"FETCHCONTENT_SOURCE_DIR_{fc_name.upper()}={(deps_dir / name).resolve().as_posix()}")
    missing = sorted(set(DEPS) - {p.name for p in deps_dir.iterdir()})
    if missing:
        log.warning("%s lacks %s: a disconnected build needs every one of them", deps_dir, ", ".join(missing))
    return defines


@dataclass(frozen=True)
class PatchStep:
    """One of ORT's patches for one dependency tree; one mail of it when it is a ``git format-patch`` series."""

    directory: Path
    patch: Path
    part: int = 1
    parts: int = 1

    @property
    def name(self) -> str:
        return self.patch.name if self.parts == 1 else f"{self.patch.name} [{self.part}/{self.parts}]"

    def diff(self) -> bytes:
        return split_series(self.patch.read_bytes())[self.part - 1]


_MAIL_START = re.compile(rb"^From [0-9a-f]{40} ", re.MULTILINE)


def split_series(patch: bytes) -> list[bytes]:
    """A ``git format-patch`` series (several mails in one file) as one diff per mail; else the whole file.

    Later mails may edit lines earlier ones wrote (eigen's s390x-build.patch, six commits), so the parts
    must be checked and applied one after the other: ``patch --dry-run`` on the whole file fails.
    """
    starts = [m.start() for m in _MAIL_START.finditer(patch)]
    if len(starts) < 2:
        return [patch]
    starts[0] = 0
    return [patch[a:b] for a, b in zip(starts, [*starts[1:], len(patch)], strict=True)]


def patch_steps(ort_source: Path, deps_dir: Path, target_system: str) -> list[PatchStep]:
    """The patches ORT would apply to the trees in ``deps_dir`` when building for ``target_system``."""
    patches_dir = ort_source / "cmake" / "patches"
    steps = []
    for name, dep in sorted(DEPS.items()):
        directory = deps_dir / name
        if not directory.is_dir():
            continue
        names = dep.patches + (dep.linux_patches if target_system == "Linux" else ())
        for rel in names:
            patch = patches_dir / rel
            if not patch.is_file():
                log.info("%s: not in this ORT version; not applied to %s", patch, directory)
                continue
            parts = len(split_series(patch.read_bytes()))
            steps += [PatchStep(directory, patch, i, parts) for i in range(1, parts + 1)]
    return steps


def apply_patches(steps: list[PatchStep]) -> list[PatchStep]:
    """Apply each dependency's patches in order, skipping those already in; the ones applied now.

    A dependency's patches form a chain (eigen's second s390x patch edits lines its first one wrote), so
    an earlier patch no longer reverse-applies once a later one is in: the last step of the chain that
    reverse-applies marks everything up to it as applied.
    """
    applied: list[PatchStep] = []
    by_directory: dict[Path, list[PatchStep]] = {}
    for step in steps:
        by_directory.setdefault(step.directory, []).append(step)
    for chain in by_directory.values():
        done = max((i for i, step in enumerate(chain) if _is_applied(step)), default=-1)
        for step in chain[done + 1 :]:
            _apply(step)
            applied.append(step)
    return applied


def apply_patch(step: PatchStep) -> bool:
    """Apply ``step`` unless it is already applied; True when it was applied now."""
    if _is_applied(step):
        return False
    _apply(step)
    return True


def _patch_argv(step: PatchStep) -> list[str]:
    return [
        "patch",
        "-p1",
        "--binary",
        "--ignore-whitespace",
        "-f",
        "-s",
        "--no-backup-if-mismatch",
        "-d",
        str(step.directory),
    ]


def _is_applied(step: PatchStep) -> bool:
    return _quiet([*_patch_argv(step), "-R", "--dry-run"], step).returncode == 0


def _apply(step: PatchStep) -> None:
    base = _patch_argv(step)
    check = _quiet([*base, "-N", "--dry-run"], step)
    if check.returncode != 0:
        tail = check.stdout.strip().splitlines()[-5:]
        raise BuildError(f"{step.name} does not apply to {step.directory}: " + " | ".join(tail))
    done = _quiet([*base, "-N"], step)
    if done.returncode != 0:
        raise BuildError(f"{step.name}: patching {step.directory} failed: {done.stdout.strip()[-400:]}")


def _quiet(argv: list[str], step: PatchStep) -> subprocess.CompletedProcess[str]:
    """Run ``patch`` on the step's diff (standard input), output and errors together."""
    try:
        out = subprocess.run(argv, input=step.diff(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, check=False)
    except FileNotFoundError:
        raise BuildError("the 'patch' program is needed to patch dependency sources (apt-get install patch)") from None
    return subprocess.CompletedProcess(argv, out.returncode, out.stdout.decode(errors="replace"))
