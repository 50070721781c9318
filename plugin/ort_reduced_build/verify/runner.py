"""The verify stage: run every model on a built ONNX Runtime library and compare with onnxruntime (full).

For each ``.ort`` model, inputs are made from the model's metadata (or an inputs file), onnxruntime
(Python, the full build) runs them as the reference, and a small C program, ``resources/verify_runner.c``,
compiled with the library's own toolchain, runs them on the built library through ORT's C API (under an
emulator for a cross build). Both sides use one intra-op thread; the same seed gives the same inputs.

Statuses: ``ok``; ``missing-kernel`` (session creation failed because no kernel matches a node: ORT's
message names the op); ``session-failed`` (session creation failed otherwise); ``run-failed``;
``mismatch`` (an output differs beyond the tolerances); ``skipped`` (the reference itself cannot run the
generated inputs: the inputs file must give them).
"""

from __future__ import annotations

import logging
import os
import shlex
import shutil
import subprocess
import tempfile
import zlib
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import VerifyError
from ..util import elf as _elf
from .compare import OutputDiff, compare
from .inputs import CannotMake, InputsFile, ModelSpec, make_inputs
from .target import Target
from .wire import decode_outputs, encode_inputs

__all__ = ["STATUSES", "ModelReport", "Report", "VerifyRequest", "compile_runner", "run"]

log = logging.getLogger("ort_reduced_build")

STATUSES = ("ok", "missing-kernel", "session-failed", "run-failed", "mismatch", "skipped")
RUNNER_SOURCE = "verify_runner.c"
_EXIT_STATUS = {2: "session-failed", 3: "run-failed"}
_MISSING_KERNEL = ("Could not find an implementation for", "Failed to find kernel for")


@dataclass(frozen=True)
class VerifyRequest:
    """One verification: these ``(shown path, .ort file)`` models on this library."""

    models: tuple[tuple[str, Path], ...]
    library: Path
    target: Target = field(default_factory=Target)
    inputs: InputsFile = field(default_factory=InputsFile)
    seed: int = 0
    rtol: float = 1e-4
    atol: float = 1e-5
    timeout: float = 600.0
    session_only: bool = False
    """Create each model's session and run nothing (no reference needed)."""
    reference_library: Path | None = None
    """A full ONNX Runtime library for the library's target, run by the runner as the reference (under the
    emulator too); None: this host's onnxruntime. Kernels differ between CPUs (quantized ones above all)."""


@dataclass(frozen=True)
class ModelReport:
    path: str
    status: str
    message: str = ""
    outputs: tuple[OutputDiff, ...] = ()


@dataclass(frozen=True)
class Report:
    runtime: str
    """The built library's path and the version it reports."""
    reference: str
    """onnxruntime's version (the reference)."""
    models: tuple[ModelReport, ...]
    runtime_version: str = ""
    """The version the built library reports (empty when no model got that far)."""
    notes: tuple[str, ...] = ()
    """More warnings about the comparison itself."""

    @property
    def warnings(self) -> list[str]:
        """A reference of another major.minor than the library: its kernels may differ, and so may outputs."""
        minor = [".".join(v.split(".")[:2]) for v in (self.runtime_version, self.reference)]
        if not self.runtime_version or minor[0] == minor[1]:
            return list(self.notes)
        return [
            (
                f"the reference is onnxruntime {self.reference} but the library is {self.runtime_version}: outputs "
                f"may differ where kernels changed; compare with onnxruntime=={minor[0]}.*"
            ),
            *self.notes,
        ]

    def ok(self, allow_skipped: bool = False) -> bool:
        allowed = {"ok", "skipped"} if allow_skipped else {"ok"}
        return all(m.status in allowed for m in self.models)

    def to_json(self, allow_skipped: bool = False) -> dict[str, object]:
        return {
            "ok": self.ok(allow_skipped),
            "runtime": self.runtime,
            "reference": self.reference,
            "warnings": self.warnings,
            "models": [
                {
                    "path": m.path,
                    "status": m.status,
                    "message": m.message,
                    "outputs": [
                        {"name": o.name, "max_abs_diff": o.max_abs_diff, "max_rel_diff": o.max_rel_diff}
                        for o in m.outputs
                    ],
                }
                for m in self.models
            ],
        }


# ---- running ----


def compile_runner(target: Target, directory: Path) -> Path:
    """Compile the runner for ``target`` into ``directory``; raises ``VerifyError`` with the compiler's output."""
    source = resources.files("ort_reduced_build").joinpath("resources", RUNNER_SOURCE).read_bytes()
    runner = directory / "verify_runner"
    directory.mkdir(parents=True, exist_ok=True)
    src = directory / RUNNER_SOURCE
    src.write_bytes(source)
    argv = [*target.compiler, "-std=c99", "-O1", "-o", str(runner), str(src), "-ldl"]
    try:
        result = subprocess.run(argv, capture_output=True, text=True, check=False)
    except OSError as exc:
        raise VerifyError(f"cannot run the C compiler {target.compiler[0]}: {exc.strerror}") from None
    if result.returncode != 0:
        raise VerifyError(
            f"compiling the verify runner failed ({shlex.join(argv)}, exit {result.returncode}):\n"
            f"{(result.stdout + result.stderr)[-3000:]}"
        )
    return runner


