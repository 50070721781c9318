"""A tampered, garbage or half-written cache is detected and rebuilt, never used; dead runs' temp files go."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import blake3
from ort_reduced_build.engine.cache import LAYOUT, Cache
from ort_reduced_build.settings import ConvertOptions
from ort_reduced_build.util.fileio import integrity_digest

from tests import modelgen
from tests._hardening import (
    CLI,
    full_tmpfs,
    mount_namespace,
    one_node_model,
    ort_is_complete,
    read_only,
    shell_fill,
    tiny_mlp,
    verify_cache,
    write,
)
from tests.conftest import Cli


def _writable(path: Path) -> Path:
    """Entry files are read-only (0444): a tamperer makes one writable first."""
    path.chmod(0o644)
    return path


def _flip_byte_keep_stamp(entry: Path) -> None:
    """Same size, mtime put back: only ctime (which no user call can set) tells."""
    ort_file = _writable(entry / "model.ort")
    st = ort_file.stat()
    data = bytearray(ort_file.read_bytes())
    data[len(data) // 2] ^= 0xFF
    with ort_file.open("r+b") as f:
        f.write(data)
    os.utime(ort_file, ns=(st.st_atime_ns, st.st_mtime_ns))


def _truncate_ort(entry: Path) -> None:
    ort_file = _writable(entry / "model.ort")
    ort_file.write_bytes(ort_file.read_bytes()[:100])


def _edit_usage(entry: Path) -> None:
    _writable(entry / "usage.config").write_text("ai.onnx;1;Evil\n")


def _manifest(entry: Path, change: Callable[[dict[str, Any]], object]) -> None:
    path = entry / "manifest.json"
    manifest = json.loads(path.read_text())
    change(manifest)
    path.write_text(json.dumps(manifest))


def _garbage_manifest(entry: Path) -> None:
    (entry / "manifest.json").write_bytes(b"\x00{garbage")


def _manifest_lists_nothing(entry: Path) -> None:
    _manifest(entry, lambda m: m.update(files={}))


def _manifest_points_outside(entry: Path) -> None:
    outside = entry.parents[4] / "outside.bin"  # entry = <tmp>/cache/v3/objects/xx/<key>
    digest = integrity_digest(outside.read_bytes())
    _manifest(entry, lambda m: m["files"].update({"../../../../../outside.bin": [digest, [0, 0, 0, 0]]}))


def _consistent_but_invalid_usage(entry: Path) -> None:
    """A careful tamperer also fixes the manifest's digest: the grammar check still refuses the text."""
    text = b"ai.onnx;1;Re;lu\n"
    _writable(entry / "usage.config").write_bytes(text)
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


def _usage_is_a_symlink(entry: Path) -> None:
    """To the same bytes, outside the cache: still not a file the cache owns."""
    usage = entry / "usage.config"
    outside = write(entry.parents[4] / f"{entry.name}.usage.config", usage.read_bytes())
    usage.unlink()
    usage.symlink_to(outside)


def _manifest_is_a_symlink_to_a_fifo(entry: Path) -> None:
    """Reading through it would block forever."""
    fifo = entry.parents[4] / f"{entry.name}.fifo"
    os.mkfifo(fifo)
    (entry / "manifest.json").unlink()
    (entry / "manifest.json").symlink_to(fifo)


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
    _usage_is_a_symlink,
    _manifest_is_a_symlink_to_a_fifo,
]


