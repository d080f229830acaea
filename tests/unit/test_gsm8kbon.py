"""gsm8k-bon: the loader on the real GSM8K model solutions (per-key accuracies and oracle against the data README),
the GSM8K verifier against the stored labels, items with no correct candidate through sampling, the plan and
judge orders, the official best-of-N pick by hand (ties, errors, judge verdicts and ratings), and bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rmorch.core.errors import DataError
from rmorch.core.permutations import item_orders
from rmorch.core.schema import results_table
from rmorch.suites import get_suite_class
from rmorch.suites.gsm8k_answer import answers_match, extract_answer, is_correct
from rmorch.suites.gsm8kbon import Gsm8kBestOfN

# The full-tier half (Ray, a vLLM engine or a child process): tests/test_gsm8kbon.py
KEYS = ["6b_finetuning", "6b_verification", "175b_finetuning", "175b_verification"]
README_ACCURACY = {"6b_finetuning": 21.7, "6b_verification": 39.0, "175b_finetuning": 34.7,
                   "175b_verification": 56.3}  # ../shared/data/gsm8k/README.md, percent of 1,319 problems
README_ORACLE = 67.2


@pytest.fixture(scope="module")
def gsm8k_dir(shared_data) -> Path:
    return shared_data / "gsm8k"


@pytest.fixture(scope="module")
def raw_rows(gsm8k_dir) -> list[dict]:
    return [json.loads(line) for line in (gsm8k_dir / "example_model_solutions.jsonl").open(encoding="utf-8")]


@pytest.fixture(scope="module")
def items(gsm8k_dir):
    return Gsm8kBestOfN().load(str(gsm8k_dir))


def _write(tmp_path: Path, rows: list[dict], name: str = "pool.jsonl") -> str:
    path = tmp_path / name
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return str(path)


def _pool_row(question: str, labels: list[bool], **extra) -> dict:
    row = {"question": question, **extra}
    for k, ok in enumerate(labels):
        row[f"sample_{k}"] = {"solution": f"solution {k} of {question}", "is_correct": ok}
    return row


def _scores(items, per_item: list[list[float | None]], errors: dict | None = None) -> list[dict]:
    rows = []
    for iid, row in zip(items.column("item_id").to_pylist(), per_item):
        for k, s in enumerate(row):
            err = (errors or {}).get((iid, k))
            rows.append({"unit_key": "u", "model": "m", "suite": "gsm8k-bon", "subset": "gsm8k", "item_id": iid,
                         "candidate": k, "score": None if err else s, "error": err, "settings_hash": "h"})
    return rows


# ---- loader on the real file -------------------------------------------------------------------------------


def test_registered() -> None:
    assert get_suite_class("gsm8k-bon") is Gsm8kBestOfN


def test_real_file_layout(items, raw_rows) -> None:
    assert items.num_rows == len(raw_rows) == 1319
    assert items.column("item_id").to_pylist() == [str(i) for i in range(1319)]
    assert set(items.column("subset").to_pylist()) == {"gsm8k"}
    for item, raw in zip(items.to_pylist()[:50], raw_rows[:50]):
        assert item["prompt"] == [{"role": "user", "content": raw["question"]}]
        assert item["candidates"] == [raw[k]["solution"] for k in KEYS]
        assert item["gold"] == [1.0 if raw[k]["is_correct"] else 0.0 for k in KEYS]
        assert item["correct"] == [i for i, k in enumerate(KEYS) if raw[k]["is_correct"]]
        meta = json.loads(item["meta"])
        assert meta["keys"] == KEYS and meta["ground_truth"] == raw["ground_truth"]
        assert meta["reference"] == raw["ground_truth"].rsplit("A:", 1)[1].strip()


def test_file_and_directory_load_the_same(items, gsm8k_dir) -> None:
    assert Gsm8kBestOfN().load(str(gsm8k_dir / "example_model_solutions.jsonl")).equals(items)


def test_per_key_accuracy_and_oracle_match_the_readme(items) -> None:
    gold = items.column("gold").to_pylist()
    for k, key in enumerate(KEYS):
        assert round(100 * sum(g[k] for g in gold) / len(gold), 1) == README_ACCURACY[key]
    assert round(100 * sum(max(g) for g in gold) / len(gold), 1) == README_ORACLE
    assert sum(1 for c in items.column("correct").to_pylist() if not c) == 1319 - 887  # 887 = 67.2 % of 1,319


def test_no_hub_id_needs_data() -> None:
    with pytest.raises(DataError, match="data: PATH"):
        Gsm8kBestOfN().load()


# ---- the GSM8K verifier ------------------------------------------------------------------------------------


@pytest.mark.parametrize("text, answer", [
    ("so 9 * 2 = 18\n#### 18", "18"),
    ("#### 1,000", "1000"),
    ("she pays $5.\nA: $18.00", "18.00"),
    ("A: -3 degrees", "-3"),
    ("I think the answer is 42.", "42"),
    ("The Answer is: $1,250.50 total", "1250.50"),
    ("First 3 apples, then 4 more, so 7.", "7"),
    ("#### \nno number after the marker, but 12 here", "12"),
    ("the answer is 5\nA: 6", "6"),  # "A:" outranks "the answer is"
    ("A: 7\n#### 8", "8"),  # "####" outranks everything
    ("no numbers at all", None),
])
def test_extract_answer(text, answer) -> None:
    assert extract_answer(text) == answer


def test_answers_match() -> None:
    assert answers_match("18", "18.00") and answers_match("1000", "1000.0")
    assert not answers_match("18", "19") and not answers_match(None, "1") and not answers_match("1", None)
    assert is_correct("so she makes $18.", "She makes 9 * 2 = $<<9*2=18>>18\n#### 18")


def test_verifier_agrees_with_the_stored_labels(raw_rows, gsm8k_dir) -> None:
    test = [json.loads(line) for line in (gsm8k_dir / "test.jsonl").open(encoding="utf-8")]
    assert [t["question"] for t in test] == [r["question"] for r in raw_rows]
    disagree = [(i, k) for i, (row, t) in enumerate(zip(raw_rows, test)) for k in KEYS
                if is_correct(row[k]["solution"], t["answer"]) != row[k]["is_correct"]]
    agreement = 1 - len(disagree) / (4 * len(raw_rows))
    print(f"verifier vs stored is_correct: {agreement:.4%} of {4 * len(raw_rows)} solutions agree")
    assert not disagree, disagree[:20]  # measured: all 5,276 agree


# ---- pools with no correct candidate ----------------------------------------------------------------------


def test_empty_correct_through_sampling_plan_and_orders(tmp_path) -> None:
    from rmorch.orchestrator.plan.units import load_suite, make_units
    from rmorch.orchestrator.spec.parse import spec_from_dict

    rows = [_pool_row(f"q{i}", [i % 3 == 0, False, i % 2 == 0, False], id=i) for i in range(12)]
    spec = spec_from_dict({
        "out": str(tmp_path / "out"), "shard_size": 5,
        "suites": [{"name": "gsm8k-bon", "data": _write(tmp_path, rows), "limit_per_subset": 10}],
        "models": ["length", {"name": "four", "kind": "judge", "path": "x", "protocol": "nway"},
                   {"name": "rate", "kind": "judge", "path": "x", "protocol": "rating"}],
    })
    ls = load_suite(spec.suites[0], spec.seed)
    assert ls.items.num_rows == 10 and [] in ls.items.column("correct").to_pylist()
    units = make_units(spec, [ls])
    assert {u.model for u in units} == {"length", "four", "rate"}
    assert sum(1 for u in units if u.model == "four") == 2 * 4  # 2 shards x 4 cyclic orders
    orders = item_orders("nway", "cyclic", 4, False, 0, "gsm8k-bon", "1")
    assert len(orders) == 4 and all(sorted(o) == [0, 1, 2, 3] for o in orders)


# ---- scoring -----------------------------------------------------------------------------------------------


@pytest.fixture
def small_pool(tmp_path):
    rows = [
        _pool_row("a", [True, False, False, False]),
        _pool_row("b", [False, False, False, False]),
        _pool_row("c", [False, True, True, False]),
    ]
    return Gsm8kBestOfN().load(_write(tmp_path, rows))


def test_score_top_pick_with_ties_and_errors(small_pool) -> None:
    suite = Gsm8kBestOfN()
    # a: correct candidate strictly on top -> 1; b: nothing correct -> 0; c: tie of a correct and a wrong one -> 1/2
    res = suite.score(small_pool, results_table(_scores(small_pool, [[4, 1, 2, 3], [1, 2, 3, 4], [1, 5, 0, 5]])))
    assert res.score == pytest.approx((1 + 0 + 0.5) / 3)
    assert res.n_items == 3 and res.n_errors == 0 and res.judge is None
    assert res.extra["oracle"] == pytest.approx(2 / 3)
    assert res.extra["random"] == pytest.approx((0.25 + 0 + 0.5) / 3)
    assert res.extra["n_candidates"] == 4

    # an error anywhere in an item makes it wrong, and is counted
    res = suite.score(small_pool, results_table(_scores(small_pool, [[4, 1, 2, 3], [1, 2, 3, 4], [1, 5, 0, 5]],
                                                        errors={("0", 2): "boom"})))
    assert res.score == pytest.approx(0.5 / 3) and res.n_errors == 1
    # a missing item counts as errored too
    res = suite.score(small_pool, results_table(_scores(small_pool.slice(0, 2), [[4, 1, 2, 3], [1, 2, 3, 4]])))
    assert res.score == pytest.approx(1 / 3) and res.n_errors == 1


def test_score_judge_verdicts_and_ratings(small_pool) -> None:
    suite = Gsm8kBestOfN()
    base = {"unit_key": "u", "model": "j", "suite": "gsm8k-bon", "subset": "gsm8k", "settings_hash": "h"}
    verdicts = [  # (item, permutation, verdict, parsed, error)
        ("0", 0, 0, True, None),     # names the correct one: 1
        ("0", 1, 2, True, None),     # another order: ignored by the official number
        ("1", 0, None, False, None),  # unparsed: mean gold 0
        ("2", 0, None, False, None),  # unparsed: mean gold 0.5
    ]
    rows = [{**base, "item_id": i, "permutation": p, "order": [0, 1, 2, 3], "verdict": v, "parsed": ok,
             "error": e, "raw_output": "x"} for i, p, v, ok, e in verdicts]
    res = suite.score(small_pool, results_table(rows))
    assert res.score == pytest.approx((1 + 0 + 0.5) / 3) and res.n_errors == 0
    assert res.judge is not None and res.judge["parse_failure_rate"] == pytest.approx(2 / 4)

    rows[0].update(verdict=None, parsed=None, error="timeout")  # an error in the base order: 0
    res = suite.score(small_pool, results_table(rows))
    assert res.score == pytest.approx(0.5 / 3) and res.n_errors == 1

    ratings = [[8, 3, None, 9], [5, 5, 5, 5], [None, None, None, None]]  # None: unparsed (-1, ranked last)
    rows = [{**base, "item_id": str(i), "candidate": k, "score": r, "parsed": r is not None, "raw_output": "x"}
            for i, row in enumerate(ratings) for k, r in enumerate(row)]
    res = suite.score(small_pool, results_table(rows))
    # a: top rating 9 is wrong -> 0; b: 0; c: all unparsed -> uniform pick, mean gold 0.5
    assert res.score == pytest.approx(0.5 / 3) and res.n_errors == 0


# ---- bad input ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mutate, field, row", [
    (lambda rows: rows[1].pop("question"), "question", 2),
    (lambda rows: rows[0]["sample_1"].update(is_correct="yes"), "sample_1.is_correct", 1),
    (lambda rows: rows[2]["sample_0"].update(solution=None), "sample_0.solution", 3),
    (lambda rows: rows[2]["sample_0"].pop("solution"), "sample_0.solution", 3),
    (lambda rows: [rows[1].pop(f"sample_{k}") for k in (1, 2, 3)], "question", 2),
    (lambda rows: rows[0].update(ground_truth=5), "ground_truth", 1),
    (lambda rows: rows[2].update(id=[1]), "id", 3),
])
def test_bad_rows_name_file_row_field(tmp_path, mutate, field, row) -> None:
    rows = [_pool_row(q, [True, False, False, True]) for q in "abc"]
    mutate(rows)
    path = _write(tmp_path, rows)
    with pytest.raises(DataError) as e:
        Gsm8kBestOfN().load(path)
    assert e.value.file == path and e.value.row == row and e.value.field == field


def test_duplicate_ids_are_refused(tmp_path) -> None:
    rows = [_pool_row("a", [True, False], id=3), _pool_row("b", [True, False], id=3)]
    with pytest.raises(DataError, match="duplicate item key '3'"):
        Gsm8kBestOfN().load(_write(tmp_path, rows))


def test_empty_sampled_solution_is_kept_as_a_wrong_candidate(tmp_path) -> None:
    row = _pool_row("a", [True, False])
    row["sample_1"]["solution"] = ""
    items = Gsm8kBestOfN().load(_write(tmp_path, [row]))
    item = items.to_pylist()[0]
    assert item["candidates"][1] == "" and item["gold"] == [1.0, 0.0] and item["correct"] == [0]
    assert Gsm8kBestOfN().score(items, results_table(_scores(items, [[1.0, 0.0]]))).score == 1.0
