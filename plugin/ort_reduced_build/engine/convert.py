""".onnx -> .ort conversion in isolated worker processes.

Each conversion does what ORT's ``convert_onnx_models_to_ort`` does (same session options), in a
spawned worker. Workers are reused; one that crashes (segfault, abort, out of memory) or passes the
per-model timeout is killed and replaced, and only its model is reported failed.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..settings import ConvertOptions
from ..util.fileio import file_integrity_digest, integrity_digest, mapped
from .analyze import ModelUsage, analyze_ort, merge_graph_types
from .config import merge

if TYPE_CHECKING:
    from .workers import Zygote

__all__ = ["ConvertFailure", "ConvertTask", "Converted", "Workers", "convert_one", "default_jobs"]

WORKER_MODULE = f"{__package__}.tasks"
"""Where a worker's loop lives (``tasks.worker_main``), named, not imported: it imports this module."""

_LEVELS = {
    "disable": "ORT_DISABLE_ALL",
    "basic": "ORT_ENABLE_BASIC",
    "extended": "ORT_ENABLE_EXTENDED",
    "layout": "ORT_ENABLE_LAYOUT",
    "all": "ORT_ENABLE_ALL",
}


@dataclass(frozen=True)
class ConvertTask:
    """Convert ``model`` in one ``style``; outputs go to ``staging`` (``model.ort`` ...)."""

    model: Path
    style: str
    options: ConvertOptions
    staging: Path
    threads: int = 1
    log_severity: int = 3


@dataclass(frozen=True)
class ConvertFailure:
    """Why a conversion produced nothing: one line, no traceback (``detail``: the worker's traceback, if any)."""

    cause: str
    detail: str = ""


def default_jobs() -> int:
    """The CPUs this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


@dataclass(frozen=True)
class Converted:
    """A finished conversion: the model's usage and the integrity digest of each file left in the staging dir."""

    usage: ModelUsage
    files: dict[str, str]


def convert_one(task: ConvertTask) -> Converted:
    """Convert one model exactly as ORT's converter does and return its usage (runs in a worker).

    A given ``.ort`` (with saved runtime optimizations) is not converted: ``replay.rederive`` says what it
    needs (``tasks.perform`` chooses).
    """
    opts = task.options
    entries = {"session.qdqisint8allowed": "1" if opts.target_platform == "arm" else "0"}
    runtime = task.style == "Runtime"
    ort_path = task.staging / "model.ort"
    _session(
        task,
        ort_path,
        {**entries, "session.save_model_format": "ORT"}
        | ({"optimization.minimal_build_optimizations": "save"} if runtime else {}),
    )
    with mapped(ort_path) as data:
        files = {ort_path.name: integrity_digest(data)}
        usages = [analyze_ort(ort_path, data)]
    if runtime:
        # Saved optimizations may not be replayed: the ops of the plain "apply" model are needed too.
        applied = task.staging / "applied.ort"
        _session(
            task,
            applied,
            {
                **entries,
                "session.save_model_format": "ORT",
                "optimization.minimal_build_optimizations": "apply",
            },
        )
        usages.append(analyze_ort(applied))
        applied.unlink()
    if opts.save_optimized_onnx:
        onnx_entries = entries | ({"optimization.minimal_build_optimizations": "apply"} if runtime else {})
        _session(task, task.staging / "model.optimized.onnx", onnx_entries)
    warnings = tuple(sorted({w for u in usages for w in u.warnings}))
    files |= {p.name: file_integrity_digest(p) for p in sorted(task.staging.iterdir()) if p.name not in files}
    files = dict(sorted(files.items()))
    value_types = frozenset().union(*(u.value_types for u in usages))
    usage = ModelUsage(merge(u.config for u in usages), warnings, value_types, merge_graph_types(usages))
    return Converted(usage, files)


