"""A model's external-data files: where its tensors say they are, checked as onnxruntime checks them.

Locations must be relative and stay inside the model's directory once symlinks are resolved (onnxruntime
1.2x refuses anything else): they are only ever read (hashed for the cache key, loaded by onnxruntime),
never followed elsewhere. Finding them parses the protobuf only when ``onnxwire`` says it may name one.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import ModelError
from ..util.fileio import mapped
from .discover import printable
from .onnxwire import may_have_external_data

__all__ = ["external_data_locations", "external_data_path"]


def external_data_path(model: Path, location: str) -> Path:
    """Where a model's external-data ``location`` points, if onnxruntime would read it; else ``ModelError``.

    As onnxruntime (1.2x+) does: relative, no ``..``, and still inside the model's directory once
    symlinks are resolved. The file is only ever read (hashed here, loaded by onnxruntime).
    """
    shown = f"{printable(str(model))}: external data location {printable(location)!r}"
    pure = Path(location)
    if not location or "\0" in location:
        raise ModelError(f"{shown} is empty or malformed")
    if pure.is_absolute() or location.startswith(("/", "\\")) or pure.drive:
        raise ModelError(f"{shown} is an absolute path; it must be relative to the model's directory")
    base = model.parent.resolve()
    target = (model.parent / pure).resolve()
    if base not in target.parents:
        how = "through '..'" if ".." in pure.parts else f"through a symlink, to {printable(str(target))}"
        raise ModelError(f"{shown} leads outside the model's directory ({how}); keep the data beside the model")
    return model.parent / pure


def external_data_locations(model: Path) -> list[str]:
    """Sorted external-data locations a model's tensors name (parses the protobuf only if needed).

    A file that is not a valid ONNX protobuf has none here: onnxruntime reports it when it converts.
    """
    with mapped(model) as view:
        if not may_have_external_data(view):
            return []
    import onnx
    from google.protobuf.message import DecodeError

    try:
        proto = onnx.load(str(model), load_external_data=False)
    except (DecodeError, ValueError, RuntimeError):
        return []
    locations: set[str] = set()
    graphs = [proto.graph]
    while graphs:
        graph = graphs.pop()
        tensors = list(graph.initializer) + [s.values for s in graph.sparse_initializer]
        for node in graph.node:
            for attr in node.attribute:
                tensors.extend([attr.t, *attr.tensors])
                graphs.extend([attr.g, *attr.graphs] if attr.HasField("g") else attr.graphs)
        for tensor in tensors:
            if tensor.data_location == onnx.TensorProto.EXTERNAL:
                locations.update(e.value for e in tensor.external_data if e.key == "location")
    return sorted(locations)