def test_every_tampered_entry_is_rebuilt_never_used(tmp_path: Path, cli: Cli) -> None:
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
        tamper(cache / LAYOUT / "objects" / key[:2] / key)
    for index in (cache / LAYOUT / "stat").iterdir():  # the stat index and external-data memos too
        index.write_text('{"stamp": "garbage", "blake3": 7}' if index.name.startswith("external") else "[1, 2]")
    outside_before = outside.stat()

    r = cli("convert", "models", "-o", "out", cwd=project)
    assert r.returncode == 0, r.stderr
    assert f"({len(TAMPERINGS)} converted, 0 cached), 0 failed" in r.stderr
    assert "\x1b" not in r.stderr
    assert "all good" not in r.stderr
    assert (project / "out/required_operators_and_types.config").read_bytes() == config
    for ort_file in (project / "out").glob("*.ort"):  # the tampered .ort was linked here: replaced now
        assert ort_is_complete(ort_file), ort_file
    assert verify_cache(cache) == len(TAMPERINGS)
    assert outside.read_bytes() == b"never to be touched"
    assert outside.stat().st_mtime_ns == outside_before.st_mtime_ns

    r = cli("convert", "models", "-o", "out", cwd=project)  # and the rebuilt entries are hits again
    assert f"0 converted, {len(TAMPERINGS)} cached" in r.stderr, r.stderr


_OPEN_FOR_WRITING = """
import os, sys
directory = os.open(sys.argv[1], os.O_RDONLY)  # opened first: the test's tmp dirs are private to root
if os.geteuid() == 0:  # root ignores file modes: try as a normal user
    os.setgid(65534)
    os.setuid(65534)
try:
    os.close(os.open(sys.argv[2], os.O_RDWR, dir_fd=directory))
except OSError as exc:
    print(type(exc).__name__)
else:
    print("opened")
"""


def _open_for_writing(path: Path) -> str:
    """What opening ``path`` for an in-place write gives a normal user: "opened" or the exception's name."""
    r = subprocess.run(
        [sys.executable, "-c", _OPEN_FOR_WRITING, path.parent, path.name], capture_output=True, text=True, check=True
    )
    return r.stdout.strip()


def test_an_edit_of_one_output_does_not_spread_to_other_projects(tmp_path: Path, cli: Cli) -> None:
    for project in ("p1", "p2"):
        write(tmp_path / project / "models/m.onnx", tiny_mlp(3))
        r = cli("convert", "models", "-o", "out", cwd=tmp_path / project)
        assert r.returncode == 0, r.stderr
    one, two = tmp_path / "p1/out/m.ort", tmp_path / "p2/out/m.ort"
    original = two.read_bytes()
    shared = list((tmp_path / "cache").rglob("model.ort"))
    assert shared
    assert one.stat().st_ino == two.stat().st_ino == shared[0].stat().st_ino  # the warm path links
    for path in (one, *shared):
        assert stat.S_IMODE(path.stat().st_mode) & 0o222 == 0, path  # shared bytes are read-only
    assert _open_for_writing(one) == "PermissionError"  # an in-place edit fails
    # A tool that replaces the file (write a temp file, rename it) edits this project's copy only.
    tmp = one.with_name("m.ort.tmp")
    tmp.write_bytes(b"edited")
    tmp.replace(one)
    assert two.read_bytes() == original
    assert shared[0].read_bytes() == original
    r = cli("convert", "models", "-o", "out", cwd=tmp_path / "p1")
    assert r.returncode == 0, r.stderr
    assert "1 cached" in r.stderr, r.stderr
    assert one.read_bytes() == original


def _two_models(project: Path, cli: Cli) -> tuple[list[Path], list[str], dict[str, bytes]]:
    """models/a.onnx (Relu) and models/b.onnx (Sigmoid) converted into out/: paths, keys, .ort bytes."""
    models = [
        write(project / "models/a.onnx", one_node_model("Relu")),
        write(project / "models/b.onnx", one_node_model("Sigmoid")),
    ]
    r = cli("convert", "models", "-o", "out", cwd=project)
    assert r.returncode == 0, r.stderr
    cache = Cache(project.parent / "cache")
    try:
        keys = [cache.key(m, "Fixed", ConvertOptions()) for m in models]
    finally:
        cache.close()
    return models, keys, {name: (project / f"out/{name}.ort").read_bytes() for name in ("a", "b")}


def _entry(tmp_path: Path, key: str) -> Path:
    return tmp_path / "cache" / LAYOUT / "objects" / key[:2] / key