CROSS_REFERENCE_NOTE = (
    "the reference ran on this host's CPU and the library on another: kernels (quantized ones above all) "
    "compute differently per CPU; compare with a full runtime for the target: --reference-runtime LIB"
)


def run(request: VerifyRequest, on_model: Callable[[ModelReport], None] | None = None) -> Report:
    """Verify every model of ``request``; raises ``VerifyError`` when the runner cannot be made or started."""
    if request.target.cross and not request.target.emulator:
        raise VerifyError(
            f"{request.library} is cross-compiled and no emulator is known to run it here: "
            "set CMAKE_CROSSCOMPILING_EMULATOR in the toolchain file or pass --emulator"
        )
    import onnxruntime

    reports = []
    version = "?"
    reference = onnxruntime.__version__  # or the reference library's, once it reports one
    with _workdir() as work:
        runner = compile_runner(request.target, work)
        launch = (*_launcher(request.target, runner, work), str(runner))
        for index, (display, ort) in enumerate(request.models):
            report, reported, reference_reported = _verify_model(request, launch, display, ort, work / str(index))
            version = reported or version
            reference = reference_reported or reference
            reports.append(report)
            if on_model is not None:
                on_model(report)
    runtime = f"{request.library} (onnxruntime {version})"
    notes: tuple[str, ...] = ()
    if request.target.cross and request.reference_library is None and any(r.status == "mismatch" for r in reports):
        notes = (CROSS_REFERENCE_NOTE,)
    return Report(runtime, reference, tuple(reports), "" if version == "?" else version, notes)


@contextmanager
def _workdir() -> Iterator[Path]:
    directory = Path(tempfile.mkdtemp(prefix="ort-reduced-build-verify-"))
    try:
        yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def _verify_model(
    request: VerifyRequest, launch: tuple[str, ...], display: str, ort: Path, work: Path
) -> tuple[ModelReport, str, str]:
    """The model's report, the version the library reports and the one the reference library reports
    (each "" when not known)."""
    work.mkdir()
    spec = request.inputs.spec(display)
    feeds: dict[str, np.ndarray] | None = None
    expected: Mapping[str, object] = {}
    skipped = reference = ""
    if not request.session_only:
        try:
            session = _session(ort)
            feeds = make_inputs(session.get_inputs(), spec, request.seed + zlib.crc32(display.encode()))
            expected, reference = _reference(request, launch, (ort, session), feeds, work / "reference")
        except CannotMake as exc:
            feeds, skipped = None, str(exc)  # the session on the built library is still created
            reference = exc.version if isinstance(exc, _ReferenceFailed) else ""
    code, message, version = _run_runner(request, launch, ort, feeds, work)
    if code in _EXIT_STATUS:
        status = _EXIT_STATUS[code]
        if status == "session-failed" and any(s in message for s in _MISSING_KERNEL):
            status = "missing-kernel"
        return ModelReport(display, status, message), version, reference
    if code != 0:
        raise VerifyError(f"{display}: the verify runner failed (exit {code}): {message}")
    if skipped:
        return ModelReport(display, "skipped", f"session created; {skipped}"), version, reference
    if feeds is None:
        return ModelReport(display, "ok", "session created"), version, reference
    try:
        got = decode_outputs((work / "out.bin").read_bytes())
    except (OSError, ValueError) as exc:
        return ModelReport(display, "run-failed", f"unreadable runner output: {exc}"), version, reference
    return _compared(request, spec, display, got, expected), version, reference


class _ReferenceFailed(CannotMake):
    """The reference library did not give the model's outputs; ``version``: what it said it is ("" if nothing)."""

    def __init__(self, message: str, version: str) -> None:
        super().__init__(message)
        self.version = version


