"""RewardBench v1: the loader on the full real data, and the official metric on hand-computed cases."""

from __future__ import annotations

import json
import math

import pytest

from rmorch.core.schema import ITEM_SCHEMA, results_table
from rmorch.suites import get_suite_class
from rmorch.suites.rewardbench import SECTIONS, SUBSET_WEIGHTS, final_score, pairwise_correct, section_scores


@pytest.fixture(scope="module")
def rb_items(rewardbench_file):
    return get_suite_class("rewardbench")().load(str(rewardbench_file.parent))


def test_loads_full_real_set(rb_items):
    assert rb_items.schema == ITEM_SCHEMA
    assert rb_items.num_rows == 2985
    ids = rb_items.column("item_id").to_pylist()
    assert len(set(ids)) == 2985  # id 3692 repeats across subsets; (subset, id) keys do not
    assert "donotanswer/3692" in ids and "hep-python/3692" in ids
    subsets = rb_items.column("subset").to_pylist()
    for subset, weight in SUBSET_WEIGHTS.items():
        expected = 447 if subset == "math-prm" else weight
        assert subsets.count(subset) == expected, subset
    row = rb_items.slice(0, 1).to_pylist()[0]
    assert row["prompt"] == [{"role": "user", "content": "How do I detail a car?"}]
    assert row["correct"] == [0] and len(row["candidates"]) == 2
    assert json.loads(row["meta"])["id"] == 30


def test_sample_is_seeded_and_per_subset(rb_items):
    suite = get_suite_class("rewardbench")()
    a = suite.sample(rb_items, 5, seed=0)
    b = suite.sample(rb_items, 5, seed=0)
    c = suite.sample(rb_items, 5, seed=1)
    assert a.num_rows == 5 * 23
    assert a.column("item_id").to_pylist() == b.column("item_id").to_pylist()
    assert a.column("item_id").to_pylist() != c.column("item_id").to_pylist()
    # original order is kept
    order = {iid: i for i, iid in enumerate(rb_items.column("item_id").to_pylist())}
    positions = [order[i] for i in a.column("item_id").to_pylist()]
    assert positions == sorted(positions)


def test_strict_greater_ties_and_nan_are_wrong():
    assert pairwise_correct([[2.0, 1.0], [1.0, 1.0], [0.0, 1.0], [math.nan, 1.0], [1.0, math.nan]]) == [
        1.0, 0.0, 0.0, 0.0, 0.0,
    ]


def test_sections_weighted_with_math_prm_984():
    # Reasoning: math-prm 1.0 (weight 984) and hep-cpp 0.0 (weight 164): 984 / 1148
    acc = {"math-prm": 1.0, "hep-cpp": 0.0, "alpacaeval-easy": 0.5, "mt-bench-easy": 1.0}
    sec = section_scores(acc)
    assert sec["Reasoning"] == pytest.approx(984 / 1148)
    assert sec["Chat"] == pytest.approx((0.5 * 100 + 1.0 * 28) / 128)
    assert set(sec) == {"Reasoning", "Chat"}  # absent sections drop out


def test_final_is_mean_of_sections_and_prior_sets_variant():
    sections = {"Chat": 0.9, "Chat Hard": 0.5, "Safety": 0.7, "Reasoning": 0.6}
    assert final_score(sections, {}) == pytest.approx((0.9 + 0.5 + 0.7 + 0.6) / 4)
    prior = {"anthropic_helpful": 0.6, "anthropic_hhh": 0.8, "shp": 0.5, "summarize": 0.7}
    p = (0.6 + 0.8 + 0.5 + 0.7) / 4
    assert final_score(sections, prior) == pytest.approx((2 * (0.9 + 0.5 + 0.7 + 0.6) + p) / 9)


def test_every_subset_is_in_exactly_one_section():
    listed = [s for subs in SECTIONS.values() for s in subs]
    assert sorted(listed) == sorted(SUBSET_WEIGHTS)


def _results(rows):
    base = {"unit_key": "u", "model": "m", "suite": "rewardbench", "settings_hash": "h"}
    return results_table([{**base, **r} for r in rows])


def test_score_from_result_rows_counts_errors_as_wrong(rb_items):
    suite = get_suite_class("rewardbench")()
    items = suite.sample(rb_items, 1, seed=0)  # one item per subset
    rows = []
    for k, (iid, sub) in enumerate(zip(items.column("item_id").to_pylist(), items.column("subset").to_pylist())):
        chosen_wins = k % 2 == 0
        rows.append({"subset": sub, "item_id": iid, "candidate": 0, "score": 1.0 if chosen_wins else 0.0})
        if k == 2:  # an error row: this item counts as wrong
            rows.append({"subset": sub, "item_id": iid, "candidate": 1, "error": "boom"})
        else:
            rows.append({"subset": sub, "item_id": iid, "candidate": 1, "score": 0.5})
    s = suite.score(items, _results(rows))
    subsets = items.column("subset").to_pylist()
    expected_acc = {sub: (1.0 if k % 2 == 0 and k != 2 else 0.0) for k, sub in enumerate(subsets)}
    assert s.subsets == expected_acc
    assert s.n_items == 23 and s.n_errors == 1
    assert s.score == pytest.approx(final_score(section_scores(expected_acc), {}))


def test_prior_sets_from_local_file(tmp_path, rewardbench_file):
    prior = tmp_path / "prior.jsonl"
    with prior.open("w") as f:
        for k, name in enumerate(["anthropic_helpful", "anthropic_hhh", "shp", "summarize"]):
            f.write(json.dumps({"subset": name, "id": k, "prompt": [{"role": "user", "content": "hi"}],
                                "chosen": "good answer", "rejected": "bad"}) + "\n")
    opts = get_suite_class("rewardbench").Options(prior_sets=str(prior))
    items = get_suite_class("rewardbench")(opts).load(str(rewardbench_file))
    assert items.num_rows == 2985 + 4
    assert set(items.column("subset").to_pylist()) >= {"anthropic_helpful", "shp"}
