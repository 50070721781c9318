"""Shared helpers of the hardening suites: hostile inputs, process accounting, output integrity."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import NamedTuple

import onnx
from onnx import TensorProto, helper
from ort_reduced_build.engine.cache import LAYOUT
from ort_reduced_build.util.fileio import TEMP_MARK, file_integrity_digest

from tests import modelgen

CLI = [sys.executable, "-m", "ort_reduced_build"]


def one_node_model(op: str, domain: str = "", opsets: tuple[tuple[str, int], ...] = (("", 17),)) -> bytes:
    """A one-node float model ``y = op(x)``, serialized."""
    graph = helper.make_graph(
        [helper.make_node(op, ["x"], ["y"], domain=domain)],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid(d, v) for d, v in opsets])
    model.ir_version = 8
    return model.SerializeToString()


def tiny_mlp(seed: int) -> bytes:
    """A distinct small model per seed (fast to convert)."""
    return modelgen.mlp(features=4, hidden=4, seed=seed).SerializeToString()


def write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


# Ctrl-C at a terminal reaches the CLI with SIGINT's default action. Tests run from a shell's background job
# (``cmd &`` without job control) inherit SIGINT ignored, and Python keeps an ignored SIGINT ignored: the
# interrupted-run test would then wait for a CLI that never sees the signal. Exec the CLI with the default.
_SIGINT_DEFAULT = [
    sys.executable,
    "-c",
    (
        "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); "
        "os.execv(sys.executable, [sys.executable, *sys.argv[1:]])"
    ),
]


class Tagged:
    """A CLI process started with a unique environment tag, so that every worker it spawns can be found
    (workers inherit the environment; after the parent dies they are re-parented and ``ps`` trees break)."""

    def __init__(self, args: Sequence[str | Path], cwd: Path, cache: Path) -> None:
        self.tag = uuid.uuid4().hex
        env = {**os.environ, "ORT_REDUCED_BUILD_CACHE_DIR": str(cache), "ORB_TEST_TAG": self.tag}
        self.proc = subprocess.Popen(
            [*_SIGINT_DEFAULT, *CLI[1:], *map(str, args)],
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )

    def pids(self) -> list[int]:
        """Every live (not zombie) process carrying this tag: the CLI and its workers."""
        needle = f"ORB_TEST_TAG={self.tag}".encode()
        found = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                if needle not in (entry / "environ").read_bytes().split(b"\0"):
                    continue
                state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
            except OSError:
                continue
            if state != "Z":
                found.append(int(entry.name))
        return found

    def workers(self) -> list[int]:
        return [p for p in self.pids() if p != self.proc.pid]

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 60, poll: float = 0.05) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                self.kill_all()
                raise AssertionError("condition not reached in time")
            time.sleep(poll)

    def finish(self, timeout: float = 120) -> tuple[int, str]:
        """Wait for the CLI; its exit code and stderr (the pipes close only when no worker holds them)."""
        try:
            _, err = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill_all()
            raise
        return self.proc.returncode, err.decode(errors="replace")

    def kill_all(self) -> None:
        for pid in self.pids():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def survivors(tagged: Tagged, grace: float = 5.0) -> list[int]:
    """The tagged processes still alive ``grace`` seconds after the CLI ended (then killed, so none leak)."""
    deadline = time.monotonic() + grace
    while tagged.pids() and time.monotonic() < deadline:
        time.sleep(0.05)
    left = tagged.pids()
    tagged.kill_all()
    return left


def temp_leftovers(root: Path) -> list[str]:
    """Our temp files (``.NAME.ortrb-*``) anywhere below ``root``."""
    return sorted(p.relative_to(root).as_posix() for p in root.rglob(f"*{TEMP_MARK}*"))


def verify_cache(cache: Path) -> int:
    """Re-verify every cache entry by full hash against its manifest; the number of entries."""
    entries = list((cache / LAYOUT / "objects").glob("*/*"))
    for entry in entries:
        manifest = json.loads((entry / "manifest.json").read_text())
        assert {"model.ort", "usage.config"} <= set(manifest["files"]), entry
        for name, (digest, _stamp) in manifest["files"].items():
            assert file_integrity_digest(entry / name) == digest, f"{entry / name}: bytes differ from the manifest"
    return len(entries)


def ort_is_complete(path: Path) -> bool:
    """A ``.ort`` file onnxruntime loads in full (a truncated or partial one does not)."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.log_severity_level = 4
    try:
        ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    except Exception:  # noqa: BLE001 -- onnxruntime raises its own exception types
        return False
    return True


def ort_metadata_model(config: Mapping[str, object]) -> onnx.ModelProto:
    """The small MLP carrying ``ort_config`` metadata (what ORT_LOAD_CONFIG_FROM_MODEL=1 would apply)."""
    model = modelgen.mlp(features=4, hidden=4, seed=5)
    helper.set_model_props(model, {"ort_config": json.dumps(config)})
    return model


def mount_namespace(cwd: Path, env: dict[str, str], setup: list[str], *commands: Sequence[str | Path]) -> list[Result]:
    """Run ``commands`` (argv lists; ``CLI`` for ours) one after the other in a private user and mount
    namespace, after the ``setup`` shell lines (``read_only(dir)``, ``full_tmpfs(dir)``): real read-only and
    full file systems, which ``chmod`` cannot give a test run as root. Skips (and says why) where the
    kernel or the container does not allow unprivileged namespaces."""
    import shlex
    import shutil

    unshare = shutil.which("unshare")
    probe = subprocess.run([unshare or "unshare", *_UNSHARE, "true"], capture_output=True, text=True, check=False)
    if unshare is None or probe.returncode != 0:
        import pytest

        reason = f"needs unprivileged user+mount namespaces (unshare): {probe.stderr.strip() or 'not installed'}"
        print(reason, file=sys.stderr)
        pytest.skip(reason)
    with tempfile.TemporaryDirectory(prefix="ns-results-") as name:
        out = Path(name)
        lines = ["set -e", *setup, "set +e"]
        for i, argv in enumerate(commands):
            lines.append(f"{shlex.join(map(str, argv))} >{out}/{i}.out 2>{out}/{i}.err; echo $? >{out}/{i}.rc")
        subprocess.run([unshare, *_UNSHARE, "sh", "-c", "\n".join(lines)], cwd=cwd, env=env, check=True, timeout=600)
        return [
            Result(int((out / f"{i}.rc").read_text()), (out / f"{i}.out").read_text(), (out / f"{i}.err").read_text())
            for i in range(len(commands))
        ]


_UNSHARE = ["--user", "--map-root-user", "--mount"]


class Result(NamedTuple):
    returncode: int
    stdout: str
    stderr: str


def read_only(directory: Path) -> str:
    """A ``mount_namespace`` setup line: ``directory`` becomes read-only (a bind mount of itself)."""
    return f"mount --bind '{directory}' '{directory}' && mount -o remount,ro,bind '{directory}'"


def full_tmpfs(directory: Path, fill: bool = True) -> str:
    """A ``mount_namespace`` setup line: a 256 KiB tmpfs on ``directory``, filled up unless ``fill=False``
    (then a command ``["sh", "-c", shell_fill(directory)]`` fills it between commands)."""
    mount = f"mkdir -p '{directory}' && mount -t tmpfs -o size=256k tmpfs '{directory}'"
    return f"{mount} && {shell_fill(directory)}" if fill else mount


def shell_fill(directory: Path) -> str:
    """Shell: fill the file system holding ``directory`` to the last byte."""
    return f"dd if=/dev/zero of='{directory}/.fill' bs=4k 2>/dev/null || true"
