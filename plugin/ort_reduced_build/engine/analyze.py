"""Analyze one ``.ort`` file: the operators and types it needs, subgraphs included.

The kernel knowledge (which ops are type-reducible, and on which arguments) is ORT's own:
``onnxruntime.tools.ort_format_model``'s ``OperatorTypeUsageManager``, fed every node as ORT's
``OrtFormatModelProcessor`` feeds it; the flatbuffer itself is read by ``ortwire`` (ORT's generated readers
cost as much CPU as the conversion on a large graph).
One deviation: ORT's converter dies with ``KeyError`` on element types its table lacks (int4, uint4,
int2, uint2, float8e8m0, ...). Here such an op is kept *unrestricted* (every type its kernels have)
and a warning names it, so the model still runs on the reduced build.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import AnalyzeError
from ..util.fileio import Buffer
from . import ortwire as ow
from .config import NAME_RE, OpKey, OpsConfig, TypeUsage, parse_type_entry

__all__ = [
    "MINIMAL_BUILD_FORMAT_VERSIONS",
    "ModelUsage",
    "SavedOptimization",
    "analyze_ort",
    "merge_graph_types",
    "read_ort_file",
    "read_ort_header",
    "saved_runtime_optimizations",
]

ORT_IDENTIFIER = b"ORTM"
MINIMAL_BUILD_FORMAT_VERSIONS = frozenset({"5", "6"})
"""ORT format versions a minimal build can load."""


@dataclass(frozen=True)
class ModelUsage:
    """One model's own operator and type set, and what was noticed while reading it."""

    config: OpsConfig
    warnings: tuple[str, ...] = ()
    value_types: frozenset[str] = frozenset({"unknown"})
    """Element types of every value (``float``, ``string``, ``float8e4m3fn`` ...), ``sparse_tensor`` when it
    has sparse initializers, ``unknown`` for a value of a type the file does not describe."""
    graph_types: Mapping[OpKey, frozenset[str]] = field(default_factory=dict)
    """For each op the config gives no types (ORT has no type processor for it): the element types on its
    nodes' inputs and outputs, as ORT's configs spell them (``float``, ``int64_t``, ``std::string``; maps and
    sequences give their element types; ``unknown`` where the file does not say). ``build`` keeps only the
    kernels registered for these types (``build.regfilter``)."""


def read_ort_header(path: Path, data: Buffer) -> str:
    """Check the flatbuffer identifier and return the ORT format version string."""
    if len(data) < 8 or data[4:8] != ORT_IDENTIFIER:
        raise AnalyzeError(f"{path}: not an ORT format model (no 'ORTM' identifier)")
    from onnxruntime.tools.ort_format_model.ort_model_processor import fbs

    try:
        session = fbs.InferenceSession.InferenceSession.GetRootAsInferenceSession(data, 0)
        version = session.OrtVersion()
    except Exception as exc:  # noqa: BLE001 -- a corrupt flatbuffer raises anything from struct/IndexError
        raise AnalyzeError(f"{path}: corrupt ORT format model ({type(exc).__name__})") from None
    return version.decode("ascii", "replace") if version else ""


def analyze_ort(path: Path, data: Buffer | None = None) -> ModelUsage:
    """Operators per domain/opset and per-op types of one ``.ort`` file (always with types).

    ``data``: the file's bytes (or a memory map of them) when the caller has them already.
    """
    if data is None:
        data = read_ort_file(path)
    read_ort_header(path, data)
    manager = _tolerant_manager()
    required: dict[str, dict[int, set[str]]] = {}
    try:
        value_types = _walk(data, required, manager)
    except Exception as exc:  # noqa: BLE001 -- corrupt flatbuffers surface as arbitrary exceptions
        raise AnalyzeError(f"{path}: corrupt ORT format model ({type(exc).__name__}: {exc})") from None
    for domain, opsets in required.items():
        for names in opsets.values():
            for name in [domain, *names]:
                if not NAME_RE.fullmatch(name):
                    raise AnalyzeError(f"{path}: invalid operator or domain name {name!r}")
    types: dict[tuple[str, str], TypeUsage] = {}
    for domain, opsets in required.items():
        for name in {n for names in opsets.values() for n in names}:
            entry = manager.get_config_entry(domain, name)
            if entry is not None and (domain, name) not in manager.unrestricted:
                types[domain, name] = parse_type_entry(entry)
    ops = {d: {v: frozenset(n) for v, n in opsets.items()} for d, opsets in required.items()}
    config = OpsConfig(ops, types)
    untyped = config.op_keys() - set(types)
    graph_types = {k: frozenset(v) for k, v in manager.graph_types.items() if k in untyped}
    return ModelUsage(config, tuple(sorted(manager.warnings)), value_types, graph_types)


