"""What a library's symbol names say: which ORT operator kernel a piece belongs to, and which part of the
runtime the rest is (by namespace, or by the ORT static library that defines it when a build directory
holds them).

ORT's naming conventions, from its sources: every CPU kernel is registered through
``BuildKernelCreateInfo<ONNX_OPERATOR[_VERSIONED][_TYPED]_KERNEL_CLASS_NAME(provider, domain, ver, [type,]
op)>``, whose class name is ``<provider>_<op>_<domain constant>_ver<since>[_<end>][_<type>]``
(``core/framework/op_kernel.h``); the kernel classes are named after the operator in most cases
(``Conv<float>``, ``ml::TreeEnsembleClassifier<double>``), and the rest is reached from the registration.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path

__all__ = [
    "CORE",
    "DOMAINS",
    "archive_part",
    "archive_parts",
    "class_scopes",
    "demangle",
    "part_by_name",
    "registration",
    "scope",
]

DOMAINS = {
    "kOnnxDomain": "ai.onnx",
    "kMLDomain": "ai.onnx.ml",
    "kMSDomain": "com.microsoft",
    "kMSExperimentalDomain": "com.microsoft.experimental",
    "kMSNchwcDomain": "com.microsoft.nchwc",
    "kMSInternalNHWCDomain": "com.ms.internal.nhwc",
    "kMSDmlDomain": "com.microsoft.dml",
    "kPytorchAtenDomain": "org.pytorch.aten",
}
"""ORT's domain constants (``include/onnxruntime/core/graph/constants.h``) and the domains they name."""
_REGISTRATION = re.compile(r"ExecutionProvider_(\w+?)_(k[A-Za-z]*Domain)_ver(\d+)(?:_(\d+))?(?:_(\w+))?\b")
_PARTS = (  # first match wins; matched against the demangled name with its return type removed
    (re.compile(r"^(OrtApis|OrtCompileAPI|OrtModelEditorAPI|OrtExecutionProviderApi)::|^Ort[A-Z]\w*$"), "C API"),
    (re.compile(r"^absl::"), "abseil"),
    (re.compile(r"^re2::"), "re2"),
    (re.compile(r"^google::protobuf::"), "protobuf-lite"),
    (re.compile(r"^onnx::"), "onnx"),
    (re.compile(r"^(flatbuffers::|onnxruntime::fbs::)|OrtFormat"), "ORT format (flatbuffers)"),
    (re.compile(r"^cpuinfo"), "cpuinfo"),
    (re.compile(r"^Eigen::"), "Eigen"),
    (re.compile(r"^(gsl::|SafeInt)"), "gsl, SafeInt"),
    (re.compile(r"^(std::|__gnu_cxx::|__cxxabiv1::|operator (new|delete)|__cxa_|__gxx_)"), "C++ standard library"),
    (re.compile(r"^(onnxruntime::)?(Mlas|MLAS)|^onnxruntime::mlas::"), "MLAS"),
    (re.compile(r"^(_GLOBAL__)?_sub_[ID]_"), "static initializers"),
    (re.compile(r"^(_init|_fini|frame_dummy|(de)?register_tm_clones|__do_global_dtors_aux)$"), "C runtime startup"),
    (re.compile(r"^onnxruntime::"), "onnxruntime (core)"),
)
CORE = "onnxruntime (core)"
"""The part of an ``onnxruntime::`` name nothing more specific names (given after the other parts are)."""
_ARCHIVES = (  # ORT's CMake targets (and its dependencies') -> the part they make
    (re.compile(r"^onnxruntime_(session|graph|framework|optimizer|lora)$"), r"\1"),
    (re.compile(r"^onnxruntime_providers$"), "CPU EP, kernel helpers"),
    (re.compile(r"^onnxruntime_(common|util)$"), "common, platform"),
    (re.compile(r"^onnxruntime_flatbuffers$|^flatbuffers$"), "ORT format (flatbuffers)"),
    (re.compile(r"^onnxruntime_mlas"), "MLAS"),
    (re.compile(r"^absl_"), "abseil"),
    (re.compile(r"^re2$"), "re2"),
    (re.compile(r"^protobuf"), "protobuf-lite"),
    (re.compile(r"^onnx(_proto)?$"), "onnx"),
    (re.compile(r"^cpuinfo"), "cpuinfo"),
    (re.compile(r"^crt|^crti$|^crtn$"), "C runtime startup"),
)
_SPECIAL = re.compile(
    r"^(vtable for |VTT for |construction vtable for .*?-in-|typeinfo (name )?for |guard variable for |"
    r"(non-)?virtual thunk to |covariant return thunk to |TLS (init|wrapper) function for |"
    r"reference temporary #\d+ for )"
)
_OPERATOR = re.compile(r"operator(\(\)|<=>|<<=?|>>=?|<=|>=|->\*?|<|>|\[\])")
_ANGLES = re.compile(r"<[^<>]*>")


