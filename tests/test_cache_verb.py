"""``cache info|prune|clear`` on real caches filled by real conversions, and while a real run uses the cache."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from ort_reduced_build.engine.cache import LAYOUT

from tests._hardening import CLI, Tagged, mount_namespace, one_node_model, read_only, tiny_mlp, verify_cache, write
from tests.conftest import Cli

DAY = 86400.0


def _project(root: Path, count: int = 3) -> Path:
    for i in range(count):
        write(root / f"models/m{i}.onnx", tiny_mlp(i))
    return root


def _entries(cache: Path) -> dict[str, Path]:
    """Entry dirs by key."""
    return {p.name: p for p in (cache / LAYOUT / "objects").glob("*/*")}


def _du(root: Path) -> int:
    """Bytes of the regular files below ``root``, counted here independently of the code under test."""
    total = 0
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            path = Path(dirpath, name)
            if path.is_file() and not path.is_symlink():
                total += path.stat().st_size
    return total


def _age(path: Path, days: float) -> None:
    t = time.time() - days * DAY
    os.utime(path, (t, t), follow_symlinks=False)


def _info(cli: Cli, cache: Path) -> dict[str, Any]:
    r = cli("cache", "info", "--json", "--cache-dir", cache)
    assert r.returncode == 0, r.stderr
    info: dict[str, Any] = json.loads(r.stdout)
    return info


def test_cache_grows_without_bound_and_nothing_reports_it(tmp_path: Path, cli: Cli) -> None:
    cache = tmp_path / "cache"
    assert _info(cli, cache)["entries"] == 0  # no cache yet: nothing, not an error
    r = cli("config", _project(tmp_path / "p"), "-o", "c.config")
    assert r.returncode == 0, r.stderr
    entries = _entries(cache)
    assert len(entries) == 3
    for days, entry in zip((5, 3, 1), sorted(entries.values()), strict=True):
        _age(entry, days)
    info = _info(cli, cache)
    assert info["ok"] is True
    assert info["cache_dir"] == str(cache)
    assert info["entries"] == 3
    assert info["size_bytes"] == _du(cache)
    assert info["entry_bytes"] == sum(_du(e) for e in entries.values())
    mtimes = sorted(e.stat().st_mtime for e in entries.values())
    assert info["oldest_use"] == time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(mtimes[0]))
    assert info["newest_use"] == time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(mtimes[-1]))
    r = cli("cache", "info", "--cache-dir", cache)
    assert r.stdout.splitlines()[:2] == [f"cache dir:  {cache}", "entries:    3"], r.stdout


def test_prune_removes_the_least_recently_used_first(tmp_path: Path, cli: Cli) -> None:
    cache = tmp_path / "cache"
    project = _project(tmp_path / "p")
    assert cli("config", project, "-o", "c.config").returncode == 0
    entries = sorted(_entries(cache).values())
    for days, entry in zip((3, 1, 2), entries, strict=True):
        _age(entry, days)
    # Room for two entries and the stat records: the least recently used one (3 days) goes.
    keep = _du(cache) - _du(entries[0])
    r = cli("cache", "prune", "--max-size", str(keep), "--cache-dir", cache)
    assert r.returncode == 0, r.stderr
    assert "removed 1 entry" in r.stderr, r.stderr
    assert sorted(_entries(cache).values()) == entries[1:]
    assert _du(cache) <= keep
    # --older-than: what was last used more than 36 hours ago (the 2-day-old entry) goes.
    r = cli("cache", "prune", "--older-than", "36h", "--cache-dir", cache, "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["removed_entries"] == 1
    assert json.loads(r.stdout)["left"]["entries"] == 1
    assert list(_entries(cache).values()) == [entries[1]]
    # The next run converts what was pruned and still hits what was kept; the kept entry is intact.
    r = cli("config", project, "-o", "c.config")
    assert "3 conversion(s) (2 converted, 1 cached)" in r.stderr, r.stderr
    assert verify_cache(cache) == 3


def test_prune_removes_what_another_versions_layout_holds_first(tmp_path: Path, cli: Cli) -> None:
    """A cache dir shared with an older version of the package (cache layout v2: this one cannot use it):
    ``--older-than`` ages its entries as this layout's; ``--max-size`` removes them before any of ours."""
    cache = tmp_path / "cache"
    assert cli("config", _project(tmp_path / "p"), "-o", "c.config").returncode == 0
    ours = sorted(_entries(cache).values())
    old = cache / "v2"
    shutil.copytree(cache / LAYOUT, old, symlinks=True)  # the same structure, as an older version left it
    theirs = sorted(old.glob("objects/*/*"))
    for days, entry in zip((10, 1, 1), theirs, strict=True):
        _age(entry, days)
    for record in old.glob("stat/*"):
        _age(record, 1)
    assert _info(cli, cache)["size_bytes"] == _du(cache)

    r = cli("cache", "prune", "--older-than", "5d", "--cache-dir", cache, "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["removed_entries"] == 1
    assert sorted(old.glob("objects/*/*")) == theirs[1:]
    assert sorted(_entries(cache).values()) == ours

    # Room for our layout only: everything of the other one goes, ours stays whole.
    r = cli("cache", "prune", "--max-size", str(_du(cache / LAYOUT)), "--cache-dir", cache, "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["removed_entries"] == 2
    assert not old.exists()
    assert sorted(_entries(cache).values()) == ours
    assert verify_cache(cache) == 3


def test_a_hit_does_not_count_as_a_use_for_prune(tmp_path: Path, cli: Cli) -> None:
    cache = tmp_path / "cache"
    project = _project(tmp_path / "p", 1)
    assert cli("config", project, "-o", "c.config").returncode == 0
    (entry,) = _entries(cache).values()
    _age(entry, 2)
    r = cli("config", project, "-o", "c.config")
    assert "(0 converted, 1 cached)" in r.stderr, r.stderr
    assert time.time() - entry.stat().st_mtime < 600  # the hit recorded its use
    r = cli("cache", "prune", "--older-than", "1d", "--cache-dir", cache)
    assert r.returncode == 0, r.stderr
    assert "removed 0 entries" in r.stderr, r.stderr
    assert list(_entries(cache).values()) == [entry]


def test_clear_removes_only_what_the_cache_made_and_never_follows_a_link(tmp_path: Path, cli: Cli) -> None:
    cache = tmp_path / "cache"
    assert cli("convert", _project(tmp_path / "p"), "-o", "out").returncode == 0
    outside = tmp_path / "outside"
    write(outside / "precious.txt", b"keep me\n")
    write(cache / "notes.txt", b"not the cache's\n")  # a --cache-dir that also holds other things
    (cache / LAYOUT / "objects/ab").mkdir()
    (cache / LAYOUT / "objects/ab" / ("ab" + "0" * 62)).symlink_to(outside, target_is_directory=True)
    (cache / LAYOUT / "stat/link.json").symlink_to(outside / "precious.txt")
    write(cache / "v1/objects/old/model.ort", b"an older layout's entry")
    r = cli("cache", "clear", "--cache-dir", cache, "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["removed_entries"] == 4  # three entries and the link
    assert _info(cli, cache)["entries"] == 0
    assert _info(cli, cache)["size_bytes"] == 0
    assert (outside / "precious.txt").read_bytes() == b"keep me\n"
    assert (cache / "notes.txt").read_bytes() == b"not the cache's\n"
    assert not (cache / "v1").exists()
    assert sorted(p.name for p in (cache / LAYOUT).iterdir()) == ["in-use.lock", "locks", "objects", "stat", "tmp"]
    assert list((cache / LAYOUT / "locks").iterdir()) == []
    for name in ("m0.ort", "m1.ort", "m2.ort"):  # outputs linked to removed entries keep their bytes
        assert (tmp_path / "out/models" / name).stat().st_size > 0


def test_clear_removes_an_entry_a_running_build_is_about_to_link(
    tmp_path: Path, cli: Cli, custom_op_library: Path
) -> None:
    """A run found its entry and converts another model; ``cache clear`` waits for the run to end."""
    cache = tmp_path / "cache"
    project = tmp_path / "p"
    write(project / "models/mlp.onnx", tiny_mlp(1))
    warm = cli("config", project / "models", "-o", "warm.config", "--custom-op-library", custom_op_library)
    assert warm.returncode == 0, warm.stderr  # mlp's entry is there (the library is part of the key)
    write(project / "models/hang.onnx", one_node_model("Hang", "test.crash", (("", 17), ("test.crash", 1))))
    argv: list[str | Path] = [
        "convert",
        "models",
        "-o",
        "out",
        "--custom-op-library",
        custom_op_library,
        "--timeout",
        "8",
    ]
    run = Tagged([*argv, "--allow-conversion-failures"], cwd=project, cache=cache)

    def converting() -> bool:
        return any(custom_op_library.name in _maps(pid) for pid in run.workers())

    run.wait_for(converting)  # the run has hit mlp's entry and is stuck converting hang.onnx
    env = {**os.environ, "ORT_REDUCED_BUILD_CACHE_DIR": str(cache)}
    clearing = subprocess.Popen(
        [sys.executable, "-m", "ort_reduced_build", "cache", "clear"],
        cwd=project,
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(2)
    assert clearing.poll() is None  # waits for the run
    assert len(_entries(cache)) == 1
    rc, err = run.finish(timeout=60)
    assert rc == 1, err
    assert "hang.onnx (Fixed): conversion timed out" in err, err
    assert (project / "out/mlp.ort").stat().st_size > 0  # linked from the entry after the wait
    _, cleared = clearing.communicate(timeout=60)
    assert clearing.returncode == 0, cleared
    assert f"waiting for the runs using {cache} to end" in cleared
    assert "removed 1 entry" in cleared
    assert _entries(cache) == {}


def _maps(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/maps").read_text()
    except OSError:
        return ""


@pytest.mark.parametrize(
    "argv",
    [
        ["cache"],
        ["cache", "prune"],
        ["cache", "prune", "--max-size", "5x"],
        ["cache", "prune", "--older-than", "soon"],
        ["cache", "tidy"],
    ],
    ids=["no-action", "prune-without-a-limit", "bad-size", "bad-age", "unknown-action"],
)
def test_cache_verb_usage_error_exits_1(tmp_path: Path, cli: Cli, argv: list[str]) -> None:
    r = cli(*argv)
    assert r.returncode == 2, r.stderr
    assert "usage: ort-reduced-build cache" in r.stderr
    assert "Traceback" not in r.stderr
    assert not (tmp_path / "cache").exists()


def test_cache_verb_takes_quiet_and_verbose_after_the_action(tmp_path: Path, cli: Cli) -> None:
    r = cli("cache", "clear", "-q")
    assert r.returncode == 0, r.stderr
    assert r.stderr == "", r.stderr


def test_clear_of_a_read_only_cache_ends_in_a_traceback(tmp_path: Path, cli: Cli) -> None:
    cache = tmp_path / "ro/cache"
    r = cli("config", _project(tmp_path / "p", 1), "-o", "c.config", env={"ORT_REDUCED_BUILD_CACHE_DIR": str(cache)})
    assert r.returncode == 0, r.stderr
    before = sorted(_entries(cache))
    env = {**os.environ, "ORT_REDUCED_BUILD_CACHE_DIR": str(cache)}
    plain, as_json = mount_namespace(
        tmp_path,
        env,
        [read_only(tmp_path / "ro")],
        [*CLI, "cache", "clear"],
        [*CLI, "cache", "prune", "--older-than", "0", "--json"],
    )
    line = f"error: {cache}: cannot remove from the cache: read-only file system"
    assert plain.returncode == 1, plain.stderr
    assert plain.stderr.splitlines() == [line], plain.stderr
    assert as_json.returncode == 1
    assert json.loads(as_json.stdout) == {"ok": False, "error": line[len("error: ") :]}
    assert sorted(_entries(cache)) == before
