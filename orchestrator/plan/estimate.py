"""How fast each model will score, how long it takes to load, and whether it fits: the one estimator behind
`rmorch plan` (before a sweep) and `rmorch status` (during one).

A model's speed is input tokens per second of one replica. Measured, it comes from a store: a sweep records, per
model, the tokens of the units it computed over their scoring seconds, the seconds from requesting a replica to
its first unit, and the seconds per unit its replicas were held beyond scoring (the driver's dispatch, results
written, the release) (`run.json` `rates`, written by `measured_rates`). Without a measurement of the same kind of replica
(on GPUs, or on CPUs), it is assumed from the model's size (rmorch.orchestrator.plan.costs.param_hint_b): a forward
pass costs 2 x params FLOPs per token, at ASSUMED_GPU_FLOPS per GPU or ASSUMED_CPU_FLOPS per CPU of the replica;
a judge that generates its verdict adds ASSUMED_GENERATED_TOKENS per request at DECODE_COST times the price of an
input token. Baselines (kinds that never use a GPU and have no weights) cost next to nothing.

Memory: a replica needs its weights at its dtype (2 bytes per parameter, 4 for float32) spread over its GPUs, plus
ENGINE_SHARE of that for activations and the KV cache, plus ENGINE_FIXED_GB per GPU; vLLM engines may take
VLLM_GPU_MEMORY_UTILIZATION of each GPU.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from rmorch.actors import get_kind
from rmorch.core.model_spec import ModelSpec
from rmorch.orchestrator.plan.costs import param_hint_b
from rmorch.orchestrator.spec.sweep_spec import SweepSpec
from rmorch.orchestrator.store.results import ManifestEntry, ResultStore
from rmorch.orchestrator.store.run_record import MeasuredRate, RunRecord

ASSUMED_GPU_FLOPS = 140e12  # useful FLOP/s of one datacenter GPU scoring in bf16 (about 35 % of an A100/H100 peak)
ASSUMED_CPU_FLOPS = 100e9  # useful FLOP/s of one CPU core in bf16 (platform notes: 2 cores give 180-360)
ASSUMED_GENERATED_TOKENS = 128  # tokens a generating judge writes per request (verdict: text)
DECODE_COST = 4.0  # a generated token costs this many input tokens (decoding is memory-bound)
BASELINE_TOKENS_PER_SECOND = 5e6  # length, random: counting characters
API_REQUESTS_PER_SECOND = 2.0  # an OpenAI-compatible server, per request in flight
ASSUMED_PROCESS_SECONDS = 10.0  # a replica's process start and imports (torch, transformers)
ASSUMED_BASELINE_START_SECONDS = 3.0
ASSUMED_READ_BYTES_PER_SECOND = 1e9  # weights from disk or a download cache
ASSUMED_ENGINE_START_SECONDS = 60.0  # a vLLM engine: start and torch.compile warm-up (platform notes: 20-90 s)
ASSUMED_STARTUP_SECONDS = 20.0  # rmorch sweep before scheduling: imports, suites, identities, store, Ray start
ASSUMED_REPORT_SECONDS = 15.0  # the report at the end (bootstrap, plots, HTML)
DEFAULT_GPU_MEMORY_GB = 80.0
ENGINE_SHARE = 0.2  # activations and KV cache, as a share of the weights
ENGINE_FIXED_GB = 2.0  # per GPU: CUDA context, buffers
VLLM_GPU_MEMORY_UTILIZATION = 0.9


@dataclass(frozen=True)
class ModelEstimate:
    """What one replica of a model is expected to do, and where each figure comes from."""

    name: str
    params_b: float  # billions of parameters (0 for baselines)
    gpus: float  # per replica
    cpus: float
    tokens_per_second: float  # one replica
    start_seconds: float  # requesting a replica -> its first unit
    rate_source: str  # "measured" | "assumed"
    start_source: str
    memory_gb_per_gpu: float  # what one GPU of a replica must hold (0 on CPUs)
    generated_tokens: float = 0.0  # per request, priced at DECODE_COST (generating judges)
    unit_overhead_seconds: float = 0.0  # per unit, beyond its scoring (measured; 0 when not)

    @property
    def estimate_source(self) -> str:
        """"measured" when the speed is measured (the figure that decides the time), else "assumed"."""
        return self.rate_source

    def unit_seconds(self, tokens: float, n_requests: int) -> float:
        """Seconds one replica spends on a unit of `tokens` input tokens and `n_requests` requests: its scoring, and
        the measured overhead of a unit around it."""
        work = tokens + n_requests * self.generated_tokens * DECODE_COST
        return (work / self.tokens_per_second if self.tokens_per_second > 0 else 0.0) + self.unit_overhead_seconds


def has_weights(spec: ModelSpec) -> bool:
    """Whether the model computes with parameters of its own: it names weight files, or its kind says its size
    (a kind that loads its weights its own way); baselines and API clients do neither."""
    caps = get_kind(spec.kind).capabilities(spec.config)
    return bool(caps.weights or caps.param_count)


def backend(spec: ModelSpec) -> str:
    return get_kind(spec.kind).capabilities(spec.config).backend


def dtype_bytes(spec: ModelSpec) -> float:
    """Bytes per weight: 4 for float32, 1 for an FP8 checkpoint (its name says so), else 2 (bf16/fp16)."""
    dtype = getattr(spec.config, "dtype", "auto")
    weights = get_kind(spec.kind).capabilities(spec.config).weights
    if dtype == "auto" and weights and "fp8" in weights[0].lower():
        return 1.0
    return 4.0 if dtype == "float32" else 2.0


def memory_gb_per_gpu(spec: ModelSpec, params_b: float, gpus: float) -> float:
    """GPU memory one GPU of a replica needs: its share of the weights at the dtype, plus the engine's share."""
    if gpus <= 0 or not has_weights(spec) or backend(spec) == "openai":
        return 0.0
    weights_gb = params_b * dtype_bytes(spec)  # 1e9 params x bytes = GB
    return weights_gb * (1 + ENGINE_SHARE) / gpus + ENGINE_FIXED_GB


