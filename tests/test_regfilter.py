"""The extra type reduction: the graph types analysis records for ops ORT has no type processor for, the
config lines that carry them, the registration filter, and build's two-step build.py run around it.

The registration tables are ORT's code and are not copied here: ``STANDIN`` is a stand-in written for
these tests in ORT's macro format (the shapes ``reduce_op_kernels.py`` leaves: entries over two lines,
entries ORT already commented out, the table's last entry). With ``ORT_SOURCE_DIR`` set, one test runs
ORT's own ``reduce_op_kernels.py`` for the sample's config and checks the filter on what it generates,
parsed the same way ORT's ``op_registration_utils`` parses it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from ort_reduced_build import build
from ort_reduced_build.build import BuildRequest, Host, execute
from ort_reduced_build.build.regfilter import filter_build, filter_text, registrations
from ort_reduced_build.cli import main
from ort_reduced_build.engine.config import format_graph_types, parse_config, parse_graph_types

from tests import modelgen

STANDIN = """\
// A stand-in registration table in ORT's macro format (written for this test).
Status RegisterOnnxMLOperatorKernels(KernelRegistry& kernel_registry) {
  static const BuildKernelCreateInfoFn function_table[] = {
      BuildKernelCreateInfo<void>,  // default entry to avoid the list become empty after ops-reducing
//       BuildKernelCreateInfo<ONNX_OPERATOR_KERNEL_CLASS_NAME(kCpuExecutionProvider, kMLDomain, 1, Binarizer)>,
      BuildKernelCreateInfo<ONNX_OPERATOR_TYPED_KERNEL_CLASS_NAME(kCpuExecutionProvider, kMLDomain, 1, float, Scaler)>,
      BuildKernelCreateInfo<ONNX_OPERATOR_TYPED_KERNEL_CLASS_NAME(kCpuExecutionProvider, kMLDomain, 1, double, Scaler)>,
      BuildKernelCreateInfo<ONNX_OPERATOR_VERSIONED_TYPED_KERNEL_CLASS_NAME(kCpuExecutionProvider, kMLDomain, 1, 2,
                                                                            float, TreeEnsembleClassifier)>,
      BuildKernelCreateInfo<ONNX_OPERATOR_VERSIONED_TYPED_KERNEL_CLASS_NAME(kCpuExecutionProvider, kMLDomain, 1, 2,
                                                                            int64_t, TreeEnsembleClassifier)>,
      BuildKernelCreateInfo<ONNX_OPERATOR_KERNEL_CLASS_NAME(kCpuExecutionProvider, kMLDomain, 1, ZipMap)>,
      BuildKernelCreateInfo<ONNX_OPERATOR_VERSIONED_TYPED_KERNEL_CLASS_NAME(kCpuExecutionProvider, kMLDomain, 2, 3,
                                                                            string_float, LabelEncoder)>,
      BuildKernelCreateInfo<ONNX_OPERATOR_VERSIONED_TYPED_KERNEL_CLASS_NAME(kCpuExecutionProvider, kMLDomain, 2, 3,
                                                                            float_int64, LabelEncoder)>,
      BuildKernelCreateInfo<ONNX_OPERATOR_TWO_TYPED_KERNEL_CLASS_NAME(kCpuExecutionProvider, kMSDomain, 1, float,
                                                                      uint8_t, QuantizeThing)>,
      BuildKernelCreateInfo<ONNX_OPERATOR_TYPED_KERNEL_CLASS_NAME(kCpuExecutionProvider, kMSDomain, 1, Int4x2,
                                                                  OddType)>,
      BuildKernelCreateInfo<ONNX_OPERATOR_TYPED_KERNEL_CLASS_NAME(kCpuExecutionProvider, kMLDomain, 1, float,
                                                                  ArrayFeatureExtractor)>,
      BuildKernelCreateInfo<ONNX_OPERATOR_TYPED_KERNEL_CLASS_NAME(kCpuExecutionProvider, kMLDomain, 1, int64_t,
                                                                  ArrayFeatureExtractor)>};
  for (auto& function_table_entry : function_table) {
  }
}
"""
ML = "ai.onnx.ml"


def graph(**ops: str) -> dict[tuple[str, str], frozenset[str]]:
    return {
        (ML if not op.startswith("ms_") else "com.microsoft", op.removeprefix("ms_")): frozenset(t.split(","))
        for op, t in ops.items()
    }


def test_the_stand_in_table_is_read_as_ort_reads_it() -> None:
    found = registrations(STANDIN.splitlines(keepends=True))
    described = [r.describe() for r in found]
    assert described == [
        "ai.onnx.ml:Scaler(1)<float>",
        "ai.onnx.ml:Scaler(1)<double>",
        "ai.onnx.ml:TreeEnsembleClassifier(1-2)<float>",
        "ai.onnx.ml:TreeEnsembleClassifier(1-2)<int64_t>",
        "ai.onnx.ml:ZipMap(1)<>",
        "ai.onnx.ml:LabelEncoder(2-3)<string,float>",
        "ai.onnx.ml:LabelEncoder(2-3)<float,int64>",
        "com.microsoft:QuantizeThing(1)<float,uint8_t>",
        "com.microsoft:OddType(1)<Int4x2>",
        "ai.onnx.ml:ArrayFeatureExtractor(1)<float>",
        "ai.onnx.ml:ArrayFeatureExtractor(1)<int64_t>",
    ]
    assert (found[3].first, found[3].last) == (9, 10)  # over two lines


def test_typed_kernels_for_types_on_no_node_are_commented_out_as_ort_does() -> None:
    types = graph(
        Scaler="float",
        TreeEnsembleClassifier="float,std::string",
        ZipMap="float,std::string",
        LabelEncoder="std::string,float",
        ArrayFeatureExtractor="int64_t,float,int64_t",
    )
    text, dropped = filter_text(STANDIN, types)
    assert dropped == [  # in the file's order
        "ai.onnx.ml:Scaler(1)<double>",
        "ai.onnx.ml:TreeEnsembleClassifier(1-2)<int64_t>",
        "ai.onnx.ml:LabelEncoder(2-3)<float,int64>",
    ]
    lines = text.splitlines()
    scaler = next(line for line in lines if "double, Scaler" in line)
    assert scaler.startswith("//       BuildKernelCreateInfo<ONNX_OPERATOR_TYPED_KERNEL_CLASS_NAME(")
    tree = lines.index(next(line for line in lines if "int64_t, TreeEnsembleClassifier" in line))
    assert lines[tree - 1].startswith("//       BuildKernelCreateInfo<")
    assert lines[tree].startswith("//   ")
    kept = [r.describe() for r in registrations(text.splitlines(keepends=True))]
    assert "ai.onnx.ml:LabelEncoder(2-3)<string,float>" in kept  # string in, float out: both on the node
    assert len(kept) == 11 - 3
    assert len(text.splitlines()) == len(STANDIN.splitlines())  # commented, not removed


def test_the_filter_keeps_what_it_cannot_prove_unused() -> None:
    # no record, an unknown type, a type name it cannot spell, every typed kernel of a version unused
    for types in (
        {},
        graph(Scaler="float,unknown"),
        graph(ms_OddType="float"),
        graph(TreeEnsembleClassifier="double"),
    ):
        text, dropped = filter_text(STANDIN, types)
        assert (text, dropped) == (STANDIN, []), types
    # the table's last entry: its end stays (as ORT's reduce_op_kernels.py leaves it)
    text, dropped = filter_text(STANDIN, graph(ArrayFeatureExtractor="float"))
    assert dropped == ["ai.onnx.ml:ArrayFeatureExtractor(1)<int64_t>"]
    assert text.splitlines()[-5:-3] == [
        "//                                                                   ArrayFeatureExtractor)>};",
        "};",
    ]


def test_graph_types_are_recorded_for_ops_without_types(tmp_path: Path) -> None:
    """The scikit-learn pipeline: Scaler, TreeEnsembleClassifier and ZipMap have no type processor in ORT;
    their nodes carry floats, and strings (the labels)."""
    model = modelgen.save(modelgen.sklearn_pipeline(), tmp_path / "forest.onnx")
    config = tmp_path / "ops.config"
    assert main(["config", str(model), "-o", str(config), "--no-cache", "-q"]) == 0
    text = config.read_text()
    assert parse_graph_types(text) == {
        (ML, "Scaler"): frozenset({"float"}),
        (ML, "TreeEnsembleClassifier"): frozenset({"float", "std::string"}),
        (ML, "ZipMap"): frozenset({"float", "std::string"}),
    }
    assert "# graph types ai.onnx.ml:TreeEnsembleClassifier: float,std::string\n" in text
    assert parse_config(text) == parse_config("\n".join(line for line in text.splitlines() if not line.startswith("#")))
    off = tmp_path / "off.config"
    assert main(["config", str(model), "-o", str(off), "--no-type-reduction", "--no-cache", "-q"]) == 0
    assert parse_graph_types(off.read_text()) == {}
    extra = tmp_path / "extra.config"
    extra.write_text("ai.onnx.ml;1;Scaler\n")  # wants Scaler whole
    both = tmp_path / "both.config"
    assert main(["config", str(model), "-o", str(both), "--extra-ops", str(extra), "--no-cache", "-q"]) == 0
    assert (ML, "Scaler") not in parse_graph_types(both.read_text())


def test_build_runs_update_filters_then_builds(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Between build.py --update (which writes the tables) and --build, the filter edits the tables;
    --no-extra-type-reduction leaves them as ORT wrote them, and is another build (another stamp key)."""
    ort = tmp_path / "ort"
    (ort / "tools" / "ci_build").mkdir(parents=True)
    (ort / "tools" / "ci_build" / "build.py").write_text("raise SystemExit('stub ORT tree')\n")
    config = tmp_path / "ops.config"
    types = {(ML, "Scaler"): frozenset({"float"})}
    config.write_text("\n".join(["# " + line for line in format_graph_types(types)] + ["ai.onnx.ml;1;Scaler", ""]))
    runs: list[list[str]] = []
    compiled: list[list[str]] = []  # the table's registrations each --build compiled
    table = tmp_path / "b" / "MinSizeRel" / "op_reduction.generated" / "onnxruntime" / "cpu_execution_provider.cc"

    def fake_build_py(argv: list[str], _on_output: object, _env: object = None) -> None:  # stands in for build.py
        runs.append([a for a in argv if a in ("--update", "--build")])
        if "--update" in argv:
            table.parent.mkdir(parents=True, exist_ok=True)
            table.write_text(STANDIN)
        if "--build" in argv:
            compiled.append([r.describe() for r in registrations(table.read_text().splitlines(keepends=True))])
            lib = tmp_path / "b" / "MinSizeRel" / "libonnxruntime.so"
            lib.write_bytes(b"\0")

    monkeypatch.setattr(execute, "_execute", fake_build_py)
    monkeypatch.setattr(execute, "default_cmake", lambda: None)
    request = BuildRequest(ort, config, tmp_path / "b", python="py")
    linux = Host("Linux", False, False)
    result = build.run(request, host=linux)
    assert runs == [["--update"], ["--build"]]
    assert result.trimmed == ("ai.onnx.ml:Scaler(1)<double>",)
    assert "ai.onnx.ml:Scaler(1)<double>" not in compiled[0]
    again = build.run(request, host=linux)
    assert (again.up_to_date, again.trimmed, len(runs)) == (True, result.trimmed, 2)
    whole = build.run(BuildRequest(ort, config, tmp_path / "b", python="py", extra_type_reduction=False), host=linux)
    assert (whole.up_to_date, whole.trimmed, runs[2:]) == (False, (), [["--update"], ["--build"]])
    assert "ai.onnx.ml:Scaler(1)<double>" in compiled[1]