def _session(task: ConvertTask, output: Path, entries: dict[str, str]) -> None:
    import onnxruntime as ort

    opts = task.options
    so = ort.SessionOptions()
    so.optimized_model_filepath = str(output)
    so.graph_optimization_level = getattr(ort.GraphOptimizationLevel, _LEVELS[opts.optimization_level])
    so.intra_op_num_threads = task.threads
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")  # workers share the CPUs
    # The model is saved, never run: packing weights into kernel layouts (MatMul, Conv) is wasted time and
    # memory (a third of the session's time for a 72 MB BERT). The saved model and config do not change.
    so.add_session_config_entry("session.disable_prepacking", "1")
    so.log_severity_level = task.log_severity
    for lib in opts.custom_op_libraries:
        so.register_custom_ops_library(str(lib))
    for key, value in entries.items():
        so.add_session_config_entry(key, value)
    # NCHWc makes x86-specific models: off unless the target is amd64 (as ORT's converter does).
    disabled = None
    if opts.optimization_level in ("all", "layout") and opts.target_platform != "amd64":
        disabled = ["NchwcTransformer"]
    session = ort.InferenceSession(
        str(task.model), sess_options=so, providers=["CPUExecutionProvider"], disabled_optimizers=disabled
    )
    del session


class _Worker:
    """A process running ``worker_main``, talking over two pipes: forked by the zygote when there is one,
    else a fresh interpreter.

    Never ``multiprocessing``: nothing of the caller's ``__main__`` is re-imported, so it works from
    scripts, notebooks, stdin and build backends alike.
    """

    def __init__(self, zygote: Zygote | None) -> None:
        from multiprocessing.connection import Connection

        from .workers import start_interpreter

        task_r, task_w = os.pipe()
        result_r, result_w = os.pipe()
        self.process: subprocess.Popen[bytes] | None = None
        self.zygote = zygote if zygote is not None and zygote.alive else None
        try:
            if self.zygote is not None:
                try:
                    self.pid = self.zygote.fork(task_r, result_w)
                except OSError:
                    self.zygote = None
            if self.zygote is None:
                self.process = start_interpreter(WORKER_MODULE, "worker_main", (task_r, result_w))
                self.pid = self.process.pid
        finally:
            os.close(task_r)
            os.close(result_w)
        self.tasks = Connection(task_w, readable=False)
        self.results = Connection(result_r, writable=False)
        self.task: ConvertTask | None = None
        self.timeout: float | None = None
        self.deadline = float("inf")
        self.returncode: int | None = None

    def start(self, task: ConvertTask, timeout: float | None) -> None:
        self.task, self.timeout = task, timeout
        self.deadline = time.monotonic() + timeout if timeout else float("inf")
        self.tasks.send(task)

    def release(self) -> None:
        """Ask the worker to exit (it does at once); ``join`` reaps it."""
        with contextlib.suppress(OSError):
            self.tasks.send(None)

    def wait(self, timeout: float | None = None) -> int | None:
        """Its exit code once it has exited; ``None`` if that is not known within ``timeout``."""
        if self.returncode is not None:
            return self.returncode
        if self.process is not None:
            try:
                self.returncode = self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                return None
        elif self.zygote is not None:
            self.returncode = self.zygote.exitcode(self.pid, timeout)
        return self.returncode

    def join(self) -> None:
        if self.wait(5) is None:
            self.kill()
        self._close()

    def kill(self) -> None:
        if self.returncode is None:  # once reaped, its pid may be another process's
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)
            self.wait()
        self._close()

    def _close(self) -> None:
        self.tasks.close()
        self.results.close()


def _crash_cause(exitcode: int | None) -> str:
    if exitcode is not None and exitcode < 0:
        name = signal.Signals(-exitcode).name
        hint = "; out of memory?" if -exitcode == signal.SIGKILL else ""
        return f"conversion crashed ({name}{hint})"
    if exitcode is None:
        return "conversion process died (its exit status is unknown)"
    return f"conversion process exited with code {exitcode}"


