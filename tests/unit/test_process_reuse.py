"""Replica process reuse (`reuse_processes`, rmorch.orchestrator.schedule.scheduler + ModelWorker.reload): a replica whose model is
done leaves its process to the next model of the same shape, which loads there instead of in a new process. Real
Ray (2 logical GPUs), real tiny transformers classifiers with different weights."""

from __future__ import annotations

from rmorch.actors import get_kind

# The full-tier half (Ray, a vLLM engine or a child process): tests/test_process_reuse.py


def test_which_models_may_reuse_a_process():
    from rmorch.actors.classifier import ClassifierConfig
    from rmorch.actors.judge import JudgeConfig

    classifier = get_kind("classifier")
    assert classifier.reusable_process(ClassifierConfig(path="m"))
    assert not classifier.reusable_process(ClassifierConfig(path="m", backend="vllm"))
    assert not classifier.reusable_process(ClassifierConfig(path="m", trust_remote_code=True))
    assert not get_kind("judge").reusable_process(JudgeConfig(path="m"))
    assert get_kind("length").reusable_process(None)
