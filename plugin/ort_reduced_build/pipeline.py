"""The orchestrator: cache lookup -> conversion -> analysis -> merge -> outputs, in that order.

Nothing is written to a final path until every model has converted (or failures are allowed), and
then only through temp files renamed into place (a killed run's leftover temp files are swept).
Models with the same cache key convert once per run. Before anything runs, the outputs are checked:
two outputs sharing a path (names equal but for case count: they are one file on macOS and Windows) or
an output that is an input is refused, naming both.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ._fileio import atomic_link_or_copy, atomic_write, sweep_stale_temps
from ._version import __version__
from .analyze import ModelUsage, analyze_ort, merge_graph_types, read_ort_file, saved_runtime_optimizations
from .cache import Cache, CacheEntry
from .config import (
    OpsConfig,
    format_config,
    format_graph_types,
    format_options,
    format_value_types,
    merge,
    read_config,
)
from .convert import ConvertFailure, ConvertTask, Workers, default_jobs
from .discover import Model, printable
from .errors import ConfigError, ConversionError, ModelError, OrtReducedBuildError, OutputError
from .settings import ConvertOptions

__all__ = ["ModelResult", "Request", "Result", "config_file_name", "run"]

log = logging.getLogger("ort_reduced_build")


def config_file_name(type_reduction: bool) -> str:
    """ORT's default config name."""
    return "required_operators_and_types.config" if type_reduction else "required_operators.config"


@dataclass(frozen=True)
class Request:
    """Everything one run needs; the shells build it from settings and flags."""

    models: tuple[Model, ...]
    root: Path
    """Paths in the config header are relative to this directory."""
    options: ConvertOptions = field(default_factory=ConvertOptions)
    type_reduction: bool = True
    ort_dir: Path | None = None
    """Mirror the converted models below this directory."""
    ort_beside_source: bool = False
    """Write each converted model next to its source (when ``ort_dir`` is None)."""
    config_path: Path | None = None
    extra_configs: tuple[Path, ...] = ()
    """Config files (extra ops, other configs) merged into the result."""
    globally_allowed_types: frozenset[str] | None = None
    cache_dir: Path | None = None
    """None: convert everything, store nothing (``--no-cache``)."""
    jobs: int = field(default_factory=default_jobs)
    timeout: float | None = None
    allow_failures: bool = False
    verbose: bool = False


@dataclass(frozen=True)
class ModelResult:
    """One model in one optimization style."""

    model: Model
    style: str
    usage: ModelUsage | None
    cached: bool = False
    error: str | None = None
    ort_path: Path | None = None


@dataclass(frozen=True)
class Result:
    """What a run did and produced."""

    results: tuple[ModelResult, ...]
    config: OpsConfig
    config_text: str

    @property
    def converted(self) -> int:
        return sum(1 for r in self.results if r.error is None and not r.cached and not r.model.is_ort)

    @property
    def cached(self) -> int:
        return sum(1 for r in self.results if r.cached)

    @property
    def failed(self) -> tuple[ModelResult, ...]:
        return tuple(r for r in self.results if r.error is not None)

    def summary(self) -> str:
        """What the run counted, each thing once: models; conversions (one per model and optimization style;
        an ``.ort`` given as is is none), of which converted and taken from the cache; failures (failed
        conversions and unusable ``.ort`` files: one per ``failed``/``error`` line); the config's ops."""
        models = len({r.model.path for r in self.results})
        conversions = sum(1 for r in self.results if not r.model.is_ort)
        return (
            f"{models} model(s), {conversions} conversion(s) ({self.converted} converted, {self.cached} cached), "
            f"{len(self.failed)} failed, {self.config.op_count()} ops"
        )

    @property
    def warnings(self) -> list[str]:
        return sorted({f"{r.model.display}: {w}" for r in self.results if r.usage for w in r.usage.warnings})


