"""Explain: which models need which ops and types (``explain``), or what a config file lists.

Each op is attributed to the models that need it, with the types each needs; ``Explanation.lines``
also names the ops only one model needs (the cheapest to drop).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..engine.config import OpsConfig, TypeUsage

__all__ = ["Explanation", "OpUse", "explain_config", "explain_models"]


@dataclass(frozen=True)
class OpUse:
    """One op: the opsets it is needed at, its types, and which models need it with which types."""

    domain: str
    op: str
    opsets: tuple[int, ...]
    types: TypeUsage | None
    """Types over all models; None: every type (untracked or unrestricted)."""
    models: tuple[tuple[str, TypeUsage | None], ...] = ()

    @property
    def name(self) -> str:
        return f"{self.domain}:{self.op}"


def _types_json(usage: TypeUsage | None) -> Any:
    return json.loads(usage.to_json()) if usage is not None else None


def _types_text(usage: TypeUsage | None) -> str:
    if usage is None:
        return "all types"
    obj = _types_json(usage)
    parts = [
        f"{kind[:-1]} {i}: {','.join(ts)}" for kind in ("inputs", "outputs") for i, ts in obj.get(kind, {}).items()
    ]
    parts += [f"custom: {'/'.join('_'.join(t) for t in obj['custom'])}"] if "custom" in obj else []
    return "; ".join(parts) or "all types"


@dataclass(frozen=True)
class Explanation:
    """Which models need which ops; ``models`` is empty when explaining a config file."""

    source: str
    ops: tuple[OpUse, ...]
    models: tuple[str, ...] = ()

    def only(self, domain: str, op: str) -> Explanation:
        return Explanation(self.source, tuple(u for u in self.ops if (u.domain, u.op) == (domain, op)), self.models)

    def single_model_ops(self) -> dict[str, list[str]]:
        """Model -> ops no other model needs: what dropping that model would save."""
        out: dict[str, list[str]] = {m: [] for m in self.models}
        for use in self.ops:
            if len(use.models) == 1:
                out[use.models[0][0]].append(use.name)
        return out

    def op_counts(self) -> dict[str, int]:
        counts = dict.fromkeys(self.models, 0)
        for use in self.ops:
            for model, _ in use.models:
                counts[model] += 1
        return counts

    def to_json_obj(self) -> dict[str, Any]:
        single = self.single_model_ops()
        counts = self.op_counts()
        return {
            "source": self.source,
            "models": [{"model": m, "ops": counts[m], "only_here": single[m]} for m in self.models],
            "ops": [
                {
                    "domain": u.domain,
                    "op": u.op,
                    "opsets": list(u.opsets),
                    "types": _types_json(u.types),
                    "models": [{"model": m, "types": _types_json(t)} for m, t in u.models],
                }
                for u in self.ops
            ],
        }

    def lines(self, detailed: bool = False) -> list[str]:
        out = []
        for u in self.ops:
            opsets = ",".join(str(v) for v in u.opsets)
            who = f"  {len(u.models)} model(s): {', '.join(m for m, _ in u.models)}" if self.models else ""
            out.append(f"{u.name} opset {opsets}  [{_types_text(u.types)}]{who}")
            if detailed:
                out += [f"  {m}: {_types_text(t)}" for m, t in u.models]
        if self.models and not detailed:
            single = self.single_model_ops()
            out.append("per model (ops; ops only this model needs, the cheapest to drop):")
            for model, count in self.op_counts().items():
                only = f": {', '.join(single[model])}" if single[model] else ""
                out.append(f"  {model}: {count} ops; {len(single[model])} only here{only}")
        return out


def explain_config(config: OpsConfig, source: str) -> Explanation:
    """The ops and types of a config file (no model attribution)."""
    opsets = _op_opsets(config)
    ops = tuple(OpUse(d, o, tuple(sorted(v)), config.types.get((d, o))) for (d, o), v in sorted(opsets.items()))
    return Explanation(source, ops)


def explain_models(models: Mapping[str, OpsConfig], source: str) -> Explanation:
    """Attribute each op (and its types) to the models that need it."""
    uses: dict[tuple[str, str], dict[str, Any]] = {}
    for model, usage in models.items():
        for (domain, op), opsets in _op_opsets(usage).items():
            entry = uses.setdefault((domain, op), {"opsets": set(), "models": []})
            entry["opsets"] |= opsets
            entry["models"].append((model, usage.types.get((domain, op))))
    ops = []
    for (domain, op), entry in sorted(uses.items()):
        per_model = tuple(sorted(entry["models"]))
        typed = [t for _, t in per_model]
        types = None if any(t is None for t in typed) else _union(typed)
        ops.append(OpUse(domain, op, tuple(sorted(entry["opsets"])), types, per_model))
    return Explanation(source, tuple(ops), tuple(sorted(models)))


def _op_opsets(config: OpsConfig) -> dict[tuple[str, str], set[int]]:
    out: dict[tuple[str, str], set[int]] = {}
    for domain, by_opset in config.ops.items():
        for opset, names in by_opset.items():
            for op in names:
                out.setdefault((domain, op), set()).add(opset)
    return out


def _union(usages: list[TypeUsage | None]) -> TypeUsage | None:
    result: TypeUsage | None = None
    for u in usages:
        if u is not None:
            result = u if result is None else result.union(u)
    return result