def usable_gb(spec: ModelSpec, gpu_memory_gb: float) -> float:
    """Of a GPU of `gpu_memory_gb`, what the model's backend may use."""
    return gpu_memory_gb * (VLLM_GPU_MEMORY_UTILIZATION if backend(spec) == "vllm" else 1.0)


def generated_tokens(spec: ModelSpec) -> float:
    """Tokens a generating judge writes per request (0 for everything that only reads)."""
    if spec.kind != "judge" or getattr(spec.config, "verdict", "text") != "text":
        return 0.0
    limit = getattr(spec.config, "max_tokens", None) or 512
    return float(min(limit, ASSUMED_GENERATED_TOKENS))


def assumed_tokens_per_second(spec: ModelSpec, params_b: float, gpus: float) -> float:
    kind = get_kind(spec.kind)
    if not kind.uses_gpu or not has_weights(spec):
        return BASELINE_TOKENS_PER_SECOND
    if backend(spec) == "openai":
        concurrency = float(getattr(spec.config, "max_concurrency", 8))
        return API_REQUESTS_PER_SECOND * concurrency * 1000.0  # about 1k tokens a request
    flops = gpus * ASSUMED_GPU_FLOPS if gpus > 0 else spec.resources.num_cpus * ASSUMED_CPU_FLOPS
    return flops / (2.0 * max(params_b, 1e-3) * 1e9)


def assumed_start_seconds(spec: ModelSpec, params_b: float) -> float:
    if not get_kind(spec.kind).uses_gpu or not has_weights(spec) or backend(spec) == "openai":
        return ASSUMED_BASELINE_START_SECONDS
    read = params_b * 1e9 * dtype_bytes(spec) / ASSUMED_READ_BYTES_PER_SECOND
    engine = ASSUMED_ENGINE_START_SECONDS if backend(spec) == "vllm" else 0.0
    return ASSUMED_PROCESS_SECONDS + read + engine


def estimate_model(spec: ModelSpec, gpus: float, measured: MeasuredRate | None = None) -> ModelEstimate:
    """One replica of `spec` holding `gpus` GPUs (0: a CPU replica). A measurement is used when it was made on the
    same kind of replica (GPUs or CPUs); its tokens per second are scaled to this replica's GPUs (or CPUs)."""
    params_b = param_hint_b(spec) if has_weights(spec) else 0.0
    cpus = spec.resources.num_cpus
    rate, rate_source = assumed_tokens_per_second(spec, params_b, gpus), "assumed"
    start, start_source = assumed_start_seconds(spec, params_b), "assumed"
    overhead = 0.0
    if measured is not None and measured.tokens_per_second > 0 and (measured.gpus > 0) == (gpus > 0):
        scale = gpus / measured.gpus if gpus > 0 else cpus / measured.cpus if measured.cpus > 0 else 1.0
        rate, rate_source = measured.tokens_per_second * scale, "measured"
        overhead = measured.unit_overhead_seconds or 0.0
        if measured.start_seconds is not None:
            start, start_source = measured.start_seconds, "measured"
    return ModelEstimate(spec.name, params_b, gpus, cpus, rate, start, rate_source, start_source,
                         memory_gb_per_gpu(spec, params_b, gpus),
                         0.0 if rate_source == "measured" else generated_tokens(spec), overhead)


