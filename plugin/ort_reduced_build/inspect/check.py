"""Check: does a config cover every op and type the models need (``check``).

The type semantic is ORT's own, asked of ORT's type-usage processors (the table ``reduce_op_kernels.py``
uses when it trims kernels), never copied here:

* An op is covered when the config lists it under the same domain and opset (the kernel since-version).
* An op listed without type information keeps all its types; so does an op ORT has no processor for.
* Otherwise a type on a tracked argument is covered when the processor's ``is_input_type_enabled`` /
  ``is_output_type_enabled`` accepts it given the config's types for that argument, so the types ORT
  always keeps (``required_input_types``: int32_t/int64_t for Add, Concat, Mul, ...; int8_t/uint8_t/int32_t
  for DequantizeLinear) count as covered. An argument the config does not restrict keeps all types.
* ``!globally_allowed_types``: the processors are asked with that list instead.
* OneHot's custom triples go through the processor's ``is_typed_registration_needed``.

Only tracked arguments are checked: they are the ones a reduced build restricts.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..engine.config import OpsConfig, TypeUsage, merge
from ..engine.pipeline import ModelResult, Request, run
from ..errors import OrtReducedBuildError
from .modelcheck import check_model

__all__ = [
    "CheckReport",
    "Gap",
    "Need",
    "check",
    "find_gaps",
    "needs_by_model",
]


@dataclass(frozen=True, order=True)
class Need:
    """One thing a model needs: an op (``arg`` None) or one type on one of its arguments."""

    domain: str
    opset: int
    op: str
    arg: str = ""
    """``input N``, ``output N``, ``custom`` or ``all types``; empty for the op itself."""
    type: str = ""

    def describe(self) -> str:
        where = f"{self.domain};{self.opset};{self.op}"
        if not self.arg:
            return f"{where} (op not in config)"
        if self.arg == "all types":
            return f"{where} all types (ORT's type table lacks one of them)"
        return f"{where} {self.arg} type {self.type}"


@dataclass(frozen=True)
class Gap:
    """A need the config does not cover, and the models that have it."""

    need: Need
    models: tuple[str, ...]
    hint: str = ""


@dataclass(frozen=True)
class CheckReport:
    """What ``check`` found: every gap and every model that could not be used, all at once."""

    config: str
    models: tuple[str, ...]
    gaps: tuple[Gap, ...]
    invalid: tuple[tuple[str, str], ...] = ()
    """``(model, cause)`` for .ort files that fail validation and models that fail to convert."""

    @property
    def ok(self) -> bool:
        return not self.gaps and not self.invalid

    def to_json_obj(self) -> dict[str, Any]:
        return {
            "config": self.config,
            "ok": self.ok,
            "models": list(self.models),
            "gaps": [
                {**dataclasses.asdict(g.need), "models": list(g.models), "hint": g.hint or None} for g in self.gaps
            ],
            "invalid": [{"model": m, "error": e} for m, e in self.invalid],
        }

    def lines(self) -> list[str]:
        out = [f"invalid: {m}: {e}" for m, e in self.invalid]
        if self.gaps:
            out.append(f"{self.config} misses {len(self.gaps)} op(s)/type(s):")
        for gap in self.gaps:
            out.append(f"  {gap.need.describe()}  needed by: {', '.join(gap.models)}")
            if gap.hint:
                out.append(f"    {gap.hint}")
        return out


def needs_by_model(results: Sequence[ModelResult]) -> dict[str, OpsConfig]:
    """Each model's own ops and types (its optimization styles merged), by display path.

    A given ``.ort`` file's needs include what its saved runtime optimizations add or rewrite when
    replayed (``engine.replay``).
    """
    grouped: dict[str, list[OpsConfig]] = {}
    for r in results:
        if r.usage is not None:
            grouped.setdefault(r.model.display, []).append(r.usage.config)
    return {m: merge(cfgs) for m, cfgs in sorted(grouped.items())}


def _needs(model: OpsConfig) -> Iterator[Need]:
    for domain, opsets in model.ops.items():
        for opset, names in opsets.items():
            for op in names:
                yield Need(domain, opset, op)
                usage = model.types.get((domain, op))
                if usage is None:
                    yield Need(domain, opset, op, "all types")
                    continue
                for kind, args in (("input", usage.inputs), ("output", usage.outputs)):
                    for index, types in args.items():
                        for t in types:
                            yield Need(domain, opset, op, f"{kind} {index}", t)
                for triple in usage.custom:
                    yield Need(domain, opset, op, "custom", ",".join(triple))


class _Coverage:
    """Asks ORT's type-usage processors whether ``config`` enables a need."""

    def __init__(self, config: OpsConfig) -> None:
        self.config = config
        self.processors = _ort_processors()

    def covers(self, need: Need) -> bool:
        cfg = self.config
        if not need.arg:
            return need.op in cfg.ops.get(need.domain, {}).get(need.opset, frozenset())
        proc = self.processors.get(f"{need.domain}:{need.op}")
        if proc is None:
            return True  # no processor: ORT keeps every type of this op (per-op types are ignored)
        usage = cfg.types.get((need.domain, need.op))
        globally = cfg.globally_allowed_types
        if need.arg == "all types":
            return globally is None and usage is None
        if globally is None and usage is None:
            return True
        if need.arg == "custom":
            return self._custom(proc, usage, need.type.split(","))
        kind, index_text = need.arg.split(" ")
        index = int(index_text)
        if globally is not None:
            allowed: frozenset[str] = globally
        else:
            assert usage is not None
            args = usage.inputs if kind == "input" else usage.outputs
            if index not in args:
                return True  # the config does not restrict this argument
            allowed = args[index]
        check = proc.is_input_type_enabled if kind == "input" else proc.is_output_type_enabled
        return bool(check(need.type, index, allowed))

    def _custom(self, proc: Any, usage: TypeUsage | None, types: list[str]) -> bool:
        registration = "_".join("string" if t == "std::string" else t for t in types)
        if self.config.globally_allowed_types is not None:
            return bool(proc.is_typed_registration_needed(registration, set(self.config.globally_allowed_types)))
        assert usage is not None
        proc.from_config_entry(usage.to_json())
        return bool(proc.is_typed_registration_needed(registration, None))


