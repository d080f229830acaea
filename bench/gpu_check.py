"""The GPU path of the transformers kinds, checked in minutes on one GPU: only torch and transformers needed.

    python bench/gpu_check.py                  # CUDA: a random ~1.3 B Llama built from a config, under 8 minutes
    python bench/gpu_check.py --device cpu     # the same code with a tiny model, under two minutes (tests run it)

Nothing is downloaded: the models are random Llamas built from a config (seeded) with the tiny tokenizer of
tests/tiny_models.py, saved as bf16 safetensors into a temporary directory, and loaded by the kinds themselves
(`classifier` and `implicit` with a DPO reference, backend transformers, `dtype: auto`), as a replica would load
them (rmorch.actors.base.ActorContext with the GPU's device). No vLLM, no Ray: the script imports only the actor
layer's transformers path (and checks at the end that neither was imported); run from a checkout, rmorch need not
be installed.

Checks, one table row each:
- dtype: `auto` resolves to bf16 on the GPU (on a CPU: bf16 where it computes bf16 natively, else fp32), and the
  weights sit on the device in that dtype.
- batch invariance: every score bit-identical whether the requests come in one call, one at a time (reversed), or
  in calls of 7.
- memory: after a model is closed and dropped (gc, then torch.cuda.empty_cache, as the replica does between
  models), the model object is gone and, on CUDA, allocated memory is back within 64 MiB of where it was before it
  loaded; two models load one after the other in this one process.
- MFU: 2 x non-embedding parameters x scored (unpadded) tokens / seconds / the bf16 matmul peak measured here at
  the start (policy and reference count twice for the implicit kind). Reported, not judged.
The last line: `gpu_check: PASS ...` or `gpu_check: FAIL (...)`; the exit status is 1 on FAIL.
"""

from __future__ import annotations

import argparse
import gc
import importlib.abc
import importlib.util
import random
import sys
import tempfile
import time
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
MEMORY_SLACK = 64 * 2**20  # bytes of CUDA memory a dropped model may leave allocated (allocator bookkeeping)


@dataclass(frozen=True)
class Size:
    hidden: int
    intermediate: int
    layers: int
    heads: int
    kv_heads: int
    requests: int  # scored requests per check
    words: tuple[int, int]  # words per prompt and per response: (min, max)


SIZES = {
    # ~1.3 B parameters (Llama-3.2-1B-like layers, 20 of them), a vocabulary of 512: nearly all of it in the layers
    "cuda": Size(hidden=2048, intermediate=8192, layers=20, heads=16, kv_heads=8, requests=96, words=(40, 400)),
    "cpu": Size(hidden=128, intermediate=256, layers=2, heads=2, kv_heads=2, requests=10, words=(4, 24)),
}


class _CheckoutLayers(importlib.abc.MetaPathFinder):
    """`rmorch.<layer>` from the checkout's top-level folders, when rmorch is not installed (pyproject's
    package-dir, done at import time)."""

    def find_spec(self, name: str, path: Any, target: Any = None) -> Any:
        parts = name.split(".")
        folder = REPO / parts[-1] if len(parts) == 2 and parts[0] == "rmorch" else None
        if folder is None or not (folder / "__init__.py").is_file():
            return None
        return importlib.util.spec_from_file_location(name, folder / "__init__.py",
                                                      submodule_search_locations=[str(folder)])


def import_rmorch() -> None:
    if importlib.util.find_spec("rmorch") is None:
        sys.path.insert(0, str(REPO))
        sys.meta_path.insert(0, _CheckoutLayers())
    if str(REPO) not in sys.path:
        sys.path.append(str(REPO))  # tests.tiny_models (the tokenizer)


# -- measurements ---------------------------------------------------------------------------------------------------


def matmul_peak(device: str, seconds: float) -> float:
    """bf16 FLOP/s of a square matmul on `device`, best of repeated runs for about `seconds`."""
    import torch

    n = 8192 if device == "cuda" else 1024
    a = torch.randn(n, n, device=device, dtype=torch.bfloat16)
    b = torch.randn(n, n, device=device, dtype=torch.bfloat16)
    reps = 10 if device == "cuda" else 1
    best = float("inf")
    end = time.perf_counter() + seconds
    first = True
    while first or time.perf_counter() < end:
        _sync(device)
        t0 = time.perf_counter()
        for _ in range(reps):
            torch.matmul(a, b)
        _sync(device)
        best = min(best, (time.perf_counter() - t0) / reps)
        first = False
    del a, b
    return 2 * n**3 / best


def _sync(device: str) -> None:
    import torch

    if device == "cuda":
        torch.cuda.synchronize()


def allocated(device: str) -> int:
    import torch

    return torch.cuda.memory_allocated() if device == "cuda" else 0


def release(device: str) -> None:
    """What the replica does between two models (rmorch.actors.worker): collect, then hand cached blocks back."""
    import torch

    gc.collect()
    if device == "cuda":
        torch.cuda.empty_cache()


# -- models and requests --------------------------------------------------------------------------------------------