def test_an_entry_moved_under_another_models_key_is_a_miss(tmp_path: Path, cli: Cli) -> None:
    project = tmp_path / "project"
    _, (key_a, key_b), ort = _two_models(project, cli)
    assert ort["a"] != ort["b"]
    shutil.rmtree(_entry(tmp_path, key_b))
    _entry(tmp_path, key_a).rename(_entry(tmp_path, key_b))
    r = cli("convert", "models", "-o", "out", cwd=project)
    assert r.returncode == 0, r.stderr
    assert "2 converted, 0 cached" in r.stderr, r.stderr
    assert (project / "out/b.ort").read_bytes() == ort["b"]
    assert (project / "out/a.ort").read_bytes() == ort["a"]
    assert "Sigmoid" in (project / "out/required_operators_and_types.config").read_text()


def test_a_forged_stat_index_record_cannot_redirect_a_model_to_another_entry(tmp_path: Path, cli: Cli) -> None:
    project = tmp_path / "project"
    (model_a, model_b), _, ort = _two_models(project, cli)
    index = tmp_path / "cache" / LAYOUT / "stat"
    record_a, record_b = (
        index / (hashlib.sha256(os.fsencode(m.resolve())).hexdigest() + ".json") for m in (model_a, model_b)
    )
    forged = json.loads(record_a.read_text())
    forged["blake3"] = json.loads(record_b.read_text())["blake3"]  # a's stamp, b's digest
    record_a.write_text(json.dumps(forged))
    r = cli("convert", "models/a.onnx", "-o", "only-a", cwd=project)
    assert r.returncode == 0, r.stderr
    assert (project / "only-a/a.ort").read_bytes() == ort["a"]
    assert "Sigmoid" not in (project / "only-a/required_operators_and_types.config").read_text()
    r = cli("convert", "models", "-o", "out", cwd=project)  # and b's entry, genuine, still serves b
    assert r.returncode == 0, r.stderr
    assert "0 converted, 2 cached" in r.stderr, r.stderr
    assert (project / "out/b.ort").read_bytes() == ort["b"]
    assert (project / "out/a.ort").read_bytes() == ort["a"]


def test_a_symlink_inside_an_entry_is_refused_never_linked_into_outputs(tmp_path: Path, cli: Cli) -> None:
    project = tmp_path / "project"
    _, (key_a, _), ort = _two_models(project, cli)
    outside = write(tmp_path / "outside.ort", ort["a"])  # the same bytes: the manifest's digest matches
    entry = _entry(tmp_path, key_a)
    (entry / "model.ort").unlink()
    (entry / "model.ort").symlink_to(outside)
    (project / "out/a.ort").unlink()
    r = cli("convert", "models", "-o", "out", cwd=project)
    assert r.returncode == 0, r.stderr
    assert "1 converted, 1 cached" in r.stderr, r.stderr
    out = project / "out/a.ort"
    assert not out.is_symlink()
    assert out.read_bytes() == ort["a"]
    assert not (entry / "model.ort").is_symlink()
    assert outside.stat().st_nlink == 1
    assert outside.read_bytes() == ort["a"]


def test_the_scratch_sweep_never_follows_a_symlink_out_of_the_cache(tmp_path: Path, cli: Cli) -> None:
    project = tmp_path / "project"
    write(project / "models/m.onnx", tiny_mlp(4))
    assert cli("convert", "models", "-o", "out", cwd=project).returncode == 0
    victim = tmp_path / "victim"
    old_file, old_dir = write(victim / "old.txt", b"keep"), write(victim / "old-dir/f", b"keep").parent
    old = time.time() - 2 * 86400
    for path in (old_file, old_dir):
        os.utime(path, (old, old))
    tmp = tmp_path / "cache" / LAYOUT / "tmp"
    shutil.rmtree(tmp)
    tmp.symlink_to(victim)  # the whole tmp dir replaced by a link
    r = cli("convert", "models", "-o", "out", cwd=project)
    assert r.returncode == 0, r.stderr
    assert old_file.read_bytes() == b"keep"
    assert (old_dir / "f").read_bytes() == b"keep"
    tmp.unlink()
    tmp.mkdir()
    link = tmp / "entry-old"  # a link inside tmp: the link goes, never what it points to
    link.symlink_to(victim)
    os.utime(link, (old, old), follow_symlinks=False)
    r = cli("convert", "models", "-o", "out", cwd=project)
    assert r.returncode == 0, r.stderr
    assert not link.is_symlink()
    assert old_file.read_bytes() == b"keep"
    assert (old_dir / "f").is_file()


