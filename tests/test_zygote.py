"""The zygote that forks conversion workers (Linux): pids, exit codes, and the fallback when it is gone."""

from __future__ import annotations

import os
import signal
import sys
import time
from multiprocessing.connection import Connection
from pathlib import Path

import pytest
from ort_reduced_build.engine.convert import Workers, _Worker
from ort_reduced_build.engine.workers import Zygote

WORKER = "ort_reduced_build.engine.tasks:worker_main"

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the zygote forks workers on Linux only")


def _fork(zygote: Zygote) -> tuple[int, Connection]:
    task_r, task_w = os.pipe()
    result_r, result_w = os.pipe()
    try:
        pid = zygote.fork(task_r, result_w)
    finally:
        os.close(task_r)
        os.close(result_w)
    os.close(result_r)
    return pid, Connection(task_w, readable=False)


def test_forked_workers_report_how_they_ended() -> None:
    zygote = Zygote(WORKER)
    try:
        done, tasks = _fork(zygote)
        killed, _ = _fork(zygote)
        assert len({done, killed, zygote.process.pid, os.getpid()}) == 4
        tasks.send(None)  # a worker's request to exit
        os.kill(killed, signal.SIGKILL)
        assert zygote.exitcode(killed, timeout=30) == -signal.SIGKILL
        assert zygote.exitcode(done, timeout=30) == 0
        status = Path(f"/proc/{zygote.process.pid}/status").read_text()
        assert "Threads:\t1\n" in status  # no threads: forking it is safe
    finally:
        zygote.close()
    assert zygote.process.returncode == 0


def test_workers_are_spawned_when_the_zygote_is_gone() -> None:
    zygote = Zygote(WORKER)
    zygote.process.kill()
    zygote.process.wait()
    worker = _Worker(zygote)
    try:
        assert worker.process is not None  # a fresh interpreter instead
        assert not zygote.alive
    finally:
        worker.release()
        worker.join()
        zygote.close()
    assert worker.returncode == 0


def test_zygote_says_when_it_is_ready_and_one_that_never_forked_is_killed() -> None:
    starting = Zygote(WORKER)
    starting.close()  # mid-import: killed, not waited for
    assert starting.process.returncode == -signal.SIGKILL
    zygote = Zygote(WORKER)
    try:
        deadline = time.monotonic() + 60
        while not zygote.ready():
            assert time.monotonic() < deadline, "the zygote never said it was ready"
            time.sleep(0.01)
        assert zygote.ready()
        assert zygote.alive
    finally:
        zygote.close()
    assert zygote.process.returncode == -signal.SIGKILL


def test_workers_prepared_for_conversions_that_never_come_leave_no_process() -> None:
    """Every model turned out cached after the zygote was started on a stat-index miss."""
    workers = Workers(2, None)
    workers.prepare()
    zygote = workers._zygote
    assert zygote is not None
    workers.close()
    workers.close()  # twice is fine (the pipeline's cleanup after run's)
    assert zygote.process.returncode is not None


def report_heap_reuse(fd: int, parent: int) -> None:
    """(In a fresh interpreter.) Write how many page faults 20 rounds of allocating, touching and freeing
    four 8 MiB blocks cost: with freed memory kept for reuse, only the first round faults its pages in."""
    import ctypes
    import resource

    libc = ctypes.CDLL("libc.so.6")
    libc.malloc.restype = ctypes.c_void_p
    libc.malloc.argtypes = [ctypes.c_size_t]
    libc.free.argtypes = [ctypes.c_void_p]
    libc.memset.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_size_t]
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(20):
        blocks = [libc.malloc(8 << 20) for _ in range(4)]
        for block in blocks:
            libc.memset(block, 1, 8 << 20)
        for block in blocks:
            libc.free(block)
    os.write(fd, str(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before).encode())
    os.close(fd)


def _faults_in_worker_interpreter(monkeypatch: pytest.MonkeyPatch, tunables: str | None) -> int:
    from ort_reduced_build.engine.workers import start_interpreter

    if tunables is None:
        monkeypatch.delenv("GLIBC_TUNABLES", raising=False)
    else:
        monkeypatch.setenv("GLIBC_TUNABLES", tunables)
    read, write = os.pipe()
    process = start_interpreter("tests.test_zygote", "report_heap_reuse", (write,))
    os.close(write)
    with os.fdopen(read) as pipe:
        faults = pipe.read()
    assert process.wait(timeout=60) == 0
    return int(faults)


@pytest.mark.skipif(os.confstr("CS_GNU_LIBC_VERSION") is None, reason="the malloc tunables are glibc's")
def test_workers_keep_freed_memory_for_reuse_unless_the_caller_set_glibc_tunables(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pages = 4 * (8 << 20) // os.sysconf("SC_PAGE_SIZE")  # one round's blocks
    reused = _faults_in_worker_interpreter(monkeypatch, None)
    returned = _faults_in_worker_interpreter(monkeypatch, "")  # the caller's (empty) setting: glibc's defaults
    assert reused < 3 * pages, reused  # the first round faults its pages in, the other 19 reuse them
    assert returned > 10 * pages, returned