@pytest.mark.skipif(not os.environ.get("ORT_SOURCE_DIR"), reason="set ORT_SOURCE_DIR to an ONNX Runtime tree")
def test_the_filter_on_what_ort_generates(tmp_path: Path) -> None:
    """ORT's reduce_op_kernels.py for a config of the sample's ML ops, then the filter; both the files before
    and after are read by ORT's op_registration_utils, and it must see what we see."""
    ort = Path(os.environ["ORT_SOURCE_DIR"])
    config = tmp_path / "ops.config"
    config.write_text(
        'ai.onnx;13;Gemm{"inputs": {"0": ["float"]}}\nai.onnx.ml;1;Scaler,TreeEnsembleClassifier,ZipMap\n'
    )
    script = ort / "tools" / "ci_build" / "reduce_op_kernels.py"
    argv = [sys.executable, str(script), str(config), "--cmake_build_dir", str(tmp_path), "--enable_type_reduction"]
    subprocess.run(argv, check=True, capture_output=True)
    before = {str(p): ort_reads(ort, p) for p in sorted((tmp_path / "op_reduction.generated").rglob("*.cc"))}
    for path, entries in before.items():
        assert [r.describe() for r in registrations(Path(path).read_text().splitlines(keepends=True))] == entries
    types = graph(Scaler="float", TreeEnsembleClassifier="float,std::string", ZipMap="float,std::string")
    dropped = filter_build(tmp_path, types)
    assert dropped == [
        "ai.onnx.ml:Scaler(1)<double>",
        "ai.onnx.ml:Scaler(1)<int32_t>",
        "ai.onnx.ml:Scaler(1)<int64_t>",
        "ai.onnx.ml:TreeEnsembleClassifier(1-2)<double>",
        "ai.onnx.ml:TreeEnsembleClassifier(1-2)<int32_t>",
        "ai.onnx.ml:TreeEnsembleClassifier(1-2)<int64_t>",
    ]
    after = [e for p in before for e in ort_reads(ort, Path(p))]
    assert sorted({e for es in before.values() for e in es} - set(after)) == dropped


def ort_reads(ort: Path, path: Path) -> list[str]:
    """The registrations ORT's own parser finds in a file, described as ``Registration.describe`` does."""
    code = f"""
import json, sys
sys.path.insert(0, {str(ort / "tools" / "ci_build")!r})
import op_registration_utils as u
DOMAINS = {{"kOnnxDomain": "ai.onnx", "kMLDomain": "ai.onnx.ml", "kMSDomain": "com.microsoft"}}
class P(u.RegistrationProcessor):
    found = []
    def process_registration(self, lines, domain, op, start, end=None, type=None):
        versions = f"{{start}}-{{end}}" if end is not None else str(start)
        types = []
        for part in (type or "").split(", "):
            for token in part.split("_") if part else []:
                if token == "t" and types: types[-1] += "_t"
                else: types.append(token)
        self.found.append(f"{{DOMAINS.get(domain, domain)}}:{{op}}({{versions}})<{{','.join(types)}}>")
    def process_other_line(self, line): pass
    def ok(self): return True
p = P()
u.process_kernel_registration_file({str(path)!r}, p)
print(json.dumps(p.found))
"""
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    found: list[str] = json.loads(out.splitlines()[-1])
    return found
