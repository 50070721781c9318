"""The raw settings sources of the build backend, merged before the typed dataclass is built.

Precedence, lowest first: ``[tool.ort-reduced-build]`` in pyproject.toml, ``-C ort-reduced-build.KEY=V``
(PEP 517 config settings), environment ``ORT_REDUCED_BUILD_KEY``. Every key of every source that is not
a setting is reported with its source and up to three suggestions; the caller raises once.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

__all__ = [
    "CONF_PREFIX",
    "ENV_PREFIX",
    "NOT_SETTINGS_ENV",
    "TOOL",
    "RawValue",
    "conf_name",
    "env_name",
    "merge_sources",
    "split_config_settings",
]

TOOL = "ort-reduced-build"
CONF_PREFIX = f"{TOOL}."
ENV_PREFIX = "ORT_REDUCED_BUILD_"
NOT_SETTINGS_ENV = frozenset({"ORT_REDUCED_BUILD_PYTHON"})
"""Variables with our prefix that are not settings: hints that ``cmake/OrtReducedBuild.cmake`` reads."""


@dataclass(frozen=True)
class RawValue:
    """One setting as a source gave it, before conversion."""

    value: object
    origin: str
    """Where it came from, as a user would write it: ``-C ort-reduced-build.jobs``."""
    textual: bool
    """From ``-C`` or the environment: strings to parse (TOML values are typed already)."""


def conf_name(key: str) -> str:
    return f"{CONF_PREFIX}{key}"


def env_name(key: str) -> str:
    return ENV_PREFIX + key.upper().replace("-", "_")


def toml_name(key: str) -> str:
    return f"pyproject.toml [tool.{TOOL}] {key}"


def split_config_settings(config_settings: Mapping[str, object] | None) -> tuple[dict[str, object], dict[str, object]]:
    """``(ours, theirs)``: our ``ort-reduced-build.*`` entries (prefix removed) and everything else."""
    ours: dict[str, object] = {}
    theirs: dict[str, object] = {}
    for name, value in (config_settings or {}).items():
        if name.startswith(CONF_PREFIX):
            ours[name.removeprefix(CONF_PREFIX)] = value
        else:
            theirs[name] = value
    return ours, theirs


def merge_sources(
    keys: Iterable[str],
    pyproject: Mapping[str, object],
    conf: Mapping[str, object],
    env: Mapping[str, str],
) -> tuple[dict[str, RawValue], list[str]]:
    """Merge the three sources by precedence; also return one message per unknown key."""
    known = list(keys)
    merged: dict[str, RawValue] = {}
    unknown: list[str] = []
    table = pyproject.get("tool", {})
    table = table.get(TOOL, {}) if isinstance(table, Mapping) else {}
    if not isinstance(table, Mapping):
        unknown.append(f"pyproject.toml: [tool.{TOOL}] must be a table, not {type(table).__name__}")
        table = {}
    for key, value in table.items():
        if key in known:
            merged[key] = RawValue(value, toml_name(key), textual=False)
        else:
            unknown.append(_unknown(toml_name(key), key, known, str))
    for key, value in conf.items():
        if key in known:
            merged[key] = RawValue(value, f"-C {conf_name(key)}", textual=True)
        else:
            unknown.append(_unknown(f"-C {conf_name(key)}", key, known, conf_name))
    by_env = {env_name(k): k for k in known}
    suffixes = [name.removeprefix(ENV_PREFIX) for name in by_env]
    for name in sorted(env):
        if not name.startswith(ENV_PREFIX) or name in NOT_SETTINGS_ENV or env[name] == "":
            continue
        if name in by_env:
            merged[by_env[name]] = RawValue(env[name], f"environment {name}", textual=True)
        else:
            unknown.append(_unknown(f"environment {name}", name.removeprefix(ENV_PREFIX), suffixes, _env_spelling))
    return merged, unknown


def _env_spelling(suffix: str) -> str:
    return ENV_PREFIX + suffix


def _unknown(where: str, given: str, candidates: list[str], spell: Callable[[str], str]) -> str:
    close = difflib.get_close_matches(given, candidates, n=3)
    hint = f"; did you mean {' or '.join(repr(spell(c)) for c in close)}?" if close else ""
    return f"{where}: unknown setting{hint}"