def test_a_proc_file_is_hashed_as_read_not_as_stat_says(tmp_path: Path) -> None:
    link = tmp_path / "x.onnx"
    link.symlink_to("/proc/version")
    expected = blake3.blake3(Path("/proc/version").read_bytes()).hexdigest()
    assert expected != blake3.blake3(b"").hexdigest()
    calls: list[None] = []
    cache = Cache(tmp_path / "cache", before_hashing=lambda: calls.append(None))
    try:
        assert cache.digest(link) == expected
        assert cache.digest(link) == expected
        assert len(calls) == 2  # stat's size is not what was read: no index record to trust next time
    finally:
        cache.close()
    assert Cache(None).digest(link) == expected


def _python(code: str, *args: str | Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", code, *map(str, args)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def test_only_dead_runs_scratch_dirs_are_swept(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    hold = (
        "import os, signal, sys, time; from pathlib import Path; from ort_reduced_build.engine.cache import Cache; "
        "print(Cache(Path(sys.argv[1])).staging_dir(), flush=True); "
    )
    live = _python(hold + "time.sleep(60)", cache)
    dead = _python(hold + "os.kill(os.getpid(), signal.SIGKILL)", cache)
    try:
        live_dir = Path(live.stdout.readline().strip()).parent  # type: ignore[union-attr]
        dead.wait(30)
        dead_dir = Path(dead.communicate()[0].strip()).parent
        tmp = cache / LAYOUT / "tmp"
        legacy = write(tmp / "entry-from-an-older-version/model.ort", b"x").parent
        recent = write(tmp / ".foreign.tmp", b"x")
        old = time.time() - 2 * 86400
        for path in (live_dir, dead_dir, legacy):
            os.utime(path, (old, old))
        sweep = "import sys; from pathlib import Path; from ort_reduced_build.util.scratch import sweep; "
        out, err = _python(sweep + "print(*sweep(Path(sys.argv[1])))", tmp).communicate(timeout=60)
        assert sorted(out.split()) == sorted([dead_dir.name, legacy.name]), err
        assert live_dir.is_dir()
        assert recent.is_file()
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
        assert cache.digest(model) == first
        assert len(calls) == 1
        write(model, b"second")
        assert cache.digest(model) != first
        assert len(calls) == 2
    finally:
        cache.close()
    later = Cache(tmp_path / "cache", before_hashing=lambda: calls.append(None))
    try:
        assert later.digest(model)  # the index outlives the run
        assert len(calls) == 2
    finally:
        later.close()


