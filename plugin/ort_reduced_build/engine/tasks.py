"""What a worker does with a task: its loop (``worker_main``, started by name from ``convert.Workers``) and
the choice between converting an ``.onnx`` (``convert.convert_one``) and deriving again what a given
``.ort`` with saved runtime optimizations needs (``replay.rederive``, which converts through ``convert``).
"""

from __future__ import annotations

import os
import signal

from .convert import Converted, ConvertFailure, ConvertTask, convert_one
from .replay import rederive
from .workers import bind_to_parent

__all__ = ["perform", "worker_main"]


def perform(task: ConvertTask) -> Converted:
    """Convert ``task``'s model, or, for a given ``.ort``, derive its needs again (``replay.rederive``)."""
    return rederive(task) if task.model.suffix.lower() == ".ort" else convert_one(task)


def worker_main(task_fd: int, result_fd: int, parent: int | None = None) -> None:
    """A worker's loop: receive a task, perform it, send the result; ``None`` ends it."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when workers stop
    bind_to_parent(parent)
    from multiprocessing.connection import Connection

    tasks = Connection(task_fd, writable=False)
    results = Connection(result_fd, readable=False)
    while True:
        try:
            task = tasks.recv()
        except (EOFError, OSError):
            os._exit(0)
        if task is None:
            os._exit(0)  # skip interpreter and onnxruntime teardown: nothing is left to flush
        try:
            result: Converted | ConvertFailure = perform(task)
        except Exception as exc:  # noqa: BLE001 -- any failure of the conversion is the task's result
            import traceback

            result = ConvertFailure(_describe(exc), traceback.format_exc())
        results.send(result)


def _describe(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 600 else text[:600] + "..."