def build_model(out: Path, causal: bool, seed: int, size: Size, device: str) -> str:
    """A random Llama (sequence classifier or causal LM) with the tiny tokenizer, saved as bf16 safetensors."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM, LlamaForSequenceClassification

    from tests.tiny_models import build_tiny_tokenizer

    tokenizer = build_tiny_tokenizer(out)
    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=size.hidden, intermediate_size=size.intermediate,
        num_hidden_layers=size.layers, num_attention_heads=size.heads, num_key_value_heads=size.kv_heads,
        head_dim=size.hidden // size.heads, max_position_embeddings=4096, bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id, tie_word_embeddings=causal,
        **({} if causal else {"num_labels": 1}),
    )
    with torch.random.fork_rng(devices=[]), torch.device(device):
        torch.manual_seed(seed)
        if device == "cuda":
            torch.cuda.manual_seed(seed)
        model = (LlamaForCausalLM if causal else LlamaForSequenceClassification)(config)
        if not causal:  # spread the scores (the default init gives near-ties; see tests/tiny_models.py)
            with torch.no_grad():
                model.score.weight.normal_(0.0, size.hidden**-0.5)
    model.to(torch.bfloat16).save_pretrained(str(out), safe_serialization=True)
    del model
    release(device)
    return str(out)


WORDS = ("the", "model", "reads", "a", "prompt", "and", "scores", "each", "answer", "by", "its", "reward", "while",
         "judge", "compares", "two", "responses", "carefully", "explains", "which", "one", "is", "more", "helpful",
         "honest", "harmless", "for", "user", "who", "asked", "about", "numbers", "code", "science", "history",
         "cooking", "travel", "music", "weather", "tomorrow")


def make_requests(n: int, words: tuple[int, int], seed: int) -> list[Any]:
    from rmorch.actors.base import ScoreRequest

    rng = random.Random(seed)

    def text() -> str:
        return " ".join(rng.choice(WORDS) for _ in range(rng.randint(*words)))

    return [ScoreRequest(item_id=f"q{i}", candidate=0, prompt=[{"role": "user", "content": text()}],
                         response=text()) for i in range(n)]


# -- the checks -----------------------------------------------------------------------------------------------------


@dataclass
class Row:
    check: str
    value: str
    ok: bool | None  # None: reported, not judged


def expected_dtype(device: str) -> str:
    from rmorch.actors.backends.hf import _cpu_has_native_bf16

    return "bfloat16" if device == "cuda" or _cpu_has_native_bf16() else "float32"


def torch_models(model: Any) -> list[Any]:
    """The torch modules a kind holds (the classifier's one, the implicit kind's policy and reference)."""
    backends = [model.backend] if hasattr(model, "backend") else [model.policy, model.reference]
    return [b.model for b in backends if b is not None]


def non_embedding_params(module: Any) -> int:
    embeddings = {id(p) for m in module.modules() if type(m).__name__ == "Embedding" for p in m.parameters()}
    return sum(p.numel() for p in module.parameters() if id(p) not in embeddings)


def check_kind(label: str, load: Any, requests: list[Any], device: str, peak: float) -> tuple[list[Row], float]:
    """Load one kind, run the checks on it, drop it; (rows, seconds it took)."""
    t_start = time.perf_counter()
    rows: list[Row] = []
    before = allocated(device)
    t0 = time.perf_counter()
    model = load()
    load_seconds = time.perf_counter() - t0
    modules = torch_models(model)
    params = sum(sum(p.numel() for p in m.parameters()) for m in modules)
    dtypes = sorted({str(p.dtype).removeprefix("torch.") for m in modules for p in m.parameters()})
    devices = sorted({p.device.type for m in modules for p in m.parameters()})
    want = expected_dtype(device)
    resolved = model.settings().dtype
    count = f"{params / 1e9:.2f} B" if params >= 1e8 else f"{params / 1e6:.2f} M"
    rows.append(Row(f"{label}: load", f"{count} parameters in {load_seconds:.1f} s", None))
    rows.append(Row(f"{label}: dtype auto", f"{resolved} (weights {'/'.join(dtypes)} on {'/'.join(devices)})",
                    resolved == want and dtypes == [want] and devices == [device]))

    model.score(requests[:4])  # warm-up (CUDA kernels, allocator), outside the timing
    _sync(device)
    t0 = time.perf_counter()
    whole = model.score(requests)
    _sync(device)
    seconds = time.perf_counter() - t0
    tokens = sum(o.n_tokens or 0 for o in whole)
    flops = 2 * sum(non_embedding_params(m) for m in modules) * tokens
    mfu = flops / seconds / peak
    rows.append(Row(f"{label}: throughput", f"{tokens} tokens in {seconds:.2f} s = {tokens / seconds:,.0f} tok/s, "
                                            f"MFU {mfu:.3f}", None))

    singly = [model.score([r])[0] for r in reversed(requests)][::-1]
    sevens = [o for k in range(0, len(requests), 7) for o in model.score(requests[k:k + 7])]
    scores = [[o.score for o in outcomes] for outcomes in (whole, singly, sevens)]
    failed = [o.error for o in whole if o.error]
    same = not failed and scores[0] == scores[1] == scores[2] and all(s is not None for s in scores[0])
    moved = sum(a != b or a != c for a, b, c in zip(*scores))
    rows.append(Row(f"{label}: batch invariance", f"{len(requests)} scores; calls of all / 1 / 7: "
                                                  f"{'bit-identical' if same else f'{moved} differ'}", same))

    gone = [weakref.ref(m) for m in modules]
    model.close()  # a no-op on transformers; what the replica calls before dropping a model
    del model, modules, whole, singly, sevens
    release(device)
    after = allocated(device)
    freed = all(ref() is None for ref in gone)
    if device == "cuda":
        text = f"{before / 2**20:.0f} MiB before load, {after / 2**20:.0f} MiB after release"
        ok = freed and after <= before + MEMORY_SLACK
    else:
        text = "model objects collected" if freed else "model objects still referenced"
        ok = freed
    rows.append(Row(f"{label}: memory released", text, ok))
    return rows, time.perf_counter() - t_start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", choices=["cuda", "cpu"], default="cuda")
    parser.add_argument("--layers", type=int, help="override the model's layer count (size)")
    parser.add_argument("--requests", type=int, help="override the number of scored requests")
    args = parser.parse_args(argv)
    t_total = time.perf_counter()
    import_rmorch()

    import torch
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    device = args.device
    if device == "cuda" and not torch.cuda.is_available():
        print("gpu_check: FAIL (no CUDA device; run with --device cpu on a machine without one)")
        return 1
    size = SIZES[device]
    if args.layers:
        size = Size(**{**size.__dict__, "layers": args.layers})
    if args.requests:
        size = Size(**{**size.__dict__, "requests": args.requests})
    from rmorch.actors.base import ActorContext
    from rmorch.actors.classifier import Classifier, ClassifierConfig
    from rmorch.actors.implicit import Implicit, ImplicitConfig

    threads = torch.get_num_threads()
    ctx = ActorContext(seed=0, threads=threads, gpu_ids=(0,) if device == "cuda" else (), device=device)
    name = torch.cuda.get_device_name() if device == "cuda" else f"CPU, {threads} threads"
    rows = [Row("device", name, None)]
    peak = matmul_peak(device, seconds=3.0 if device == "cuda" else 1.0)
    rows.append(Row("bf16 matmul peak", f"{peak / 1e12:.1f} TFLOP/s" if peak > 1e12 else f"{peak / 1e9:.0f} GFLOP/s",
                    None))
    requests = make_requests(size.requests, size.words, seed=0)
    settings = {"dtype": "auto", "max_length": 4096, "batch_tokens": 16384}
    with tempfile.TemporaryDirectory(prefix="rmorch-gpu-check-") as tmp:
        t0 = time.perf_counter()
        rm = build_model(Path(tmp) / "rm", causal=False, seed=0, size=size, device=device)
        policy = build_model(Path(tmp) / "policy", causal=True, seed=1, size=size, device=device)
        reference = build_model(Path(tmp) / "reference", causal=True, seed=2, size=size, device=device)
        rows.append(Row("build 3 random models", f"{time.perf_counter() - t0:.1f} s", None))
        baseline = allocated(device)
        for label, load in [
            ("classifier", lambda: Classifier(ClassifierConfig(path=rm, **settings), ctx, "gpu-check-rm")),
            ("implicit dpo", lambda: Implicit(ImplicitConfig(path=policy, ref_path=reference, mode="dpo",
                                                             **settings), ctx, "gpu-check-dpo")),
        ]:
            kind_rows, seconds = check_kind(label, load, requests, device, peak)
            rows.extend(kind_rows)
            rows.append(Row(f"{label}: seconds", f"{seconds:.1f}", None))
        if device == "cuda":
            end = allocated(device)
            rows.append(Row("memory after both models", f"{baseline / 2**20:.0f} -> {end / 2**20:.0f} MiB",
                            end <= baseline + MEMORY_SLACK))
    loaded = [m for m in ("ray", "vllm") if m in sys.modules]
    rows.append(Row("imports", f"{', '.join(loaded)} imported" if loaded else "no ray, no vllm", not loaded))
    total = time.perf_counter() - t_total
    rows.append(Row("total", f"{total:.0f} s", None))
    print_table(rows)
    failed = [r.check for r in rows if r.ok is False]
    mfu = ", ".join(f"{r.check.split(':')[0]} {r.value.rsplit('MFU ', 1)[1]}" for r in rows if "MFU" in r.value)
    summary = f"device={device} mfu: {mfu} total={total:.0f}s"
    print(f"gpu_check: FAIL ({'; '.join(failed)}) {summary}" if failed else f"gpu_check: PASS {summary}")
    return 1 if failed else 0


def print_table(rows: list[Row]) -> None:
    width = max(len(r.check) for r in rows)
    mark = {True: "ok", False: "FAIL", None: ""}
    for r in rows:
        print(f"{r.check:<{width}}  {mark[r.ok]:<4}  {r.value}")


if __name__ == "__main__":
    sys.exit(main())
