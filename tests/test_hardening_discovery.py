"""Discovery: symlink loops, special files, hostile and non-UTF-8 names, 10,000 files — clear messages, bounded time.

Unreadable files: these tests run as root in CI, where ``chmod 000`` stops nothing; what stands in for an
unreadable model is a FIFO (reading it would block), a looping or dangling symlink, and a directory where
a file is expected (tests/test_hardening_trust.py does that for external data).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from onnxruntime.tools.reduced_build_config_parser import parse_config as ort_parse_config
from ort_reduced_build.engine.config import parse_config
from ort_reduced_build.engine.discover import discover_globs, discover_paths
from ort_reduced_build.errors import DiscoveryError

from tests._hardening import tiny_mlp, write
from tests.conftest import Cli


@pytest.fixture
def tangled(tmp_path: Path) -> Path:
    """A model tree with a directory symlink loop, a looping and a dangling file symlink, a directory named
    like a model, and one good model."""
    root = tmp_path / "project"
    write(root / "models/good.onnx", tiny_mlp(1))
    (root / "models/self").symlink_to(".")  # models/self/self/self/...
    (root / "models/loop.onnx").symlink_to("loop.onnx")
    (root / "models/dangling.onnx").symlink_to("missing.onnx")
    (root / "models/directory.onnx").mkdir()
    return root


def test_symlink_loops_and_special_files_are_named_in_bounded_time(tangled: Path, cli: Cli) -> None:
    start = time.monotonic()
    found = [m.display for m in discover_paths([tangled / "models"], tangled)]
    assert found == ["models/dangling.onnx", "models/good.onnx", "models/loop.onnx"]  # read errors come later
    globbed = [m.display for m in discover_globs(["**/*.onnx"], tangled)]
    assert globbed == ["models/good.onnx"]
    assert time.monotonic() - start < 5

    r = cli("config", "models", "-o", "c.config", "--allow-conversion-failures", cwd=tangled)
    assert r.returncode == 1, r.stderr
    assert "Traceback" not in r.stderr, r.stderr
    assert "failed: models/loop.onnx (Fixed): cannot read " in r.stderr
    assert "loop.onnx: Too many levels of symbolic links" in r.stderr
    assert "failed: models/dangling.onnx (Fixed): cannot read " in r.stderr
    assert "3 model(s), 3 conversion(s) (1 converted, 0 cached), 2 failed" in r.stderr

    os.mkfifo(tangled / "models/fifo.onnx")  # opening it to read would block forever
    with pytest.raises(DiscoveryError, match=r"^models/fifo\.onnx: is a FIFO, not a model file$"):
        discover_paths([tangled / "models"], tangled)
    r = cli("config", "models/fifo.onnx", "-o", "c.config", cwd=tangled)
    assert r.stderr == "error: models/fifo.onnx: not a regular file or directory\n"


def test_hostile_and_undecodable_file_names(tmp_path: Path, cli: Cli) -> None:
    root = tmp_path / "project"
    good = tiny_mlp(2)
    write(root / "models/plain.onnx", good)
    hostile = {
        "evil\n!globally_allowed_types;float\n.onnx": "evil\\n!globally_allowed_types;float\\n.onnx",
        "sep\u2028ai.onnx;1;Evil,Op.onnx": "sep\\u2028ai.onnx;1;Evil,Op.onnx",
        "\x1b[2Jred.onnx": "\\x1b[2Jred.onnx",
        "tab\there.onnx": "tab\\there.onnx",
    }
    for name in hostile:
        write(root / "models" / name, good)
    undecodable = os.fsdecode(b"caf\xe9.onnx")
    write(root / "models" / undecodable, good)

    r = cli("convert", "models", "-o", "out", "--allow-conversion-failures", cwd=root)
    assert r.returncode == 1, r.stderr
    assert "Traceback" not in r.stderr, r.stderr
    assert r.stderr.splitlines() == [
        (
            "failed: models/caf\\xe9.onnx (Fixed): file name is not valid UTF-8, so onnxruntime cannot open it; "
            "rename the file"
        ),
        (
            "ort-reduced-build: 6 model(s), 6 conversion(s) (1 converted, 4 cached), 1 failed, 2 ops -> "
            "out/required_operators_and_types.config"
        ),
    ]
    config = root / "out/required_operators_and_types.config"
    text = config.read_text(encoding="utf-8")
    header = [line for line in text.splitlines() if line.startswith("# - ")]
    assert header == sorted(f"# - models/{shown}" for shown in [*hostile.values(), "plain.onnx"])
    ops = [line for line in text.splitlines() if not line.startswith("#")]
    assert ops == ['ai.onnx;13;ArgMax{"inputs": {"0": ["float"]}}', "com.microsoft;1;FusedGemm"]
    required, _ = ort_parse_config(str(config), True)  # ORT's own parser: nothing injected
    assert required == {"ai.onnx": {13: {"ArgMax"}}, "com.microsoft": {1: {"FusedGemm"}}}
    assert parse_config(text).globally_allowed_types is None
    for name in hostile:  # the real names are kept for the outputs
        assert (root / "out" / (name.removesuffix(".onnx") + ".ort")).is_file()


def test_ten_thousand_files(tmp_path: Path, cli: Cli) -> None:
    root = tmp_path / "project"
    models = [tiny_mlp(1), tiny_mlp(2)]
    for i in range(10_000):
        write(root / f"models/d{i // 100:03}/m{i % 100:02}.onnx", models[i % 2])
    start = time.monotonic()
    r = cli("config", "models", "-o", "c.config", cwd=root)
    cold = time.monotonic() - start
    assert r.returncode == 0, r.stderr
    # one conversion per content
    assert "10000 model(s), 10000 conversion(s) (2 converted, 9998 cached), 0 failed" in r.stderr
    lines = (root / "c.config").read_text().splitlines()
    assert len(lines) == 1 + 10_000 + 3 + 2  # header, models, options + value types + graph types, ops
    assert cold < 90, f"{cold:.1f}s for 10,000 files"
