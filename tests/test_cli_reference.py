"""docs/cli.md against the argparse definitions: the generated options section is current, every verb has a
section of prose, and the prose names no option that no parser has."""

from __future__ import annotations

import re
import sys

import ort_reduced_build
from ort_reduced_build.cli.reference import DOCS_PAGE, MARKER, markdown, parsers

from tests.conftest import REPO

REGENERATE = "regenerate with: python -m ort_reduced_build.cli.reference --write"
# Options the prose names that belong to other programs, each with its owner.
FOREIGN = {
    "--disable_ml_ops": "ORT's build.py",
    "--enable_reduced_operator_type_support": "ORT's build.py",
    "--remove-destination": "cp",
    "-m": "python -m",
    "-vv": "-v given twice (argparse counts it)",
}
_OPTION = re.compile(r"(?<![\w-])--?[A-Za-z][\w-]*")


def _page() -> tuple[str, str]:
    prose, generated = (REPO / DOCS_PAGE).read_text(encoding="utf-8").split(MARKER)
    return prose, MARKER + generated


def test_the_generated_section_matches_the_parsers() -> None:
    assert _page()[1] == markdown(), REGENERATE


def test_every_verb_has_a_section_of_prose() -> None:
    prose, _ = _page()
    headings = re.findall(r"^###+ `([^`]*)`", prose, flags=re.MULTILINE)
    verbs = {prog.split()[1] for prog, _ in parsers() if prog.startswith("ort-reduced-build ")}
    assert verbs == {"build", "cache", "check", "config", "convert", "diff", "explain", "size", "upgrade", "verify"}
    for verb in sorted(verbs):
        assert any(h.split()[0] == verb for h in headings), f"docs/cli.md has no ### `{verb} ...` section"
    assert any(h.startswith("python -m ort_reduced_build.convert_onnx_models_to_ort") for h in headings)


def test_reading_the_parsers_leaves_the_api_function_alone() -> None:
    """Importing the drop-in module would bind ``ort_reduced_build.convert_onnx_models_to_ort`` to it."""
    list(parsers())
    assert callable(ort_reduced_build.convert_onnx_models_to_ort)
    assert "ort_reduced_build.convert_onnx_models_to_ort" not in sys.modules


def test_the_prose_names_only_options_a_parser_has() -> None:
    prose, _ = _page()
    known = {name for _, parser in parsers() for action in parser._actions for name in action.option_strings}
    fenced = re.compile(r"^```.*?^```", flags=re.MULTILINE | re.DOTALL)
    commands = [line for block in fenced.findall(prose) for line in block.splitlines() if "ort-reduced-build " in line]
    text = fenced.sub("", prose)
    spans = re.findall(r"`([^`]+)`", text) + re.findall(r"^    (.+)$", text, flags=re.MULTILINE) + commands
    named = {option for span in spans for option in _OPTION.findall(span)}
    assert named - known == set(FOREIGN)
    assert {"--optimization-level", "-j", "--output_dir"} <= named  # the scan sees tables and code spans
