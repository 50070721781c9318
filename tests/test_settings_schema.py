"""The schema and the reference page are generated from BackendSettings; the committed files must not drift."""

from __future__ import annotations

import json
import sys
from dataclasses import fields
from pathlib import Path

import pytest
from ort_reduced_build.settings import BackendSettings
from ort_reduced_build.settings.schema import DOCS_PAGE, SCHEMA_FILE, field_docs, get_schema, json_schema, markdown

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

REPO = Path(__file__).resolve().parent.parent
REGENERATE = "regenerate with: python -m ort_reduced_build.settings.schema --write"


def test_every_field_has_a_docstring() -> None:
    assert set(field_docs()) == {f.name for f in fields(BackendSettings)}


def test_committed_schema_matches_the_dataclass() -> None:
    committed = json.loads((REPO / "plugin/ort_reduced_build/resources" / SCHEMA_FILE).read_text(encoding="utf-8"))
    assert committed == json_schema(), REGENERATE
    assert get_schema() == committed


def test_committed_reference_page_matches_the_dataclass() -> None:
    assert (REPO / DOCS_PAGE).read_text(encoding="utf-8") == markdown(), REGENERATE


def test_validate_pyproject_uses_the_schema() -> None:
    from validate_pyproject import api, errors

    validator = api.Validator()
    sample = tomllib.loads((REPO / "sample_project/pyproject.toml").read_text(encoding="utf-8"))
    validator(sample)
    sample["tool"]["ort-reduced-build"]["optimisation-level"] = "all"
    with pytest.raises(errors.ValidationError, match="optimisation-level"):
        validator(sample)
    sample["tool"]["ort-reduced-build"] = {"bundle": "wheel"}
    with pytest.raises(errors.ValidationError, match="bundle"):
        validator(sample)