class Workers:
    """Up to ``jobs`` worker processes converting tasks; ``run`` yields each task with its outcome.

    Nothing of the process machinery is imported, and no process started, before ``prepare`` or the first
    task: the warm path stays light.
    """

    def __init__(self, jobs: int, timeout: float | None) -> None:
        self.jobs = max(1, jobs)
        self.timeout = timeout
        self._zygote: Zygote | None = None
        self._idle: list[_Worker] = []
        self._busy: list[_Worker] = []

    def prepare(self) -> None:
        """Start what workers fork from (Linux) now, while the caller still hashes: a conversion is coming."""
        if self._zygote is None and sys.platform.startswith("linux"):
            from .workers import Zygote

            self._zygote = Zygote(f"{WORKER_MODULE}:worker_main")

    def run(self, tasks: Iterable[ConvertTask]) -> Iterator[tuple[ConvertTask, Converted | ConvertFailure]]:
        """Convert ``tasks``; yield each with its usage or failure.

        ``tasks`` is pulled lazily, one ahead of the free workers: the next task's hashing overlaps the
        conversions, and a freed worker gets it before the finished one's result is handed over. While the
        zygote is still importing, tasks are pulled (hashed) instead of waiting for it.
        """
        source = iter(tasks)
        ahead: deque[ConvertTask] = deque()
        exhausted = False

        def pull() -> None:
            nonlocal exhausted
            task = next(source, None)
            exhausted = task is None
            ahead.extend([task] if task is not None else [])

        try:
            while True:
                while len(self._busy) < self.jobs and (ahead or not exhausted):
                    if not ahead or (not exhausted and not self._idle and self._zygote_starting()):
                        pull()  # hash the next model while the zygote imports
                    else:
                        self._start(ahead.popleft())
                if not ahead and not exhausted:
                    pull()
                if exhausted and not ahead:  # let idle workers exit now, while the last conversions run
                    for worker in self._idle:
                        worker.release()
                if not self._busy:
                    break
                finished = self._wait()
                while len(self._busy) < self.jobs and ahead:
                    self._start(ahead.popleft())
                yield from finished
        finally:
            self.close()

    def _zygote_starting(self) -> bool:
        return self._zygote is not None and self._zygote.alive and not self._zygote.ready()

    def _start(self, task: ConvertTask) -> None:
        if not self._idle:
            self.prepare()
        worker = self._idle.pop() if self._idle else _Worker(self._zygote)
        worker.start(task, self.timeout)
        self._busy.append(worker)

    def _wait(self) -> list[tuple[ConvertTask, Converted | ConvertFailure]]:
        """The outcomes of the busy workers that finish (or die, or time out) next."""
        wait_for = min(w.deadline for w in self._busy) - time.monotonic()
        # A dead worker's result pipe reads as EOF: it wakes this wait as a result does.
        from multiprocessing.connection import wait

        wait([w.results for w in self._busy], timeout=max(0.0, min(wait_for, 3600.0)))
        finished = []
        for worker in list(self._busy):
            outcome = _poll(worker)
            if outcome is None:
                continue
            self._busy.remove(worker)
            task, worker.task = worker.task, None
            assert task is not None
            if isinstance(outcome, _Dead):
                outcome = ConvertFailure(outcome.cause)
            else:
                self._idle.append(worker)
            finished.append((task, outcome))
        return finished

    def close(self) -> None:
        """Stop every worker (killing busy ones) and the zygote."""
        while self._busy:
            self._busy.pop().kill()
        for worker in self._idle:
            worker.release()
        while self._idle:
            self._idle.pop().join()
        if self._zygote is not None:
            self._zygote.close()
            self._zygote = None


@dataclass(frozen=True)
class _Dead:
    cause: str


def _poll(worker: _Worker) -> Converted | ConvertFailure | _Dead | None:
    """The worker's result if it has one; ``_Dead`` after a crash or timeout (the worker is gone)."""
    try:
        if worker.results.poll():
            result: Converted | ConvertFailure = worker.results.recv()
            return result
    except (EOFError, OSError):
        cause = _crash_cause(worker.wait())
        worker._close()  # noqa: SLF001 -- the pool ends its workers
        return _Dead(cause)
    if time.monotonic() >= worker.deadline:
        worker.kill()
        return _Dead(f"conversion timed out after {worker.timeout:g}s")
    return None
