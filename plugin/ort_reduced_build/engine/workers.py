"""A process that forks conversion workers (Linux): each starts with numpy and this package imported.

A worker started as a fresh interpreter spends about 0.3 s of CPU on start-up and imports before its
first conversion, and on a 2-core machine that CPU is taken from the conversions. The zygote pays the
interpreter start and the imports of numpy and this package once; a forked worker then imports only
onnxruntime itself. The zygote never imports onnxruntime: its extension module starts a thread at
import, and a process with threads must not fork. numpy's BLAS is kept single-threaded (``start_interpreter``)
for the same reason, and the zygote does nothing but fork.

Protocol on one Unix socket: the zygote says ``R`` once its imports are done; the parent sends one byte
with two file descriptors (the worker's task pipe and result pipe); the zygote answers ``P <pid>`` once
forked, and ``X <pid> <exit code>`` when it has reaped a worker (the workers are its children, not the
parent's).
"""

from __future__ import annotations

import importlib
import os
import select
import signal
import socket
import struct
import subprocess
import sys
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path

__all__ = ["Zygote", "bind_to_parent", "start_interpreter", "zygote_main"]

_MESSAGE = struct.Struct("!cqi")
_MALLOC = "glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=67108864"
"""glibc's adaptive thresholds at the values they would reach, from the start: blocks up to 32 MiB come
from the heap, and up to 64 MiB of freed heap is kept for reuse instead of being handed back. Larger
blocks are still mapped and unmapped. Other C libraries ignore the variable."""


def start_interpreter(
    module: str, function: str, fds: tuple[int, ...], extra: tuple[str, ...] = ()
) -> subprocess.Popen[bytes]:
    """A fresh interpreter (this one's ``sys.path``) calling ``module.function(*fds, parent pid, *extra)``.

    Its environment keeps numpy's BLAS single-threaded: workers never use it, and the zygote must not
    have threads when it forks. Unless the caller set ``GLIBC_TUNABLES``, glibc's malloc keeps freed memory
    for reuse (``_MALLOC``): a conversion allocates and frees its model's size several times over (parse,
    optimize, serialize), and every page handed back is faulted in and zeroed again by the next allocation.
    """
    call = f"{function}(*{fds!r}, {os.getpid()}, *{extra!r})"
    code = f"import sys; sys.path[:] = {sys.path!r}; from {module} import {function}; {call}"
    env = {"GLIBC_TUNABLES": _MALLOC, **os.environ}
    env |= dict.fromkeys(("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"), "1")
    return subprocess.Popen([sys.executable, "-c", code], pass_fds=fds, stdin=subprocess.DEVNULL, env=env)


