""".onnx -> .ort conversion in isolated worker processes.

Each conversion does what ORT's ``convert_onnx_models_to_ort`` does (same session options), in a
spawned worker. Workers are reused; one that crashes (segfault, abort, out of memory) or passes the
per-model timeout is killed and replaced, and only its model is reported failed.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import multiprocessing.connection
import os
import signal
import time
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .analyze import ModelUsage, analyze_ort
from .config import merge
from .settings import ConvertOptions

__all__ = ["ConvertFailure", "ConvertTask", "convert_one", "default_jobs", "run_conversions"]

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
    """Why a conversion produced nothing: one line, no traceback."""

    cause: str


def default_jobs() -> int:
    """The CPUs this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def convert_one(task: ConvertTask) -> ModelUsage:
    """Convert one model exactly as ORT's converter does and return its usage (runs in a worker)."""
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
    usages = [analyze_ort(ort_path)]
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
    return ModelUsage(merge(u.config for u in usages), warnings)


def _session(task: ConvertTask, output: Path, entries: dict[str, str]) -> None:
    import onnxruntime as ort

    opts = task.options
    so = ort.SessionOptions()
    so.optimized_model_filepath = str(output)
    so.graph_optimization_level = getattr(ort.GraphOptimizationLevel, _LEVELS[opts.optimization_level])
    so.intra_op_num_threads = task.threads
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


def _describe(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 600 else text[:600] + "..."


def _worker_main(conn: multiprocessing.connection.Connection) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when workers stop
    while True:
        try:
            task = conn.recv()
        except (EOFError, OSError):
            return
        if task is None:
            return
        try:
            result: ModelUsage | ConvertFailure = convert_one(task)
        except Exception as exc:
            result = ConvertFailure(_describe(exc))
        conn.send(result)


class _Worker:
    def __init__(self, ctx: Any) -> None:
        self.conn, child = ctx.Pipe()
        self.process = ctx.Process(target=_worker_main, args=(child,), daemon=True)
        self.process.start()
        child.close()
        self.task: ConvertTask | None = None
        self.timeout: float | None = None
        self.deadline = float("inf")

    def stop(self) -> None:
        with contextlib.suppress(OSError):
            self.conn.send(None)
        self.process.join(2)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()
        self.conn.close()

    def kill(self) -> None:
        self.process.kill()
        self.process.join()
        self.conn.close()


def _crash_cause(exitcode: int | None) -> str:
    if exitcode is not None and exitcode < 0:
        name = signal.Signals(-exitcode).name
        hint = "; out of memory?" if -exitcode == signal.SIGKILL else ""
        return f"conversion crashed ({name}{hint})"
    return f"conversion process exited with code {exitcode}"


def run_conversions(
    tasks: Iterable[ConvertTask], jobs: int, timeout: float | None
) -> Iterator[tuple[ConvertTask, ModelUsage | ConvertFailure]]:
    """Run ``tasks`` on up to ``jobs`` spawned workers; yield each task with its usage or failure."""
    pending = deque(tasks)
    ctx = multiprocessing.get_context("spawn")
    idle: list[_Worker] = []
    busy: list[_Worker] = []
    try:
        while pending or busy:
            while pending and len(busy) < jobs:
                worker = idle.pop() if idle else _Worker(ctx)
                worker.task = pending.popleft()
                worker.timeout = timeout
                worker.deadline = time.monotonic() + timeout if timeout else float("inf")
                worker.conn.send(worker.task)
                busy.append(worker)
            wait_for = min(w.deadline for w in busy) - time.monotonic()
            handles = [w.conn for w in busy] + [w.process.sentinel for w in busy]
            multiprocessing.connection.wait(handles, timeout=max(0.0, min(wait_for, 3600.0)))
            for worker in list(busy):
                outcome = _poll(worker)
                if outcome is None:
                    continue
                busy.remove(worker)
                task, worker.task = worker.task, None
                assert task is not None
                if isinstance(outcome, _Dead):
                    outcome = ConvertFailure(outcome.cause)
                else:
                    idle.append(worker)
                yield task, outcome
    finally:
        for worker in busy:
            worker.kill()
        for worker in idle:
            worker.stop()


@dataclass(frozen=True)
class _Dead:
    cause: str


def _poll(worker: _Worker) -> ModelUsage | ConvertFailure | _Dead | None:
    """The worker's result if it has one; ``_Dead`` after a crash or timeout (the worker is gone)."""
    try:
        if worker.conn.poll():
            result: ModelUsage | ConvertFailure = worker.conn.recv()
            return result
    except (EOFError, OSError):
        pass
    if not worker.process.is_alive():
        worker.process.join()
        cause = _crash_cause(worker.process.exitcode)
        worker.conn.close()
        return _Dead(cause)
    if time.monotonic() >= worker.deadline:
        worker.kill()
        return _Dead(f"conversion timed out after {worker.timeout:g}s")
    return None