def _ort_processors() -> dict[str, Any]:
    """ORT's ``domain:op -> processor`` table (fresh instances; we restore config entries into them)."""
    from onnxruntime.tools.ort_format_model import operator_type_usage_processors as otup

    # ORT has no public accessor for single processors: OperatorTypeUsageManager's filter only asks about
    # the registration argument, and a reduced build restricts every tracked argument.
    return dict(otup._create_operator_type_usage_processors())  # noqa: SLF001


def find_gaps(models: Mapping[str, OpsConfig], config: OpsConfig) -> tuple[Gap, ...]:
    """Every need of ``models`` that ``config`` does not cover, with the models needing it, sorted."""
    if config.all_ops_if_empty and not config.ops:
        return ()
    coverage = _Coverage(config)
    missing: dict[Need, list[str]] = {}
    for model, usage in models.items():
        ops_missing = set()
        for need in _needs(usage):
            if (need.domain, need.opset, need.op) in ops_missing:
                continue  # types of a missing op are not separate gaps
            if not coverage.covers(need):
                missing.setdefault(need, []).append(model)
                if not need.arg:
                    ops_missing.add((need.domain, need.opset, need.op))
    return tuple(Gap(n, tuple(sorted(set(ms))), _hint(n, config)) for n, ms in sorted(missing.items()))


def _hint(need: Need, config: OpsConfig) -> str:
    if need.arg:
        return ""
    elsewhere = sorted(v for v, names in config.ops.get(need.domain, {}).items() if need.op in names)
    if not elsewhere:
        return ""
    listed = ", ".join(str(v) for v in elsewhere)
    return f"the config has {need.op} at opset {listed}; the models need the kernel since-version {need.opset}"


def check(config: OpsConfig, config_label: str, request: Request) -> CheckReport:
    """Validate the request's ``.ort`` models, convert the ``.onnx`` ones (cached), and find every gap."""
    invalid: list[tuple[str, str]] = []
    usable = []
    given = tuple(m.display for m in request.models)
    for model in request.models:
        if model.is_ort:
            try:
                check_model(model.path)
            except OrtReducedBuildError as exc:
                invalid.append((model.display, str(exc).removeprefix(f"{model.path}: ")))
                continue
        usable.append(model)
    request = dataclasses.replace(
        request, models=tuple(usable), allow_failures=True, config_path=None, ort_dir=None, ort_beside_source=False
    )
    result = run(request)
    invalid += [(r.model.display, r.error or "") for r in result.failed]
    needs = needs_by_model(result.results)
    return CheckReport(config_label, given, find_gaps(needs, config), tuple(sorted(invalid)))
