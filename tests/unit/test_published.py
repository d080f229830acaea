"""Results travel: export a real sweep in the RewardBench results layout (rmorch.orchestrator.report.export), then replay the
exported per-item scores with the `published` kind (actors/published.py) through the real pipeline, and load
hand-written files in the official layout. Real Ray, real pyarrow, real RewardBench data (a seeded sample) and the
RewardBench 2 fixture."""

from __future__ import annotations

import json
import math

import pytest

from rmorch.actors.base import ActorContext, CompareRequest, Presentation, ScoreRequest
from rmorch.actors.published import Published, PublishedConfig, load_published
from rmorch.core.errors import DataError, SpecError
from rmorch.orchestrator.spec.parse import spec_from_dict

# The full-tier half (Ray, a vLLM engine or a child process): tests/test_published.py


def test_hand_written_rewardbench2_file(tmp_path) -> None:
    """As scripts/run_v2.py saves it: per-item score lists (custom models may nest each score in a list), Ties
    results null, a null score list for an item the model could not score."""
    doc = {
        "chat_template": "tokenizer", "model": "org/rm2", "model_type": "Seq. Classifier",
        "id": ["1", "ref:1", "tied:1", "7"],
        "subset": ["Factuality", "Ties", "Ties", "Math"],
        "num_correct": [1, 1, 3, 1],
        "scores": [[1.0, 0.5, 0.25, 0.0], [[2.0], [1.0], [0.0], [-1.0]], [3.0, 3.5, 4.0, 1.0, 2.0], None],
        "results": [1, None, None, 0],
        "text": [["a", "b", "c", "d"], ["e", "f", "g", "h"], ["i", "j", "k", "l", "m"], ["n", "o", "p", "q"]],
    }
    path = tmp_path / "rm2.json"
    path.write_text(json.dumps(doc))
    assert load_published(str(path)).scores == {
        "1": [1.0, 0.5, 0.25, 0.0], "ref:1": [2.0, 1.0, 0.0, -1.0], "tied:1": [3.0, 3.5, 4.0, 1.0, 2.0], "7": []}


def test_json_lines_records_load(tmp_path) -> None:
    lines = [{"id": 3, "subset": "hep-go", "scores_chosen": 1.0, "scores_rejected": float("nan"), "model": "m"},
             {"id": 4.0, "subset": "hep-go", "scores_chosen": None, "scores_rejected": 2.0, "model": "m"}]
    path = tmp_path / "m.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in lines))
    table = load_published(str(path))
    assert table.model == "m"
    assert table.scores["hep-go/4"] == [None, 2.0]
    assert table.scores["hep-go/3"][0] == 1.0 and math.isnan(table.scores["hep-go/3"][1])


@pytest.mark.parametrize("doc, field, message", [
    ({"id": [1], "subset": ["hep-go"], "results": [1], "model": "judge"}, "scores", "generative judge"),
    ({"model": "m", "hep-go": 0.5, "model_type": "Seq. Classifier"}, "scores", "accuracy file"),
    ({"subset": ["hep-go"], "scores_chosen": [1.0], "scores_rejected": [0.0]}, "id", "run_dpo.py"),
    ({"id": [1, 2], "subset": ["hep-go"], "scores_chosen": [1.0, 2.0], "scores_rejected": [0.0, 0.0]}, "subset",
     "has 1 entries"),
    ({"id": [1], "subset": ["hep-go"], "scores_chosen": ["high"], "scores_rejected": [0.0]}, "scores_chosen",
     "expected a number"),
    ({"id": [1, 1], "subset": ["hep-go", "hep-go"], "scores_chosen": [1.0, 2.0], "scores_rejected": [0.0, 0.0]},
     "id", "published twice"),
])
def test_bad_files_name_file_and_field(tmp_path, doc, field, message) -> None:
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(DataError) as err:
        load_published(str(path))
    assert err.value.field == field and message in str(err.value) and str(path) in str(err.value)


def test_directory_of_two_models_is_refused(tmp_path) -> None:
    for name, model in (("a.json", "org/a"), ("b.json", "org/b")):
        (tmp_path / name).write_text(json.dumps({"id": [1], "subset": ["hep-go"], "scores_chosen": [1.0],
                                                 "scores_rejected": [0.0], "model": model}))
    with pytest.raises(DataError, match="point `path` at one model's files"):
        load_published(str(tmp_path))


def test_spec_refuses_a_missing_path(tmp_path) -> None:
    with pytest.raises(SpecError, match=r"models\[0\]\.path"):
        spec_from_dict({"suites": ["rewardbench"], "models": [
            {"name": "p", "kind": "published", "path": str(tmp_path / "nope.json")}]})


# ---- JudgeBench outputs (ScalerLab/JudgeBench outputs/*.jsonl) ----------------------------------------------------


def _pair(pid: str, *judgments, a: str = "ra", b: str = "rb", judge: str = "arena_hard") -> dict:
    return {"pair_id": pid, "original_id": None, "source": "livebench-math", "question": "q",
            "response_model": "gpt-4o-2024-05-13", "response_A": a, "response_B": b, "label": "A>B",
            "judge_name": judge, "judgments": list(judgments)}


def _j(decision, response: str | None = "...", scores=None, model: str = "org/judge") -> dict:
    inner = {"judge_model": model, "prompt": "p", "response": response}
    if scores is not None:
        inner["scores"] = scores
    return {"judgment": inner, "decision": decision}


def _write(path, pairs: list[dict]):
    path.write_text("".join(json.dumps(p) + "\n" for p in pairs))
    return path


