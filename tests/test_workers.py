"""Worker processes: forked from this process where that is safe (Linux, no other thread), else fresh
interpreters; what a forked worker inherits; how workers end."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from ort_reduced_build.convert import Converted, ConvertTask, Workers, _may_fork
from ort_reduced_build.settings import ConvertOptions

from tests._hardening import tiny_mlp, write

linux = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="workers are forked on Linux only")


_FORKING_CALLER = """
import json, os, signal, sys, time
from pathlib import Path
from ort_reduced_build.convert import _may_fork, _Worker

def targets(pid):  # what descriptors 3 and up point to: pipe:[inode], paths ...
    out = []
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        if int(fd.name) > 2:
            try:
                out.append(str(fd.readlink()))
            except FileNotFoundError:
                pass
    return out

held = open(sys.argv[1], "w")  # e.g. a cache lock: a worker must not keep it
report = {"may_fork": _may_fork()}
first = _Worker()
second = _Worker()  # forked while this process holds the first one's pipe ends
report["spawned"] = [w.process is not None for w in (first, second)]
deadline = time.monotonic() + 30
while any(str(Path(held.name).resolve()) in targets(w.pid) for w in (first, second)):
    if time.monotonic() > deadline:
        break
    time.sleep(0.01)
report["held"] = [str(Path(held.name).resolve()) in targets(w.pid) for w in (first, second)]
report["pipes"] = [len([t for t in targets(w.pid) if t.startswith("pipe:")]) for w in (first, second)]
first.release()
os.kill(second.pid, signal.SIGKILL)
report["exit"] = [first.wait(30), second.wait(30)]
print(json.dumps(report))
"""


@linux
def test_a_forked_worker_keeps_only_its_own_pipe_ends_and_reports_how_it_ended(tmp_path: Path) -> None:
    """In a fresh caller: this test process has imported onnxruntime, whose extension starts a thread."""
    run = subprocess.run(
        [sys.executable, "-c", _FORKING_CALLER, str(tmp_path / "held.lock")],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout)
    assert report["may_fork"] and report["spawned"] == [False, False]  # forked, not new interpreters
    assert report["held"] == [False, False]  # the caller's lock file is not kept open
    assert report["pipes"] == [2, 2]  # its task and result ends; none of the other worker's
    assert report["exit"] == [0, -signal.SIGKILL]


def test_workers_are_fresh_interpreters_while_another_thread_runs(tmp_path: Path) -> None:
    """A fork copies only the calling thread (a lock another one holds stays locked): a threaded caller,
    e.g. a notebook, gets workers started as new interpreters, and conversions work the same."""
    model = write(tmp_path / "mlp.onnx", tiny_mlp(1))
    stop = threading.Event()
    thread = threading.Thread(target=stop.wait)
    thread.start()
    try:
        assert not _may_fork()
        workers = Workers(1, None)
        workers.prepare()
        (worker,) = workers._idle
        assert worker.process is not None
        task = ConvertTask(model, "Fixed", ConvertOptions(), tmp_path / "staging")
        task.staging.mkdir()
        ((done, outcome),) = list(workers.run([task]))
    finally:
        stop.set()
        thread.join()
    assert done is task and isinstance(outcome, Converted), outcome
    assert outcome.usage.config.ops["ai.onnx"]  # the model's own operators, as any conversion finds them
    assert worker.returncode == 0


def test_a_worker_started_for_conversions_that_never_come_exits() -> None:
    """The pipeline starts one at a stat-index miss; then every model may turn out cached."""
    workers = Workers(2, None)
    workers.prepare()
    (worker,) = workers._idle
    workers.close()
    workers.close()  # twice is fine (the pipeline's cleanup after run's)
    assert worker.returncode == 0
