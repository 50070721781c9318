"""The orchestrator: cache lookup -> conversion -> analysis -> merge -> outputs, in that order.

Nothing is written to a final path until every model has converted (or failures are allowed), and
then only through temp files renamed into place (a killed run's leftover temp files are swept).
Models with the same cache key convert once per run. Before anything runs, the outputs are checked
(``outputs``): outputs sharing a path, an output that is an input, or one that cannot be written is
refused in one line.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from .._version import __version__
from ..errors import ConfigError, ConversionError, ModelError, OrtReducedBuildError
from ..settings import ConvertOptions, config_file_name
from ..util.fileio import atomic_link_or_copy, atomic_write, sweep_stale_temps
from .analyze import ModelUsage, merge_graph_types
from .cache import Cache, CacheEntry
from .config import HeaderOptions, OpKey, OpsConfig, format_config, format_header, merge, read_config
from .convert import ConvertFailure, ConvertTask, Workers, default_jobs
from .discover import Model, printable
from .outputs import check_outputs, model_stem, optimized_destination, ort_destination, writing
from .replay import GIVEN_ORT, given_ort_usage

__all__ = ["ModelResult", "Request", "Result", "config_file_name", "run"]

log = logging.getLogger("ort_reduced_build")


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
        return sum(1 for r in self.results if r.cached and not r.model.is_ort)

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
    plan = _Plan()
    try:
        # Tasks are planned lazily: workers start on the first miss while later models are still being hashed.
        for task, outcome in workers.run(_plan(request, cache, plan)):
            model, key = plan.keys.pop(task)
            if isinstance(outcome, ConvertFailure):
                shutil.rmtree(task.staging, ignore_errors=True)
                cache.raise_if_full(_bytes_to_convert(model) + 1024 * 1024)  # the .ort could not be saved: say why
                for m, style in [(model, task.style), *plan.followers.pop(key, [])]:
                    cause = outcome.cause.replace(str(task.model), str(m.path))  # each names its own file
                    plan.results.append(_failed(m, style, cause, plan.fallbacks.get(m.path)))
                if outcome.detail:  # the failure itself is reported once, by the caller
                    log.debug(
                        "conversion of %s (%s) failed in the worker:\n%s", model.display, task.style, outcome.detail
                    )
                continue
            with cache.lock(key):
                entry = cache.put(key, task.staging, outcome.usage, outcome.files)
            plan.entries[model.path, task.style] = entry
            plan.published.append(entry)
            plan.results.append(ModelResult(model, task.style, outcome.usage))
            log.info("converted  %s (%s)", model.display, task.style)
            for m, style in plan.followers.pop(key, []):
                plan.entries[m.path, style] = entry
                plan.results.append(ModelResult(m, style, outcome.usage, cached=True))
        result = _finish(request, plan.results, plan.entries)
        for entry in plan.published:
            cache.restamp_own(entry)
        return result
    finally:
        workers.close()
        if request.cache_dir is None:
            for entry in plan.entries.values():
                shutil.rmtree(entry.directory, ignore_errors=True)
        cache.close()


@dataclass
class _Plan:
    """The state of one run, owned by ``run``: filled by ``_plan`` (hits, tasks) and by the conversions."""

    results: list[ModelResult] = field(default_factory=list)
    entries: dict[tuple[Path, str], CacheEntry] = field(default_factory=dict)
    """The cache entry of each (model, style) that has one: its outputs are linked from there."""
    keys: dict[ConvertTask, tuple[Model, str]] = field(default_factory=dict)
    """Each task in flight: its model and cache key."""
    followers: dict[str, list[tuple[Model, str]]] = field(default_factory=dict)
    """Per key in flight: the other (model, style) pairs with that key, served by its one conversion."""
    fallbacks: dict[Path, ModelUsage] = field(default_factory=dict)
    """Per given ``.ort`` whose replayed needs are being derived: its needs should that fail."""
    published: list[CacheEntry] = field(default_factory=list)
    """The entries this run stored (restamped when it finishes)."""


def conversion_order(models: Sequence[Model]) -> list[Model]:
    """Largest first (``_bytes_to_convert``): the longest conversions start early, so the workers finish together."""
    return sorted(models, key=_bytes_to_convert, reverse=True)


def _plan(request: Request, cache: Cache, plan: _Plan) -> Iterator[ConvertTask]:
    """Record cache hits (and given ``.ort`` files) in ``plan``; yield a task for each miss.

    A given ``.ort`` with saved runtime optimizations is a task too (``replay.rederive``), cached as a
    conversion is; its own analysis, with those optimizations' ops kept with all types, is the fallback.
    """
    threads = max(1, default_jobs() // max(1, request.jobs))
    for model in conversion_order(request.models):
        options = request.options
        styles: tuple[str, ...] = options.optimization_styles
        if model.is_ort:
            try:
                usage, replayed = given_ort_usage(model.path)
            except OrtReducedBuildError as exc:
                error = str(exc).removeprefix(f"{model.path}: ")
                plan.results.append(ModelResult(model, GIVEN_ORT, None, error=error))
                continue
            if not replayed:
                plan.results.append(ModelResult(model, GIVEN_ORT, usage))
                continue
            plan.fallbacks[model.path] = usage
            options, styles = replace(options, save_optimized_onnx=False), (GIVEN_ORT,)
        need = ("model.optimized.onnx",) if options.save_optimized_onnx else ()
        for style in styles:
            try:
                key = _key(request, cache, model, style, options)
            except ModelError as exc:
                plan.results.append(ModelResult(model, style, None, error=str(exc).removeprefix(f"{model.path}: ")))
                continue
            if key in plan.followers:  # the same bytes and options as a model converting now
                plan.followers[key].append((model, style))
                continue
            entry = cache.get(key, need) if key else None
            if entry is not None:
                plan.entries[model.path, style] = entry
                plan.results.append(_from_entry(model, style, entry, cached=True))
                log.info("cached     %s (%s)", model.display, style)
                continue
            task = ConvertTask(
                model.path,
                style,
                options,
                cache.staging_dir(f"{model.display} ({style})"),
                threads,
                log_severity=2 if request.verbose else 3,
            )
            plan.keys[task] = (model, key)
            if key:
                plan.followers[key] = []
            yield task


def _key(request: Request, cache: Cache, model: Model, style: str, options: ConvertOptions) -> str:
    """The model's cache key ("" without a cache); ``ModelError`` when it cannot be converted as is."""
    try:
        str(model.path).encode("utf-8")
    except UnicodeEncodeError:
        raise ModelError("file name is not valid UTF-8, so onnxruntime cannot open it; rename the file") from None
    try:
        return cache.key(model.path, style, options) if request.cache_dir else ""
    except OSError as exc:
        raise ModelError(f"cannot read {printable(str(exc.filename or model.path))}: {exc.strerror}") from None