# ---- measuring: what a sweep records at its end ----------------------------------------------------------------


def measured_rates(units: Iterable[Any], entries: Mapping[str, ManifestEntry], computed: Iterable[str],
                   replicas: list[dict[str, Any]], engine_starts: Mapping[str, int], gpus: Mapping[str, float],
                   cpus: Mapping[str, float], run_id: str | None) -> dict[str, MeasuredRate]:
    """Per model, the rate of the units this run computed (`computed`: their keys; a unit's scoring seconds from
    its manifest entry, its tokens from the plan's `units`), the mean start of its replicas (`replicas`:
    RunStats.replicas, with requested_at, ready_at, released_at, load_seconds), and the overhead per unit: the
    seconds its replicas were held after their start beyond their units' scoring, over its units. Units that took
    no time (error rows of a unit that kept failing) say nothing about speed and are left out."""
    done = set(computed)
    tokens: dict[str, float] = {}
    seconds: dict[str, float] = {}
    count: dict[str, int] = {}
    for u in units:
        e = entries.get(u.key)
        if u.key not in done or e is None or e.seconds <= 0:
            continue
        tokens[u.model] = tokens.get(u.model, 0.0) + u.tokens
        seconds[u.model] = seconds.get(u.model, 0.0) + e.seconds
        count[u.model] = count.get(u.model, 0) + 1
    starts: dict[str, list[float]] = {}
    loads: dict[str, list[float]] = {}
    held: dict[str, float] = {}
    for r in replicas:
        if r.get("ready_at") is not None and r.get("requested_at") is not None:
            starts.setdefault(r["model"], []).append(float(r["ready_at"]) - float(r["requested_at"]))
        if r.get("ready_at") is not None and r.get("released_at") is not None:
            held[r["model"]] = held.get(r["model"], 0.0) + float(r["released_at"]) - float(r["ready_at"])
        if r.get("load_seconds") is not None:
            loads.setdefault(r["model"], []).append(float(r["load_seconds"]))
    out = {}
    for model, s in seconds.items():
        out[model] = MeasuredRate(
            tokens_per_second=tokens[model] / s, gpus=gpus.get(model, 0.0), cpus=cpus.get(model, 1.0),
            units=count[model], tokens=tokens[model], seconds=s,
            start_seconds=statistics.fmean(starts[model]) if starts.get(model) else None,
            load_seconds=statistics.fmean(loads[model]) if loads.get(model) else None,
            engine_starts=int(engine_starts.get(model, 0)), run_id=run_id,
            unit_overhead_seconds=max(0.0, held[model] - s) / count[model] if model in held else None)
    return out


# ---- the sweep's own overheads ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Overheads:
    """What `rmorch sweep` spends besides its replicas: before and around scheduling, and the report."""

    startup_seconds: float
    report_seconds: float
    source: str  # "measured" | "assumed"

    @classmethod
    def from_record(cls, recorded: Mapping[str, float] | None) -> Overheads:
        if recorded and "startup_seconds" in recorded and "report_seconds" in recorded:
            startup = recorded["startup_seconds"] + recorded.get("process_seconds", 0.0)
            return cls(startup, recorded["report_seconds"], "measured")
        return cls(ASSUMED_STARTUP_SECONDS, ASSUMED_REPORT_SECONDS, "assumed")


def eta_text(seconds: float | None) -> str:
    """A duration for people: '42 s', '12 min', '3.4 h'; '-' when unknown."""
    if seconds is None or math.isnan(seconds):
        return "-"
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def record_measurements(run: RunRecord, spec: SweepSpec, units: list[Any], store: ResultStore, stats: Any,
                        process_seconds: float | None) -> None:
    """At the end of a sweep (`run.last_run` written): the measured rate of every model that computed units in it
    (replacing its older one in `run.rates`) and, when replicas ran, the sweep's start-up overhead (its seconds
    outside the replicas' makespan, plus `process_seconds`: the CLI process before run_sweep, when known)."""
    if stats.computed:
        from rmorch.orchestrator.schedule.scheduler import gpus_per_replica  # late: the scheduler imports Ray

        entries = {e.key: e for e in store.manifest()}
        gpus = {m.name: gpus_per_replica(m, stats.gpus) for m in spec.models}
        cpus = {m.name: m.resources.num_cpus for m in spec.models}
        run.rates.update(measured_rates(units, entries, stats.computed, stats.replicas, stats.engine_starts, gpus,
                                        cpus, run.run_id))
    if stats.makespan_seconds > 0 and run.last_run is not None:
        run.overheads["startup_seconds"] = max(0.0, run.last_run.seconds - stats.makespan_seconds)
        if process_seconds is not None:
            run.overheads["process_seconds"] = process_seconds