def _tree_of(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _cache_errors(stderr: str) -> list[str]:
    assert "Traceback" not in stderr, stderr
    return [line for line in stderr.splitlines() if line.startswith("error:")]


def test_a_read_only_cache_ends_in_a_filelock_traceback(tmp_path: Path, cli: Cli) -> None:
    """A cache restored with ``cp -a`` onto a read-only mount serves every hit; the first conversion it would
    have to store is one line naming the cache and what to do."""
    write(tmp_path / "m/a.onnx", tiny_mlp(1))
    write(tmp_path / "m/b.onnx", tiny_mlp(2))
    write(tmp_path / "new/c.onnx", tiny_mlp(3))
    r = cli("config", "m", "-o", "ref.config", env={"ORT_REDUCED_BUILD_CACHE_DIR": str(tmp_path / "warm")})
    assert r.returncode == 0, r.stderr
    (tmp_path / "ro").mkdir()
    shutil.copytree(tmp_path / "warm", tmp_path / "ro/cache", symlinks=True)  # cp -a: modes and times kept
    before = _tree_of(tmp_path / "ro")
    env = {**os.environ, "ORT_REDUCED_BUILD_CACHE_DIR": str(tmp_path / "ro/cache")}
    hits, miss = mount_namespace(
        tmp_path,
        env,
        [read_only(tmp_path / "ro")],
        [*CLI, "convert", "m", "-o", "out"],
        [*CLI, "config", "m", "new", "-o", "c.config"],
    )
    assert hits.returncode == 0, hits.stderr
    assert "2 conversion(s) (0 converted, 2 cached), 0 failed" in hits.stderr
    assert (tmp_path / "out/required_operators_and_types.config").read_text() == (tmp_path / "ref.config").read_text()
    assert miss.returncode == 1, miss.stderr
    assert _cache_errors(miss.stderr) == [
        (
            f"error: {tmp_path}/ro/cache: cannot write to the cache (read-only file system), needed for new/c.onnx "
            "(Fixed); use another --cache-dir, or --no-cache"
        )
    ]
    assert not (tmp_path / "c.config").exists()
    assert _tree_of(tmp_path / "ro") == before


def test_a_full_cache_disk_says_cannot_read_none_per_model(tmp_path: Path) -> None:
    """The cache's file system fills up: one line naming the cache, whichever write hits it first (the stat
    index, a staging dir, the worker's ``.ort``, the manifest); a full cache holding every entry serves hits."""
    for i, name in enumerate(("a", "b", "c")):
        write(tmp_path / f"m/{name}.onnx", tiny_mlp(i))
    write(tmp_path / "new/d.onnx", tiny_mlp(4))
    modelgen.save(modelgen.mlp(features=256, hidden=256), tmp_path / "big/e.onnx")  # a .ort of 300 KB
    full, warm, tight = tmp_path / "full", tmp_path / "warm", tmp_path / "tight"
    env = {**os.environ, "ORT_REDUCED_BUILD_CACHE_DIR": str(full / "cache")}
    warm_cache: list[str | Path] = ["--cache-dir", warm / "cache"]
    results = mount_namespace(
        tmp_path,
        env,
        # tight: 64 KiB free, room for the stat index and a staging dir: the worker fails to save the .ort
        [full_tmpfs(full), full_tmpfs(warm, fill=False), f"{full_tmpfs(tight)} && truncate -s -64K {tight}/.fill"],
        [*CLI, "config", "m", "-o", "a.config"],  # an empty cache on a full disk
        [*CLI, "config", "m", "-o", "warm.config", *warm_cache],
        ["sh", "-c", shell_fill(warm)],
        [*CLI, "config", "m", "-o", "b.config", *warm_cache],  # every entry is there
        [*CLI, "config", "m", "new", "-o", "c.config", *warm_cache],
        [*CLI, "config", "big", "-o", "e.config", "--cache-dir", tight / "cache"],
    )
    for r, cache in ((results[0], full), (results[4], warm), (results[5], tight)):
        assert r.returncode == 1, r.stderr
        errors = _cache_errors(r.stderr)
        assert len(errors) == 1, r.stderr
        assert errors[0].startswith(f"error: {cache}/cache: cannot write to the cache (no space left on"), r.stderr
        assert errors[0].endswith("; use another --cache-dir, or --no-cache"), r.stderr
    assert [r.returncode for r in results[1:4]] == [0, 0, 0], results
    assert "3 conversion(s) (0 converted, 3 cached), 0 failed" in results[3].stderr
    assert (tmp_path / "b.config").read_text() == (tmp_path / "warm.config").read_text()
    assert not any((tmp_path / f"{name}.config").exists() for name in "ace")