def _bytes_to_convert(model: Model) -> int:
    """The model file's size and its external data's where stored as exporters name it (``model.onnx.data``,
    ``model.onnx_data``, ``model.data``): the estimate that orders conversions, from ``stat`` alone."""
    name = model.path.name
    names = {name, f"{name}.data", f"{name}_data", f"{model_stem(name)}.data"}
    return sum(_size(model.path.with_name(n)) for n in names)


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _failed(model: Model, style: str, cause: str, fallback: ModelUsage | None) -> ModelResult:
    """A failed conversion; for a given ``.ort`` whose replayed needs could not be derived, its ``fallback``
    needs (the ops a replay adds or rewrites keep all their types) and a warning saying why."""
    if fallback is None:
        return ModelResult(model, style, None, error=cause)
    warning = (
        f"its saved runtime optimizations could not be derived again ({cause}): the ops they add or rewrite "
        "are kept with all their types"
    )
    return ModelResult(model, style, replace(fallback, warnings=(*fallback.warnings, warning)))


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
            with writing(dest):
                atomic_link_or_copy(entry.ort, dest)
            if request.options.save_optimized_onnx:
                with writing(optimized := optimized_destination(dest)):
                    atomic_link_or_copy(entry.optimized_onnx, optimized)
            r = ModelResult(r.model, r.style, r.usage, r.cached, r.error, dest)
        final.append(r)
    if request.config_path is not None:
        with writing(request.config_path):
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
    opts = request.options
    header = HeaderOptions(
        models=tuple(sorted({r.model.display for r in results if r.error is None})),
        extra_configs=tuple(_relative(extra, request.root) for extra in request.extra_configs),
        optimization_level=opts.optimization_level,
        optimization_styles=opts.optimization_styles,
        type_reduction=request.type_reduction,
        target_platform=opts.target_platform,
        # merged configs do not say which types their models hold
        value_types=None
        if request.extra_configs
        else frozenset().union(*(r.usage.value_types for r in results if r.usage is not None)),
        graph_types=_graph_types(request, results),
    )
    return format_header(header, ".".join(__version__.split(".")[:2]))


def _graph_types(request: Request, results: Sequence[ModelResult]) -> dict[OpKey, frozenset[str]]:
    """The graph types of the ops the config gives no types (none without per-op type reduction), less
    the ops an extra config brings (their types are not ours to narrow)."""
    if not request.type_reduction or request.globally_allowed_types is not None:
        return {}
    graph_types = merge_graph_types(r.usage for r in results if r.usage is not None)
    extra = {key for path in request.extra_configs for key in read_config(path).op_keys()}
    return {k: v for k, v in graph_types.items() if k not in extra}


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
                    yield optimized_destination(dest), model.display
    if request.config_path is not None:
        yield request.config_path, "the config"


def _check_outputs(request: Request) -> None:
    inputs = [*((m.path, m.display) for m in request.models), *((p, str(p)) for p in request.extra_configs)]
    check_outputs(list(_outputs(request)), inputs)


def _ort_destination(request: Request, model: Model, style: str) -> Path | None:
    return ort_destination(request.options, model, style, request.ort_dir, request.ort_beside_source)
