"""Compare two configs: ops added and removed, per-op type changes, globally allowed types.

Comments (the header) never count: two configs differ only when a reduced build from them would.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from ..engine.config import OpsConfig, TypeUsage

__all__ = ["ConfigDiff", "OpChange", "TypeChange", "diff_configs"]


@dataclass(frozen=True, order=True)
class OpChange:
    """An op line present on one side only (its opset is the kernel since-version)."""

    domain: str
    opset: int
    op: str
    types: str = ""
    """The op's type JSON on the side that has it; empty for "all types"."""

    def line(self) -> str:
        return f"{self.domain};{self.opset};{self.op}{self.types}"


@dataclass(frozen=True)
class TypeChange:
    """An op on both sides whose type information changed."""

    domain: str
    op: str
    old: TypeUsage | None
    new: TypeUsage | None

    def args(self) -> dict[str, tuple[list[str], list[str]]]:
        """Argument -> (types added, types removed); only when both sides restrict the op."""
        old, new = _by_arg(self.old), _by_arg(self.new)
        out = {}
        for arg in sorted(set(old) | set(new)):
            added, removed = (
                sorted(new.get(arg, set()) - old.get(arg, set())),
                sorted(old.get(arg, set()) - new.get(arg, set())),
            )
            if added or removed:
                out[arg] = (added, removed)
        return out

    def line(self) -> str:
        name = f"{self.domain}:{self.op}"
        if self.old is None or self.new is None:
            return f"{name}: {_describe(self.old)} -> {_describe(self.new)}"
        changes = [
            f"{arg}: {' '.join([*(f'+{t}' for t in added), *(f'-{t}' for t in removed)])}"
            for arg, (added, removed) in self.args().items()
        ]
        return f"{name} {'; '.join(changes)}"

    def to_json_obj(self) -> dict[str, Any]:
        obj: dict[str, Any] = {
            "domain": self.domain,
            "op": self.op,
            "old": json.loads(self.old.to_json()) if self.old else None,
            "new": json.loads(self.new.to_json()) if self.new else None,
        }
        if self.old is not None and self.new is not None:
            obj["added"] = {arg: a for arg, (a, _) in self.args().items() if a}
            obj["removed"] = {arg: r for arg, (_, r) in self.args().items() if r}
        return obj


def _by_arg(usage: TypeUsage | None) -> dict[str, set[str]]:
    if usage is None:
        return {}
    out = {f"input {i}": set(ts) for i, ts in usage.inputs.items()}
    out |= {f"output {i}": set(ts) for i, ts in usage.outputs.items()}
    if usage.custom:
        out["custom"] = {"_".join(t) for t in usage.custom}
    return out


def _describe(usage: TypeUsage | None) -> str:
    if usage is None:
        return "all types"
    return "; ".join(f"{arg} {','.join(sorted(ts))}" for arg, ts in sorted(_by_arg(usage).items()))


@dataclass(frozen=True)
class ConfigDiff:
    """What changes from ``old`` to ``new``."""

    old: str
    new: str
    added: tuple[OpChange, ...] = ()
    removed: tuple[OpChange, ...] = ()
    types: tuple[TypeChange, ...] = ()
    global_old: frozenset[str] | None = None
    global_new: frozenset[str] | None = None
    all_ops_old: bool = False
    all_ops_new: bool = False

    @property
    def identical(self) -> bool:
        return (
            not (self.added or self.removed or self.types)
            and self.global_old == self.global_new
            and self.all_ops_old == self.all_ops_new
        )

    def lines(self) -> list[str]:
        out = [f"--- {self.old}", f"+++ {self.new}"]
        out += [f"- {c.line()}" for c in self.removed]
        out += [f"+ {c.line()}" for c in self.added]
        out += [f"~ {c.line()}" for c in self.types]
        if self.global_old != self.global_new:
            out.append(f"~ !globally_allowed_types: {_global_text(self.global_old)} -> {_global_text(self.global_new)}")
        if self.all_ops_old != self.all_ops_new:
            out.append(f"~ !no_ops_specified_means_all_ops_are_required: {self.all_ops_old} -> {self.all_ops_new}")
        if self.identical:
            out.append("no differences")
        return out

    def to_json_obj(self) -> dict[str, Any]:
        def op(c: OpChange) -> dict[str, Any]:
            return {"domain": c.domain, "opset": c.opset, "op": c.op, "types": json.loads(c.types) if c.types else None}

        old_g, new_g = self.global_old or frozenset(), self.global_new or frozenset()
        return {
            "old": self.old,
            "new": self.new,
            "identical": self.identical,
            "ops_added": [op(c) for c in self.added],
            "ops_removed": [op(c) for c in self.removed],
            "types_changed": [c.to_json_obj() for c in self.types],
            "globally_allowed_types": {
                "old": sorted(self.global_old) if self.global_old is not None else None,
                "new": sorted(self.global_new) if self.global_new is not None else None,
                "added": sorted(new_g - old_g),
                "removed": sorted(old_g - new_g),
            },
        }


def _global_text(types: frozenset[str] | None) -> str:
    return ",".join(sorted(types)) if types is not None else "(none)"


def _lines(config: OpsConfig) -> set[OpChange]:
    out = set()
    for domain, by_opset in config.ops.items():
        for opset, names in by_opset.items():
            for op in names:
                usage = config.types.get((domain, op))
                out.add(OpChange(domain, opset, op, usage.to_json() if usage is not None else ""))
    return out


def diff_configs(old: OpsConfig, new: OpsConfig, old_label: str = "old", new_label: str = "new") -> ConfigDiff:
    """Ops (by domain, opset, op) added and removed, and type changes of ops on both sides."""
    old_ops = {(c.domain, c.opset, c.op): c for c in _lines(old)}
    new_ops = {(c.domain, c.opset, c.op): c for c in _lines(new)}
    added = tuple(sorted(new_ops[k] for k in set(new_ops) - set(old_ops)))
    removed = tuple(sorted(old_ops[k] for k in set(old_ops) - set(new_ops)))
    both = old.op_keys() & new.op_keys()
    types = tuple(
        TypeChange(d, o, old.types.get((d, o)), new.types.get((d, o)))
        for d, o in sorted(both)
        if old.types.get((d, o)) != new.types.get((d, o))
    )
    return ConfigDiff(
        old_label,
        new_label,
        added,
        removed,
        types,
        old.globally_allowed_types,
        new.globally_allowed_types,
        old.all_ops_if_empty,
        new.all_ops_if_empty,
    )
