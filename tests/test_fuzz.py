"""Short runs of the atheris targets in tests/fuzz/ (the long run is in docs/reliability.md).

atheris is in the ``test`` extra where it installs from a wheel (Linux x86_64); elsewhere these skip and
say why. Each target runs in its own process, seeded with real inputs, for a few seconds.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import onnxruntime as ort
import pytest

from tests import modelgen

pytest.importorskip("atheris", reason="atheris is not installed (pip install -e '.[fuzz]'; wheels: Linux x86_64)")

FUZZ = Path(__file__).parent / "fuzz"
SECONDS = 6

CONFIG_SEEDS = [
    'ai.onnx;13;Cast{"inputs": {"0": ["float"]}, "outputs": {"0": ["int64_t"]}},Relu\n',
    'ai.onnx;11,13;OneHot{"custom": [["float", "int64_t", "int64_t"]]}\ncom.microsoft;1;FusedConv\n',
    "# comment\nai.onnx;14;Add,Mul\n!globally_allowed_types;float,int64_t\n",
    "!no_ops_specified_means_all_ops_are_required\n",
]


def write_ort_seeds(corpus: Path) -> None:
    """Real .ort files: subgraphs (If/Loop/Scan), and saved runtime optimizations (Runtime style)."""
    source = modelgen.save(modelgen.control_flow(), corpus.parent / "control_flow.onnx")
    cnn = modelgen.save(modelgen.cnn((4,), 8), corpus.parent / "cnn.onnx")
    for model, name, entries in [
        (source, "control_flow.ort", {}),
        (cnn, "cnn.with_runtime_opt.ort", {"optimization.minimal_build_optimizations": "save"}),
    ]:
        so = ort.SessionOptions()
        so.optimized_model_filepath = str(corpus / name)
        so.log_severity_level = 3
        for key, value in {"session.save_model_format": "ORT", **entries}.items():
            so.add_session_config_entry(key, value)
        ort.InferenceSession(str(model), so, providers=["CPUExecutionProvider"])


@pytest.mark.parametrize("target", ["fuzz_config.py", "fuzz_ort_reader.py"])
def test_fuzz_target_finds_nothing_in_a_short_run(tmp_path: Path, target: str) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    if target == "fuzz_config.py":
        for i, seed in enumerate(CONFIG_SEEDS):
            (corpus / f"seed{i}.config").write_text(seed)
    else:
        write_ort_seeds(corpus)
    r = subprocess.run(
        [sys.executable, str(FUZZ / target), f"-max_total_time={SECONDS}", "-timeout=20", "-rss_limit_mb=2048", corpus],
        cwd=tmp_path,  # a crash input (crash-*) would be written here
        capture_output=True,
        text=True,
        timeout=SECONDS + 120,
        check=False,
    )
    assert r.returncode == 0, r.stderr[-4000:]
    assert "Done " in r.stderr