def run(request: Request) -> Result:
    """Run the pipeline; raises ``ConversionError`` (nothing written) unless failures are allowed.

    ``OutputError`` (nothing converted, nothing written) when outputs would collide or overwrite an input.
    """
    _check_outputs(request)
    workers = Workers(request.jobs, request.timeout)
    # A file new to the stat index is hashed, and most likely converted next: workers get ready meanwhile.
    cache = Cache(request.cache_dir, before_hashing=workers.prepare)
    if request.cache_dir is None and not all(m.is_ort for m in request.models):
        workers.prepare()  # no cache: every .onnx model converts
    results: list[ModelResult] = []
    entries: dict[tuple[Path, str], CacheEntry] = {}
    keys: dict[ConvertTask, tuple[Model, str]] = {}
    # Per key in flight: the other (model, style) pairs with that key, served by its one conversion.
    followers: dict[str, list[tuple[Model, str]]] = {}
    published: list[CacheEntry] = []
    try:
        # Tasks are planned lazily: workers start on the first miss while later models are still being hashed.
        tasks = _plan(request, cache, results, entries, keys, followers)
        for task, outcome in workers.run(tasks):
            model, key = keys.pop(task)
            if isinstance(outcome, ConvertFailure):
                shutil.rmtree(task.staging, ignore_errors=True)
                for m, style in [(model, task.style), *followers.pop(key, [])]:
                    cause = outcome.cause.replace(str(task.model), str(m.path))  # each names its own file
                    results.append(ModelResult(m, style, None, error=cause))
                if outcome.detail:  # the failure itself is reported once, by the caller
                    log.debug(
                        "conversion of %s (%s) failed in the worker:\n%s", model.display, task.style, outcome.detail
                    )
                continue
            with cache.lock(key):
                entry = cache.put(key, task.staging, outcome.usage, outcome.files)
            entries[model.path, task.style] = entry
            published.append(entry)
            results.append(ModelResult(model, task.style, outcome.usage))
            log.info("converted  %s (%s)", model.display, task.style)
            for m, style in followers.pop(key, []):
                entries[m.path, style] = entry
                results.append(ModelResult(m, style, outcome.usage, cached=True))
        result = _finish(request, results, entries)
        for entry in published:
            cache.restamp_own(entry)
        return result
    finally:
        workers.close()
        if request.cache_dir is None:
            for entry in entries.values():
                shutil.rmtree(entry.directory, ignore_errors=True)
        cache.close()