def merge_graph_types(usages: Iterable[ModelUsage]) -> dict[OpKey, frozenset[str]]:
    """The graph types per op over several usages; an op a usage needs without types and without a record
    (an older cache entry, an op a saved optimization adds) is ``unknown``: its kernels stay whole."""
    out: dict[OpKey, frozenset[str]] = {}
    for usage in usages:
        for key in usage.config.op_keys() - set(usage.config.types):
            out[key] = out.get(key, frozenset()) | usage.graph_types.get(key, frozenset({"unknown"}))
    return out


def _walk(data: Buffer, required: dict[str, dict[int, set[str]]], manager: Any) -> frozenset[str]:
    """Every node of every graph (subgraphs included) into ``required`` and ``manager``, as ORT's
    ``OrtFormatModelProcessor`` feeds them; returns the value types (see ``ModelUsage.value_types``).

    The flatbuffer is read by ``ortwire``; ``manager`` gets ORT's own ``fbs`` node and type objects.
    """
    from onnxruntime.tools.ort_format_model.ort_model_processor import fbs

    t = ow.Tables(data)
    codes: set[int] = set()  # element type codes; names at the end
    found: set[str] = set()
    node = fbs.Node.Node()
    pending: list[tuple[int, dict[bytes | None, int]]] = [(t.graph(), {})]
    seen: set[int] = set()  # a malformed file's graph that contains itself is walked once
    while pending:
        graph, outer = pending.pop()
        if not graph or graph in seen:
            continue
        seen.add(graph)
        args = t.tables(graph, ow.GRAPH_NODE_ARGS)
        local = {t.string(arg, ow.VALUE_INFO_NAME): t.table(arg, ow.VALUE_INFO_TYPE) for arg in args}
        scope = outer | local  # inner names shadow outer ones, as in ORT's processor
        infos = _TypeInfos(t, scope)
        for name in local:
            if name:  # the nameless arg stands for omitted optional inputs: it has no type
                value_codes, value_found = infos.element_types(name)
                codes |= value_codes
                found |= value_found
        if t.length(graph, ow.GRAPH_SPARSE_INITIALIZERS):
            found.add("sparse_tensor")
        for at in t.tables(graph, ow.GRAPH_NODES):
            domain, op = t.string(at, ow.NODE_DOMAIN), t.string(at, ow.NODE_OP_TYPE)
            if domain is None or op is None:
                raise ValueError("a node without domain or op type")
            key = (domain.decode() or "ai.onnx", op.decode())
            required.setdefault(key[0], {}).setdefault(t.int32(at, ow.NODE_SINCE_VERSION), set()).add(key[1])
            manager.record_graph_types(key, t.strings(at, ow.NODE_INPUTS) + t.strings(at, ow.NODE_OUTPUTS), infos)
            if manager.has_processor(key):
                node.Init(data, at)
                manager.process_node(node, infos)
            for attr in t.tables(at, ow.NODE_ATTRIBUTES):
                kind = t.int32(attr, ow.ATTRIBUTE_TYPE)
                if kind == ow.ATTRIBUTE_GRAPH:
                    pending.append((t.table(attr, ow.ATTRIBUTE_G), scope))
                elif kind == ow.ATTRIBUTE_GRAPHS_TYPE:
                    pending += [(g, scope) for g in t.tables(attr, ow.ATTRIBUTE_GRAPHS)]
    # The schema's names are ONNX's; onnx is imported only for codes newer than this schema.
    names = {code: name for name, code in vars(fbs.TensorDataType.TensorDataType).items() if name.isupper()}
    return frozenset(found | {(names.get(code) or _type_name(code)).lower() for code in codes})