class Zygote:
    """The parent's end: ``fork`` a worker, learn its ``exitcode``."""

    def __init__(self, worker: str) -> None:
        """``worker``: ``module:function`` that each forked worker runs on its two pipe ends and our pid."""
        ours, theirs = socket.socketpair()
        try:
            self.process = start_interpreter(__name__, "zygote_main", (theirs.fileno(),), (worker,))
        finally:
            theirs.close()
        self._sock = ours
        self._exits: dict[int, int] = {}
        self._forked = False
        self._ready = False
        self.alive = True

    def ready(self) -> bool:
        """Whether it can fork at once (its imports are done), without waiting to learn it."""
        while not self._ready and self.alive and select.select([self._sock], [], [], 0)[0]:
            try:
                self._record(*self._receive())  # a message, once it starts, arrives whole
            except OSError:
                self.alive = False
        return self._ready

    def fork(self, task_fd: int, result_fd: int) -> int:
        """A worker running the ``worker`` function on these pipe ends (the caller closes its copies); its pid.

        ``OSError`` when the zygote is gone.
        """
        try:
            socket.send_fds(self._sock, [b"F"], [task_fd, result_fd])
            while True:
                kind, pid, code = self._receive()
                if kind == b"P":
                    self._forked = True
                    return pid
                self._record(kind, pid, code)
        except OSError:
            self.alive = False
            raise

    def exitcode(self, pid: int, timeout: float | None = None) -> int | None:
        """The worker's exit code (negative: killed by that signal) once it is reaped; ``None`` if unknown."""
        self._sock.settimeout(timeout)
        try:
            while pid not in self._exits:
                self._record(*self._receive())
        except OSError:  # the zygote died (it reaps no more), or the timeout passed
            return None
        finally:
            self._sock.settimeout(None)
        return self._exits.pop(pid)

    def _record(self, kind: bytes, pid: int, code: int) -> None:
        if kind == b"R":
            self._ready = True
        elif kind == b"X":
            self._exits[pid] = code

    def _receive(self) -> tuple[bytes, int, int]:
        data = b""
        while len(data) < _MESSAGE.size:
            chunk = self._sock.recv(_MESSAGE.size - len(data))
            if not chunk:
                self.alive = False
                raise ConnectionError("the zygote exited")
            data += chunk
        kind, pid, code = _MESSAGE.unpack(data)
        return kind, pid, code

    def close(self) -> None:
        """Let the zygote exit (it does when its socket closes) and reap it.

        One that never forked may still be importing (started ahead, then every model was cached): it is
        killed rather than waited for.
        """
        self._sock.close()
        if not self._forked:
            self.process.kill()
        try:
            self.process.wait(5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def zygote_main(sock_fd: int, parent: int, worker: str) -> None:
    """Fork a worker per request, running ``worker`` (``module:function``); report each worker's pid and,
    once reaped, its exit code."""
    module, _, name = worker.partition(":")
    worker_main = getattr(importlib.import_module(module), name)

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    bind_to_parent(parent)
    import numpy as np  # noqa: F401 -- the point: forked workers start with it imported

    if sum(1 for _ in Path("/proc/self/task").iterdir()) > 1:
        os._exit(3)  # something started a thread: forking is unsafe; the parent starts workers itself
    sock = socket.socket(fileno=sock_fd)
    with suppress(OSError):  # the parent closed its end (or died): nobody to fork for or report to
        sock.sendall(_MESSAGE.pack(b"R", 0, 0))
        _serve(sock, worker_main)
    os._exit(0)


def bind_to_parent(parent: int | None) -> None:
    """Die with the parent (even on SIGKILL, mid-conversion) and let no model file steer onnxruntime.

    EOF on the task pipe only reaches an idle worker; one inside a hanging conversion needs
    ``PR_SET_PDEATHSIG``. ``ORT_LOAD_CONFIG_FROM_MODEL`` would let a model's metadata set session
    options (profiling files in the working directory, another optimization level than the cache key's).
    """
    os.environ.pop("ORT_LOAD_CONFIG_FROM_MODEL", None)
    if parent is None or not sys.platform.startswith("linux"):
        return
    import ctypes

    pr_set_pdeathsig = 1
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:  # the parent died before the prctl: nobody will read our results
        os._exit(0)


def _serve(sock: socket.socket, worker_main: Callable[[int, int, int], None]) -> None:
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_r, False)
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)  # a handler, so a SIGCHLD writes to the wakeup fd
    me = os.getpid()
    watched: list[socket.socket | int] = [sock, wake_r]
    while True:
        ready, _, _ = select.select(watched, [], [])
        if wake_r in ready:
            with suppress(BlockingIOError):
                while os.read(wake_r, 512):
                    pass
            _reap(sock)
        if sock in ready:
            message, fds, _, _ = socket.recv_fds(sock, 1, 2)
            if not message or len(fds) != 2:
                return  # the parent is done
            pid = os.fork()
            if pid == 0:
                signal.set_wakeup_fd(-1)
                signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                for fd in (wake_r, wake_w):
                    os.close(fd)
                sock.close()
                try:
                    worker_main(fds[0], fds[1], me)
                finally:
                    os._exit(1)  # never back into this loop
            for fd in fds:
                os.close(fd)
            sock.sendall(_MESSAGE.pack(b"P", pid, 0))


def _reap(sock: socket.socket) -> None:
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        sock.sendall(_MESSAGE.pack(b"X", pid, os.waitstatus_to_exitcode(status)))