def _plan(
    request: Request,
    cache: Cache,
    results: list[ModelResult],
    entries: dict[tuple[Path, str], CacheEntry],
    keys: dict[ConvertTask, tuple[Model, str]],
    followers: dict[str, list[tuple[Model, str]]],
) -> Iterator[ConvertTask]:
    """Record cache hits (and given ``.ort`` files) in ``results``; yield a task for each miss."""
    threads = max(1, default_jobs() // max(1, request.jobs))
    need = ("model.optimized.onnx",) if request.options.save_optimized_onnx else ()
    # Largest first: the longest conversions start early, so the workers finish together.
    for model in sorted(request.models, key=_size, reverse=True):
        if model.is_ort:
            results.append(_analyze_given_ort(model))
            continue
        for style in request.options.optimization_styles:
            try:
                key = _key(request, cache, model, style)
            except ModelError as exc:
                results.append(ModelResult(model, style, None, error=str(exc).removeprefix(f"{model.path}: ")))
                continue
            if key in followers:  # the same bytes and options as a model converting now
                followers[key].append((model, style))
                continue
            entry = cache.get(key, need) if key else None
            if entry is not None:
                entries[model.path, style] = entry
                results.append(_from_entry(model, style, entry, cached=True))
                log.info("cached     %s (%s)", model.display, style)
                continue
            task = ConvertTask(
                model.path,
                style,
                request.options,
                cache.staging_dir(),
                threads,
                log_severity=2 if request.verbose else 3,
            )
            keys[task] = (model, key)
            if key:
                followers[key] = []
            yield task


def _key(request: Request, cache: Cache, model: Model, style: str) -> str:
    """The model's cache key ("" without a cache); ``ModelError`` when it cannot be converted as is."""
    try:
        str(model.path).encode("utf-8")
    except UnicodeEncodeError:
        raise ModelError("file name is not valid UTF-8, so onnxruntime cannot open it; rename the file") from None
    try:
        return cache.key(model.path, style, request.options) if request.cache_dir else ""
    except OSError as exc:
        raise ModelError(f"cannot read {printable(str(exc.filename))}: {exc.strerror}") from None


def _size(model: Model) -> int:
    try:
        return model.path.stat().st_size
    except OSError:
        return 0


def _analyze_given_ort(model: Model) -> ModelResult:
    """A ``.ort`` used as is: its nodes, plus the ops its saved runtime optimizations add when replayed.
    Those and the ops of the nodes a replay rewrites keep all their types: the file does not say which
    types the rewritten graph uses (convert the ``.onnx`` for exact types, as ORT's converter does)."""
    try:
        data = read_ort_file(model.path)
        usage = analyze_ort(model.path, data)
        replayed = saved_runtime_optimizations(model.path, data)
    except OrtReducedBuildError as exc:
        return ModelResult(model, "ort", None, error=str(exc).removeprefix(f"{model.path}: "))
    produced = [
        OpsConfig({d: {v: frozenset({op})}}) for r in replayed for d, op, v in (*r.produced_ops, *r.touched_ops)
    ]
    # A replay rewrites nodes into values this file does not describe: their types are unknown.
    value_types = usage.value_types | ({"unknown"} if replayed else set())
    config = merge([usage.config, *produced])
    return ModelResult(model, "ort", ModelUsage(config, usage.warnings, value_types, usage.graph_types))


def _from_entry(model: Model, style: str, entry: CacheEntry, cached: bool) -> ModelResult:
    usage = ModelUsage(entry.usage, entry.warnings, entry.value_types, entry.graph_types)
    return ModelResult(model, style, usage, cached=cached)


def _finish(request: Request, results: list[ModelResult], entries: dict[tuple[Path, str], CacheEntry]) -> Result:
    results.sort(key=lambda r: (r.model.display, r.style))
    failures = [r for r in results if r.error is not None]
    if failures and not request.allow_failures:
        raise ConversionError([(r.model.display, r.error or "") for r in failures])
    config = _compose(request, [r.usage.config for r in results if r.usage is not None])
    text = format_config(config, _header(request, results))
    dests = [_ort_destination(request, r.model, r.style) for r in results if (r.model.path, r.style) in entries]
    for directory in {d.parent for d in dests if d is not None} | {p.parent for p in [request.config_path] if p}:
        sweep_stale_temps(directory)
    final: list[ModelResult] = []
    for r in results:
        entry = entries.get((r.model.path, r.style))
        if entry is not None and (dest := _ort_destination(request, r.model, r.style)) is not None:
            atomic_link_or_copy(entry.ort, dest)
            if request.options.save_optimized_onnx:
                atomic_link_or_copy(entry.optimized_onnx, _optimized_destination(dest))
            r = ModelResult(r.model, r.style, r.usage, r.cached, r.error, dest)
        final.append(r)
    if request.config_path is not None:
        atomic_write(request.config_path, text.encode())
    return Result(tuple(final), config, text)


def _compose(request: Request, usages: list[OpsConfig]) -> OpsConfig:
    models = merge(usages)
    if not request.type_reduction or request.globally_allowed_types is not None:
        models = models.without_types()
    parts = [models]
    for path in request.extra_configs:
        extra = read_config(path)
        if request.globally_allowed_types is not None and extra.types:
            raise ConfigError(
                f"{path}: has per-op type information; globally allowed types cannot be combined "
                "with it (drop --globally-allowed-types or the types in this file)"
            )
        parts.append(extra)
    if request.globally_allowed_types is not None:
        parts.append(OpsConfig(globally_allowed_types=request.globally_allowed_types))
    return merge(parts)


def _header(request: Request, results: Sequence[ModelResult]) -> list[str]:
    models = sorted({r.model.display for r in results if r.error is None})
    opts = request.options
    header = [
        f"Generated by ort-reduced-build {'.'.join(__version__.split('.')[:2])} from {len(models)} model(s):",
        *(f"- {m}" for m in models),
    ]
    for extra in request.extra_configs:
        header.append(f"+ {_relative(extra, request.root)}")
    header.append(
        format_options(opts.optimization_level, opts.optimization_styles, request.type_reduction, opts.target_platform)
    )
    if not request.extra_configs:  # merged configs do not say which types their models hold
        value_types = frozenset().union(*(r.usage.value_types for r in results if r.usage is not None))
        header.append(format_value_types(value_types))
    if request.type_reduction and request.globally_allowed_types is None:
        graph_types = merge_graph_types(r.usage for r in results if r.usage is not None)
        extra = {key for path in request.extra_configs for key in read_config(path).op_keys()}
        header += format_graph_types({k: v for k, v in graph_types.items() if k not in extra})
    return header


def _relative(path: Path, root: Path) -> str:
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return path.as_posix()


def _outputs(request: Request) -> Iterator[tuple[Path, str]]:
    """Every path this run may write, with what it is made from."""
    for model in request.models:
        for style in () if model.is_ort else request.options.optimization_styles:
            dest = _ort_destination(request, model, style)
            if dest is not None:
                yield dest, model.display
                if request.options.save_optimized_onnx:
                    yield _optimized_destination(dest), model.display
    if request.config_path is not None:
        yield request.config_path, "the config"


def _check_outputs(request: Request) -> None:
    """Refuse outputs that share a path (equal but for case, too) or that are an input (by file identity)."""
    inputs: dict[tuple[int, int], str] = {}
    for path, shown in [*((m.path, m.display) for m in request.models), *((p, str(p)) for p in request.extra_configs)]:
        try:
            st = path.stat()
        except OSError:
            continue  # reported when it is read
        inputs[st.st_dev, st.st_ino] = printable(shown)
    taken: dict[str, tuple[Path, str]] = {}
    for path, source in _outputs(request):
        shown = printable(str(path))
        try:
            st = path.stat()
            if (st.st_dev, st.st_ino) in inputs:
                raise OutputError(f"{shown}: is the input {inputs[st.st_dev, st.st_ino]}; refusing to overwrite it")
        except OSError:
            pass
        try:
            name = os.path.normcase(path.resolve()).casefold()
        except (OSError, RuntimeError):  # a symlink loop (RuntimeError before Python 3.13): fails when written
            name = os.path.normcase(path.absolute()).casefold()
        if name in taken:
            other = taken[name]
            raise OutputError(
                f"{other[1]} and {source} would both be written to {printable(str(other[0]))}"
                f"{'' if other[0] == path else f' (and {shown}, the same file where case does not count)'}; "
                "rename one, or convert them with separate -o directories"
            )
        taken[name] = (path, source)


def _optimized_destination(dest: Path) -> Path:
    return dest.with_name(dest.name.removesuffix(".ort") + ".optimized.onnx")


def _ort_destination(request: Request, model: Model, style: str) -> Path | None:
    suffix = request.options.ort_suffix(style)
    if request.ort_dir is not None:
        rel = Path(*model.relative.parts)
        return request.ort_dir / rel.with_name(_stem(rel.name) + suffix)
    if request.ort_beside_source:
        return model.path.with_name(_stem(model.path.name) + suffix)
    return None


def _stem(name: str) -> str:
    return name[: -len(".onnx")] if name.lower().endswith(".onnx") else name