def process_seconds() -> float | None:
    """Seconds this process lived before now: what `rmorch sweep` spent before calling run_sweep (its imports and
    the spec); None when unknown (no psutil, no /proc) or implausible for a command (over a minute)."""
    try:
        import psutil

        age = time.time() - psutil.Process().create_time()
    except (ImportError, OSError):  # no psutil, or no /proc: unknown
        return None
    return age if 0 <= age < 60 else None


# ---- during a sweep: rates, work left and ETA from its own unit times (`rmorch status`) --------------------------

STALL_FACTOR = 5.0  # a model whose last unit landed this many times its longest unit ago has stalled
STALL_MIN_SECONDS = 120.0  # ... and at least this long ago


@dataclass(frozen=True)
class LandedUnit:
    """A unit finished in the running sweep: its input tokens (None: a plan.json of an older rmorch), its scoring
    seconds (manifest entry) and when it landed (Unix time)."""

    tokens: float | None
    seconds: float
    landed_at: float


@dataclass(frozen=True)
class ModelProgress:
    model: str
    units_left: int
    tokens_per_second: float | None  # one replica
    rate_source: str | None  # "this run" (its own unit times) | "measured" (an earlier sweep) | "pooled" | None
    work_left_seconds: float | None  # replica-seconds of scoring left
    busy_replicas: float | None  # replicas working at once, as seen from the units landed in this run
    eta_seconds: float | None
    idle_seconds: float | None  # since its last unit landed in this run
    stalled: bool  # units left, and nothing landed for much longer than its units take
    longest_unit_seconds: float | None


def model_progress(model: str, landed: list[LandedUnit], left_tokens: list[float | None],
                   fallback: tuple[float | None, str] | None, now: float, finished: bool) -> ModelProgress:
    """How far `model` is and how long it has left. Its rate: from the units that landed in this run (`landed`),
    else `fallback` (the replica-seconds left as another source tells: an earlier sweep's measured rate, or the
    pooled seconds per cost unit of the models measured in this run, the scheduler's own rule); the work left from
    the tokens of its units left (`left_tokens`); replicas at work from the scoring seconds landed over the time
    since the first of them began."""
    timed = [u for u in landed if u.seconds > 0]
    rate: float | None = None
    source: str | None = None
    work: float | None = None
    if timed and all(u.tokens is not None for u in timed):
        rate, source = sum(u.tokens or 0.0 for u in timed) / sum(u.seconds for u in timed), "this run"
    if not left_tokens:
        work = 0.0
    elif rate and all(t is not None for t in left_tokens):
        work = sum(t or 0.0 for t in left_tokens) / rate
    elif timed:  # unit counts only (a plan.json without tokens): the mean unit of this run
        work, source = len(left_tokens) * sum(u.seconds for u in timed) / len(timed), "this run"
    elif fallback is not None and fallback[0] is not None:
        work, source = fallback
    busy: float | None = None
    idle: float | None = None
    longest = max((u.seconds for u in timed), default=None)
    if timed:
        began = min(u.landed_at - u.seconds for u in timed)
        last = max(u.landed_at for u in landed)
        window = (last if finished or not left_tokens else now) - began
        busy = max(1.0, sum(u.seconds for u in timed) / window) if window > 0 else 1.0
        idle = max(0.0, now - last)
    eta = None if work is None else work / (busy or 1.0)
    stalled = (not finished and bool(left_tokens) and idle is not None and longest is not None
               and idle > max(STALL_MIN_SECONDS, STALL_FACTOR * longest))
    return ModelProgress(model, len(left_tokens), rate, source, work, busy, eta, idle, stalled, longest)


def sweep_eta(progress: list[ModelProgress], landed: list[LandedUnit], now: float) -> float | None:
    """The whole sweep's scoring time left at its pace so far: the replica-seconds left of every model over the
    replicas busy at once on average since the first unit of this run began; None when some model's work left is
    unknown."""
    if any(p.work_left_seconds is None for p in progress):
        return None
    work = sum(p.work_left_seconds or 0.0 for p in progress)
    if work <= 0:
        return 0.0
    timed = [u for u in landed if u.seconds > 0]
    busy = 1.0
    if timed:
        window = now - min(u.landed_at - u.seconds for u in timed)
        busy = max(1.0, sum(u.seconds for u in timed) / window) if window > 0 else 1.0
    return work / busy
