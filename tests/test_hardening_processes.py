"""Processes: no worker outlives its CLI, a killed run never leaves a partial output, concurrent runs agree.

Every CLI here runs with a unique environment tag, so its workers are found through /proc even after
the CLI died and they were re-parented.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from ort_reduced_build.engine.analyze import analyze_ort
from ort_reduced_build.engine.cache import LAYOUT

from tests import modelgen
from tests._hardening import Tagged, one_node_model, ort_is_complete, survivors, temp_leftovers, tiny_mlp, verify_cache
from tests._hardening import write as write_file


def _project(root: Path, copies: int = 0) -> Path:
    """Five models of different conversion times (control flow is the slowest), and ``copies`` duplicates."""
    for i in range(3):
        write_file(root / f"models/mlp_{i}.onnx", tiny_mlp(10 + i))
    modelgen.save(modelgen.control_flow(), root / "models/flow/control_flow.onnx")
    modelgen.save(modelgen.cnn((4,), 8), root / "models/vision/cnn.onnx")
    for i in range(copies):  # same bytes: converted once, but each written to its own output path
        write_file(root / f"models/copies/copy_{i:02}.onnx", tiny_mlp(10 + i % 3))
    return root


def _reference(project: Path, tmp_path: Path) -> tuple[Path, float]:
    """A clean, uninterrupted conversion of the project (its own cache), and its wall time."""
    start = time.monotonic()
    run = Tagged(["convert", "models", "-o", "ref", "-j", "2"], cwd=project, cache=tmp_path / "ref-cache")
    rc, err = run.finish()
    assert rc == 0, err
    return project / "ref", time.monotonic() - start


def _assert_outputs_whole(out: Path, ref: Path) -> None:
    """Every file at a final path is complete: the config byte-identical, each .ort loadable with the right ops."""
    checked: dict[tuple[int, int], object] = {}  # outputs are hard links of cache entries: check each file once
    for path in sorted(p for p in out.rglob("*") if p.is_file()):
        rel = path.relative_to(out)
        if path.name.startswith("."):
            assert ".ortrb-" in path.name, rel  # only our own temp files may be left beside outputs
            continue
        if path.suffix == ".config":
            assert path.read_bytes() == (ref / rel).read_bytes(), f"{rel}: partial or wrong config"
            continue
        assert path.suffix == ".ort", rel
        st = path.stat()
        if (st.st_dev, st.st_ino) not in checked:
            assert ort_is_complete(path), f"{rel}: partial .ort at a final path"
            checked[st.st_dev, st.st_ino] = analyze_ort(path).config
        assert checked[st.st_dev, st.st_ino] == analyze_ort(ref / rel).config, rel


def _hang_project(root: Path) -> Path:
    graph_model = one_node_model("Hang", "test.crash", (("", 17), ("test.crash", 1)))
    write_file(root / "models/hang.onnx", graph_model)
    write_file(root / "models/mlp.onnx", tiny_mlp(3))
    return root


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM, signal.SIGINT], ids=lambda s: s.name)
def test_no_worker_outlives_the_cli_interrupted_mid_conversion(
    tmp_path: Path, custom_op_library: Path, sig: signal.Signals
) -> None:
    project = _hang_project(tmp_path / "project")
    config = project / "c.config"
    config.write_bytes(b"# the previous config\n")
    run = Tagged(
        ["config", "models", "-o", config, "--custom-op-library", custom_op_library, "-j", "2"],
        cwd=project,
        cache=tmp_path / "cache",
    )

    def hanging() -> bool:  # a worker has loaded the library: it is inside the conversion that never returns
        for pid in run.workers():
            try:
                if custom_op_library.name in Path(f"/proc/{pid}/maps").read_text():
                    return True
            except OSError:
                pass
        return False

    run.wait_for(hanging)
    time.sleep(0.5)
    run.proc.send_signal(sig)
    rc, err = run.finish(timeout=30)  # returns only once no worker holds the CLI's stderr pipe
    assert survivors(run) == []
    if sig == signal.SIGINT:
        assert rc == 130, err
        assert err.strip().splitlines()[-1] == "error: interrupted", err
    else:
        assert rc == -sig
    assert config.read_bytes() == b"# the previous config\n"


@pytest.fixture
def other_fs_dir(tmp_path: Path) -> Iterator[Path]:
    """A directory on another file system than ``tmp_path`` if there is one (tmpfs): outputs are then copied
    from the cache through temp files, the slower path a kill is likelier to interrupt."""
    shm = Path("/dev/shm")
    if shm.is_dir() and os.access(shm, os.W_OK) and shm.stat().st_dev != tmp_path.stat().st_dev:
        path = Path(tempfile.mkdtemp(prefix="orb-test-", dir=shm))
        yield path
        shutil.rmtree(path, ignore_errors=True)
    else:
        yield tmp_path / "other"


def test_sigkill_at_random_points_never_leaves_a_partial_output(tmp_path: Path, other_fs_dir: Path) -> None:
    project = _project(tmp_path / "project", copies=30)
    ref, wall = _reference(project, tmp_path)
    cache, out = other_fs_dir / "cache", project / "out"
    rng = random.Random(6)  # seeded: the same kill points (as fractions of a clean run) every time
    # Random points over a run (start-up, hashing, conversion, publishing), then twice the moment the
    # first output appears (mid-way through writing them: the window random points rarely hit).
    for point in (0.05, *sorted(rng.uniform(0.1, 1.0) for _ in range(4)), "first output", "first output"):
        for entry in sorted((cache / LAYOUT / "objects").glob("*/*")):  # evict some entries: real work each time
            if rng.random() < 0.6:
                shutil.rmtree(entry)
        if point == "first output":
            shutil.rmtree(out, ignore_errors=True)
        run = Tagged(["convert", "models", "-o", "out", "-j", "2"], cwd=project, cache=cache)
        if isinstance(point, float):
            time.sleep(point * wall)
        else:
            run.wait_for(lambda: out.is_dir() and any(out.iterdir()), timeout=60, poll=0.001)
        run.proc.kill()
        run.finish(timeout=30)
        assert survivors(run) == [], f"a worker survived a SIGKILL at {point} of a run"
        _assert_outputs_whole(out, ref)

    # Killed runs leave scratch dirs and temp files; once old enough (or their process is gone, for the
    # hard-link temps that share the cache file's mtime) a later run sweeps them.
    tmp = cache / LAYOUT / "tmp"
    for leftover in [*tmp.iterdir(), *out.rglob(".*.tmp")]:
        os.utime(leftover, (time.time() - 3600, time.time() - 3600))
    run = Tagged(["convert", "models", "-o", "out", "-j", "2"], cwd=project, cache=cache)
    rc, err = run.finish()
    assert rc == 0, err
    assert "35 model(s)" in err
    assert "0 failed" in err
    _assert_outputs_whole(out, ref)
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*.ort")) == sorted(
        p.relative_to(ref).as_posix() for p in ref.rglob("*.ort")
    )
    assert temp_leftovers(out) == []  # temp files of killed runs beside outputs are swept too
    assert list(tmp.iterdir()) == []
    verify_cache(cache)


def test_eight_concurrent_runs_share_one_cache_and_one_output_dir(tmp_path: Path) -> None:
    project = _project(tmp_path / "project")
    ref, _ = _reference(project, tmp_path)
    cache = tmp_path / "shared-cache"
    runs = []
    for i in range(8):
        own = ["--config", f"out/own_{i}.config"] if i % 2 else []  # half write the shared config path
        runs.append(Tagged(["convert", "models", "-o", "out", "-j", "1", *own], cwd=project, cache=cache))
    outcomes = [run.finish() for run in runs]
    for rc, err in outcomes:
        assert rc == 0, err
        assert "5 model(s)" in err
        assert "0 failed" in err
    for run in runs:
        assert survivors(run) == []
    out = project / "out"
    reference_config = (ref / "required_operators_and_types.config").read_bytes()
    assert (out / "required_operators_and_types.config").read_bytes() == reference_config
    for i in range(1, 8, 2):
        assert (out / f"own_{i}.config").read_bytes() == reference_config
    for path in ref.rglob("*.ort"):  # no lost writes: every model's .ort is there, whole
        rel = path.relative_to(ref)
        assert ort_is_complete(out / rel)
        assert analyze_ort(out / rel).config == analyze_ort(path).config
    assert temp_leftovers(project) == []
    assert verify_cache(cache) == 5  # one entry per model, each re-verified by hash
    assert list((cache / LAYOUT / "tmp").iterdir()) == []
