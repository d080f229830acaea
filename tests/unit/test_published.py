"""Results travel: export a real sweep in the RewardBench results layout (rmorch.orchestrator.report.export), then replay the
exported per-item scores with the `published` kind (actors/published.py) through the real pipeline, and load
hand-written files in the official layout. Real Ray, real pyarrow, real RewardBench data (a seeded sample) and the
RewardBench 2 fixture."""

from __future__ import annotations

import json
import math

import pytest

from rmorch.actors.published import load_published
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
