"""The vLLM pooling backend of the classifier kind against the transformers backend, on real RewardBench items.

The engine runs in the pytest process (vLLM starts its engine core by spawn; pytest's entry point is guarded) and is
shut down at the end of the module so pytest exits 0 rather than 134.
"""

from __future__ import annotations

import time

import pyarrow.parquet as pq
import pytest

from rmorch.actors.base import ActorContext
from rmorch.actors.classifier import Classifier, ClassifierConfig
from rmorch.actors.worker import shard_requests
from rmorch.orchestrator.spec.parse import spec_from_dict
from rmorch.orchestrator.sweep import run_sweep
from rmorch.suites import get_suite_class

# The fast-tier half (no Ray, no vLLM engine, no child process): tests/unit/test_vllm_classifier.py



@pytest.fixture(scope="module")
def rb_requests(rewardbench_file):
    suite = get_suite_class("rewardbench")()
    items = suite.sample(suite.load(str(rewardbench_file.parent)), 1, seed=0)
    return shard_requests(items)


@pytest.fixture(scope="module")
def vllm_classifier(tiny_classifier):
    cfg = ClassifierConfig(path=tiny_classifier, backend="vllm", dtype="float32", max_length=512, batch_tokens=4096)
    t0 = time.perf_counter()
    model = Classifier(cfg, ActorContext(seed=0, threads=2), "tiny-vllm")
    print(f"vLLM engine start: {time.perf_counter() - t0:.1f} s")
    yield model
    model.close()


@pytest.mark.slow
def test_vllm_matches_transformers_in_float32(vllm_classifier, tiny_classifier, rb_requests):
    assert len(rb_requests) == 46
    hf = Classifier(ClassifierConfig(path=tiny_classifier, dtype="float32", max_length=512, batch_tokens=4096),
                    ActorContext(seed=0, threads=2), "tiny-hf")
    t0 = time.perf_counter()
    ref = hf.score(rb_requests)
    t1 = time.perf_counter()
    got = vllm_classifier.score(rb_requests)
    t2 = time.perf_counter()
    print(f"scoring 46 requests: transformers {t1 - t0:.2f} s, vLLM {t2 - t1:.2f} s")
    assert [(o.n_tokens, o.truncated) for o in got] == [(o.n_tokens, o.truncated) for o in ref]
    diff = max(abs(a.score - b.score) for a, b in zip(got, ref))
    print(f"max |logit(vLLM) - logit(transformers)| = {diff:.2e}")
    assert diff < 1e-3
    assert any(o.truncated for o in got)  # the 512-token limit bites on some items: truncation took the same path
    assert len({round(o.score, 4) for o in got}) > 3
    s = vllm_classifier.settings()
    assert (s.backend, s.dtype, s.max_length, s.chat_template) == ("vllm", "float32", 512, "tokenizer")
    # One batched call gives what single-request calls give.
    alone = [vllm_classifier.score([r])[0].score for r in rb_requests[:4]]
    assert alone == pytest.approx([o.score for o in got[:4]], abs=1e-4)
    assert vllm_classifier.score([]) == []


@pytest.mark.slow
def test_sigmoid_probabilities_convert_back_to_the_same_logits(vllm_classifier, rb_requests):
    """vLLM's default for a single-label classifier is sigmoid(logit); prob_to_logit undoes it (fallback path)."""
    from vllm import PoolingParams
    from vllm.inputs import TokensPrompt

    from rmorch.actors.backends.vllm_pool import prob_to_logit

    backend = vllm_classifier.backend
    raw = [o.score for o in vllm_classifier.score(rb_requests)]
    probs = backend.llm.classify([TokensPrompt(prompt_token_ids=backend.encode(r).ids) for r in rb_requests],
                                 pooling_params=PoolingParams(use_activation=True), use_tqdm=False)
    assert all(0.0 < o.outputs.probs[0] < 1.0 for o in probs)
    back = [prob_to_logit(o.outputs.probs[0]) for o in probs]
    diff = max(abs(a - b) for a, b in zip(back, raw))
    print(f"max |logit(sigmoid prob) - raw logit| = {diff:.2e}")
    assert diff < 1e-4
    assert prob_to_logit(0.0) == pytest.approx(-27.63, abs=0.01) and prob_to_logit(1.0) > 27


@pytest.mark.slow
def test_vllm_classifier_sweep_on_local_ray(local_ray, tiny_classifier, rewardbench_file, tmp_path):
    """The engine is built inside the Ray replica actor; rows record backend vllm and match transformers."""
    base = {"name": "tiny-rm", "kind": "classifier", "path": tiny_classifier, "dtype": "float32",
            "max_length": 512, "batch_tokens": 4096}
    suites = [{"name": "rewardbench", "data": str(rewardbench_file.parent), "limit_per_subset": 2}]
    t0 = time.perf_counter()
    result = run_sweep(spec_from_dict({"seed": 0, "out": str(tmp_path / "v"), "shard_size": 16, "suites": suites,
                                       "models": [{**base, "backend": "vllm"}]}))
    print(f"vLLM sweep on Ray: {time.perf_counter() - t0:.1f} s")
    assert result.ok and result.stats.loads == {"tiny-rm": 1}
    rows = pq.read_table(tmp_path / "v" / "results" / "tiny-rm").to_pylist()
    assert len(rows) == 92 and all(r["error"] is None for r in rows)
    assert {(r["backend"], r["dtype"], r["max_length"]) for r in rows} == {("vllm", "float32", 512)}
    run_sweep(spec_from_dict({"seed": 0, "out": str(tmp_path / "t"), "shard_size": 16, "suites": suites,
                              "models": [base]}))
    ref = {(r["item_id"], r["candidate"]): r["score"]
           for r in pq.read_table(tmp_path / "t" / "results" / "tiny-rm").to_pylist()}
    assert max(abs(r["score"] - ref[(r["item_id"], r["candidate"])]) for r in rows) < 1e-3