def _compare(judge, pid: str, order: tuple[int, int], texts=("ra", "rb")):
    return judge.score([CompareRequest(pid, order, 0, [{"role": "user", "content": "q"}],
                                       tuple(texts[k] for k in order))])[0]


def _published(path):
    config = PublishedConfig(str(path))
    return Published(config, ActorContext(), "p"), Published.presentation(config)


def test_judgebench_judge_run_is_replayed_as_decisions(tmp_path) -> None:
    path = _write(tmp_path / "judge.jsonl", [
        _pair("p1", _j("A>B", "[[A>>B]]"), _j("B>A")),
        _pair("p2", _j("A=B"), _j(None, None)),
        _pair("p3", None, _j("A<B")),  # a failed first order (null judgment), an unmappable mark
        _pair("p4", _j("B>A")),  # one judgment (--single_game): no swapped order
    ])
    table = load_published(str(path))
    assert table.layout == "judgebench" and table.compares and table.scores == {}
    assert (table.model, table.model_type) == ("org/judge", "arena_hard")
    judge, presentation = _published(path)
    assert presentation == Presentation("pairwise", "both")
    first, second = _compare(judge, "p1", (0, 1)), _compare(judge, "p1", (1, 0))
    assert (first.choice, first.parsed, first.raw_output) == (0, True, "[[A>>B]]")
    assert (second.choice, second.parsed, second.raw_output) == (1, True, "...")  # "B>A" as shown: the first, A
    tie, null = _compare(judge, "p2", (0, 1)), _compare(judge, "p2", (1, 0))
    assert (tie.choice, tie.parsed, null.choice, null.parsed, null.raw_output) == (None, True, None, False,
                                                                                  "decision: None")
    failed, other = _compare(judge, "p3", (0, 1)), _compare(judge, "p3", (1, 0))
    assert (failed.parsed, failed.error, other.parsed) == (False, None, False)
    assert "failed on this order" in failed.raw_output
    assert "original order only" in _compare(judge, "p4", (1, 0)).error
    assert "no published judgment for pair 'p9'" in _compare(judge, "p9", (0, 1)).error
    assert "holds other responses" in _compare(judge, "p1", (0, 1), texts=("ra", "another")).error


def test_judgebench_reward_model_run_is_replayed_as_scores(tmp_path) -> None:
    rm = [_pair("p1", _j("A>B", "", [2.0, 1.0]), _j("B>A", "", [1.0, 2.0]), judge="reward_model"),
          _pair("p2", _j("B>A", "", [0.5, 0.5]), _j("B>A", "", [0.5, 0.5]), judge="reward_model")]  # a tie
    path = _write(tmp_path / "rm.jsonl", rm)
    table = load_published(str(path))
    assert not table.compares and table.scores == {"p1": [2.0, 1.0], "p2": [0.5, 0.5]}
    judge, presentation = _published(path)
    assert presentation == Presentation()
    out = judge.score([ScoreRequest("p1", 1, [{"role": "user", "content": "q"}], "rb"),
                       ScoreRequest("p2", 0, [{"role": "user", "content": "q"}], "not ra")])
    assert out[0].score == 1.0 and "holds other responses" in out[1].error
    single = [_pair("p1", _j("B>A", "", [1.0, 3.0]), judge="reward_model")]  # run_judge.py --single_game
    assert load_published(str(_write(tmp_path / "single.jsonl", single))).scores == {"p1": [1.0, 3.0]}
    # decisions that do not follow from the scores (here: the swapped order's scores differ) are replayed as they are
    rm[0]["judgments"][1] = _j("A>B", "", [1.5, 2.0])
    table = load_published(str(_write(tmp_path / "rm2.jsonl", rm)))
    assert table.compares and table.decisions["p1"][1].decision == "A>B"


@pytest.mark.parametrize("pairs, field, message", [
    ([_pair("p1", _j("A>B"), _j("B>A")), _pair("p1", _j("A>B"), _j("B>A"))], "pair_id", "published twice"),
    ([_pair("p1", _j("A>B"), _j("B>A", model="org/other"))], "judge_model", "several judges"),
    ([_pair("p1")], "judgments", "one or two judgments"),
    ([_pair("p1", _j("A>B"), _j("A>B"), _j("A>B"))], "judgments", "one or two judgments"),
    ([_pair("p1", "A>B", _j("B>A"))], "judgments", "judgment object or null"),
    ([_pair("p1", _j(1), _j("B>A"))], "decision", "decision text or null"),
    ([_pair("p1", _j("A>B", scores=[1.0]), _j("B>A"))], "scores", "two scores"),
])
def test_bad_judgebench_files_name_file_and_field(tmp_path, pairs, field, message) -> None:
    path = _write(tmp_path / "bad.jsonl", pairs)
    with pytest.raises(DataError) as err:
        load_published(str(path))
    assert err.value.field == field and message in str(err.value) and str(path) in str(err.value)


def test_judgebench_and_rewardbench_files_do_not_mix(tmp_path) -> None:
    _write(tmp_path / "a.jsonl", [_pair("p1", _j("A>B"), _j("B>A"))])
    (tmp_path / "b.json").write_text(json.dumps({"id": [1], "subset": ["hep-go"], "scores_chosen": [1.0],
                                                 "scores_rejected": [0.0]}))
    with pytest.raises(DataError, match="is a rewardbench file but .*a.jsonl is a judgebench file"):
        load_published(str(tmp_path))


def test_a_published_judge_file_of_one_pair(tmp_path) -> None:
    path = _write(tmp_path / "one.jsonl", [_pair("p1", _j("A>B"), _j("A=B"))])
    assert load_published(str(path)).decisions["p1"][1].decision == "A=B"
