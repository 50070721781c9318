"""``size``: a library's bytes per operator, type, part and section.

ONNX Runtime cannot be built here, so the operator attribution is checked on a stand-in compiled by the
test (tests/native/ort_standin_kernels.cc: ORT's naming conventions, our code), built the way ORT's build
links (``-ffunction-sections``, ``--gc-sections``, hidden symbols), once with and once without a typed
kernel: the bytes ``size`` gives that type must be the bytes the library loses without it. The ELF reading
is checked on the real, stripped libonnxruntime.so of the installed onnxruntime wheel against binutils.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from ort_reduced_build.cli import main
from ort_reduced_build.size import SizeReport, link_map_for, measure, save_build_sizes
from ort_reduced_build.size import symbols as _symbols
from ort_reduced_build.size.graph import Graph, _class_members
from ort_reduced_build.size.linkmap import Piece
from ort_reduced_build.util.elf import Elf

ML = "ai.onnx.ml"
STANDIN = Path(__file__).parent / "native" / "ort_standin_kernels.cc"
FLAGS = ["-shared", "-fPIC", "-Os", "-fvisibility=hidden", "-ffunction-sections", "-fdata-sections"]
needs_toolchain = pytest.mark.skipif(
    not (shutil.which("g++") and shutil.which("objdump") and shutil.which("c++filt")),
    reason="needs g++ and binutils (objdump, c++filt) to build and read the stand-in library",
)


def standin(directory: Path, *, double: bool, stripped: bool, compiler: str = "g++") -> Path:
    """The stand-in library (its link map beside it when stripped, as ``build`` keeps one). ``compiler``
    ``g++ lld`` links with LLVM's lld (the NDK's linker, with its own map format)."""
    name = f"libonnxruntime_standin{'_double' if double else ''}{'_stripped' if stripped else ''}.so"
    library = directory / name
    compiler, _, linker = compiler.partition(" ")
    lld = [f"-B{Path(found).parent}", "-fuse-ld=lld"] if linker and (found := _lld()) else []
    argv = [compiler, *FLAGS, *lld, "-Wl,--gc-sections", "-o", str(library), str(STANDIN)]
    argv += ["-DWITH_DOUBLE"] if double else []
    argv += ["-s", f"-Wl,-Map={library}.map"] if stripped else []
    subprocess.run(argv, check=True)
    return library


def _lld() -> str | None:
    """An ``ld.lld`` (Debian's lld-N puts it in /usr/lib/llvm-N/bin)."""
    return shutil.which("ld.lld") or next((str(p) for p in sorted(Path("/usr/lib").glob("llvm-*/bin/ld.lld"))), None)


def loaded_bytes(library: Path) -> int:
    """What the loader maps: every allocated section with bytes in the file (page padding aside)."""
    return sum(s.size for s in Elf(library).sections if s.alloc and s.kind != 8)


def test_symbols_read_ort_naming_conventions() -> None:
    reg = "onnxruntime::KernelCreateInfo onnxruntime::BuildKernelCreateInfo<onnxruntime::ml::"
    assert _symbols.registration(reg + "kCpuExecutionProvider_TreeEnsembleClassifier_kMLDomain_ver1_2_int64_t>()") == (
        "ai.onnx.ml", "TreeEnsembleClassifier", "int64_t"
    )  # fmt: skip
    assert _symbols.registration("kCpuExecutionProvider_Relu_kOnnxDomain_ver14") == ("ai.onnx", "Relu", "")
    assert _symbols.registration("kCpuExecutionProvider_FusedConv_kMSDomain_ver1_float") == (
        "com.microsoft", "FusedConv", "float"
    )  # fmt: skip
    assert _symbols.registration("onnxruntime::Graph::Resolve()") is None
    names = [
        "onnxruntime::ml::TreeEnsembleClassifier<long>::Compute(onnxruntime::OpKernelContext*) const",
        "vtable for onnxruntime::ml::ZipMapOp",  # not the op's name
        "onnxruntime::Pool<float, onnxruntime::MaxPool<1> >::Compute(onnxruntime::OpKernelContext*) const",
        "onnxruntime::Graph::AddNode(int)",  # Add is an op, AddNode is not its class
        "onnxruntime::contrib::Gelu<float>::Compute(onnxruntime::OpKernelContext*) const",
    ]
    graph = Graph([Piece(n, ".text", i, 1) for i, n in enumerate(names)], names, [1] * len(names))
    ops = [(ML, "TreeEnsembleClassifier"), (ML, "ZipMap"), ("ai.onnx", "MaxPool"), ("ai.onnx", "Add")]
    ops += [("ai.onnx", "Gelu"), ("com.microsoft", "Gelu")]  # one name, two domains: the namespace tells
    assert _class_members(graph, ops) == {
        0: (ML, "TreeEnsembleClassifier"),
        2: ("ai.onnx", "MaxPool"),
        4: ("com.microsoft", "Gelu"),
    }
    clone = "unsigned long gsl::narrow<unsigned long, long, (void*)0>(long) [clone .part.0] [clone .lto_priv.0]"
    assert _symbols.scope(clone) == "gsl::narrow"
    assert _symbols.scope("std::default_delete<onnxruntime::Model>::operator()(onnxruntime::Model*) const") == (
        "std::default_delete::operator@"
    )  # fmt: skip
    assert _symbols.part_by_name("absl::lts_2025::hash_internal::MixingHashState::combine_raw(unsigned long)") == (
        "abseil"
    )  # fmt: skip
    assert _symbols.part_by_name("vtable for onnxruntime::InferenceSession") == _symbols.CORE
    assert _symbols.part_by_name("MlasSgemmKernelFma3") == "MLAS"
    assert _symbols.part_by_name("strlen") is None


AARCH64 = pytest.param(
    "aarch64-linux-gnu-g++",
    marks=pytest.mark.skipif(
        not (shutil.which("aarch64-linux-gnu-g++") and shutil.which("aarch64-linux-gnu-objdump")),
        reason="needs aarch64-linux-gnu-g++ and -objdump (binutils-aarch64-linux-gnu) for the aarch64 stand-in",
    ),
    id="aarch64",
)
LLD = pytest.param(
    "g++ lld", marks=pytest.mark.skipif(_lld() is None, reason="needs LLVM's ld.lld (apt: lld)"), id="x86_64-lld"
)


@needs_toolchain
@pytest.mark.parametrize("compiler", [pytest.param("g++", id="x86_64"), LLD, AARCH64])
@pytest.mark.parametrize("stripped", [False, True], ids=["symbol-table", "link-map"])
def test_a_type_weighs_what_the_library_loses_without_it(tmp_path: Path, stripped: bool, compiler: str) -> None:
    """The double kernel's figure is the size difference of the builds with and without it (within 10 %),
    named by the symbol table or, stripped, by the link map (GNU ld's, lld's); x86-64 and aarch64 code (its
    adrp/add pairs)."""
    both = standin(tmp_path, double=True, stripped=stripped, compiler=compiler)
    single = standin(tmp_path, double=False, stripped=stripped, compiler=compiler)
    report = measure(both, link_map_for(both))
    assert report.machine == ("aarch64" if compiler.startswith("aarch64") else "x86_64")
    assert report.names_from == ("link map " + both.name + ".map" if stripped else "symbol table")
    ops = {f"{o.domain}:{o.op}": o for o in report.ops}
    assert set(ops) == {"ai.onnx.ml:TreeEnsembleClassifier", "ai.onnx:Relu"}
    tree = ops["ai.onnx.ml:TreeEnsembleClassifier"]
    assert [t for t, _ in sorted(tree.types)] == ["double", "float"]
    lost = loaded_bytes(both) - loaded_bytes(single)
    assert abs(dict(tree.types)["double"] - lost) <= 0.1 * lost, (tree, lost)
    assert tree.bytes >= sum(b for _, b in tree.types) > 0
    assert (
        sum(o.bytes for o in report.ops) + sum(b for _, b in report.parts) == report.file_bytes == both.stat().st_size
    )
    assert dict(report.parts)["abseil"] > 0
    assert report.named_text_rodata >= 0.9 * report.text_rodata


@needs_toolchain
def test_cli_size_tables_json_baseline_and_chart(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    both = standin(tmp_path, double=True, stripped=True)
    single = standin(tmp_path, double=False, stripped=False)
    chart = tmp_path / "size.svg"
    assert main(["size", "--runtime", str(both), "--baseline", str(single), "--svg", str(chart)]) == 0
    out = capsys.readouterr().out
    assert f"names from link map {both.name}.map" in out
    row = re.search(r"ai\.onnx\.ml:TreeEnsembleClassifier\s+([\d,]+)\s+([\d,]+)\s+([+-][\d,]+)", out)
    assert row is not None, out
    now, then, delta = (int(g.replace(",", "")) for g in row.groups())
    assert delta == now - then > 0
    assert re.search(r"by type: (double|float) [\d,]+, (double|float) [\d,]+", out)
    assert "<svg" in chart.read_text()
    assert "TreeEnsembleClassifier" in chart.read_text()

    assert main(["size", "--runtime", str(both), "--json"]) == 0
    obj = json.loads(capsys.readouterr().out)
    saved = tmp_path / "report.json"
    saved.write_text(json.dumps(obj))
    assert SizeReport.from_json(obj).to_json() == obj
    assert main(["size", "--runtime", str(single), "--baseline", str(saved)]) == 0
    assert re.search(r"ai\.onnx\.ml:TreeEnsembleClassifier\s+[\d,]+\s+[\d,]+\s+-[\d,]+", capsys.readouterr().out)


@needs_toolchain
def test_explain_tells_what_each_op_took_in_the_last_build(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    build_dir = tmp_path / "b"
    (build_dir / "MinSizeRel").mkdir(parents=True)
    library = standin(build_dir / "MinSizeRel", double=True, stripped=False)
    (build_dir / "ort-reduced-build.json").write_text(json.dumps({"key": "k", "library": str(library)}))
    # ORT's static libraries beside it say which part defines what: a stand-in for libonnxruntime_session.a
    subprocess.run(["g++", *FLAGS[1:], "-c", "-o", str(tmp_path / "session.cc.o"), str(STANDIN)], check=True)
    archive = build_dir / "MinSizeRel" / "libonnxruntime_session.a"
    subprocess.run(["ar", "rcs", str(archive), str(tmp_path / "session.cc.o")], check=True)
    assert main(["size", "--build-dir", str(build_dir), "--json"]) == 0
    report = SizeReport.from_json(json.loads(capsys.readouterr().out))
    assert dict(report.parts)["session"] > 0  # InferenceSession, named after the library that defines it
    save_build_sizes(build_dir, report, "k", "1.28.0")
    config = tmp_path / "ops.config"
    config.write_text("ai.onnx;13;Gemm\nai.onnx;14;Relu\nai.onnx.ml;1;TreeEnsembleClassifier\n")
    assert main(["explain", str(config), "--build-dir", str(build_dir)]) == 0
    out = capsys.readouterr().out
    relu = report.op_bytes()["ai.onnx:Relu"]
    assert f"ai.onnx:Relu: {relu:,}" in out
    assert "ai.onnx:Gemm: not in that build" in out
    assert "ONNX Runtime 1.28.0" in out
    assert main(["explain", str(config), "--build-dir", str(tmp_path)]) == 1
    assert "no sizes recorded here" in capsys.readouterr().err


def test_the_wheel_library_is_read_like_binutils_reads_it(capsys: pytest.CaptureFixture[str]) -> None:
    """onnxruntime's own libonnxruntime.so (stripped, ~20 MB): sections, unwind entries, relocations."""
    capi = Path(str(__import__("onnxruntime").__file__)).parent / "capi"
    found = sorted(capi.glob("libonnxruntime.so*"))
    if not found or not shutil.which("readelf"):
        pytest.skip("needs the onnxruntime wheel's libonnxruntime.so (Linux) and readelf")
    library = found[0]
    elf = Elf(library)
    listing = subprocess.run(["readelf", "-S", "-W", str(library)], capture_output=True, text=True, check=True).stdout
    theirs = {
        m[1]: int(m[2], 16)
        for m in re.finditer(r"\[\s*[1-9]\d*\]\s+(\S+)\s+\S+\s+[0-9a-f]+\s+[0-9a-f]+\s+([0-9a-f]+)", listing)
    }
    assert {s.name: s.size for s in elf.sections if s.name} == theirs
    header = elf.section(".eh_frame_hdr")
    assert header is not None
    raw = elf.data[header.offset : header.offset + 12]
    assert raw[:4] == bytes([1, 0x1B, 0x03, 0x3B])  # version, eh_frame_ptr, fde_count, table encodings
    assert len(elf.frames()) == int.from_bytes(raw[8:12], "little")  # the table lists every FDE
    relocations = subprocess.run(["readelf", "-r", "-W", str(library)], capture_output=True, text=True, check=True)
    counted = sum(int(n) for n in re.findall(r"contains (\d+) entr", relocations.stdout))
    assert len(elf.relocations()) == counted

    assert main(["size", "--runtime", str(library), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["names_from"] == "none"
    assert "stripped" in report["notes"][0]
    assert sum(report["parts"].values()) == report["file_bytes"] == library.stat().st_size
    text = next(s for s in report["sections"] if s["name"] == ".text")
    assert text["group"] == "code"
    assert text["bytes"] == theirs[".text"]


def test_bad_input_is_one_line_naming_the_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bogus = tmp_path / "libonnxruntime.so"
    bogus.write_text("not a library")
    assert main(["size", "--runtime", str(bogus)]) == 1
    assert capsys.readouterr().err == f"error: {bogus}: not an ELF file\n"
    assert main(["size", "--runtime", str(tmp_path / "missing.so")]) == 1
    assert "no such library (--runtime)" in capsys.readouterr().err
    assert main(["size", "--build-dir", str(tmp_path)]) == 1
    assert "no library built here by ort-reduced-build" in capsys.readouterr().err
    report = tmp_path / "r.json"
    report.write_text('{"ops": 1}')
    assert main(["size", "--runtime", str(bogus), "--baseline", str(report)]) == 1


@needs_toolchain
def test_a_link_map_of_another_build_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    library = standin(tmp_path, double=True, stripped=True)
    other = standin(tmp_path, double=False, stripped=True)
    assert main(["size", "--runtime", str(library), "--map", f"{other}.map"]) == 1
    assert capsys.readouterr().err.startswith(f"error: {other}.map: the link map of another build of {library.name}")
    assert main(["size", "--runtime", str(library), "--svg", str(library)]) == 1
    assert "--svg would overwrite an input" in capsys.readouterr().err
    assert library.read_bytes()[:4] == b"\x7fELF"