def demangle(names: Sequence[str]) -> list[str]:
    """C++ names demangled by ``c++filt`` (unchanged where it is missing or fails)."""
    tool = shutil.which("c++filt") or shutil.which("llvm-cxxfilt")
    if tool is None or not names:
        return list(names)
    try:
        proc = subprocess.run([tool], input="\n".join(names) + "\n", capture_output=True, text=True, check=False)
    except OSError:
        return list(names)
    out = proc.stdout.splitlines()
    return out if proc.returncode == 0 and len(out) == len(names) else list(names)


def registration(name: str) -> tuple[str, str, str] | None:
    """``(domain, op, type or "")`` of a kernel registration's class name inside ``name``."""
    found = _REGISTRATION.search(name)
    if found is None:
        return None
    return DOMAINS.get(found[2], found[2]), found[1], found[5] or ""


def scope(name: str) -> str:
    """The qualified function or object name of a demangled name: no return type, template arguments,
    parameters or clone suffix (``onnxruntime::Graph::Resolve``)."""
    text = _OPERATOR.sub("operator@", _SPECIAL.sub("", name).replace("(anonymous namespace)", "{anonymous}"))
    if text.startswith("decltype ("):
        text = text[_closing(text, len("decltype (")) + 1 :].lstrip()
    previous = ""
    while previous != text:
        previous, text = text, _ANGLES.sub("", text)
    head = text.split("(", 1)[0].strip()
    return head.rsplit(" ", 1)[-1] if " " in head and not head.startswith("operator ") else head


def _closing(text: str, start: int) -> int:
    """The index of the parenthesis closing the one before ``start``."""
    depth = 1
    for i in range(start, len(text)):
        depth += {"(": 1, ")": -1}.get(text[i], 0)
        if depth == 0:
            return i
    return len(text)


def part_by_name(name: str) -> str | None:
    """The runtime part a demangled name's namespace names (None: nothing does)."""
    qualified = scope(name)
    for pattern, part in _PARTS:
        if pattern.search(qualified):
            return part
    return None


def archive_parts(directory: Path, nm: str | None) -> dict[str, str]:
    """``qualified name -> part`` from the static libraries a build directory holds (ORT's own and its
    dependencies', LTO objects included): what each defines, named after the library."""
    archives = sorted(p for p in directory.rglob("*.a") if "CMakeFiles" not in p.parts)
    if nm is None or not archives:
        return {}
    try:
        proc = subprocess.run(
            [nm, "-C", "--defined-only", "-A", *map(str, archives)], capture_output=True, text=True, check=False
        )
    except OSError:
        return {}
    votes: dict[str, Counter[str]] = {}
    parts: dict[str, str] = {}
    for line in proc.stdout.splitlines():
        path, _, rest = line.partition(".a:")
        fields = rest.split(" ", 2)
        if len(fields) == 3 and fields[1] in "TtWVRrDdBb":
            if (part := parts.get(path)) is None:
                part = parts[path] = archive_part(Path(path).name.removeprefix("lib"))
            votes.setdefault(fields[2], Counter())[part] += 1
    by_scope: dict[str, Counter[str]] = {}
    for name, counts in votes.items():
        for enclosing in class_scopes(scope(name)):
            by_scope.setdefault(enclosing, Counter()).update(counts)
    return {name: counts.most_common(1)[0][0] for name, counts in sorted(by_scope.items())}


def archive_part(archive: str) -> str:
    """The part a static library or object file (``abseil`` for ``absl_hash``, ...) makes."""
    for pattern, part in _ARCHIVES:
        if pattern.search(archive):
            return pattern.sub(part, archive) if "\\" in part else part
    return archive


def class_scopes(qualified: str) -> Iterable[str]:
    """``a::b::c`` -> ``a::b::c``, ``a::b``: the name, then each enclosing scope (not the bare namespace)."""
    parts = qualified.split("::")
    for end in range(len(parts), 1, -1):
        yield "::".join(parts[:end])