def _session(ort: Path) -> Any:
    """This host's onnxruntime session of ``ort``: the inputs' metadata, and the reference by default."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    options.log_severity_level = 4  # failures come back as exceptions, reported once
    try:
        return onnxruntime.InferenceSession(str(ort), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # noqa: BLE001 -- onnxruntime raises its own exception types
        raise CannotMake(f"onnxruntime {onnxruntime.__version__} (this host's) cannot load it: {exc}") from None


def _reference(
    request: VerifyRequest,
    launch: tuple[str, ...],
    model: tuple[Path, Any],
    feeds: dict[str, np.ndarray],
    work: Path,
) -> tuple[Mapping[str, object], str]:
    """The reference outputs of the model (its ``.ort`` and host session), and the version the reference
    library reports: the runner on ``request.reference_library``, else this host's onnxruntime ("")."""
    ort, session = model
    if request.reference_library is not None:
        work.mkdir()
        code, message, version = _run_runner(request, launch, ort, feeds, work, request.reference_library)
        if code != 0:
            raise _ReferenceFailed(
                f"the reference runtime {request.reference_library} cannot run it: {message}", version
            )
        try:
            return decode_outputs((work / "out.bin").read_bytes()), version
        except (OSError, ValueError) as exc:
            raise _ReferenceFailed(f"unreadable reference output: {exc}", version) from None
    try:
        values = session.run(None, feeds)
    except Exception as exc:  # noqa: BLE001 -- onnxruntime raises its own exception types
        names = ", ".join(a.name for a in session.get_inputs())
        raise CannotMake(
            f"the reference cannot run the generated inputs ({_first_line(exc)}): set inputs {names} in --inputs"
        ) from None
    return {o.name: v for o, v in zip(session.get_outputs(), values, strict=True)}, ""


_ARM_CPUINFO = "".join(
    f"processor\t: {n}\nBogoMIPS\t: 50.00\nFeatures\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp "
    "asimdhp cpuid asimdrdm lrcpc dcpop asimddp\nCPU implementer\t: 0x41\nCPU architecture: 8\n"
    "CPU variant\t: 0x3\nCPU part\t: 0xd0c\nCPU revision\t: 1\n\n"
    for n in range(2)
)
"""An Arm Neoverse-N1-like ``/proc/cpuinfo`` (features qemu's default CPU has)."""


def _launcher(target: Target, runner: Path, work: Path) -> tuple[str, ...]:
    """What starts the runner: nothing (native), the emulator, or, for an ARM runner under qemu-user, the
    emulator in a private mount namespace that shows an ARM ``/proc/cpuinfo``: qemu-user passes the
    host's through, and ORT's cpuinfo library crashes reading it while the library loads."""
    if not target.emulator:
        return ()
    qemu = Path(target.emulator[0]).name.startswith("qemu-")
    if not qemu or _elf.machine(runner) not in ("arm", "aarch64") or shutil.which("unshare") is None:
        return target.emulator
    fake = work / "cpuinfo"
    fake.write_text(_ARM_CPUINFO)
    user = () if os.geteuid() == 0 else ("--map-root-user",)
    script = 'mount --bind "$0" /proc/cpuinfo 2>/dev/null || exit 97; exec "$@"'
    shim = ("unshare", "--mount", *user, "sh", "-c", script, str(fake), *target.emulator)
    try:  # the runner without arguments exits 5 (usage) once it starts: the namespace works here
        probe = subprocess.run([*shim, str(runner)], capture_output=True, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return target.emulator
    if probe.returncode != 5:
        log.warning("cannot show qemu an ARM /proc/cpuinfo here (unshare): ORT may crash while loading")
        return target.emulator
    return shim


def _run_runner(
    request: VerifyRequest,
    launch: tuple[str, ...],
    ort: Path,
    feeds: Mapping[str, np.ndarray] | None,
    work: Path,
    library: Path | None = None,
) -> tuple[int, str, str]:
    """Run ``ort`` on ``library`` (default: the built one): exit code, last error line, reported version."""
    (work / "in.bin").write_bytes(encode_inputs(feeds))
    argv = [*launch, str(library or request.library), str(ort), str(work / "in.bin"), str(work / "out.bin")]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    try:
        result = subprocess.run(
            argv, capture_output=True, text=True, errors="replace", timeout=request.timeout, check=False, env=env
        )
    except subprocess.TimeoutExpired:
        return 3, f"timed out after {request.timeout:g} s", ""
    except OSError as exc:
        raise VerifyError(f"cannot start {argv[0]}: {exc.strerror}") from None
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    version = lines[0].removeprefix("onnxruntime ") if lines and lines[0].startswith("onnxruntime ") else ""
    if result.returncode < 0:
        return 3, f"the runner died with signal {-result.returncode}", version
    message = lines[-1] if lines and result.returncode else ""
    return result.returncode, message, version


def _compared(
    request: VerifyRequest, spec: ModelSpec, display: str, got: Mapping[str, object], expected: Mapping[str, object]
) -> ModelReport:
    rtol = spec.rtol if spec.rtol is not None else request.rtol
    atol = spec.atol if spec.atol is not None else request.atol
    if list(got) != list(expected):
        return ModelReport(display, "mismatch", f"outputs {list(got)} where the reference has {list(expected)}")
    diffs = tuple(compare(name, got[name], want, rtol, atol) for name, want in expected.items())
    bad = [d for d in diffs if not d.ok]
    if not bad:
        return ModelReport(display, "ok", "", diffs)
    worst = ", ".join(f"{d.name}: max abs diff {d.max_abs_diff:.3g}, max rel diff {d.max_rel_diff:.3g}" for d in bad)
    return ModelReport(display, "mismatch", f"{worst} (rtol {rtol:g}, atol {atol:g})", diffs)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
