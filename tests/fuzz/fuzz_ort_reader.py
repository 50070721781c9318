"""atheris target: the ``.ort`` reader (flatbuffer header, op/type analysis, saved runtime optimizations).

    python tests/fuzz/fuzz_ort_reader.py [libFuzzer flags] [CORPUS_DIR ...]

A ``.ort`` given to ``config``/``check`` is read in the CLI's own process, so any input must end in a
result or an ``AnalyzeError`` naming the file: no other exception, no hang. Seed it with real ``.ort``
files (tests/test_fuzz.py writes some). docs/reliability.md has a longer run.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import atheris

with atheris.instrument_imports(include=["ort_reduced_build", "onnxruntime.tools.ort_format_model", "flatbuffers"]):
    import onnxruntime.tools.ort_format_model  # noqa: F401 -- instrumented here, imported lazily by analyze
    from ort_reduced_build.engine.analyze import analyze_ort, saved_runtime_optimizations
    from ort_reduced_build.errors import AnalyzeError

PATH = Path(tempfile.mkdtemp(prefix="fuzz-ort-")) / "input.ort"


def test_one_input(data: bytes) -> None:
    PATH.write_bytes(data)
    for read in (analyze_ort, saved_runtime_optimizations):
        try:
            read(PATH)
        except AnalyzeError as exc:
            assert str(exc).startswith(f"{PATH}: "), exc
            assert "\n" not in str(exc), exc


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
