"""The options a verb compares models with a config file under: those given, else the config's header's.

``check``, ``diff`` (models against a config) and ``config --check`` compare models with a config file
whose header records the options it was written with (``# optimization level basic, style Runtime, type
reduction on, target arm``, and ``# + FILE`` per ``--extra-ops``/``--merge`` file); the body records
``!globally_allowed_types``. ``resolve`` takes each option the command line leaves out from there (the
defaults only where the header records nothing), so a gate converts the models as the config's were. An
option given explicitly wins, and where it differs from the header a ``Mismatch`` names the file, the option
and both values. ``Resolved.command`` is the ``config`` command line that writes the file with these options.
Custom-op libraries are not recorded: the command names those given.
"""

from __future__ import annotations

import argparse
import contextlib
import shlex
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..engine.config import HeaderOptions, OpsConfig, parse_config, parse_header, read_config
from ..errors import ConfigError

__all__ = ["Mismatch", "Resolved", "listed_path", "resolve"]


@dataclass(frozen=True)
class Mismatch:
    """An option given on the command line that differs from the one the config was written with."""

    config: Path
    given: str
    written: str
    """Each as the command line spells it: ``--optimization-level basic``, ``no --target-platform`` ..."""

    def line(self) -> str:
        return f"{self.config}: written with {self.written}, but {self.given} was given"


@dataclass(frozen=True)
class Resolved:
    """The verb's arguments with the header's options filled in, and what differs from the header."""

    args: argparse.Namespace
    header: HeaderOptions
    mismatches: tuple[Mismatch, ...]
    flags: tuple[str, ...]
    """The options of a ``config`` command that writes the file: header's and given, composition included."""

    def command(self, paths: Sequence[str | Path], output: Path) -> str:
        """The command line that writes ``output`` from ``paths`` with these options."""
        return shlex.join(["ort-reduced-build", "config", *map(str, paths), "-o", str(output), *self.flags])


def resolve(args: argparse.Namespace, config: Path) -> Resolved:
    """``args`` with every conversion and composition option it leaves out taken from ``config``'s header
    (only the options the verb takes are set in ``args``; ``flags`` has them all)."""
    header, body = _read(config)
    given = vars(args)
    extras_given = tuple(map(str, [*given.get("extra_ops", []), *given.get("merge", [])]))
    explicit: dict[str, _Value] = {
        "level": given.get("optimization_level"),
        "styles": tuple(given.get("styles") or ()) or None,
        "target": given.get("target_platform"),
        "types": _given_types(given),
        "extras": extras_given or None,
    }
    written = _written(header, body, config)
    values: dict[str, _Value] = {}
    mismatches: list[Mismatch] = []
    flags: list[str] = []
    for name, option in _OPTIONS.items():
        mine, theirs = explicit[name], written.get(name, option.default)
        same = mine is None or (
            set(_many(mine)) == set(_many(theirs)) if name in ("styles", "extras") else mine == theirs
        )
        values[name] = theirs if same else mine  # styles and files in any order: the header's
        if not same and name in written:
            mismatches.append(Mismatch(config, option.spell(mine), option.spell(theirs)))
        if values[name] != option.default or mine is not None:
            flags += option.argv(values[name])
    flags += [t for lib in given.get("custom_op_library") or () for t in ("--custom-op-library", str(lib))]
    flags += ["--allow-conversion-failures"] if given.get("allow_conversion_failures") else []
    effective = argparse.Namespace(**given)
    effective.optimization_level = values["level"]
    effective.styles = list(_many(values["styles"]))
    effective.target_platform = values["target"]
    if "type_reduction" in given:  # the verbs that compose a config
        types = str(values["types"])
        effective.type_reduction = None if types.startswith("global ") else types == "on"
        effective.globally_allowed_types = types.removeprefix("global ") if types.startswith("global ") else None
        if not extras_given:
            effective.extra_ops = [Path(e) for e in _many(values["extras"])]
    return Resolved(effective, header, tuple(mismatches), tuple(flags))


_Value = str | tuple[str, ...] | None
"""An option's value: level, target and types are words; styles and extras are tuples of them."""


def _many(value: _Value) -> tuple[str, ...]:
    """A tuple-valued option's value (styles, extras); none given is empty."""
    return tuple(value or ())


@dataclass(frozen=True)
class _Option:
    """One option: its flag, its default and the command-line words that give a value."""

    name: str
    default: _Value
    argv: Callable[[Any], list[str]]

    def spell(self, value: _Value) -> str:
        return " ".join(self.argv(value)) or f"no {self.name}"


def _types_argv(value: str) -> list[str]:
    if value.startswith("global "):
        return ["--globally-allowed-types", value.removeprefix("global ")]
    return ["--type-reduction" if value == "on" else "--no-type-reduction"]


_OPTIONS = {
    "level": _Option("--optimization-level", "all", lambda v: ["--optimization-level", v]),
    "styles": _Option("--optimization-style", ("Fixed",), lambda v: ["--optimization-style", *v]),
    "target": _Option("--target-platform", None, lambda v: ["--target-platform", v] if v else []),
    "types": _Option("--type-reduction", "on", _types_argv),
    "extras": _Option("--extra-ops", (), lambda v: [t for e in v for t in ("--extra-ops", e)]),
}
"""Type information is one option of three values: ``on``, ``off``, ``global T,...``."""


def _written(header: HeaderOptions, body: OpsConfig | None, config: Path) -> dict[str, _Value]:
    """The options the config records (none but its extra files when its header has no options line)."""
    extras = tuple(str(listed_path(e, config)) for e in header.extra_configs)
    if header.optimization_level is None:
        return {"extras": extras}
    types = "on" if header.type_reduction else "off"
    if not header.type_reduction and (global_types := _global_types(body, extras)):
        types = f"global {global_types}"
    return {
        "level": header.optimization_level,
        "styles": header.optimization_styles,
        "target": header.target_platform,
        "types": types,
        "extras": extras,
    }


def _given_types(given: dict[str, object]) -> str | None:
    """How the command line asks for type information; None: it does not."""
    if given.get("globally_allowed_types"):
        names = {t.strip() for t in str(given["globally_allowed_types"]).split(",") if t.strip()}
        return f"global {','.join(sorted(names))}"
    reduction = given.get("type_reduction")
    return None if reduction is None else "on" if reduction else "off"


def listed_path(path: str, config: Path | None) -> Path:
    """A path a header lists: relative to the working directory, else to the config's directory."""
    here = Path(path)
    if here.exists() or config is None:
        return here
    beside = config.parent / path
    return beside if beside.exists() else here


def _read(config: Path) -> tuple[HeaderOptions, OpsConfig | None]:
    """The header and body of ``config``; nothing recorded when it cannot be read (``config --check``
    then calls it stale; ``check`` and ``diff`` read it again and say why)."""
    try:
        text = config.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return HeaderOptions(()), None
    try:
        return parse_header(text), parse_config(text, str(config))
    except ConfigError:
        return parse_header(text), None


def _global_types(body: OpsConfig | None, extras: Sequence[str]) -> str | None:
    """``--globally-allowed-types`` as the config was written with it: its global types, unless the
    extra-ops/merged files bring them all."""
    if body is None or body.globally_allowed_types is None:
        return None
    brought: set[str] = set()
    for extra in extras:
        with contextlib.suppress(ConfigError):  # reading it for the run says what is wrong with it
            brought |= read_config(Path(extra)).globally_allowed_types or set()
    return None if body.globally_allowed_types <= brought else ",".join(sorted(body.globally_allowed_types))
