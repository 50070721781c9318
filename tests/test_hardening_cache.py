"""A tampered, garbage or half-written cache is detected and rebuilt, never used; dead runs' temp files go."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from ort_reduced_build._fileio import integrity_digest
from ort_reduced_build.cache import Cache
from ort_reduced_build.settings import ConvertOptions

from tests._hardening import ort_is_complete, tiny_mlp, verify_cache, write


def _flip_byte_keep_stamp(entry: Path) -> None:
    """Same size, mtime put back: only ctime (which no user call can set) tells."""
    ort_file = entry / "model.ort"
    st = ort_file.stat()
    data = bytearray(ort_file.read_bytes())
    data[len(data) // 2] ^= 0xFF
    with ort_file.open("r+b") as f:
        f.write(data)
    os.utime(ort_file, ns=(st.st_atime_ns, st.st_mtime_ns))


def _truncate_ort(entry: Path) -> None:
    ort_file = entry / "model.ort"
    ort_file.write_bytes(ort_file.read_bytes()[:100])


def _edit_usage(entry: Path) -> None:
    (entry / "usage.config").write_text("ai.onnx;1;Evil\n")


def _manifest(entry: Path, change: Callable[[dict], object]) -> None:
    path = entry / "manifest.json"
    manifest = json.loads(path.read_text())
    change(manifest)
    path.write_text(json.dumps(manifest))


def _garbage_manifest(entry: Path) -> None:
    (entry / "manifest.json").write_bytes(b"\x00{garbage")


def _manifest_lists_nothing(entry: Path) -> None:
    _manifest(entry, lambda m: m.update(files={}))


def _manifest_points_outside(entry: Path) -> None:
    outside = entry.parents[4] / "outside.bin"  # entry = <tmp>/cache/v2/objects/xx/<key>
    digest = integrity_digest(outside.read_bytes())
    _manifest(entry, lambda m: m["files"].update({"../../../../../outside.bin": [digest, [0, 0, 0, 0]]}))


def _consistent_but_invalid_usage(entry: Path) -> None:
    """A careful tamperer also fixes the manifest's digest: the grammar check still refuses the text."""
    text = b"ai.onnx;1;Re;lu\n"
    (entry / "usage.config").write_bytes(text)
    _manifest(entry, lambda m: m["files"]["usage.config"].__setitem__(0, integrity_digest(text)))


def _entry_replaced_by_a_file(entry: Path) -> None:
    for f in entry.iterdir():
        f.unlink()
    entry.rmdir()
    entry.write_text("not a directory")


def _ort_missing(entry: Path) -> None:
    (entry / "model.ort").unlink()


def _terminal_escape_in_warnings(entry: Path) -> None:
    _manifest(entry, lambda m: m.update(warnings=["\x1b[2J\nwarning: all good"]))


TAMPERINGS = [
    _flip_byte_keep_stamp,
    _truncate_ort,
    _edit_usage,
    _garbage_manifest,
    _manifest_lists_nothing,
    _manifest_points_outside,
    _consistent_but_invalid_usage,
    _entry_replaced_by_a_file,
    _ort_missing,
    _terminal_escape_in_warnings,
]


def test_every_tampered_entry_is_rebuilt_never_used(tmp_path: Path, cli) -> None:
    project, cache = tmp_path / "project", tmp_path / "cache"
    models = [
        write(project / f"models/{t.__name__.lstrip('_')}.onnx", tiny_mlp(20 + i)) for i, t in enumerate(TAMPERINGS)
    ]
    outside = write(tmp_path / "outside.bin", b"never to be touched")
    r = cli("convert", "models", "-o", "out", cwd=project)
    assert r.returncode == 0, r.stderr
    config = (project / "out/required_operators_and_types.config").read_bytes()
    keys = [Cache(cache).key(m, "Fixed", ConvertOptions()) for m in models]
    for key, tamper in zip(keys, TAMPERINGS, strict=True):
        tamper(cache / "v2/objects" / key[:2] / key)
    for index in (cache / "v2/stat").iterdir():  # the stat index and external-data memos too
        index.write_text('{"stamp": "garbage", "sha256": 7}' if index.name.startswith("external") else "[1, 2]")
    outside_before = outside.stat()

    r = cli("convert", "models", "-o", "out", cwd=project)
    assert r.returncode == 0, r.stderr
    assert f"({len(TAMPERINGS)} converted, 0 cached), 0 failed" in r.stderr
    assert "\x1b" not in r.stderr and "all good" not in r.stderr
    assert (project / "out/required_operators_and_types.config").read_bytes() == config
    for ort_file in (project / "out").glob("*.ort"):  # the tampered .ort was linked here: replaced now
        assert ort_is_complete(ort_file), ort_file
    assert verify_cache(cache) == len(TAMPERINGS)
    assert outside.read_bytes() == b"never to be touched"
    assert outside.stat().st_mtime_ns == outside_before.st_mtime_ns

    r = cli("convert", "models", "-o", "out", cwd=project)  # and the rebuilt entries are hits again
    assert f"0 converted, {len(TAMPERINGS)} cached" in r.stderr, r.stderr


def _python(code: str, *args: str | Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", code, *map(str, args)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def test_only_dead_runs_scratch_dirs_are_swept(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    hold = (
        "import os, signal, sys, time; from pathlib import Path; from ort_reduced_build.cache import Cache; "
        "print(Cache(Path(sys.argv[1])).staging_dir(), flush=True); "
    )
    live = _python(hold + "time.sleep(60)", cache)
    dead = _python(hold + "os.kill(os.getpid(), signal.SIGKILL)", cache)
    try:
        live_dir = Path(live.stdout.readline().strip()).parent  # type: ignore[union-attr]
        dead.wait(30)
        dead_dir = Path(dead.communicate()[0].strip()).parent
        tmp = cache / "v2/tmp"
        legacy = write(tmp / "entry-from-an-older-version/model.ort", b"x").parent
        recent = write(tmp / ".foreign.tmp", b"x")
        old = time.time() - 2 * 86400
        for path in (live_dir, dead_dir, legacy):
            os.utime(path, (old, old))
        sweep = "import sys; from pathlib import Path; from ort_reduced_build._scratch import sweep; "
        out, err = _python(sweep + "print(*sweep(Path(sys.argv[1])))", tmp).communicate(timeout=60)
        assert sorted(out.split()) == sorted([dead_dir.name, legacy.name]), err
        assert live_dir.is_dir() and recent.is_file()
    finally:
        live.send_signal(signal.SIGKILL)
        live.communicate()


def test_only_files_new_to_the_stat_index_are_hashed(tmp_path: Path) -> None:
    """``before_hashing`` (the pipeline starts its workers there) fires once per new or changed file."""
    calls: list[None] = []
    model = write(tmp_path / "model.onnx", b"first")
    cache = Cache(tmp_path / "cache", before_hashing=lambda: calls.append(None))
    try:
        first = cache.digest(model)
        assert cache.digest(model) == first and len(calls) == 1
        write(model, b"second")
        assert cache.digest(model) != first and len(calls) == 2
    finally:
        cache.close()
    later = Cache(tmp_path / "cache", before_hashing=lambda: calls.append(None))
    try:
        assert later.digest(model) and len(calls) == 2  # the index outlives the run
    finally:
        later.close()