def _element_types(t: ow.Tables, info: int, codes: set[int], found: set[str]) -> None:
    """Add the element type codes of the ``TypeInfo`` at ``info`` (0: none) to ``codes``; "unknown" to ``found``."""
    kind = t.uint8(info, ow.TYPE_INFO_VALUE_TYPE) if info else 0
    value = t.table(info, ow.TYPE_INFO_VALUE) if kind else 0
    if not value:
        found.add("unknown")
    elif kind == ow.TENSOR_TYPE:
        codes.add(t.int32(value, ow.TENSOR_ELEM_TYPE))
    elif kind == ow.SEQUENCE_TYPE:
        _element_types(t, t.table(value, ow.SEQUENCE_ELEM_TYPE), codes, found)
    elif kind == ow.MAP_TYPE:
        codes.add(t.int32(value, ow.MAP_KEY_TYPE))
        _element_types(t, t.table(value, ow.MAP_VALUE_TYPE), codes, found)
    else:
        found.add("unknown")


class _TypeInfos(dict):  # type: ignore[type-arg]
    """Value name -> ``fbs.TypeInfo`` for ORT's type processors, made when looked up (most never are).

    Holds each ``TypeInfo``'s position; 0 (the value has none) is looked up as ``None``, as in ORT's processor.
    """

    def __init__(self, tables: ow.Tables, positions: dict[bytes | None, int]) -> None:
        super().__init__(positions)
        self._tables = tables
        self._read: dict[bytes, tuple[frozenset[int], frozenset[str]]] = {}
        """``element_types`` of each name looked up so far."""

    def __getitem__(self, name: bytes | None) -> Any:
        position = super().__getitem__(name)
        if not position:
            return None
        from onnxruntime.tools.ort_format_model.ort_model_processor import fbs

        info = fbs.TypeInfo.TypeInfo()
        info.Init(self._tables.data, position)
        return info

    def element_types(self, name: bytes) -> tuple[frozenset[int], frozenset[str]]:
        """The element type codes of value ``name`` (a map: its key's and its value's), and ``{"unknown"}``
        where it has no type (``_element_types``), read once per name."""
        known = self._read.get(name)
        if known is None:
            codes: set[int] = set()
            found: set[str] = set()
            _element_types(self._tables, super().get(name, 0), codes, found)
            known = self._read[name] = (frozenset(codes), frozenset(found))
        return known

    def config_types(self, name: bytes) -> set[str]:
        """The element types of value ``name`` in ORT's config spelling; "unknown" when it has no type."""
        from onnxruntime.tools.ort_format_model.types import FbsTypeInfo

        codes, found = self.element_types(name)
        names = FbsTypeInfo.tensordatatype_to_string
        return set(found) | {names.get(code, "unknown") for code in codes}


def read_ort_file(path: Path) -> bytes:
    """The bytes of an ``.ort`` file; ``AnalyzeError`` naming it when it cannot be read."""
    try:
        return path.read_bytes()
    except OSError as exc:
        raise AnalyzeError(f"{path}: cannot read: {exc.strerror}") from None


def _type_name(code: object) -> str:
    """ONNX's name of a tensor element type code, e.g. 22 -> INT4 (ORT's schema uses the same numbers)."""
    import onnx

    if not isinstance(code, int):
        return str(code)
    try:
        return onnx.TensorProto.DataType.Name(code)
    except ValueError:
        return str(code)


