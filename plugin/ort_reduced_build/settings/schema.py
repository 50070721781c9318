"""The JSON schema and the reference page of ``[tool.ort-reduced-build]``, generated from ``BackendSettings``.

``get_schema`` is the ``validate_pyproject.tool_schema`` entry point: it returns the committed schema
(``resources/ort-reduced-build.schema.json``). Regenerate both files after changing a field::

    python -m ort_reduced_build.settings.schema --write

``tests/test_settings_schema.py`` fails when the committed files drift from the dataclass.
"""

from __future__ import annotations

import argparse
import ast
import inspect
import itertools
import json
import textwrap
import typing
from dataclasses import MISSING, fields
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from . import model
from .model import BackendSettings, setting_key
from .sources import TOOL, conf_name, env_name

__all__ = ["SCHEMA_FILE", "field_docs", "get_schema", "json_schema", "markdown"]

SCHEMA_FILE = "ort-reduced-build.schema.json"
SCHEMA_ID = "https://github.com/ort-reduced-build/ort-reduced-build/blob/main/plugin/ort_reduced_build/resources/"
DOCS_PAGE = "docs/reference/pyproject.md"


def get_schema(tool_name: str = TOOL) -> dict[str, Any]:
    """The stored schema of ``[tool.ort-reduced-build]`` (validate-pyproject plugin)."""
    if tool_name != TOOL:
        msg = f"only the {TOOL} table has a schema here, not {tool_name}"
        raise ValueError(msg)
    text = resources.files("ort_reduced_build").joinpath("resources", SCHEMA_FILE).read_text(encoding="utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


def field_docs() -> dict[str, str]:
    """Each field's docstring (the string literal below it in ``settings/model.py``), dedented."""
    tree = ast.parse(inspect.getsource(model))
    cls = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == BackendSettings.__name__)
    docs: dict[str, str] = {}
    for stmt, after in itertools.pairwise(cls.body):
        if (
            isinstance(stmt, ast.AnnAssign)
            and isinstance(stmt.target, ast.Name)
            and isinstance(after, ast.Expr)
            and isinstance(after.value, ast.Constant)
            and isinstance(after.value.value, str)
        ):
            docs[stmt.target.id] = inspect.cleandoc(after.value.value)
    return docs


def _type_schema(hint: object) -> dict[str, Any]:
    args = typing.get_args(hint)
    if typing.get_origin(hint) is tuple:
        return {"type": "array", "items": _type_schema(args[0])}
    if type(None) in args:
        return _type_schema(next(a for a in args if a is not type(None)))
    if typing.get_origin(hint) is Literal:
        return {"enum": list(args)}
    if hint is bool:
        return {"type": "boolean"}
    if hint is int:
        return {"type": "integer", "minimum": 1}
    return {"type": "string"}


def _default(name: str) -> object:
    field = next(f for f in fields(BackendSettings) if f.name == name)
    value = field.default if field.default is not MISSING else None
    return list(value) if isinstance(value, tuple) else value


def json_schema() -> dict[str, Any]:
    """The draft-07 schema of the table, from the dataclass (types, defaults, docstrings)."""
    hints = typing.get_type_hints(BackendSettings)
    docs = field_docs()
    properties: dict[str, Any] = {}
    for field in fields(BackendSettings):
        prop = {"description": " ".join(docs[field.name].split()), **_type_schema(hints[field.name])}
        if (default := _default(field.name)) is not None:
            prop["default"] = default
        properties[setting_key(field.name)] = prop
    return {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "$id": SCHEMA_ID + SCHEMA_FILE,
        "title": f"[tool.{TOOL}]",
        "description": " ".join(inspect.cleandoc(BackendSettings.__doc__ or "").split()),
        "type": "object",
        "additionalProperties": False,
        "properties": properties,
    }


def _type_text(hint: object) -> str:
    args = typing.get_args(hint)
    if typing.get_origin(hint) is tuple:
        item = _type_text(args[0])
        return "list of strings" if item == "string" else f"list of {item}"
    if type(None) in args:
        return _type_text(next(a for a in args if a is not type(None)))
    if typing.get_origin(hint) is Literal:
        return " \\| ".join(f'`"{a}"`' for a in args)
    if hint is bool:
        return "boolean"
    return "integer ≥ 1" if hint is int else "string"


def markdown() -> str:
    """``docs/reference/pyproject.md``."""
    hints = typing.get_type_hints(BackendSettings)
    docs = field_docs()
    lines = [
        f"# `[tool.{TOOL}]` reference",
        "",
        "<!-- Generated from BackendSettings in plugin/ort_reduced_build/settings/model.py by",
        "     `python -m ort_reduced_build.settings.schema --write`; tests/test_settings_schema.py checks it. -->",
        "",
        inspect.cleandoc(BackendSettings.__doc__ or ""),
        "",
        "Precedence, lowest first: `pyproject.toml`, `-C`, environment. An unknown key in any source is an",
        "error that names the source and suggests the closest keys. Editors and `validate-pyproject` check",
        f"the table with the JSON schema `{SCHEMA_FILE}` that this package registers.",
        "",
        "| key | type | default |",
        "|---|---|---|",
    ]
    for field in fields(BackendSettings):
        default = _default(field.name)
        shown = "unset" if default is None else f"`{json.dumps(default)}`"
        key = setting_key(field.name)
        lines.append(f"| [`{key}`](#{key}) | {_type_text(hints[field.name])} | {shown} |")
    for field in fields(BackendSettings):
        key = setting_key(field.name)
        lines += [
            "",
            f"## `{key}`",
            "",
            textwrap.fill(" ".join(docs[field.name].split()), 100, break_on_hyphens=False, break_long_words=False),
            "",
            f"`-C {conf_name(key)}=...` · environment `{env_name(key)}`",
        ]
    return "\n".join(lines) + "\n"


def _write(root: Path) -> list[Path]:
    schema = root / "plugin/ort_reduced_build/resources" / SCHEMA_FILE
    page = root / DOCS_PAGE
    schema.parent.mkdir(parents=True, exist_ok=True)
    page.parent.mkdir(parents=True, exist_ok=True)
    schema.write_text(json.dumps(json_schema(), indent=2) + "\n", encoding="utf-8")
    page.write_text(markdown(), encoding="utf-8")
    return [schema, page]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Regenerate the settings schema and reference page.")
    parser.add_argument("--write", action="store_true", help="write both files in this checkout")
    args = parser.parse_args()
    if args.write:
        for path in _write(Path(__file__).resolve().parents[3]):
            print(path)
    else:
        print(json.dumps(json_schema(), indent=2))
