"""The one home of ORT's reduced-build config grammar: parse, merge, format.

The grammar is the one ``onnxruntime/tools/reduced_build_config_parser.py`` reads::

    # comment
    domain;opset[,opset...];Op1,Op2{"inputs": {"0": ["float"]}},Op3
    !globally_allowed_types;float,int64_t
    !no_ops_specified_means_all_ops_are_required

Semantics kept here, so that every stage agrees on them:

* Type information belongs to ``(domain, op)``, not to an opset line (ORT keeps one entry per op).
* Within one file an op is type-restricted when any of its lines carries JSON; the restriction is the
  union of those entries (ORT's own parser keeps only the *last* one, ORT issue 16742).
* Across files (``merge``), an op is restricted only if every file that needs it restricts it: a file
  that needs the op with no type information needs all of its types.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ConfigError

__all__ = [
    "HeaderOptions",
    "OpsConfig",
    "TypeUsage",
    "format_config",
    "format_graph_types",
    "format_header",
    "format_options",
    "format_value_types",
    "merge",
    "parse_config",
    "parse_graph_types",
    "parse_header",
    "parse_type_entry",
    "parse_value_types",
    "read_config",
    "read_config_and_value_types",
]

NAME_RE = re.compile(r"[A-Za-z0-9_.]+")
"""Valid domain and operator names: nothing that could start a new field, op or line."""
TYPE_RE = re.compile(r"[A-Za-z0-9_:<>,]+")
"""Valid C++ type names, e.g. ``float``, ``int64_t``, ``std::map<int64_t,float>``."""

GLOBAL_TYPES_PREFIX = "!globally_allowed_types;"
ALL_OPS_IF_EMPTY = "!no_ops_specified_means_all_ops_are_required"
VALUE_TYPES_PREFIX = "# value types: "
"""A comment line of ours (ORT's parsers skip it): every value type the models hold, for ``build`` to
leave out type support (``--disable_types``) no model needs. Absent when not known (merged configs)."""
_VALUE_TYPE_RE = re.compile(r"[a-z0-9_]+")
GRAPH_TYPES_PREFIX = "# graph types "
"""Comment lines of ours, one per op the config gives no types (ORT has no type processor for it): the
element types on its nodes, e.g. ``# graph types ai.onnx.ml:Scaler: float``. ``build`` keeps only the
kernels registered for them; an op without such a line keeps all of its kernels."""
_GRAPH_TYPES_RE = re.compile(r"^# graph types ([A-Za-z0-9_.]+):([A-Za-z0-9_.]+): ([A-Za-z0-9_:,]+)$")
_MODEL_PREFIX = "# - "
_EXTRA_PREFIX = "# + "
_OPTIONS_RE = re.compile(
    r"# optimization level (?P<level>[a-z]+), style (?P<styles>[A-Za-z+]+), type reduction (?P<tr>on|off)"
    r"(?:, target (?P<target>[a-z0-9]+))?$"
)

OpKey = tuple[str, str]
"""``(domain, op)``."""


@dataclass(frozen=True)
class TypeUsage:
    """The types one operator needs, per argument index (or ORT's ``custom`` tuples, e.g. OneHot)."""

    inputs: Mapping[int, frozenset[str]] = field(default_factory=dict)
    outputs: Mapping[int, frozenset[str]] = field(default_factory=dict)
    custom: frozenset[tuple[str, ...]] = frozenset()

    def union(self, other: TypeUsage) -> TypeUsage:
        """Per argument index union; never "last wins"."""
        return TypeUsage(
            inputs=_union_args(self.inputs, other.inputs),
            outputs=_union_args(self.outputs, other.outputs),
            custom=self.custom | other.custom,
        )

    def to_json(self) -> str:
        """The JSON ORT's ``OperatorTypeUsageManager`` writes, byte for byte."""
        obj: dict[str, object] = {}
        if self.custom:
            obj["custom"] = [list(t) for t in sorted(self.custom)]
        for key, args in (("inputs", self.inputs), ("outputs", self.outputs)):
            if any(args.values()):
                obj[key] = {str(i): sorted(args[i]) for i in sorted(args) if args[i]}
        return json.dumps(obj)

    @classmethod
    def from_json_obj(cls, obj: object) -> TypeUsage:
        """Build from decoded JSON; raises ``ValueError`` naming what is malformed."""
        if not isinstance(obj, dict) or not set(obj) <= {"inputs", "outputs", "custom"}:
            raise ValueError(f"type info must be an object with inputs/outputs/custom keys, got {obj!r}")
        args: dict[str, dict[int, frozenset[str]]] = {}
        for key in ("inputs", "outputs"):
            raw = obj.get(key, {})
            if not isinstance(raw, dict):
                raise ValueError(f"{key!r} must map argument indices to type lists")
            # An empty list restricts the argument to no types, as no entry for it does: one spelling.
            args[key] = {_arg_index(i): types for i, v in raw.items() if (types := _type_set(v))}
        custom_raw = obj.get("custom", [])
        if not isinstance(custom_raw, list):
            raise ValueError("'custom' must be a list of type lists")
        for t in custom_raw:
            _type_set(t)
        custom = frozenset(tuple(t) for t in custom_raw)
        return cls(inputs=args["inputs"], outputs=args["outputs"], custom=custom)


@dataclass(frozen=True)
class OpsConfig:
    """A parsed config: the operators per domain and opset, and the types they need."""

    ops: Mapping[str, Mapping[int, frozenset[str]]] = field(default_factory=dict)
    """domain -> opset (the kernel since-version) -> operator names."""
    types: Mapping[OpKey, TypeUsage] = field(default_factory=dict)
    """Per-op type restrictions. An op absent here may use every type its kernels support."""
    globally_allowed_types: frozenset[str] | None = None
    """``!globally_allowed_types``: one type list for every op; excludes per-op ``types``."""
    all_ops_if_empty: bool = False
    """``!no_ops_specified_means_all_ops_are_required``."""

    def op_keys(self) -> set[OpKey]:
        return {(d, op) for d, opsets in self.ops.items() for names in opsets.values() for op in names}

    def op_count(self) -> int:
        return len(self.op_keys())

    def without_types(self) -> OpsConfig:
        """The same ops with no per-op type restriction (type reduction off)."""
        return OpsConfig(self.ops, {}, self.globally_allowed_types, self.all_ops_if_empty)


def _arg_index(raw: object) -> int:
    if not isinstance(raw, str) or not raw.isdigit():
        raise ValueError(f"argument index must be a non-negative integer string, got {raw!r}")
    return int(raw)


def _type_set(raw: object) -> frozenset[str]:
    if not isinstance(raw, list) or not all(isinstance(t, str) and TYPE_RE.fullmatch(t) for t in raw):
        raise ValueError(f"expected a list of type names, got {raw!r}")
    return frozenset(raw)


def _union_args(a: Mapping[int, frozenset[str]], b: Mapping[int, frozenset[str]]) -> dict[int, frozenset[str]]:
    return {i: a.get(i, frozenset()) | b.get(i, frozenset()) for i in set(a) | set(b)}


def merge(configs: Iterable[OpsConfig]) -> OpsConfig:
    """Union of configs per domain, opset, op and argument index. Commutative, associative, idempotent."""
    configs = list(configs)
    ops: dict[str, dict[int, frozenset[str]]] = {}
    for cfg in configs:
        for domain, opsets in cfg.ops.items():
            target = ops.setdefault(domain, {})
            for opset, names in opsets.items():
                target[opset] = target.get(opset, frozenset()) | names
    types: dict[OpKey, TypeUsage] = {}
    unrestricted: set[OpKey] = set()
    for cfg in configs:
        unrestricted |= cfg.op_keys() - set(cfg.types)
        for key, usage in cfg.types.items():
            types[key] = types[key].union(usage) if key in types else usage
    restricted = {k: v for k, v in types.items() if k not in unrestricted}
    global_sets = [c.globally_allowed_types for c in configs if c.globally_allowed_types is not None]
    global_types = frozenset().union(*global_sets) if global_sets else None
    if global_types is not None and restricted:
        raise ConfigError(
            "globally allowed types cannot be combined with per-op type information; "
            "drop one (e.g. --no-type-reduction)"
        )
    all_ops = bool(configs) and all(c.all_ops_if_empty for c in configs)
    return OpsConfig(ops, restricted, global_types, all_ops)


def parse_config(text: str, source: str = "<config>") -> OpsConfig:
    """Parse config text; errors name ``source``, the line and the cause."""
    ops: dict[str, dict[int, frozenset[str]]] = {}
    types: dict[OpKey, TypeUsage] = {}
    global_types: frozenset[str] | None = None
    all_ops = False
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        try:
            if not line or line.startswith("#"):
                continue
            if line == ALL_OPS_IF_EMPTY:
                all_ops = True
            elif line.startswith(GLOBAL_TYPES_PREFIX):
                if global_types is not None:
                    raise ValueError("globally allowed types were already specified")
                names = [t.strip() for t in line[len(GLOBAL_TYPES_PREFIX) :].split(",")]
                global_types = _type_set(names)
            else:
                _parse_op_line(line, ops, types)
        except ValueError as exc:
            raise ConfigError(f"{source}:{lineno}: {exc}") from None
    if global_types is not None and types:
        raise ConfigError(f"{source}: globally allowed types and per-op type information are exclusive")
    return OpsConfig(ops, types, global_types, all_ops)


def _parse_op_line(line: str, ops: dict[str, dict[int, frozenset[str]]], types: dict[OpKey, TypeUsage]) -> None:
    parts = line.split(";", 2)
    if len(parts) != 3:
        raise ValueError(f"expected 'domain;opset;ops', got {line!r}")
    domain, opsets_text, ops_text = (p.strip() for p in parts)
    if not NAME_RE.fullmatch(domain):
        raise ValueError(f"invalid domain {domain!r}")
    try:
        opsets = [int(s) for s in opsets_text.split(",")]
    except ValueError:
        raise ValueError(f"invalid opset {opsets_text!r}") from None
    entries = _parse_op_entries(ops_text)
    names = frozenset(name for name, _ in entries)
    for opset in opsets:
        ops.setdefault(domain, {})
        ops[domain][opset] = ops[domain].get(opset, frozenset()) | names
    for name, usage in entries:
        if usage is not None:
            key = (domain, name)
            types[key] = types[key].union(usage) if key in types else usage


_DECODER = json.JSONDecoder()
_OP_ENTRY_RE = re.compile(r"\s*([A-Za-z0-9_.]+)\s*")


def parse_type_entry(entry: str) -> TypeUsage:
    """One op's type entry, the JSON object after its name (``{"inputs": {"0": ["float"]}}``): what
    onnxruntime's type-usage processors give for an op."""
    try:
        return TypeUsage.from_json_obj(json.loads(entry))
    except (json.JSONDecodeError, RecursionError) as exc:
        raise ValueError(f"malformed type info {entry[:60]!r}: {exc}") from None


def _parse_op_entries(text: str) -> list[tuple[str, TypeUsage | None]]:
    entries: list[tuple[str, TypeUsage | None]] = []
    pos = 0
    while True:
        match = _OP_ENTRY_RE.match(text, pos)
        if not match:
            raise ValueError(f"invalid operator name at {text[pos : pos + 30]!r}")
        name, pos = match.group(1), match.end()
        usage = None
        if text.startswith("{", pos):
            try:
                obj, pos = _DECODER.raw_decode(text, pos)
            except json.JSONDecodeError as exc:
                raise ValueError(f"malformed type info for {name}: {exc.msg}") from None
            except RecursionError:
                raise ValueError(f"malformed type info for {name}: nested too deeply") from None
            usage = TypeUsage.from_json_obj(obj)
            pos = len(text) - len(text[pos:].lstrip())
        entries.append((name, usage))
        if pos >= len(text):
            return entries
        if text[pos] != ",":
            raise ValueError(f"expected ',' after {name}, got {text[pos : pos + 30]!r}")
        pos += 1


def format_config(config: OpsConfig, header: Sequence[str] = ()) -> str:
    """Deterministic config text: ``header`` as ``#`` lines, then everything sorted."""
    lines = [f"# {h}" if h else "#" for h in header]
    for domain in sorted(config.ops):
        if not NAME_RE.fullmatch(domain):
            raise ConfigError(f"invalid domain name {domain!r}")
        for opset in sorted(config.ops[domain]):
            names = sorted(config.ops[domain][opset])
            if not names:
                continue
            entries = []
            for name in names:
                if not NAME_RE.fullmatch(name):
                    raise ConfigError(f"invalid operator name {name!r} in domain {domain!r}")
                usage = config.types.get((domain, name))
                entries.append(name + (usage.to_json() if usage is not None else ""))
            lines.append(f"{domain};{opset};{','.join(entries)}")
    if config.globally_allowed_types is not None:
        lines.append(GLOBAL_TYPES_PREFIX + ",".join(sorted(config.globally_allowed_types)))
    if config.all_ops_if_empty:
        lines.append(ALL_OPS_IF_EMPTY)
    return "\n".join(lines) + "\n"


def format_value_types(value_types: Iterable[str]) -> str:
    """The header line (without ``# ``) recording the models' value types, sorted."""
    return VALUE_TYPES_PREFIX.removeprefix("# ") + ",".join(sorted(value_types))


def format_graph_types(graph_types: Mapping[OpKey, Iterable[str]]) -> list[str]:
    """The header lines (without ``# ``) recording the graph types of ops, sorted."""
    prefix = GRAPH_TYPES_PREFIX.removeprefix("# ")
    return [f"{prefix}{d}:{op}: {','.join(sorted(types))}" for (d, op), types in sorted(graph_types.items())]


def parse_graph_types(text: str) -> dict[OpKey, frozenset[str]]:
    """The graph types a config's header records per op (malformed lines are ignored: the op stays whole)."""
    out: dict[OpKey, frozenset[str]] = {}
    for line in text.splitlines():
        if (found := _GRAPH_TYPES_RE.match(line)) is not None:
            out[found[1], found[2]] = frozenset(found[3].split(","))
    return out


def parse_value_types(text: str) -> frozenset[str] | None:
    """The value types a config's header records; ``None`` without (or with a malformed) record."""
    for line in text.splitlines():
        if line.startswith(VALUE_TYPES_PREFIX):
            names = [n.strip() for n in line.removeprefix(VALUE_TYPES_PREFIX).split(",") if n.strip()]
            return frozenset(names) if all(_VALUE_TYPE_RE.fullmatch(n) for n in names) else None
    return None


@dataclass(frozen=True)
class HeaderOptions:
    """What a config's header records of the run that wrote it."""

    models: tuple[str, ...]
    """The models' paths as the header lists them (relative to the directory the run started in)."""
    extra_configs: tuple[str, ...] = ()
    """The ``--extra-ops``/``--merge`` files composed into it, as the header lists them."""
    optimization_level: str | None = None
    """None: the header records no options (hand-written, ORT's converter, an older version)."""
    optimization_styles: tuple[str, ...] = ()
    type_reduction: bool | None = None
    target_platform: str | None = None
    value_types: frozenset[str] | None = None
    """Every value type the models hold (``VALUE_TYPES_PREFIX``); None: not known (not recorded, merged)."""
    graph_types: Mapping[OpKey, frozenset[str]] = field(default_factory=dict)
    """Per op the config gives no types, the element types on its nodes (``GRAPH_TYPES_PREFIX``)."""


def format_header(header: HeaderOptions, version: str) -> list[str]:
    """The header lines (without ``# ``) recording ``header``: the one writer of what ``parse_header`` reads."""
    lines = [f"Generated by ort-reduced-build {version} from {len(header.models)} model(s):"]
    lines.extend(_MODEL_PREFIX.removeprefix("# ") + m for m in header.models)
    lines.extend(_EXTRA_PREFIX.removeprefix("# ") + e for e in header.extra_configs)
    if header.optimization_level is not None:
        lines.append(
            format_options(
                header.optimization_level,
                header.optimization_styles,
                bool(header.type_reduction),
                header.target_platform,
            )
        )
    if header.value_types is not None:
        lines.append(format_value_types(header.value_types))
    lines += format_graph_types(header.graph_types)
    return lines


def format_options(level: str, styles: Sequence[str], type_reduction: bool, target: str | None) -> str:
    """The header line (without ``# ``) recording the conversion options."""
    line = f"optimization level {level}, style {'+'.join(styles)}, type reduction {'on' if type_reduction else 'off'}"
    return line + (f", target {target}" if target else "")


def parse_header(text: str) -> HeaderOptions:
    """The models and options a config's header records (empty fields where it records none)."""
    models, extras = [], []
    options: re.Match[str] | None = None
    for line in text.splitlines():
        if not line.startswith("#"):
            break
        if line.startswith(_MODEL_PREFIX):
            models.append(line.removeprefix(_MODEL_PREFIX))
        elif line.startswith(_EXTRA_PREFIX):
            extras.append(line.removeprefix(_EXTRA_PREFIX))
        elif found := _OPTIONS_RE.match(line):
            options = found
    value_types, graph_types = parse_value_types(text), parse_graph_types(text)
    if options is None:
        return HeaderOptions(tuple(models), tuple(extras), value_types=value_types, graph_types=graph_types)
    return HeaderOptions(
        tuple(models),
        tuple(extras),
        optimization_level=options["level"],
        optimization_styles=tuple(options["styles"].split("+")),
        type_reduction=options["tr"] == "on",
        target_platform=options["target"],
        value_types=value_types,
        graph_types=graph_types,
    )


def read_config(path: Path) -> OpsConfig:
    """Parse the config file at ``path``; a missing or unreadable file raises ``ConfigError``."""
    return parse_config(_read_text(path), str(path))


def read_config_and_value_types(path: Path) -> tuple[OpsConfig, frozenset[str] | None]:
    """The config file at ``path`` and the value types its header records (``HeaderOptions.value_types``)."""
    text = _read_text(path)
    return parse_config(text, str(path)), parse_header(text).value_types


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not a text file (invalid UTF-8)") from None