def _tolerant_manager() -> Any:
    """An ``OperatorTypeUsageManager`` that keeps an op unrestricted when a type is unknown to ORT's table."""
    from onnxruntime.tools.ort_format_model import OperatorTypeUsageManager
    from onnxruntime.tools.ort_format_model import operator_type_usage_processors as processors

    class TolerantManager(OperatorTypeUsageManager):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__()
            self.unrestricted: set[tuple[str, str]] = set()
            self.warnings: set[str] = set()
            self.graph_types: dict[tuple[str, str], set[str]] = {}
            # ORT's processors by op key (private names): a node of an op without one is not handed over,
            # as ORT's manager would do nothing with it. Without them every node is.
            self._known = getattr(self, "_all_operator_processors", None)
            self._op_key = getattr(processors, "_create_op_key", None)

        def has_processor(self, key: tuple[str, str]) -> bool:
            return self._known is None or self._op_key is None or self._op_key(*key) in self._known

        def record_graph_types(self, key: tuple[str, str], names: list[bytes], infos: _TypeInfos) -> None:
            seen = self.graph_types.setdefault(key, set())
            for name in names:
                if name:  # an omitted optional input has no name and no type
                    seen |= infos.config_types(name)

        def process_node(self, node: Any, value_name_to_typeinfo: _TypeInfos) -> None:
            try:
                super().process_node(node, value_name_to_typeinfo)
            except (KeyError, RuntimeError) as exc:
                domain = node.Domain().decode() or "ai.onnx"
                op = node.OpType().decode()
                self.unrestricted.add((domain, op))
                what = f"element type {_type_name(exc.args[0])}" if isinstance(exc, KeyError) else str(exc)
                self.warnings.add(
                    f"{domain}:{op}: {what} has no entry in ORT's type-reduction table; kept with all its types"
                )

    return TolerantManager()


@dataclass(frozen=True)
class SavedOptimization:
    """One saved runtime-optimization record (``--optimization-style Runtime``), replayed at load time."""

    optimizer: str
    action: str
    produced_ops: tuple[tuple[str, str, int], ...]
    """``(domain, op, since_version)`` of each op the replay adds: the runtime needs their kernels."""
    touched_ops: tuple[tuple[str, str, int], ...] = ()
    """``(domain, op, since_version)`` of the nodes the replay rewrites (their types may change)."""


def saved_runtime_optimizations(path: Path, data: Buffer | None = None) -> tuple[SavedOptimization, ...]:
    """The saved runtime-optimization records of an ``.ort`` file, subgraphs included (``data``: its bytes,
    when the caller has them already)."""
    if data is None:
        data = read_ort_file(path)
    read_ort_header(path, data)
    from onnxruntime.tools.ort_format_model.ort_model_processor import fbs

    try:
        graph = fbs.InferenceSession.InferenceSession.GetRootAsInferenceSession(data, 0).Model().Graph()
        return tuple(_records(graph)) if graph is not None else ()
    except Exception as exc:  # noqa: BLE001 -- a corrupt flatbuffer raises anything (struct.error, TypeError ...)
        raise AnalyzeError(f"{path}: corrupt runtime optimizations ({type(exc).__name__}: {exc})") from None


def _records(graph: Any) -> list[SavedOptimization]:
    out = []
    by_index = {}
    for i in range(graph.NodesLength()):
        node = graph.Nodes(i)
        by_index[node.Index()] = (node.Domain().decode() or "ai.onnx", node.OpType().decode(), node.SinceVersion())
    entries = graph.RuntimeOptimizations()
    for i in range(entries.RecordsLength() if entries is not None else 0):
        entry = entries.Records(i)
        for j in range(entry.RuntimeOptimizationRecordsLength()):
            record = entry.RuntimeOptimizationRecords(j)
            ops = []
            for k in range(record.ProducedOpIdsLength()):
                domain, op, version = record.ProducedOpIds(k).decode().rsplit(":", 2)
                ops.append((domain or "ai.onnx", op, int(version)))
            nodes = record.NodesToOptimizeIndices()
            indices = [nodes.NodeIndices(k) for k in range(nodes.NodeIndicesLength())] if nodes else []
            touched = tuple(by_index[i] for i in indices if i in by_index)
            out.append(
                SavedOptimization(entry.OptimizerName().decode(), record.ActionId().decode(), tuple(ops), touched)
            )
    for i in range(graph.NodesLength()):
        node = graph.Nodes(i)
        for j in range(node.AttributesLength()):
            attr = node.Attributes(j)
            subgraphs = [attr.G(), *(attr.Graphs(k) for k in range(attr.GraphsLength()))]
            out += [r for g in subgraphs if g is not None for r in _records(g)]
    return out
